import { BatonError } from '../../errors.js'

/**
 * What went wrong with one upstream attempt, reduced to the few kinds that
 * decide retry and status (and label baton_upstream_errors_total).
 */
export type UpstreamErrorKind =
  | 'refused' | 'reset' | 'connect_timeout' | 'timeout' | 'body_timeout'
  | 'closed' | 'aborted' | 'no_fd' | 'pool_full' | 'protocol' | 'other'

/** A failed upstream attempt; `code` is BATON_ERR_UPSTREAM_<KIND>. */
export class UpstreamError extends BatonError {
  readonly kind: UpstreamErrorKind
  constructor (kind: UpstreamErrorKind, message: string) {
    super(`BATON_ERR_UPSTREAM_${kind.toUpperCase()}`, message)
    this.name = 'UpstreamError'
    this.kind = kind
  }
}

/** The kind of a socket error (an errno code such as ECONNREFUSED). */
export function socketErrorKind (code: string | undefined): UpstreamErrorKind {
  switch (code) {
    case 'ECONNREFUSED': return 'refused'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
    case 'ETIMEDOUT': return 'reset'
    // Out of file descriptors: baton's own trouble, not the upstream's.
    case 'EMFILE':
    case 'ENFILE': return 'no_fd'
    default: return 'other'
  }
}

/** A response that breaks HTTP/1.1 framing or syntax: answered 502, its connection never reused. */
export function protocolError (what: string): UpstreamError {
  return new UpstreamError('protocol', `the upstream's response ${what}`)
}
