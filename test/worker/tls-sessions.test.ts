import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { DEFAULTS } from '../../src/config/defaults.js'
import type { ProxyConfig } from '../../src/config/types.js'
import type { ListenerTable, TableSnapshot } from '../../src/controller/data-plane-link.js'
import { DataPlane } from '../../src/worker/data-plane.js'
import { startBackend, type Backend } from '../helpers/backend.js'
import { makeCert, tempDir, type TestCert } from '../helpers/certs.js'
import { tlsGet } from '../helpers/tls.js'

// TLS from the data plane's side of the seam: the table carries PEM text and
// the session ticket key, never a file. Two data planes applying the same
// table stand for two worker processes: a session made with one resumes on
// the other; a new key in the table ends that for tickets made before it.

const proxy: ProxyConfig = {
  timeouts: { ...DEFAULTS.proxy.timeouts },
  retries: DEFAULTS.proxy.retries,
  maxHeaderSize: DEFAULTS.proxy.maxHeaderSize
}

describe('TLS sessions across data planes', () => {
  let backend: Backend
  let cert: TestCert
  const planes: DataPlane[] = []
  const ports: number[] = []
  let version = 0
  let key = randomBytes(48).toString('base64')

  const listener = (c: TestCert): ListenerTable => ({
    key: '127.0.0.1:0',
    http2: true,
    tls: { minVersion: 'TLSv1.2', certificates: [{ cert: c.certPem, key: c.keyPem, names: ['s.test'] }] }
  })
  const table = (c: TestCert, ticketKey: string): TableSnapshot => ({
    version: ++version,
    proxy,
    routes: [{ pool: 'web' }],
    pools: [{ name: 'web', balance: 'round-robin', slowStart: 0, members: [{ id: 'b', host: '127.0.0.1', port: backend.port, version: 'v1', revision: 1, servingSince: 0 }] }],
    listeners: [listener(c)],
    ticketKey
  })
  const publish = (t: TableSnapshot): void => { for (const p of planes) p.apply(t) }

  beforeAll(async () => {
    backend = await startBackend({ NAME: 'b' })
    cert = makeCert(tempDir(), { names: ['s.test'] })
    for (let i = 0; i < 2; i++) {
      const plane = new DataPlane(proxy)
      plane.apply(table(cert, key))
      const [l] = await plane.listen([{ host: '127.0.0.1', port: 0 }])
      planes.push(plane)
      ports.push(l.port)
    }
  })
  afterAll(async () => {
    for (const p of planes) {
      await p.close(1_000)
      await p.forget('b')
      p.stop()
    }
    await backend.kill()
  })

  it('resumes on one data plane a session made with the other, both TLS 1.3 and 1.2', async () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await tlsGet(ports[0], { servername: 's.test', path: '/whoami', maxVersion })
      expect(first).toMatchObject({ status: 200, body: 'b', reused: false })
      const other = await tlsGet(ports[1], { servername: 's.test', path: '/whoami', maxVersion, session: first.session })
      expect(other, maxVersion).toMatchObject({ status: 200, reused: true })
    }
  })

  it('a new ticket key in the table: older tickets make a full handshake, newer ones resume anywhere', async () => {
    const old = await tlsGet(ports[0], { servername: 's.test' })
    key = randomBytes(48).toString('base64')
    publish(table(cert, key))
    expect((await tlsGet(ports[1], { servername: 's.test', session: old.session })).reused).toBe(false)
    expect((await tlsGet(ports[0], { servername: 's.test', session: old.session })).reused).toBe(false)
    const fresh = await tlsGet(ports[1], { servername: 's.test' })
    expect((await tlsGet(ports[0], { servername: 's.test', session: fresh.session })).reused).toBe(true)
  })

  it('a new certificate in the table changes new handshakes; the ticket key stays, so sessions still resume', async () => {
    const before = await tlsGet(ports[0], { servername: 's.test' })
    const renewed = makeCert(tempDir(), { names: ['s.test'] })
    publish(table(renewed, key))
    for (const port of ports) {
      const after = await tlsGet(port, { servername: 's.test', path: '/whoami' })
      expect(after).toMatchObject({ status: 200, body: 'b' })
      expect(after.fingerprint).not.toBe(before.fingerprint)
    }
    expect((await tlsGet(ports[1], { servername: 's.test', session: before.session })).reused).toBe(true)
  })
})
