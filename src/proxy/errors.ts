/**
 * What went wrong with one upstream attempt, reduced to the few kinds that
 * decide retry and status (and label baton_upstream_errors_total).
 */
export type UpstreamErrorKind = 'refused' | 'reset' | 'connect_timeout' | 'timeout' | 'body_timeout' | 'closed' | 'aborted' | 'no_fd' | 'other'

export function classify (err: Error & { code?: string }): UpstreamErrorKind {
  switch (err.code) {
    case 'ECONNREFUSED': return 'refused'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET': return 'reset'
    case 'UND_ERR_CONNECT_TIMEOUT': return 'connect_timeout'
    case 'UND_ERR_HEADERS_TIMEOUT': return 'timeout'
    case 'UND_ERR_BODY_TIMEOUT': return 'body_timeout'
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED': return 'closed'
    case 'UND_ERR_ABORTED': return 'aborted'
    // Out of file descriptors: baton's own trouble, not the upstream's.
    case 'EMFILE':
    case 'ENFILE': return 'no_fd'
    default: return 'other'
  }
}

/** Kinds where the request never reached the upstream, so any method may be retried. */
export function neverSent (kind: UpstreamErrorKind): boolean {
  return kind === 'refused' || kind === 'connect_timeout' || kind === 'closed'
}

export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
