/** One server-sent event: its `event:` name (default `message`) and its `data:` lines joined. */
export interface SseMessage { event: string, data: string, id?: string }

/**
 * An incremental parser of the text/event-stream format (WHATWG HTML
 * §9.2.6): feed it chunks of text as they arrive, get whole messages back.
 * Lines end with LF, CR or CRLF (a CR at the end of a chunk waits for the
 * next one); `:` lines are comments; a blank line dispatches.
 */
export class SseParser {
  private buffer = ''
  private event = ''
  private data: string[] = []
  private id: string | undefined

  push (text: string): SseMessage[] {
    this.buffer += text
    const out: SseMessage[] = []
    let start = 0
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i]
      if (c !== '\n' && c !== '\r') continue
      if (c === '\r' && i === this.buffer.length - 1) break // maybe the CR of a CRLF split across chunks
      this.line(this.buffer.slice(start, i), out)
      if (c === '\r' && this.buffer[i + 1] === '\n') i++
      start = i + 1
    }
    this.buffer = this.buffer.slice(start)
    return out
  }

  /** The stream ended: a message without its blank line is dropped, as the standard says. */
  end (): SseMessage[] {
    const out: SseMessage[] = []
    if (this.buffer.endsWith('\r')) this.line(this.buffer.slice(0, -1), out)
    this.buffer = ''
    return out
  }

  private line (line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ event: this.event === '' ? 'message' : this.event, data: this.data.join('\n'), ...(this.id === undefined ? {} : { id: this.id }) })
      this.event = ''
      this.data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
    else if (field === 'id' && !value.includes('\0')) this.id = value
  }
}
