import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { startLoad } from '../helpers/load.js'
import { demoConfig, getPool, isAlive, startRollout, waitRollout, type DemoConfig } from '../helpers/pool.js'
import { present, type RolloutAnswer } from '../helpers/views.js'

const RETRY = 'instance port was taken; retrying on another port'

/**
 * The port race: baton finds a port of the range free, and another process
 * binds it before the app does, so the app exits at once. That is no broken
 * version (G3): the start is retried on another port. The fixture makes the
 * race happen on purpose (test/fixtures/take-port-once.mjs): on its first run
 * a helper process binds {port} before the app starts.
 */
describe('a port taken between baton’s check and the app’s bind', () => {
  let baton: RunningBaton | undefined
  let dir: string
  let marker: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-port-race-'))
    marker = join(dir, 'squatter.json')
  })
  afterEach(async () => {
    await baton?.kill('SIGKILL')
    baton = undefined
    const holder = squatter()
    if (holder !== undefined) { try { process.kill(holder.pid, 'SIGKILL') } catch { /* gone */ } }
    rmSync(dir, { recursive: true, force: true })
  })

  /** The helper that held the port: its pid and the port (once it bound it). */
  function squatter (): { pid: number, port: number } | undefined {
    try { return JSON.parse(readFileSync(marker, 'utf8')) } catch { return undefined }
  }

  function racyConfig (size: number, env: Record<string, string> = {}): DemoConfig {
    const config = demoConfig({ size, env })
    config.pools.web.process.command = 'node test/fixtures/take-port-once.mjs'
    return config
  }

  const retries = (): string[] => baton!.lines.filter(l => l.includes(RETRY))
  const ports = async (): Promise<number[]> => (await getPool(baton!.adminUrl)).instances.map(i => Number(present(i.address, 'an address').split(':')[1]))

  it('during a rollout under load: the instance starts on another port, the rollout succeeds, nothing lost', async () => {
    baton = await startBaton(racyConfig(4))
    const load = startLoad(baton.url, { keepAlive: 6, close: 2, slow: 3, slowMs: 1500 })
    let status: string
    try {
      const r = await startRollout(baton.adminUrl, { version: 'v2', env: { SQUAT_MARKER: marker } })
      status = (await waitRollout(baton.adminUrl, r.id)).status
    } finally {
      const res = await load.stop()
      console.log(`port race in a rollout: ${res.sent} requests sent, ${res.failed} failed`)
      expect(res.samples).toEqual([])
      expect(res.failed).toBe(0)
    }
    expect(status).toBe('succeeded')
    const held = squatter()
    expect(held).toBeDefined()
    expect(isAlive(held!.pid)).toBe(true) // it held the port all along
    expect(retries()).toHaveLength(1)
    expect(JSON.parse(retries()[0])).toMatchObject({ version: 'v2', port: held!.port, retry: 1 })
    const p = await getPool(baton.adminUrl)
    expect(p.instances.map((i) => `${String(i.version)} ${String(i.state)}`)).toEqual(Array(4).fill('v2 serving'))
    expect(await ports()).not.toContain(held!.port)
  }, 60_000)

  it('at baton’s start, an app that says nothing about it: the port bound by another process tells', async () => {
    baton = await startBaton(racyConfig(2, { SQUAT_MARKER: marker, SQUAT_QUIET: '1' }))
    const held = squatter()
    expect(held).toBeDefined()
    expect(retries()).toHaveLength(1)
    expect(JSON.parse(retries()[0])).toMatchObject({ port: held!.port })
    const p = await getPool(baton.adminUrl)
    expect(p.instances.map((i) => i.state)).toEqual(['serving', 'serving'])
    expect(await ports()).not.toContain(held!.port)
  }, 60_000)

  it('an app that keeps saying EADDRINUSE is retried 3 times, then its start fails and the rollout is rolled back', async () => {
    baton = await startBaton(demoConfig({ size: 2 }))
    const load = startLoad(baton.url, { keepAlive: 4, close: 1 })
    let done: RolloutAnswer | undefined
    try {
      const r = await startRollout(baton.adminUrl, {
        version: 'v2',
        command: ['node', '-e', 'console.error(`Error: listen EADDRINUSE: address already in use 127.0.0.1:${process.env.PORT}`); process.exit(1)']
      })
      done = await waitRollout(baton.adminUrl, r.id)
    } finally {
      const res = await load.stop()
      console.log(`EADDRINUSE every time: ${res.sent} requests sent, ${res.failed} failed`)
      expect(res.failed).toBe(0)
    }
    expect(done?.status).toBe('rolled_back')
    expect(done?.error).toMatch(/exited with code 1/)
    expect(retries().map(l => JSON.parse(l).retry)).toEqual([1, 2, 3])
    const p = await getPool(baton.adminUrl)
    expect(p.instances.filter((i) => i.state === 'serving' && i.version === 'v1')).toHaveLength(2)
  }, 60_000)
})
