/**
 * Follows WebSocket frame boundaries in the server-to-client byte stream of a
 * tunnel (RFC 6455 §5.2), so that baton can end the tunnel between two frames
 * with a close frame of its own instead of cutting a frame in half. Only the
 * frame headers are read; payloads are skipped by count.
 */
export class FrameBoundary {
  /** Payload bytes left in the current frame. */
  private need = 0
  /** Bytes of a frame header split across chunks. */
  private header: number[] = []

  get atBoundary (): boolean { return this.need === 0 && this.header.length === 0 }

  /**
   * Consumes `chunk`; with `stopAtBoundary`, stops at the first frame boundary
   * and returns its offset (0 when already at one), else returns chunk.length.
   */
  feed (chunk: Buffer, stopAtBoundary = false): number {
    let i = 0
    while (i < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return i
      if (this.need > 0) {
        const take = Math.min(this.need, chunk.length - i)
        this.need -= take
        i += take
        continue
      }
      this.header.push(chunk[i++])
      const h = this.header
      if (h.length < 2) continue
      const len7 = h[1] & 0x7f
      const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((h[1] & 0x80) !== 0 ? 4 : 0)
      if (h.length < size) continue
      let len = len7
      if (len7 === 126) len = (h[2] << 8) | h[3]
      else if (len7 === 127) { len = 0; for (let k = 2; k < 10; k++) len = len * 256 + h[k] }
      this.header = []
      this.need = len
    }
    return i
  }
}

/** A close frame from the server side (unmasked): 1001, going away. */
export const GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9])
