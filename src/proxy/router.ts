import type { RouteConfig } from '../config/types.js'

export interface CompiledRoute {
  pool: string
  /** The revision a pinned route (a blue-green preview) sends to; 0: the pool's own choice. */
  revision: number
  matches (host: string, path: string): boolean
}

/**
 * Routes compiled once per config: the hot path calls `route` with the raw
 * Host header and URL and gets a pool name, or undefined (404).
 */
export class Router {
  private readonly routes: CompiledRoute[]

  constructor (routes: Array<RouteConfig & { revision?: number }>) {
    this.routes = routes.map(compile)
  }

  /** The first route that matches, or undefined (404). */
  match (hostHeader: string | undefined, url: string): CompiledRoute | undefined {
    const host = normaliseHost(hostHeader)
    const path = pathOf(url)
    for (let i = 0; i < this.routes.length; i++) {
      if (this.routes[i].matches(host, path)) return this.routes[i]
    }
    return undefined
  }

  route (hostHeader: string | undefined, url: string): string | undefined {
    return this.match(hostHeader, url)?.pool
  }
}

/** Host without its `:port`, lower-cased; IPv6 literals keep their brackets. */
export function normaliseHost (h: string | undefined): string {
  if (h === undefined || h === '') return ''
  let end = h.length
  if (h.charCodeAt(0) === 91 /* [ */) {
    end = h.indexOf(']') + 1
    if (end === 0) end = h.length
  } else {
    const colon = h.lastIndexOf(':')
    if (colon !== -1) end = colon
  }
  // The fully qualified form `example.com.` names the same host.
  if (end > 1 && h.charCodeAt(end - 1) === 46 /* . */) end--
  return h.slice(0, end).toLowerCase()
}

function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function compile (r: RouteConfig & { revision?: number }): CompiledRoute {
  // Hosts compare case-insensitively: the request side is lower-cased by normaliseHost.
  const host = r.host?.toLowerCase()
  const hostMatch = host === undefined
    ? undefined
    : host.startsWith('*.')
      ? ((suffix: string) => (h: string) => h.length > suffix.length && h.endsWith(suffix))(host.slice(1))
      : ((exact: string) => (h: string) => h === exact)(host)
  const prefix = r.pathPrefix ?? '/'
  // Whole segments: `/v1` matches `/v1` and `/v1/x` but not `/v10`.
  const bare = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  const pathMatch = bare === ''
    ? undefined
    : (p: string) => p.startsWith(bare) && (p.length === bare.length || p.charCodeAt(bare.length) === 47 /* / */)
  return {
    pool: r.pool,
    revision: r.revision ?? 0,
    matches: (host, path) =>
      (hostMatch === undefined || hostMatch(host)) && (pathMatch === undefined || pathMatch(path))
  }
}
