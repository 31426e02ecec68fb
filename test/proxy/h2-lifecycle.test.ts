import { afterEach, describe, expect, it } from 'vitest'
import { runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { makeCert, tempDir } from '../helpers/certs.js'
import { h2Request, h2Session, startH2Load } from '../helpers/h2.js'
import { tlsGet } from '../helpers/tls.js'
import { sleep, waitFor } from '../helpers/http.js'
import { demoConfig, getPool, startRollout, waitRollout } from '../helpers/pool.js'

// HTTP/2 connections across what changes under them (README "HTTP/2"): a
// rollout (the session lives on, its new streams reach the new version), a
// stop of baton (GOAWAY, the open streams finish) and an upgrade of baton
// (the old generation sends GOAWAY, the client moves to a new connection
// that the new generation accepts). Every stream is counted.

/** The demo pool behind a TLS listener (HTTP/2 by ALPN), with a certificate made now. */
async function startTlsBaton (extra: Record<string, unknown> = {}, rollout: Record<string, unknown> = {}): Promise<RunningBaton> {
  const dir = tempDir()
  makeCert(dir, { names: ['h2.test'], file: 'h2' })
  return await startBaton({
    ...demoConfig({ size: 2, rollout: { minReady: '300ms', drainTimeout: '5s', ...rollout } }),
    listen: [{ port: 0, host: '127.0.0.1', tls: { certificates: [{ cert: 'h2.pem', key: 'h2.key' }] } }],
    ...extra
  }, { dir })
}

describe('HTTP/2 sessions through changes', () => {
  let baton: RunningBaton | undefined
  afterEach(async () => { await baton?.kill('SIGKILL'); baton = undefined })

  it('a session sending continuously through a rollout: 0 failed streams, one session, new streams reach the new version', async () => {
    baton = await startTlsBaton()
    const load = startH2Load(baton.ports[0], { streams: 8 })
    await waitFor(async () => (await getPool(baton!.adminUrl)).instances.every(i => i.version === 'v1'))
    await sleep(300)
    const r = await startRollout(baton.adminUrl, { version: 'v2' })
    const done = await waitRollout(baton.adminUrl, r.id)
    load.mark()
    await sleep(500)
    const result = await load.stop()
    console.log(`h2 through a rollout: ${result.ok} streams answered, ${result.failed} failed ${JSON.stringify(result.errors)}; versions ${JSON.stringify(result.versions)}; after it ${JSON.stringify(result.afterMark)}; ${result.sessions} session(s)`)
    expect(done.status).toBe('succeeded')
    expect(result.failed).toBe(0)
    expect(result.errors).toEqual({})
    // The one session lived through it: baton never sent it away.
    expect(result.sessions).toBe(1)
    expect(result.goaways).toBe(0)
    expect(result.versions.v1).toBeGreaterThan(50)
    expect(result.versions.v2).toBeGreaterThan(50)
    // Streams opened once the rollout was done reached v2 alone.
    expect(Object.keys(result.afterMark)).toEqual(['v2'])
  }, 90_000)

  it('stop: the session gets GOAWAY, its open streams finish, new ones go nowhere, baton exits 0', async () => {
    baton = await startTlsBaton()
    const session = h2Session(baton.ports[0])
    const goaway = new Promise<number>(resolve => session.once('goaway', code => resolve(code)))
    const slow = Array.from({ length: 4 }, async () => await h2Request(session, { ':path': '/slow?ms=1500' }))
    // Every slow stream is in flight upstream before the stop.
    await waitFor(async () => (await getPool(baton!.adminUrl)).instances.reduce((n, i) => n + i.inflight, 0) === 4)
    const exited = baton.kill('SIGTERM')
    expect(await goaway).toBe(0)
    // After GOAWAY the client opens no stream on this session.
    expect(() => session.request({ ':path': '/' })).toThrow()
    const answers = await Promise.all(slow)
    expect(answers.map(a => `${a.status} ${a.text.slice(0, 11)}`)).toEqual(Array(4).fill('200 slow answer'))
    expect(await exited).toBe(0)
    baton = undefined
  }, 60_000)

  it('an upgrade of baton: the old generation sends GOAWAY, the client moves to a new connection, 0 failed streams', async () => {
    baton = await startTlsBaton({ upgrade: { timeout: '20s', drainTimeout: '3s' } })
    const port = baton.ports[0]
    const load = startH2Load(port, { streams: 6 })
    const before = await tlsGet(port, { servername: 'h2.test', path: '/', alpn: ['http/1.1'] })
    await sleep(1_000)
    const cli = await runCli(['upgrade', '--admin', baton.adminUrl])
    // The new controller took the ticket key over: a session made before resumes.
    const resumed = await tlsGet(port, { servername: 'h2.test', path: '/', alpn: ['http/1.1'], session: before.session })
    load.mark()
    await sleep(500)
    const result = await load.stop()
    console.log(`h2 through an upgrade of baton: ${result.ok} streams answered, ${result.failed} failed ${JSON.stringify(result.errors)}; ${result.sessions} sessions, ${result.goaways} GOAWAY(s), ${result.restarted} started again; after it ${JSON.stringify(result.afterMark)}`)
    expect(cli.code, cli.stderr).toBe(0)
    expect(result.failed).toBe(0)
    expect(result.errors).toEqual({})
    // Each old worker sent its session away once; the client reconnected to the new generation.
    expect(result.goaways).toBeGreaterThanOrEqual(1)
    expect(result.sessions).toBe(result.goaways + 1)
    expect(result.afterMark.v1).toBeGreaterThan(10)
    expect(resumed).toMatchObject({ status: 200, reused: true })
  }, 90_000)
})
