import { readFileSync } from 'node:fs'
import { claimPortRange } from './ports.js'
import type { AnyAnswer, PoolView, RolloutAnswer, RolloutView } from './views.js'

/** Config and admin helpers for tests of managed pools of scripts/demo-app.mjs. */

export interface DemoPoolOptions {
  size?: number
  env?: Record<string, string>
  readyDelayMs?: number
  rollout?: Record<string, unknown>
  readiness?: Record<string, unknown>
}

/** A config as the YAML a test writes: the demo pool `web`, and room for what a test adds. */
export interface DemoConfig {
  listen: Array<{ port: number, host: string }>
  admin: { listen: string }
  proxy: { retries: number }
  routes?: Array<{ match: { host?: string, pathPrefix?: string }, pool: string }>
  pools: {
    web: { size: number, version: string, balance?: string, process: { command: string, env: Record<string, string>, ports: string }, readiness: Record<string, unknown>, rollout: Record<string, unknown> }
    [pool: string]: Record<string, unknown>
  }
}

export function demoConfig (o: DemoPoolOptions = {}): DemoConfig {
  return {
    listen: [{ port: 0, host: '127.0.0.1' }],
    admin: { listen: '127.0.0.1:0' },
    proxy: { retries: 2 },
    pools: {
      web: {
        size: o.size ?? 4,
        version: 'v1',
        process: {
          command: 'node scripts/demo-app.mjs',
          env: { PORT: '{port}', APP_VERSION: '{version}', READY_DELAY: String(o.readyDelayMs ?? 300), ...o.env },
          ports: claimPortRange()
        },
        readiness: { path: '/ready', interval: '100ms', timeout: '1s', startTimeout: '10s', ...o.readiness },
        rollout: { maxSurge: 1, maxUnavailable: 0, minReady: '500ms', drainTimeout: '10s', stopTimeout: '3s', ...o.rollout }
      }
    }
  }
}

export async function adminJson (adminUrl: string, path: string, init: { method?: string, body?: unknown } = {}): Promise<{ status: number, body: AnyAnswer }> {
  const res = await fetch(adminUrl + path, {
    method: init.method ?? 'GET',
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  return { status: res.status, body: await res.json() as AnyAnswer }
}

export async function startRollout (adminUrl: string, body: Record<string, unknown>, pool = 'web'): Promise<RolloutView> {
  const r = await adminJson(adminUrl, `/v1/pools/${pool}/rollouts`, { method: 'POST', body })
  if (r.status !== 202) throw new Error(`rollout refused: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

/** Polls the rollout until it leaves running/paused (bounded). */
export async function waitRollout (adminUrl: string, id: string, timeoutMs = 90_000): Promise<RolloutAnswer> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const r = await adminJson(adminUrl, `/v1/rollouts/${id}`)
    if (r.body.status !== 'running' && !(r.body.status === 'paused' && r.body.error === null)) return r.body
    if (Date.now() > until) throw new Error(`rollout ${id} still ${String(r.body.status)} after ${timeoutMs} ms: ${JSON.stringify(r.body.events)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

export async function getPool (adminUrl: string, pool = 'web'): Promise<PoolView> {
  return (await adminJson(adminUrl, `/v1/pools/${pool}`)).body
}

/** Polls the pool until `pred` holds (bounded). */
export async function waitPool (adminUrl: string, pred: (p: PoolView) => boolean, timeoutMs = 30_000, pool = 'web'): Promise<PoolView> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const p = await getPool(adminUrl, pool)
    if (pred(p)) return p
    if (Date.now() > until) throw new Error(`pool never reached the wanted state: ${JSON.stringify(p)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** True while the process runs; a zombie (dead, not yet reaped by init) counts as gone. */
export function isAlive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
