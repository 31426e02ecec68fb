import { Agent } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBaton, TEST_WORKERS, type RunningBaton } from '../helpers/baton.js'
import { config, metric, raw, send, waitFor, type Reply } from '../helpers/http.js'
import { OK, rawUpstream, within, type RawConnection, type RawUpstream } from '../helpers/raw-upstream.js'

// baton's upstream client parsed like a parser: an upstream on a raw TCP
// server sends responses that break HTTP/1.1 framing. Each is answered 502
// (or cut, when part of it went out already), the connection it came on is
// closed by baton and never used again, and the next request is served on
// a new connection. Then what a well-behaved upstream gets: its connections
// reused, its Keep-Alive hint honoured, a stale connection retried.

let up: RawUpstream
let baton: RunningBaton

beforeAll(async () => {
  up = await rawUpstream()
  baton = await startBaton(config({ web: { servers: [up.address] } }, { proxy: { timeouts: { upstream: '2s' } } }))
})
afterAll(async () => {
  expect(await baton.kill()).toBe(0)
  await up.close()
})

/** The connection that carried the last request for `path`. */
const connOf = (path: string): RawConnection => {
  const r = up.requests.filter(q => q.path === path).at(-1)
  if (r === undefined) throw new Error(`the upstream never got ${path}`)
  return r.conn
}

/** After a refused response: its connection is closed by baton, and the next request is served on another one. */
async function discardedAndServing (path: string): Promise<void> {
  const conn = connOf(path)
  await within(conn.closed, 3_000, `baton closing the connection that carried ${path}`)
  const next = await send(`${baton.url}/ok-after${path}`)
  expect(next.status).toBe(200)
  expect(next.text).toBe('ok')
  expect(connOf(`/ok-after${path}`).id).not.toBe(conn.id)
}

const refused: Array<[string, string]> = [
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['two equal Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok'],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nokokoko'],
  ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok'],
  ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok'],
  ['Transfer-Encoding: gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx'],
  ['Transfer-Encoding: identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok'],
  ['a chunk size that is no hex number', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n'],
  ['a chunk size line ended by a bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n'],
  ['bytes after the last chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['bytes after a Content-Length body', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['a body after a 204', 'HTTP/1.1 204 No Content\r\n\r\nsurprise'],
  ['a head in bare LFs', 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok'],
  ['a folded header (obs-fold)', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok'],
  ['a space before the colon', 'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok'],
  ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok'],
  ['a head over 64 KiB', `HTTP/1.1 200 OK\r\n${Array.from({ length: 70 }, (_, i) => `X-Filler-${i}: ${'f'.repeat(1_000)}\r\n`).join('')}Content-Length: 2\r\n\r\nok`],
  ['an HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['a status that is not three digits', 'HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['no status line at all', 'hello there\r\n\r\n'],
  ['101 to a request that asked for no upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n']
]

describe('responses that break HTTP/1.1 framing (G8, upstream side)', () => {
  refused.forEach(([name, bytes], i) => {
    it(`${name} → 502, the connection discarded, the next request served`, async () => {
      const path = `/refused/${i}`
      up.scripts.set(path, (_req, socket) => socket.write(Buffer.from(bytes, 'latin1')))
      const r = await send(`${baton.url}${path}`)
      expect(r.status, r.text).toBe(502)
      expect(r.text).toMatch(/^baton: the upstream failed \(protocol\)\n$/)
      await discardedAndServing(path)
    })
  })

  it('a chunk broken after the head went out → the answer cut, the connection discarded', async () => {
    up.scripts.set('/cut/chunk', (_req, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
      setTimeout(() => socket.write('zz\r\nmore\r\n0\r\n\r\n'), 50)
    })
    const outcome = await send(`${baton.url}/cut/chunk`).then((r: Reply) => `status ${r.status}`, (e: Error) => `error ${e.message}`)
    expect(outcome).toMatch(/^error /)
    await discardedAndServing('/cut/chunk')
  })

  it('an upstream that closes in the middle of a Content-Length body → the answer cut', async () => {
    up.scripts.set('/cut/short', (_req, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello') })
    const outcome = await send(`${baton.url}/cut/short`).then((r: Reply) => `status ${r.status}`, (e: Error) => `error ${e.message}`)
    expect(outcome).toMatch(/^error /)
    await discardedAndServing('/cut/short')
  })

  it('bytes on an idle connection after a complete response: that connection is closed, never reused', async () => {
    up.scripts.set('/late-bytes', (_req, socket) => {
      socket.write(OK)
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'), 50)
    })
    const r = await send(`${baton.url}/late-bytes`)
    expect(r.text).toBe('ok')
    await discardedAndServing('/late-bytes')
  })

  it('counts each refusal as an upstream error of kind protocol', async () => {
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web', kind: 'protocol' })).toBeGreaterThanOrEqual(refused.length + 1)
  })
})

describe('responses a proxy must read right', () => {
  it('a close-delimited body reaches the client whole; its connection is not reused', async () => {
    const body = 'x'.repeat(100_000)
    up.scripts.set('/close-delimited', (_req, socket) => { socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n${body}`) })
    const r = await send(`${baton.url}/close-delimited`)
    expect(r.status).toBe(200)
    expect(r.text).toBe(body)
    await discardedAndServing('/close-delimited')
  })

  it('HEAD, 204 and 304 end at their head, and the connection carries the next request', async () => {
    up.scripts.set('/head', (_req, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'))
    up.scripts.set('/204', (_req, socket) => socket.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n'))
    up.scripts.set('/304', (_req, socket) => socket.write('HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 1000\r\n\r\n'))
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const head = await send(`${baton.url}/head`, { method: 'HEAD', agent })
      expect(head.headers['content-length']).toBe('1000')
      expect((await send(`${baton.url}/204`, { agent })).status).toBe(204)
      expect((await send(`${baton.url}/304`, { agent })).status).toBe(304)
      expect((await send(`${baton.url}/after-bodiless`, { agent })).text).toBe('ok')
    } finally {
      agent.destroy()
    }
    const ids = new Set(['/head', '/204', '/304', '/after-bodiless'].map(p => connOf(p).id))
    expect(ids.size).toBe(1)
  })

  it('skips 100 Continue, passes 103 Early Hints on, then the final answer', async () => {
    up.scripts.set('/continue', (_req, socket) => socket.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`))
    up.scripts.set('/early', (_req, socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n')
      setTimeout(() => socket.write(OK), 20)
    })
    const cont = await raw(baton.ports[0], 'GET /continue HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n')
    expect(cont.statuses).toEqual([200])
    const early = await raw(baton.ports[0], 'GET /early HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n')
    expect(early.statuses).toEqual([103, 200])
    expect(early.data).toMatch(/^HTTP\/1\.1 103 Early Hints\r\nLink: <\/style\.css>; rel=preload; as=style\r\n\r\n/)
  })

  it('passes trailers on to a client that accepts them (TE: trailers), and only to it', async () => {
    up.scripts.set('/trailers', (_req, socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: abc\r\nContent-Length: 99\r\n\r\n'))
    const wants = await send(`${baton.url}/trailers`, { headers: { te: 'trailers' } })
    expect(wants.text).toBe('ok')
    expect(wants.trailers).toEqual({ 'x-sum': 'abc' })
    const not = await send(`${baton.url}/trailers`)
    expect(not.text).toBe('ok')
    expect(not.trailers).toEqual({})
  })
})

describe('connections to a well-behaved upstream', () => {
  it('are reused: a steady load opens no new connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 10 })
    const load = async (ms: number): Promise<number> => {
      const until = Date.now() + ms
      let n = 0
      await Promise.all(Array.from({ length: 10 }, async () => {
        while (Date.now() < until) {
          const r = await send(`${baton.url}/steady`, { agent })
          expect(r.text).toBe('ok')
          n++
        }
      }))
      return n
    }
    try {
      await load(1_000)
      const opened = up.connections.length
      const open = up.connections.filter(c => !c.socket.destroyed).length
      const n = await load(1_500)
      console.log(`steady load: ${n} requests with 10 clients, ${up.connections.length - opened} new upstream connections (${open} open before)`)
      expect(n).toBeGreaterThan(100)
      expect(up.connections.length - opened).toBe(0)
      // One per client connection at most, and another worker may still hold an idle one from before.
      expect(open).toBeLessThanOrEqual(10 + (TEST_WORKERS ?? 1) - 1)
    } finally {
      agent.destroy()
    }
  })

  it('honour the upstream\'s Keep-Alive: timeout=N less a second, and close idle ones past it', async () => {
    up.scripts.set('/hint/2', (_req, socket) => socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok'))
    up.scripts.set('/hint/5', (_req, socket) => socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok'))
    up.scripts.set('/hint/1', (_req, socket) => socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'))
    // One client connection, so one proxy worker and its upstream connections, whatever the worker count.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    // timeout=1: a second's margin leaves nothing; the connection closes at once.
    await send(`${baton.url}/hint/1`, { agent })
    await within(connOf('/hint/1').closed, 1_000, 'baton closing a connection whose upstream keeps it 1 s')
    // timeout=2: reusable for 1 s. After 1.3 s, a new connection; the old one is closed by then.
    await send(`${baton.url}/hint/2`, { agent })
    const first = connOf('/hint/2')
    await new Promise(resolve => setTimeout(resolve, 1_300))
    await send(`${baton.url}/hint/5`, { agent })
    expect(connOf('/hint/5').id).not.toBe(first.id)
    await within(first.closed, 2_000, 'baton closing an idle connection past its hint')
    // timeout=5: still reused 1.3 s later.
    const fiveSeconds = connOf('/hint/5')
    await new Promise(resolve => setTimeout(resolve, 1_300))
    await send(`${baton.url}/after-hint`, { agent })
    expect(connOf('/after-hint').id).toBe(fiveSeconds.id)
    agent.destroy()
  })

  it('a client that leaves mid-download: a short rest of the response is read and dropped, and the connection kept', async () => {
    let sendRest: (() => void) | undefined
    up.scripts.set('/download', (_req, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 131072\r\n\r\n${'a'.repeat(65_536)}`)
      sendRest = () => socket.write('b'.repeat(65_536))
    })
    const r = await raw(baton.ports[0], 'GET /download HTTP/1.1\r\nHost: web\r\n\r\n', { waitMs: 300 })
    expect(r.closed).toBe(false)
    expect(r.statuses).toEqual([200])
    const conn = connOf('/download')
    sendRest?.()
    // Once the rest is read, the connection is the pool's last idle one: the next request takes it.
    await waitFor(async () => (await send(`${baton.url}/after-download`)).text === 'ok' && connOf('/after-download').id === conn.id, 5_000)
    expect(conn.socket.destroyed).toBe(false)
  })

  it('a reused connection the upstream closed under a GET: retried on a new one (G4); a POST is not repeated', async () => {
    // The upstream closes a kept connection as the next request arrives on it,
    // the race every keep-alive client meets.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const closeOnReuse = (path: string): void => {
      const served = new Set<number>()
      up.scripts.set(path, (req, socket) => {
        if (served.has(req.conn.id)) { socket.destroy(); return }
        served.add(req.conn.id)
        socket.write(OK)
      })
    }
    try {
      closeOnReuse('/stale/get')
      const warm = await send(`${baton.url}/stale/get`, { agent })
      expect(warm.text).toBe('ok')
      const conn = connOf('/stale/get')
      const retries = await metric(baton.adminUrl, 'baton_retries_total', { pool: 'web' })
      const r = await send(`${baton.url}/stale/get`, { agent })
      expect(r.status).toBe(200)
      expect(connOf('/stale/get').id).not.toBe(conn.id)
      expect(await metric(baton.adminUrl, 'baton_retries_total', { pool: 'web' })).toBe(retries + 1)

      closeOnReuse('/stale/post')
      expect((await send(`${baton.url}/stale/post`, { method: 'POST', body: 'first', agent })).status).toBe(200)
      const seen = up.requests.filter(q => q.path === '/stale/post').length
      const post = await send(`${baton.url}/stale/post`, { method: 'POST', body: 'charge the card', agent })
      expect(post.status).toBe(502)
      expect(up.requests.filter(q => q.path === '/stale/post').length).toBe(seen + 1)
    } finally {
      agent.destroy()
    }
  })
})
