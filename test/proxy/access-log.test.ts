import { existsSync, readFileSync, renameSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { runCli, startBaton, TEST_WORKERS, writeConfig, type RunningBaton } from '../helpers/baton.js'
import { config, deadPort, raw, send, waitFor } from '../helpers/http.js'

// The access log (SPEC §8): one JSON object a line per request with exactly
// the SPEC's fields, written off the event loop, flushed at least every
// second and on exit, reopened on SIGHUP (logrotate), validated like every key.

const FIELDS = ['time', 'client', 'method', 'host', 'path', 'protocol', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'pool', 'instance', 'version', 'attempts', 'error']

interface Line {
  time: string, client: string, method: string, host: string | null, path: string, protocol: string, status: number,
  bytesIn: number, bytesOut: number, durationMs: number, pool: string | null, instance: string | null, version: string | null,
  attempts: number, error: string | null
}

const lines = (file: string): Line[] => existsSync(file)
  ? readFileSync(file, 'utf8').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
  : []

/** The log line whose path is `path`, once it is written (within the 1 s flush). */
async function lineFor (file: string, path: string): Promise<Line> {
  // waitFor resolves only with a value that is there.
  return await waitFor(() => lines(file).find(l => l.path === path), 5_000) as Line
}

describe('the access log', () => {
  let backend: Backend
  let baton: RunningBaton
  let file: string
  let dead: number
  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    dead = await deadPort()
    baton = await startBaton(config({
      web: { servers: [backend.address] },
      flaky: { servers: [`127.0.0.1:${dead}`, backend.address], balance: 'round-robin' }
    }, {
      accessLog: { path: 'logs-access.log' },
      proxy: { retries: 2 },
      routes: [{ match: { host: 'web' }, pool: 'web' }, { match: { host: 'flaky' }, pool: 'flaky' }]
    }))
    file = join(baton.dir, 'logs-access.log')
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('logs a forwarded request with exactly the SPEC fields, right', async () => {
    const body = 'x'.repeat(1234)
    const r = await send(`${baton.url}/echo?q=1&r="2"`, { method: 'POST', headers: { host: 'web' }, body })
    expect(r.status).toBe(200)
    const l = await lineFor(file, '/echo?q=1&r="2"')
    expect(Object.keys(l)).toEqual(FIELDS)
    expect(l).toMatchObject({
      client: '127.0.0.1', method: 'POST', host: 'web', protocol: 'HTTP/1.1', status: 200, bytesIn: 1234, bytesOut: r.body.length,
      pool: 'web', instance: `web/${backend.address}`, version: 'v1', attempts: 1, error: null
    })
    expect(new Date(l.time).toISOString()).toBe(l.time)
    expect(Date.now() - Date.parse(l.time)).toBeLessThan(10_000)
    expect(l.durationMs).toBeGreaterThan(0)
    expect(l.durationMs).toBeLessThan(5_000)
  })

  it('logs a request baton answers itself (no route): the error, and no pool, instance or version', async () => {
    const r = await send(`${baton.url}/nowhere`, { headers: { host: 'other.example' } })
    expect(r.status).toBe(404)
    const l = await lineFor(file, '/nowhere')
    expect(Object.keys(l)).toEqual(FIELDS)
    expect(l).toMatchObject({ status: 404, host: 'other.example', pool: null, instance: null, version: null, attempts: 0, error: 'no route', bytesIn: 0, bytesOut: r.body.length })
  })

  it('counts the attempts of a retried request', async () => {
    // Round-robin over a dead server and a live one: one of two requests tries the dead one first
    // (on one client connection, so one proxy worker's round-robin, whatever the worker count).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    for (let i = 0; i < 2; i++) expect((await send(`${baton.url}/retried/${i}`, { headers: { host: 'flaky' }, agent })).status).toBe(200)
    agent.destroy()
    const logged = [await lineFor(file, '/retried/0'), await lineFor(file, '/retried/1')]
    expect(logged.map(l => l.attempts).sort()).toEqual([1, 2])
    for (const l of logged) expect(l).toMatchObject({ status: 200, pool: 'flaky', instance: `flaky/${backend.address}`, error: null })
  })

  it('logs the protocol as the client spoke it', async () => {
    const r = await raw(baton.ports[0], 'GET /old HTTP/1.0\r\nHost: web\r\n\r\n')
    expect(r.statuses).toEqual([200])
    expect((await lineFor(file, '/old')).protocol).toBe('HTTP/1.0')
  })

  it('reopens the file on SIGHUP after logrotate moved it', async () => {
    await send(`${baton.url}/before-rotate`, { headers: { host: 'web' } })
    await lineFor(file, '/before-rotate')
    renameSync(file, `${file}.1`)
    process.kill(baton.pid, 'SIGHUP')
    await baton.waitLine(l => l?.msg === 'config reloaded', 10_000)
    await send(`${baton.url}/after-rotate`, { headers: { host: 'web' } })
    const l = await lineFor(file, '/after-rotate')
    expect(l.status).toBe(200)
    expect(lines(`${file}.1`).some(x => x.path === '/before-rotate')).toBe(true)
    expect(lines(`${file}.1`).some(x => x.path === '/after-rotate')).toBe(false)
    expect(lines(file).some(x => x.path === '/before-rotate')).toBe(false)
  })
})

describe('the access log on exit and on stdout', () => {
  it('is written out when baton stops, before the next flush would have come', async () => {
    const backend = await startBackend({ NAME: 'a' })
    const baton = await startBaton(config({ web: { servers: [backend.address] } }, { accessLog: { path: 'exit.log' } }))
    try {
      for (let i = 0; i < 50; i++) await send(`${baton.url}/n/${i}`)
      expect(await baton.kill('SIGTERM')).toBe(0)
      const logged = lines(join(baton.dir, 'exit.log')).map(l => String(l.path))
      const sent = Array.from({ length: 50 }, (_, i) => `/n/${i}`)
      // Each proxy worker writes its own lines in order; with several, the file holds their flushes one after another.
      if (TEST_WORKERS === undefined || TEST_WORKERS === 1) expect(logged).toEqual(sent)
      else expect([...logged].sort()).toEqual([...sent].sort())
    } finally {
      await baton.kill()
      await backend.kill()
    }
  })

  it('goes to stdout as whole JSON lines between baton\'s own log lines', async () => {
    const backend = await startBackend({ NAME: 'a' })
    const baton = await startBaton(config({ web: { servers: [backend.address] } }, { accessLog: { path: 'stdout' } }))
    try {
      await Promise.all(Array.from({ length: 200 }, async (_, i) => await send(`${baton.url}/s/${i}`)))
      await waitFor(() => baton.lines.filter(l => l.includes('"path":"/s/')).length === 200, 5_000)
      for (const l of baton.lines) expect(() => JSON.parse(l), l).not.toThrow()
    } finally {
      await baton.kill()
      await backend.kill()
    }
  })

  it('is a config key checked like every other: FILE:LINE:COL key: message', async () => {
    const file = writeConfig('listen: [{ port: 0 }]\npools:\n  web: { servers: [127.0.0.1:3000] }\naccessLog:\n  path: 5\n  rotate: daily\n')
    const r = await runCli(['check', '-c', file])
    expect(r.code).toBe(1)
    expect(r.stdout + r.stderr).toContain(`${file}:5:9 accessLog.path: expected stdout, stderr or a file path`)
    expect(r.stdout + r.stderr).toContain(`${file}:6:3 accessLog.rotate: unknown key`)
  })
})
