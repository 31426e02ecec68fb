import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metric, raw } from '../helpers/http.js'
import { bench, SMUGGLED, type Bench, type Case, type Echo } from './hostile.js'

// G8, the hostile-HTTP corpus, part 2: the request line and the bytes of the
// head. Part 1 (framing) is hostile-http.test.ts; request-smuggling.test.ts
// has NUL and bare CR in values, bare LF line ends, a space in a name or the
// target, junk after the version, two Host headers, no Host, 431 by size,
// absolute-form, asterisk-form and CONNECT, which are not repeated here.
//
// Every refused case carries SMUGGLED behind it; accepted ones end with
// `Connection: close` and must reach the backend as exactly one request.

const GET = 'GET /echo HTTP/1.1\r\nHost: web\r\n'
const CLOSE = 'Connection: close\r\n\r\n'
const names = (e: Echo): string[] => e.rawHeaders.filter((_, i) => i % 2 === 0).map(n => n.toLowerCase())

const headerBytes: Case[] = [
  { name: 'CR in a header name', bytes: `${GET}X-B\rad: 1\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'LF in a header name', bytes: `${GET}X-B\nad: 1\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'NUL in a header name', bytes: `${GET}X-B\0ad: 1\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'an empty header name', bytes: `${GET}: 1\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'a header line without a colon', bytes: `${GET}X-Bad\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'bare LF inside a value', bytes: `${GET}X-Bad: a\nb: c\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'a control byte (0x01) in a value', bytes: `${GET}X-Bad: a\x01b\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'DEL (0x7f) in a value', bytes: `${GET}X-Bad: a\x7fb\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'obs-fold: a line starting with a space', bytes: `${GET}X-A: 1\r\n folded\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'obs-fold: a line starting with a tab', bytes: `${GET}X-A: 1\r\n\tfolded\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'a space before the first header line', bytes: `GET /echo HTTP/1.1\r\n Host: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  // obs-text is valid in values (RFC 9110 §5.5) and passes byte for byte.
  { name: 'bytes above 0x7f in a value', bytes: `${GET}X-Name: caf\xe9\r\n${CLOSE}`, answer: 200, forwarded: e => expect(e.headers['x-name']).toBe('caf\u00e9') },
  // RFC 9110 §7.2: a Host that is no host[:port] gets 400; a backend building URLs from it would read another authority.
  { name: 'Host with a space', bytes: `GET /echo HTTP/1.1\r\nHost: web evil\r\n\r\n${SMUGGLED}`, answer: 400, says: 'Host header' },
  { name: 'Host with a slash', bytes: `GET /echo HTTP/1.1\r\nHost: web/evil\r\n\r\n${SMUGGLED}`, answer: 400, says: 'Host header' },
  { name: 'Host with userinfo', bytes: `GET /echo HTTP/1.1\r\nHost: evil@web\r\n\r\n${SMUGGLED}`, answer: 400, says: 'Host header' },
  { name: 'Host with a port that is not a number', bytes: `GET /echo HTTP/1.1\r\nHost: web:80x\r\n\r\n${SMUGGLED}`, answer: 400, says: 'Host header' },
  { name: 'Host with a port', bytes: `GET /echo HTTP/1.1\r\nHost: web:8080\r\n${CLOSE}`, answer: 200, forwarded: e => expect(e.headers.host).toBe('web:8080') },
  { name: 'too many header lines (2,000 tiny ones, under the size limit)', bytes: `${GET}${'a: b\r\n'.repeat(2_000)}\r\n${SMUGGLED}`, answer: 431, says: 'more than 100 header fields' },
  { name: '101 header lines', bytes: `${GET}${'a: b\r\n'.repeat(99)}${CLOSE}`, answer: 431 },
  { name: '100 header lines', bytes: `${GET}${'a: b\r\n'.repeat(98)}${CLOSE}`, answer: 200, forwarded: e => expect(names(e).filter(n => n === 'a')).toHaveLength(98) },
  // Serving it as plain HTTP would need a second HTTP parser on the detached socket (Node 20); refusing cannot be tunnelled.
  {
    name: 'Upgrade: h2c with HTTP2-Settings on a GET',
    bytes: `${GET}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${SMUGGLED}`,
    answer: 400,
    says: 'only WebSocket upgrades'
  },
  {
    name: 'Upgrade: h2c that Connection does not name: served as plain HTTP, Upgrade and HTTP2-Settings dropped',
    bytes: `${GET}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n${CLOSE}`,
    answer: 200,
    forwarded: e => { expect(names(e)).not.toContain('upgrade'); expect(names(e)).not.toContain('http2-settings') }
  },
  {
    name: 'a WebSocket upgrade with a bad Host',
    bytes: 'GET / HTTP/1.1\r\nHost: a b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    answer: 400,
    says: 'Host header'
  }
]

const requestLine: Case[] = [
  { name: 'method G@T', bytes: `G@T /echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'lower-case method get', bytes: `get /echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'an empty method', bytes: ` /echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'a 1,000-character method', bytes: `${'A'.repeat(1_000)} /echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'an unknown method FOO', bytes: `FOO /echo HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  // The request line counts against maxHeaderSize (16 KiB here) with the headers; a target
  // that overflows it gets 414 (RFC 9112 §3), a header field 431.
  { name: 'a 20 KB URL', bytes: `GET /echo?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 414, says: 'uri too long' },
  { name: 'a 20 KB URL after a short header', bytes: `GET /echo?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: web\r\nX-A: b\r\n\r\n`, answer: 414 },
  { name: 'a 20 KB header value after a short URL', bytes: `GET /echo HTTP/1.1\r\nHost: web\r\nX-Big: ${'v'.repeat(20_000)}\r\n\r\n${SMUGGLED}`, answer: 431 },
  { name: 'HTTP/2.0 in the request line', bytes: `GET /echo HTTP/2.0\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 505, says: 'HTTP/1.x' },
  { name: 'the HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', answer: 400 },
  { name: 'HTTP/1.2', bytes: `GET /echo HTTP/1.2\r\nHost: web\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'HTTP/0.9: no version', bytes: `GET /echo\r\n\r\n${SMUGGLED}`, answer: 400, says: 'HTTP/1.x version' },
  { name: 'HTTP/0.9 written out', bytes: `GET /echo HTTP/0.9\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'a WebSocket upgrade in HTTP/2.0', bytes: 'GET / HTTP/2.0\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', answer: 505 },
  { name: 'a TLS ClientHello', bytes: `\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03${'\x00'.repeat(64)}`, answer: 400 },
  // Parsed on whitespace, as RFC 9112 §3 allows and nginx does; the upstream gets a request line baton writes itself.
  { name: 'two spaces before the target', bytes: `GET  /echo HTTP/1.1\r\nHost: web\r\n${CLOSE}`, answer: 200, forwarded: e => expect(e.url).toBe('/echo') },
  { name: 'two spaces before the version', bytes: `GET /echo  HTTP/1.1\r\nHost: web\r\n${CLOSE}`, answer: 200, forwarded: e => expect(e.url).toBe('/echo') },
  { name: 'an empty line before the request line', bytes: `\r\nGET /echo HTTP/1.1\r\nHost: web\r\n${CLOSE}`, answer: 200, forwarded: e => expect(e.method).toBe('GET') }
]

describe('hostile HTTP: request line and head (G8)', () => {
  let b: Bench
  beforeAll(async () => { b = await bench() })
  afterAll(async () => { await b.stop() })

  describe('header bytes, Host, counts and upgrades', () => {
    for (const c of headerBytes) it(`${c.name} → ${c.answer}`, async () => { await b.run(c) })
  })
  describe('request line', () => {
    for (const c of requestLine) it(`${c.name} → ${c.answer}`, async () => { await b.run(c) })
  })

  it('never forwards what is pipelined behind a request baton refuses itself, after answering those before it', async () => {
    const before = await b.stats()
    const r = await raw(b.port, `${GET}\r\nGET /echo HTTP/2.0\r\nHost: web\r\n\r\n${SMUGGLED}${SMUGGLED}`)
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([200, 505])
    const after = await b.stats()
    expect(after.total).toBe(before.total + 1)
    expect(after.paths['/smuggled']).toBe(before.paths['/smuggled'])
  })

  it('counts the refusals in baton_client_errors_total by status', async () => {
    for (const code of ['400', '431', '505']) {
      expect(await metric(b.baton.adminUrl, 'baton_client_errors_total', { code }), code).toBeGreaterThan(0)
    }
  })
})
