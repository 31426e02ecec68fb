import { Agent } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, raw, send } from '../helpers/http.js'

// Hop-by-hop headers (RFC 9110 §7.6.1) stay on their hop both ways,
// X-Forwarded-* are set, Host is kept, statuses and bodies pass through.

interface Echo { method: string, url: string, headers: Record<string, string>, rawHeaders: string[], size: number }

/** The header names (lower-cased) of a flat rawHeaders list. */
const names = (rawHeaders: string[]): string[] => rawHeaders.filter((_, i) => i % 2 === 0).map(n => n.toLowerCase())

describe('headers and statuses', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  async function echo (headers: Record<string, string | string[]>, body?: string): Promise<Echo> {
    const r = await send(`${baton.url}/echo`, { method: body === undefined ? 'GET' : 'POST', headers, body })
    expect(r.status).toBe(200)
    return JSON.parse(r.text) as Echo
  }

  it('removes hop-by-hop request headers and every header Connection names', async () => {
    const r = await raw(baton.ports[0], 'GET /echo HTTP/1.1\r\nHost: app.test\r\n' +
      'Connection: keep-alive, X-Secret, x-other\r\nConnection: X-Third\r\nX-Secret: hop\r\nX-Other: hop\r\nX-Third: hop\r\n' +
      'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Checksum\r\nUpgrade: h2c\r\n' +
      'X-Kept: end-to-end\r\n\r\n', { responses: 1, waitMs: 20_000 })
    expect(r.statuses).toEqual([200])
    const e = JSON.parse(r.data.slice(r.data.indexOf('{'), r.data.lastIndexOf('}') + 1)) as Echo
    const seen = names(e.rawHeaders)
    for (const h of ['x-secret', 'x-other', 'x-third', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']) {
      expect(seen, `${h} was forwarded`).not.toContain(h)
    }
    // None of the client's Connection headers goes on; the upstream hop needs none
    // of its own (HTTP/1.1 keeps the connection by default).
    expect(e.headers.connection).toBeUndefined()
    expect(e.headers['x-kept']).toBe('end-to-end')
  })

  it('re-frames a chunked request body instead of forwarding Transfer-Encoding as sent', async () => {
    const r = await raw(baton.ports[0], 'POST /echo HTTP/1.1\r\nHost: app.test\r\nTRANSFER-ENCODING: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n')
    expect(r.statuses).toEqual([200])
    const e = JSON.parse(r.data.slice(r.data.indexOf('{'), r.data.lastIndexOf('}') + 1)) as Echo
    expect(e.size).toBe(7)
    expect(e.rawHeaders).not.toContain('TRANSFER-ENCODING')
  })

  it('appends the client address to X-Forwarded-For and sets -Proto and -Host', async () => {
    const plain = await echo({ host: 'app.test:8080' })
    expect(plain.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(plain.headers['x-forwarded-proto']).toBe('http')
    expect(plain.headers['x-forwarded-host']).toBe('app.test:8080')

    // What the client claims is appended to, or replaced.
    const spoofed = await echo({
      host: 'app.test',
      'x-forwarded-for': ['10.0.0.1', '10.0.0.2, 10.0.0.3'],
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.test'
    })
    expect(spoofed.headers['x-forwarded-for']).toBe('10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1')
    expect(spoofed.headers['x-forwarded-proto']).toBe('http')
    expect(spoofed.headers['x-forwarded-host']).toBe('app.test')
    // Each appears once.
    const seen = names(spoofed.rawHeaders)
    for (const h of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'host']) {
      expect(seen.filter(n => n === h), h).toHaveLength(1)
    }
  })

  it('keeps Host, repeated headers and their order as the client sent them', async () => {
    const e = await echo({ host: 'App.Test:8080', 'x-multi': ['one', 'two', 'three'], accept: 'text/plain' }, 'body')
    expect(e.headers.host).toBe('App.Test:8080')
    const values = e.rawHeaders.filter((_, i) => i % 2 === 1 && e.rawHeaders[i - 1].toLowerCase() === 'x-multi')
    expect(values).toEqual(['one', 'two', 'three'])
    expect(e).toMatchObject({ method: 'POST', url: '/echo', size: 4 })
  })

  it('removes hop-by-hop response headers and keeps every Set-Cookie', async () => {
    const r = await send(`${baton.url}/hop`)
    expect(r.status).toBe(200)
    expect(r.text).toBe('hop body')
    const seen = names(r.rawHeaders)
    for (const h of ['x-secret', 'proxy-connection', 'te', 'trailer', 'upgrade']) expect(seen, `${h} came back`).not.toContain(h)
    // Node frames the client hop itself: its own Connection and Keep-Alive, not the backend's.
    expect(r.headers.connection).not.toMatch(/x-secret/i)
    expect(r.headers['keep-alive']).not.toBe('timeout=5')
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/'])
    expect(r.headers['x-end-to-end']).toBe('kept')
  })

  it('passes statuses and bodies through, with no body where none is allowed', async () => {
    for (const code of [200, 201, 202, 301, 400, 403, 404, 418, 429, 500, 503]) {
      const r = await send(`${baton.url}/status?code=${code}`)
      expect(r.status, `code ${code}`).toBe(code)
      expect(r.text).toBe('status')
    }
    for (const code of [204, 304]) {
      const r = await send(`${baton.url}/status?code=${code}`)
      expect(r.status).toBe(code)
      expect(r.body.length).toBe(0)
    }
    const head = await send(`${baton.url}/bytes?n=12345`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe('12345')
    expect(head.body.length).toBe(0)
  })

  it('keeps a keep-alive client connection in step after HEAD, 204 and 304', async () => {
    const r = await raw(baton.ports[0], [
      'HEAD /bytes?n=1000 HTTP/1.1\r\nHost: app.test\r\n\r\n',
      'GET /status?code=204 HTTP/1.1\r\nHost: app.test\r\n\r\n',
      'GET /status?code=304 HTTP/1.1\r\nHost: app.test\r\n\r\n',
      'GET /bytes?n=10 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n'
    ], { gapMs: 100 })
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([200, 204, 304, 200])
    expect(r.data.endsWith('\r\n\r\nxxxxxxxxxx')).toBe(true)
  })

  it('serves many requests on one keep-alive client connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (let i = 0; i < 20; i++) {
        const r = await send(`${baton.url}/echo?i=${i}`, { agent })
        expect(r.status).toBe(200)
        expect(r.headers.connection).toBe('keep-alive')
      }
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1)
    } finally {
      agent.destroy()
    }
  })
})
