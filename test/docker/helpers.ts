import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Engine, type ContainerSummary } from '../../src/driver/docker/engine.js'
import { ROOT } from '../helpers/baton.js'
import { waitFor } from '../helpers/http.js'
import { claimPortRange } from '../helpers/ports.js'

/**
 * Real dockerds for the docker driver tests (scripts/docker/dockerd.sh), the
 * test image, and clean-up. These tests need root and run only with
 * BATON_DOCKER_TESTS=1 (scripts/docker/driver-test.sh sets it).
 */
export const DOCKER_TESTS = process.env.BATON_DOCKER_TESTS === '1'

const DOCKERD = join(ROOT, 'scripts/docker/dockerd.sh')
const BASE_IMAGE = 'baton-node-base:20'
export const IMAGE = 'baton-demo'

export interface Daemon {
  /** unix:///run/.../docker.sock */
  url: string
  engine: Engine
  /** Started by this test file (and so stopped by it). */
  startedHere: boolean
  /** dockerd's PID, from its pidfile. */
  pid: () => number
  runDir: string
  env: NodeJS.ProcessEnv
}

function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 180_000): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status ?? r.signal)}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/**
 * The default private dockerd (/run/baton-ci), or a second one with its own
 * socket and data root: reused when it already runs, else started.
 */
export function startDaemon (second?: { run: string, data: string, args?: string, fresh?: boolean }): Daemon {
  const env = {
    ...process.env,
    ...(second === undefined ? {} : { BATON_DOCKER_RUN: second.run, BATON_DOCKER_DATA: second.data, BATON_DOCKER_ARGS: second.args ?? '' })
  }
  // fresh: a daemon of that name that already runs is stopped first (it may lack `args`).
  if (second?.fresh === true) run('bash', [DOCKERD, 'stop'], env)
  const running = spawnSync('bash', [DOCKERD, 'status'], { env }).status === 0
  const out = run('bash', [DOCKERD, 'start'], env)
  const url = /DOCKER_HOST=(\S+)/.exec(out)?.[1]
  if (url === undefined) throw new Error(`dockerd.sh start printed no DOCKER_HOST: ${out}`)
  const runDir = second?.run ?? '/run/baton-ci'
  return {
    url,
    engine: new Engine(url),
    startedHere: !running,
    pid: () => Number(readFileSync(join(runDir, 'docker.pid'), 'utf8').trim()),
    runDir,
    env: { ...env, DOCKER_HOST: url, DOCKER_BUILDKIT: '0' }
  }
}

export async function stopDaemon (d: Daemon | undefined): Promise<void> {
  if (d === undefined) return
  await d.engine.close()
  if (d.startedHere) run('bash', [DOCKERD, 'stop'], d.env)
}

export const docker = (d: Daemon, ...args: string[]): string => run('docker', args, d.env)

/**
 * baton-demo:v1 and :v2 (the same image; the version comes from APP_VERSION):
 * scripts/demo-app.mjs and ws on the Node base image, behind a start script
 * that writes one line to stdout and one to stderr (to see container output
 * in baton's log).
 */
export function buildImages (d: Daemon): void {
  if (spawnSync('docker', ['image', 'inspect', BASE_IMAGE], { env: d.env }).status !== 0) {
    run('bash', [join(ROOT, 'scripts/docker/base-image.sh'), BASE_IMAGE], d.env)
  }
  const ctx = mkdtempSync(join(tmpdir(), 'baton-demo-image-'))
  try {
    cpSync(join(ROOT, 'scripts/demo-app.mjs'), join(ctx, 'app/demo-app.mjs'))
    cpSync(join(ROOT, 'node_modules/ws'), join(ctx, 'app/node_modules/ws'), { recursive: true })
    writeFileSync(join(ctx, 'app/start.mjs'), [
      'console.log(`demo container ${process.env.APP_VERSION} starting on port ${process.env.PORT}`)',
      'console.error(`demo container ${process.env.APP_VERSION}: a line on stderr`)',
      "await import('./demo-app.mjs')",
      ''
    ].join('\n'))
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY app /app\nWORKDIR /app\nUSER node\nCMD ["node", "start.mjs"]\n`)
    docker(d, 'build', '-q', '-t', `${IMAGE}:v1`, ctx)
    docker(d, 'tag', `${IMAGE}:v1`, `${IMAGE}:v2`)
  } finally {
    rmSync(ctx, { recursive: true, force: true })
  }
}

/** Copies the demo images from one daemon to another (docker save | docker load). */
export function copyImages (from: Daemon, to: Daemon): void {
  const r = spawnSync('bash', ['-c', `docker -H "$FROM" save ${IMAGE}:v1 ${IMAGE}:v2 | docker -H "$TO" load -q`], {
    env: { ...process.env, FROM: from.url, TO: to.url }, encoding: 'utf8', timeout: 120_000
  })
  if (r.status !== 0) throw new Error(`docker save | docker load failed: ${r.stderr}`)
}

/** Removes every container of the pool (running or not) on the daemon: the clean-up after a test, also on failure. */
export async function removePool (d: Daemon | undefined, pool = 'web'): Promise<number> {
  if (d === undefined) return 0
  const list = await d.engine.list({ 'baton.pool': pool }).catch(() => [])
  for (const c of list) await d.engine.remove(c.Id).catch(() => undefined)
  return list.length
}

/** Running containers of the pool on the daemon. */
export async function running (d: Daemon, pool = 'web'): Promise<Array<{ id: string, labels: Record<string, string> }>> {
  const list = await d.engine.list({ 'baton.pool': pool })
  return list.filter(c => c.State === 'running').map(c => ({ id: c.Id, labels: c.Labels ?? {} }))
}

/** Polls until the pool has exactly `n` containers on the daemon (`running`: running ones only). */
export async function waitContainers (d: Daemon, n: number, o: { running?: boolean, timeoutMs?: number } = {}): Promise<ContainerSummary[]> {
  let last: ContainerSummary[] = []
  await waitFor(async () => {
    last = (await d.engine.list({ 'baton.pool': 'web' })).filter(c => o.running !== true || c.State === 'running')
    return last.length === n
  }, o.timeoutMs ?? 20_000)
  return last
}

export interface TlsFiles { dir: string, ca: string, cert: string, key: string, serverCert: string, serverKey: string }

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl, EC keys). */
export function makeTls (): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'baton-docker-tls-'))
  const f = (name: string): string => join(dir, name)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=baton test CA'])
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n')
  for (const [who, key, cert] of [['server', 'server-key.pem', 'server-cert.pem'], ['client', 'key.pem', 'cert.pem']]) {
    run('openssl', ['req', ...ec, '-keyout', f(key), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'baton'}`])
    run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial',
      '-out', f(cert), '-days', '1', '-extfile', f(`${who}.ext`)])
  }
  return { dir, ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'), serverCert: f('server-cert.pem'), serverKey: f('server-key.pem') }
}

/**
 * A docker pool of the demo image with host networking, with the readiness
 * and rollout settings of test/helpers/pool.ts demoConfig, so that the two
 * compare.
 */
export function dockerConfig (engines: unknown[], o: { size?: number, env?: Record<string, string>, readiness?: object, rollout?: object } = {}): Record<string, unknown> {
  return {
    listen: [{ port: 0, host: '127.0.0.1' }],
    admin: { listen: '127.0.0.1:0' },
    proxy: { retries: 2 },
    pools: {
      web: {
        size: o.size ?? 4,
        version: 'v1',
        docker: {
          engines,
          image: `${IMAGE}:{version}`,
          network: 'host',
          ports: claimPortRange(),
          env: { PORT: '{port}', APP_VERSION: '{version}', READY_DELAY: '300', ...o.env }
        },
        readiness: { path: '/ready', interval: '100ms', timeout: '1s', startTimeout: '10s', ...o.readiness },
        rollout: { maxSurge: 1, maxUnavailable: 0, minReady: '500ms', drainTimeout: '10s', stopTimeout: '3s', ...o.rollout }
      }
    }
  }
}
