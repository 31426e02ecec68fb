import { lookup } from 'node:dns/promises'
import net from 'node:net'
import { getSystemErrorName } from 'node:util'
import { BatonError } from '../errors.js'

/**
 * A bound TCP socket that nobody in this process accepts on: the raw libuv
 * handle that `node:cluster`'s primary keeps for its workers. It is passed to
 * worker processes with a message (`child.send(msg, handle)`, as
 * 'net.Native'), and only they call listen() and accept. The supervisor keeps
 * its own copy open, so the socket outlives any worker or generation: a
 * connection made while no worker accepts waits in the backlog instead of
 * being refused, as with nginx's master.
 */
export interface ListenHandle {
  /** Fills `out` with the bound address; 0 or a negative errno. */
  getsockname: (out: { address?: string, port?: number, family?: string }) => number
  close: (cb?: () => void) => void
}

/**
 * `net._createServerHandle(address, port, addressType)`: Node's own function
 * that binds a listening socket's handle without listening on it (cluster
 * uses it in its primary, `lib/internal/cluster/round_robin_handle.js` and
 * `shared_handle.js`). Node 20 has no public equivalent — `reusePort` is
 * silently ignored there, worker_threads cannot share a listener, and
 * `node:cluster` itself closes the socket when its last worker leaves, which
 * would refuse connections while a worker is replaced. This file is the one
 * place in baton that touches a private Node API; if a future Node removes
 * it, only this function changes (to `net.Server` + `listen({ fd })`).
 * It returns the handle, or a negative errno when the bind failed.
 */
type CreateServerHandle = (address: string, port: number, addressType: 4 | 6) => ListenHandle | number

const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle

/** The address of a listening socket baton opened. */
export interface BoundListener {
  /** `host:port` as configured (port 0 stays 0 here): the key listeners are compared by on reload. */
  key: string
  host: string
  /** The port bound: the configured one, or the one the OS gave for port 0. */
  port: number
  handle: ListenHandle
}

/** A listener could not be bound (port taken, address not local, ...). */
export class ListenError extends BatonError<'BATON_ERR_LISTEN'> {
  constructor (readonly errno: string, host: string, port: number) {
    super('BATON_ERR_LISTEN', `cannot listen on ${host}:${port}: ${errno}${errno === 'EADDRINUSE' ? ' (the port is taken)' : ''}`)
  }
}

/** Binds host:port (a host name is resolved first, as `server.listen` would); throws ListenError. */
export async function bindListener (host: string, port: number, key = listenerKey(host, port)): Promise<BoundListener> {
  let address = host
  if (net.isIP(host) === 0) {
    try {
      address = (await lookup(host)).address
    } catch (err) {
      throw new ListenError((err as NodeJS.ErrnoException).code ?? 'ENOTFOUND', host, port)
    }
  }
  const h = createServerHandle(address, port, net.isIPv6(address) ? 6 : 4)
  if (typeof h === 'number') throw new ListenError(getSystemErrorName(h), host, port)
  const out: { port?: number } = {}
  const err = h.getsockname(out)
  if (err !== 0 || out.port === undefined) {
    h.close()
    throw new ListenError(err !== 0 ? getSystemErrorName(err) : 'no port', host, port)
  }
  return { key, host, port: out.port, handle: h }
}

export function listenerKey (host: string, port: number): string {
  return `${host}:${port}`
}
