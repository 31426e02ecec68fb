/** Helpers for the admin API and CLI tests: a managed demo pool, an admin client with a token, bounded polls. */
import type { AnyAnswer, PoolView, RolloutAnswer } from './views.js'

/** A managed pool of scripts/demo-app.mjs: quick to start, quick to soak. */
export function demoPool (ports: string, o: { size?: number, env?: Record<string, string>, readiness?: object, rollout?: object } = {}): Record<string, unknown> {
  return {
    size: o.size ?? 2,
    version: 'v1',
    process: {
      command: 'node scripts/demo-app.mjs',
      env: { PORT: '{port}', APP_VERSION: '{version}', READY_DELAY: '200', ...o.env },
      ports
    },
    readiness: { path: '/ready', interval: '100ms', startTimeout: '10s', ...o.readiness },
    rollout: { minReady: '300ms', drainTimeout: '5s', stopTimeout: '3s', ...o.rollout }
  }
}

export interface Answer { status: number, body: AnyAnswer, text: string, headers: Headers }

/** The admin API, with `token` as a bearer token when given. */
export function adminApi (adminUrl: string, token?: string) {
  const call = async (method: string, path: string, o: { body?: unknown, raw?: string, headers?: Record<string, string> } = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...o.headers }
    const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body))
    if (payload !== undefined) headers['content-type'] ??= 'application/json'
    const res = await fetch(adminUrl + path, { method, headers, body: payload })
    const text = await res.text()
    let body: AnyAnswer
    try { body = JSON.parse(text) as AnyAnswer } catch { body = {} as AnyAnswer }
    return { status: res.status, body, text, headers: res.headers }
  }
  return {
    call,
    get: async (path: string) => await call('GET', path),
    post: async (path: string, body?: unknown) => await call('POST', path, { body }),
    /** Polls GET /v1/rollouts/ID until `pred` holds (bounded; the error shows the rollout's events). */
    async waitRollout (id: string, pred: (r: RolloutAnswer) => boolean, timeoutMs = 30_000): Promise<RolloutAnswer> {
      const until = Date.now() + timeoutMs
      for (;;) {
        const r = (await call('GET', `/v1/rollouts/${id}`)).body
        if (pred(r)) return r
        if (Date.now() > until) throw new Error(`rollout ${id} never got there: ${JSON.stringify(r)}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    },
    /** Polls GET /v1/pools/NAME until `pred` holds (bounded). */
    async waitPool (name: string, pred: (p: PoolView) => boolean, timeoutMs = 30_000): Promise<PoolView> {
      const until = Date.now() + timeoutMs
      for (;;) {
        const p = (await call('GET', `/v1/pools/${name}`)).body
        if (pred(p)) return p
        if (Date.now() > until) throw new Error(`pool ${name} never got there: ${JSON.stringify(p)}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
  }
}

export type AdminApi = ReturnType<typeof adminApi>

export const FINISHED = ['succeeded', 'failed', 'rolled_back', 'aborted']
export const finished = (r: { status: string }): boolean => FINISHED.includes(r.status)

/** Every instance of the pool serves `version`, `size` of them, and no rollout runs. */
export const settledOn = (version: string, size = 2) => (p: PoolView): boolean =>
  p.rollout === null && p.instances.filter(i => i.state === 'serving' && i.version === version).length === size &&
  p.instances.every(i => i.state === 'failed' || (i.state === 'serving' && i.version === version))
