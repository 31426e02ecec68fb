#!/usr/bin/env node
// npm run bench -- [--rounds N] [--duration S] [--connections C] [--quick] [--json FILE]
//
// Compares baton with the same small backend reached directly, through plain
// node http-proxy, through a minimal undici proxy and through nginx
// (upstream keep-alive; when /usr/sbin/nginx exists), baton and nginx each
// with 1 and with 2 proxy workers (unpinned). Every target runs in its own
// process(es) and is started once. Each round runs every target once,
// in an order rotated per round: ~2 s warm-up, then the measured load. The
// report gives each run, then the median per target across rounds and the
// ratios that baton's goals are stated in, as Markdown.
//
// Load: wrk --latency when installed, else autocannon (--load to choose).
// CPU per request: utime+stime of the proxy's processes (/proc/PID/stat)
// after minus before the measured load, over the requests wrk counted.
// RSS: the largest VmRSS seen while the load ran (sampled every 250 ms), and
// VmHWM at its end.
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  BACKEND_BODY, CLK_TCK, NGINX, ROOT, cpuTimes, installCleanup, loadTool, median, memoryKb, nginxVersion, runLoad, wrkVersion,
  sleep, startBackend, tempDir, startBaton, startHttpProxy, startNginx, startUndiciProxy, stopAll, waitHealthy
} from './bench/lib.mjs'

const USAGE = `usage: node scripts/bench.mjs [options]
  --rounds N        interleaved rounds (default 3)
  --duration S      measured seconds per target and round (default 8)
  --warmup S        warm-up seconds before each measurement (default 2)
  --connections C   concurrent client connections (default 50)
  --threads T       wrk threads (default 1; the machine has few cores)
  --quick           smoke check: 1 round of 3 s, 1 s warm-up
  --json FILE       also write the results as JSON to FILE
  --load TOOL       wrk | autocannon (default: wrk when installed)
  --targets LIST    comma list among direct,baton,baton2,http-proxy,undici,nginx,nginx2 (default: all)
                    (baton2, nginx2: 2 proxy workers each; unpinned, the kernel places them)
  --baton-flags F   node flags for baton (default "--max-semi-space-size=8", as its bin runs it; "" for none)
  --skip-build      do not rebuild baton (npx tsc) before measuring
  -h, --help        this text`

const ALL_TARGETS = ['direct', 'baton', 'baton2', 'http-proxy', 'undici', 'nginx', 'nginx2']
const LABELS = {
  direct: 'direct (no proxy)',
  baton: 'baton (1 worker)',
  baton2: 'baton (2 workers)',
  'http-proxy': 'node http-proxy (keep-alive agent)',
  undici: 'minimal undici Pool.stream proxy',
  nginx: 'nginx (1 worker, upstream keepalive)',
  nginx2: 'nginx (2 workers, upstream keepalive)'
}

function options () {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      load: { type: 'string' },
      targets: { type: 'string' },
      'baton-flags': { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    },
    allowPositionals: false
  })
  if (values.help) { process.stdout.write(USAGE + '\n'); process.exit(0) }
  const num = (name, dflt, min) => {
    if (values[name] === undefined) return dflt
    const n = Number(values[name])
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`)
    return n
  }
  const quick = values.quick
  const targets = values.targets === undefined ? ALL_TARGETS : values.targets.split(',').map(s => s.trim()).filter(Boolean)
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}; choose among ${ALL_TARGETS.join(', ')}`)
  if (values.load !== undefined && !['wrk', 'autocannon'].includes(values.load)) throw new Error('--load must be wrk or autocannon')
  return {
    rounds: Math.round(num('rounds', quick ? 1 : 3, 1)),
    duration: num('duration', quick ? 3 : 8, 1),
    warmup: num('warmup', quick ? 1 : 2, 0),
    connections: Math.round(num('connections', 50, 1)),
    threads: Math.round(num('threads', 1, 1)),
    json: values.json,
    load: loadTool(values.load),
    targets,
    build: !values['skip-build'],
    // By default baton runs with the node flags its bin, npm start and the Docker image use.
    batonFlags: (values['baton-flags'] ?? '--max-semi-space-size=8').split(/\s+/).filter(Boolean),
    quick
  }
}

// ---------------------------------------------------------------------------
// Formatting.

const f0 = n => n === undefined ? '-' : Math.round(n).toLocaleString('en-US')
const f2 = n => n === undefined ? '-' : n.toFixed(2)
const f1 = n => n === undefined ? '-' : n.toFixed(1)
const mb = kb => kb === undefined ? '-' : (kb / 1024).toFixed(1)
const ratio = (a, b) => a === undefined || b === undefined || b === 0 ? undefined : a / b
const fx = r => r === undefined ? '-' : `${r.toFixed(2)}×`

function table (header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => i === 0 ? '---' : '---:').join('|')}|`]
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`)
  return lines.join('\n')
}

const RUN_HEADER = ['target', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'of which sys', 'proxy RSS MB (peak VmRSS / VmHWM)', 'backend CPU µs/req', 'errors']

function runRow (label, r) {
  return [
    label,
    f0(r.rps),
    f2(r.p50),
    f2(r.p99),
    f1(r.cpuPerReq),
    f1(r.sysPerReq),
    r.rssKb === undefined ? '-' : `${mb(r.rssKb)} / ${mb(r.hwmKb)}`,
    f1(r.backendCpuPerReq),
    f0(r.errors)
  ]
}

// ---------------------------------------------------------------------------
// One measured run of one target.

async function measure (target, backend, opts) {
  const tool = opts.load
  if (opts.warmup > 0) await runLoad(tool, { url: target.url, seconds: opts.warmup, connections: opts.connections, threads: opts.threads })
  const proxyPids = target.name === 'direct' ? [] : target.pids()
  const backendPids = backend.pids()
  let peakRss = 0
  const sampler = setInterval(() => {
    if (proxyPids.length > 0) peakRss = Math.max(peakRss, memoryKb(proxyPids).rss)
  }, 250)
  const cpu0 = cpuTimes(proxyPids)
  const bcpu0 = cpuTimes(backendPids)
  let load
  let spread
  // Halfway through, how the kernel spread the load's connections over baton's workers.
  const spreadTimer = target.spread === undefined ? undefined : setTimeout(() => { void target.spread().then(s => { spread = s }, () => undefined) }, opts.duration * 500)
  try {
    load = await runLoad(tool, { url: target.url, seconds: opts.duration, connections: opts.connections, threads: opts.threads })
  } finally {
    clearInterval(sampler)
    clearTimeout(spreadTimer)
  }
  const cpu1 = cpuTimes(proxyPids)
  const bcpu1 = cpuTimes(backendPids)
  const cpu = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys
  const sys = cpu1.sys - cpu0.sys
  const bcpu = bcpu1.user + bcpu1.sys - bcpu0.user - bcpu0.sys
  const mem = proxyPids.length > 0 ? memoryKb(proxyPids) : undefined
  const proxied = proxyPids.length > 0
  return {
    target: target.name,
    rps: load.rps,
    requests: load.requests,
    seconds: load.seconds,
    p50: load.p50,
    p99: load.p99,
    errors: load.errors,
    non2xx: load.non2xx,
    socketErrors: load.socketErrors,
    cpuMicros: proxied ? cpu : undefined,
    cpuPerReq: proxied && load.requests > 0 ? cpu / load.requests : undefined,
    sysPerReq: proxied && load.requests > 0 ? sys / load.requests : undefined,
    rssKb: mem === undefined ? undefined : Math.max(peakRss, mem.rss),
    hwmKb: mem?.hwm,
    backendCpuPerReq: load.requests > 0 ? bcpu / load.requests : undefined,
    spread
  }
}

// ---------------------------------------------------------------------------

function build () {
  process.stdout.write('building baton (tsc -p tsconfig.json)...\n')
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' })
}

async function main () {
  installCleanup('bench')
  const opts = options()
  if (opts.build) build()
  const hasNginx = existsSync(NGINX)
  const wanted = opts.targets.filter(t => !t.startsWith('nginx') || hasNginx)
  if (opts.targets.some(t => t.startsWith('nginx')) && !hasNginx) process.stdout.write(`note: ${NGINX} not found; nginx is left out\n`)

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '',
    clockTicks: CLK_TCK,
    load: opts.load === 'wrk' ? `${wrkVersion()} -t${opts.threads} -c${opts.connections} --latency` : `autocannon -c ${opts.connections}`,
    nginx: wanted.some(t => t.startsWith('nginx')) ? nginxVersion() : undefined,
    rounds: opts.rounds,
    duration: opts.duration,
    warmup: opts.warmup,
    connections: opts.connections,
    targets: wanted,
    batonFlags: opts.batonFlags
  }
  process.stdout.write(`baton bench: ${wanted.join(', ')}; ${opts.rounds} round(s) of ${opts.duration} s (+${opts.warmup} s warm-up) each, ` +
    `${opts.connections} connections, load from ${meta.load}; node ${meta.node}, ${meta.cpus} CPU(s), CLK_TCK ${CLK_TCK}\n`)

  const dir = tempDir('baton-bench-')
  const targets = new Map()
  try {
    const backend = await startBackend()
    await waitHealthy('backend', backend.url, BACKEND_BODY)
    const starters = {
      direct: async () => ({ name: 'direct', url: backend.url, pids: () => [], stop: async () => undefined }),
      baton: async () => await startBaton(backend.port, dir, opts.batonFlags, 1),
      baton2: async () => await startBaton(backend.port, dir, opts.batonFlags, 2),
      'http-proxy': async () => await startHttpProxy(backend.port),
      undici: async () => await startUndiciProxy(backend.port),
      nginx: async () => await startNginx(backend.port, 1),
      nginx2: async () => await startNginx(backend.port, 2)
    }
    for (const name of wanted) {
      const t = await starters[name]()
      await waitHealthy(name, t.url, BACKEND_BODY)
      targets.set(name, t)
    }

    const runs = []
    for (let round = 0; round < opts.rounds; round++) {
      const order = wanted.map((_, i) => wanted[(i + round) % wanted.length])
      process.stdout.write(`\n### Round ${round + 1} of ${opts.rounds} (order: ${order.join(', ')})\n\n`)
      process.stdout.write(`| ${RUN_HEADER.join(' | ')} |\n|${RUN_HEADER.map((_, i) => i === 0 ? '---' : '---:').join('|')}|\n`)
      for (const name of order) {
        const r = await measure(targets.get(name), backend, opts)
        r.round = round + 1
        runs.push(r)
        process.stdout.write(`| ${runRow(LABELS[name], r).join(' | ')} |\n`)
        if (r.spread !== undefined && r.spread.length > 1) process.stdout.write(`  (${name}: the ${opts.connections} connections per worker: ${r.spread.join(' / ')})\n`)
        if (r.errors > 0) process.stdout.write(`  (warning: ${name} had ${r.errors} errors: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors)\n`)
        await sleep(300)
      }
    }

    // Medians per target across rounds.
    const med = {}
    for (const name of wanted) {
      const rs = runs.filter(r => r.target === name)
      const m = k => median(rs.map(r => r[k]))
      med[name] = {
        rps: m('rps'),
        p50: m('p50'),
        p99: m('p99'),
        cpuPerReq: m('cpuPerReq'),
        sysPerReq: m('sysPerReq'),
        rssKb: m('rssKb'),
        hwmKb: m('hwmKb'),
        backendCpuPerReq: m('backendCpuPerReq'),
        errors: rs.reduce((a, r) => a + r.errors, 0)
      }
    }

    const b = med.baton
    const rat = {}
    if (b !== undefined && med['http-proxy'] !== undefined) {
      const h = med['http-proxy']
      rat.httpProxy = { throughput: ratio(b.rps, h.rps), cpuPerReq: ratio(b.cpuPerReq, h.cpuPerReq), p99: ratio(b.p99, h.p99) }
    }
    if (b !== undefined && med.nginx !== undefined) {
      const n = med.nginx
      rat.nginx = { throughput: ratio(b.rps, n.rps), cpuPerReq: ratio(b.cpuPerReq, n.cpuPerReq), p99: ratio(b.p99, n.p99) }
    }
    const b2 = med.baton2
    if (b2 !== undefined && med.nginx2 !== undefined) {
      const n = med.nginx2
      rat.nginx2 = { throughput: ratio(b2.rps, n.rps), cpuPerReq: ratio(b2.cpuPerReq, n.cpuPerReq), p99: ratio(b2.p99, n.p99) }
    }
    if (b !== undefined && med.undici !== undefined) {
      const u = med.undici
      rat.undici = { throughput: ratio(b.rps, u.rps), cpuPerReq: ratio(b.cpuPerReq, u.cpuPerReq), p99: ratio(b.p99, u.p99) }
    }

    const md = []
    md.push(`Medians of ${opts.rounds} interleaved round(s), ${opts.duration} s each after ${opts.warmup} s warm-up; ` +
      `${opts.connections} keep-alive connections from ${meta.load}; ${opts.batonFlags.length > 0 ? `baton run with \`node ${opts.batonFlags.join(' ')}\`; ` : ''}node ${meta.node} on ${meta.cpus} CPU(s) (${meta.cpuModel.trim()})` +
      `${meta.nginx !== undefined ? `; ${meta.nginx}` : ''}. Every target proxies to the same node backend (short body, keep-alive). ` +
      'CPU is utime+stime of the proxy\'s processes (baton: supervisor, controller and workers; nginx: master and workers) per request, "of which sys" its stime part; RSS is the peak VmRSS sampled under load / VmHWM.')
    md.push('')
    md.push(table(RUN_HEADER, wanted.map(name => runRow(LABELS[name], med[name]))))
    const ratioRows = []
    if (rat.httpProxy !== undefined) ratioRows.push(['baton vs node http-proxy', fx(rat.httpProxy.throughput), fx(rat.httpProxy.cpuPerReq), fx(rat.httpProxy.p99)])
    if (rat.undici !== undefined) ratioRows.push(['baton vs minimal undici proxy', fx(rat.undici.throughput), fx(rat.undici.cpuPerReq), fx(rat.undici.p99)])
    if (rat.nginx !== undefined) ratioRows.push(['baton vs nginx (1 worker each)', fx(rat.nginx.throughput), fx(rat.nginx.cpuPerReq), fx(rat.nginx.p99)])
    if (rat.nginx2 !== undefined) ratioRows.push(['baton vs nginx (2 workers each)', fx(rat.nginx2.throughput), fx(rat.nginx2.cpuPerReq), fx(rat.nginx2.p99)])
    if (ratioRows.length > 0) {
      md.push('')
      md.push(table(['ratio (baton ÷ other)', 'throughput', 'CPU/request', 'p99'], ratioRows))
    }
    const goals = []
    if (b !== undefined) {
      const check = (ok, want, got) => [want, got, ok === undefined ? '-' : ok ? 'yes' : 'no']
      goals.push(check(b.cpuPerReq === undefined ? undefined : b.cpuPerReq <= 50, 'CPU ≤ 50 µs/request', `${f1(b.cpuPerReq)} µs`))
      if (rat.httpProxy !== undefined) goals.push(check(rat.httpProxy.throughput === undefined ? undefined : rat.httpProxy.throughput >= 2, 'throughput ≥ 2× http-proxy', fx(rat.httpProxy.throughput)))
      if (rat.nginx !== undefined) goals.push(check(rat.nginx.p99 === undefined ? undefined : rat.nginx.p99 <= 1.5, 'p99 ≤ 1.5× nginx', fx(rat.nginx.p99)))
      goals.push(check(b.hwmKb === undefined ? undefined : b.hwmKb <= 100 * 1024, 'RSS ≤ 100 MB (VmHWM)', `${mb(b.hwmKb)} MB`))
      goals.push(check(b.errors === 0, 'no failed request', String(b.errors)))
      md.push('')
      md.push(table(['baton goal', 'measured', 'met'], goals))
    }
    const markdown = md.join('\n')
    process.stdout.write(`\n## Results\n\n${markdown}\n`)

    if (opts.json !== undefined) {
      writeFileSync(opts.json, JSON.stringify({ meta, runs, medians: med, ratios: rat, markdown }, null, 2) + '\n')
      process.stdout.write(`\nJSON written to ${opts.json}\n`)
    }
  } finally {
    for (const t of [...targets.values()].reverse()) await t.stop()
    await stopAll()
  }
}

main().then(() => process.exit(0), err => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`)
  stopAll().finally(() => process.exit(1))
})
