import { describe, expect, it } from 'vitest'
import { SseParser } from '../../src/cli/sse.js'

// The CLI's text/event-stream parser, which `rollout --watch` reads GET /v1/events with.

describe('SseParser', () => {
  it('parses baton\'s events, skipping comments and pings', () => {
    const p = new SseParser()
    const text = ': baton events\n\nevent: instance\ndata: {"type":"instance","state":"starting"}\n\n: ping\n\nevent: rollout\ndata: {"type":"rollout"}\n\n'
    expect(p.push(text)).toEqual([
      { event: 'instance', data: '{"type":"instance","state":"starting"}' },
      { event: 'rollout', data: '{"type":"rollout"}' }
    ])
  })

  it('gives the same messages whatever the chunking, with LF, CRLF or CR line ends', () => {
    const base = 'event: a\ndata: one\ndata:two\n\ndata: three\nid: 7\n\nevent: b\ndata\n\n'
    const want = [{ event: 'a', data: 'one\ntwo' }, { event: 'message', data: 'three', id: '7' }, { event: 'b', data: '', id: '7' }]
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = base.replace(/\n/g, eol)
      for (let size = 1; size <= text.length; size++) {
        const p = new SseParser()
        const got = []
        for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)))
        got.push(...p.end())
        expect(got, `eol ${JSON.stringify(eol)} chunks of ${size}`).toEqual(want)
      }
    }
  })

  it('drops a message cut off by the end of the stream', () => {
    const p = new SseParser()
    expect(p.push('event: a\ndata: whole\n\nevent: b\ndata: cut')).toEqual([{ event: 'a', data: 'whole' }])
    expect(p.end()).toEqual([])
  })
})
