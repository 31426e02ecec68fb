import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, instances, raw, send, waitFor } from '../helpers/http.js'

// G8: malformed and ambiguous requests get a clear 4xx on a closed connection,
// never reach the backend, and baton keeps serving. Every shape below carries
// a second request (`GET /smuggled`) that a confused parser would forward.

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n'

describe('request smuggling and malformed requests (G8)', () => {
  let backend: Backend
  let baton: RunningBaton
  let port: number

  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, { proxy: { maxHeaderSize: 8192 } }))
    port = baton.ports[0]
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  async function stats (): Promise<{ total: number, paths: Record<string, number> }> {
    return await (await fetch(`http://${backend.address}/admin/stats`)).json() as { total: number, paths: Record<string, number> }
  }

  /** Sends `bytes`, expects one `status` answer on a connection baton then closes, nothing at the backend, and baton still serving. */
  async function refused (bytes: string, status: number): Promise<string> {
    const before = await stats()
    const r = await raw(port, bytes)
    expect(r.closed, `connection left open; got: ${r.data}`).toBe(true)
    expect(r.statuses, r.data).toEqual([status])
    expect(r.data).toMatch(/^HTTP\/1\.1 4\d\d [A-Za-z ]+\r\n/)
    expect(r.data).toMatch(/\r\nconnection: close\r\n/i)
    const after = await stats()
    expect(after, 'the backend saw part of a refused request').toEqual(before)
    const ok = await send(`${baton.url}/echo`)
    expect(ok.status).toBe(200)
    return r.data
  }

  it('refuses Content-Length together with Transfer-Encoding, in either order', async () => {
    const body = `0\r\n\r\n${SMUGGLED}`
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${body}`, 400)
  })

  it('refuses duplicate and conflicting Content-Length', async () => {
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello${SMUGGLED}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5, 5\r\n\r\nhello${SMUGGLED}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: +5\r\n\r\nhello${SMUGGLED}`, 400)
  })

  it('refuses obfuscated Transfer-Encoding', async () => {
    const chunked = `0\r\n\r\n${SMUGGLED}`
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: xchunked\r\n\r\n${chunked}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding : chunked\r\n\r\n${chunked}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked, identity\r\n\r\n${chunked}`, 400)
    await refused(`POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding:\tchunked\r\n folded\r\n\r\n${chunked}`, 400)
  })

  it('refuses bad bytes in the head: NUL, bare CR, bare LF line ends, spaces in names', async () => {
    await refused(`GET /echo HTTP/1.1\r\nHost: web\r\nX-Bad: a\u0000b\r\n\r\n${SMUGGLED}`, 400)
    await refused(`GET /echo HTTP/1.1\r\nHost: web\r\nX-Bad: a\rGET /smuggled HTTP/1.1\r\n\r\n`, 400)
    await refused(`GET /echo HTTP/1.1\r\nHost: web\r\nX Bad: 1\r\n\r\n${SMUGGLED}`, 400)
    await refused(`GET /echo HTTP/1.1\nHost: web\nX-A: 1\r\n\r\n${SMUGGLED}`, 400)
    await refused(`GET /ec ho HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, 400)
    await refused(`GET /echo HTTP/1.1 junk\r\nHost: web\r\n\r\n${SMUGGLED}`, 400)
  })

  it('refuses two Host headers and an HTTP/1.1 request without one', async () => {
    await refused(`GET /echo HTTP/1.1\r\nHost: web\r\nHost: other\r\n\r\n${SMUGGLED}`, 400)
    await refused(`GET /echo HTTP/1.1\r\n\r\n${SMUGGLED}`, 400)
  })

  it('answers 431 to a head larger than maxHeaderSize', async () => {
    const data = await refused(`GET /echo HTTP/1.1\r\nHost: web\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`, 431)
    expect(data).toContain('431 Request Header Fields Too Large')
    // Many small headers add up the same way.
    const many = Array.from({ length: 600 }, (_, i) => `X-H${i}: ${'v'.repeat(10)}\r\n`).join('')
    await refused(`GET /echo HTTP/1.1\r\nHost: web\r\n${many}\r\n`, 431)
  })

  it('answers 400 to absolute-form and asterisk-form targets (baton is no forward proxy)', async () => {
    const abs = await refused(`GET http://web/echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, 400)
    expect(abs).toContain('request target must be a path')
    await refused(`OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, 400)
    await refused(`CONNECT web:443 HTTP/1.1\r\nHost: web:443\r\n\r\n${SMUGGLED}`, 400)
  })

  it('forwards a request whose body looks like a request as one request', async () => {
    const before = await stats()
    const body = SMUGGLED
    // A last request that closes the connection: had the body been taken for
    // a request, its answer would come between the two.
    const r = await raw(port, `POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
      'GET /echo?last HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n', { waitMs: 20_000 })
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([200, 200])
    expect(r.data).toContain(`"size":${body.length}`)
    const after = await stats()
    expect(after.total).toBe(before.total + 2)
    expect(after.paths['/smuggled']).toBe(before.paths['/smuggled'])
  })

  it('answers pipelined requests in order, each to the backend once', async () => {
    const before = await stats()
    const r = await raw(port, 'GET /echo?n=1 HTTP/1.1\r\nHost: web\r\n\r\nPOST /echo?n=2 HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabcGET /echo?n=3 HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n')
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([200, 200, 200])
    expect([...r.data.matchAll(/"url":"([^"]+)"/g)].map(m => m[1])).toEqual(['/echo?n=1', '/echo?n=2', '/echo?n=3'])
    expect((await stats()).total).toBe(before.total + 3)
  })

  it('cuts a chunked body with a malformed chunk and keeps serving', async () => {
    const before = await stats()
    const r = await raw(port, 'POST /echo HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n' + SMUGGLED)
    expect(r.closed).toBe(true)
    expect(r.statuses, r.data).toEqual([400])
    expect((await stats()).paths['/smuggled']).toBe(before.paths['/smuggled'])
    expect((await send(`${baton.url}/echo`)).status).toBe(200)
  })

  it('answers requests pipelined before a malformed one first, then refuses it', async () => {
    const before = await stats()
    const r = await raw(port, 'GET /slow?ms=300 HTTP/1.1\r\nHost: web\r\n\r\nGET /bytes?n=3 HTTP/1.1\r\nHost: web\r\n\r\n' +
      `GET /echo HTTP/1.1\r\nHost: web\r\nX-Bad: a\u0000b\r\n\r\n${SMUGGLED}`)
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([200, 200, 400])
    expect(r.data).toContain('slow a')
    expect(r.data).toContain('\r\n\r\nxxxHTTP/1.1 400 ')
    const after = await stats()
    expect(after.total).toBe(before.total + 2)
    // The same when the fault is in the body of the last request.
    const r2 = await raw(port, 'GET /slow?ms=200 HTTP/1.1\r\nHost: web\r\n\r\nPOST /sink HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n' + SMUGGLED)
    expect(r2.closed).toBe(true)
    expect(r2.statuses).toEqual([200, 400])
    expect((await stats()).paths['/smuggled']).toBe(before.paths['/smuggled'])
  })

  it('leaves nothing in flight after all of the above', async () => {
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
  })

  it('counts refused requests in baton_client_errors_total', async () => {
    const text = await (await fetch(`${baton.adminUrl}/metrics`)).text()
    expect(text).toMatch(/baton_client_errors_total\{code="400"\} [1-9]/)
    expect(text).toMatch(/baton_client_errors_total\{code="431"\} [1-9]/)
  })
})
