import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, instances, raw, rssMiB, send, sleep, waitFor } from '../helpers/http.js'

// Bodies stream both ways without being buffered whole. 1 GiB each
// way through baton, with a reader slower than the writer, while baton's
// resident memory stays bounded.

const GiB = 1024 ** 3
const MiB = 1024 ** 2
// A fresh baton sits near 75 MiB. Node reads each socket into a new 64 KiB
// Buffer, and V8 collects spent ones only when about 64 MiB of them pile up,
// so the peak lands around 130-150 MiB on this machine; a buffered body would
// add the whole GiB.
const RSS_LIMIT_MIB = 200

/** The largest RSS among baton's proxy workers (the processes that carry the bodies). */
function workerRss (baton: RunningBaton): number {
  return Math.max(...baton.workerPids().map(rssMiB))
}

/** Samples the workers' RSS every 100 ms until stopped; resolves with the peak. */
function watchRss (baton: RunningBaton): { stop: () => number } {
  let peak = workerRss(baton)
  const t = setInterval(() => { peak = Math.max(peak, workerRss(baton)) }, 100)
  return { stop: () => { clearInterval(t); return Math.max(peak, workerRss(baton)) } }
}

describe('streaming bodies', () => {
  let backend: Backend
  let baton: RunningBaton
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('streams a 1 GiB download to a slow reader with bounded memory', async () => {
    const before = workerRss(baton)
    const rss = watchRss(baton)
    const started = Date.now()
    const { status, received } = await new Promise<{ status: number, received: number }>((resolve, reject) => {
      const req = request(`${baton.url}/bytes?n=${GiB}`, { agent: false }, res => {
        let received = 0
        let nextPause = 128 * MiB
        res.on('data', (c: Buffer) => {
          received += c.length
          // Stop reading for a while every 128 MiB: baton must stop reading the upstream too.
          if (received >= nextPause) {
            nextPause += 128 * MiB
            res.pause()
            setTimeout(() => res.resume(), 150)
          }
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, received }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
    const peak = rss.stop()
    await sleep(200)
    const after = workerRss(baton)
    console.log(`download: 1 GiB in ${Date.now() - started} ms; baton RSS before ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, after ${after.toFixed(0)} MiB`)
    expect(status).toBe(200)
    expect(received).toBe(GiB)
    expect(peak).toBeLessThan(RSS_LIMIT_MIB)
    expect(after).toBeLessThan(RSS_LIMIT_MIB)
  }, 90_000)

  it('streams a 1 GiB upload to a slow backend with bounded memory', async () => {
    const before = workerRss(baton)
    const rss = watchRss(baton)
    const started = Date.now()
    const chunk = Buffer.alloc(256 * 1024, 121)
    let sent = 0
    const body = new Readable({
      read () {
        if (sent >= GiB) { this.push(null); return }
        sent += chunk.length
        this.push(chunk)
      }
    })
    const reply = await new Promise<{ status: number, text: string }>((resolve, reject) => {
      // The backend pauses 150 ms after every 128 MiB it reads.
      const req = request(`${baton.url}/sink?every=${128 * MiB}&pause=150`, { method: 'POST', agent: false, headers: { 'content-length': GiB } }, res => {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }))
      })
      req.on('error', reject)
      body.pipe(req)
    })
    const peak = rss.stop()
    await sleep(200)
    const after = workerRss(baton)
    console.log(`upload: 1 GiB in ${Date.now() - started} ms; baton RSS before ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, after ${after.toFixed(0)} MiB`)
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.text).size).toBe(GiB)
    expect(peak).toBeLessThan(RSS_LIMIT_MIB)
    expect(after).toBeLessThan(RSS_LIMIT_MIB)
  }, 90_000)

  it('delivers a chunked request body intact', async () => {
    // 2 MiB of varied bytes in chunks of uneven sizes, framed by hand.
    const data = Buffer.alloc(2 * MiB)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 11)) & 0xff
    const parts: Buffer[] = []
    let at = 0
    for (let n = 1; at < data.length; n = (n * 31 + 17) % 70_001 + 1) {
      const piece = data.subarray(at, Math.min(data.length, at + n))
      at += piece.length
      parts.push(Buffer.from(`${piece.length.toString(16)}${n % 3 === 0 ? ';ext=1' : ''}\r\n`), piece, Buffer.from('\r\n'))
    }
    parts.push(Buffer.from('0\r\nX-Trailer: t\r\n\r\n'))
    const head = 'POST /sink?hash=1 HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
    const r = await raw(baton.ports[0], [head, ...parts], { waitMs: 10_000 })
    expect(r.statuses).toEqual([200])
    const echo = JSON.parse(r.data.slice(r.data.indexOf('{'), r.data.lastIndexOf('}') + 1)) as { size: number, sha256: string }
    expect(echo.size).toBe(data.length)
    expect(echo.sha256).toBe(createHash('sha256').update(data).digest('hex'))
  }, 30_000)

  it('delivers a body sent with Content-Length in small writes intact', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff))
    const r = await send(`${baton.url}/sink?hash=1`, { method: 'POST', body: data })
    expect(r.status).toBe(200)
    expect(JSON.parse(r.text)).toMatchObject({ size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
  })

  it('forwards response bytes as they come, not when the response ends', async () => {
    // The backend sends a byte every 100 ms for 3 s.
    const first = await new Promise<number>((resolve, reject) => {
      const started = Date.now()
      const req = request(`${baton.url}/trickle?ms=3000`, { agent: false }, res => {
        res.once('data', () => { resolve(Date.now() - started); req.destroy() })
      })
      req.on('error', err => { if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err) })
      req.end()
    })
    expect(first).toBeLessThan(1_500)
    // The abandoned response released its upstream, and baton serves on.
    await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
    expect((await send(`${baton.url}/echo`)).status).toBe(200)
  })
})
