import { readFileSync } from 'node:fs'
import { request, type Agent, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  trailers: NodeJS.Dict<string>
  body: Buffer
  text: string
}

export interface SendOptions {
  method?: string
  headers?: Record<string, string | number | string[]>
  body?: string | Buffer
  agent?: Agent | false
  timeoutMs?: number
}

/**
 * One request with node:http (fetch refuses to set Host and hop-by-hop
 * headers); resolves with the whole answer, rejects on a socket error.
 */
export async function send (url: string, o: SendOptions = {}): Promise<Reply> {
  return await new Promise<Reply>((resolve, reject) => {
    const u = new URL(url)
    // The path as written (URL parsing would drop an empty `?`).
    const path = url.slice(u.origin.length)
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body, text: body.toString() })
      })
      res.on('error', reject)
    })
    req.setTimeout(o.timeoutMs ?? 20_000, () => req.destroy(new Error('client timeout')))
    req.on('error', reject)
    req.end(o.body)
  })
}

export interface RawReply {
  /** Everything the server wrote, as latin1. */
  data: string
  /** True when the server closed the connection (false: we gave up waiting). */
  closed: boolean
  /** Time from connect to close, or to giving up. */
  ms: number
  /** Status codes of every response in `data`, in order. */
  statuses: number[]
}

/**
 * Writes raw bytes on a fresh connection (each string of `parts` after
 * `gapMs`), then collects what comes back until the server closes, or
 * `responses` whole responses came (a keep-alive connection stays open), or
 * `waitMs` passes.
 */
export async function raw (port: number, parts: string | Buffer | Array<string | Buffer>, o: { waitMs?: number, gapMs?: number, responses?: number } = {}): Promise<RawReply> {
  const list = Array.isArray(parts) ? parts : [parts]
  return await new Promise<RawReply>(resolve => {
    const sock = connect(port, '127.0.0.1')
    const started = Date.now()
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      const data = Buffer.concat(chunks).toString('latin1')
      const statuses = [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
      resolve({ data, closed, ms: Date.now() - started, statuses })
    }
    sock.on('data', (c: Buffer) => {
      chunks.push(c)
      if (o.responses !== undefined && wholeResponses(Buffer.concat(chunks).toString('latin1')) >= o.responses) finish(false)
    })
    sock.on('close', () => finish(true))
    sock.on('error', () => undefined)
    sock.on('connect', () => {
      let i = 0
      const next = (): void => {
        if (done) return
        if (i < list.length) {
          sock.write(list[i++])
          if (i < list.length) { timer = setTimeout(next, o.gapMs ?? 0); return }
        }
        timer = setTimeout(() => finish(false), o.waitMs ?? 3_000)
      }
      next()
    })
  })
}

/**
 * How many whole HTTP/1.1 responses `data` holds: heads with their
 * Content-Length or chunked bodies (1xx, 204 and 304 have none). A response
 * framed by the connection's close counts once the server closed.
 */
export function wholeResponses (data: string): number {
  let n = 0
  let at = 0
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at)
    if (!data.startsWith('HTTP/1.1 ', at) || headEnd === -1) return n
    const head = data.slice(at, headEnd).toLowerCase()
    const status = Number(head.slice(9, 12))
    let next = headEnd + 4
    const length = /\r\ncontent-length: *(\d+)/.exec(head)
    if (status < 200 || status === 204 || status === 304) {
      // no body
    } else if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      const end = data.indexOf('\r\n0\r\n\r\n', headEnd)
      if (end === -1) return n
      next = end + 7
    } else if (length !== null) {
      next += Number(length[1])
      if (data.length < next) return n
    } else {
      return n
    }
    n++
    at = next
  }
}

/** Polls `fn` until it returns a truthy value, at most `timeoutMs`. */
export async function waitFor<T> (fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<Exclude<T, false | null | undefined>> {
  const until = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await fn()
    if (last !== undefined && last !== null && last !== false) return last as Exclude<T, false | null | undefined>
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms (last: ${JSON.stringify(last)})`)
    await sleep(everyMs)
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Sum of the samples of `name` whose labels include all of `labels`, in the admin API's /metrics. */
export async function metric (adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text()
  return metricIn(text, name, labels)
}

export function metricIn (text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const have = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[2])
  }
  return sum
}

export interface InstanceView { id: string, address: string, state: string, inflight: number, requests: number }

/** The instances of one pool, from GET /v1/pools/NAME. */
export async function instances (adminUrl: string, pool: string): Promise<InstanceView[]> {
  const res = await fetch(`${adminUrl}/v1/pools/${pool}`)
  return ((await res.json()) as { instances: InstanceView[] }).instances
}

/** Resident set size of a process, in MiB (Linux /proc). */
export function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) / 1024
}

/** A port nothing listens on, from a claimed range (see ./ports.ts): refused connections. */
export { deadPort } from './ports.js'

/** The config shape most tests use: one listener and admin on ports from the OS. */
export function config (pools: Record<string, object>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: [{ port: 0, host: '127.0.0.1' }],
    admin: { listen: '127.0.0.1:0' },
    ...extra,
    pools
  }
}

/** User + system CPU time of a process so far, in ms (Linux /proc; clock ticks at 100 Hz). */
export function cpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}
