#!/usr/bin/env node
// npm run demo:rollout — see a zero-downtime rollout with your own eyes.
// Starts baton with the demo pool (config/baton.yaml, on free ports), drives a
// realistic load of its own (keep-alive and close, GET and POST, slow
// requests, WebSockets) counting every request on the client side, rolls the
// pool from v1 to v2, then prints what the clients saw next to what baton
// counted, and writes the rollout's picture to rollout.svg (or --svg FILE).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parse, stringify } from 'yaml'
import WebSocket from 'ws'

const args = process.argv.slice(2)
const svgFile = args.includes('--svg') ? args[args.indexOf('--svg') + 1] : 'rollout.svg'
const root = new URL('..', import.meta.url).pathname

const config = parse(readFileSync(join(root, 'config/baton.yaml'), 'utf8'))
config.listen = [{ port: 0, host: '127.0.0.1' }]
config.admin = { listen: '127.0.0.1:0' }
config.pools.web.size = 4
// WebSockets hold an old instance until drainTimeout (G7): keep the demo short.
config.pools.web.rollout.drainTimeout = '5s'
const dir = mkdtempSync(join(tmpdir(), 'baton-demo-'))
const configFile = join(dir, 'baton.yaml')
writeFileSync(configFile, stringify(config))

const baton = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'start', '-c', configFile], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
const cleanup = () => { if (baton.exitCode === null) baton.kill('SIGTERM') }
process.on('exit', cleanup)
process.on('SIGINT', () => { cleanup(); process.exit(130) })

const started = await new Promise((resolve, reject) => {
  createInterface({ input: baton.stdout }).on('line', line => {
    try { const l = JSON.parse(line); if (l.msg === 'baton started') resolve(l) } catch { /* not JSON: an app's own output */ }
  })
  baton.once('exit', code => reject(new Error(`baton exited (${code}) before it started`)))
})
const url = `http://127.0.0.1:${started.listeners[0].port}`
const admin = `http://127.0.0.1:${started.admin.port}`
console.log(`baton is up: proxy ${url}, admin ${admin}; 4 instances of the demo app (v1)`)

// ── the client side: every request counted ───────────────────────────────
const client = { sent: 0, ok: 0, failed: 0, slowOk: 0, ws: 0, wsMessages: 0, wsAbnormal: 0, byKind: {} }
let running = true
const fail = kind => { client.failed++; client.byKind[kind] = (client.byKind[kind] ?? 0) + 1 }

function one (path, { agent, method = 'GET', body, close = false }) {
  client.sent++
  return new Promise(resolve => {
    const req = request(`${url}${path}`, { agent, method, headers: close ? { connection: 'close' } : {} }, res => {
      res.resume()
      res.on('end', () => { if (res.statusCode < 300) client.ok++; else fail(`status ${res.statusCode}`); resolve() })
      res.on('error', err => { fail(err.code ?? err.message); resolve() })
    })
    req.on('error', err => { fail(err.code ?? err.message); resolve() })
    req.end(body)
  })
}

async function worker (kind) {
  const agent = kind === 'close' ? false : new Agent({ keepAlive: true, maxSockets: 1 })
  const post = Buffer.alloc(4096, 97)
  while (running) {
    if (kind === 'get' || kind === 'close') await one('/', { agent, close: kind === 'close' })
    else if (kind === 'post') await one('/orders', { agent, method: 'POST', body: post })
    else if (kind === 'slow') { const before = client.ok; await one('/slow?ms=2000', { agent }); if (client.ok > before) client.slowOk++ }
  }
  if (agent) agent.destroy()
}

const sockets = new Set()
async function socket () {
  client.sent++ // the WebSocket handshake is a request too
  const ws = new WebSocket(url.replace('http', 'ws') + '/live')
  sockets.add(ws)
  await new Promise(resolve => { ws.once('open', resolve); ws.once('error', resolve) })
  if (ws.readyState !== WebSocket.OPEN) { fail('ws handshake'); return }
  client.ok++
  client.ws++
  const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('ping'), 200)
  ws.on('message', () => { client.wsMessages++ })
  await new Promise(resolve => ws.once('close', code => { if (running && code !== 1000 && code !== 1001 && code !== 1006) client.wsAbnormal++; resolve() }))
  clearInterval(timer)
  sockets.delete(ws)
  // A closed socket comes back, like a browser tab would.
  if (running) await socket()
}

const workers = [
  ...Array.from({ length: 8 }, () => worker('get')),
  ...Array.from({ length: 3 }, () => worker('close')),
  ...Array.from({ length: 3 }, () => worker('post')),
  ...Array.from({ length: 4 }, () => worker('slow')),
  ...Array.from({ length: 4 }, () => socket())
]

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
await sleep(4000)
const post = await fetch(`${admin}/v1/pools/web/rollouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":"v2"}' })
const rollout = await post.json()
console.log(`rollout ${rollout.id} started: v1 → v2`)
let status
let seen = 0
let lastPicture = ''
do {
  await sleep(250)
  status = await (await fetch(`${admin}/v1/rollouts/${rollout.id}`)).json()
  for (const e of status.events.slice(seen)) console.log(`  ${e.at.slice(11, 23)}  ${e.message}`)
  seen = status.events.length
  const pool = await (await fetch(`${admin}/v1/pools/web`)).json()
  const picture = pool.instances.map(i => `${i.version}:${i.state}`).join('  ')
  if (picture !== lastPicture) console.log(`  ${new Date().toISOString().slice(11, 23)}  ${picture}`)
  lastPicture = picture
} while (status.status === 'running')
await sleep(3000)
running = false
baton.stdout.resume()
for (const ws of sockets) ws.close(1000)
await Promise.race([Promise.all(workers), sleep(5000)])
await sleep(1200) // the last second rolls into baton's timeline

const report = (await (await fetch(`${admin}/v1/rollouts/${rollout.id}`)).json()).report
const batonTotal = report.phases.reduce((n, p) => n + p.requests, 0)
const batonFailed = report.phases.reduce((n, p) => n + p.failed, 0)
const row = (a, b, c) => console.log(`| ${a.padEnd(34)} | ${String(b).padStart(10)} | ${String(c).padStart(10)} |`)
console.log(`\nrollout ${status.status} in ${((Date.parse(status.finishedAt) - Date.parse(status.startedAt)) / 1000).toFixed(1)} s\n`)
row('', 'clients', 'baton')
console.log(`|${'-'.repeat(36)}|${'-'.repeat(12)}|${'-'.repeat(12)}|`)
row('requests (whole run)', client.sent, batonTotal)
row('failed', client.failed, batonFailed)
row('  of which 5xx from baton', '', report.failed.baton5xx)
row('  of which upstream errors', '', report.failed.upstreamFailed)
row('retried by baton (hidden)', '', report.retries)
row('slow (2 s) requests completed', client.slowOk, '')
row('WebSocket messages echoed', client.wsMessages, '')
for (const p of report.phases) {
  row(`p50 / p99 / max ms, ${p.name}`, '', p.p50 === null ? '-' : `${(p.p50 * 1000).toFixed(1)} / ${(p.p99 * 1000).toFixed(1)} / ${(p.max * 1000).toFixed(0)}`)
}
const svg = await (await fetch(`${admin}/v1/rollouts/${rollout.id}/report.svg`)).text()
writeFileSync(svgFile, svg)
console.log(`\nthe picture: ${svgFile}`)
const agree = client.sent === batonTotal && client.failed === batonFailed
console.log(agree ? 'clients and baton agree.' : `clients and baton DISAGREE (client failures: ${JSON.stringify(client.byKind)})`)
cleanup()
await new Promise(resolve => baton.once('exit', resolve))
process.exit(agree && client.failed === 0 ? 0 : 1)
