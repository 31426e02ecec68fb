import type { DockerSpec, ProcessSpec, ReadinessSpec, RolloutSpec } from './schema.js'

export type { DockerSpec, ProcessSpec, ReadinessSpec, RolloutSpec }

export interface ListenConfig { host: string, port: number }

export interface RouteConfig {
  /** Lower-cased host; `*.example.com` matches one or more labels. */
  host?: string
  pathPrefix?: string
  pool: string
}

/** SPEC §8 `accessLog`: `stdout`, `stderr`, or a file (made absolute against the config file's folder). */
export interface AccessLogConfig { path: string }

export interface ProxyConfig {
  timeouts: { connect: number, headers: number, idle: number, upstream: number, body: number }
  retries: number
  maxHeaderSize: number
  /** The top-level `accessLog`, carried with the proxy settings it belongs to at run time; undefined: off. */
  accessLog?: AccessLogConfig
}

export type PoolKind = 'process' | 'docker' | 'static'

export interface PoolConfig {
  name: string
  kind: PoolKind
  /** Instances serving when no rollout runs; for static pools, the server count. */
  size: number
  balance: 'least-request' | 'round-robin'
  version: string
  process?: ProcessSpec
  docker?: DockerSpec
  servers?: string[]
  /** Always set for managed pools; set for static pools only when health checks are wanted. */
  readiness?: ReadinessSpec
  rollout: RolloutSpec
}

export interface Config {
  /** The file this was read from (for reload and error messages). */
  file: string
  listen: ListenConfig[]
  admin: { host: string, port: number, token?: string }
  proxy: ProxyConfig
  routes: RouteConfig[]
  pools: Record<string, PoolConfig>
}
