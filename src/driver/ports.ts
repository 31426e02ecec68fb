import { createServer } from 'node:net'
import { DriverError } from './types.js'

/**
 * Hands out ports from a pool's range that no instance of ours holds and that
 * nothing else is bound to right now (checked by binding it for a moment).
 */
export class PortAllocator {
  private readonly taken = new Set<number>()
  private next: number

  constructor (private from: number, private to: number) {
    this.next = from
  }

  setRange (from: number, to: number): void {
    this.from = from
    this.to = to
    if (this.next < from || this.next > to) this.next = from
  }

  async allocate (): Promise<number> {
    const span = this.to - this.from + 1
    for (let i = 0; i < span; i++) {
      const port = this.next
      this.next = port >= this.to ? this.from : port + 1
      if (this.taken.has(port)) continue
      // Reserve before the await so a concurrent allocate cannot take it too.
      this.taken.add(port)
      if (await isFree(port)) return port
      this.taken.delete(port)
    }
    throw new DriverError('BATON_ERR_NO_FREE_PORT', `no free port left in ${this.from}-${this.to}`)
  }

  /** A port an adopted instance holds already: never handed out while it does. */
  reserve (port: number): void {
    this.taken.add(port)
  }

  release (port: number): void {
    this.taken.delete(port)
  }
}

/** True when 127.0.0.1:port can be bound right now (nothing listens on it there or on a wildcard address). */
export async function isFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)))
  })
}
