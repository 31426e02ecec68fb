import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineError, LogDemuxer, splitImage } from '../../src/driver/docker/engine.js'
import { dockerOf, problemsOf, valid, yaml } from '../config/helpers.js'
import { buildImages, DOCKER_TESTS, IMAGE, startDaemon, stopDaemon, type Daemon } from './helpers.js'

/** The Engine API client and the docker config keys; the first two parts need no daemon. */

const frame = (stream: 1 | 2, text: string | Buffer): Buffer => {
  const payload = Buffer.isBuffer(text) ? text : Buffer.from(text)
  const head = Buffer.alloc(8)
  head[0] = stream
  head.writeUInt32BE(payload.length, 4)
  return Buffer.concat([head, payload])
}

describe('the multiplexed log stream', () => {
  it('splits frames into lines per stream, across chunk and character boundaries', () => {
    const got: string[] = []
    const demux = new LogDemuxer((stream, line) => got.push(`${stream}: ${line}`))
    const euro = Buffer.from('€') // 3 bytes, split over two frames below
    const bytes = Buffer.concat([
      frame(1, 'one\ntw'), frame(2, 'err line\n'), frame(1, Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)])),
      frame(1, Buffer.concat([euro.subarray(1), Buffer.from('\r\nthree')]))
    ])
    // One byte at a time: headers and payloads cut anywhere.
    for (let i = 0; i < bytes.length; i++) demux.push(bytes.subarray(i, i + 1))
    demux.end()
    expect(got).toEqual(['stdout: one', 'stderr: err line', 'stdout: two €', 'stdout: three'])
  })

  it('splits image names into repository and tag', () => {
    expect(splitImage('baton-demo:v1')).toEqual({ repo: 'baton-demo', tag: 'v1' })
    expect(splitImage('registry.example.com:5000/shop')).toEqual({ repo: 'registry.example.com:5000/shop', tag: 'latest' })
    expect(splitImage('registry.example.com:5000/shop:1.4.2')).toEqual({ repo: 'registry.example.com:5000/shop', tag: '1.4.2' })
    expect(splitImage('shop@sha256:abc')).toEqual({ repo: 'shop', tag: 'sha256:abc' })
  })
})

describe('docker: network and ports in the config', () => {
  // Each key of `docker` on its own line, indented like the template's.
  const pool = (docker: string[], size = 2): string => yaml`
    listen:
      - port: 8080
    pools:
      web:
        size: ${size}
        docker:
          image: shop:{version}
          ${docker.join('\n          ')}
  `
  const shown = (text: string): string[] => problemsOf(text).map(p => `${p.line}:${p.col} ${p.path}: ${p.message}`)

  it('takes host networking with a port range, and bridge with a port', () => {
    expect(dockerOf(valid(pool(['network: host', 'ports: 49000-49009'])).pools.web).docker).toMatchObject({ network: 'host', ports: { from: 49000, to: 49009 } })
    expect(dockerOf(valid(pool(['port: 8080'])).pools.web).docker).toMatchObject({ port: 8080 })
  })

  it('refuses host networking without ports, bridge without port, a range too small, a bad mode', () => {
    expect(shown(pool(['network: host']))).toEqual(['6:5 pools.web.docker.ports: is required with network: host (each container gets a free port of this range as {port})'])
    expect(shown(pool(['env: {}']))).toEqual(["6:5 pools.web.docker.port: is required (the app's port inside the container, published on a free host port)"])
    expect(shown(pool(['network: host', 'ports: 49000-49002'], 3))).toEqual(['9:14 pools.web.docker.ports: the range has 3 ports but size + maxSurge needs 4'])
    expect(shown(pool(['network: overlay', 'port: 80']))).toEqual(['8:16 pools.web.docker.network: expected bridge or host'])
  })
})

describe.skipIf(!DOCKER_TESTS)('the Engine API client on a real dockerd', () => {
  let d: Daemon | undefined
  beforeAll(() => { d = startDaemon(); buildImages(d) }, 240_000)
  afterAll(async () => {
    for (const c of await d?.engine.list({ 'baton.test': 'engine' }) ?? []) await d?.engine.remove(c.Id)
    await stopDaemon(d)
  }, 120_000)

  it('creates, starts, follows, waits for and removes a container', async () => {
    const e = d!.engine
    await e.ping()
    const id = await e.create(`baton-engine-test-${process.pid}`, {
      Image: `${IMAGE}:v1`,
      Cmd: ['node', '-e', 'console.log("out 1"); console.error("err 1"); setTimeout(() => { console.log("out 2"); process.exit(7) }, 300)'],
      Labels: { 'baton.test': 'engine' },
      HostConfig: { NetworkMode: 'none', Init: true }
    })
    await e.start(id)
    const lines: string[] = []
    const [code] = await Promise.all([e.wait(id), e.logs(id, (s, l) => lines.push(`${s}: ${l}`))])
    expect(code).toBe(7)
    // Docker copies the two streams apart: each keeps its order, their interleaving may vary.
    expect(lines.filter(l => l.startsWith('stdout'))).toEqual(['stdout: out 1', 'stdout: out 2'])
    expect(lines.filter(l => l.startsWith('stderr'))).toEqual(['stderr: err 1'])
    expect((await e.list({ 'baton.test': 'engine' })).map(c => c.Id)).toEqual([id])
    expect((await e.inspect(id)).State).toMatchObject({ Running: false, ExitCode: 7 })
    expect(await e.kill(id, 'SIGTERM')).toBe(false) // not running
    await e.remove(id)
    await e.remove(id) // gone already: fine
    const err = await e.inspect(id).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as EngineError).code).toBe('BATON_ERR_DOCKER_NOT_FOUND')
  })

  it('says which image is missing (no registry answers here, so the pull fails)', async () => {
    const err = await d!.engine.create('baton-engine-test-missing', { Image: `${IMAGE}:v9`, Labels: { 'baton.test': 'engine' } }).catch((x: unknown) => x)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as EngineError).code).toBe('BATON_ERR_DOCKER_IMAGE')
    expect((err as EngineError).message).toMatch(/^image baton-demo:v9 is not on the Docker engine unix:\/\/\S+ and could not be pulled: /)
    console.log(`missing image: ${(err as Error).message}`)
  })

  it('reports an engine that does not answer as unreachable', async () => {
    const { Engine } = await import('../../src/driver/docker/engine.js')
    const nowhere = new Engine('unix:///run/baton-ci-nowhere/docker.sock')
    const err = await nowhere.ping().catch((x: unknown) => x)
    await nowhere.close()
    expect((err as EngineError).code).toBe('BATON_ERR_DOCKER_UNREACHABLE')
    expect((err as EngineError).unreachable).toBe(true)
  })
})
