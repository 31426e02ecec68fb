import { readFileSync } from 'node:fs'
import { StringDecoder } from 'node:string_decoder'
import type { Dispatcher, Pool } from 'undici'
import { DriverError, type DriverErrorCode } from '../types.js'

/**
 * A small Docker Engine API client (API 1.41, Docker 20.10 and later) over
 * undici: no docker CLI, no SDK. One connection pool per engine, because
 * `wait` and `logs` are long polls that hold a connection each.
 */

const API = '/v1.41'
/** Ordinary calls (create, start, inspect, kill, remove, list). */
const CALL_TIMEOUT = 30_000
const PING_TIMEOUT = 1_500
/** A pull of a missing image may take a while. */
const PULL_TIMEOUT = 600_000
/** The ports Docker listens on over tcp, plain and TLS, when the address names none. */
const DOCKER_PORT = 2375
const DOCKER_TLS_PORT = 2376
/** A log frame: 1 byte stream type, 3 zero bytes, a 4-byte big-endian payload size, then the payload. */
const FRAME_HEADER = 8
const FRAME_SIZE_AT = 4
/** The stream type byte of stderr (1 is stdout). */
const STDERR = 2
/** A line of output with no end in sight is logged in pieces of this many characters. */
const LONGEST_LINE = 65_536

export type EngineErrorCode = Extract<DriverErrorCode,
  | 'BATON_ERR_DOCKER_UNREACHABLE' | 'BATON_ERR_DOCKER_TIMEOUT' | 'BATON_ERR_DOCKER_IMAGE'
  | 'BATON_ERR_DOCKER_NOT_FOUND' | 'BATON_ERR_DOCKER_CONFLICT' | 'BATON_ERR_DOCKER_TLS' | 'BATON_ERR_DOCKER_API'>

/** A call to a Docker engine failed (codes: see DriverErrorCode). */
export class EngineError extends DriverError<EngineErrorCode> {
  /** `detail`: the engine's own message, without what baton says around it. */
  constructor (code: EngineErrorCode, message: string, readonly status?: number, readonly detail?: string) {
    super(code, message)
  }

  /** The engine could not be talked to at all (as opposed to: it refused). */
  get unreachable (): boolean { return this.code === 'BATON_ERR_DOCKER_UNREACHABLE' || this.code === 'BATON_ERR_DOCKER_TIMEOUT' }
}

export interface EngineTls { ca: string, cert: string, key: string }

export interface ContainerSummary { Id: string, Names: string[], State: string, Labels: Record<string, string> | null }

export interface ContainerInfo {
  Id: string
  Name: string
  RestartCount: number
  State: { Status: string, Running: boolean, Pid: number, ExitCode: number, StartedAt: string }
  Config: { Labels: Record<string, string> | null, Image: string, Env: string[] | null }
  HostConfig: { NetworkMode: string, Init: boolean | null }
  NetworkSettings: { Ports: Record<string, Array<{ HostIp: string, HostPort: string }> | null> | null }
}

export type LogStream = 'stdout' | 'stderr'

interface CallOptions {
  query?: Record<string, string | number | boolean>
  body?: unknown
  /** Overall deadline; 0: none (long polls). */
  timeoutMs?: number
  signal?: AbortSignal
  /** Statuses that are fine besides 2xx (e.g. 304 for a start of a running container). */
  ok?: number[]
}

export class Engine {
  /** Where the instances of this engine are reached: 127.0.0.1 for a local one, the tcp engine's host otherwise. */
  readonly host: string
  readonly local: boolean
  /** The connection pool, made at the first call: undici is loaded only by a baton that has Docker pools (it weighs ~15 MB of RSS). */
  private http: Promise<Pool> | undefined
  private readonly origin: string
  private readonly poolOptions: Pool.Options

  constructor (readonly url: string, tls?: EngineTls) {
    if (url.startsWith('unix://')) {
      this.local = true
      this.host = '127.0.0.1'
      this.origin = 'http://localhost'
      this.poolOptions = { socketPath: url.slice('unix://'.length), headersTimeout: 0, bodyTimeout: 0 }
      return
    }
    this.local = false
    const hostPort = url.replace(/^tcp:\/\//, '').replace(/\/$/, '')
    const withPort = /:\d+$/.test(hostPort) ? hostPort : `${hostPort}:${tls === undefined ? DOCKER_PORT : DOCKER_TLS_PORT}`
    const origin = new URL(`${tls === undefined ? 'http' : 'https'}://${withPort}`)
    this.host = origin.hostname.replace(/^\[|\]$/g, '')
    this.origin = origin.origin
    this.poolOptions = {
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(tls === undefined ? {} : { connect: { ca: readTls(url, tls.ca), cert: readTls(url, tls.cert), key: readTls(url, tls.key) } })
    }
  }

  private async pool (): Promise<Pool> {
    this.http ??= import('undici').then(({ Pool }) => new Pool(this.origin, this.poolOptions))
    return await this.http
  }

  async ping (): Promise<void> {
    const res = await this.call('GET', '/_ping', { timeoutMs: PING_TIMEOUT })
    await res.body.dump()
  }

  /** Creates a container; pulls the image first when the engine does not have it. */
  async create (name: string, spec: Record<string, unknown> & { Image: string }): Promise<string> {
    try {
      return await this.createOnce(name, spec)
    } catch (err) {
      if (!(err instanceof EngineError) || err.code !== 'BATON_ERR_DOCKER_IMAGE') throw err
      try {
        await this.pull(spec.Image)
      } catch (pullErr) {
        throw new EngineError('BATON_ERR_DOCKER_IMAGE',
          `image ${spec.Image} is not on the Docker engine ${this.url} and could not be pulled: ${(pullErr as EngineError).detail ?? (pullErr as Error).message}`)
      }
      return await this.createOnce(name, spec)
    }
  }

  private async createOnce (name: string, spec: Record<string, unknown> & { Image: string }): Promise<string> {
    try {
      const res = await this.call('POST', '/containers/create', { query: { name }, body: spec })
      return ((await res.body.json()) as { Id: string }).Id
    } catch (err) {
      if (err instanceof EngineError && err.status === 404 && /no such image/i.test(err.message)) {
        throw new EngineError('BATON_ERR_DOCKER_IMAGE', `image ${spec.Image} is not on the Docker engine ${this.url}`, 404)
      }
      throw err
    }
  }

  /** POST /images/create: the answer is a stream of JSON progress lines, an error among them. */
  async pull (image: string): Promise<void> {
    const { repo, tag } = splitImage(image)
    const res = await this.call('POST', '/images/create', { query: { fromImage: repo, tag }, timeoutMs: PULL_TIMEOUT })
    const text = await res.body.text()
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      let msg: { error?: string, errorDetail?: { message?: string } }
      try { msg = JSON.parse(line) as typeof msg } catch { continue }
      const error = msg.errorDetail?.message ?? msg.error
      if (error !== undefined) throw new EngineError('BATON_ERR_DOCKER_IMAGE', error, undefined, error)
    }
  }

  async start (id: string): Promise<void> {
    await (await this.call('POST', `/containers/${id}/start`, { ok: [304] })).body.dump()
  }

  async inspect (id: string): Promise<ContainerInfo> {
    return (await (await this.call('GET', `/containers/${id}/json`)).body.json()) as ContainerInfo
  }

  /** Long poll: resolves with the exit code once the container is not running. */
  async wait (id: string, signal?: AbortSignal): Promise<number> {
    const res = await this.call('POST', `/containers/${id}/wait`, { query: { condition: 'not-running' }, timeoutMs: 0, signal })
    return ((await res.body.json()) as { StatusCode: number }).StatusCode
  }

  /** Sends a signal; false when the container was not running (or is gone). */
  async kill (id: string, signal: string): Promise<boolean> {
    try {
      await (await this.call('POST', `/containers/${id}/kill`, { query: { signal } })).body.dump()
      return true
    } catch (err) {
      if (err instanceof EngineError && (err.code === 'BATON_ERR_DOCKER_NOT_FOUND' || err.code === 'BATON_ERR_DOCKER_CONFLICT')) return false
      throw err
    }
  }

  /** Removes a container, running or not (force), with its anonymous volumes. A missing one is fine. */
  async remove (id: string): Promise<void> {
    try {
      await (await this.call('DELETE', `/containers/${id}`, { query: { force: true, v: true } })).body.dump()
    } catch (err) {
      // 404: already gone; 409: a removal is already in progress.
      if (err instanceof EngineError && (err.code === 'BATON_ERR_DOCKER_NOT_FOUND' || err.code === 'BATON_ERR_DOCKER_CONFLICT')) return
      throw err
    }
  }

  /** Containers, running or not, that carry every one of `labels`. */
  async list (labels: Record<string, string>): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) })
    return (await (await this.call('GET', '/containers/json', { query: { all: true, filters } })).body.json()) as ContainerSummary[]
  }

  /**
   * Follows a container's output (stdout and stderr, from the start or the
   * last `tail` lines) line by line; resolves when the stream ends: the
   * container stopped, or `signal` aborted it.
   */
  async logs (id: string, onLine: (stream: LogStream, line: string) => void, o: { tail?: number, signal?: AbortSignal } = {}): Promise<void> {
    const res = await this.call('GET', `/containers/${id}/logs`, {
      query: { follow: true, stdout: true, stderr: true, tail: o.tail === undefined ? 'all' : o.tail },
      timeoutMs: 0,
      signal: o.signal
    })
    const demux = new LogDemuxer(onLine)
    try {
      for await (const chunk of res.body) demux.push(chunk as Buffer)
    } catch { /* aborted, or the engine went away */ }
    demux.end()
  }

  async close (): Promise<void> {
    if (this.http !== undefined) await (await this.http).destroy().catch(() => undefined)
  }

  private async call (method: Dispatcher.HttpMethod, path: string, o: CallOptions = {}): Promise<Dispatcher.ResponseData> {
    const query = o.query === undefined ? '' : '?' + new URLSearchParams(Object.entries(o.query).map(([k, v]) => [k, String(v)])).toString()
    const timeoutMs = o.timeoutMs ?? CALL_TIMEOUT
    const signals = [...(o.signal === undefined ? [] : [o.signal]), ...(timeoutMs > 0 ? [AbortSignal.timeout(timeoutMs)] : [])]
    let res: Dispatcher.ResponseData
    try {
      res = await (await this.pool()).request({
        method,
        path: API + path + query,
        headers: o.body === undefined ? {} : { 'content-type': 'application/json' },
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals)
      })
    } catch (err) {
      throw this.transportError(`${method} ${path}`, err as Error & { code?: string })
    }
    if ((res.statusCode >= 200 && res.statusCode < 300) || o.ok?.includes(res.statusCode) === true) return res
    const text = await res.body.text().catch(() => '')
    let message = text.trim()
    try { message = (JSON.parse(text) as { message?: string }).message ?? message } catch { /* not JSON */ }
    message = message.split('\n')[0] || `status ${res.statusCode}`
    const code: EngineErrorCode = res.statusCode === 404 ? 'BATON_ERR_DOCKER_NOT_FOUND' : res.statusCode === 409 ? 'BATON_ERR_DOCKER_CONFLICT' : 'BATON_ERR_DOCKER_API'
    throw new EngineError(code, `Docker engine ${this.url}: ${method} ${path}: ${message}`, res.statusCode, message)
  }

  private transportError (what: string, err: Error & { code?: string }): EngineError {
    const timedOut = err.name === 'TimeoutError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_CONNECT_TIMEOUT'
    if (timedOut) return new EngineError('BATON_ERR_DOCKER_TIMEOUT', `the Docker engine ${this.url} did not answer ${what} in time`)
    return new EngineError('BATON_ERR_DOCKER_UNREACHABLE', `cannot reach the Docker engine ${this.url} (${what}): ${err.code ?? err.message}`)
  }
}

function readTls (url: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new EngineError('BATON_ERR_DOCKER_TLS', `cannot read ${file} (TLS for the Docker engine ${url}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** `registry:5000/shop:1.2` → shop repo and tag; no tag means latest (an empty tag would pull every tag). */
export function splitImage (image: string): { repo: string, tag: string } {
  const at = image.indexOf('@')
  if (at >= 0) return { repo: image.slice(0, at), tag: image.slice(at + 1) }
  const colon = image.lastIndexOf(':')
  if (colon > image.lastIndexOf('/')) return { repo: image.slice(0, colon), tag: image.slice(colon + 1) }
  return { repo: image, tag: 'latest' }
}

/**
 * The log stream of a container without a TTY is multiplexed: frames of an
 * 8-byte header (stream type: 1 stdout, 2 stderr; 3 bytes zero; payload size,
 * uint32 big-endian) and the payload. This splits it back into lines.
 */
export class LogDemuxer {
  private buf: Buffer = Buffer.alloc(0)
  private readonly text = { stdout: '', stderr: '' }
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') }

  constructor (private readonly onLine: (stream: LogStream, line: string) => void) {}

  push (chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    while (this.buf.length >= FRAME_HEADER) {
      const size = this.buf.readUInt32BE(FRAME_SIZE_AT)
      if (this.buf.length < FRAME_HEADER + size) break
      const stream: LogStream = this.buf[0] === STDERR ? 'stderr' : 'stdout'
      const payload = this.buf.subarray(FRAME_HEADER, FRAME_HEADER + size)
      this.buf = this.buf.subarray(FRAME_HEADER + size)
      this.add(stream, this.decoders[stream].write(payload))
    }
  }

  end (): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      this.add(stream, this.decoders[stream].end())
      if (this.text[stream] !== '') this.onLine(stream, this.text[stream])
      this.text[stream] = ''
    }
  }

  private add (stream: LogStream, s: string): void {
    const lines = (this.text[stream] + s).split('\n')
    this.text[stream] = lines.pop() ?? ''
    for (const line of lines) this.onLine(stream, line.replace(/\r$/, ''))
    // A line with no end in sight is not kept whole forever.
    if (this.text[stream].length > LONGEST_LINE) {
      this.onLine(stream, this.text[stream])
      this.text[stream] = ''
    }
  }
}
