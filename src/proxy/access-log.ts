import sonicBoom from 'sonic-boom'
import type { AccessLogConfig } from '../config/types.js'
import { log } from '../log.js'

// A CommonJS package: its default export is the module, which carries the class.
const { SonicBoom } = sonicBoom
type SonicBoom = InstanceType<typeof SonicBoom>

declare module 'sonic-boom' {
  // With contentMode 'buffer' it takes Buffers (its typings name only strings).
  interface SonicBoom { write (data: Buffer): boolean }
}

/** What a log line needs of the client's request. */
interface LoggedRequest {
  readonly method?: string
  readonly url?: string
  readonly httpVersionMajor: number
  readonly httpVersionMinor: number
  readonly socket: { readonly remoteAddress?: string } | null
}

/** What a log line needs of the instance that answered. */
interface LoggedUpstream { readonly id: string, readonly version: string }

/**
 * Lines are gathered into a batch of at most this many bytes before they go
 * to the writer. On a pipe (stdout, stderr) a write of at most PIPE_BUF
 * (4 KiB) bytes is atomic, so baton's own log lines never land inside an
 * access log line; a file takes larger writes, each of which wakes a thread
 * of libuv's pool, so fewer is cheaper.
 */
const PIPE_BATCH = 4096
const FILE_BATCH = 64 * 1024
/** How often gathered lines are written even when the batch is not full. */
const FLUSH_EVERY = 1_000
/** Bytes the writer may hold while the disk or pipe is slower than the traffic; lines beyond are dropped (and counted). */
const MAX_PENDING = 16 * 1024 * 1024

/** A JSON string literal; the common case (no quote, backslash or control character) costs one regex test. */
function str (s: string | undefined): string {
  if (s === undefined) return 'null'
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`
}
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f]/

function countLines (bytes: Buffer): number {
  let n = 0
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n++
  return n
}

/**
 * The access log (README "Access log"): one JSON object a line per request, written by
 * sonic-boom (pino's writer) off the event loop: lines gather in a batch,
 * which goes out when full and at least once a second; the file is reopened
 * on reload (logrotate moves it, SIGHUP or `baton reload` reopens it).
 */
export class AccessLog {
  readonly path: string
  private readonly writer: SonicBoom
  private readonly batchLimit: number
  /** Lines gathered, as UTF-8 bytes: each line is encoded once, into this. */
  private batch: Buffer
  private used = 0
  private readonly flusher: NodeJS.Timeout
  private lastMs = 0
  private lastIso = ''
  private dropped = 0
  private closed = false

  constructor (config: AccessLogConfig) {
    this.path = config.path
    const stream = config.path === 'stdout' ? 1 : config.path === 'stderr' ? 2 : undefined
    this.batchLimit = stream === undefined ? FILE_BATCH : PIPE_BATCH
    this.writer = new SonicBoom({
      ...(stream === undefined ? { dest: config.path, mkdir: false, append: true } : { fd: stream }),
      sync: false,
      contentMode: 'buffer',
      minLength: 0,
      maxWrite: this.batchLimit,
      maxLength: MAX_PENDING
    })
    this.writer.on('error', (err: NodeJS.ErrnoException) => {
      log('error', 'access log write failed', { path: this.path, code: err.code, error: err.message })
    })
    this.writer.on('drop', (data: Buffer) => { this.dropped += countLines(data) })
    this.batch = Buffer.allocUnsafe(this.batchLimit)
    this.flusher = setInterval(this.tick, FLUSH_EVERY).unref()
    process.once('exit', this.onExit)
  }

  /** One finished request. `pool`, `upstream`: where it went (null when baton answered before choosing); `error`: why baton answered itself. */
  request (req: LoggedRequest, host: string | undefined, status: number, bytesIn: number, bytesOut: number, ms: number,
    pool: string | undefined, upstream: LoggedUpstream | undefined, attempts: number, error: string | undefined): void {
    if (this.closed) return
    const line = `{"time":"${this.now()}","client":${str(req.socket?.remoteAddress)},"method":${str(req.method)},` +
      `"host":${str(host)},"path":${str(req.url)},"protocol":"${req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/1.${req.httpVersionMinor}`}","status":${status},` +
      `"bytesIn":${bytesIn},"bytesOut":${bytesOut},"durationMs":${Math.round(ms * 1000) / 1000},"pool":${str(pool)},` +
      `"instance":${str(upstream?.id)},"version":${str(upstream?.version)},"attempts":${attempts},"error":${str(error)}}\n`
    // A line of n characters takes at most 3n bytes in UTF-8.
    if (this.used + line.length * 3 > this.batchLimit) {
      this.flush()
      if (line.length * 3 > this.batchLimit) { this.writer.write(Buffer.from(line)); return }
    }
    this.used += this.batch.write(line, this.used)
  }

  /** Reopens the file (after logrotate moved it); stdout and stderr stay as they are. */
  reopen (): void {
    if (this.closed || this.path === 'stdout' || this.path === 'stderr') return
    this.flush()
    this.writer.reopen()
  }

  /** Writes what is gathered and closes the file; resolves once it is written. */
  async close (): Promise<void> {
    if (this.closed) return
    this.flush()
    this.closed = true
    clearInterval(this.flusher)
    process.off('exit', this.onExit)
    await new Promise<void>(resolve => {
      this.writer.once('close', () => resolve())
      this.writer.once('error', () => resolve())
      this.writer.end()
    })
  }

  /** Once a second: what is gathered goes out, and lines dropped meanwhile are reported (once, not per line). */
  private readonly tick = (): void => {
    this.flush()
    if (this.dropped > 0) {
      log('warn', 'access log lines dropped: the destination is slower than the traffic', { path: this.path, lines: this.dropped })
      this.dropped = 0
    }
  }

  /** Moves the batch to the writer, which writes it at once unless a write is under way. */
  private flush (): void {
    if (this.used === 0 || this.closed) return
    // The writer keeps the bytes until they are written: they go to it, and a new batch begins.
    const bytes = this.batch.subarray(0, this.used)
    this.batch = Buffer.allocUnsafe(this.batchLimit)
    this.used = 0
    this.writer.write(bytes)
  }

  /** An exit without stop (a crash): what is gathered is written synchronously, best effort. */
  private readonly onExit = (): void => {
    if (this.closed) return
    try {
      this.flush()
      this.writer.flushSync()
    } catch { /* nothing more can be done on the way out */ }
  }

  /** ISO 8601 time, made once per millisecond. */
  private now (): string {
    const ms = Date.now()
    if (ms !== this.lastMs) {
      this.lastMs = ms
      this.lastIso = new Date(ms).toISOString()
    }
    return this.lastIso
  }
}
