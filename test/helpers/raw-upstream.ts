import { createServer, type Server, type Socket } from 'node:net'

/** One connection baton opened to the raw upstream. */
export interface RawConnection {
  id: number
  socket: Socket
  /** Resolves when the connection closes (baton closed it, or the script did). */
  closed: Promise<void>
  /** Requests read on it so far. */
  requests: number
}

/** One request the raw upstream read. */
export interface RawRequest {
  method: string
  path: string
  headers: string
  body: string
  conn: RawConnection
}

/** Answers one request by writing whatever bytes it likes on the socket (or closing it). */
export type Script = (req: RawRequest, socket: Socket) => void

export interface RawUpstream {
  port: number
  address: string
  connections: RawConnection[]
  requests: RawRequest[]
  /** Scripts by path; a path without one gets a plain keep-alive 200 `ok`. */
  scripts: Map<string, Script>
  close: () => Promise<void>
}

export const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

/**
 * An upstream on a raw TCP server in the test process, so a test can send
 * any bytes at all, and see every connection baton opens and closes.
 * Requests are read as heads plus a Content-Length body.
 */
export async function rawUpstream (): Promise<RawUpstream> {
  const connections: RawConnection[] = []
  const requests: RawRequest[] = []
  const scripts = new Map<string, Script>()
  const server: Server = createServer(socket => {
    let closedResolve!: () => void
    const conn: RawConnection = { id: connections.length + 1, socket, closed: new Promise<void>(resolve => { closedResolve = resolve }), requests: 0 }
    connections.push(conn)
    socket.on('close', () => closedResolve())
    socket.on('error', () => undefined)
    let buffered = ''
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buffered.slice(0, end)
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        const [method, path] = head.slice(0, head.indexOf('\r\n')).split(' ')
        const req: RawRequest = { method, path, headers: head, body: buffered.slice(end + 4, end + 4 + length), conn }
        buffered = buffered.slice(end + 4 + length)
        conn.requests++
        requests.push(req)
        const script = scripts.get(path)
        if (script === undefined) socket.write(OK)
        else script(req, socket)
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    address: `127.0.0.1:${port}`,
    connections,
    requests,
    scripts,
    close: async () => {
      for (const c of connections) c.socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** Resolves when `p` does, or rejects after `ms` saying what did not happen. */
export async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
