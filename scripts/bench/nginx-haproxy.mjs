// nginx and HAProxy as benchmark targets (scripts/bench.mjs): each in its own
// temp dir, in the foreground, pinned like the other servers. nginx can also
// serve TLS (HTTP/1.1 and HTTP/2 by ALPN) with the bench's certificate.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'

import { BODY_100, alive, childPids, freePort, rememberPid, spawnPinned, tempDir, waitHealthy, which } from './lib.mjs'

export const NGINX = '/usr/sbin/nginx'
export const HAPROXY = which('haproxy') ?? '/usr/sbin/haproxy'

export function nginxVersion () {
  const r = spawnSync(NGINX, ['-v'], { encoding: 'utf8' })
  const m = /nginx\/[\w.-]+/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`)
  return m === null ? 'nginx' : m[0]
}

export function haproxyVersion () {
  const r = spawnSync(HAPROXY, ['-v'], { encoding: 'utf8' })
  const m = /HAProxy version ([\w.-]+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)
  return m === null ? 'HAProxy' : `HAProxy ${m[1]}`
}

/**
 * nginx with one worker and upstream keep-alive, entirely in its own temp
 * dir (prefix, conf, pid, logs, temp paths), in the foreground, as the
 * current user. Its CPU is master + workers. With `tls` ({ cert, key }
 * files) it listens with TLS (1.2 and 1.3, as baton's default minVersion)
 * and HTTP/2 by ALPN beside HTTP/1.1, as baton's TLS listener does.
 */
export async function startNginx (backendPorts, workers = 1, tls = undefined) {
  const dir = tempDir('baton-bench-nginx-')
  const port = await freePort()
  const me = userInfo()
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, `# written by scripts/bench.mjs
${process.getuid?.() === 0 ? `user ${me.username};\n` : ''}worker_processes ${workers};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream backend {
${backendPorts.map(p => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${tls === undefined ? '' : ` ssl http2;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3`};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const p = spawnPinned('server', 'nginx', NGINX, ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/error.log`])
  const url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}/`
  try {
    await waitHealthy('nginx', url, BODY_100)
  } catch (err) {
    let log = ''
    try { log = readFileSync(join(dir, 'error.log'), 'utf8') } catch { /* none */ }
    throw new Error(`${err.message}\n${p.tail()}\nerror.log:\n${log}`)
  }
  const pids = () => {
    const workers = childPids(p.pid)
    for (const w of workers) rememberPid(w)
    return [p.pid, ...workers]
  }
  if (pids().length < 2) throw new Error('nginx: no worker process found')
  return {
    name: `nginx${workers === 1 ? '' : workers}${tls === undefined ? '' : '-tls'}`,
    proc: p,
    port,
    url,
    dir,
    pids,
    stop: async () => {
      const workers = childPids(p.pid)
      await p.stop('SIGTERM')
      for (const w of workers) if (alive(w)) { try { process.kill(w, 'SIGKILL') } catch { /* gone */ } }
    }
  }
}

/**
 * HAProxy, one process with one thread, HTTP mode, server connections kept
 * and shared between client connections (http-reuse always), in the
 * foreground (-db).
 */
export async function startHaproxy (backendPorts) {
  const dir = tempDir('baton-bench-haproxy-')
  const port = await freePort()
  const conf = join(dir, 'haproxy.cfg')
  writeFileSync(conf, `# written by scripts/bench.mjs
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  default_backend backends
backend backends
  balance roundrobin
${backendPorts.map((p, i) => `  server b${i} 127.0.0.1:${p}`).join('\n')}
`)
  const p = spawnPinned('server', 'haproxy', HAPROXY, ['-db', '-f', conf])
  const url = `http://127.0.0.1:${port}/`
  await waitHealthy('haproxy', url, BODY_100)
  return { name: 'haproxy', proc: p, port, url, dir, pids: () => [p.pid], stop: () => p.stop() }
}

