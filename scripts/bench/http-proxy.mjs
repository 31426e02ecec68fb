// Baseline: plain node `http-proxy` with a keep-alive agent to the backend
// (127.0.0.1:TARGET_PORT). Prints {"port":N,"pid":P} once listening.
import http from 'node:http'
import httpProxy from 'http-proxy'

const target = `http://127.0.0.1:${process.env.TARGET_PORT}`
const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 256 })
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true })
proxy.on('error', (err, req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`bad gateway: ${err.message}\n`)
  } else {
    res.destroy()
  }
})

const server = http.createServer((req, res) => proxy.web(req, res))
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n')
})
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections(); agent.destroy() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
