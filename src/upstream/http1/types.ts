import type { UpstreamError } from './errors.js'
import type { ResponseHead } from './head.js'
import type { Connection } from './connection.js'

/**
 * What an exchange hears from the connection it sends its request on. Each
 * call may detach the exchange (abort()); the connection checks after each.
 */
export interface ResponseHandler {
  /** A 1xx other than 100 and 101 (103 Early Hints); the final head follows. */
  onInformational (head: ResponseHead): void
  /** The final head. `head` is reused by the connection: read it now. */
  onResponseHead (head: ResponseHead): void
  /**
   * A run of body bytes, a copy the handler owns: once nothing refers to it
   * any more it may give it back with recycle() (chunks.ts). false: stop
   * reading until resume().
   */
  onResponseData (chunk: Buffer): boolean
  /** The response is complete; the connection has already gone back to its pool (or been closed). */
  onResponseEnd (trailers: readonly string[] | undefined): void
  /** The attempt failed; the connection is closed and never reused. */
  onUpstreamError (err: UpstreamError): void
  /** The request body may be written again (writeBody returned false before). */
  onUpstreamDrain (): void
}

/** What a connection tells the pool it belongs to. */
export interface ConnectionOwner {
  readonly host: string
  readonly port: number
  readonly connectTimeout: number
  readonly upstreamTimeout: number
  onConnected (c: Connection): void
  onConnectFailed (c: Connection, err: UpstreamError): void
  /** A response ended cleanly and the connection may carry another request. */
  onReusable (c: Connection, keepAliveSeconds: number): void
  /** The connection is closed for good. */
  onClosed (c: Connection): void
}

/** How the current request's body goes out. */
export enum RequestBody { None, Length, Chunked }

