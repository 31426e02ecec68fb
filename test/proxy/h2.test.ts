import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { constants } from 'node:http2'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { makeCert, tempDir } from '../helpers/certs.js'
import { h2Close, h2Request, h2Session } from '../helpers/h2.js'
import { config, metric, send, waitFor } from '../helpers/http.js'
import { rawUpstream, type RawUpstream } from '../helpers/raw-upstream.js'
import { tlsGet } from '../helpers/tls.js'

// HTTP/2 to clients (SPEC §8, README "HTTP/2"): ALPN h2 with HTTP/1.1 on
// the same port; streams forwarded over HTTP/1.1 through the same pools,
// retries, metrics and access log; :authority as Host, cookies joined,
// connection-specific fields kept off both hops; many streams at once; a
// client's reset ends its upstream request; an upstream cut is a reset.

interface Echo { name: string, method: string, url: string, headers: Record<string, string>, rawHeaders: string[], size: number, sha256?: string }

describe('HTTP/2 to clients', () => {
  let backend: Backend
  let baton: RunningBaton
  let port: number
  let logFile: string
  let raw: RawUpstream

  beforeAll(async () => {
    const dir = tempDir()
    makeCert(dir, { names: ['h2.test', '*.h2.test'], file: 'h2' })
    backend = await startBackend({ NAME: 'app' })
    raw = await rawUpstream()
    baton = await startBaton(config({ web: { servers: [backend.address] }, raw: { servers: [raw.address] } }, {
      listen: [{ port: 0, host: '127.0.0.1', tls: { certificates: [{ cert: 'h2.pem', key: 'h2.key' }] } }],
      routes: [{ match: { host: 'raw.test' }, pool: 'raw' }, { match: { host: '*.h2.test' }, pool: 'web' }, { match: { host: 'h2.test' }, pool: 'web' }],
      accessLog: { path: 'access.log' }
    }), { dir })
    port = baton.ports[0]
    logFile = join(dir, 'access.log')
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
    await raw.close()
  })

  it('speaks h2 by ALPN and HTTP/1.1 on the same port, with or without ALPN', async () => {
    const s = h2Session(port)
    const r = await h2Request(s, { ':path': '/whoami' })
    expect(r.status).toBe(200)
    expect(r.text).toBe('app')
    await h2Close(s)
    const h1 = await tlsGet(port, { servername: 'h2.test', path: '/whoami', alpn: ['http/1.1'] })
    expect(h1).toMatchObject({ status: 200, body: 'app', alpn: 'http/1.1' })
    const none = await tlsGet(port, { servername: 'h2.test', path: '/whoami', alpn: [] })
    expect(none).toMatchObject({ status: 200, body: 'app', alpn: false })
  })

  it('serves 300 concurrent streams on one connection (128 open at once, the rest queued by the client)', async () => {
    const s = h2Session(port)
    const before = JSON.parse((await send(`http://${backend.address}/admin/stats`)).text) as { total: number }
    const replies = await Promise.all(Array.from({ length: 300 }, async (_, i) => await h2Request(s, { ':path': `/slow?ms=200&i=${i}` })))
    expect(replies.map(r => r.status)).toEqual(Array(300).fill(200))
    expect(s.remoteSettings.maxConcurrentStreams).toBe(128)
    const after = JSON.parse((await send(`http://${backend.address}/admin/stats`)).text) as { total: number }
    expect(after.total - before.total).toBe(300)
    await h2Close(s)
  })

  it('forwards :authority as Host, joins cookie crumbs, sets X-Forwarded-*, passes no pseudo-header', async () => {
    const s = h2Session(port)
    const r = await h2Request(s, { ':path': '/echo?x=1', ':authority': 'Shop.h2.test:8443', cookie: ['a=1', 'b=2'], 'x-custom': 'kept', 'x-forwarded-for': '203.0.113.7' })
    expect(r.status).toBe(200)
    const e = JSON.parse(r.text) as Echo
    expect(e.url).toBe('/echo?x=1')
    expect(e.headers).toMatchObject({
      host: 'Shop.h2.test:8443', cookie: 'a=1; b=2', 'x-custom': 'kept', 'x-forwarded-proto': 'https',
      'x-forwarded-host': 'Shop.h2.test:8443', 'x-forwarded-for': '203.0.113.7, 127.0.0.1'
    })
    expect(e.rawHeaders.filter((_, i) => i % 2 === 0 && e.rawHeaders[i].startsWith(':'))).toEqual([])
    await h2Close(s)
  })

  it('streams request bodies both with and without content-length, re-framed for the upstream', async () => {
    const s = h2Session(port)
    const body = Buffer.alloc(1_048_576 + 17, 'z')
    const sha = createHash('sha256').update(body).digest('hex')
    for (const headers of [{ 'content-length': String(body.length) }, {}]) {
      const r = await h2Request(s, { ':method': 'POST', ':path': '/sink?hash=1', ...headers }, body)
      expect(r.status).toBe(200)
      const e = JSON.parse(r.text) as Echo
      expect({ size: e.size, sha256: e.sha256 }).toEqual({ size: body.length, sha256: sha })
    }
    const empty = await h2Request(s, { ':method': 'POST', ':path': '/echo' }, '')
    expect((JSON.parse(empty.text) as Echo).size).toBe(0)
    await h2Close(s)
  })

  it('keeps connection-specific fields off the h2 response, passes the end-to-end ones and trailers to a client that asks', async () => {
    const s = h2Session(port)
    const r = await h2Request(s, { ':path': '/hop', te: 'trailers' })
    expect(r.status).toBe(200)
    expect(r.text).toBe('hop body')
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'x-secret']) {
      expect(r.headers[name], name).toBeUndefined()
    }
    expect(r.headers['x-end-to-end']).toBe('kept')
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/'])
    expect(r.trailers['x-checksum']).toBe('abc')
    const noTe = await h2Request(s, { ':path': '/hop' })
    expect(noTe.trailers['x-checksum']).toBeUndefined()
    await h2Close(s)
  })

  it('answers for itself as on HTTP/1.1: 404 with no route, 400 above /, CONNECT refused', async () => {
    const s = h2Session(port)
    expect((await h2Request(s, { ':path': '/x', ':authority': 'elsewhere.test' })).status).toBe(404)
    const up = await h2Request(s, { ':path': '/a/../../etc' })
    expect(up.status).toBe(400)
    expect(up.text).toBe('baton: the path climbs above /\n')
    const bypass = JSON.parse((await h2Request(s, { ':path': '/a/%2e%2e/echo' })).text) as Echo
    expect(bypass.url).toBe('/echo')
    const connect = await h2Request(s, { ':method': 'CONNECT', ':authority': 'h2.test:443' }).catch((err: { rstCode?: number }) => err)
    expect('status' in connect ? connect.status : 'reset').toMatch(/^(400|reset)$/)
    // The session serves on.
    expect((await h2Request(s, { ':path': '/whoami' })).status).toBe(200)
    await h2Close(s)
  })

  it('logs h2 requests as HTTP/2 with the path as sent, and counts them like any', async () => {
    const before = await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '200' })
    const s = h2Session(port)
    await h2Request(s, { ':path': '/whoami?logged=h2' })
    await h2Close(s)
    expect(await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '200' })).toBe(before + 1)
    const line = await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').split('\n').filter(l => l !== '')
      .map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.path === '/whoami?logged=h2'))
    expect(line).toMatchObject({ protocol: 'HTTP/2', method: 'GET', host: `h2.test:${port}`, status: 200, pool: 'web', attempts: 1, error: null })
  })

  it('a stream the client resets ends its upstream request; an upstream cut resets the stream', async () => {
    const s = h2Session(port)
    const stream = s.request({ ':path': '/slow?ms=5000' })
    stream.on('error', () => undefined)
    const stats = async (): Promise<{ cut: number }> => JSON.parse((await send(`http://${backend.address}/admin/stats`)).text) as { cut: number }
    const cutBefore = (await stats()).cut
    // Reset once the upstream has it in flight.
    await waitFor(async () => (await (await fetch(`${baton.adminUrl}/v1/pools/web`)).json() as { instances: Array<{ inflight: number }> }).instances[0].inflight === 1)
    stream.close(constants.NGHTTP2_CANCEL)
    await waitFor(async () => (await stats()).cut === cutBefore + 1)

    // 5 of 10 bytes, then the upstream goes: the client must not see a clean end.
    raw.scripts.set('/cut', (_req, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345') })
    const cut = await h2Request(s, { ':path': '/cut', ':authority': 'raw.test' }).then(r => `clean ${r.status} ${r.text}`, (err: { rstCode?: number }) => err.rstCode)
    expect(cut).toBe(constants.NGHTTP2_INTERNAL_ERROR)
    expect((await h2Request(s, { ':path': '/whoami' })).status).toBe(200)
    await h2Close(s)
  })
})
