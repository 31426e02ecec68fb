import type { ConfigProblem } from './errors.js'
import type { BlueGreenSpec, CanarySpec, DockerSpec, ProcessSpec, ReadinessSpec, RolloutSpec } from './schema.js'

export type { BlueGreenSpec, CanarySpec, DockerSpec, ProcessSpec, ReadinessSpec, RolloutSpec }

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3'

/** One certificate of a TLS listener, read from its files when the config was loaded (README "TLS"). */
export interface CertificateConfig {
  /** The files, absolute (made so against the config file's folder). */
  certFile: string
  keyFile: string
  /** PEM text: the certificate with any chain after it, and its private key. */
  cert: string
  key: string
  /** Host names SNI picks it for, lower-cased: its DNS subjectAltNames, else its subject CN; `*.example.com` matches one label. */
  names: string[]
}

export interface TlsConfig {
  /** SNI picks the first whose names match; the first is the default. */
  certificates: CertificateConfig[]
  minVersion: TlsVersion
}

export interface ListenConfig {
  host: string
  port: number
  /** A TLS listener; undefined: plain HTTP. */
  tls?: TlsConfig
  /** HTTP/2 offered by ALPN besides HTTP/1.1: TLS listeners only (default true there), undefined on plain ones. */
  http2?: boolean
  /** `https`: every request is answered 308 to the https URL (the first TLS listener's port). */
  redirect?: 'https'
}

export interface RouteConfig {
  /** Lower-cased host; `*.example.com` matches one or more labels. */
  host?: string
  pathPrefix?: string
  pool: string
}

/** `accessLog` (README "Access log"): `stdout`, `stderr`, or a file (made absolute against the config file's folder). */
export interface AccessLogConfig { path: string }

export interface ProxyConfig {
  timeouts: { connect: number, headers: number, idle: number, upstream: number, body: number }
  retries: number
  maxHeaderSize: number
  /** The top-level `accessLog`, carried with the proxy settings it belongs to at run time; undefined: off. */
  accessLog?: AccessLogConfig
}

export type PoolKind = 'process' | 'docker' | 'static'
export type BalanceKind = 'least-request' | 'round-robin'

interface PoolCommon {
  name: string
  /** Instances serving when no rollout runs; for static pools, the server count. */
  size: number
  balance: BalanceKind
  version: string
  rollout: RolloutSpec
}

/** `process:` pools: baton runs the instances as child processes. */
export interface ProcessPoolConfig extends PoolCommon {
  kind: 'process'
  process: ProcessSpec
  /** Managed pools always probe readiness (G2). */
  readiness: ReadinessSpec
}

/** `docker:` pools: baton runs the instances as containers. */
export interface DockerPoolConfig extends PoolCommon {
  kind: 'docker'
  docker: DockerSpec
  readiness: ReadinessSpec
}

/** `servers:` pools: routed and health-checked, not managed. */
export interface StaticPoolConfig extends PoolCommon {
  kind: 'static'
  servers: string[]
  /** Set only when an active health check is wanted. */
  readiness?: ReadinessSpec
}

export type ManagedPoolConfig = ProcessPoolConfig | DockerPoolConfig
export type PoolConfig = ManagedPoolConfig | StaticPoolConfig

export interface UpgradeConfig {
  /** ms the new generation has to be serving. */
  timeout: number
  /** ms the old generation's requests and WebSockets get before it exits. */
  drainTimeout: number
}

export interface Config {
  /** The file this was read from (for reload and error messages). */
  file: string
  /** Proxy worker processes; `auto` is one per CPU core (see workerCount). */
  workers: number | 'auto'
  upgrade: UpgradeConfig
  listen: ListenConfig[]
  admin: { host: string, port: number, token?: string }
  proxy: ProxyConfig
  routes: RouteConfig[]
  pools: Record<string, PoolConfig>
  /** What is worth saying but does not stop baton (an expired certificate): printed by `baton check`, logged by start and reload. */
  warnings: ConfigProblem[]
}
