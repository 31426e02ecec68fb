#!/usr/bin/env node
// The demo app that config/baton.yaml runs three of. It behaves like a real
// app behind baton: it takes about a second to get ready, answers on /, has a
// slow endpoint and a WebSocket echo, and shuts down gracefully on SIGTERM.
//   PORT          port to listen on (baton passes {port})
//   APP_VERSION   shown in every answer and in the x-app-version header
//   READY_DELAY   ms before /ready answers 200 (default 1000)
//   GET /fail answers 500 (to see app errors in the report)
//   CRASH_AFTER   ms after start to exit(1) (to try a failing version)
//   CRASH_AFTER_READY  ms after /ready first answered 200 to exit(1) (a version
//                 that fails while soaking in minReady, however slow its start)
//   NEVER_READY=1 /ready never answers 200 (to try a rollback)
//   EXIT_ON_TERM=now  exit at once on SIGTERM (an app that does nothing special)
//   IGNORE_TERM=1     ignore SIGTERM altogether (baton must SIGKILL at stopTimeout)
//   READY_HANGS=1     /ready never answers at all (a hung probe endpoint)
//   KEEP_SOCKETS=1    on SIGTERM, never close idle keep-alive connections
//   ERROR_RATE=0.2    answer 500 to that share of requests (evenly: every 5th here), /ready excepted
//   ADDED_LATENCY=40  answer every request that many ms later, /ready excepted (a slower version)
import http from 'node:http'
import { WebSocketServer } from 'ws'

const port = Number(process.env.PORT ?? 3000)
const version = process.env.APP_VERSION ?? 'dev'
const readyDelay = Number(process.env.READY_DELAY ?? 1000)
const startedAt = Date.now()
let ready = false
let crashScheduled = false
if (process.env.NEVER_READY !== '1') {
  setTimeout(() => {
    ready = true
    // Under pm2 (wait_ready) or any IPC parent, say so too.
    if (typeof process.send === 'function') process.send('ready')
  }, readyDelay)
}
if (process.env.CRASH_AFTER !== undefined) setTimeout(() => process.exit(1), Number(process.env.CRASH_AFTER))

const errorRate = Number(process.env.ERROR_RATE ?? 0)
const addedLatency = Number(process.env.ADDED_LATENCY ?? 0)
let answered = 0

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  res.setHeader('x-app-version', version)
  if (url.pathname !== '/ready' && addedLatency > 0) {
    const timer = setTimeout(() => handle(req, res, url), addedLatency)
    res.on('close', () => clearTimeout(timer))
    return
  }
  handle(req, res, url)
})

function handle (req, res, url) {
  if (url.pathname !== '/ready' && errorRate > 0) {
    // Evenly spread: the n-th request fails when n × rate crosses a whole number.
    answered++
    if (Math.floor(answered * errorRate) > Math.floor((answered - 1) * errorRate)) {
      req.resume()
      res.writeHead(500, { 'content-type': 'text/plain' }).end('failing on purpose (ERROR_RATE)\n')
      return
    }
  }
  if (url.pathname === '/ready') {
    if (process.env.READY_HANGS === '1') return
    res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'starting\n')
    if (ready && process.env.CRASH_AFTER_READY !== undefined && !crashScheduled) {
      crashScheduled = true
      setTimeout(() => process.exit(1), Number(process.env.CRASH_AFTER_READY))
    }
    return
  }
  if (url.pathname === '/fail') {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('failing on purpose\n')
    return
  }
  if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 2000), 60_000)
    const timer = setTimeout(() => res.end(`slow answer after ${ms} ms from ${version}\n`), ms)
    res.on('close', () => clearTimeout(timer))
    return
  }
  let size = 0
  req.on('data', chunk => { size += chunk.length })
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ app: 'baton-demo', version, pid: process.pid, port, path: url.pathname, method: req.method, size, uptimeMs: Date.now() - startedAt }) + '\n')
  })
}

const wss = new WebSocketServer({ server })
wss.on('connection', ws => {
  ws.send(`hello from ${version}`)
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
})

server.listen(port, '127.0.0.1')

// Graceful stop: stop accepting, let in-flight requests finish, close idle
// keep-alive sockets, then exit. WebSockets are closed with 1001 (going away).
process.on('SIGTERM', () => {
  if (process.env.IGNORE_TERM === '1') return
  if (process.env.EXIT_ON_TERM === 'now') process.exit(0)
  server.close(() => process.exit(0))
  for (const ws of wss.clients) ws.close(1001, 'server going away')
  if (process.env.KEEP_SOCKETS === '1') return
  server.closeIdleConnections()
  setInterval(() => server.closeIdleConnections(), 100).unref()
})
