import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, instances, metric, send, waitFor } from '../helpers/http.js'
import { Talk, type Stats } from './hostile.js'

// A client that goes away cancels its upstream request: the backend sees the
// connection close under the request it was answering or reading, the
// instance's in-flight count returns to 0, and baton_requests_total counts a
// 499 (not an upstream error, and not a failure of the instance). Slowloris
// heads and stalled uploads are cut by the timeouts: timeouts.test.ts and
// slow-upload.test.ts; here, that the backend sees the stalled upload end.

describe('clients that go away, and uploads that stall', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, { proxy: { timeouts: { body: '1s' } } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  const stats = async (): Promise<Stats> => await (await fetch(`http://${backend.address}/admin/stats`)).json() as Stats
  const count = async (code: string): Promise<number> => await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code })
  const upstreamErrors = async (): Promise<number> => await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'web' })

  /**
   * Sends `bytes`, waits until the backend has the request (and, with
   * `firstByte`, until the answer's body has begun), then drops the
   * connection; checks what the backend and baton saw after.
   */
  async function abandon (bytes: string, o: { firstByte?: boolean, backendSees: 'cut' | 'incomplete' }): Promise<void> {
    const before = await stats()
    const aborts = await count('499')
    const errors = await upstreamErrors()
    const t = await Talk.open(baton.ports[0])
    t.write(bytes)
    await waitFor(async () => (await stats()).total === before.total + 1, 5_000)
    if (o.firstByte === true) await t.until(/\r\n\r\n[\s\S]+/)
    else expect(t.data, 'the upstream had answered already').toBe('')
    expect((await instances(baton.adminUrl, 'web'))[0].inflight).toBe(1)
    t.destroy()
    // The backend sees the connection close under its request.
    await waitFor(async () => (await stats())[o.backendSees] === before[o.backendSees] + 1, 5_000)
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
    expect(await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })).toBe(0)
    await waitFor(async () => await count('499') === aborts + 1, 5_000)
    expect(await upstreamErrors(), 'a client leaving counted as an upstream error').toBe(errors)
    const [instance] = await instances(baton.adminUrl, 'web')
    expect(instance.state).toBe('serving')
    expect((await send(`${baton.url}/echo`)).status).toBe(200)
  }

  it('a client that leaves before the upstream sent its head', async () => {
    await abandon('GET /slow?ms=20000 HTTP/1.1\r\nHost: web\r\n\r\n', { backendSees: 'cut' })
  })

  it('a client that leaves in the middle of the answer body', async () => {
    await abandon('GET /trickle?ms=20000 HTTP/1.1\r\nHost: web\r\n\r\n', { firstByte: true, backendSees: 'cut' })
  })

  it('a client that leaves in the middle of a Content-Length upload', async () => {
    await abandon(`POST /sink HTTP/1.1\r\nHost: web\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1_000)}`, { backendSees: 'incomplete' })
  })

  it('a client that leaves in the middle of a chunked upload', async () => {
    await abandon(`POST /sink HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n${'x'.repeat(1_000)}\r\n`, { backendSees: 'incomplete' })
  })

  it('an upload that stalls gets 408 after the body timeout, and the backend sees its request end incomplete', async () => {
    const before = await stats()
    const t = await Talk.open(baton.ports[0])
    const started = Date.now()
    t.write(`POST /sink HTTP/1.1\r\nHost: web\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1_000)}`)
    await t.until('close', 10_000)
    expect(t.statuses).toEqual([408])
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    await waitFor(async () => (await stats()).incomplete === before.incomplete + 1, 5_000)
    expect((await stats()).total).toBe(before.total + 1)
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
  })
})
