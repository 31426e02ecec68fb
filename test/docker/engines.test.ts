import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Engine, type EngineError } from '../../src/driver/docker/engine.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { deadPort, waitFor } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { getPool, waitPool } from '../helpers/pool.js'
import { buildImages, copyImages, DOCKER_TESTS, dockerConfig, makeTls, removePool, running, startDaemon, stopDaemon, type Daemon, type TlsFiles } from './helpers.js'
import type { InstanceView, PoolView } from '../helpers/views.js'

/**
 * Two engines (two dockerds, each with its own socket and data root; baton
 * reaches the second over tcp with TLS, client certificates and all): a pool
 * is spread evenly over them; when one dies with its containers (its machine
 * is lost), the pool runs its instances on the other, and the dead one gets
 * none until it answers again.
 */

const SECOND = { run: '/run/baton-ci-e2', data: '/var/lib/baton-ci-docker-e2' }
let second = { ...SECOND, args: '' }
const serving = (p: PoolView): InstanceView[] => p.instances.filter(i => i.state === 'serving')
const live = (p: PoolView): InstanceView[] => p.instances.filter(i => i.state !== 'failed')

describe.skipIf(!DOCKER_TESTS)('docker pool on two engines', () => {
  let d1: Daemon | undefined
  let d2: Daemon | undefined
  let baton: RunningBaton | undefined
  let tls: TlsFiles | undefined
  let tcpUrl = ''
  /** Host PIDs of the containers this test kills itself (in case a step fails before the daemon's stop). */
  const killed: number[] = []

  beforeAll(async () => {
    d1 = startDaemon()
    tls = makeTls()
    tcpUrl = `tcp://127.0.0.1:${await deadPort()}`
    second = { ...SECOND, args: `-H ${tcpUrl} --tlsverify --tlscacert ${tls.ca} --tlscert ${tls.serverCert} --tlskey ${tls.serverKey}` }
    d2 = startDaemon({ ...second, fresh: true })
    await removePool(d1)
    await removePool(d2)
    buildImages(d1)
    copyImages(d1, d2)
  }, 240_000)

  afterAll(async () => {
    await baton?.kill('SIGKILL')
    await removePool(d1)
    await removePool(d2)
    for (const pid of killed) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    await stopDaemon(d1)
    // The second daemon was killed: its stop also ends what it left (shims, mounts).
    if (d2 !== undefined) d2.startedHere = true
    await stopDaemon(d2)
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true })
  }, 120_000)

  it('talks to the second engine over tcp with TLS', async () => {
    const engine = new Engine(tcpUrl, tls)
    await engine.ping()
    expect(engine.host).toBe('127.0.0.1')
    await engine.close()
    // Without TLS the engine refuses to talk.
    const plain = new Engine(tcpUrl)
    const err = await plain.ping().catch((x: unknown) => x as EngineError)
    await plain.close()
    expect(err).toMatchObject({ code: 'BATON_ERR_DOCKER_API', status: 400 })
  })

  it('spreads 4 instances 2+2 and moves them to the live engine when the other dies, under GET load', async () => {
    baton = await startBaton(dockerConfig([d1!.url, { url: tcpUrl, tls: { ca: tls!.ca, cert: tls!.cert, key: tls!.key } }]))
    const on1 = await running(d1!)
    const on2 = await running(d2!)
    console.log(`spread: ${on1.length} on engine 1, ${on2.length} on engine 2`)
    expect(on1).toHaveLength(2)
    expect(on2).toHaveLength(2)
    const lost = new Set(on2.map(c => c.labels['baton.instance']))
    const pool = await getPool(baton.adminUrl)
    expect(serving(pool)).toHaveLength(4)

    const load = startLoad(baton.url, { keepAlive: 4, close: 2, maxMs: 90_000 })
    await new Promise(resolve => setTimeout(resolve, 1000))
    // Engine 2's machine is lost: dockerd and its containers die at once.
    const pids = await Promise.all(on2.map(async c => (await d2!.engine.inspect(c.id)).State.Pid))
    killed.push(...pids)
    const t0 = Date.now()
    process.kill(d2!.pid(), 'SIGKILL')
    for (const pid of pids) process.kill(pid, 'SIGKILL')

    const after = await waitPool(baton.adminUrl, p => serving(p).length === 4 && live(p).length === 4 &&
      !p.instances.some((i) => lost.has(i.id) && i.state !== 'failed'), 45_000)
    const replacedMs = Date.now() - t0
    await new Promise(resolve => setTimeout(resolve, 1000))
    const result = await load.stop()
    const down = baton.lines.find(l => l.includes('docker engine down'))
    console.log(`engine 2 lost: its 2 instances replaced on engine 1 within ${replacedMs} ms; ${result.sent} GETs sent, ${result.failed} failed ${JSON.stringify(result.samples)}`)
    expect(down).toBeDefined()
    expect(result.samples).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.sent).toBeGreaterThan(200)
    for (const i of after.instances.filter((x) => lost.has(x.id))) expect(i.state).toBe('failed')

    // All 4 now run on engine 1, and baton starts none on the dead one.
    const now1 = await running(d1!)
    expect(now1.map(c => c.labels['baton.instance']).sort()).toEqual(serving(after).map((i) => i.id).sort())
    expect(baton.lines.filter(l => l.includes('instance container started') && l.includes(tcpUrl))).toHaveLength(2)

    // The daemon comes back (empty: its data root was a tmpfs): baton sees it answer again.
    startDaemon(second)
    await waitFor(() => baton!.lines.some(l => l.includes('docker engine answers again')), 20_000)
  }, 150_000)

  it('stops every container on baton\'s SIGTERM', async () => {
    expect(await baton!.kill('SIGTERM')).toBe(0)
    baton = undefined
    expect(await running(d1!)).toEqual([])
  }, 60_000)
})
