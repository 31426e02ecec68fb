import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProcessesView, UpgradeStatus } from '../../src/supervisor/protocol.js'
import { ROOT, runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { metric, sleep, waitFor } from '../helpers/http.js'
import { startLoad, type LoadResult } from '../helpers/load.js'
import { adminJson, demoConfig, getPool, isAlive, startRollout, waitRollout } from '../helpers/pool.js'
import { openWebSockets, pingAll } from '../helpers/ws.js'

// G9 (SPEC §7): baton upgrades itself — a new generation of controller and
// workers from the code on disk adopts every instance and takes the
// sockets over while the old one drains — with zero failed requests, no
// refused or reset connection, no app instance restarted and the
// supervisor's pid unchanged.

interface Health { status: string, version: string, generation: number, pid: number }

const DRAIN_MS = 3_000

async function health (baton: RunningBaton): Promise<Health> {
  return await (await fetch(`${baton.adminUrl}/healthz`)).json() as Health
}

async function processes (baton: RunningBaton): Promise<ProcessesView> {
  return (await adminJson(baton.adminUrl, '/v1/processes')).body as unknown as ProcessesView
}

/** The instance ids and pids of the pool, sorted. */
async function instancePids (baton: RunningBaton): Promise<string[]> {
  return (await getPool(baton.adminUrl)).instances.filter(i => i.state === 'serving').map(i => `${i.id}:${String(i.pid)}`).sort()
}

/** Every process of the serving generation now: the controller and the workers. */
async function generationPids (baton: RunningBaton): Promise<{ controller: number, workers: number[] }> {
  const p = await processes(baton)
  const controller = p.controllers.find(c => c.serving)
  if (controller === undefined) throw new Error(`no serving controller: ${JSON.stringify(p)}`)
  return { controller: controller.pid, workers: p.workers.filter(w => w.generation === p.generation).map(w => w.pid) }
}

function expectClean (result: LoadResult): void {
  expect(result.samples).toEqual([])
  expect(result.failed).toBe(0)
  // No refused and no reset connection: errors would be counted by code.
  expect(result.errors).toEqual({})
}

for (const workers of [1, 2]) {
  describe(`upgrading baton with ${workers} worker(s)`, () => {
    let baton: RunningBaton
    beforeAll(async () => {
      baton = await startBaton({
        ...demoConfig({ size: 2, rollout: { minReady: '300ms', drainTimeout: '5s' } }),
        workers,
        upgrade: { timeout: '20s', drainTimeout: `${DRAIN_MS}ms` }
      })
    })
    afterAll(async () => {
      expect(await baton.kill('SIGTERM')).toBe(0)
    })

    it('baton upgrade under mixed load: 0 failed, the same app pids and supervisor, generation +1, the old generation gone', async () => {
      const h0 = await health(baton)
      const pids0 = await instancePids(baton)
      const old = await generationPids(baton)
      expect(old.workers).toHaveLength(workers)
      const counted0 = await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web' })
      const sockets = await openWebSockets(baton.url, 4)
      const stopPing = pingAll(sockets)
      const load = startLoad(baton.url, { keepAlive: 6, close: 3, posts: 2, postBytes: 16_384, slow: 3, slowMs: 2000 })
      await sleep(1_000)

      const t0 = Date.now()
      const cli = await runCli(['upgrade', '--admin', baton.adminUrl])
      const took = Date.now() - t0
      // The load goes on against the new generation alone.
      await sleep(1_000)
      const after = await openWebSockets(baton.url, 1)
      after[0].ws.send('ping')
      await waitFor(() => after[0].echoed > 0, 5_000)
      after[0].ws.close()
      const result = await load.stop()
      stopPing()

      const h1 = await health(baton)
      const p1 = await processes(baton)
      console.log(cli.stdout)
      console.log(`upgrade (${workers} worker(s)): ${result.sent} requests sent, ${result.failed} failed, ${result.slowOk} slow ones complete; ` +
        `generation ${h0.generation} → ${h1.generation} in ${took} ms; controller ${h0.pid} → ${h1.pid}; workers ${old.workers.join(',')} → ${p1.workers.map(w => w.pid).join(',')}; ` +
        `WebSockets closed with ${sockets.map(s => String(s.code)).join(',')} after ${sockets.map(s => (s.closedAt ?? 0) - t0).join(',')} ms`)
      expect(cli.code, cli.stderr).toBe(0)
      expect(cli.stdout).toMatch(/^upgrading baton: generation 1 → 2$/m)
      expect(cli.stdout).toMatch(/^baton upgraded: generation 2 serves/m)
      expectClean(result)
      expect(result.slowOk).toBeGreaterThan(3)
      // Generation +1, a new controller, the same supervisor and the same instances.
      expect(h1.generation).toBe(h0.generation + 1)
      expect(h1.pid).not.toBe(h0.pid)
      expect(p1.supervisor.pid).toBe(baton.pid)
      expect(p1.workers.every(w => w.generation === h1.generation)).toBe(true)
      expect(p1.workers).toHaveLength(workers)
      expect(await instancePids(baton)).toEqual(pids0)
      // `baton upgrade` returns once the old generation has drained and exited.
      for (const pid of [old.controller, ...old.workers]) expect(isAlive(pid), `old process ${pid}`).toBe(false)
      // The old generation's WebSockets stayed open until upgrade.drainTimeout, then got 1001.
      for (const s of sockets) {
        expect(s.code).toBe(1001)
        expect(s.errors).toEqual([])
        expect(s.echoed).toBeGreaterThan(0)
        expect(present(s.closedAt) - t0).toBeGreaterThanOrEqual(DRAIN_MS)
      }
      // /metrics still counts what the old generation's workers answered: every
      // request of the load and the 5 WebSocket upgrades (101), exactly.
      expect(await metric(baton.adminUrl, 'baton_requests_total', { pool: 'web' }) - counted0).toBe(result.sent + 5)
    }, 90_000)

    it('SIGUSR2 to the supervisor does the same', async () => {
      const h0 = await health(baton)
      const pids0 = await instancePids(baton)
      const old = await generationPids(baton)
      const load = startLoad(baton.url, { keepAlive: 4, close: 2, posts: 1, slow: 2, slowMs: 1500 })
      await sleep(500)
      process.kill(baton.pid, 'SIGUSR2')
      await waitFor(async () => (await health(baton)).generation === h0.generation + 1, 30_000, 100)
      await waitFor(() => [old.controller, ...old.workers].every(pid => !isAlive(pid)), 30_000, 100)
      await sleep(500)
      const result = await load.stop()
      console.log(`SIGUSR2 (${workers} worker(s)): ${result.sent} requests sent, ${result.failed} failed`)
      expectClean(result)
      expect((await processes(baton)).supervisor.pid).toBe(baton.pid)
      expect(await instancePids(baton)).toEqual(pids0)
      const status = (await adminJson(baton.adminUrl, '/v1/upgrade')).body as unknown as UpgradeStatus
      expect(status.running).toBeNull()
      expect(status.last).toMatchObject({ phase: 'done', from: h0.generation, to: h0.generation + 1 })
    }, 90_000)

    it('a bad config file is refused with its errors (400, exit 1) and nothing changes', async () => {
      const h0 = await health(baton)
      const good = readFileSync(baton.configFile, 'utf8')
      writeFileSync(baton.configFile, `${good}\nbogus: 1\n`)
      try {
        const cli = await runCli(['upgrade', '--admin', baton.adminUrl])
        expect(cli.code).toBe(1)
        expect(cli.stderr).toMatch(/^baton: upgrade refused \(400\): the config file has 1 error\(s\); nothing was changed: .*baton\.yaml:\d+:1 bogus: unknown key$/)
        const api = await adminJson(baton.adminUrl, '/v1/upgrade', { method: 'POST' })
        expect(api.status).toBe(400)
        expect(api.body.code).toBe('BATON_ERR_UPGRADE_CONFIG')
        expect((api.body as unknown as { problems: string[] }).problems).toHaveLength(1)
      } finally {
        writeFileSync(baton.configFile, good)
      }
      expect(await health(baton)).toEqual(h0)
    }, 60_000)

    it('one upgrade at a time (409); none while a rollout runs (409); a rollout after the upgrade works', async () => {
      const h0 = await health(baton)
      const [a, b] = await Promise.all([
        adminJson(baton.adminUrl, '/v1/upgrade', { method: 'POST' }),
        adminJson(baton.adminUrl, '/v1/upgrade', { method: 'POST' })
      ])
      expect([a.status, b.status].sort()).toEqual([202, 409])
      expect((a.status === 409 ? a : b).body.code).toBe('BATON_ERR_UPGRADE_RUNNING')
      const id = (a.status === 202 ? a : b).body.id as unknown as number
      await waitFor(async () => {
        const s = (await adminJson(baton.adminUrl, '/v1/upgrade')).body as unknown as UpgradeStatus
        return s.last?.id === id && s.last.phase === 'done'
      }, 30_000, 100)
      expect((await health(baton)).generation).toBe(h0.generation + 1)

      // A rollout after the upgrade, under load, loses nothing.
      const load = startLoad(baton.url, { keepAlive: 4, close: 2, posts: 1, slow: 2, slowMs: 1000 })
      const version = `v-after-${h0.generation + 1}`
      const r = await startRollout(baton.adminUrl, { version, strategy: { minReady: '1500ms' } })
      // While it runs, an upgrade is refused.
      const refused = await adminJson(baton.adminUrl, '/v1/upgrade', { method: 'POST' })
      expect(refused.status).toBe(409)
      expect(refused.body.code).toBe('BATON_ERR_UPGRADE_ROLLOUT')
      expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
      await sleep(500)
      const result = await load.stop()
      console.log(`rollout after the upgrade (${workers} worker(s)): ${result.sent} requests sent, ${result.failed} failed, versions ${JSON.stringify(result.versions)}`)
      expectClean(result)
      expect(result.versions[version]).toBeGreaterThan(0)
    }, 90_000)
  })
}

/**
 * baton installed in a temp folder as a package would be: its dist/ and
 * package.json copied, its node_modules a folder of symlinks to this
 * checkout's, so that one dependency can be taken away (a broken install).
 */
function installCopy (): { dir: string, cli: string, breakDependency: (name: string) => () => void, remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'baton-install-'))
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  mkdirSync(join(dir, 'node_modules'))
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules', entry), join(dir, 'node_modules', entry))
  return {
    dir,
    cli: join(dir, 'dist/cli/main.js'),
    breakDependency: (name: string) => {
      unlinkSync(join(dir, 'node_modules', name))
      return () => symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name))
    },
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}

for (const workers of [1, 2]) {
  describe(`a broken install, with ${workers} worker(s)`, () => {
    const install = installCopy()
    let baton: RunningBaton
    beforeAll(async () => {
      baton = await startBaton({
        ...demoConfig({ size: 2, rollout: { minReady: '300ms' } }),
        workers,
        upgrade: { timeout: '20s', drainTimeout: `${DRAIN_MS}ms` }
      }, { cli: install.cli })
    })
    afterAll(async () => {
      expect(await baton.kill('SIGTERM')).toBe(0)
      install.remove()
    })

    it('an upgrade to an install missing a dependency fails with the reason; the old generation never stops serving', async () => {
      const h0 = await health(baton)
      const pids0 = await instancePids(baton)
      const old = await generationPids(baton)
      // prom-client: `baton check` runs without it, the controller cannot.
      const repair = install.breakDependency('prom-client')
      const load = startLoad(baton.url, { keepAlive: 4, close: 2, posts: 1, slow: 2, slowMs: 1000 })
      await sleep(500)
      const cli = await runCli(['upgrade', '--admin', baton.adminUrl])
      await sleep(500)
      const result = await load.stop()
      console.log(cli.stdout)
      console.log(`broken install (${workers} worker(s)): ${cli.stderr}; ${result.sent} requests sent, ${result.failed} failed`)
      expect(cli.code).toBe(1)
      expect(cli.stderr).toMatch(/^baton: upgrade failed: the new controller failed: .*prom-client.*; generation 1 serves on$/)
      expectClean(result)
      expect(await health(baton)).toEqual(h0)
      expect(await instancePids(baton)).toEqual(pids0)
      expect(await generationPids(baton)).toEqual(old)
      const p = await processes(baton)
      expect(p.controllers).toHaveLength(1)
      expect(p.workers.every(w => w.generation === 1 && w.state === 'serving')).toBe(true)

      // Repaired, the same upgrade goes through.
      repair()
      const again = await runCli(['upgrade', '--admin', baton.adminUrl])
      expect(again.code, again.stderr).toBe(0)
      expect((await health(baton)).generation).toBe(2)
      expect(await instancePids(baton)).toEqual(pids0)
    }, 90_000)
  })
}

function present (v: number | undefined): number {
  if (v === undefined) throw new Error('missing')
  return v
}
