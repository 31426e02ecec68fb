import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'

/** HTTP/2 clients for tests (hostile ones are test/fixtures/h2-flood.mjs). */

export interface H2Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  trailers: IncomingHttpHeaders
}

/** A session to a TLS listener (ALPN h2), certificates not checked (they are made for the test). */
export function h2Session (port: number, servername = 'h2.test'): ClientHttp2Session {
  const session = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername })
  session.on('error', () => undefined)
  return session
}

/** One stream; rejects (with `rstCode`) when it is reset or the session fails before its end. */
export async function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders = {}, body?: string | Buffer): Promise<H2Reply> {
  return await new Promise<H2Reply>((resolve, reject) => {
    const stream = session.request({ ':path': '/echo', ...headers }, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let head: IncomingHttpHeaders = {}
    let trailers: IncomingHttpHeaders = {}
    stream.on('response', h => { head = h })
    stream.on('trailers', t => { trailers = t })
    stream.on('data', (c: Buffer) => chunks.push(c))
    // A reset comes as an error first: the close after it says with which code.
    stream.on('error', () => undefined)
    stream.on('close', () => {
      if (stream.rstCode !== constants.NGHTTP2_NO_ERROR || head[':status'] === undefined) {
        reject(Object.assign(new Error(`stream closed with code ${stream.rstCode}`), { rstCode: stream.rstCode }))
        return
      }
      const all = Buffer.concat(chunks)
      resolve({ status: Number(head[':status']), headers: head, body: all, text: all.toString(), trailers })
    })
    if (body !== undefined) stream.end(body)
  })
}

export async function h2Close (session: ClientHttp2Session): Promise<void> {
  if (session.destroyed) return
  await new Promise<void>(resolve => session.close(() => resolve()))
}

export interface H2LoadResult {
  /** Streams that got a whole response. */
  ok: number
  /** Streams reset, cut or answered 5xx, with why (counted by code). */
  failed: number
  errors: Record<string, number>
  /** Whole responses per `x-app-version`, and the versions of the streams opened after `mark()`. */
  versions: Record<string, number>
  afterMark: Record<string, number>
  /** Sessions opened, GOAWAYs received, and requests started again on a new session (not sent, or refused unprocessed). */
  sessions: number
  goaways: number
  restarted: number
}

/**
 * A client that keeps `streams` requests in flight over HTTP/2, as a
 * browser would: one session at a time, a new one once the server sent
 * GOAWAY (the streams it took still finish on the old one). A request the
 * client could not even start on a session going away is started again on
 * the next (nothing was sent); a stream refused with REFUSED_STREAM (the
 * server says it never processed it) likewise, as RFC 9113 §8.7 allows.
 * Anything else that does not end in a whole non-5xx response is a failure.
 */
export function startH2Load (port: number, o: { streams?: number, path?: string, servername?: string } = {}): { mark: () => void, stop: () => Promise<H2LoadResult> } {
  const r: H2LoadResult = { ok: 0, failed: 0, errors: {}, versions: {}, afterMark: {}, sessions: 0, goaways: 0, restarted: 0 }
  let session: ClientHttp2Session | undefined
  let stopping = false
  let marked = false
  const fail = (why: string): void => { r.failed++; r.errors[why] = (r.errors[why] ?? 0) + 1 }
  const current = (): ClientHttp2Session => {
    if (session === undefined || session.closed || session.destroyed) {
      const s = h2Session(port, o.servername)
      s.once('goaway', () => { r.goaways++; if (session === s) session = undefined })
      session = s
      r.sessions++
    }
    return session
  }
  const one = async (): Promise<void> => {
    const afterMark = marked
    for (let attempt = 0; attempt < 5; attempt++) {
      let reply: H2Reply
      const s = current()
      try {
        reply = await h2Request(s, { ':path': o.path ?? '/' })
      } catch (err) {
        const e = err as { code?: string, rstCode?: number }
        if (e.code === 'ERR_HTTP2_GOAWAY_SESSION' || e.code === 'ERR_HTTP2_INVALID_SESSION' || e.rstCode === constants.NGHTTP2_REFUSED_STREAM) {
          if (session === s) session = undefined
          r.restarted++
          continue
        }
        fail(e.rstCode !== undefined ? `rst ${e.rstCode}` : e.code ?? String(err))
        return
      }
      if (reply.status >= 500) { fail(`status ${reply.status}`); return }
      r.ok++
      const v = String(reply.headers['x-app-version'])
      r.versions[v] = (r.versions[v] ?? 0) + 1
      if (afterMark) r.afterMark[v] = (r.afterMark[v] ?? 0) + 1
      return
    }
    fail('not started after 5 sessions')
  }
  const loops = Array.from({ length: o.streams ?? 6 }, async () => {
    while (!stopping) await one()
  })
  return {
    mark: () => { marked = true },
    stop: async () => {
      stopping = true
      await Promise.all(loops)
      if (session !== undefined) await h2Close(session)
      return r
    }
  }
}
