import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad, type LoadOptions } from '../helpers/load.js'
import { demoConfig, getPool, startRollout, waitPool, waitRollout } from '../helpers/pool.js'
import { buildImages, DOCKER_TESTS, dockerConfig, removePool, running, startDaemon, stopDaemon, waitContainers, type Daemon } from './helpers.js'
import { present, type InstanceView, type PoolView, type RolloutAnswer } from '../helpers/views.js'

/**
 * A docker pool on a real dockerd (host networking: this machine's daemon has
 * no bridge): rollouts and rollbacks under load with 0 failed requests, a
 * killed container replaced, the labels and the log lines of real containers,
 * and what a rollout of 4 containers costs against 4 processes.
 */

/** Mixed load, as in test/rollout/zero-downtime.test.ts; LIGHT: keep-alive GETs only (no slow request holds a drain). */
const LOAD: LoadOptions = { keepAlive: 4, close: 2, posts: 2, postBytes: 16_384, slow: 2, slowMs: 2000, maxMs: 120_000 }
const LIGHT: LoadOptions = { keepAlive: 2, maxMs: 120_000 }
const serving = (p: PoolView): InstanceView[] => p.instances.filter(i => i.state === 'serving')
/** Status keeps the last failed instances too: these are the others. */
const live = (p: PoolView): InstanceView[] => p.instances.filter(i => i.state !== 'failed')

/** Rolls the pool to `version` under `o`; the rollout's time from POST to succeeded, and the load's counts. */
async function timedRollout (baton: RunningBaton, version: string, o: LoadOptions, env?: Record<string, string>): Promise<{ ms: number, done: RolloutAnswer, result: Awaited<ReturnType<ReturnType<typeof startLoad>['stop']>> }> {
  const load = startLoad(baton.url, o)
  await new Promise(resolve => setTimeout(resolve, 1000))
  const t0 = Date.now()
  const r = await startRollout(baton.adminUrl, { version, env })
  const done = await waitRollout(baton.adminUrl, r.id)
  const ms = Date.now() - t0
  await new Promise(resolve => setTimeout(resolve, 500))
  return { ms, done, result: await load.stop() }
}

describe.skipIf(!DOCKER_TESTS)('docker pool: rollouts, rollback, a killed container', () => {
  let d: Daemon | undefined
  let baton: RunningBaton | undefined
  /** Rollout times (ms) of 4 containers and of 4 processes, under LOAD and under LIGHT. */
  const times = { docker: { load: 0, light: 0 }, process: { load: 0, light: 0 } }

  beforeAll(async () => {
    d = startDaemon()
    await removePool(d)
    buildImages(d)
    baton = await startBaton(dockerConfig([d.url], { readiness: { startTimeout: '8s' } }))
  }, 240_000)

  afterAll(async () => {
    await baton?.kill('SIGKILL')
    await removePool(d)
    await stopDaemon(d)
  }, 120_000)

  it('starts 4 labelled containers whose output reaches baton\'s log', async () => {
    const pool = await getPool(baton!.adminUrl)
    expect(serving(pool)).toHaveLength(4)
    const list = await running(d!)
    expect(list).toHaveLength(4)
    for (const c of list) {
      const info = await d!.engine.inspect(c.id)
      const labels = info.Config.Labels ?? {}
      const inst = present(pool.instances.find(i => i.id === labels['baton.instance']), `the instance of container ${c.id} with labels ${JSON.stringify(labels)}`)
      expect(labels['baton.pool']).toBe('web')
      expect(labels['baton.revision']).toBe('1')
      expect(labels['baton.spec']).toMatch(/^[0-9a-f]{16}$/)
      expect(info.HostConfig.NetworkMode).toBe('host')
      expect(info.HostConfig.Init).toBe(true)
      expect(info.Config.Image).toBe('baton-demo:v1')
      expect(info.Config.Env).toContain(`PORT=${labels['baton.port']}`)
      expect(info.Config.Env).toContain('APP_VERSION=v1')
      expect(inst.address).toBe(`127.0.0.1:${labels['baton.port']}`)
      expect(inst.pid).toBeNull()
      // The container's stdout and stderr, one baton log line per line.
      const lines = baton!.lines.map(l => { try { return JSON.parse(l) } catch { return {} } })
      expect(lines.some(l => l.instance === inst.id && l.stream === 'stdout' && l.msg === `demo container v1 starting on port ${labels['baton.port']}`)).toBe(true)
      expect(lines.some(l => l.instance === inst.id && l.stream === 'stderr' && l.msg === 'demo container v1: a line on stderr')).toBe(true)
    }
    console.log(`labels of one container: ${JSON.stringify((await d!.engine.inspect(list[0].id)).Config.Labels)}`)
  })

  it('rolls back a version that never gets ready, with 0 failed requests', async () => {
    const load = startLoad(baton!.url, { keepAlive: 4, close: 2, posts: 2, postBytes: 4096, maxMs: 60_000 })
    const r = await startRollout(baton!.adminUrl, { version: 'v2', env: { NEVER_READY: '1' } })
    const done = await waitRollout(baton!.adminUrl, r.id, 60_000)
    const pool = await waitPool(baton!.adminUrl, p => p.rollout === null && serving(p).length === 4 && live(p).length === 4, 30_000)
    const result = await load.stop()
    console.log(`never-ready rollback: ${result.sent} requests sent, ${result.failed} failed; rollout ${String(done.status)}: ${String(done.error)}`)
    expect(done.status).toBe('rolled_back')
    expect(done.error).toMatch(/startTimeout/)
    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.sent).toBeGreaterThan(100)
    expect(serving(pool).every((i) => i.version === 'v1')).toBe(true)
    // The never-ready containers are gone: 4 running, all v1.
    const list = await waitContainers(d!, 4)
    expect(list.map(c => c.Labels?.['baton.version'])).toEqual(['v1', 'v1', 'v1', 'v1'])
  }, 120_000)

  it('rolls back a version whose image is missing, naming the image, with 0 failed requests', async () => {
    const load = startLoad(baton!.url, { keepAlive: 4, close: 2, maxMs: 60_000 })
    const r = await startRollout(baton!.adminUrl, { version: 'v9' })
    const done = await waitRollout(baton!.adminUrl, r.id, 60_000)
    await waitPool(baton!.adminUrl, p => p.rollout === null && serving(p).length === 4 && live(p).length === 4, 30_000)
    const result = await load.stop()
    console.log(`missing image: ${result.sent} requests sent, ${result.failed} failed; rollout ${String(done.status)}: ${String(done.error)}`)
    expect(done.status).toBe('rolled_back')
    expect(done.error).toMatch(/could not start: image baton-demo:v9 is not on the Docker engine unix:\/\/\S+ and could not be pulled/)
    expect(result.failed).toBe(0)
    expect((await running(d!)).map(c => c.labels['baton.version'])).toEqual(['v1', 'v1', 'v1', 'v1'])
  }, 120_000)

  it('rolls 4 containers to v2 under load with 0 failed requests', async () => {
    const { ms, done, result } = await timedRollout(baton!, 'v2', LOAD)
    times.docker.load = ms
    console.log(`docker rollout of 4: ${ms} ms; ${result.sent} requests sent, ${result.failed} failed, ${result.slowOk} slow ones complete, versions ${JSON.stringify(result.versions)}`)
    expect(done.status, JSON.stringify(done.events)).toBe('succeeded')
    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.sent).toBeGreaterThan(300)
    expect(result.slowOk).toBeGreaterThan(2)
    expect(result.versions.v1).toBeGreaterThan(0)
    expect(result.versions.v2).toBeGreaterThan(0)
    const pool = await getPool(baton!.adminUrl)
    expect(serving(pool).filter((i) => i.version === 'v2')).toHaveLength(4)
    expect(pool.revision).toBe(4)
    // Stopped containers are removed: only the 4 of v2 are left.
    const list = await waitContainers(d!, 4)
    expect(list.every(c => c.State === 'running' && c.Labels?.['baton.version'] === 'v2' && c.Labels['baton.revision'] === '4')).toBe(true)
  }, 120_000)

  it('replaces a container killed under GET load with 0 failed GETs', async () => {
    const before = await getPool(baton!.adminUrl)
    const victim = (await running(d!))[0]
    const load = startLoad(baton!.url, { keepAlive: 4, close: 2, maxMs: 60_000 })
    await new Promise(resolve => setTimeout(resolve, 1000))
    await d!.engine.kill(victim.id, 'SIGKILL')
    const after = await waitPool(baton!.adminUrl, p => serving(p).length === 4 && live(p).length === 4 &&
      !serving(p).some((i) => i.id === victim.labels['baton.instance']), 30_000)
    await new Promise(resolve => setTimeout(resolve, 1000))
    const result = await load.stop()
    console.log(`container killed: ${result.sent} GETs sent, ${result.failed} failed`)
    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.sent).toBeGreaterThan(100)
    expect(serving(after).filter((i) => !serving(before).some((b) => b.id === i.id))).toHaveLength(1)
    expect(after.instances.find((i) => i.id === victim.labels['baton.instance'])?.failure).toBe('exited on SIGKILL')
    // The killed container was removed; a new one runs in its place.
    const list = await waitContainers(d!, 4)
    expect(list.map(c => c.Id)).not.toContain(victim.id)
  }, 90_000)

  it('rolls back to v1 under light load (for the timing), to an app that ignores SIGTERM', async () => {
    const { ms, done, result } = await timedRollout(baton!, 'v1', LIGHT, { IGNORE_TERM: '1' })
    times.docker.light = ms
    const starts = baton!.lines.flatMap(l => { try { const j = JSON.parse(l); return j.msg === 'instance container started' ? [j.ms as number] : [] } catch { return [] } })
    console.log(`docker rollout of 4 under light load: ${ms} ms; ${result.sent} requests sent, ${result.failed} failed; ` +
      `create+start+inspect of a container: ${Math.min(...starts)}-${Math.max(...starts)} ms (mean ${Math.round(starts.reduce((a, b) => a + b, 0) / starts.length)}, ${starts.length} containers)`)
    expect(done.status, `${String(done.error)}: ${done.events.map(e => e.message).join(' | ')}`).toBe('succeeded')
    expect(result.failed).toBe(0)
  }, 120_000)

  it('baton stopped by SIGTERM stops and removes its containers: SIGKILL after stopTimeout for those that ignore SIGTERM', async () => {
    const b = baton!
    const t0 = Date.now()
    expect(await b.kill('SIGTERM')).toBe(0)
    const ms = Date.now() - t0
    baton = undefined
    expect(await d!.engine.list({ 'baton.pool': 'web' })).toEqual([])
    const killed = b.lines.filter(l => l.includes('container ignored its stop signal; killing it'))
    console.log(`baton stop with 4 containers ignoring SIGTERM (stopTimeout 3s): ${ms} ms`)
    expect(killed).toHaveLength(4)
    expect(ms).toBeGreaterThanOrEqual(2900)
  }, 60_000)

  it('costs, for a rollout of 4, this much more than 4 processes (same readiness, minReady, load)', async () => {
    const procs = await startBaton(demoConfig({ size: 4 }))
    try {
      for (const [version, kind, o] of [['v2', 'load', LOAD], ['v1', 'light', LIGHT]] as const) {
        const { ms, done, result } = await timedRollout(procs, version, o)
        times.process[kind] = ms
        expect(done.status).toBe('succeeded')
        expect(result.failed).toBe(0)
      }
      const diff = (k: 'load' | 'light'): string => `${times.docker[k]} ms vs ${times.process[k]} ms (${times.docker[k] >= times.process[k] ? '+' : ''}${times.docker[k] - times.process[k]} ms)`
      console.log(`rollout of 4, containers vs processes: mixed load ${diff('load')}; light load ${diff('light')}`)
    } finally {
      await procs.kill('SIGTERM')
    }
  }, 120_000)
})
