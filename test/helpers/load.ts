import { Agent, request } from 'node:http'

/**
 * Client-side load that counts every outcome itself. Each worker sends one
 * request at a time until `stop()` (or its safety bounds), so a failure is a
 * request that got a non-2xx status, a socket error or a wrong body.
 */
export interface LoadOptions {
  /** Workers on keep-alive connections doing GETs. */
  keepAlive?: number
  /** Workers sending `Connection: close` GETs (a new connection each). */
  close?: number
  /** Workers POSTing a body of `postBytes` on keep-alive. */
  posts?: number
  postBytes?: number
  /** Workers sending slow requests of `slowMs`. */
  slow?: number
  slowMs?: number
  path?: string
  host?: string
  /** Safety bounds: a worker stops after this many requests or this long. */
  maxRequests?: number
  maxMs?: number
  /** Extra request headers of every request. */
  headers?: Record<string, string>
  /** Called with every answer: the app's version (undefined: baton answered itself), the status, when it was sent and when it ended (ms epoch). */
  onAnswer?: (version: string | undefined, status: number, sentAt: number, endedAt: number) => void
}

export interface LoadResult {
  sent: number
  ok: number
  failed: number
  /** Failures that are not the app's own answer (no x-app-version): socket errors, baton's 5xx. */
  batonFailed: number
  slowOk: number
  byStatus: Record<string, number>
  errors: Record<string, number>
  /** The first few failures, for the test's message. */
  samples: string[]
  versions: Record<string, number>
}

export interface Load {
  stop: () => Promise<LoadResult>
  result: LoadResult
}

export function startLoad (baseUrl: string, o: LoadOptions): Load {
  const u = new URL(baseUrl)
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, batonFailed: 0, slowOk: 0, byStatus: {}, errors: {}, samples: [], versions: {} }
  let stopped = false
  const deadline = Date.now() + (o.maxMs ?? 120_000)
  const maxRequests = o.maxRequests ?? 200_000
  const agents: Agent[] = []

  const fail = (what: string, byApp = false): void => {
    result.failed++
    if (!byApp) result.batonFailed++
    if (result.samples.length < 20) result.samples.push(what)
  }

  const one = async (kind: 'ka' | 'close' | 'post' | 'slow', agent: Agent | false): Promise<void> => {
    const path = kind === 'slow' ? `/slow?ms=${o.slowMs ?? 2000}` : kind === 'post' ? '/sink' : (o.path ?? '/echo')
    const body = kind === 'post' ? Buffer.alloc(o.postBytes ?? 4096, 97) : undefined
    result.sent++
    const sentAt = Date.now()
    await new Promise<void>(resolve => {
      const req = request({
        host: u.hostname,
        port: u.port,
        path,
        method: body === undefined ? 'GET' : 'POST',
        agent,
        headers: {
          ...o.headers,
          ...(o.host !== undefined ? { host: o.host } : {}),
          ...(kind === 'close' ? { connection: 'close' } : {}),
          ...(body !== undefined ? { 'content-length': body.length } : {})
        }
      }, res => {
        const chunks: Buffer[] = []
        res.on('data', c => chunks.push(c))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          result.byStatus[status] = (result.byStatus[status] ?? 0) + 1
          const v = res.headers['x-app-version']
          if (typeof v === 'string') result.versions[v] = (result.versions[v] ?? 0) + 1
          o.onAnswer?.(typeof v === 'string' ? v : undefined, status, sentAt, Date.now())
          if (status >= 200 && status < 300) {
            const text = Buffer.concat(chunks).toString()
            if (kind === 'post' && !text.includes(`"size":${body!.length}`)) fail(`post body lost: ${text.slice(0, 80)}`)
            else { result.ok++; if (kind === 'slow') result.slowOk++ }
          } else {
            fail(`${kind} ${path}: status ${status} ${typeof v === 'string' ? `from ${v} ` : ''}${Buffer.concat(chunks).toString().slice(0, 100)}`, typeof v === 'string')
          }
          resolve()
        })
        res.on('error', err => { result.errors[(err as NodeJS.ErrnoException).code ?? err.message] = 1 + (result.errors[(err as NodeJS.ErrnoException).code ?? err.message] ?? 0); fail(`${kind}: response error ${err.message}`); resolve() })
      })
      req.on('error', err => {
        const code = (err as NodeJS.ErrnoException).code ?? err.message
        result.errors[code] = (result.errors[code] ?? 0) + 1
        fail(`${kind} ${path}: ${code}`)
        resolve()
      })
      req.end(body)
    })
  }

  const worker = async (kind: 'ka' | 'close' | 'post' | 'slow'): Promise<void> => {
    const agent = kind === 'close' ? false : new Agent({ keepAlive: true, maxSockets: 1 })
    if (agent !== false) agents.push(agent)
    let n = 0
    while (!stopped && n++ < maxRequests && Date.now() < deadline) await one(kind, agent)
  }

  const workers: Array<Promise<void>> = []
  for (let i = 0; i < (o.keepAlive ?? 0); i++) workers.push(worker('ka'))
  for (let i = 0; i < (o.close ?? 0); i++) workers.push(worker('close'))
  for (let i = 0; i < (o.posts ?? 0); i++) workers.push(worker('post'))
  for (let i = 0; i < (o.slow ?? 0); i++) workers.push(worker('slow'))

  return {
    result,
    stop: async () => {
      stopped = true
      await Promise.all(workers)
      for (const a of agents) a.destroy()
      return result
    }
  }
}
