import { describe, expect, it } from 'vitest'
import { ResponseHead } from '../../src/upstream/http1/head.js'

// The response head parser of baton's upstream client: what it accepts, what
// it refuses (each refusal becomes a 502 and a closed connection), and the
// facts it reads for framing and reuse.

const parse = (text: string): { head: ResponseHead, problem: string | undefined } => {
  const head = new ResponseHead()
  return { head, problem: head.parse(text) }
}
const ok = (text: string): ResponseHead => {
  const { head, problem } = parse(text)
  expect(problem, text).toBeUndefined()
  return head
}

describe('response heads baton accepts', () => {
  it('reads status, version, Content-Length, and keeps end-to-end fields in order, as sent', () => {
    const h = ok('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nContent-Length: 12\r\nSet-Cookie: b=2\r\n\r\n')
    expect(h.status).toBe(201)
    expect(h.minor).toBe(1)
    expect(h.contentLength).toBe(12)
    expect(h.chunked).toBe(false)
    expect(h.close).toBe(false)
    expect(h.headers).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Content-Length', '12', 'Set-Cookie', 'b=2'])
  })

  it('takes a status line without a reason phrase, and trims optional whitespace around values', () => {
    const h = ok('HTTP/1.1 204\r\nX-A:   spaced \t\r\nX-B:\r\n\r\n')
    expect(h.status).toBe(204)
    expect(h.headers).toEqual(['X-A', 'spaced', 'X-B', ''])
  })

  it('drops hop-by-hop fields and notes what they say', () => {
    const h = ok('HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nKeep-Alive: timeout=5, max=100\r\nTransfer-Encoding: Chunked\r\n' +
      'Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n')
    expect(h.headers).toEqual(['X-Secret', 's', 'X-Kept', 'k'])
    expect(h.chunked).toBe(true)
    expect(h.close).toBe(true)
    expect(h.keepAliveSeconds).toBe(5)
    expect(h.connectionTokens).toEqual(['x-secret'])
  })

  it('closes after an HTTP/1.0 response unless it asks for keep-alive', () => {
    expect(ok('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').close).toBe(true)
    expect(ok('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').close).toBe(false)
  })

  it('reads informational heads (100, 103) like any other', () => {
    expect(ok('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n').status).toBe(103)
    expect(ok('HTTP/1.1 100 Continue\r\n\r\n').status).toBe(100)
  })

  it('reads a Keep-Alive hint in any case, quoted or not', () => {
    expect(ok('HTTP/1.1 200 OK\r\nKeep-Alive: TIMEOUT = "30"\r\n\r\n').keepAliveSeconds).toBe(30)
    expect(ok('HTTP/1.1 200 OK\r\nKeep-Alive: max=5\r\n\r\n').keepAliveSeconds).toBe(-1)
  })

  it('is filled afresh for every head', () => {
    const h = new ResponseHead()
    expect(h.parse('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, x\r\nX: 1\r\n\r\n')).toBeUndefined()
    expect(h.parse('HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n')).toBeUndefined()
    expect(h).toMatchObject({ status: 304, contentLength: -1, close: false, connectionTokens: undefined, headers: ['ETag', '"e"'] })
  })
})

describe('response heads baton refuses (502, connection closed)', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', /both Content-Length and Transfer-Encoding/],
    ['two equal Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', /more than one Content-Length/],
    ['a Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n', /not a number/],
    ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n', /not a number/],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /not a number/],
    ['a hex Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n', /not a number/],
    ['an empty Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n', /not a number/],
    ['a 16-digit Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n', /not a number/],
    ['a coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', /other than chunked/],
    ['identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n', /other than chunked/],
    ['gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /other than chunked/],
    ['two Transfer-Encoding fields', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', /more than one Transfer-Encoding/],
    ['a bare LF after the status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /bare LF/],
    ['a bare LF after a field', 'HTTP/1.1 200 OK\r\nX: 1\n\r\n', /bare LF/],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: 1\r\n  2\r\n\r\n', /obs-fold/],
    ['a field without a colon', 'HTTP/1.1 200 OK\r\nNoColon\r\n\r\n', /without a colon/],
    ['an empty field name', 'HTTP/1.1 200 OK\r\n: v\r\n\r\n', /empty name/],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', /no HTTP\/1.x status line/],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n', /no HTTP\/1.x status line/],
    ['ICY', 'ICY 200 OK\r\n\r\n', /no HTTP\/1.x status line/],
    ['lower-case http', 'http/1.1 200 OK\r\n\r\n', /no HTTP\/1.x status line/],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', /three digits/],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', /three digits/],
    ['letters in the status', 'HTTP/1.1 2OO OK\r\n\r\n', /three digits/],
    ['a status below 100', 'HTTP/1.1 099 Low\r\n\r\n', /below 100/]
  ]
  for (const [name, text, why] of refused) {
    it(name, () => {
      expect(parse(text).problem).toMatch(why)
    })
  }
})
