import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/types.js'
import { runCli } from '../helpers/baton.js'
import { makeCert, tempDir, type TestCert } from '../helpers/certs.js'
import { expectProblems, yaml } from './helpers.js'

// listen[].tls, http2 and redirect (README "TLS"): the certificate files are
// read when the config is loaded, relative to the config file's folder; a
// missing, unreadable, foreign or mismatched file is an error at its key;
// an expired certificate is a warning that does not stop baton.

describe('TLS listener config', () => {
  let dir: string
  let a: TestCert
  let b: TestCert

  beforeAll(() => {
    dir = tempDir()
    mkdirSync(join(dir, 'certs'))
    a = makeCert(join(dir, 'certs'), { names: ['a.test', '*.a.test'], file: 'a' })
    b = makeCert(join(dir, 'certs'), { names: ['B.Test'], file: 'b' })
    makeCert(join(dir, 'certs'), { cn: 'cn-only.test', file: 'cn' })
    makeCert(join(dir, 'certs'), { names: ['old.test'], expired: true, file: 'old' })
    writeFileSync(join(dir, 'certs', 'garbage.pem'), 'not a certificate\n')
    mkdirSync(join(dir, 'certs', 'folder.key'))
  })

  /** parseConfig of a file in `dir` (so relative paths are read from there). */
  function parse (text: string): Config {
    return parseConfig(text, join(dir, 'baton.yaml'), {})
  }
  function problems (text: string): ConfigProblem[] {
    try {
      parse(text)
      return []
    } catch (err) {
      if (err instanceof ConfigError) return err.problems
      throw err
    }
  }

  it('reads the PEM files relative to the config file, names them by SAN (else CN), HTTP/2 and TLSv1.2 by default', () => {
    const cfg = parse(yaml`
      listen:
        - port: 8443
          tls:
            certificates:
              - { cert: certs/a.pem, key: certs/a.key }
              - { cert: ${b.cert}, key: ${b.key} }
              - { cert: ./certs/cn.pem, key: certs/cn.key }
        - port: 8080
          redirect: https
      pools: { web: { servers: [127.0.0.1:3000] } }
    `)
    const [tls, redirect] = cfg.listen
    expect(tls.http2).toBe(true)
    expect(tls.tls?.minVersion).toBe('TLSv1.2')
    expect(tls.tls?.certificates.map(c => c.names)).toEqual([['a.test', '*.a.test'], ['b.test'], ['cn-only.test']])
    expect(tls.tls?.certificates[0]).toMatchObject({ certFile: a.cert, keyFile: a.key, cert: a.certPem, key: a.keyPem })
    expect(redirect).toEqual({ host: '0.0.0.0', port: 8080, redirect: 'https' })
    expect(cfg.warnings).toEqual([])
  })

  it('takes http2: false and minVersion: TLSv1.3', () => {
    const cfg = parse(yaml`
      listen: [{ port: 8443, http2: false, tls: { minVersion: TLSv1.3, certificates: [{ cert: certs/a.pem, key: certs/a.key }] } }]
      pools: { web: { servers: [127.0.0.1:3000] } }
    `)
    expect(cfg.listen[0]).toMatchObject({ http2: false, tls: { minVersion: 'TLSv1.3' } })
  })

  it('reports a missing, unreadable or foreign file, and a mismatched pair, each at its key', () => {
    expectProblems(problems(yaml`
      listen:
        - port: 8443
          tls:
            certificates:
              - { cert: certs/missing.pem, key: certs/a.key }
              - { cert: certs/a.pem, key: certs/folder.key }
              - { cert: certs/garbage.pem, key: certs/a.key }
              - { cert: certs/a.pem, key: certs/b.key }
              - { cert: certs/a.pem, key: certs/a.pem }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `), [
      '5:19 listen.0.tls.certificates.0.cert: cannot read certs/missing.pem: no such file',
      '6:37 listen.0.tls.certificates.1.key: cannot read certs/folder.key: it is a directory',
      '7:19 listen.0.tls.certificates.2.cert: certs/garbage.pem holds no PEM certificate',
      '8:37 listen.0.tls.certificates.3.key: certs/b.key is not the key of the certificate in certs/a.pem (they do not match)',
      '9:37 listen.0.tls.certificates.4.key: certs/a.pem holds no PEM private key'
    ])
  })

  it('refuses an unknown TLS version, an empty certificate list, a pair without key, and unknown keys', () => {
    expectProblems(problems(yaml`
      listen:
        - port: 8443
          tls: { minVersion: TLSv1.1, certificates: [] }
        - port: 8444
          tls:
            certificates: [{ cert: certs/a.pem }]
            ciphers: HIGH
      pools: { web: { servers: [127.0.0.1:3000] } }
    `), [
      '3:24 listen.0.tls.minVersion: expected TLSv1.2 or TLSv1.3',
      '3:47 listen.0.tls.certificates: needs at least one certificate',
      '6:22 listen.1.tls.certificates.0.key: is required',
      '7:7 listen.1.tls.ciphers: unknown key'
    ])
  })

  it('refuses HTTP/2 without TLS, a redirect with TLS or http2, and a redirect with no TLS listener to go to', () => {
    expectProblems(problems(yaml`
      listen:
        - { port: 8080, http2: true }
        - { port: 8081, redirect: https, http2: false }
        - { port: 8082, redirect: http }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `), [
      '2:19 listen.0.http2: HTTP/2 needs tls: on this listener',
      '3:19 listen.1.redirect: redirect: https needs a listener with tls:',
      '3:36 listen.1.http2: a redirect listener answers in plain HTTP/1.1: http2: does not apply',
      '4:29 listen.2.redirect: expected https'
    ])
    expectProblems(problems(yaml`
      listen:
        - port: 8443
          redirect: https
          tls: { certificates: [{ cert: certs/a.pem, key: certs/a.key }] }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `), ['3:5 listen.0.redirect: a redirect listener answers in plain HTTP: it cannot have tls: too'])
  })

  it('warns about an expired certificate at its key, and loads the config', () => {
    const cfg = parse(yaml`
      listen:
        - port: 8443
          tls:
            certificates:
              - cert: certs/old.pem
                key: certs/old.key
      pools: { web: { servers: [127.0.0.1:3000] } }
    `)
    expect(cfg.listen[0].tls?.certificates[0].names).toEqual(['old.test'])
    expect(cfg.warnings).toHaveLength(1)
    expect(cfg.warnings[0]).toMatchObject({ line: 5, col: 17, path: 'listen.0.tls.certificates.0.cert' })
    expect(cfg.warnings[0].message).toMatch(/^the certificate in certs\/old\.pem expired on 2020-02-01 \(\d+ day\(s\) ago\): clients will refuse it$/)
  })

  it('baton check prints the warning with its position and still says ok; errors fail it', async () => {
    const file = join(dir, 'check.yaml')
    writeFileSync(file, yaml`
      listen:
        - port: 0
          host: 127.0.0.1
          tls: { certificates: [{ cert: certs/old.pem, key: certs/old.key }] }
      admin: { listen: 127.0.0.1:0 }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `)
    const ok = await runCli(['check', '-c', file])
    expect(ok.code).toBe(0)
    expect(ok.stdout.split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^${file}:4:35 listen\\.0\\.tls\\.certificates\\.0\\.cert: warning: the certificate in certs/old\\.pem expired on 2020-02-01`)),
      'ok'
    ])
    const bad = join(dir, 'check-bad.yaml')
    writeFileSync(bad, yaml`
      listen:
        - port: 0
          tls: { certificates: [{ cert: certs/a.pem, key: certs/b.key }] }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `)
    const r = await runCli(['check', '-c', bad])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe(`${bad}:3:53 listen.0.tls.certificates.0.key: certs/b.key is not the key of the certificate in certs/a.pem (they do not match)`)
  })
})
