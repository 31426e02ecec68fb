import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { deadPort, waitFor } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { getPool } from '../helpers/pool.js'
import { buildImages, DOCKER_TESTS, dockerConfig, IMAGE, removePool, running, startDaemon, stopDaemon, waitContainers, type Daemon } from './helpers.js'
import type { InstanceView, PoolView } from '../helpers/views.js'
import type { Line } from '../helpers/procs.js'

/**
 * README "Config reference" (containers): a baton that starts finds the containers of its pools an earlier
 * run left; those of the current spec are adopted (probed, then serving, not
 * restarted), the others drained and removed, stopped ones removed.
 */

const serving = (p: PoolView): InstanceView[] => p.instances.filter(i => i.state === 'serving')
const parsed = (b: RunningBaton): Line[] => b.lines.map(l => { try { return JSON.parse(l) as Line } catch { return {} } })

describe.skipIf(!DOCKER_TESTS)('docker pool: containers left by a SIGKILLed baton', () => {
  let d: Daemon | undefined
  const batons: RunningBaton[] = []

  beforeAll(async () => {
    d = startDaemon()
    await removePool(d)
    buildImages(d)
  }, 240_000)

  afterAll(async () => {
    for (const b of batons) await b.kill('SIGKILL')
    await removePool(d)
    await stopDaemon(d)
  }, 120_000)

  it('adopts the running containers of its spec and removes the rest', async () => {
    const engine = d!.engine
    const first = await startBaton(dockerConfig([d!.url]))
    batons.push(first)
    const ids = serving(await getPool(first.adminUrl)).map((i) => i.id).sort()
    expect(ids).toHaveLength(4)
    const before = await running(d!)
    const startedAt = new Map<string, string>()
    for (const c of before) startedAt.set(c.id, (await engine.inspect(c.id)).State.StartedAt)
    const spec = before[0].labels['baton.spec']

    // Left by "another" run: a running container of another spec, and a stopped one of this spec.
    const otherPort = await deadPort()
    const other = await engine.create('baton-web-9-other', {
      Image: `${IMAGE}:v1`,
      Env: [`PORT=${otherPort}`, 'APP_VERSION=v0', 'READY_DELAY=0'],
      Labels: { 'baton.pool': 'web', 'baton.revision': '9', 'baton.instance': 'web-9-other', 'baton.spec': '0123456789abcdef', 'baton.port': String(otherPort), 'baton.version': 'v0' },
      HostConfig: { NetworkMode: 'host', Init: true }
    })
    await engine.start(other)
    const stopped = await engine.create('baton-web-1-stopped', {
      Image: `${IMAGE}:v1`,
      Cmd: ['node', '-e', 'process.exit(3)'],
      Labels: { 'baton.pool': 'web', 'baton.revision': '1', 'baton.instance': 'web-1-stopped', 'baton.spec': spec, 'baton.port': '1', 'baton.version': 'v1' },
      HostConfig: { NetworkMode: 'host' }
    })
    await engine.start(stopped)
    expect(await engine.wait(stopped)).toBe(3)
    await waitFor(async () => (await fetch(`http://127.0.0.1:${otherPort}/`).catch(() => undefined))?.status === 200, 15_000)

    expect(await first.kill('SIGKILL')).toBe(-1)
    // The containers outlive the baton that started them.
    expect((await running(d!)).map(c => c.id).sort()).toEqual([...before.map(c => c.id), other].sort())

    const second = await startBaton(readFileSync(first.configFile, 'utf8'), { dir: first.dir })
    batons.push(second)
    const load = startLoad(second.url, { keepAlive: 4, close: 2, posts: 2, postBytes: 4096, maxMs: 60_000 })
    await new Promise(resolve => setTimeout(resolve, 3000))
    const result = await load.stop()
    console.log(`after adoption: ${result.sent} requests sent, ${result.failed} failed`)
    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.sent).toBeGreaterThan(100)

    // The same instances serve, in the same containers, not restarted.
    const pool = await getPool(second.adminUrl)
    expect(serving(pool).map((i) => i.id).sort()).toEqual(ids)
    expect(pool.instances).toHaveLength(4)
    const after = (await waitContainers(d!, 4, { running: true })).map(c => ({ id: c.Id }))
    expect(after.map(c => c.id).sort()).toEqual(before.map(c => c.id).sort())
    for (const c of after) {
      const info = await engine.inspect(c.id)
      expect(info.State.StartedAt).toBe(startedAt.get(c.id))
      expect(info.RestartCount).toBe(0)
    }
    // The container of another spec was stopped and removed, and so was the stopped one.
    const all = await waitContainers(d!, 4)
    expect(all.map(c => c.Id)).not.toContain(other)
    expect(all.map(c => c.Id)).not.toContain(stopped)
    const lines = parsed(second)
    expect(lines.filter(l => l.msg === 'adopting an instance left by an earlier run').map(l => l.instance).sort()).toEqual(ids)
    expect(lines.some(l => l.msg === 'removing an instance left by an earlier run' && l.instance === 'web-9-other')).toBe(true)
    expect(lines.some(l => l.msg === 'removing a stopped container left by an earlier run' && l.instance === 'web-1-stopped')).toBe(true)
    expect(lines.some(l => l.msg === 'instance container started')).toBe(false)

    expect(await second.kill('SIGTERM')).toBe(0)
    expect(await engine.list({ 'baton.pool': 'web' })).toEqual([])
  }, 120_000)

  it('a leftover still stopping when baton stops gets the pool\'s stopTimeout, not a fixed 5 s', async () => {
    const engine = d!.engine
    // A running container of another spec whose app ignores SIGTERM: removing it takes the whole stopTimeout.
    const port = await deadPort()
    const other = await engine.create('baton-web-8-stubborn', {
      Image: `${IMAGE}:v1`,
      Env: [`PORT=${port}`, 'APP_VERSION=v0', 'READY_DELAY=0', 'IGNORE_TERM=1'],
      Labels: { 'baton.pool': 'web', 'baton.revision': '8', 'baton.instance': 'web-8-stubborn', 'baton.spec': 'fedcba9876543210', 'baton.port': String(port), 'baton.version': 'v0' },
      HostConfig: { NetworkMode: 'host', Init: true }
    })
    await engine.start(other)
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.status === 200, 15_000)

    const stopTimeoutMs = 10_000
    const b = await startBaton(dockerConfig([d!.url], { size: 1, rollout: { stopTimeout: `${stopTimeoutMs}ms` } }))
    batons.push(b)
    // Stop baton while the leftover is still being stopped: the driver's close stops it too.
    expect(await b.kill('SIGTERM')).toBe(0)
    const lines = parsed(b)
    const at = (msg: string): number => Date.parse(String(lines.find(l => l.msg === msg && l.instance === 'web-8-stubborn')?.time))
    const removing = at('removing an instance left by an earlier run')
    const killed = at('container ignored its stop signal; killing it')
    console.log(`leftover: SIGKILL ${killed - removing} ms after its removal began (stopTimeout ${stopTimeoutMs} ms)`)
    // With a fixed SIGTERM and 5 s at close, it was killed about 5 s after baton stopped, well before stopTimeout.
    expect(killed - removing).toBeGreaterThanOrEqual(stopTimeoutMs - 250)
    expect(await engine.list({ 'baton.pool': 'web' })).toEqual([])
  }, 120_000)
})
