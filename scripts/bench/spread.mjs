#!/usr/bin/env node
// node scripts/bench/spread.mjs [--workers N] [--connections C] [--trials T]
//
// How the kernel spreads new connections over baton's proxy workers, which
// all accept on the same listening socket (README "Processes"): T times, C
// connections are opened at once (one request each, kept open), and
// /proc tells which worker holds each; then they are closed. Run twice, with
// UV_TCP_SINGLE_ACCEPT=0 and =1 in the environment (baton passes it to its
// workers; 1 is its default), to compare.
import { Agent, request } from 'node:http'
import { parseArgs } from 'node:util'
import { BODY_100, connectionsPerPid, httpGet, installCleanup, startBackend, startBaton, stopAll, tempDir, waitHealthy } from './lib.mjs'

const { values } = parseArgs({ options: { workers: { type: 'string' }, connections: { type: 'string' }, trials: { type: 'string' } } })
const workers = Number(values.workers ?? 2)
const connections = Number(values.connections ?? 50)
const trials = Number(values.trials ?? 20)

async function get (port, agent) {
  await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, res => { res.resume(); res.on('end', resolve) })
    req.on('error', reject)
    req.end()
  })
}

async function main () {
  installCleanup('spread')
  const backend = await startBackend()
  await waitHealthy('backend', backend.url, BODY_100)
  const baton = await startBaton([backend.port], tempDir('baton-spread-'), [], { workers })
  const admin = baton.proc.lines.map(l => { try { return JSON.parse(l) } catch { return {} } }).find(l => l.msg === 'baton started').admin.port
  const pids = JSON.parse((await httpGet(`http://127.0.0.1:${admin}/v1/processes`)).body).workers.map(w => w.pid)
  const shares = []
  const rows = []
  for (let t = 0; t < trials; t++) {
    const agents = Array.from({ length: connections }, () => new Agent({ keepAlive: true, maxSockets: 1 }))
    await Promise.all(agents.map(async a => await get(baton.port, a)))
    const per = connectionsPerPid(baton.port, pids)
    rows.push(per.join('/'))
    shares.push(Math.max(...per) / Math.max(1, per.reduce((a, b) => a + b, 0)))
    for (const a of agents) a.destroy()
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  shares.sort((a, b) => a - b)
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length
  process.stdout.write(`UV_TCP_SINGLE_ACCEPT=${process.env.UV_TCP_SINGLE_ACCEPT ?? '(unset: baton sets 1)'}, ${workers} workers, ${connections} connections at once, ${trials} trials\n`)
  process.stdout.write(`per worker: ${rows.join('  ')}\n`)
  process.stdout.write(`busiest worker's share: mean ${(mean * 100).toFixed(0)}%, median ${(shares[shares.length >> 1] * 100).toFixed(0)}%, worst ${(shares[shares.length - 1] * 100).toFixed(0)}% (even: ${(100 / workers).toFixed(0)}%)\n`)
  await baton.stop()
  await stopAll()
}

main().then(() => process.exit(0), err => { process.stderr.write(`spread: ${err.stack ?? err}\n`); stopAll().finally(() => process.exit(1)) })
