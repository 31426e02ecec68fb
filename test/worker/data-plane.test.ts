import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { DEFAULTS } from '../../src/config/defaults.js'
import type { ProxyConfig } from '../../src/config/types.js'
import { InProcessLink, type TableMember, type TableSnapshot } from '../../src/controller/data-plane-link.js'
import type { TrafficSecond } from '../../src/metrics/traffic.js'
import { DataPlane } from '../../src/worker/data-plane.js'
import { startBackend, type Backend } from '../helpers/backend.js'
import { send, waitFor } from '../helpers/http.js'

// The seam from the data plane's side, in this process: tables applied,
// commands carried out, reports made, with real backends and sockets.

const proxy: ProxyConfig = {
  timeouts: { ...DEFAULTS.proxy.timeouts },
  retries: DEFAULTS.proxy.retries,
  maxHeaderSize: DEFAULTS.proxy.maxHeaderSize
}

describe('the data plane behind an in-process link', () => {
  let a: Backend
  let b: Backend
  let plane: DataPlane
  let link: InProcessLink
  let url: string
  const idle: string[] = []
  const quiet: string[] = []
  const seconds: TrafficSecond[] = []
  let version = 0
  const member = (be: Backend, id: string): TableMember => ({ id, host: '127.0.0.1', port: be.port, version: 'v1', revision: 1, servingSince: 0 })
  const table = (members: TableMember[], o: Partial<TableSnapshot> = {}): TableSnapshot =>
    ({ version: ++version, proxy, routes: [{ pool: 'web' }], pools: [{ name: 'web', balance: 'round-robin', slowStart: 0, members }], ...o })
  const whoami = async (): Promise<string> => (await send(`${url}/whoami`)).body.toString()

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend({ NAME: 'a', WS: '1' }), startBackend({ NAME: 'b', WS: '1' })])
    plane = new DataPlane(proxy)
    link = new InProcessLink(plane)
    link.connect({ idle: id => idle.push(id), quiet: id => quiet.push(id), traffic: (_second, s) => seconds.push(...s) })
    const [l] = await plane.listen([{ host: '127.0.0.1', port: 0 }])
    url = `http://127.0.0.1:${l.port}`
  })
  afterAll(async () => {
    await plane.close(1_000)
    await Promise.all(['a', 'b'].map(async id => await link.forget(id)))
    plane.stop()
    await Promise.all([a.kill(), b.kill()])
  })

  it('routes to the members of the table it applied last, and never applies an older one', async () => {
    await link.publish(table([member(a, 'a')]))
    expect(await whoami()).toBe('a')
    const stale = table([member(a, 'a')])
    await link.publish(table([member(b, 'b')]))
    expect(await whoami()).toBe('b')
    await link.publish(stale)
    expect(await whoami()).toBe('b')
    // No member at all: 503, counted apart from every version.
    await link.publish(table([]))
    expect((await send(`${url}/whoami`)).status).toBe(503)
  })

  it('reports a member that left the table only once its last request has ended', async () => {
    await link.publish(table([member(a, 'a')]))
    const slow = send(`${url}/slow?ms=600`)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 1, 5_000)
    idle.length = 0
    await link.publish(table([member(b, 'b')]))
    expect(await whoami()).toBe('b')
    expect(idle).toEqual([])
    expect((await slow).status).toBe(200)
    await waitFor(() => idle.includes('a'), 5_000)
    expect((await link.counts()).find(c => c.id === 'a')).toMatchObject({ inflight: 0 })
  })

  it('tells requests from upgraded connections apart: a member left with only a WebSocket is reported quiet, then idle when it closes', async () => {
    await link.publish(table([member(a, 'a')]))
    const ws = new WebSocket(url.replace('http', 'ws') + '/ws')
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    const slow = send(`${url}/slow?ms=600`)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 2, 5_000)
    expect((await link.counts()).find(c => c.id === 'a')).toMatchObject({ inflight: 2, upgrades: 1 })
    quiet.length = 0
    idle.length = 0
    await link.publish(table([member(b, 'b')]))
    expect(quiet).toEqual([])
    expect((await slow).status).toBe(200)
    await waitFor(() => quiet.includes('a'), 5_000)
    expect(idle).toEqual([])
    // The WebSocket still works while its member drains.
    const echoed = new Promise<string>(resolve => ws.once('message', m => resolve(String(m))))
    ws.send('still here')
    expect(await echoed).toBe('still here')
    ws.close()
    await waitFor(() => idle.includes('a'), 5_000)
    expect((await link.counts()).find(c => c.id === 'a')).toMatchObject({ inflight: 0, upgrades: 0 })
  })

  it('a member that left with only HTTP requests is reported idle, never quiet', async () => {
    await link.publish(table([member(a, 'a')]))
    const slow = send(`${url}/slow?ms=300`)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 1, 5_000)
    quiet.length = 0
    idle.length = 0
    await link.publish(table([member(b, 'b')]))
    expect((await slow).status).toBe(200)
    await waitFor(() => idle.includes('a'), 5_000)
    expect(quiet).toEqual([])
  })

  it('splits by the table\'s weight between two revisions, pins by header and by a preview route', async () => {
    const canary = { ...member(b, 'b'), version: 'v2', revision: 2 }
    const split = { stable: 1, canary: 2, weight: 25, header: 'x-canary' }
    const routes = [{ host: 'preview.test', pool: 'web', revision: 2 }, { pool: 'web' }]
    await link.publish(table([member(a, 'a'), canary], { pools: [{ name: 'web', balance: 'round-robin', slowStart: 0, members: [member(a, 'a'), canary], split }], routes }))
    const names: string[] = []
    for (let k = 0; k < 40; k++) names.push(await whoami())
    expect(names.filter(n => n === 'b')).toHaveLength(10)
    expect((await send(`${url}/whoami`, { headers: { 'x-canary': 'always' } })).text).toBe('b')
    expect((await send(`${url}/whoami`, { headers: { 'x-canary': 'never' } })).text).toBe('a')
    for (let k = 0; k < 4; k++) expect((await send(`${url}/whoami`, { headers: { host: 'preview.test:8080' } })).text).toBe('b')
    // The split and the preview route go with the next table that has none.
    await link.publish(table([member(a, 'a')]))
    expect((await send(`${url}/whoami`, { headers: { host: 'preview.test' } })).text).toBe('a')
  })

  it('new upstream timeouts replace the upstreams; what is in flight on the old ones ends there and still counts', async () => {
    await link.publish(table([member(a, 'a')]))
    const slow = send(`${url}/slow?ms=600`)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 1, 5_000)
    await link.publish(table([member(a, 'a')], { proxy: { ...proxy, timeouts: { ...proxy.timeouts, connect: 1_500 } } }))
    expect((await link.counts()).find(c => c.id === 'a')?.inflight).toBe(1)
    expect(await whoami()).toBe('a')
    expect((await slow).status).toBe(200)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 0, 5_000)
  })

  it('endRemaining cuts what is left on a member; forget drops it', async () => {
    await link.publish(table([member(a, 'a')]))
    const slow = send(`${url}/slow?ms=5000`)
    await waitFor(async () => (await link.counts()).find(c => c.id === 'a')?.inflight === 1, 5_000)
    await link.publish(table([member(b, 'b')]))
    await link.endRemaining('a')
    // The response had not begun: the client gets baton's answer for a failed upstream.
    expect((await slow).status).toBe(502)
    await link.forget('a')
    expect((await link.counts()).find(c => c.id === 'a')).toBeUndefined()
  })

  it('hands each second of traffic to the controller by version, and its metrics for aggregation', async () => {
    await link.publish(table([member(b, 'b')]))
    for (let i = 0; i < 5; i++) expect((await send(`${url}/whoami`)).status).toBe(200)
    await waitFor(() => seconds.some(s => s.versions.some(v => v.version === 'v1')), 5_000)
    expect(seconds.some(s => s.unanswered !== undefined)).toBe(true)
    const [json] = await link.metrics()
    const requests = json.find(m => m.name === 'baton_requests_total')
    expect(requests?.values.some(v => v.labels.version === 'v1' && v.labels.code === '200')).toBe(true)
  })
})
