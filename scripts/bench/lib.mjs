// Shared pieces of the benchmark (scripts/bench.mjs) and the profiler
// (scripts/bench/profile.mjs): /proc readers for CPU and memory, CPU pinning,
// the load generators (wrk, else autocannon) and the targets (backends, baton,
// http-proxy, undici, nginx, HAProxy). Child processes come from
// scripts/lib/procs.mjs.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { ROOT, alive, freePort, rememberPid, sleep, spawnChild, tempDir } from '../lib/procs.mjs'

export * from '../lib/procs.mjs'

export const HERE = fileURLToPath(new URL('.', import.meta.url))
export const NGINX = '/usr/sbin/nginx'
export const HAPROXY = which('haproxy') ?? '/usr/sbin/haproxy'

/**
 * CPU pinning (--pin): servers (proxies and backends) on one set of CPUs,
 * the load generator on another, through taskset. Undefined: no pinning.
 */
let pinning
export function setPinning (p) { pinning = p }

/** spawnChild, under taskset when pinning is on; `role` is 'server' or 'load'. */
function spawnPinned (role, name, cmd, args, opts) {
  if (pinning === undefined) return spawnChild(name, cmd, args, opts)
  return spawnChild(name, which('taskset') ?? 'taskset', ['-c', pinning[role], cmd, ...args], opts)
}

/** Clock ticks per second of /proc/PID/stat utime and stime. */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    return Number.isFinite(n) && n > 0 ? n : 100
  } catch {
    return 100
  }
})()

/** The first executable of that name on PATH (or the path itself), else undefined. */
export function which (name) {
  if (name.includes('/')) return existsSync(name) ? name : undefined
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

// ---------------------------------------------------------------------------
// /proc readers.

function statFields (pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
  return s.slice(s.lastIndexOf(')') + 2).split(' ') // [0] is field 3 (state)
}

/** utime + stime of the processes (all their threads), in microseconds. */
export function cpuMicros (pids) {
  const t = cpuTimes(pids)
  return t.user + t.sys
}

/** utime and stime of the processes (all their threads), each in microseconds. */
export function cpuTimes (pids) {
  let user = 0
  let sys = 0
  for (const pid of pids) {
    try {
      const f = statFields(pid)
      user += Number(f[11]) // field 14, utime
      sys += Number(f[12]) // field 15, stime
    } catch { /* gone */ }
  }
  return { user: user * 1e6 / CLK_TCK, sys: sys * 1e6 / CLK_TCK }
}

/** Sum of VmRSS and of VmHWM over the processes, in kB. */
export function memoryKb (pids) {
  let rss = 0
  let hwm = 0
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/status`, 'utf8')
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0)
      hwm += Number(/^VmHWM:\s+(\d+)/m.exec(s)?.[1] ?? 0)
    } catch { /* gone */ }
  }
  return { rss, hwm }
}

/** PIDs whose parent is `ppid` (no /proc/PID/task/TID/children on every kernel). */
export function childPids (ppid) {
  const out = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try { if (Number(statFields(d)[1]) === ppid) out.push(Number(d)) } catch { /* raced an exit */ }
  }
  return out
}

// ---------------------------------------------------------------------------
// Network helpers.

export async function httpGet (url, timeoutMs = 5_000) {
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', c => { body += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
  })
}

/** Retries GET until it answers 200 with the backend's body, or throws. */
export async function waitHealthy (name, url, expectBody, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < until) {
    try {
      const r = await httpGet(url)
      if (r.status === 200 && r.body === expectBody) return r
      last = `status ${r.status}, body ${JSON.stringify(r.body.slice(0, 100))}`
    } catch (err) {
      last = err.message
    }
    await sleep(100)
  }
  throw new Error(`${name} at ${url} does not proxy to the backend: ${last}`)
}

// ---------------------------------------------------------------------------
// Load generators.

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

function wrkTimeMs (text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  return m === null ? NaN : Number(m[1]) * UNIT_MS[m[2]]
}

/** Parses `wrk --latency` output. Exported for a quick self-check. */
export function parseWrk (out) {
  const num = re => { const m = re.exec(out); return m === null ? undefined : m }
  const done = num(/(\d+) requests in ([\d.]+)(us|ms|s|m|h)/)
  if (done === undefined) throw new Error(`cannot read wrk output:\n${out}`)
  const requests = Number(done[1])
  const seconds = Number(done[2]) * UNIT_MS[done[3]] / 1000
  const rps = Number(num(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? requests / seconds)
  const pct = p => wrkTimeMs(num(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm'))?.[1] ?? '')
  const sock = num(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
  const socketErrors = sock === undefined ? 0 : Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4])
  const non2xx = Number(num(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0)
  return { requests, seconds, rps, p50: pct(50), p99: pct(99), errors: socketErrors + non2xx, non2xx, socketErrors }
}

async function runWrk ({ url, seconds, connections, threads }) {
  const p = spawnPinned('load', 'wrk', which('wrk'), [
    '-t', String(threads), '-c', String(Math.max(connections, threads)), '-d', `${Math.max(1, Math.round(seconds))}s`, '--latency', url
  ])
  const code = await p.exited
  const out = p.lines.join('\n')
  if (code !== 0) throw new Error(`wrk exited ${String(code)}\n${p.tail()}`)
  return parseWrk(out)
}

let autocannonFn
async function runAutocannon ({ url, seconds, connections }) {
  autocannonFn ??= (await import('autocannon')).default
  const r = await new Promise((resolve, reject) => {
    autocannonFn({ url, connections, duration: Math.max(1, Math.round(seconds)), pipelining: 1 }, (err, res) => err ? reject(err) : resolve(res))
  })
  const requests = r.requests.total
  const errors = r.errors + r.timeouts + r.non2xx
  return { requests, seconds: r.duration, rps: requests / r.duration, p50: r.latency.p50, p99: r.latency.p99, errors, non2xx: r.non2xx, socketErrors: r.errors + r.timeouts }
}

/** 'wrk' when it is installed, else 'autocannon' (unless `wanted` says which). */
export function loadTool (wanted) {
  if (wanted === 'autocannon') return 'autocannon'
  if (which('wrk') !== undefined) return 'wrk'
  if (wanted === 'wrk') throw new Error('--load wrk: wrk is not on PATH')
  return 'autocannon'
}

export async function runLoad (tool, opts) {
  return tool === 'wrk' ? await runWrk(opts) : await runAutocannon(opts)
}

// ---------------------------------------------------------------------------
// Targets. Each: { name, url, pids() -> the PIDs whose CPU is the proxy's,
// stop() }. The backends are shared by all.

/** What the backends answer on `/` (100 bytes); `/64k` answers 65,536. */
export const BODY_100 = 'a'.repeat(100)
/** The URL path of each body size. */
export const SIZE_PATHS = { 100: '/', 65536: '/64k' }

export async function startBackend () {
  const p = spawnPinned('server', 'backend', process.execPath, [join(HERE, 'backend.mjs')])
  const { port } = await p.waitLine(l => typeof l?.port === 'number')
  return { name: 'backend', proc: p, port, url: `http://127.0.0.1:${port}/`, pids: () => [p.pid], stop: () => p.stop() }
}

/** Connections opened to the backends so far (those of these queries left out). */
export async function backendConnections (backends) {
  let n = 0
  for (const b of backends) n += Number((await httpGet(`http://127.0.0.1:${b.port}/__bench/connections`)).body)
  return n
}

export function batonConfig (backendPorts, dir, accessLog, workers = 1) {
  const file = join(dir, `baton-${workers}w${accessLog === undefined ? '' : '-log'}.yaml`)
  writeFileSync(file, [
    `workers: ${workers}`,
    'listen: [{ port: 0, host: 127.0.0.1 }]',
    'admin: { listen: 127.0.0.1:0 }',
    ...(accessLog === undefined ? [] : [`accessLog: { path: ${JSON.stringify(accessLog)} }`]),
    'pools:',
    '  web:',
    `    servers: [${backendPorts.map(p => `127.0.0.1:${p}`).join(', ')}]`,
    ''
  ].join('\n'))
  return file
}

/**
 * baton from dist/, optionally with extra node flags (e.g. --cpu-prof), an
 * access log file and `o.workers` proxy workers. Its CPU is every process of
 * it: the supervisor, the controller and the workers.
 */
export async function startBaton (backendPorts, dir, nodeFlags = [], o = {}) {
  const cli = join(ROOT, 'dist/cli/main.js')
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build baton first (npx tsc -p tsconfig.json)`)
  const workers = o.workers ?? 1
  const config = batonConfig(backendPorts, dir, o.accessLog, workers)
  const name = o.name ?? 'baton'
  const p = spawnPinned('server', name, process.execPath, [...nodeFlags, cli, 'start', '-c', config])
  const started = await p.waitLine(l => l?.msg === 'baton started', 30_000)
  const port = started.listeners[0].port
  const adminUrl = `http://127.0.0.1:${started.admin.port}`
  const workerPids = async () => JSON.parse((await httpGet(`${adminUrl}/v1/processes`)).body).workers.map(w => w.pid)
  const pids = () => {
    const all = [p.pid, ...childPids(p.pid)]
    for (const c of all) rememberPid(c)
    return all
  }
  return {
    name,
    proc: p,
    port,
    url: `http://127.0.0.1:${port}/`,
    pids,
    /** Client connections held by each worker now (Linux /proc): how the kernel spread them. */
    spread: async () => connectionsPerPid(port, await workerPids()),
    stop: () => p.stop()
  }
}

/** For each pid, how many established connections to `port` it holds the server side of. */
export function connectionsPerPid (port, pids) {
  const inodes = new Set()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length >= 10 && Number.parseInt(f[1].split(':')[1], 16) === port && f[3] === '01') inodes.add(f[9])
    }
  }
  return pids.map(pid => {
    let n = 0
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
          if (m !== null && inodes.has(m[1])) n++
        } catch { /* closed meanwhile */ }
      }
    } catch { /* gone */ }
    return n
  })
}

async function startNodeProxy (name, file, backendPorts) {
  const p = spawnPinned('server', name, process.execPath, [join(HERE, file)], { env: { ...process.env, TARGET_PORTS: backendPorts.join(',') } })
  const { port } = await p.waitLine(l => typeof l?.port === 'number')
  return { name, proc: p, port, url: `http://127.0.0.1:${port}/`, pids: () => [p.pid], stop: () => p.stop() }
}

export const startHttpProxy = backendPorts => startNodeProxy('http-proxy', 'http-proxy.mjs', backendPorts)
export const startUndiciProxy = backendPorts => startNodeProxy('undici', 'undici-proxy.mjs', backendPorts)

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

/** "wrk 4.1.0" from `wrk --version` (which also prints its usage). */
export function wrkVersion () {
  const r = spawnSync(which('wrk') ?? 'wrk', ['--version'], { encoding: 'utf8' })
  const m = /wrk\s+(?:\S+\/)?(\d[\w.]*)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)
  return m === null ? 'wrk' : `wrk ${m[1]}`
}

/**
 * nginx with one worker and upstream keep-alive, entirely in its own temp
 * dir (prefix, conf, pid, logs, temp paths), in the foreground, as the
 * current user. Its CPU is master + workers.
 */
export async function startNginx (backendPorts, workers = 1) {
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
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const p = spawnPinned('server', 'nginx', NGINX, ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/error.log`])
  const url = `http://127.0.0.1:${port}/`
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
    name: workers === 1 ? 'nginx' : `nginx${workers}`,
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

// ---------------------------------------------------------------------------
// Numbers.

export function median (xs) {
  const v = xs.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}
