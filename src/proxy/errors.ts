import { socketErrorKind, UpstreamError, type UpstreamErrorKind } from '../upstream/http1/errors.js'

export type { UpstreamErrorKind }

/** The kind of an upstream attempt's error: baton's own client says it; node:http's (upgrades) carries an errno code. */
export function classify (err: Error & { code?: string }): UpstreamErrorKind {
  if (err instanceof UpstreamError) return err.kind
  return socketErrorKind(err.code)
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/**
 * G4, for plain requests and upgrades alike: an attempt that failed before
 * any response byte may go to another instance when nothing of the request
 * was written (`sent` false: any method, as long as the failure was about
 * getting a connection), or when the connection was reset after the request
 * went out and repeating it is harmless (an idempotent method, no body).
 * A timeout is never retried: the upstream may still be working on it.
 */
export function retriable (kind: UpstreamErrorKind, sent: boolean, method: string, hasBody: boolean): boolean {
  if (!sent) return kind === 'refused' || kind === 'connect_timeout' || kind === 'reset' || kind === 'closed' || kind === 'pool_full' || kind === 'other'
  return kind === 'reset' && !hasBody && IDEMPOTENT.has(method)
}

/** Kinds that count against an instance for passive ejection: it could not be reached or dropped the connection. */
export function countsAsFailure (kind: UpstreamErrorKind): boolean {
  return kind === 'refused' || kind === 'connect_timeout' || kind === 'reset'
}

/** The status baton answers when no attempt succeeded. */
export function failureStatus (kind: UpstreamErrorKind): number {
  if (kind === 'timeout') return 504
  if (kind === 'no_fd' || kind === 'pool_full') return 503
  return 502
}

/** Reason phrases of the statuses baton answers itself (client errors and upstream failures), in one table. */
export const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported'
}
