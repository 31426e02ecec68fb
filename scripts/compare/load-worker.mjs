// The client load of the comparison, run in a worker thread so that the
// orchestration in the main thread never delays it. It counts every request
// it makes, and how each one ended.
//
// Kinds (each a number of concurrent loops, each loop one request at a time,
// `thinkMs` between two):
//   keepalive  GET / on a shared keep-alive agent
//   close      GET / with Connection: close, a new connection each time
//   post       POST / with a `postBytes` body (keep-alive); the app must echo the size
//   slow       GET /slow?ms=`slowMs` (keep-alive); a failure of one that had been in
//              flight >= 200 ms (so the app had it) is also a "cut long request"
//   ws         WebSocket clients sending a message every `wsEveryMs` and expecting
//              its echo; after any close they reconnect (after `wsReconnectMs`)
//
// A request fails on: a non-2xx status, a socket error (ECONNREFUSED,
// ECONNRESET, "socket hang up", ...), a response cut before its end, a body
// that is not the app's, or no answer within `timeoutMs`. A WebSocket counts
// a failure for a connection attempt that does not open, and for a close that
// is not a close frame with 1000/1001 (the usual 1006: the TCP connection just
// died); 1001 "going away" closes are counted apart, and messages sent but not
// echoed when a socket closed are "lost messages".
//
// Requests are filed under the phase (warmup, steady, upgrade, after) in which
// they started; WebSocket events under the phase in which they happened.
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import WebSocket from 'ws'

const o = workerData
const PHASES = ['warmup', 'steady', 'upgrade', 'after']
const HTTP_KINDS = ['keepalive', 'close', 'post', 'slow']
const SHORT_KINDS = new Set(['keepalive', 'close', 'post'])
const CUT_AFTER_MS = 200
const MAX_FAILURE_DETAILS = 1000

let phase = 'warmup'
let stopping = false
let finalAbort = false

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// versions: successful answers by x-app-version; met: every answer the app gave (any status), by version.
function emptyKind () { return { sent: 0, ok: 0, failed: 0, cut: 0, lat: [], versions: {}, met: {} } }
const stats = Object.fromEntries(PHASES.map(p => [p, Object.fromEntries([...HTTP_KINDS, 'ws'].map(k => [k, emptyKind()]))]))
const ws = Object.fromEntries(PHASES.map(p => [p, { connects: 0, opened: 0, connectFailed: 0, abnormal: 0, goingAway: 0, sent: 0, echoed: 0, lost: 0, rtt: [] }]))
const failures = []
const causes = {}

function fail (kind, ph, cause, extra = {}) {
  const key = `${kind}: ${cause}`
  causes[key] ??= {}
  causes[key][ph] = (causes[key][ph] ?? 0) + 1
  if (failures.length < MAX_FAILURE_DETAILS) failures.push({ kind, phase: ph, at: Date.now(), cause, ...extra })
}

function causeOf (err) {
  if (finalAbort) return 'still unanswered at the end'
  if (err === undefined || err === null) return 'unknown'
  if (err.code === 'ECONNRESET' && /socket hang up/.test(err.message)) return 'ECONNRESET (socket hang up)'
  if (typeof err.code === 'string') return err.code
  return err.message
}

const agents = {
  keepalive: new http.Agent({ keepAlive: true, maxSockets: o.mix.keepalive }),
  post: new http.Agent({ keepAlive: true, maxSockets: o.mix.post }),
  slow: new http.Agent({ keepAlive: true, maxSockets: o.mix.slow })
}
const postBody = Buffer.alloc(o.postBytes, 'x')

/** One HTTP request; resolves with { ok, cause?, status?, version? } (never rejects). */
function httpOnce (kind) {
  return new Promise(resolve => {
    let settled = false
    const settle = r => { if (!settled) { settled = true; resolve(r) } }
    const headers = {}
    let path = '/'
    let method = 'GET'
    let agent = agents[kind]
    if (kind === 'close') { agent = false; headers.connection = 'close' }
    if (kind === 'post') { method = 'POST'; headers['content-type'] = 'application/octet-stream'; headers['content-length'] = String(postBody.length) }
    if (kind === 'slow') path = `/slow?ms=${o.slowMs}`
    const req = http.request({ host: o.host, port: o.port, method, path, agent, headers, timeout: o.timeoutMs }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('error', err => settle({ ok: false, cause: causeOf(err), status: res.statusCode }))
      res.on('close', () => { if (!res.complete) settle({ ok: false, cause: finalAbort ? 'still unanswered at the end' : 'response cut before its end', status: res.statusCode }) })
      res.on('end', () => {
        const status = res.statusCode
        const version = String(res.headers['x-app-version'] ?? '?')
        if (status < 200 || status > 299) return settle({ ok: false, cause: `HTTP ${status}`, status, version })
        const body = Buffer.concat(chunks).toString('utf8')
        if (kind === 'slow') {
          if (!body.startsWith(`slow answer after ${o.slowMs} ms`)) return settle({ ok: false, cause: 'bad body', status, version })
        } else {
          let j
          try { j = JSON.parse(body) } catch { return settle({ ok: false, cause: 'bad body', status, version }) }
          if (j.app !== 'baton-demo' || (kind === 'post' && j.size !== o.postBytes)) return settle({ ok: false, cause: 'bad body', status, version })
        }
        settle({ ok: true, status, version })
      })
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' })))
    req.on('error', err => settle({ ok: false, cause: causeOf(err) }))
    req.end(kind === 'post' ? postBody : undefined)
  })
}

async function httpLoop (kind) {
  while (!stopping) {
    const ph = phase
    const t = performance.now()
    const r = await httpOnce(kind)
    const ms = performance.now() - t
    const s = stats[ph][kind]
    s.sent++
    if (r.version !== undefined) s.met[r.version] = (s.met[r.version] ?? 0) + 1
    if (r.ok) {
      s.ok++
      s.lat.push(ms)
      s.versions[r.version] = (s.versions[r.version] ?? 0) + 1
    } else {
      s.failed++
      const cut = kind === 'slow' && ms >= CUT_AFTER_MS
      if (cut) s.cut++
      fail(kind, ph, r.cause, { ms: Math.round(ms), cut, status: r.status })
    }
    if (!stopping) await sleep(o.thinkMs)
  }
}

/** A WebSocket client that keeps one connection open, reconnecting after any close. */
function wsLoop () {
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  let sock
  let seq = 0
  const pending = new Map()
  let timer

  const connect = () => {
    if (stopping) { resolveDone(); return }
    const ph = phase
    ws[ph].connects++
    stats[ph].ws.sent++
    let opened = false
    let lastErr
    sock = new WebSocket(`ws://${o.host}:${o.port}/`, { handshakeTimeout: 5_000 })
    sock.on('open', () => {
      opened = true
      ws[phase].opened++
      stats[ph].ws.ok++
      timer = setInterval(() => {
        if (sock.readyState !== WebSocket.OPEN) return
        const msg = `m${++seq}`
        pending.set(msg, performance.now())
        ws[phase].sent++
        sock.send(msg)
      }, o.wsEveryMs)
    })
    sock.on('message', data => {
      const s = data.toString()
      if (s.startsWith('hello from ')) {
        const v = s.slice('hello from '.length)
        stats[phase].ws.versions[v] = (stats[phase].ws.versions[v] ?? 0) + 1
        return
      }
      const t = pending.get(s)
      if (t === undefined) return
      pending.delete(s)
      ws[phase].echoed++
      ws[phase].rtt.push(performance.now() - t)
    })
    sock.on('error', err => { lastErr = err })
    sock.on('close', (code, reason) => {
      clearInterval(timer)
      const now = phase
      ws[now].lost += pending.size
      const lost = pending.size
      pending.clear()
      if (stopping) { resolveDone(); return }
      if (!opened) {
        ws[now].connectFailed++
        stats[ph].ws.failed++
        fail('ws', now, `connect failed: ${causeOf(lastErr)}`)
      } else if (code === 1000 || code === 1001) {
        ws[now].goingAway++
      } else {
        ws[now].abnormal++
        stats[now].ws.failed++
        fail('ws', now, `closed abnormally (${code}${lastErr !== undefined ? ` ${causeOf(lastErr)}` : ''})`, { lost, reason: reason.toString() })
      }
      setTimeout(connect, o.wsReconnectMs)
    })
  }
  connect()
  return {
    done,
    async stop () {
      // Let the last echoes come back, then close cleanly.
      const until = Date.now() + 1_000
      clearInterval(timer)
      while (pending.size > 0 && Date.now() < until) await sleep(20)
      if (sock.readyState === WebSocket.OPEN) sock.close(1000, 'done')
      else if (sock.readyState === WebSocket.CONNECTING) sock.terminate()
      else resolveDone()
    }
  }
}

const loops = []
for (const kind of HTTP_KINDS) for (let i = 0; i < o.mix[kind]; i++) loops.push(httpLoop(kind))
const wsClients = []
for (let i = 0; i < o.mix.ws; i++) wsClients.push(wsLoop())

function quantile (sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}

function summary () {
  const phases = {}
  for (const p of PHASES) {
    const kinds = {}
    const short = []
    for (const k of [...HTTP_KINDS, 'ws']) {
      const s = stats[p][k]
      const sorted = s.lat.sort((a, b) => a - b)
      if (SHORT_KINDS.has(k)) short.push(...sorted)
      kinds[k] = { sent: s.sent, ok: s.ok, failed: s.failed, cut: s.cut, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? null, versions: s.versions, met: s.met }
    }
    short.sort((a, b) => a - b)
    const w = ws[p]
    const rtt = w.rtt.sort((a, b) => a - b)
    phases[p] = {
      kinds,
      short: { n: short.length, p50: quantile(short, 0.5), p99: quantile(short, 0.99), max: short.at(-1) ?? null },
      ws: { ...w, rtt: undefined, rttP99: quantile(rtt, 0.99) }
    }
  }
  return { phases, causes, failures }
}

parentPort.on('message', async m => {
  if (m.type === 'phase') { phase = m.phase; return }
  if (m.type === 'stop') {
    stopping = true
    await Promise.all(wsClients.map(c => c.stop()))
    const all = Promise.all([...loops, ...wsClients.map(c => c.done)])
    const capped = await Promise.race([all.then(() => true), sleep(o.timeoutMs + 5_000).then(() => false)])
    if (!capped) {
      finalAbort = true
      for (const a of Object.values(agents)) a.destroy()
      await Promise.race([all, sleep(2_000)])
    }
    for (const a of Object.values(agents)) a.destroy()
    parentPort.postMessage({ type: 'result', result: summary() })
  }
})
parentPort.postMessage({ type: 'started', at: Date.now() })
