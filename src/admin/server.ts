import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Server as NetServer, type AddressInfo } from 'node:net'
import { log } from '../log.js'
import { tokenMatches } from './auth.js'
import { AdminError, answerOf } from './errors.js'
import { Router } from './router.js'

export type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<unknown> | unknown

/** `open`: answered without the token (GET /healthz and the live page's own files, README "Admin API"). */
interface Entry { handler: Handler, raw: boolean, open: boolean }

/** Idle keep-alive connections to the admin API close after this (Node's own default). */
const ADMIN_KEEP_ALIVE_MS = 5_000
/** The largest admin request body: a rollout body is a few hundred bytes. */
const BODY_LIMIT = 64 * 1024

/**
 * The admin API's HTTP plumbing: bearer-token check, a route table, JSON in
 * and out, and every failure as `{"error": "...", "code": "BATON_ERR_..."}`
 * with its status.
 */
export class AdminServer {
  private readonly routes = new Router<Entry>()
  private server: Server | undefined
  /** Once stopAccepting: every answer closes its connection, so clients move to the next controller. */
  private retiring = false
  token: string | undefined

  constructor (token: string | undefined) {
    this.token = token
  }

  /** Registers a route; a handler's return value is sent as JSON (200), unless `raw`. */
  on (method: string, path: string, handler: Handler, raw = false): this {
    this.routes.add(method, path, { handler, raw, open: false })
    return this
  }

  /** Registers a route that needs no token: GET /healthz and the live page's own files. */
  onOpen (method: string, path: string, handler: Handler, raw = true): this {
    this.routes.add(method, path, { handler, raw, open: true })
    return this
  }

  /** Listens on host:port, or accepts on `handle`, a socket the supervisor bound (src/supervisor/listeners.ts). */
  async listen (host: string, port: number, handle?: object): Promise<{ host: string, port: number }> {
    const server = createServer((req, res) => { void this.handle(req, res) })
    server.keepAliveTimeout = ADMIN_KEEP_ALIVE_MS
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      const done = (): void => { server.off('error', reject); resolve() }
      if (handle !== undefined) server.listen(handle, done)
      else server.listen(port, host, done)
    })
    this.server = server
    const addr = server.address() as AddressInfo
    log('info', 'admin listening', { host, port: addr.port })
    return { host, port: addr.port }
  }

  /**
   * Stops accepting on this process's copy of the listener only: requests
   * under way finish, keep-alive connections close after their next answer.
   * (An upgrade: the next controller accepts on the same socket.)
   */
  stopAccepting (): void {
    const s = this.server
    if (s === undefined) return
    this.retiring = true
    NetServer.prototype.close.call(s)
  }

  /** Connections still open (after stopAccepting: how many are left to finish). */
  async connections (): Promise<number> {
    const s = this.server
    if (s === undefined) return 0
    return await new Promise(resolve => s.getConnections((_err, n) => resolve(n)))
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
    if (this.retiring) res.shouldKeepAlive = false
    const path = (req.url ?? '/').split('?')[0]
    const method = req.method ?? ''
    try {
      const found = this.routes.find(method, path)
      // A path that is no valid percent-encoding names nothing: refused before the token, which it cannot reach past.
      if (found.kind === 'bad-path') throw new AdminError(400, 'BATON_ERR_ADMIN_BAD_PATH', `the path ${path} is not valid percent-encoding`)
      const open = found.kind === 'found' && found.handler.open
      if (!open && this.token !== undefined && !tokenMatches(req.headers.authorization, this.token)) {
        throw new AdminError(401, 'BATON_ERR_ADMIN_UNAUTHORIZED', 'a valid bearer token is required')
      }
      switch (found.kind) {
        case 'none': throw new AdminError(404, 'BATON_ERR_ADMIN_NO_ROUTE', `no such route: ${path}`)
        case 'method': throw new AdminError(404, 'BATON_ERR_ADMIN_METHOD', `${method} is not allowed on ${path}`)
      }
      const result = await found.handler.handler(req, res, found.params)
      if (!found.handler.raw) sendJson(res, res.statusCode, result)
    } catch (err) {
      const { status, code, message } = answerOf(err)
      if (status === 500) log('error', 'admin request failed', { path, error: message })
      // A body left half read (413) cannot be followed by another request on this connection.
      if (status === 413 && !res.headersSent) res.setHeader('connection', 'close')
      if (!res.headersSent) sendJson(res, status, { error: message, code })
      else res.destroy()
    }
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Reads a JSON body up to `limit` bytes; 413 beyond it, 400 when it is not JSON. */
export async function readJson (req: IncomingMessage, limit = BODY_LIMIT): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const b = chunk as Buffer
    size += b.length
    if (size > limit) throw new AdminError(413, 'BATON_ERR_ADMIN_BODY_TOO_LARGE', `the request body is over ${limit} bytes`)
    chunks.push(b)
  }
  if (size === 0) return {}
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new AdminError(400, 'BATON_ERR_ADMIN_BAD_JSON', 'the request body is not valid JSON')
  }
}
