// Shared pieces of the benchmark (scripts/bench.mjs) and the profiler
// (scripts/bench/profile.mjs): /proc readers for CPU and memory, CPU pinning,
// the load generators (wrk, else autocannon) and the targets (backends, baton,
// http-proxy, undici; nginx and HAProxy are in nginx-haproxy.mjs, TLS
// certificates and h2load in tls.mjs). Child processes come from
// scripts/lib/procs.mjs.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { ROOT, rememberPid, sleep, spawnChild } from '../lib/procs.mjs'

export * from '../lib/procs.mjs'

export const HERE = fileURLToPath(new URL('.', import.meta.url))

/**
 * CPU pinning (--pin): servers (proxies and backends) on one set of CPUs,
 * the load generator on another, through taskset. Undefined: no pinning.
 */
let pinning
export function setPinning (p) { pinning = p }

/** spawnChild, under taskset when pinning is on; `role` is 'server' or 'load'. */
export function spawnPinned (role, name, cmd, args, opts) {
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

/** GET over HTTP/1.1; an https URL's certificate is not checked (the bench's is self-signed). */
export async function httpGet (url, timeoutMs = 5_000) {
  const tls = url.startsWith('https:')
  return await new Promise((resolve, reject) => {
    const req = (tls ? https : http).get(url, { agent: false, timeout: timeoutMs, ...(tls ? { rejectUnauthorized: false } : {}) }, res => {
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

/** baton's config; `tls` ({ cert, key } files): one TLS listener (HTTP/2 by ALPN, as by default) instead of plain HTTP. */
export function batonConfig (backendPorts, dir, accessLog, workers = 1, tls = undefined) {
  const file = join(dir, `baton-${workers}w${accessLog === undefined ? '' : '-log'}${tls === undefined ? '' : '-tls'}.yaml`)
  const certificates = tls === undefined ? '' : `, tls: { certificates: [{ cert: ${JSON.stringify(tls.cert)}, key: ${JSON.stringify(tls.key)} }] }`
  writeFileSync(file, [
    `workers: ${workers}`,
    `listen: [{ port: 0, host: 127.0.0.1${certificates} }]`,
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
 * access log file, `o.workers` proxy workers and `o.tls` (a TLS listener:
 * batonConfig). Its CPU is every process of
 * it: the supervisor, the controller and the workers.
 */
export async function startBaton (backendPorts, dir, nodeFlags = [], o = {}) {
  const cli = join(ROOT, 'dist/cli/main.js')
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build baton first (npx tsc -p tsconfig.json)`)
  const workers = o.workers ?? 1
  const config = batonConfig(backendPorts, dir, o.accessLog, workers, o.tls)
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
    url: `${o.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}/`,
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

/** "wrk 4.1.0" from `wrk --version` (which also prints its usage). */
export function wrkVersion () {
  const r = spawnSync(which('wrk') ?? 'wrk', ['--version'], { encoding: 'utf8' })
  const m = /wrk\s+(?:\S+\/)?(\d[\w.]*)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)
  return m === null ? 'wrk' : `wrk ${m[1]}`
}

// ---------------------------------------------------------------------------
// Numbers.

export function median (xs) {
  const v = xs.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}
