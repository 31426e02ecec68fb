// The benchmark's backend: a small node http server on 127.0.0.1 (port from
// the OS) that answers every request with a short body, keep-alive. Prints
// {"port":N,"pid":P} once listening.
import http from 'node:http'

const body = Buffer.from(process.env.BODY ?? 'hello from the bench backend\n')
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) }

const server = http.createServer((req, res) => {
  req.resume()
  res.writeHead(200, headers)
  res.end(body)
})
// Longer than any proxy's idle upstream timeout, so a proxy never writes into
// a socket the backend is closing.
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n')
})
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
