import { createSecureContext, type SecureContext } from 'node:tls'
import type { ListenerTable } from '../controller/data-plane-link.js'

type ListenerTls = NonNullable<ListenerTable['tls']>

/**
 * A TLS listener's certificates as SNI picks them (README "TLS"): by the
 * names each certificate carries, exact names before wildcards, and among
 * equals the first in the config; `*.example.com` matches one label
 * (`a.example.com`, not `example.com` nor `a.b.example.com`, RFC 6125 §6.4.3);
 * no match, or no name sent, gets the first certificate. Made whole from a
 * table and replaced whole on reload.
 */
export class CertificateSet {
  /** Name → index of the certificate; index 0 is the server's default context. */
  private readonly exact = new Map<string, number>()
  /** The part after `*.` → index. */
  private readonly wildcard = new Map<string, number>()
  private readonly contexts: Array<SecureContext | undefined>

  constructor (readonly tls: ListenerTls) {
    tls.certificates.forEach((c, i) => {
      for (const name of c.names) {
        if (name.startsWith('*.')) { if (!this.wildcard.has(name.slice(2))) this.wildcard.set(name.slice(2), i) } else if (!this.exact.has(name)) this.exact.set(name, i)
      }
    })
    // The first certificate is the server's own context (set with setSecureContext).
    this.contexts = tls.certificates.map((c, i) => i === 0 ? undefined : createSecureContext({ cert: c.cert, key: c.key, minVersion: tls.minVersion }))
  }

  /** The context for the name a client sent; undefined: the server's default (the first certificate). */
  pick (servername: string): SecureContext | undefined {
    let name = servername.toLowerCase()
    if (name.endsWith('.')) name = name.slice(0, -1)
    let i = this.exact.get(name)
    if (i === undefined) {
      const dot = name.indexOf('.')
      if (dot > 0) i = this.wildcard.get(name.slice(dot + 1))
    }
    return i === undefined ? undefined : this.contexts[i]
  }

  /** The first certificate: what clients without SNI, or with a name no certificate has, get. */
  get first (): { cert: string, key: string } {
    return this.tls.certificates[0]
  }
}
