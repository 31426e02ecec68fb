import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'

/** proxy.timeouts.body: a client that stops sending its request body is cut with 408 (nginx's client_body_timeout). */
describe('slow uploads', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend()
    baton = await startBaton({
      listen: [{ port: 0, host: '127.0.0.1' }],
      admin: { listen: '127.0.0.1:0' },
      proxy: { timeouts: { body: '1s' } },
      pools: { web: { servers: [backend.address] } }
    })
  })
  afterAll(async () => {
    await baton.kill()
    await backend.kill()
  })

  it('a body that stops arriving gets 408 after the body timeout, and nothing stays in flight', async () => {
    const s = connect(baton.ports[0], '127.0.0.1')
    const t0 = Date.now()
    let answer = ''
    s.on('data', d => { answer += String(d) })
    s.write('POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(10))
    await new Promise(resolve => s.once('close', resolve))
    const took = Date.now() - t0
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    expect(took).toBeGreaterThanOrEqual(900)
    expect(took).toBeLessThan(5000)
    const pool = await (await fetch(`${baton.adminUrl}/v1/pools/web`)).json() as { instances: Array<{ inflight: number }> }
    expect(pool.instances[0].inflight).toBe(0)
    expect((await fetch(`${baton.url}/echo`)).status).toBe(200)
  })

  it('a slow but steady upload is not cut', async () => {
    const s = connect(baton.ports[0], '127.0.0.1')
    let answer = ''
    s.on('data', d => { answer += String(d) })
    s.write('POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nConnection: close\r\n\r\n')
    for (let i = 0; i < 4; i++) {
      await new Promise(resolve => setTimeout(resolve, 500))
      s.write('xxxxx')
    }
    await new Promise(resolve => s.once('close', resolve))
    expect(answer).toMatch(/^HTTP\/1\.1 200 /)
    expect(answer).toContain('"size":20')
  })
})
