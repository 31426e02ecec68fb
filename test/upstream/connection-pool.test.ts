import { afterEach, describe, expect, it } from 'vitest'
import { RequestBody, type Connection, type ResponseHandler } from '../../src/upstream/http1/connection.js'
import type { UpstreamError } from '../../src/upstream/http1/errors.js'
import type { ResponseHead } from '../../src/upstream/http1/head.js'
import { ConnectionPool, type ConnectionWaiter } from '../../src/upstream/http1/pool.js'
import { OK, rawUpstream, within, type RawUpstream } from '../helpers/raw-upstream.js'

// The connection pool of one upstream, on real sockets to a raw server in
// the test process: the cap and the wait for a free connection, idle
// connections the upstream closes, and a graceful close.

/** One request through the pool, as an exchange would make it; resolves with the body or the error kind. */
class Request implements ConnectionWaiter, ResponseHandler {
  conn: Connection | undefined
  body = ''
  readonly done: Promise<string>
  private settle!: (outcome: string) => void
  constructor (private readonly pool: ConnectionPool, private readonly path: string) {
    this.done = new Promise(resolve => { this.settle = resolve })
    pool.acquire(this)
  }

  onConnection (c: Connection): void {
    this.conn = c
    c.request(this, `GET ${this.path} HTTP/1.1\r\nHost: x\r\n\r\n`, RequestBody.None, false, null)
  }

  onInformational (_head: ResponseHead): void {}
  onResponseHead (_head: ResponseHead): void {}
  onResponseData (chunk: Buffer): boolean { this.body += chunk.toString(); return true }
  onResponseEnd (): void { this.settle(this.body) }
  onUpstreamError (err: UpstreamError): void { this.settle(`error ${err.kind}`) }
  onUpstreamDrain (): void {}
}

let up: RawUpstream
let pool: ConnectionPool | undefined
afterEach(async () => {
  await pool?.destroy()
  pool = undefined
  await up.close()
})

const newPool = (o: { maxConnections?: number, connectTimeout?: number } = {}): ConnectionPool => {
  pool = new ConnectionPool({ host: '127.0.0.1', port: up.port, connectTimeout: o.connectTimeout ?? 1_000, upstreamTimeout: 5_000, keepAlive: 4_000, maxConnections: o.maxConnections ?? 10 })
  return pool
}

describe('an upstream connection pool', () => {
  it('opens at most maxConnections; a request beyond waits for the first one freed', async () => {
    up = await rawUpstream()
    const held: Array<() => void> = []
    up.scripts.set('/held', (_req, socket) => held.push(() => socket.write(OK)))
    const p = newPool({ maxConnections: 2 })
    const requests = [new Request(p, '/held'), new Request(p, '/held'), new Request(p, '/held')]
    await within((async () => { while (held.length < 2) await new Promise(resolve => setTimeout(resolve, 10)) })(), 3_000, 'two requests reaching the upstream')
    expect(p.size).toBe(2)
    expect(up.connections.length).toBe(2)
    expect(requests[2].conn).toBeUndefined()
    held.shift()?.()
    expect(await requests[0].done).toBe('ok')
    // The third request now has the connection the first one freed.
    await within((async () => { while (held.length < 2) await new Promise(resolve => setTimeout(resolve, 10)) })(), 3_000, 'the third request reaching the upstream')
    for (const release of held.splice(0)) release()
    expect(await Promise.all(requests.map(async r => await r.done))).toEqual(['ok', 'ok', 'ok'])
    expect(up.connections.length).toBe(2)
    expect(p.opened).toBe(2)
  })

  it('gives up on a wait for a free connection after the connect timeout: pool_full', async () => {
    up = await rawUpstream()
    up.scripts.set('/never', () => undefined)
    const p = newPool({ maxConnections: 1, connectTimeout: 200 })
    const first = new Request(p, '/never')
    const started = Date.now()
    const second = new Request(p, '/never')
    expect(await second.done).toBe('error pool_full')
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    first.conn?.abort()
    expect(await new Request(p, '/after').done).toBe('ok')
  })

  it('drops an idle connection the upstream closes, and opens a new one for the next request', async () => {
    up = await rawUpstream()
    const p = newPool()
    expect(await new Request(p, '/a').done).toBe('ok')
    const first = up.connections[0]
    first.socket.destroy()
    await within((async () => { while (p.size > 0) await new Promise(resolve => setTimeout(resolve, 10)) })(), 3_000, 'the pool noticing the close')
    expect(await new Request(p, '/b').done).toBe('ok')
    expect(up.connections.length).toBe(2)
  })

  it('reuses the idle connection used last (LIFO), so that a surplus goes idle and times out', async () => {
    up = await rawUpstream()
    const held: Array<{ conn: number, release: () => void }> = []
    up.scripts.set('/held', (req, socket) => held.push({ conn: req.conn.id, release: () => socket.write(OK) }))
    const p = newPool()
    const both = [new Request(p, '/held'), new Request(p, '/held')]
    await within((async () => { while (held.length < 2) await new Promise(resolve => setTimeout(resolve, 10)) })(), 3_000, 'both requests reaching the upstream')
    held[1].release()
    await new Promise(resolve => setTimeout(resolve, 20))
    held[0].release()
    await Promise.all(both.map(async r => await r.done))
    await new Request(p, '/x').done
    expect(up.requests.find(r => r.path === '/x')?.conn.id).toBe(held[0].conn)
  })

  it('closes idle connections at once on close(), a busy one when its response ends', async () => {
    up = await rawUpstream()
    const held: Array<{ conn: number, release: () => void }> = []
    up.scripts.set('/held', (req, socket) => held.push({ conn: req.conn.id, release: () => socket.write(OK) }))
    const p = newPool()
    const busy = new Request(p, '/held')
    const idle = new Request(p, '/idle')
    expect(await idle.done).toBe('ok')
    await within((async () => { while (held.length < 1) await new Promise(resolve => setTimeout(resolve, 10)) })(), 3_000, 'the held request reaching the upstream')
    const idleConn = up.requests.find(r => r.path === '/idle')?.conn
    expect(idleConn?.id).not.toBe(held[0].conn)
    let closed = false
    const closing = p.close().then(() => { closed = true })
    await within(idleConn?.closed ?? Promise.resolve(), 3_000, 'the idle connection closing')
    expect(closed).toBe(false)
    expect(await new Request(p, '/late').done).toBe('error closed')
    held[0].release()
    expect(await busy.done).toBe('ok')
    await within(closing, 3_000, 'close() resolving')
    expect(p.size).toBe(0)
  })
})
