import { describe, expect, it } from 'vitest'
import { FrameBoundary } from '../../src/proxy/ws-frames.js'

function frame (payload: number, masked = false): Buffer {
  const len = payload < 126 ? [payload] : payload < 65536 ? [126, payload >> 8, payload & 255] : [127, 0, 0, 0, 0, (payload >>> 24) & 255, (payload >> 16) & 255, (payload >> 8) & 255, payload & 255]
  len[0] |= masked ? 0x80 : 0
  return Buffer.concat([Buffer.from([0x82, ...len]), Buffer.alloc(masked ? 4 : 0), Buffer.alloc(payload, 7)])
}

describe('WebSocket frame boundaries', () => {
  it('finds the boundaries of small, 16-bit, 64-bit and masked frames, whatever the chunking', () => {
    const frames = [frame(0), frame(5), frame(300), frame(70_000), frame(10, true)]
    const stream = Buffer.concat(frames)
    const boundaries = new Set<number>([0])
    let at = 0
    for (const f of frames) { at += f.length; boundaries.add(at) }
    for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
      const fb = new FrameBoundary()
      let offset = 0
      const seen: number[] = []
      while (offset < stream.length) {
        const chunk = stream.subarray(offset, offset + size)
        for (let i = 0; i < chunk.length; i++) {
          fb.feed(chunk.subarray(i, i + 1))
          if (fb.atBoundary) seen.push(offset + i + 1)
        }
        offset += chunk.length
      }
      expect(seen.filter(s => !boundaries.has(s))).toEqual([])
      expect(fb.atBoundary).toBe(true)
    }
  })

  it('stops at the first boundary when asked', () => {
    const fb = new FrameBoundary()
    const a = frame(10)
    const b = frame(20)
    expect(fb.feed(a.subarray(0, 5))).toBe(5)
    expect(fb.atBoundary).toBe(false)
    expect(fb.feed(Buffer.concat([a.subarray(5), b]), true)).toBe(a.length - 5)
    expect(fb.atBoundary).toBe(true)
  })
})
