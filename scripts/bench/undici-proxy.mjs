// Baseline: the least a correct undici proxy does. A node http server in
// front, a keep-alive undici Pool per backend in TARGET_PORTS (comma list,
// round-robin), and Pool.stream piping the answer straight into the
// ServerResponse; hop-by-hop headers dropped both ways. Prints
// {"port":N,"pid":P} once listening.
import http from 'node:http'
import { Pool } from 'undici'

const pools = process.env.TARGET_PORTS.split(',').map(port => new Pool(`http://127.0.0.1:${port}`, {
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 60_000,
  pipelining: 1
}))

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'])

function strip (headers) {
  const out = {}
  for (const k in headers) if (!HOP.has(k)) out[k] = headers[k]
  return out
}

const factory = ({ statusCode, headers, opaque: res }) => {
  res.writeHead(statusCode, strip(headers))
  return res
}

let next = 0
const server = http.createServer((req, res) => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? null : req
  pools[next++ % pools.length].stream({ path: req.url, method: req.method, headers: strip(req.headers), body, opaque: res }, factory, err => {
    if (err === null || err === undefined) return
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' })
      res.end(`bad gateway: ${err.message}\n`)
    } else {
      res.destroy()
    }
  })
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n')
})
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); for (const p of pools) void p.destroy() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
