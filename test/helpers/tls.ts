import { request, Agent } from 'node:https'
import { connect, TLSSocket, type PeerCertificate, type SecureVersion } from 'node:tls'

/** What one request on a fresh TLS connection saw. */
export interface TlsReply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** The certificate the server presented: its CN and SHA-256 fingerprint (empty on a resumed session, which carries none). */
  cn: string | undefined
  fingerprint: string | undefined
  protocol: string | null
  alpn: string | false | null
  reused: boolean
  /** The session to resume with, once the server sent a ticket. */
  session: Buffer | undefined
}

export interface TlsOptions {
  servername?: string
  path?: string
  host?: string
  session?: Buffer
  minVersion?: SecureVersion
  maxVersion?: SecureVersion
  alpn?: string[]
  timeoutMs?: number
}

/**
 * One GET over a new TLS connection (raw HTTP/1.0), the
 * server's certificate and whether the session was resumed. Rejects when the
 * handshake fails (an old protocol version, ...).
 */
export async function tlsGet (port: number, o: TlsOptions = {}): Promise<TlsReply> {
  return await new Promise<TlsReply>((resolve, reject) => {
    const socket = connect({
      port,
      host: '127.0.0.1',
      servername: o.servername,
      rejectUnauthorized: false,
      session: o.session,
      minVersion: o.minVersion,
      maxVersion: o.maxVersion,
      ALPNProtocols: o.alpn ?? ['http/1.1']
    })
    let session: Buffer | undefined
    let cert: PeerCertificate | undefined
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(new Error('tlsGet timed out')), o.timeoutMs ?? 10_000)
    socket.on('session', (s: Buffer) => { session = s })
    socket.once('secureConnect', () => {
      cert = socket.getPeerCertificate()
      // HTTP/1.0: the answer comes unchunked and ends with the connection.
      socket.write(`GET ${o.path ?? '/echo'} HTTP/1.0\r\nHost: ${o.host ?? o.servername ?? 'localhost'}\r\n\r\n`)
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.once('error', err => { clearTimeout(timer); reject(err) })
    socket.once('end', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString()
      const headEnd = text.indexOf('\r\n\r\n')
      const lines = text.slice(0, headEnd).split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      resolve({
        status: Number(lines[0].split(' ')[1]),
        headers,
        body: text.slice(headEnd + 4),
        cn: typeof cert?.subject?.CN === 'string' ? cert.subject.CN : undefined,
        fingerprint: cert?.fingerprint256,
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        reused: socket.isSessionReused(),
        session
      })
      socket.destroy()
    })
  })
}

/** A keep-alive https client on one connection (maxSockets 1), to see a connection live through a change. */
export function keepAliveClient (port: number, servername: string): {
  get: (path: string) => Promise<{ status: number, body: string, reusedSocket: boolean, fingerprint: string | undefined }>
  close: () => void
} {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false, servername })
  return {
    get: async path => await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent, servername, headers: { host: servername } }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { body += c })
        res.on('end', () => {
          const fingerprint = req.socket instanceof TLSSocket ? req.socket.getPeerCertificate().fingerprint256 : undefined
          resolve({ status: res.statusCode ?? 0, body, reusedSocket: req.reusedSocket, fingerprint })
        })
      })
      req.on('error', reject)
      req.end()
    }),
    close: () => agent.destroy()
  }
}
