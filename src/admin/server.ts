import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { log } from '../log.js'
import { tokenMatches } from './auth.js'

export class AdminError extends Error {
  constructor (readonly status: 400 | 401 | 404 | 409 | 413 | 500, message: string, readonly code = 'BATON_ERR_ADMIN') {
    super(message)
    this.name = 'AdminError'
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<unknown> | unknown

interface Route { method: string, pattern: RegExp, handler: Handler, raw?: boolean, open?: boolean }

/**
 * The admin API's HTTP plumbing: bearer-token check, a route table, JSON in
 * and out, and every failure as `{"error": "..."}` with its status.
 */
export class AdminServer {
  private readonly routes: Route[] = []
  private server: Server | undefined
  token: string | undefined

  constructor (token: string | undefined) {
    this.token = token
  }

  /** Registers a route; a handler's return value is sent as JSON (200), unless `raw`. */
  on (method: string, path: string, handler: Handler, raw = false): this {
    this.routes.push({ method, pattern: compile(path), handler, raw })
    return this
  }

  /**
   * Registers a raw route that needs no token: the live page's own files
   * (SPEC §3, §10), which carry no pool data.
   */
  onOpen (method: string, path: string, handler: Handler): this {
    this.routes.push({ method, pattern: compile(path), handler, raw: true, open: true })
    return this
  }

  async listen (host: string, port: number): Promise<{ host: string, port: number }> {
    const server = createServer((req, res) => { void this.handle(req, res) })
    server.keepAliveTimeout = 5_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    this.server = server
    const addr = server.address() as AddressInfo
    log('info', 'admin listening', { host, port: addr.port })
    return { host, port: addr.port }
  }

  async close (): Promise<void> {
    const s = this.server
    if (s === undefined) return
    this.server = undefined
    await new Promise<void>(resolve => {
      s.close(() => resolve())
      s.closeAllConnections()
    })
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    try {
      if (!(req.method === 'GET' && path === '/healthz') && this.token !== undefined &&
          !this.isOpen(req.method, path) && !tokenMatches(req.headers.authorization, this.token)) {
        throw new AdminError(401, 'a valid bearer token is required')
      }
      let pathMatched = false
      for (const r of this.routes) {
        const m = r.pattern.exec(path)
        if (m === null) continue
        pathMatched = true
        if (r.method !== req.method) continue
        const params = m.slice(1).map(decodeParam)
        const result = await r.handler(req, res, params)
        if (!r.raw) sendJson(res, res.statusCode === 200 ? 200 : res.statusCode, result)
        return
      }
      throw new AdminError(404, pathMatched ? `${req.method ?? ''} is not allowed on ${path}` : `no such route: ${path}`)
    } catch (err) {
      const status = err instanceof AdminError ? err.status : 500
      const message = err instanceof Error ? err.message : String(err)
      if (status === 500) log('error', 'admin request failed', { path, error: message })
      // A body left half read (413) cannot be followed by another request on this connection.
      if (status === 413 && !res.headersSent) res.setHeader('connection', 'close')
      if (!res.headersSent) sendJson(res, status, { error: message })
      else res.destroy()
    }
  }

  private isOpen (method: string | undefined, path: string): boolean {
    return this.routes.some(r => r.open === true && r.method === method && r.pattern.test(path))
  }
}

const compile = (path: string): RegExp => new RegExp('^' + path.replace(/:[a-z]+/g, '([^/]+)') + '$')

function decodeParam (s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    throw new AdminError(400, `the path has a malformed %-escape: ${s}`)
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Reads a JSON body up to `limit` bytes; 413 beyond it, 400 when it is not JSON. */
export async function readJson (req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new AdminError(413, `the request body is over ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return {}
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new AdminError(400, 'the request body is not valid JSON')
  }
}
