import { MAX_HEAD_BYTES, parseFields } from './head.js'

const enum State { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, Done }

/** Longest chunk-size line (size and extensions) accepted. */
const MAX_SIZE_LINE = 4096

/**
 * Decodes a chunked body (RFC 9112 §7.1) read by read, without copying: each
 * `step` stops after a run of data and says where it lies, so the caller
 * forwards it from its own buffer. Strict: a size that is no hex number, a
 * bare LF, data longer than its size or a trailer section that does not
 * parse are errors, never guesses.
 */
export class ChunkedDecoder {
  /** The data run the last step found: buf[dataStart, dataEnd). */
  dataStart = 0
  dataEnd = 0
  /** What is wrong with the body, once something is. */
  error: string | undefined
  /** The trailer fields as [name, value, ...], once `done` and when there were any. */
  trailers: string[] | undefined
  private state = State.Size
  private size = 0
  private digits = 0
  private lineBytes = 0
  private trailerText = ''
  private partialLine = ''

  get done (): boolean { return this.state === State.Done }

  reset (): void {
    this.state = State.Size
    this.size = 0
    this.digits = 0
    this.lineBytes = 0
    this.trailerText = ''
    this.partialLine = ''
    this.error = undefined
    this.trailers = undefined
    this.dataStart = this.dataEnd = 0
  }

  /**
   * Reads buf[pos, end) up to the end of the next data run, the end of the
   * body, an error, or `end`. Returns the position reached.
   */
  step (buf: Buffer, pos: number, end: number): number {
    this.dataStart = this.dataEnd = 0
    while (pos < end) {
      switch (this.state) {
        case State.Size: {
          const c = buf[pos]
          const v = hexValue(c)
          if (v !== -1) {
            if (++this.digits > 12) return this.fail('has a chunk size too large')
            this.size = this.size * 16 + v
            pos++
            continue
          }
          if (this.digits === 0) return this.fail('has a chunk size that is no hex number')
          if (c === 13) this.state = State.SizeLf
          else if (c === 59 /* ; */ || c === 32 || c === 9) this.state = State.Ext
          else return this.fail('has a chunk size that is no hex number')
          pos++
          continue
        }
        case State.Ext: {
          const c = buf[pos++]
          if (c === 13) { this.state = State.SizeLf; continue }
          if ((c < 32 && c !== 9) || c === 127) return this.fail('has a control character in a chunk extension')
          if (++this.lineBytes > MAX_SIZE_LINE) return this.fail('has a chunk extension too long')
          continue
        }
        case State.SizeLf:
          if (buf[pos++] !== 10) return this.fail('has a chunk size line without CRLF')
          if (this.size === 0) {
            this.state = State.Trailer
          } else {
            this.state = State.Data
          }
          continue
        case State.Data: {
          const n = Math.min(this.size, end - pos)
          this.dataStart = pos
          this.dataEnd = pos + n
          this.size -= n
          pos += n
          if (this.size === 0) this.state = State.DataCr
          return pos
        }
        case State.DataCr:
          if (buf[pos++] !== 13) return this.fail('has chunk data longer than its size')
          this.state = State.DataLf
          continue
        case State.DataLf:
          if (buf[pos++] !== 10) return this.fail('has chunk data longer than its size')
          this.state = State.Size
          this.size = this.digits = this.lineBytes = 0
          continue
        case State.Trailer:
          pos = this.trailerLine(buf, pos, end)
          continue
        case State.Done:
          return pos
      }
    }
    return pos
  }

  /** Reads trailer lines until the empty line that ends the body. */
  private trailerLine (buf: Buffer, pos: number, end: number): number {
    const lf = buf.indexOf(10, pos)
    if (lf === -1 || lf >= end) {
      this.partialLine += buf.toString('latin1', pos, end)
      if (this.partialLine.length + this.trailerText.length > MAX_HEAD_BYTES) this.fail('has a trailer section too large')
      return end
    }
    const line = this.partialLine + buf.toString('latin1', pos, lf + 1)
    this.partialLine = ''
    if (line === '\r\n') {
      if (this.trailerText !== '') {
        const fields: string[] = []
        const problem = parseFields(this.trailerText, fields)
        if (problem !== undefined) { this.fail(problem); return end }
        this.trailers = fields
      }
      this.state = State.Done
      return lf + 1
    }
    this.trailerText += line
    if (this.trailerText.length > MAX_HEAD_BYTES) this.fail('has a trailer section too large')
    return lf + 1
  }

  private fail (problem: string): number {
    this.error = problem
    this.state = State.Done
    return Number.MAX_SAFE_INTEGER
  }
}

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}
