import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Certificates for tests, made at test time with the openssl CLI (no key is
 * ever committed): self-signed, P-256 keys (fast to make), named by their
 * subjectAltNames or only by a CN, optionally expired.
 */
export interface TestCert {
  /** Paths of the PEM files. */
  cert: string
  key: string
  certPem: string
  keyPem: string
}

export interface CertOptions {
  /** DNS subjectAltNames; none: the certificate is named by its CN alone. */
  names?: string[]
  cn?: string
  /** Valid from 2020-01-01 to 2020-02-01. */
  expired?: boolean
  /** Files under these names (default `<file>.pem` and `<file>.key`). */
  file?: string
}

export function tempDir (prefix = 'baton-certs-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

function openssl (args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

export function makeCert (dir: string, o: CertOptions = {}): TestCert {
  const file = o.file ?? (o.names?.[0] ?? o.cn ?? 'cert').replace(/[^A-Za-z0-9.-]/g, '_')
  const cert = join(dir, `${file}.pem`)
  const key = join(dir, `${file}.key`)
  const cn = o.cn ?? o.names?.[0] ?? 'baton test'
  const san = o.names === undefined || o.names.length === 0 ? [] : ['-addext', `subjectAltName=${o.names.map(n => `DNS:${n}`).join(',')}`]
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key]
  if (o.expired !== true) {
    openssl(['req', '-x509', ...keyArgs, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, ...san], dir)
  } else {
    // `req -x509` takes no start date: a self-signed certificate through `ca` does.
    const ca = join(dir, `${file}.ca`)
    mkdirSync(ca, { recursive: true })
    writeFileSync(join(ca, 'index.txt'), '')
    writeFileSync(join(ca, 'serial'), '01\n')
    writeFileSync(join(ca, 'ca.cnf'), [
      '[ ca ]', 'default_ca = d', '[ d ]', `database = ${ca}/index.txt`, `new_certs_dir = ${ca}`, `serial = ${ca}/serial`,
      'default_md = sha256', 'policy = p', 'unique_subject = no', 'copy_extensions = copy', '[ p ]', 'commonName = supplied', ''
    ].join('\n'))
    const csr = join(ca, 'req.csr')
    openssl(['req', ...keyArgs, '-out', csr, '-subj', `/CN=${cn}`, ...san], dir)
    openssl(['ca', '-batch', '-notext', '-config', join(ca, 'ca.cnf'), '-selfsign', '-keyfile', key, '-in', csr, '-out', cert,
      '-startdate', '20200101000000Z', '-enddate', '20200201000000Z'], dir)
  }
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') }
}
