import { connect, type Socket } from 'node:net'
import { expect } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, instances, raw, send, waitFor } from '../helpers/http.js'

// The harness of the hostile-HTTP corpus (hostile-http*.test.ts): one raw
// request per case on a fresh connection, its answer, what the backend saw,
// and a normal request on a new connection afterwards.

/** A request that a parser which got the framing wrong would forward as a second one. */
export const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n'

/** `data` as one chunk, then the last chunk. */
export const chunked = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`

export interface Case {
  name: string
  /** The bytes sent, as latin1. */
  bytes: string
  /**
   * A status baton refuses the request with (and then closes the
   * connection), or, with `forwarded`, the status of a request that is
   * accepted and reaches the backend once, whole.
   */
  answer: number
  /** Text the refusal's body must hold. */
  says?: string
  /**
   * The fault lies in the body: the backend may have seen the head and the
   * bytes before the fault (bodies stream), but never a complete request.
   * Without it, the backend must see nothing at all.
   */
  bodyFault?: boolean
  /** Accepted: checks on the backend's echo of the one request it got. */
  forwarded?: (echo: Echo) => void
}

export interface Echo { method: string, url: string, headers: Record<string, string>, rawHeaders: string[], size: number }

export interface Stats { total: number, paths: Record<string, number>, incomplete: number, cut: number }

export interface Bench {
  backend: Backend
  baton: RunningBaton
  port: number
  stats: () => Promise<Stats>
  run: (c: Case) => Promise<void>
  stop: () => Promise<void>
}

/**
 * A backend and a baton in front of it, routed by Host (`web` and
 * `127.0.0.1`; any other Host gets 404), with a 1 s body timeout.
 */
export async function bench (): Promise<Bench> {
  const backend = await startBackend({ NAME: 'a' })
  const baton = await startBaton(config({ web: { servers: [backend.address] } }, {
    proxy: { timeouts: { body: '1s' } },
    routes: [{ match: { host: 'web' }, pool: 'web' }, { match: { host: '127.0.0.1' }, pool: 'web' }]
  }))
  const port = baton.ports[0]
  const stats = async (): Promise<Stats> => await (await fetch(`http://${backend.address}/admin/stats`)).json() as Stats

  async function run (c: Case): Promise<void> {
    const before = await stats()
    const r = await raw(port, Buffer.from(c.bytes, 'latin1'), { waitMs: 5_000 })
    expect(r.closed, `connection left open; got: ${r.data}`).toBe(true)
    expect(r.statuses, r.data).toEqual([c.answer])
    if (c.forwarded !== undefined) {
      const after = await stats()
      expect(after.total, 'the backend did not get exactly one request').toBe(before.total + 1)
      expect(after.incomplete).toBe(before.incomplete)
      expect(after.paths['/smuggled']).toBe(before.paths['/smuggled'])
      const text = Buffer.from(r.data, 'latin1').toString('utf8')
      c.forwarded(JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Echo)
    } else {
      refusal(r.data, c.says)
      if (c.bodyFault !== true) expect(await stats(), 'the backend saw part of a refused request').toEqual(before)
    }
    // baton keeps serving, on a new connection.
    expect((await send(`${baton.url}/echo`)).status).toBe(200)
    if (c.bodyFault === true) {
      // Whatever the backend saw of the case (besides that /echo) ended
      // incomplete, and no smuggled request followed. The exchange is over
      // on baton's side, so nothing more of it can reach the backend.
      await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
      const after = await waitFor(async () => {
        const s = await stats()
        return s.total - before.total - 1 === s.incomplete - before.incomplete ? s : undefined
      }, 5_000) as Stats
      expect(after.total - before.total - 1).toBeLessThanOrEqual(1)
      expect(after.paths['/smuggled']).toBe(before.paths['/smuggled'])
    }
  }

  return {
    backend,
    baton,
    port,
    stats,
    run,
    stop: async () => {
      await waitFor(async () => (await instances(baton.adminUrl, 'web'))[0].inflight === 0, 5_000)
      expect(await baton.kill()).toBe(0)
      await backend.kill()
    }
  }
}

/**
 * A refusal as baton writes it: one status line, `Connection: close`, and a
 * short plain-text body of one line that says why (never a stack trace).
 */
export function refusal (data: string, says?: string): void {
  const end = data.indexOf('\r\n\r\n')
  expect(end, data).toBeGreaterThan(0)
  const head = data.slice(0, end + 2)
  const body = data.slice(end + 4)
  expect(head).toMatch(/^HTTP\/1\.1 [45]\d\d [A-Za-z -]+\r\n/)
  expect(head).toMatch(/\r\nconnection: close\r\n/i)
  expect(head).toMatch(/\r\ncontent-type: text\/plain; charset=utf-8\r\n/i)
  expect(head).toMatch(new RegExp(`\\r\\ncontent-length: ${body.length}\\r\\n`, 'i'))
  expect(body).toMatch(/^baton: [^\n]+\n$/)
  expect(body.length).toBeLessThan(120)
  if (says !== undefined) expect(body).toContain(says)
}

/** A raw client connection that is written to and read from step by step. */
export class Talk {
  data = ''
  closed = false
  private wake: () => void = () => undefined

  private constructor (private readonly sock: Socket) {
    sock.on('error', () => undefined)
    sock.on('data', (d: Buffer) => { this.data += d.toString('latin1'); this.wake() })
    sock.on('close', () => { this.closed = true; this.wake() })
  }

  static async open (port: number): Promise<Talk> {
    const sock = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
    return new Talk(sock)
  }

  write (bytes: string): void { this.sock.write(Buffer.from(bytes, 'latin1')) }

  /** Resolves once what came back matches `re` (or, with 'close', the connection closed); throws after `ms`. */
  async until (re: RegExp | 'close', ms = 5_000): Promise<this> {
    const deadline = Date.now() + ms
    while (re === 'close' ? !this.closed : !re.test(this.data) && !this.closed) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${String(re)}; got: ${this.data}`)
      await new Promise<void>(resolve => { this.wake = resolve; setTimeout(resolve, Math.min(left, 100)) })
    }
    return this
  }

  get statuses (): number[] { return [...this.data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1])) }

  destroy (): void { this.sock.destroy() }
}
