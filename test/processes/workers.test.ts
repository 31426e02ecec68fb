import { Agent, request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProcessesView } from '../../src/supervisor/protocol.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { metric, sleep, waitFor } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, startRollout, waitPool, waitRollout } from '../helpers/pool.js'
import { connectionOwners } from '../helpers/sockets.js'

// SPEC §6: a supervisor, proxy workers sharing the listeners, one controller.
// What a client sees does not depend on the worker count; a worker or the
// controller that dies is replaced, and only the worker's own connections
// are lost.

async function processes (baton: RunningBaton): Promise<ProcessesView> {
  return await (await fetch(`${baton.adminUrl}/v1/processes`)).json() as ProcessesView
}

const servingWorkers = (p: ProcessesView): number[] => p.workers.filter(w => w.state === 'serving').map(w => w.pid)

/** One GET on `agent`; resolves with its status and the client port it went out from, or the error code. */
async function get (port: number, path: string, agent: Agent | false, headers: Record<string, string> = {}): Promise<{ status: number, clientPort: number, error?: string }> {
  return await new Promise(resolve => {
    let clientPort = 0
    const req = request({ host: '127.0.0.1', port, path, agent, headers }, res => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, clientPort }))
      res.on('error', err => resolve({ status: 0, clientPort, error: (err as NodeJS.ErrnoException).code ?? err.message }))
    })
    req.on('socket', s => { s.once('connect', () => { clientPort = s.localPort ?? 0 }); if (s.localPort !== undefined) clientPort = s.localPort })
    req.on('error', err => resolve({ status: 0, clientPort, error: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end()
  })
}

/**
 * Keep-alive connections opened one at a time (one request each) until every
 * worker holds at least `each` of them, or `max` were opened: the kernel
 * spreads accepts unevenly on a busy machine, but a worker that accepts
 * nothing at all is a failure. Returns the agents and which worker holds each.
 */
async function connectionsOnEveryWorker (port: number, workers: number[], each: number, max: number): Promise<{ agents: Agent[], owners: Map<number, number>, sent: number }> {
  const agents: Agent[] = []
  let owners = new Map<number, number>()
  let sent = 0
  const enough = (): boolean => workers.every(pid => [...owners.values()].filter(p => p === pid).length >= each)
  while (!enough() && agents.length < max) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    const r = await get(port, '/echo', agent)
    expect(r.status).toBe(200)
    sent++
    owners = connectionOwners(port, workers)
  }
  return { agents, owners, sent }
}

describe('two proxy workers', () => {
  let baton: RunningBaton
  beforeAll(async () => {
    baton = await startBaton({ ...demoConfig({ size: 2 }), workers: 2 })
  })
  afterAll(async () => {
    expect(await baton.kill('SIGTERM')).toBe(0)
  })

  it('both accept connections, and /metrics counts exactly the requests the client made', async () => {
    const workers = servingWorkers(await processes(baton))
    expect(workers).toHaveLength(2)
    const before = await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web' })
    const port = baton.ports[0]
    // Keep-alive connections until each worker holds 5, then 4 more requests on each at once, and 60 one-shot ones.
    const { agents, owners, sent: opened } = await connectionsOnEveryWorker(port, workers, 5, 200)
    let ok = opened
    let sent = opened
    for (let round = 0; round < 4; round++) {
      const answers = await Promise.all(agents.map(async a => await get(port, '/echo', a)))
      sent += answers.length
      ok += answers.filter(a => a.status === 200).length
    }
    const oneShot = await Promise.all(Array.from({ length: 60 }, async () => await get(port, '/echo', false, { connection: 'close' })))
    sent += oneShot.length
    ok += oneShot.filter(a => a.status === 200).length
    for (const a of agents) a.destroy()
    expect(ok).toBe(sent)
    const perWorker = workers.map(pid => [...owners.values()].filter(p => p === pid).length)
    console.log(`2 workers: ${sent} requests, ${ok} ok; ${agents.length} keep-alive connections opened one by one spread ${perWorker.join(' / ')}`)
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(agents.length)
    // Both workers carry traffic (the kernel spreads the accepts; README "Processes").
    for (const n of perWorker) expect(n).toBeGreaterThanOrEqual(5)
    // Counters add up over the workers: the total is exactly what the client sent.
    const total = await waitFor(async () => {
      const n = await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web' }) - before
      return n >= sent ? n : false
    }, 5_000)
    expect(total).toBe(sent)
    const inflight = await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })
    expect(inflight).toBe(0)
  })

  it('a SIGKILLed worker is replaced at once; only the requests on its own connections are lost', async () => {
    const port = baton.ports[0]
    const workers = servingWorkers(await processes(baton))
    expect(workers).toHaveLength(2)
    // Keep-alive clients, at least 4 on each worker, with slow requests always in flight, each on its own connection.
    const opened = await connectionsOnEveryWorker(port, workers, 4, 100)
    const clients = opened.agents.map(agent => ({ agent, results: [] as Array<{ status: number, clientPort: number, error?: string, at: number }> }))
    let stop = false
    const loops = clients.map(async c => {
      for (let n = 0; !stop && n < 500; n++) c.results.push({ ...await get(port, '/slow?ms=150', c.agent), at: Date.now() })
    })
    // One-shot connections alongside: never refused.
    const oneShots: Array<{ status: number, error?: string }> = []
    const oneShotLoop = (async () => { while (!stop) oneShots.push(await get(port, '/echo', false, { connection: 'close' })) })()
    await waitFor(() => clients.every(c => c.results.some(r => r.status === 200)), 10_000)
    const owners = connectionOwners(port, workers)
    const victim = workers[0]
    // The keep-alive clients' connections only: the one-shot ones come and go meanwhile.
    const keepAlive = new Set(clients.flatMap(c => c.results.map(r => r.clientPort)))
    const onWorker = (pid: number): Set<number> => new Set([...owners].filter(([client, p]) => p === pid && keepAlive.has(client)).map(([client]) => client))
    const victimClients = onWorker(victim)
    expect(victimClients.size).toBeGreaterThanOrEqual(4)
    expect(onWorker(workers[1]).size).toBeGreaterThanOrEqual(4)
    const killedAt = Date.now()
    process.kill(victim, 'SIGKILL')
    const replaced = await waitFor(async () => {
      const now = servingWorkers(await processes(baton))
      return now.length === 2 && !now.includes(victim) ? now : false
    }, 10_000)
    expect(replaced).toContain(workers[1])
    // Traffic goes on: every client gets answers again after the kill.
    await waitFor(() => clients.every(c => c.results.some(r => r.at > killedAt + 100 && r.status === 200)), 10_000)
    await sleep(500)
    stop = true
    await Promise.all([...loops, oneShotLoop])
    for (const c of clients) c.agent.destroy()

    const failed = clients.flatMap(c => c.results.filter(r => r.status !== 200))
    const all = clients.flatMap(c => c.results)
    console.log(`worker ${victim} SIGKILLed: ${all.length} keep-alive requests, ${failed.length} failed (${victimClients.size} of ${clients.length} connections were on it); ` +
      `${oneShots.length} one-shot requests, ${oneShots.filter(r => r.status !== 200).length} failed; workers ${workers.join(',')} → ${replaced.join(',')}`)
    // Lost: only what was on the killed worker's connections, at most one request each (one in flight per connection).
    for (const f of failed) expect(victimClients.has(f.clientPort), `failed on a connection of the surviving worker: ${JSON.stringify(f)}`).toBe(true)
    expect(failed.length).toBeLessThanOrEqual(victimClients.size)
    for (const f of failed) expect(['ECONNRESET', 'socket hang up']).toContain(f.error)
    const survivorRequests = clients.flatMap(c => c.results.filter(r => !victimClients.has(r.clientPort)))
    expect(survivorRequests.length).toBeGreaterThan(0)
    // No connection was ever refused: the listening socket outlived the worker.
    const refused = oneShots.filter(r => r.error === 'ECONNREFUSED')
    expect(refused).toEqual([])
    expect(oneShots.filter(r => r.status !== 200 && r.error !== 'ECONNRESET' && r.error !== 'socket hang up')).toEqual([])
    expect(oneShots.filter(r => r.status === 200).length).toBeGreaterThan(10)
    expect(baton.lines.some(l => l.includes('"worker exited; starting another"'))).toBe(true)
  }, 60_000)

  it('a SIGKILLed controller is replaced: the instances keep their pids, traffic goes on, a rollout after works', async () => {
    const health0 = await (await fetch(`${baton.adminUrl}/healthz`)).json() as { pid: number, generation: number }
    const pids0 = (await getPool(baton.adminUrl)).instances.filter(i => i.state === 'serving').map(i => i.pid).sort()
    expect(pids0).toHaveLength(2)
    const load = startLoad(baton.url, { keepAlive: 4, close: 2, posts: 1, slow: 2, slowMs: 1000 })
    await sleep(500)
    process.kill(health0.pid, 'SIGKILL')
    // The admin API comes back from the new controller (connections made meanwhile wait in the backlog).
    const health1 = await waitFor(async () => {
      const h = await fetch(`${baton.adminUrl}/healthz`).then(async r => await r.json() as { pid: number, generation: number }, () => undefined)
      return h !== undefined && h.pid !== health0.pid ? h : false
    }, 20_000, 100)
    expect(health1.generation).toBe(health0.generation)
    const p = await waitPool(baton.adminUrl, pool => pool.instances.filter(i => i.state === 'serving').length === 2, 20_000)
    expect(p.instances.filter(i => i.state === 'serving').map(i => i.pid).sort()).toEqual(pids0)
    await sleep(1_000)
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
    const result = await load.stop()
    console.log(`controller ${health0.pid} SIGKILLed → ${health1.pid}: ${result.sent} requests, ${result.failed} failed, instance pids ${pids0.join(',')} kept`)
    expect(result.failed, JSON.stringify(result.samples)).toBe(0)
    expect(result.slowOk).toBeGreaterThan(0)
    expect(result.versions.v2).toBeGreaterThan(0)
    expect(baton.lines.some(l => l.includes('"controller restarted; it adopted the running instances"'))).toBe(true)
  }, 60_000)
})
