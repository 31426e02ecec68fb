import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { createServer, type Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls'
import type { ListenerTable } from '../controller/data-plane-link.js'
import { log } from '../log.js'
import type { H2Front } from './h2-server.js'
import { CertificateSet } from './sni.js'

type ListenerTls = NonNullable<ListenerTable['tls']>

/**
 * The same in every data plane (every worker process), so that a session
 * resumes on any of them: with the shared ticket key, OpenSSL accepts a
 * ticket only where the session id context matches.
 */
const SESSION_ID_CONTEXT = 'baton'

/**
 * A TLS listener (README "TLS"): a node:tls server that does the handshake —
 * the certificate by SNI, ALPN `h2` or `http/1.1`, session tickets under the
 * controller's key — and hands each connection on: `h2` to the HTTP/2 side,
 * anything else to an HTTP/1.1 server made exactly like a plain listener's,
 * so HTTP/1.1 over TLS (WebSockets included) takes the very same path.
 * Certificates are swapped in place: new handshakes get the new ones, open
 * connections keep theirs, nothing is closed.
 */
export class TlsFront {
  readonly server: TlsServer
  private certificates: CertificateSet
  private ticketKey: string | undefined
  /** Every TCP connection it accepted, handshake done or not, for the last step of a stop. */
  private readonly connections = new Set<Socket>()

  constructor (
    tls: ListenerTls,
    ticketKey: string | undefined,
    private readonly http: HttpServer,
    readonly h2: H2Front | undefined,
    handshakeTimeout: number,
    onHandshakeError: (err: NodeJS.ErrnoException) => void
  ) {
    this.certificates = new CertificateSet(tls)
    this.ticketKey = ticketKey
    this.server = createServer({
      ...this.contextOptions(),
      ALPNProtocols: h2 === undefined ? ['http/1.1'] : ['h2', 'http/1.1'],
      SNICallback: (name, cb) => cb(null, this.certificates.pick(name)),
      handshakeTimeout
    })
    this.server.on('connection', (socket: Socket) => {
      this.connections.add(socket)
      socket.once('close', () => this.connections.delete(socket))
    })
    this.server.on('secureConnection', this.onSecureConnection)
    this.server.on('tlsClientError', onHandshakeError)
  }

  /** The table's certificates and ticket key, for new handshakes from now on. */
  update (tls: ListenerTls, ticketKey: string | undefined): void {
    const sameCertificates = JSON.stringify(tls) === JSON.stringify(this.certificates.tls)
    if (sameCertificates && ticketKey === this.ticketKey) return
    this.ticketKey = ticketKey
    if (!sameCertificates) {
      try {
        this.certificates = new CertificateSet(tls)
      } catch (err) {
        // The controller checked them; should OpenSSL here still refuse them, the old ones serve on.
        log('error', 'TLS certificates refused; the previous ones keep serving', { error: (err as Error).message })
        return
      }
    }
    // A new default context; it takes the ticket key and session id context along.
    this.server.setSecureContext(this.contextOptions())
  }

  /** Cuts every connection still open (the end of a stop's grace). */
  destroyAll (): void {
    this.h2?.destroyAll()
    for (const s of this.connections) s.destroy()
  }

  private contextOptions (): TlsOptions {
    const { cert, key } = this.certificates.first
    return {
      cert,
      key,
      minVersion: this.certificates.tls.minVersion,
      sessionIdContext: SESSION_ID_CONTEXT,
      ...(this.ticketKey === undefined ? {} : { ticketKeys: Buffer.from(this.ticketKey, 'base64') })
    }
  }

  private readonly onSecureConnection = (socket: TLSSocket): void => {
    if (socket.alpnProtocol === 'h2' && this.h2 !== undefined) this.h2.accept(socket)
    else this.http.emit('connection', socket)
  }
}
