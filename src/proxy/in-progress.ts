import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Which response a client connection is writing, kept by baton itself (Node
 * keeps it only in a private field): the response of the latest request
 * parsed on the socket. Set per request (one property store), dropped when
 * that response closes, so an idle keep-alive connection holds none.
 */
const LATEST = Symbol('baton.latestResponse')
type Marked = Socket & { [LATEST]?: ServerResponse }

export function setLatest (socket: Socket, res: ServerResponse): void {
  (socket as Marked)[LATEST] = res
}

/** The response still being written on `socket`, if any. */
export function inProgress (socket: Socket): ServerResponse | undefined {
  const res = (socket as Marked)[LATEST]
  return res !== undefined && !res.writableFinished ? res : undefined
}

/** `res` closed: the socket no longer holds on to it. */
export function responseClosed (socket: Socket | null, res: object): void {
  if (socket !== null && (socket as Marked)[LATEST] === res) (socket as Marked)[LATEST] = undefined
}
