import { describe, expect, it } from 'vitest'
import { requestHead } from '../../src/proxy/headers.js'

// requestHead, as a unit: the header section sent upstream (SPEC §5: hop-by-hop
// fields and those Connection names dropped, X-Forwarded-* set, Host and order
// kept) and what it finds wrong (G8). The process-level proofs are
// headers.test.ts and the hostile-HTTP corpus.

const fieldsOf = (raw: string[], upgrade = false): string => requestHead(raw, '10.0.0.9', 'http', upgrade).fields

describe('requestHead: the header section for the upstream', () => {
  it('keeps end-to-end fields in order, as sent, and appends X-Forwarded-*', () => {
    expect(fieldsOf(['Host', 'App.Test', 'Accept', '*/*', 'X-Multi', 'a', 'x-multi', 'b'])).toBe(
      'Host: App.Test\r\nAccept: */*\r\nX-Multi: a\r\nx-multi: b\r\n' +
      'x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: App.Test\r\n')
  })

  it('drops hop-by-hop fields, those Connection names, and Expect', () => {
    const f = fieldsOf(['Host', 'h', 'Connection', 'keep-alive, X-Secret', 'Connection', 'x-third', 'X-Secret', '1', 'X-Third', '3',
      'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive', 'TE', 'trailers', 'Trailer', 'X-Sum', 'Upgrade', 'h2c',
      'HTTP2-Settings', 'AAA', 'Expect', '100-continue', 'X-Kept', 'k'])
    expect(f).toBe('Host: h\r\nX-Kept: k\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\n')
  })

  it('keeps Upgrade and Connection on an upgrade', () => {
    expect(fieldsOf(['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket'], true)).toContain('Connection: Upgrade\r\nUpgrade: websocket\r\n')
  })

  it('appends the client to an X-Forwarded-For chain and replaces X-Forwarded-Proto and -Host', () => {
    const f = fieldsOf(['Host', 'h', 'X-Forwarded-For', '1.1.1.1', 'X-Forwarded-For', '2.2.2.2', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil'])
    expect(f).toBe('Host: h\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: h\r\n')
  })

  it('keeps Content-Length (without leading zeros) and leaves a chunked body\'s framing to the exchange', () => {
    const cl = requestHead(['Host', 'h', 'Content-Length', '0012'], undefined, 'http', false)
    expect(cl.fields).toContain('Content-Length: 12\r\n')
    expect(cl).toMatchObject({ hasBody: true, chunked: false })
    const te = requestHead(['Host', 'h', 'Transfer-Encoding', 'chunked'], undefined, 'http', false)
    expect(te.fields).not.toMatch(/transfer-encoding/i)
    expect(te).toMatchObject({ hasBody: true, chunked: true })
    expect(requestHead(['Host', 'h', 'Content-Length', '0'], undefined, 'http', false).hasBody).toBe(false)
  })

  it('notes a client that accepts trailers', () => {
    expect(requestHead(['Host', 'h', 'TE', 'trailers, deflate;q=0.5'], undefined, 'http', false).trailers).toBe(true)
    expect(requestHead(['Host', 'h', 'TE', 'deflate'], undefined, 'http', false).trailers).toBe(false)
  })
})

describe('requestHead: what it refuses', () => {
  const refused: Array<[string, string[], number, RegExp]> = [
    ['two Host fields', ['Host', 'a', 'Host', 'b'], 400, /more than one Host/],
    ['a Host with a space', ['Host', 'a b'], 400, /no host\[:port\]/],
    ['a Host with userinfo', ['Host', 'u@a'], 400, /no host\[:port\]/],
    ['a Host with a path', ['Host', 'a/b'], 400, /no host\[:port\]/],
    ['two Transfer-Encoding fields', ['Host', 'h', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'], 400, /more than one Transfer-Encoding/],
    ['chunked not last', ['Host', 'h', 'Transfer-Encoding', 'chunked, gzip'], 400, /does not end in chunked/],
    ['chunked twice', ['Host', 'h', 'Transfer-Encoding', 'chunked, chunked'], 400, /does not end in chunked/],
    ['identity, chunked', ['Host', 'h', 'Transfer-Encoding', 'identity, chunked'], 501, /transfer coding other than chunked/],
    ['gzip, chunked', ['Host', 'h', 'Transfer-Encoding', 'gzip, chunked'], 501, /transfer coding other than chunked/]
  ]
  for (const [name, raw, status, why] of refused) {
    it(`${name} → ${status}`, () => {
      const h = requestHead(raw, undefined, 'http', false)
      expect(h.malformed).toMatch(why)
      expect(h.refuseStatus).toBe(status)
    })
  }

  it('accepts IP literals, ports and an empty Host', () => {
    for (const host of ['[::1]:8080', '10.0.0.1:80', 'a.b-c.example', '']) expect(requestHead(['Host', host], undefined, 'http', false).malformed).toBeUndefined()
  })
})
