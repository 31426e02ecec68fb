import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metric, waitFor } from '../helpers/http.js'
import { bench, chunked, refusal, SMUGGLED, Talk, type Bench, type Case, type Stats } from './hostile.js'

// G8, the hostile-HTTP corpus, part 1: message framing (Transfer-Encoding,
// chunks, Content-Length, Expect). Part 2 (request line and header bytes) is
// hostile-http-head.test.ts. Shapes already in request-smuggling.test.ts are
// not repeated here: CL with TE, duplicate and conflicting and `+5`
// Content-Length, `xchunked`, `Transfer-Encoding : chunked`,
// `chunked, identity`, a malformed chunk after a good one, pipelining.
//
// Each refused case carries SMUGGLED behind it, which a parser that took the
// framing another way would forward; each accepted case carries it inside the
// body, which must reach the backend as bytes of one request.

const POST = 'POST /echo HTTP/1.1\r\nHost: web\r\n'
const CLOSE = 'Connection: close\r\n'
/** The body of every accepted chunked case: a request, as data. */
const EMBEDDED = chunked(SMUGGLED)
const bodyOfOneRequest = (e: { size: number }): void => { expect(e.size).toBe(SMUGGLED.length) }
const te = (value: string): string => `${POST}Transfer-Encoding: ${value}\r\n`

const transferEncoding: Case[] = [
  // RFC 9112 §6.1: chunked must come last, and codings are case-insensitive.
  // `identity` is no transfer coding since RFC 7230: refused like any coding baton cannot pass on.
  { name: 'identity, chunked', bytes: `${te('identity, chunked')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 501, says: 'transfer coding' },
  { name: 'Chunked', bytes: `${te('Chunked')}${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  { name: 'CHUNKED', bytes: `${te('CHUNKED')}${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  { name: 'trailing space: "chunked "', bytes: `${te('chunked ')}${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  { name: 'extra leading space: "  chunked"', bytes: `${te(' chunked')}${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  { name: 'tab before the value', bytes: `${POST}Transfer-Encoding:\tchunked\r\n${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  { name: 'an empty list element: ", chunked"', bytes: `${te(', chunked')}${CLOSE}\r\n${EMBEDDED}`, answer: 200, forwarded: bodyOfOneRequest },
  // Not forwarded as sent: the upstream gets the body de-chunked and framed anew (a
  // body that is all there goes with a Content-Length, as nginx sends it).
  {
    name: 'chunked with the Transfer-Encoding header not forwarded',
    bytes: `${te('chunked')}${CLOSE}\r\n${EMBEDDED}`,
    answer: 200,
    forwarded: e => { expect(e.headers['transfer-encoding']).toBeUndefined(); expect(e.size).toBe(SMUGGLED.length) }
  },
  { name: 'a no-break space before chunked', bytes: `${te('\xa0chunked')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 400 },
  { name: 'two Transfer-Encoding headers, chunked twice', bytes: `${te('chunked')}Transfer-Encoding: chunked\r\n\r\n${EMBEDDED}${SMUGGLED}`, answer: 400 },
  { name: 'two Transfer-Encoding headers, identity then chunked', bytes: `${te('identity')}Transfer-Encoding: chunked\r\n\r\n${EMBEDDED}${SMUGGLED}`, answer: 400, says: 'more than one Transfer-Encoding' },
  { name: 'chunked, chunked', bytes: `${te('chunked, chunked')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 400 },
  { name: 'a comma-only value', bytes: `${te(',')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 400, says: 'does not end in chunked' },
  { name: 'an empty value', bytes: `${te('')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 400 },
  // The upstream would take the gzip bytes for the body itself: 501, as nginx.
  { name: 'gzip, chunked (a coding baton cannot pass on)', bytes: `${te('gzip, chunked')}\r\n${EMBEDDED}${SMUGGLED}`, answer: 501, says: 'transfer coding' },
  // RFC 9112 §6.1: faulty framing.
  { name: 'HTTP/1.0 with Transfer-Encoding', bytes: `POST /echo HTTP/1.0\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n${EMBEDDED}${SMUGGLED}`, answer: 400, says: 'HTTP/1.0' }
]

const chunk = (sizeLine: string, rest: string): string => `${te('chunked')}\r\n${sizeLine}\r\n${rest}`
const chunks: Case[] = [
  { name: 'size -1', bytes: chunk('-1', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size 0x10', bytes: chunk('0x10', `0123456789abcdef\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size fffffffffffffffff (overflows 64 bits)', bytes: chunk('fffffffffffffffff', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size with trailing junk: "5 junk"', bytes: chunk('5 junk', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size with a trailing letter: "5g"', bytes: chunk('5g', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size with a trailing space', bytes: chunk('5 ', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  { name: 'size line ended by a bare LF', bytes: `${te('chunked')}\r\n5\nhello\r\n0\r\n\r\n${SMUGGLED}`, answer: 400 },
  { name: 'no CRLF after the chunk data', bytes: chunk('5', `helloXX0\r\n\r\n${SMUGGLED}`), answer: 400, bodyFault: true },
  { name: 'chunk data ended by a bare LF', bytes: chunk('5', `hello\n0\r\n\r\n${SMUGGLED}`), answer: 400, bodyFault: true },
  // 2^64 - 1 fits Node's parser: a chunk that never ends, cut by the body timeout (1 s here).
  { name: 'size ffffffffffffffff (2^64 - 1)', bytes: chunk('ffffffffffffffff', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 408, bodyFault: true },
  { name: 'an extension: "5;foo=bar"', bytes: `${te('chunked')}${CLOSE}\r\n5;foo=bar\r\nhello\r\n0\r\n\r\n`, answer: 200, forwarded: e => expect(e.size).toBe(5) },
  { name: 'an empty extension: "5;"', bytes: chunk('5;', `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400 },
  // Node bounds chunk extensions at 16 KiB per request; within that they are read and dropped.
  { name: 'a 5,000-byte extension', bytes: `${te('chunked')}${CLOSE}\r\n5;${'e'.repeat(5_000)}\r\nhello\r\n0\r\n\r\n`, answer: 200, forwarded: e => expect(e.size).toBe(5) },
  { name: 'a 20,000-byte extension', bytes: chunk(`5;${'e'.repeat(20_000)}`, `hello\r\n0\r\n\r\n${SMUGGLED}`), answer: 400, bodyFault: true },
  { name: 'a last chunk written 000, and leading zeros', bytes: `${te('chunked')}${CLOSE}\r\n0005\r\nhello\r\n000\r\n\r\n`, answer: 200, forwarded: e => expect(e.size).toBe(5) }
]

const cl = (value: string): string => `${POST}Content-Length: ${value}\r\n`
const contentLength: Case[] = [
  // 1*DIGIT: leading zeros are valid; the upstream gets the length re-written.
  { name: 'leading zeros: 005', bytes: `${cl('005')}${CLOSE}\r\nhello`, answer: 200, forwarded: e => { expect(e.size).toBe(5); expect(e.headers['content-length']).toBe('5') } },
  { name: 'spaces around the value', bytes: `${cl('  5  ')}${CLOSE}\r\nhello`, answer: 200, forwarded: e => expect(e.size).toBe(5) },
  { name: 'a space inside: "5 5"', bytes: `${cl('5 5')}\r\nhello${SMUGGLED}`, answer: 400 },
  { name: 'a minus sign: -5', bytes: `${cl('-5')}\r\nhello${SMUGGLED}`, answer: 400 },
  { name: 'hex: 0x5', bytes: `${cl('0x5')}\r\nhello${SMUGGLED}`, answer: 400 },
  { name: 'an empty value', bytes: `${cl('')}\r\nhello${SMUGGLED}`, answer: 400 },
  { name: 'an overflowing value', bytes: `${cl('99999999999999999999999')}\r\nhello${SMUGGLED}`, answer: 400 }
]

describe('hostile HTTP: message framing (G8)', () => {
  let b: Bench
  beforeAll(async () => { b = await bench() })
  afterAll(async () => { await b.stop() })

  describe('Transfer-Encoding', () => {
    for (const c of transferEncoding) it(`${c.name} → ${c.answer}`, async () => { await b.run(c) })
  })
  describe('chunks', () => {
    for (const c of chunks) it(`${c.name} → ${c.answer}`, async () => { await b.run(c) })
  })
  describe('Content-Length', () => {
    for (const c of contentLength) it(`${c.name} → ${c.answer}`, async () => { await b.run(c) })
  })

  describe('Expect', () => {
    it('100-continue: a 100 once the request is on its way, then the answer', async () => {
      const before = await b.stats()
      const t = await Talk.open(b.port)
      t.write(`${POST}Expect: 100-continue\r\nContent-Length: 5\r\n${CLOSE}\r\n`)
      await t.until(/\r\n\r\n/)
      expect(t.data).toBe('HTTP/1.1 100 Continue\r\n\r\n')
      t.write('hello')
      await t.until('close')
      expect(t.statuses).toEqual([100, 200])
      expect(t.data).toContain('"size":5')
      expect((await b.stats()).total).toBe(before.total + 1)
    })

    it('100-continue on a request baton refuses or cannot route: the final answer, no 100, and the connection closes', async () => {
      const before = await b.stats()
      const refused = await Talk.open(b.port)
      refused.write(`${POST}Host: other\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n`)
      await refused.until('close')
      expect(refused.statuses).toEqual([400])
      refusal(refused.data, 'more than one Host header')
      const unrouted = await Talk.open(b.port)
      unrouted.write('POST /echo HTTP/1.1\r\nHost: elsewhere.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n')
      await unrouted.until('close')
      expect(unrouted.statuses).toEqual([404])
      expect(unrouted.data).toMatch(/\r\nconnection: close\r\n/i)
      expect(await b.stats()).toEqual(before)
    })

    it('any other expectation: 417 with a reason, and nothing reaches the backend', async () => {
      await b.run({ name: 'Expect: fly', bytes: `${POST}Expect: fly\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`, answer: 417, says: '100-continue' })
    })
  })

  it('cuts the answer when the fault in the body comes after the upstream began to answer', async () => {
    // /trickle answers at once and never reads the body; the bad chunk comes after the head of the answer.
    const before = await b.stats()
    const t = await Talk.open(b.port)
    t.write('POST /trickle?ms=5000 HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    await t.until(/\r\n\r\n/)
    expect(t.statuses).toEqual([200])
    t.write(`zz\r\n${SMUGGLED}`)
    await t.until('close')
    // No second status line and no last chunk: only the cut says the exchange failed.
    expect(t.statuses).toEqual([200])
    expect(t.data).not.toMatch(/\r\n0\r\n\r\n$/)
    const after = await waitFor(async () => { const s = await b.stats(); return s.cut > before.cut ? s : undefined }, 5_000) as Stats
    expect(after.cut, 'the backend did not see its answer cut').toBe(before.cut + 1)
    expect(after.incomplete).toBe(before.incomplete + 1)
    expect(after.paths['/smuggled']).toBe(before.paths['/smuggled'])
  })

  it('counts the refusals in baton_client_errors_total by status, and the body timeout as a 408 request', async () => {
    for (const code of ['400', '417', '501']) {
      expect(await metric(b.baton.adminUrl, 'baton_client_errors_total', { code }), code).toBeGreaterThan(0)
    }
    expect(await metric(b.baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '408' })).toBe(1)
  })
})
