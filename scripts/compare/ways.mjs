// The three ways to upgrade scripts/demo-app.mjs from v1 to v2 that
// scripts/compare.mjs compares. Each `setup(opts)` starts v1 and resolves with
//   { host, port, upgrade(), teardown() }
// where the client load goes to host:port, `upgrade()` moves to v2 and
// resolves with { wallMs, ok, note? }, and `teardown()` stops everything the
// way started.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { stringify } from 'yaml'
import {
  HOST, ROOT, alive, forgetPid, freePort, offCleanup, onCleanup, rememberPid, removeTempDir, request, requestJson,
  run, sleep, spawnChild, tempDir, until
} from './procs.mjs'

const APP = 'scripts/demo-app.mjs'
const NAIVE_STOP_GRACE_MS = 10_000
export const PM2_BIN = join(ROOT, 'node_modules/pm2/bin/pm2')

/** Resolves once GET /ready answers 200 from `version` on `count` fresh connections in a row. */
async function waitReady (port, version, { count = 1, proc, timeoutMs = 30_000, everyMs = 50 } = {}) {
  const end = Date.now() + timeoutMs
  let streak = 0
  for (;;) {
    if (proc !== undefined && proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode})\n${proc.tail()}`)
    const r = await request(`http://${HOST}:${port}/ready`, { timeoutMs: 2_000 }).catch(() => undefined)
    if (r?.status === 200 && r.headers['x-app-version'] === version) streak++
    else streak = 0
    if (streak >= count) return
    if (Date.now() > end) throw new Error(`${version} not ready on port ${port} after ${timeoutMs} ms`)
    await sleep(everyMs)
  }
}

// ---------------------------------------------------------------------------
// (a) naive: one process; SIGTERM it, wait for it to exit, start v2.

export async function naive () {
  const port = await freePort()
  const spawnApp = version => spawnChild(`demo-app ${version}`, process.execPath, [APP], {
    env: { ...process.env, PORT: String(port), APP_VERSION: version }
  })
  let app = spawnApp('v1')
  await waitReady(port, 'v1', { proc: app })
  return {
    host: HOST,
    port,
    async upgrade () {
      const t = performance.now()
      // The app stops gracefully on SIGTERM (in-flight requests end first).
      // Like `docker stop`: SIGKILL if it is still there after 10 s.
      const old = app
      await old.stop('SIGTERM', NAIVE_STOP_GRACE_MS)
      const stoppedMs = performance.now() - t
      app = spawnApp('v2')
      await waitReady(port, 'v2', { proc: app, everyMs: 20 })
      const how = old.signal === 'SIGKILL' ? `SIGKILLed after ${NAIVE_STOP_GRACE_MS / 1000} s` : `exited by itself (code ${old.exitCode})`
      return { wallMs: performance.now() - t, ok: true, note: `old process ${how}, gone after ${Math.round(stoppedMs)} ms` }
    },
    async teardown () { await app.stop('SIGTERM', 5_000) }
  }
}

// ---------------------------------------------------------------------------
// (b) pm2: a 4-instance cluster, `pm2 reload NAME --update-env`.

function readPid (file) {
  try { return Number(readFileSync(file, 'utf8').trim()) || undefined } catch { return undefined }
}

/** The pm2 daemon and app PIDs that PM2_HOME records. */
function pm2Pids (home) {
  const pids = []
  const daemon = readPid(join(home, 'pm2.pid'))
  if (daemon !== undefined) pids.push(daemon)
  try {
    for (const f of readdirSync(join(home, 'pids'))) {
      const p = readPid(join(home, 'pids', f))
      if (p !== undefined) pids.push(p)
    }
  } catch { /* no pids folder */ }
  return { daemon, pids }
}

function pm2Log (home) {
  try { return readFileSync(join(home, 'pm2.log'), 'utf8') } catch { return '' }
}

/** `pm2 kill` of that PM2_HOME (when its daemon runs), then SIGKILL for whatever it left. */
function pm2KillSync (home) {
  const { daemon, pids } = pm2Pids(home)
  if (daemon !== undefined && alive(daemon)) {
    try {
      execFileSync(process.execPath, [PM2_BIN, 'kill'], { env: { ...process.env, PM2_HOME: home }, stdio: 'ignore', timeout: 30_000 })
    } catch { /* fall through to the PIDs */ }
  }
  for (const pid of pids) if (alive(pid)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
}

export async function pm2 (opts) {
  if (!existsSync(PM2_BIN)) throw new Error('pm2 is not installed (npm i -D pm2)')
  const home = tempDir('cmp-pm2-')
  const port = await freePort()
  const name = 'demo'
  const ecosystem = join(home, 'ecosystem.json')
  writeFileSync(ecosystem, JSON.stringify({
    apps: [{
      name,
      script: join(ROOT, APP),
      cwd: ROOT,
      exec_mode: 'cluster',
      instances: 4,
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 5_000,
      autorestart: true
    }]
  }, null, 2))
  // The app's graceful stop is on SIGTERM; pm2 (7.x) sends its daemon's
  // PM2_KILL_SIGNAL, SIGINT by default (an ecosystem kill_signal is not read).
  const env = version => ({ ...process.env, PM2_HOME: home, PM2_KILL_SIGNAL: opts.pm2KillSignal, PORT: String(port), APP_VERSION: version, FORCE_COLOR: '0' })
  const pm2run = async (args, version) => await run(process.execPath, [PM2_BIN, ...args], { env: env(version) })
  const cleanupName = `pm2 ${home}`
  onCleanup(cleanupName, () => pm2KillSync(home))
  const teardown = async () => {
    const r = await pm2run(['kill'], 'v2')
    if (r.code !== 0) process.stderr.write(`compare: pm2 kill exited ${r.code}: ${r.stderr.slice(-300)}\n`)
    pm2KillSync(home) // anything pm2 kill left
    offCleanup(cleanupName)
    removeTempDir(home)
  }
  try {
    const started = await pm2run(['start', ecosystem], 'v1')
    if (started.code !== 0) throw new Error(`pm2 start exited ${started.code}\n${started.stdout.slice(-1500)}\n${started.stderr.slice(-1500)}`)
    await until('4 pm2 instances online', async () => {
      const r = await pm2run(['jlist'], 'v1')
      const list = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')))
      return list.filter(p => p.name === name && p.pm2_env?.status === 'online').length === 4
    }, { timeoutMs: 60_000, everyMs: 250 })
    // Fresh connections go round-robin over the workers: 12 ready answers in a row.
    await waitReady(port, 'v1', { count: 12, timeoutMs: 30_000 })
  } catch (err) {
    await teardown()
    throw err
  }
  return {
    host: HOST,
    port,
    async upgrade () {
      const logBefore = pm2Log(home)
      const r = await pm2run(['reload', name, '--update-env'], 'v2')
      // pm2 logs each old worker it had to SIGKILL after kill_timeout.
      const killed = (pm2Log(home).slice(logBefore.length).match(/still alive after \d+ms, sending SIGKILL/g) ?? []).length
      const note = `${killed} of 4 old workers SIGKILLed after kill_timeout` + (r.code === 0 ? '' : `; pm2 reload exited ${r.code}: ${r.stderr.slice(-300)}`)
      return { wallMs: r.ms, ok: r.code === 0, note }
    },
    teardown
  }
}

// ---------------------------------------------------------------------------
// (c) baton: a pool of 4, upgraded by a rollout through the admin API.
// `how` (the bad-version rows): more rollout config, the rollout's body, the
// status the rollout should end with, and how long after the upgrade began
// the load goes on (so that both bad-version runs count over the same time).

/** The bad version of the bad-version rows: v2 answers 500 to 20 % of its requests. */
const BAD_ENV = { ERROR_RATE: '0.2' }
export const BAD_CANARY = { steps: [{ weight: 5, pause: '10s' }, { weight: 25, pause: '10s' }, { weight: 50, pause: '10s' }], analysis: { minRequests: 100, maxErrorRate: '1%' } }
const BAD_HORIZON_MS = 30_000
/** A short drainTimeout for the bad-version rows, so that even the rolling update (WebSockets drain to it) ends within the horizon. */
export const BAD_DRAIN = '5s'

export async function baton (opts, how = {}) {
  const dir = tempDir('cmp-baton-')
  const base = 42000 + Math.floor(Math.random() * 70) * 100
  const config = {
    listen: [{ port: 0, host: HOST }],
    admin: { listen: `${HOST}:0` },
    pools: {
      web: {
        size: 4,
        version: 'v1',
        process: {
          command: `${process.execPath} ${APP}`,
          cwd: ROOT,
          env: { PORT: '{port}', APP_VERSION: '{version}' },
          ports: `${base}-${base + 99}`
        },
        readiness: { path: '/ready', interval: '100ms' },
        rollout: { maxSurge: 1, maxUnavailable: 0, minReady: '1s', drainTimeout: opts.drainTimeout, ...how.rollout }
      }
    }
  }
  const file = join(dir, 'baton.yaml')
  writeFileSync(file, stringify(config))
  const instancePids = new Set()
  let drainTimeouts = 0
  const proc = spawnChild('baton', process.execPath, [join(ROOT, 'dist/cli/main.js'), 'start', '-c', file], {
    onLine: v => {
      // Instances run in their own process group (detached): remember -PGID.
      if (v?.msg === 'instance spawned' && Number.isInteger(v.pid)) { instancePids.add(v.pid); rememberPid(-v.pid) }
      if (typeof v?.msg === 'string' && v.msg.startsWith('drain timed out')) drainTimeouts++
    }
  })
  const teardown = async () => {
    await proc.stop('SIGTERM', 60_000) // G6: baton stops its instances gracefully
    await sleep(200)
    for (const pid of instancePids) {
      if (alive(pid)) {
        process.stderr.write(`compare: baton left instance ${pid} running; killing its group\n`)
        try { process.kill(-pid, 'SIGKILL') } catch { /* gone */ }
      }
      forgetPid(-pid)
    }
    removeTempDir(dir)
  }
  let admin, port
  try {
    const line = await proc.waitLine(v => v?.msg === 'baton started', 60_000)
    port = line.listeners[0].port
    admin = `http://${HOST}:${line.admin.port}`
    await until('4 baton instances serving', async () => {
      const p = (await requestJson(`${admin}/v1/pools/web`)).body
      return p.instances.filter(i => i.state === 'serving' && i.version === 'v1').length === 4
    }, { timeoutMs: 60_000, everyMs: 100 })
  } catch (err) {
    await teardown()
    throw err
  }
  const expected = how.expectStatus ?? 'succeeded'
  return {
    host: HOST,
    port,
    horizonMs: how.horizonMs,
    async upgrade () {
      const t = performance.now()
      const drainsBefore = drainTimeouts
      const started = await requestJson(`${admin}/v1/pools/web/rollouts`, { method: 'POST', body: JSON.stringify(how.body ?? { version: 'v2' }) })
      if (started.status !== 202) return { wallMs: performance.now() - t, ok: false, note: `rollout refused: ${started.status} ${JSON.stringify(started.body)}` }
      const id = started.body.id
      const r = await until(`rollout ${id}`, async () => {
        const b = (await requestJson(`${admin}/v1/rollouts/${id}`)).body
        return b.status !== 'running' ? b : undefined
      }, { timeoutMs: 15 * 60_000, everyMs: 100 })
      const wallMs = Date.parse(r.finishedAt) - Date.parse(r.startedAt)
      const drains = `${drainTimeouts - drainsBefore} of 4 old instances reached drainTimeout (${how.rollout?.drainTimeout ?? opts.drainTimeout})`
      return {
        wallMs,
        ok: r.status === expected,
        status: r.status,
        note: r.status === 'succeeded' ? drains : `rollout ${r.status}: ${r.error}; ${drains}`,
        events: r.events
      }
    },
    teardown
  }
}

/** The bad version under a plain rolling update: nothing judges it, it ends up on every instance. */
export async function badRolling (opts) {
  return await baton(opts, { rollout: { drainTimeout: BAD_DRAIN }, body: { version: 'v2', env: BAD_ENV }, expectStatus: 'succeeded', horizonMs: BAD_HORIZON_MS })
}

/** The same bad version as a canary (5 %, 25 %, 50 %, 10 s each, maxErrorRate 1 %): judged after its first step and rolled back. */
export async function badCanary (opts) {
  return await baton(opts, { rollout: { drainTimeout: BAD_DRAIN, strategy: 'canary', canary: BAD_CANARY }, body: { version: 'v2', env: BAD_ENV }, expectStatus: 'rolled_back', horizonMs: BAD_HORIZON_MS })
}

export const WAYS = { naive, pm2, baton, 'bad-rolling': badRolling, 'bad-canary': badCanary }
/** Ways that upgrade to a bad version: shown in a table of their own. */
export const BAD_WAYS = new Set(['bad-rolling', 'bad-canary'])
export const LABELS = {
  naive: 'naive restart (1 process, SIGTERM + start)',
  pm2: 'pm2 reload (cluster of 4)',
  baton: 'baton rollout (pool of 4)',
  'bad-rolling': 'bad v2, baton rolling update',
  'bad-canary': 'bad v2, baton canary (5/25/50 %, maxErrorRate 1 %)'
}
