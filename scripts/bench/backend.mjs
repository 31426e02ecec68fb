// The benchmark's backend: a small node http server on 127.0.0.1 (port from
// the OS) that answers with a fixed body, keep-alive. Prints
// {"port":N,"pid":P} once listening.
//   GET /            100 bytes
//   GET /64k         65,536 bytes
//   GET /__bench/connections   how many connections have been opened to it
//                    (those that only asked this are not counted)
import http from 'node:http'

const BODIES = new Map([['/', Buffer.alloc(100, 'a')], ['/64k', Buffer.alloc(65_536, 'b')]])
const HEADERS = new Map([...BODIES].map(([path, body]) => [path, { 'content-type': 'text/plain', 'content-length': String(body.length) }]))
const SEEN = Symbol('seen')

let connections = 0
const server = http.createServer((req, res) => {
  if (req.url === '/__bench/connections') {
    if (req.socket[SEEN] !== true) connections--
    res.end(String(connections))
    return
  }
  req.socket[SEEN] = true
  req.resume()
  const body = BODIES.get(req.url) ?? BODIES.get('/')
  res.writeHead(200, HEADERS.get(req.url) ?? HEADERS.get('/'))
  res.end(body)
})
server.on('connection', () => { connections++ })
// Longer than any proxy's idle upstream timeout, so a proxy never writes into
// a socket the backend is closing (and says so: Keep-Alive: timeout=65).
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, pid: process.pid }) + '\n')
})
const stop = () => { server.close(() => process.exit(0)); server.closeAllConnections() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
