import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { Report } from './check.js'
import { DEFAULTS } from './defaults.js'
import type { PathSegment } from './source.js'
import type { CertificateConfig, TlsVersion } from './types.js'

// The certificate files of TLS listeners (README "TLS"), read when the config
// is loaded — by `baton check`, at start and on every reload — so that a
// missing, unreadable or mismatched pair is a config error at its key, and a
// reload with a bad file is refused whole while the old certificates serve.

type Raw = Record<string, unknown>
const asMap = (v: unknown): Raw | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Raw : undefined

const DAY_MS = 86_400_000

/**
 * Reads every `listen[i].tls.certificates[j]` pair that names two files,
 * reporting each problem at its key (`cert` or `key`) and each warning
 * (expired, not yet valid, no name) at `cert`. Returns the pairs that passed,
 * keyed `i.j`.
 */
export function loadCertificates (raw: unknown, dir: string, report: Report, warn: Report, now = Date.now()): Map<string, CertificateConfig> {
  const out = new Map<string, CertificateConfig>()
  const listen = asMap(raw)?.listen
  if (!Array.isArray(listen)) return out
  listen.forEach((l, i) => {
    const tls = asMap(asMap(l)?.tls)
    if (tls === undefined || !Array.isArray(tls.certificates)) return
    const minVersion: TlsVersion = tls.minVersion === 'TLSv1.3' ? 'TLSv1.3' : DEFAULTS.tls.minVersion
    tls.certificates.forEach((c, j) => {
      const pair = asMap(c)
      if (typeof pair?.cert !== 'string' || typeof pair.key !== 'string' || pair.cert === '' || pair.key === '') return
      const path: PathSegment[] = ['listen', i, 'tls', 'certificates', j]
      const loaded = loadPair(dir, pair.cert, pair.key, minVersion,
        (key, message) => report([...path, key], message), message => warn([...path, 'cert'], message), now)
      if (loaded !== undefined) out.set(`${i}.${j}`, loaded)
    })
  })
  return out
}

function loadPair (dir: string, certPath: string, keyPath: string, minVersion: TlsVersion,
  problem: (key: 'cert' | 'key', message: string) => void, warning: (message: string) => void, now: number): CertificateConfig | undefined {
  const certFile = resolve(dir, certPath)
  const keyFile = resolve(dir, keyPath)
  const certText = readPem(certFile, certPath, m => problem('cert', m))
  const keyText = readPem(keyFile, keyPath, m => problem('key', m))
  if (certText === undefined || keyText === undefined) return undefined

  let x509: X509Certificate
  try {
    x509 = new X509Certificate(certText)
  } catch {
    problem('cert', `${certPath} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`)
    return undefined
  }
  let key: KeyObject
  try {
    key = createPrivateKey(keyText)
  } catch (err) {
    problem('key', (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE'
      ? `${keyPath} is encrypted: baton needs the key without a passphrase`
      : `${keyPath} holds no PEM private key (expected -----BEGIN PRIVATE KEY----- or similar)`)
    return undefined
  }
  if (!x509.checkPrivateKey(key)) {
    problem('key', `${keyPath} is not the key of the certificate in ${certPath} (they do not match)`)
    return undefined
  }
  try {
    // What the data plane will do with them: a pair OpenSSL refuses (a weak
    // key, an unsupported algorithm) is found here, not at the first handshake.
    createSecureContext({ cert: certText, key: keyText, minVersion })
  } catch (err) {
    problem('cert', `OpenSSL refuses ${certPath} with its key: ${(err as Error).message}`)
    return undefined
  }

  const notAfter = Date.parse(x509.validTo)
  const notBefore = Date.parse(x509.validFrom)
  if (notAfter < now) {
    warning(`the certificate in ${certPath} expired on ${isoDay(notAfter)} (${Math.ceil((now - notAfter) / DAY_MS)} day(s) ago): clients will refuse it`)
  } else if (notBefore > now) {
    warning(`the certificate in ${certPath} is not valid before ${isoDay(notBefore)}: clients will refuse it until then`)
  }
  const names = certificateNames(x509)
  if (names.length === 0) warning(`the certificate in ${certPath} names no host (no DNS subjectAltName, no CN): only clients that get it as the default see it`)
  return { certFile, keyFile, cert: certText, key: keyText, names }
}

function isoDay (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

function readPem (file: string, written: string, problem: (message: string) => void): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : code ?? (err as Error).message
    problem(`cannot read ${written}: ${why}${written === file ? '' : ` (${file})`}`)
    return undefined
  }
}

/** `DNS:a.example, DNS:"b, c"` entries (Node quotes names with a comma or quote). */
const SAN_DNS = /(?:^|, )DNS:("(?:[^"\\]|\\.)*"|[^,]*)/g

/** The names SNI matches: the DNS subjectAltNames, else the subject's CN (RFC 6125 §6.4.4), lower-cased, without a final dot. */
export function certificateNames (x509: X509Certificate): string[] {
  const names: string[] = []
  for (const m of (x509.subjectAltName ?? '').matchAll(SAN_DNS)) {
    names.push(m[1].startsWith('"') ? JSON.parse(m[1]) as string : m[1])
  }
  if (names.length === 0) {
    const cn = /^CN=(.+)$/m.exec(x509.subject)
    if (cn !== null) names.push(cn[1])
  }
  return names.map(n => n.toLowerCase().replace(/\.$/, '')).filter(n => n !== '')
}
