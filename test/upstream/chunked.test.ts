import { describe, expect, it } from 'vitest'
import { ChunkedDecoder } from '../../src/upstream/http1/chunked.js'

// The chunked body decoder of baton's upstream client, fed whole and split
// at every byte: the data it finds, the trailers, where the body ends, and
// every framing error.

interface Decoded { data: string, trailers: string[] | undefined, error: string | undefined, done: boolean, rest: string }

/** Feeds `body` in pieces cut at `cuts`, the way reads would bring it. */
function decode (body: string, cuts: number[] = []): Decoded {
  const d = new ChunkedDecoder()
  const bytes = Buffer.from(body, 'latin1')
  const bounds = [0, ...cuts, bytes.length]
  let data = ''
  let rest = ''
  for (let i = 0; i + 1 < bounds.length && d.error === undefined; i++) {
    // Each read lands in a bigger buffer with stale bytes after it, as in the shared read buffer.
    const read = Buffer.concat([bytes.subarray(bounds[i], bounds[i + 1]), Buffer.from('\r\n0\r\n\r\nSTALE')])
    const end = bounds[i + 1] - bounds[i]
    let pos = 0
    while (pos < end && !d.done) {
      pos = d.step(read, pos, end)
      if (d.dataEnd > d.dataStart) data += read.toString('latin1', d.dataStart, d.dataEnd)
    }
    if (d.done && d.error === undefined && pos < end) rest += read.toString('latin1', pos, end)
  }
  return { data, trailers: d.trailers, error: d.error, done: d.done, rest }
}

describe('chunked bodies baton accepts', () => {
  const good: Array<[string, string, string, string[] | undefined]> = [
    ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 'hello', undefined],
    ['several chunks, upper- and lower-case hex', 'A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n', '0123456789abcdefghij', undefined],
    ['leading zeros', '005\r\nhello\r\n000\r\n\r\n', 'hello', undefined],
    ['extensions', '5;name=value;flag\r\nhello\r\n0;last\r\n\r\n', 'hello', undefined],
    ['a space before an extension', '5 ;x\r\nhello\r\n0\r\n\r\n', 'hello', undefined],
    ['no data at all', '0\r\n\r\n', '', undefined],
    ['trailers', '5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:  2 \r\n\r\n', 'hello', ['X-Sum', 'abc', 'X-Other', '2']]
  ]
  for (const [name, body, data, trailers] of good) {
    it(`${name}, whole and split at every byte`, () => {
      for (let cut = 0; cut <= body.length; cut++) {
        const r = decode(body, cut === 0 || cut === body.length ? [] : [cut])
        expect(r, `cut at ${cut}`).toEqual({ data, trailers, error: undefined, done: true, rest: '' })
      }
      const bytewise = decode(body, Array.from({ length: body.length - 1 }, (_, i) => i + 1))
      expect(bytewise).toEqual({ data, trailers, error: undefined, done: true, rest: '' })
    })
  }

  it('stops at the end of the body and leaves what follows to the caller', () => {
    expect(decode('1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK').rest).toBe('HTTP/1.1 200 OK')
  })

  it('does not end before the last chunk and the empty line have come', () => {
    for (const partial of ['5\r\nhello\r\n', '5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\nX: 1\r\n']) {
      expect(decode(partial)).toMatchObject({ done: false, error: undefined })
    }
  })
})

describe('chunked bodies baton refuses (502 or a cut)', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['a size that is no hex number', 'zz\r\nhello\r\n0\r\n\r\n', /no hex number/],
    ['an empty size', '\r\nhello\r\n0\r\n\r\n', /no hex number/],
    ['a negative size', '-5\r\nhello\r\n0\r\n\r\n', /no hex number/],
    ['0x in the size', '0x5\r\nhello\r\n0\r\n\r\n', /no hex number/],
    ['a size of 13 hex digits', 'fffffffffffff\r\nhello\r\n0\r\n\r\n', /too large/],
    ['a size line ended by a bare LF', '5\nhello\r\n0\r\n\r\n', /no hex number/],
    ['a bare LF after an extension', '5;x\nhello\r\n0\r\n\r\n', /control character/],
    ['a CR not followed by LF', '5\rhello\r\n0\r\n\r\n', /without CRLF/],
    ['data longer than its size', '3\r\nhello\r\n0\r\n\r\n', /longer than its size/],
    ['data ended by a bare LF', '5\r\nhello\n0\r\n\r\n', /longer than its size/],
    ['a control character in an extension', '5;a\u0001b\r\nhello\r\n0\r\n\r\n', /control character/],
    ['an extension of 5,000 bytes', `5;${'e'.repeat(5_000)}\r\nhello\r\n0\r\n\r\n`, /extension too long/],
    ['a trailer without a colon', '0\r\nNoColon\r\n\r\n', /without a name and colon/],
    ['a folded trailer', '0\r\nX: 1\r\n 2\r\n\r\n', /obs-fold/],
    ['a trailer line ended by a bare LF', '0\r\nX: 1\n\r\n', /bare LF/]
  ]
  for (const [name, body, why] of bad) {
    it(name, () => {
      expect(decode(body).error).toMatch(why)
      expect(decode(body, Array.from({ length: body.length - 1 }, (_, i) => i + 1)).error).toMatch(why)
    })
  }
})
