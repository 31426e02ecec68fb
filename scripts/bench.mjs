#!/usr/bin/env node
// npm run bench -- [--pin] [--rounds N] [--sizes 100,65536] [--quick] [--json FILE] ...
//
// Compares baton with the same node backends reached directly, through
// baton with its access log on, plain node http-proxy, a minimal undici
// proxy, nginx (1 worker, upstream keep-alive) and HAProxy (1 thread), each
// in its own process(es), started once; baton2 and nginx2 are baton and nginx
// with 2 proxy workers each (run them unpinned: the kernel places them).
// baton-tls, nginx-tls, baton-h2 and nginx-h2 are baton and nginx behind a
// TLS listener with the same certificate (made now by openssl, self-signed),
// loaded over HTTP/1.1 by wrk and over HTTP/2 by h2load (nghttp2-client; its
// rows are left out, with a note, when it is missing). Each round runs every target once per
// body size (100 B and 64 KiB), in an order rotated per round: a warm-up,
// then the measured load. The report gives each run, then per size the
// median per target across rounds, the ratios baton's aims are stated in,
// and the aims, as Markdown.
//
// --pin (2 or more CPUs): proxies and backends on CPU 0, the load generator
// on CPU 1 (taskset), so each proxy has one core and throughput compares
// like for like. CPU per request: utime+stime of the proxy's processes
// (baton: supervisor, controller and workers; nginx: master and workers;
// /proc/PID/stat) over the measured load, over the requests wrk counted.
// RSS: the largest VmRSS sampled under load (every 250 ms). Upstream
// connections: how many the backends accepted during the measured load,
// per 1,000 requests (churn; a proxy that keeps its connections opens none).
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import {
  BODY_100, CLK_TCK, ROOT, SIZE_PATHS, backendConnections, cpuTimes, installCleanup, loadTool, median,
  memoryKb, runLoad, setPinning, sleep, startBackend, startBaton, startHttpProxy, startUndiciProxy,
  stopAll, tempDir, waitHealthy, wrkVersion
} from './bench/lib.mjs'
import { HAPROXY, NGINX, haproxyVersion, nginxVersion, startHaproxy, startNginx } from './bench/nginx-haproxy.mjs'
import { H2LOAD, h2loadVersion, makeCertificate, runH2load } from './bench/tls.mjs'
import { report } from './bench/report.mjs'
import { readOptions } from './lib/options.mjs'

const USAGE = `usage: node scripts/bench.mjs [options]
  --pin             proxies and backends on CPU 0, load on CPU 1 (needs 2+ CPUs and taskset)
  --rounds N        interleaved rounds (default 3)
  --duration S      measured seconds per target, size and round (default 8)
  --warmup S        warm-up seconds before each measurement (default 2)
  --connections C   concurrent client connections (default 50)
  --threads T       wrk and h2load threads (default 1; the machine has few cores)
  --h2-streams M    requests in flight on each HTTP/2 connection (h2load -m; default 1, as wrk's one per connection)
  --sizes LIST      response body sizes in bytes among 100,65536 (default both)
  --backends N      backend processes every proxy balances over (default 2)
  --quick           smoke check: 1 round of 3 s, 1 s warm-up
  --json FILE       also write the results as JSON to FILE
  --load TOOL       wrk | autocannon (default: wrk when installed)
  --targets LIST    comma list among ${'ALL'} (default: all but baton2,nginx2,
                    the 2-worker rows, which mean something only without --pin)
  --baton-flags F   node flags for baton (default "--max-semi-space-size=8", as its bin runs it; "" for none)
  --skip-build      do not rebuild baton (npx tsc) before measuring
  -h, --help        this text`

const ALL_TARGETS = ['direct', 'baton', 'baton-log', 'baton2', 'http-proxy', 'undici', 'nginx', 'nginx2', 'haproxy', 'baton-tls', 'nginx-tls', 'baton-h2', 'nginx-h2']
/** Loaded over HTTP/2 by h2load. */
const H2_TARGETS = new Set(['baton-h2', 'nginx-h2'])
/** Not run unless asked for (--targets): 2-worker rows mean something only unpinned. */
const DEFAULT_TARGETS = ALL_TARGETS.filter(t => t !== 'baton2' && t !== 'nginx2')

function options () {
  const { values, num } = readOptions(USAGE.replace('${\'ALL\'}', ALL_TARGETS.join(',')), {
    pin: { type: 'boolean', default: false },
    duration: { type: 'string' },
    connections: { type: 'string' },
    threads: { type: 'string' },
    'h2-streams': { type: 'string' },
    sizes: { type: 'string' },
    backends: { type: 'string' },
    load: { type: 'string' },
    targets: { type: 'string' },
    'baton-flags': { type: 'string' }
  })
  const quick = values.quick
  const targets = values.targets === undefined ? DEFAULT_TARGETS : values.targets.split(',').map(s => s.trim()).filter(Boolean)
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}; choose among ${ALL_TARGETS.join(', ')}`)
  const sizes = values.sizes === undefined ? [100, 65536] : values.sizes.split(',').map(Number)
  for (const s of sizes) if (SIZE_PATHS[s] === undefined) throw new Error(`--sizes: ${s} is not one of ${Object.keys(SIZE_PATHS).join(', ')}`)
  if (values.load !== undefined && !['wrk', 'autocannon'].includes(values.load)) throw new Error('--load must be wrk or autocannon')
  if (values.pin && cpus().length < 2) throw new Error('--pin needs at least 2 CPUs')
  return {
    pin: values.pin,
    rounds: Math.round(num('rounds', quick ? 1 : 3, 1)),
    duration: num('duration', quick ? 3 : 8, 1),
    warmup: num('warmup', quick ? 1 : 2, 0),
    connections: Math.round(num('connections', 50, 1)),
    threads: Math.round(num('threads', 1, 1)),
    h2Streams: Math.round(num('h2-streams', 1, 1)),
    backends: Math.round(num('backends', 2, 1)),
    sizes,
    json: values.json,
    load: loadTool(values.load),
    targets,
    build: !values['skip-build'],
    // By default baton runs with the node flags its bin, npm start and the Docker image use.
    batonFlags: (values['baton-flags'] ?? '--max-semi-space-size=8').split(/\s+/).filter(Boolean),
    quick
  }
}

/** One measured run of one target at one body size. */
async function measure (target, size, backends, opts) {
  const url = new URL(SIZE_PATHS[size], target.url).href
  const load = { url, connections: opts.connections, threads: opts.threads, streams: opts.h2Streams, logFile: opts.h2Log }
  const runLoadOf = H2_TARGETS.has(target.name) ? runH2load : o => runLoad(opts.load, o)
  if (opts.warmup > 0) await runLoadOf({ ...load, seconds: opts.warmup })
  const proxyPids = target.name === 'direct' ? [] : target.pids()
  const backendPids = backends.flatMap(b => b.pids())
  let peakRss = 0
  const sampler = setInterval(() => {
    if (proxyPids.length > 0) peakRss = Math.max(peakRss, memoryKb(proxyPids).rss)
  }, 250)
  const conns0 = await backendConnections(backends)
  const cpu0 = cpuTimes(proxyPids)
  const bcpu0 = cpuTimes(backendPids)
  let result
  let spread
  // Halfway through, how the kernel spread the load's connections over baton's workers.
  const spreadTimer = target.spread === undefined ? undefined : setTimeout(() => { void target.spread().then(s => { spread = s }, () => undefined) }, opts.duration * 500)
  try {
    result = await runLoadOf({ ...load, seconds: opts.duration })
  } finally {
    clearInterval(sampler)
    clearTimeout(spreadTimer)
  }
  const cpu1 = cpuTimes(proxyPids)
  const bcpu1 = cpuTimes(backendPids)
  const conns = await backendConnections(backends) - conns0
  const proxied = proxyPids.length > 0
  const n = result.requests
  const mem = proxied ? memoryKb(proxyPids) : undefined
  return {
    target: target.name,
    size,
    rps: result.rps,
    requests: n,
    p50: result.p50,
    p99: result.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    socketErrors: result.socketErrors,
    cpuPerReq: proxied && n > 0 ? (cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / n : undefined,
    sysPerReq: proxied && n > 0 ? (cpu1.sys - cpu0.sys) / n : undefined,
    rssKb: mem === undefined ? undefined : Math.max(peakRss, mem.rss),
    hwmKb: mem?.hwm,
    connsPer1000: proxied && n > 0 ? conns * 1000 / n : undefined,
    backendCpuPerReq: n > 0 ? (bcpu1.user + bcpu1.sys - bcpu0.user - bcpu0.sys) / n : undefined,
    spread
  }
}

function build () {
  process.stdout.write('building baton (tsc -p tsconfig.json)...\n')
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' })
}

async function main () {
  installCleanup('bench')
  const opts = options()
  if (opts.build) build()
  if (opts.pin) setPinning({ server: '0', load: '1' })
  const noNginx = !existsSync(NGINX)
  const missing = {
    nginx: noNginx ? 'nginx is' : undefined,
    nginx2: noNginx ? 'nginx is' : undefined,
    'nginx-tls': noNginx ? 'nginx is' : undefined,
    'nginx-h2': noNginx ? 'nginx is' : H2LOAD === undefined ? 'h2load (Debian package nghttp2-client) is' : undefined,
    'baton-h2': H2LOAD === undefined ? 'h2load (Debian package nghttp2-client) is' : undefined,
    haproxy: existsSync(HAPROXY) ? undefined : 'haproxy is'
  }
  const wanted = opts.targets.filter(t => missing[t] === undefined)
  for (const t of opts.targets) if (missing[t] !== undefined) process.stdout.write(`note: ${missing[t]} not installed; ${t} is left out\n`)
  const h2 = wanted.some(t => H2_TARGETS.has(t))

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '',
    clockTicks: CLK_TCK,
    load: opts.load === 'wrk' ? `${wrkVersion()} -t${opts.threads} -c${opts.connections} --latency` : `autocannon -c ${opts.connections}`,
    h2load: h2 ? `${h2loadVersion()} -t${opts.threads} -c${opts.connections} -m${opts.h2Streams}` : undefined,
    nginx: wanted.some(t => t.startsWith('nginx')) ? nginxVersion() : undefined,
    haproxy: wanted.includes('haproxy') ? haproxyVersion() : undefined,
    pinned: opts.pin,
    rounds: opts.rounds,
    duration: opts.duration,
    warmup: opts.warmup,
    connections: opts.connections,
    backends: opts.backends,
    sizes: opts.sizes,
    targets: wanted,
    batonFlags: opts.batonFlags
  }
  process.stdout.write(`baton bench: ${wanted.join(', ')}; sizes ${opts.sizes.join(', ')} B; ${opts.rounds} round(s) of ${opts.duration} s (+${opts.warmup} s warm-up); ` +
    `${opts.connections} connections from ${meta.load}${h2 ? ` (HTTP/2: ${meta.h2load})` : ''}; ${opts.backends} backend(s); ${opts.pin ? 'pinned: servers on CPU 0, load on CPU 1; ' : ''}` +
    `node ${meta.node}, ${meta.cpus} CPU(s), CLK_TCK ${CLK_TCK}\n`)

  const dir = tempDir('baton-bench-')
  opts.h2Log = join(dir, 'h2load.log')
  const cert = wanted.some(t => t.endsWith('-tls') || H2_TARGETS.has(t)) ? makeCertificate(dir) : undefined
  const targets = new Map()
  const backends = []
  try {
    for (let i = 0; i < opts.backends; i++) backends.push(await startBackend())
    for (const b of backends) await waitHealthy('backend', b.url, BODY_100)
    const ports = backends.map(b => b.port)
    const starters = {
      direct: async () => ({ name: 'direct', url: backends[0].url, pids: () => [], stop: async () => undefined }),
      baton: async () => await startBaton(ports, dir, opts.batonFlags),
      'baton-log': async () => await startBaton(ports, dir, opts.batonFlags, { name: 'baton-log', accessLog: join(dir, 'access.log') }),
      baton2: async () => await startBaton(ports, dir, opts.batonFlags, { name: 'baton2', workers: 2 }),
      'http-proxy': async () => await startHttpProxy(ports),
      undici: async () => await startUndiciProxy(ports),
      nginx: async () => await startNginx(ports),
      nginx2: async () => await startNginx(ports, 2),
      haproxy: async () => await startHaproxy(ports),
      'baton-tls': async () => await startBaton(ports, dir, opts.batonFlags, { name: 'baton-tls', tls: cert }),
      'nginx-tls': async () => await startNginx(ports, 1, cert)
    }
    // One TLS listener serves HTTP/1.1 and HTTP/2 (ALPN): the h2 rows load the same process as the TLS rows.
    const starterOf = { 'baton-h2': 'baton-tls', 'nginx-h2': 'nginx-tls' }
    const started = new Map()
    for (const name of wanted) {
      const base = starterOf[name] ?? name
      const shared = started.get(base)
      const t = shared === undefined ? await starters[base]() : { ...shared, stop: async () => undefined }
      started.set(base, t)
      t.name = name
      await waitHealthy(name, t.url, BODY_100)
      targets.set(name, t)
    }

    const runs = []
    for (let round = 0; round < opts.rounds; round++) {
      for (const size of opts.sizes) {
        const order = wanted.map((_, i) => wanted[(i + round) % wanted.length])
        process.stdout.write(`\n### Round ${round + 1} of ${opts.rounds}, ${size} B (order: ${order.join(', ')})\n\n`)
        const lines = report.runTable()
        process.stdout.write(lines.header)
        for (const name of order) {
          const r = await measure(targets.get(name), size, backends, opts)
          r.round = round + 1
          runs.push(r)
          process.stdout.write(lines.row(r))
          if (r.spread !== undefined && r.spread.length > 1) process.stdout.write(`  (${name}: the ${opts.connections} connections per worker: ${r.spread.join(' / ')})\n`)
          if (r.errors > 0) process.stdout.write(`  (warning: ${name} had ${r.errors} errors: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors)\n`)
          await sleep(300)
        }
      }
    }

    const medians = {}
    for (const size of opts.sizes) {
      medians[size] = {}
      for (const name of wanted) {
        const rs = runs.filter(r => r.target === name && r.size === size)
        const m = k => median(rs.map(r => r[k]))
        medians[size][name] = {
          target: name,
          rps: m('rps'),
          p50: m('p50'),
          p99: m('p99'),
          cpuPerReq: m('cpuPerReq'),
          sysPerReq: m('sysPerReq'),
          rssKb: Math.max(...rs.map(r => r.rssKb ?? 0)) || undefined,
          hwmKb: m('hwmKb'),
          connsPer1000: m('connsPer1000'),
          backendCpuPerReq: m('backendCpuPerReq'),
          errors: rs.reduce((a, r) => a + r.errors, 0)
        }
      }
    }
    const markdown = report.summary(meta, medians)
    process.stdout.write(`\n## Results\n\n${markdown}\n`)
    if (opts.json !== undefined) {
      writeFileSync(opts.json, JSON.stringify({ meta, runs, medians, markdown }, null, 2) + '\n')
      process.stdout.write(`\nJSON written to ${opts.json}\n`)
    }
  } finally {
    for (const t of [...targets.values()].reverse()) await t.stop()
    for (const b of backends) await b.stop()
    await stopAll()
  }
}

main().then(() => process.exit(0), err => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`)
  stopAll().finally(() => process.exit(1))
})
