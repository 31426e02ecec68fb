// Baseline: plain node `http-proxy` with a keep-alive agent, round-robin over
// the backends in TARGET_PORTS (comma list). Prints {"port":N,"pid":P} once listening.
import http from 'node:http'
import httpProxy from 'http-proxy'

const targets = process.env.TARGET_PORTS.split(',').map(p => `http://127.0.0.1:${p}`)
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 256 })
const proxy = httpProxy.createProxyServer({ agent, xfwd: true })
proxy.on('error', (err, req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`bad gateway: ${err.message}\n`)
  } else {
    res.destroy()
  }
})

let next = 0
const server = http.createServer((req, res) => proxy.web(req, res, { target: targets[next++ % targets.length] }))
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n')
})
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); agent.destroy() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
