import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, metric, metricIn, send, waitFor, type Reply } from '../helpers/http.js'

// README "Metrics": the data plane's metrics on GET {admin}/metrics.

describe('metrics', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address], version: 'v7' } }, { routes: [{ match: { pathPrefix: '/' }, pool: 'web' }] }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${baton.adminUrl}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    return await res.text()
  }

  it('counts requests by pool, version and code', async () => {
    for (let i = 0; i < 7; i++) expect((await send(`${baton.url}/echo`)).status).toBe(200)
    for (let i = 0; i < 3; i++) expect((await send(`${baton.url}/status?code=404`)).status).toBe(404)
    expect((await send(`${baton.url}/status?code=503`)).status).toBe(503)
    const text = await scrape()
    expect(text).toContain('# TYPE baton_requests_total counter')
    expect(metricIn(text, 'baton_requests_total', { pool: 'web', version: 'v7', code: '200' })).toBe(7)
    expect(metricIn(text, 'baton_requests_total', { pool: 'web', version: 'v7', code: '404' })).toBe(3)
    expect(metricIn(text, 'baton_requests_total', { pool: 'web', version: 'v7', code: '503' })).toBe(1)
  })

  it('observes request durations in a histogram', async () => {
    const countBefore = await metric(baton.adminUrl, 'baton_request_duration_seconds_count', { pool: 'web', version: 'v7' })
    expect((await send(`${baton.url}/slow?ms=300`)).status).toBe(200)
    const text = await scrape()
    expect(text).toContain('# TYPE baton_request_duration_seconds histogram')
    expect(metricIn(text, 'baton_request_duration_seconds_count', { pool: 'web', version: 'v7' })).toBe(countBefore + 1)
    const bucket = (le: string): number => metricIn(text, 'baton_request_duration_seconds_bucket', { pool: 'web', version: 'v7', le })
    // The 300 ms request lies above the 0.25 s bucket.
    expect(bucket('+Inf') - bucket('0.25')).toBeGreaterThanOrEqual(1)
    expect(bucket('+Inf')).toBe(countBefore + 1)
    expect(metricIn(text, 'baton_request_duration_seconds_sum', { pool: 'web', version: 'v7' })).toBeGreaterThanOrEqual(0.3)
  })

  it('shows requests in flight while they are, and none after', async () => {
    const slow: Array<Promise<Reply>> = []
    for (let i = 0; i < 3; i++) slow.push(send(`${baton.url}/slow?ms=1500`))
    await waitFor(async () => await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' }) === 3, 5_000)
    expect((await Promise.all(slow)).map(r => r.status)).toEqual([200, 200, 200])
    expect(await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })).toBe(0)
  })

  it('counts a request the client abandons, and releases it', async () => {
    const before = await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '499' })
    await send(`${baton.url}/slow?ms=3000`, { timeoutMs: 300 }).catch(() => undefined)
    await waitFor(async () => await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web', code: '499' }) === before + 1, 5_000)
    expect(await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })).toBe(0)
  })

  it('shows instances by state, upstream errors, retries and the process defaults', async () => {
    const text = await scrape()
    expect(metricIn(text, 'baton_instances', { pool: 'web', version: 'v7', state: 'serving' })).toBe(1)
    for (const name of ['baton_upstream_errors_total', 'baton_retries_total', 'baton_inflight_requests', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `)
    }
  })
})
