import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, deadPort, instances, metric, raw, waitFor } from '../helpers/http.js'

// G7: WebSocket upgrades are proxied, count as in flight on their instance
// while open, and other Upgrade protocols are refused.

async function open (url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode ?? 0}`)))
  })
  return ws
}

async function roundTrip (ws: WebSocket, data: string | Buffer): Promise<string | Buffer> {
  return await new Promise((resolve, reject) => {
    ws.once('message', (m: Buffer, binary: boolean) => { ws.off('error', reject); resolve(binary ? m : m.toString()) })
    ws.once('error', reject)
    ws.send(data)
  })
}

async function close (ws: WebSocket): Promise<number> {
  return await new Promise(resolve => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(1006); return }
    ws.once('close', code => resolve(code))
    ws.close(1000)
  })
}

describe('WebSocket', () => {
  let backend: Backend
  let plain: Backend
  let baton: RunningBaton
  let wsUrl: string
  beforeAll(async () => {
    [backend, plain] = await Promise.all([startBackend({ NAME: 'a', WS: '1' }), startBackend({ NAME: 'plain' })])
    baton = await startBaton(config({
      web: { servers: [backend.address] },
      nows: { servers: [plain.address] },
      flaky: { servers: [`127.0.0.1:${await deadPort()}`, backend.address], balance: 'round-robin' }
    }, {
      routes: [
        { match: { pathPrefix: '/nows' }, pool: 'nows' },
        { match: { pathPrefix: '/flaky' }, pool: 'flaky' },
        { match: { pathPrefix: '/' }, pool: 'web' }
      ]
    }))
    wsUrl = `ws://127.0.0.1:${baton.ports[0]}`
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await Promise.all([backend.kill(), plain.kill()])
  })

  it('echoes text and binary messages, small and large, through baton', async () => {
    const ws = await open(`${wsUrl}/chat?room=1`)
    expect(await roundTrip(ws, 'hello')).toBe('hello')
    const big = Buffer.alloc(2 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = i % 251
    const back = await roundTrip(ws, big) as Buffer
    expect(Buffer.compare(back, big)).toBe(0)
    for (let i = 0; i < 50; i++) expect(await roundTrip(ws, `m${i}`)).toBe(`m${i}`)
    expect(await close(ws)).toBe(1000)
  })

  it('counts an open tunnel as in flight, and not after it closes', async () => {
    const ws = await open(`${wsUrl}/`)
    await roundTrip(ws, 'x')
    const during = await instances(baton.adminUrl, 'web')
    expect(during[0].inflight).toBe(1)
    expect(await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })).toBe(1)
    await close(ws)
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
    expect(await metric(baton.adminUrl, 'baton_inflight_requests', { pool: 'web' })).toBe(0)
  })

  it('closes the client side when the backend side goes away, and the other way round', async () => {
    // The backend closes: the client gets its close frame and code.
    const ws = await open(`${wsUrl}/`)
    const closed = new Promise<number>(resolve => ws.once('close', code => resolve(code)))
    await roundTrip(ws, 'x')
    ws.send('__close__')
    expect(await closed).toBe(4002)
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
    // The client vanishes without a close frame: the tunnel ends and the count drops.
    const ws2 = await open(`${wsUrl}/`)
    await roundTrip(ws2, 'y')
    expect((await instances(baton.adminUrl, 'web'))[0].inflight).toBe(1)
    ws2.terminate()
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
  })

  it('refuses a non-WebSocket upgrade (h2c) with 400 and keeps serving', async () => {
    const r = await raw(baton.ports[0], 'GET /echo HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
    expect(r.closed).toBe(true)
    expect(r.statuses).toEqual([400])
    expect(r.data).toContain('only WebSocket upgrades are proxied')
    const ws = await open(`${wsUrl}/`)
    expect(await roundTrip(ws, 'still here')).toBe('still here')
    await close(ws)
  })

  it('refuses an upgrade with a bad target, two Host headers or a body', async () => {
    const ws = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
    expect((await raw(baton.ports[0], `GET http://web/ HTTP/1.1\r\nHost: web\r\n${ws}`)).statuses).toEqual([400])
    expect((await raw(baton.ports[0], `GET / HTTP/1.1\r\nHost: web\r\nHost: evil\r\n${ws}`)).statuses).toEqual([400])
    const body = 'GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n'
    const withBody = await raw(baton.ports[0], `GET / HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\n${ws}${body}`)
    expect(withBody.statuses).toEqual([400])
    expect(withBody.data).toContain('must not carry a body')
  })

  it('passes on the answer of a backend that does not switch protocols', async () => {
    await expect(open(`${wsUrl}/nows/echo`)).rejects.toThrow('unexpected response 200')
  })

  it('retries an upgrade whose connection is refused on another server', async () => {
    for (let i = 0; i < 4; i++) {
      const ws = await open(`${wsUrl}/flaky/${i}`)
      expect(await roundTrip(ws, `f${i}`)).toBe(`f${i}`)
      await close(ws)
    }
    expect(await metric(baton.adminUrl, 'baton_upstream_errors_total', { pool: 'flaky', kind: 'refused' })).toBeGreaterThan(0)
  })

  it('sets X-Forwarded-* on the upgrade request and drops what Connection names', async () => {
    // The plain backend answers the upgrade request as a normal /echo, which shows its headers.
    const r = await raw(baton.ports[0], 'GET /nows/echo HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, X-Secret\r\nX-Secret: 1\r\nUpgrade: websocket\r\n' +
      'X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    expect(r.statuses).toEqual([200])
    const echo = JSON.parse(r.data.slice(r.data.indexOf('{'), r.data.lastIndexOf('}') + 1)) as { headers: Record<string, string> }
    expect(echo.headers).toMatchObject({ 'x-forwarded-proto': 'http', 'x-forwarded-for': '10.0.0.1, 127.0.0.1', 'x-forwarded-host': 'web', upgrade: 'websocket' })
    expect(echo.headers['x-secret']).toBeUndefined()
  })
})
