import { Agent } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, metric, raw, send, sleep } from '../helpers/http.js'

// proxy.timeouts: headers (slowloris cut with 408), idle (keep-alive client
// connections closed), upstream (504), connect (retried elsewhere, else 502).

describe('client and upstream timeouts', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, { proxy: { timeouts: { headers: '1s', idle: '1s', upstream: '500ms' }, retries: 2 } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('cuts a slowloris head (one byte every 200 ms) with 408 soon after headers', async () => {
    const head = 'GET /echo HTTP/1.1\r\nHost: web\r\nX-Slow: ' + 'a'.repeat(100)
    const r = await raw(baton.ports[0], head.split(''), { gapMs: 200 })
    console.log(`slowloris cut after ${r.ms} ms (headers: 1s)`)
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([408])
    expect(r.ms).toBeGreaterThanOrEqual(900)
    expect(r.ms).toBeLessThan(3_500)
    const stats = await (await fetch(`http://${backend.address}/admin/stats`)).json() as { paths: Record<string, number> }
    expect(stats.paths['/echo']).toBeUndefined()
  })

  it('closes a connection that never sends a byte once headers passes', async () => {
    const r = await raw(baton.ports[0], [], { waitMs: 5_000 })
    console.log(`silent connection closed after ${r.ms} ms`)
    expect(r.closed).toBe(true)
    expect(r.ms).toBeLessThan(3_500)
  })

  it('closes an idle keep-alive client connection after idle, and not before', async () => {
    const sock = connect(baton.ports[0], '127.0.0.1')
    await new Promise(resolve => sock.once('connect', resolve))
    const closed = new Promise<number>(resolve => sock.once('close', () => resolve(Date.now())))
    let answered = 0
    sock.on('data', () => { answered = Date.now() })
    sock.write('GET /echo HTTP/1.1\r\nHost: web\r\n\r\n')
    await sleep(500)
    // Still open inside `idle`: a second request on it works.
    sock.write('GET /echo HTTP/1.1\r\nHost: web\r\n\r\n')
    const at = await closed
    const idleFor = at - answered
    // Node closes 1 s after the advertised `Keep-Alive: timeout=1`, so that clients stop first.
    console.log(`idle keep-alive connection closed ${idleFor} ms after its last answer (idle: 1s)`)
    expect(answered).toBeGreaterThan(0)
    expect(idleFor).toBeGreaterThanOrEqual(900)
    expect(idleFor).toBeLessThan(4_000)
  })

  it('answers 504 when the upstream does not answer within upstream, without retrying', async () => {
    const started = Date.now()
    const r = await send(`${baton.url}/slow?ms=3000`)
    const took = Date.now() - started
    console.log(`504 after ${took} ms (upstream: 500ms)`)
    expect(r.status).toBe(504)
    expect(r.text).toBe('baton: the upstream did not answer in time\n')
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(2_500)
    expect(await metric(baton.adminUrl, 'baton_retries_total', { pool: 'web' })).toBe(0)
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web', kind: 'timeout' })).toBe(1)
    expect(await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '504' })).toBe(1)
  })

  it('cuts a response whose body stalls longer than upstream', async () => {
    const outcome = await send(`${baton.url}/stall?ms=3000`).then(r => `status ${r.status} body ${r.text}`, (err: Error) => `error ${err.message}`)
    // The head went out already: the only honest signal is a cut connection.
    expect(outcome).toMatch(/^error /)
    expect((await send(`${baton.url}/slow?ms=100`)).status).toBe(200)
  })

  it('lets a slow answer inside upstream through', async () => {
    expect((await send(`${baton.url}/slow?ms=300`)).text).toBe('slow a')
  })
})

describe('connect timeouts', () => {
  // A backend with a listen backlog of 1, stopped with SIGSTOP, whose accept
  // queue the test fills: further connects get no SYN-ACK and hang.
  let stuck: Backend
  let live: Backend
  const fillers: Socket[] = []
  let baton: RunningBaton
  let baton0: RunningBaton
  beforeAll(async () => {
    [stuck, live] = await Promise.all([startBackend({ NAME: 'stuck', BACKLOG: '1' }), startBackend({ NAME: 'live' })])
    process.kill(stuck.pid, 'SIGSTOP')
    for (let i = 0; i < 4; i++) {
      const s = connect(stuck.port, '127.0.0.1')
      s.on('error', () => undefined)
      fillers.push(s)
    }
    await sleep(200)
    const pools = { web: { servers: [`127.0.0.1:${stuck.port}`, live.address], balance: 'round-robin' } }
    ;[baton, baton0] = await Promise.all([
      startBaton(config(pools, { proxy: { timeouts: { connect: '300ms' }, retries: 2 } })),
      startBaton(config(pools, { proxy: { timeouts: { connect: '300ms' }, retries: 0 } }))
    ])
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    expect(await baton0.kill()).toBe(0)
    for (const s of fillers) s.destroy()
    await Promise.all([stuck.kill('SIGKILL'), live.kill()])
  })

  it('retries a connect that times out on the other server', async () => {
    const started = Date.now()
    // One connection: one worker's round-robin (each worker takes its own turns, SPEC §6).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < 6; i++) {
      const r = await send(`${baton.url}/whoami`, { agent })
      expect(r.status).toBe(200)
      expect(r.text).toBe('live')
    }
    agent.destroy()
    console.log(`6 requests with a hanging server in the pool: ${Date.now() - started} ms`)
    // Round-robin alternates: the retries do not make the hanging server everyone's first try.
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web', kind: 'connect_timeout' })).toBe(3)
    expect(await metric(baton.adminUrl, 'baton_retries_total', { pool: 'web' })).toBe(3)
  })

  it('answers 502 for a connect that times out when retries is 0', async () => {
    const statuses: number[] = []
    let slowest = 0
    // One connection: one worker's round-robin (each worker takes its own turns, SPEC §6).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < 4; i++) {
      const started = Date.now()
      statuses.push((await send(`${baton0.url}/whoami`, { agent })).status)
      slowest = Math.max(slowest, Date.now() - started)
    }
    agent.destroy()
    expect(statuses.sort()).toEqual([200, 200, 502, 502])
    expect(slowest).toBeLessThan(2_000)
  })
})

describe('shutdown with idle client connections', () => {
  it('does not wait for connections that sent nothing or sit idle between requests', async () => {
    const backend = await startBackend({ NAME: 'a' })
    const baton = await startBaton(config({ web: { servers: [backend.address] } }))
    try {
      const silent = connect(baton.ports[0], '127.0.0.1')
      const idle = connect(baton.ports[0], '127.0.0.1')
      silent.on('error', () => undefined)
      idle.on('error', () => undefined)
      await new Promise(resolve => idle.once('connect', resolve))
      idle.write('GET /echo HTTP/1.1\r\nHost: web\r\n\r\n')
      await new Promise(resolve => idle.once('data', resolve))
      const started = Date.now()
      expect(await baton.kill('SIGTERM')).toBe(0)
      const took = Date.now() - started
      console.log(`SIGTERM with a silent and an idle connection open: exited in ${took} ms`)
      expect(took).toBeLessThan(3_000)
      silent.destroy()
      idle.destroy()
    } finally {
      await baton.kill('SIGKILL')
      await backend.kill()
    }
  })
})
