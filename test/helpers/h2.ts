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
