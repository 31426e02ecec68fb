import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { CLI, ROOT, startBaton, TEST_WORKERS, writeConfig, type RunningBaton } from '../helpers/baton.js'
import { startProc, type Proc } from '../helpers/procs.js'
import { raw } from '../helpers/http.js'

const HOSTILE = fileURLToPath(new URL('../fixtures/hostile-upstream.mjs', import.meta.url))

function rssMb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) / 1024
}

async function hostile (): Promise<Proc & { port: number }> {
  const p = startProc(process.execPath, [HOSTILE])
  const { port } = await p.waitLine(l => typeof l?.port === 'number')
  return Object.assign(p, { port: port as number })
}

function config (upstreamPort: number, timeouts: Record<string, string> = {}): object {
  return {
    listen: [{ port: 0, host: '127.0.0.1' }],
    admin: { listen: '127.0.0.1:0' },
    proxy: { timeouts: { idle: '120s', ...timeouts } },
    pools: { web: { servers: [`127.0.0.1:${upstreamPort}`] } }
  }
}

/** Opens `n` keep-alive connections, each answered once, then left idle. */
async function idleConnections (port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = []
  const batch = 500
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async () => {
      const s = connect(port, '127.0.0.1')
      sockets.push(s)
      s.on('error', () => undefined)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.once('data', () => resolve())
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      })
    }))
  }
  return sockets
}

describe('bounded resources', () => {
  const procs: Proc[] = []
  let baton: RunningBaton | undefined
  afterEach(async () => {
    await baton?.kill('SIGKILL')
    baton = undefined
    for (const p of procs.splice(0)) await p.kill('SIGKILL')
  })

  it('10,000 idle keep-alive client connections stay under 250 MB of RSS, and baton keeps serving', async () => {
    const up = await hostile()
    procs.push(up)
    baton = await startBaton(config(up.port))
    await fetch(baton.url + '/')
    // Each proxy worker holds its share of the connections: the bound is per process.
    const before = Math.max(...baton.workerPids().map(rssMb))
    const sockets = await idleConnections(baton.ports[0], 10_000)
    const after = Math.max(...baton.workerPids().map(rssMb))
    const res = await fetch(baton.url + '/')
    console.log(`10,000 idle connections: RSS ${before.toFixed(0)} MB → ${after.toFixed(0)} MB (+${((after - before) * 1024 / 10_000).toFixed(1)} KB each)`)
    expect(res.status).toBe(200)
    expect(after).toBeLessThan(250)
    for (const s of sockets) s.destroy()
  }, 120_000)

  it('out of file descriptors: 503 with Retry-After where baton holds the client, a quick close where it cannot accept, then recovery without a crash', async () => {
    const up = await hostile()
    procs.push(up)
    // Start baton under a low descriptor limit (prlimit, from util-linux).
    const file = writeConfig(config(up.port))
    const proc = startProc('prlimit', ['--nofile=200', process.execPath, CLI, 'start', '-c', file], { cwd: ROOT })
    procs.push(proc)
    const started = await proc.waitLine(l => l?.msg === 'baton started')
    const port = (started.listeners as Array<{ port: number }>)[0].port
    // 150 concurrent slow requests per proxy worker (each worker has its own
    // 200 descriptors): each holds a client and an upstream socket, so the
    // worker that accepts the most runs out, however the kernel spreads them.
    const requests = 150 * (TEST_WORKERS ?? 1)
    // Raw connections, one request each: what baton does with each is plain
    // (an answer, or a close with nothing written), with no client pool
    // retrying behind the test's back. None may hang.
    const statuses: string[] = await Promise.all(Array.from({ length: requests }, async () => {
      const r = await raw(port, 'GET /slow?ms=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { waitMs: 30_000 })
      if (!r.closed) return 'hung'
      if (r.statuses.length === 0) return 'closed-at-accept'
      return r.statuses[0] === 503 && /\r\nretry-after: 1\r\n/i.test(r.data) ? '503+retry-after' : String(r.statuses[0])
    }))
    const counts: Record<string, number> = {}
    for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1
    console.log(`EMFILE: ${JSON.stringify(counts)}`)
    expect(counts['503+retry-after']).toBeGreaterThan(0)
    expect(Object.keys(counts).filter(k => !['200', '503+retry-after', 'closed-at-accept'].includes(k))).toEqual([])
    // Recovered: the process is alive and answers.
    expect(proc.child.exitCode).toBeNull()
    const res = await fetch(`http://127.0.0.1:${port}/`)
    expect(res.status).toBe(200)
  }, 90_000)

  it('an upstream with response headers over the limit is cut with 502, not buffered', async () => {
    const up = await hostile()
    procs.push(up)
    baton = await startBaton(config(up.port))
    const res = await fetch(`${baton.url}/bigheaders?kb=200`)
    expect(res.status).toBe(502)
    expect((await fetch(`${baton.url}/`)).status).toBe(200)
  }, 30_000)

  it('a never-ending upstream body to a client that stops reading: memory stays flat; the client leaving cuts the upstream', async () => {
    const up = await hostile()
    procs.push(up)
    baton = await startBaton(config(up.port))
    const workers = baton.workerPids()
    const rss = (): number => Math.max(...workers.map(rssMb))
    const before = rss()
    const s = connect(baton.ports[0], '127.0.0.1')
    s.write('GET /infinite HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise(resolve => s.once('data', resolve))
    s.pause() // stop reading: backpressure all the way to the upstream
    await new Promise(resolve => setTimeout(resolve, 3000))
    const during = rss()
    console.log(`never-ending body, paused reader: RSS ${before.toFixed(0)} → ${during.toFixed(0)} MB`)
    expect(during - before).toBeLessThan(50)
    s.destroy()
    const until = Date.now() + 10_000
    let stats = { infiniteClosed: 0 }
    while (Date.now() < until && stats.infiniteClosed === 0) {
      await new Promise(resolve => setTimeout(resolve, 100))
      stats = await (await fetch(`http://127.0.0.1:${up.port}/stats`)).json() as { infiniteClosed: number }
    }
    expect(stats.infiniteClosed).toBe(1)
    const pool = await (await fetch(`${baton.adminUrl}/v1/pools/web`)).json() as { instances: Array<{ inflight: number }> }
    expect(pool.instances[0].inflight).toBe(0)
  }, 60_000)
})
