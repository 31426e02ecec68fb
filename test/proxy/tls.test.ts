import { X509Certificate } from 'node:crypto'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { adminApi } from '../helpers/admin.js'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { makeCert, tempDir, type TestCert } from '../helpers/certs.js'
import { config, metric, raw, send } from '../helpers/http.js'
import { keepAliveClient, tlsGet } from '../helpers/tls.js'

// TLS listeners (SPEC §8, README "TLS"), with certificates made for this run:
// SNI by the certificates' own names, the first as default; TLS 1.1 (and
// below minVersion) refused; session tickets; X-Forwarded-Proto https;
// HTTP/1.1 over TLS taking the plain listener's path (hostile input,
// header timeout, WebSockets); redirect listeners; certificates reloaded
// for new handshakes while open connections keep theirs, a bad file refused.

const fingerprint = (c: TestCert): string => new X509Certificate(c.certPem).fingerprint256

describe('TLS listeners', () => {
  let dir: string
  let a: TestCert
  let b: TestCert
  let x: TestCert
  let cn: TestCert
  let backend: Backend
  let baton: RunningBaton
  let tlsPort: number
  let redirectPort: number
  let strictPort: number

  beforeAll(async () => {
    dir = tempDir()
    a = makeCert(dir, { names: ['a.test', '*.a.test'], file: 'a' })
    b = makeCert(dir, { names: ['b.test', '*.b.test'], file: 'b' })
    x = makeCert(dir, { names: ['x.a.test'], file: 'x' })
    cn = makeCert(dir, { cn: 'cn.test', file: 'cn' })
    backend = await startBackend({ NAME: 'app', WS: '1' })
    // The config file sits beside the certificates: their paths are relative to it.
    baton = await startBaton(config({ web: { servers: [backend.address] } }, {
      listen: [
        { port: 0, host: '127.0.0.1', tls: { certificates: ['a', 'b', 'x', 'cn'].map(f => ({ cert: `${f}.pem`, key: `${f}.key` })) } },
        { port: 0, host: '127.0.0.1', redirect: 'https' },
        { port: 0, host: '127.0.0.1', http2: false, tls: { minVersion: 'TLSv1.3', certificates: [{ cert: './b.pem', key: './b.key' }] } }
      ],
      proxy: { timeouts: { headers: '1s' } }
    }), { dir })
    ;[tlsPort, redirectPort, strictPort] = baton.ports
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('picks the certificate by SNI: exact names, then wildcards of one label, else the first', async () => {
    const picked = async (servername: string | undefined): Promise<string | undefined> => (await tlsGet(tlsPort, { servername })).fingerprint
    expect(await picked('a.test')).toBe(fingerprint(a))
    expect(await picked('b.test')).toBe(fingerprint(b))
    expect(await picked('www.b.test')).toBe(fingerprint(b))
    expect(await picked('WWW.B.Test')).toBe(fingerprint(b))
    // x.a.test is listed after a (whose *.a.test matches it): the exact name wins.
    expect(await picked('x.a.test')).toBe(fingerprint(x))
    expect(await picked('y.a.test')).toBe(fingerprint(a))
    // A wildcard covers one label only: not the bare name, not two labels.
    expect(await picked('deep.www.b.test')).toBe(fingerprint(a))
    // A certificate without subjectAltNames is picked by its CN.
    expect(await picked('cn.test')).toBe(fingerprint(cn))
    expect(await picked('unknown.test')).toBe(fingerprint(a))
    expect(await picked(undefined)).toBe(fingerprint(a))
  })

  it('answers over TLS with X-Forwarded-Proto https, TLS 1.3 by default', async () => {
    const r = await tlsGet(tlsPort, { servername: 'b.test', path: '/echo' })
    expect(r.status).toBe(200)
    expect(r.protocol).toBe('TLSv1.3')
    const echoed = JSON.parse(r.body) as { headers: Record<string, string> }
    expect(echoed.headers).toMatchObject({ host: 'b.test', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'b.test' })
  })

  it('refuses TLS 1.1, and TLS 1.2 where minVersion is TLSv1.3, and counts the failed handshakes', async () => {
    const before = await metric(baton.adminUrl, 'baton_client_errors_total', { code: 'tls' })
    await expect(tlsGet(tlsPort, { servername: 'a.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }))
      .rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/) })
    expect((await tlsGet(tlsPort, { servername: 'a.test', maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2')
    await expect(tlsGet(strictPort, { servername: 'b.test', maxVersion: 'TLSv1.2' })).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION/) })
    const ok = await tlsGet(strictPort, { servername: 'b.test' })
    expect(ok).toMatchObject({ status: 200, protocol: 'TLSv1.3', alpn: 'http/1.1' })
    expect(await metric(baton.adminUrl, 'baton_client_errors_total', { code: 'tls' })).toBe(before + 2)
  })

  it('resumes a session from its ticket, TLS 1.3 and 1.2', async () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await tlsGet(tlsPort, { servername: 'b.test', maxVersion })
      expect(first.reused).toBe(false)
      expect(first.session).toBeDefined()
      const again = await tlsGet(tlsPort, { servername: 'b.test', maxVersion, session: first.session })
      expect(again.reused, maxVersion).toBe(true)
      expect(again.status).toBe(200)
    }
  })

  it('serves HTTP/1.1 over TLS exactly as on a plain listener: smuggling refused, slow heads cut, WebSockets tunnelled', async () => {
    const rawTls = async (text: string): Promise<{ data: string, ms: number }> => await new Promise(resolve => {
      const started = Date.now()
      const s = connect({ port: tlsPort, host: '127.0.0.1', servername: 'a.test', rejectUnauthorized: false }, () => s.write(text))
      s.setTimeout(5_000, () => s.destroy())
      let data = ''
      s.on('data', (c: Buffer) => { data += c.toString('latin1') })
      s.on('close', () => resolve({ data, ms: Date.now() - started }))
      s.on('error', () => undefined)
    })
    const smuggled = await rawTls('POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    expect(smuggled.data).toMatch(/^HTTP\/1\.1 400 /)
    // `headers: 1s`: a head that never ends is cut with 408.
    const slow = await rawTls('GET /echo HTTP/1.1\r\nHost: a.test\r\nX-Slow: ')
    expect(slow.data).toMatch(/^HTTP\/1\.1 408 /)
    expect(slow.ms).toBeLessThan(5_000)

    const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}/ws`, { rejectUnauthorized: false, headers: { host: 'a.test' } })
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('over tls'))
      ws.once('message', m => resolve(String(m)))
      ws.once('error', reject)
    })
    ws.close()
    expect(echoed).toBe('over tls')
  })

  it('redirects a redirect listener\'s requests with 308 to the first TLS listener, path and query kept', async () => {
    for (const method of ['GET', 'POST', 'HEAD']) {
      const r = await send(`http://127.0.0.1:${redirectPort}/cart/items?id=7&x=%20`, { method, headers: { host: 'Shop.Test:8080' }, body: method === 'POST' ? 'x=1' : undefined })
      expect(r.status, method).toBe(308)
      expect(r.headers.location).toBe(`https://shop.test:${tlsPort}/cart/items?id=7&x=%20`)
    }
    // A WebSocket handshake there is redirected like any request.
    const up = await send(`http://127.0.0.1:${redirectPort}/ws`, { headers: { host: 'a.test', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } })
    expect(up.status).toBe(308)
    // No host to redirect to: 400.
    expect((await raw(redirectPort, 'GET /x HTTP/1.0\r\n\r\n')).statuses).toEqual([400])
    expect((await raw(redirectPort, 'GET /x HTTP/1.1\r\nHost: \r\n\r\n')).statuses).toEqual([400])
  })

  it('reload swaps the certificate for new handshakes; a keep-alive connection opened before keeps serving; a bad file is refused whole', async () => {
    const admin = adminApi(baton.adminUrl)
    const client = keepAliveClient(tlsPort, 'b.test')
    try {
      const before = await client.get('/whoami')
      expect(before).toMatchObject({ status: 200, fingerprint: fingerprint(b) })

      // New files at the same paths, as certbot or an operator would write them.
      const renewed = makeCert(tempDir(), { names: ['b.test', '*.b.test'], file: 'b' })
      copyFileSync(renewed.cert, join(dir, 'b.pem'))
      copyFileSync(renewed.key, join(dir, 'b.key'))
      const reload = await admin.post('/v1/reload')
      expect(reload.status, reload.text).toBe(200)
      expect(reload.text).toContain('TLS certificates re-read')

      expect((await tlsGet(tlsPort, { servername: 'b.test' })).fingerprint).toBe(fingerprint(renewed))
      expect((await tlsGet(strictPort, { servername: 'b.test' })).fingerprint).toBe(fingerprint(renewed))
      // Names on other certificates did not move.
      expect((await tlsGet(tlsPort, { servername: 'a.test' })).fingerprint).toBe(fingerprint(a))
      for (let i = 0; i < 5; i++) {
        const r = await client.get('/whoami')
        expect(r).toMatchObject({ status: 200, reusedSocket: true, fingerprint: fingerprint(b) })
      }

      // A key that does not match: the reload is refused whole, the renewed certificate serves on.
      const stranger = makeCert(tempDir(), { names: ['b.test'], file: 'stranger' })
      copyFileSync(stranger.key, join(dir, 'b.key'))
      const refused = await admin.post('/v1/reload')
      expect(refused.status).toBe(400)
      expect(refused.text).toMatch(/baton\.yaml:\d+:\d+ listen\.0\.tls\.certificates\.1\.key: b\.key is not the key of the certificate in b\.pem/)
      expect((await tlsGet(tlsPort, { servername: 'b.test' })).fingerprint).toBe(fingerprint(renewed))
      expect(await client.get('/whoami')).toMatchObject({ status: 200, reusedSocket: true })
      copyFileSync(renewed.key, join(dir, 'b.key'))
    } finally {
      client.close()
    }
  })
})
