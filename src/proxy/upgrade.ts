import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import httpProxy from 'http-proxy'
import { log } from '../log.js'
import type { Metrics } from '../metrics/registry.js'
import type { Pool } from '../pool/pool.js'

/**
 * Upgrade (WebSocket) tunnelling through http-proxy. The tunnel counts as in
 * flight on its upstream until either side closes, and its client socket is
 * registered with the upstream so a drain can close it at drainTimeout (G7).
 */
export class UpgradeTunnel {
  private readonly proxy = httpProxy.createProxyServer({ xfwd: true, ws: true })

  constructor (private readonly metrics: Metrics) {
    // Errors are answered per call (see `forward`); this stops http-proxy from
    // throwing on an unhandled 'error' event.
    this.proxy.on('error', () => undefined)
    // Once upgraded, the two sockets live and die together: http-proxy pipes
    // them but does not end the upstream side when the client one is destroyed.
    this.proxy.on('proxyReqWs', (proxyReq, _req, socket) => {
      proxyReq.on('upgrade', (_res, proxySocket) => {
        upgraded.add(socket)
        socket.once('close', () => proxySocket.destroy())
        proxySocket.once('close', () => socket.destroy())
      })
    })
  }

  forward (pool: Pool, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!/^websocket$/i.test(req.headers.upgrade ?? '') || req.method !== 'GET') {
      refuse(socket, 400, 'only WebSocket upgrades are proxied')
      return
    }
    const upstream = pool.pick()
    if (upstream === undefined) {
      refuse(socket, 503, 'no instance available')
      return
    }
    upstream.inflight++
    upstream.upgrades.add(socket)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      upstream.upgrades.delete(socket)
      upstream.release()
    }
    socket.once('close', release)
    const started = performance.now()
    this.proxy.ws(req, socket, head, { target: upstream.origin }, (err: Error) => {
      this.metrics.upstreamErrors.labels(pool.name, 'upgrade').inc()
      log('debug', 'upgrade failed', { pool: pool.name, upstream: upstream.address, error: err.message })
      if (upgraded.has(socket)) socket.destroy()
      else refuse(socket, 502, 'the upstream failed')
      upstream.observe(502, (performance.now() - started) / 1000)
      release()
    })
    upstream.requests++
  }
}

const upgraded = new WeakSet<Duplex>()

/** Answers on a raw socket that has not been upgraded yet. */
export function refuse (socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return
  const reason = status === 400 ? 'Bad Request' : status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : 'Service Unavailable'
  const body = `baton: ${message}\n`
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}
