#!/usr/bin/env node
// CPU profile of baton under load, and where its time goes.
//
//   node scripts/bench/profile.mjs [--size 100|65536] [--duration S] [--connections C] [--dir DIR] [--top N] [--json FILE]
//   node scripts/bench/profile.mjs --analyze FILE.cpuprofile [--top N]
//
// Starts the bench backend and `node --cpu-prof --cpu-prof-dir=DIR
// dist/cli/main.js start -c ...` in front of it, warms up, loads it with wrk
// (else autocannon), stops it with SIGTERM so that node writes the profile,
// then prints the self time by group (node http server, node net/streams,
// undici, baton, GC, ...) and the top self-time functions, as Markdown. Only
// the samples taken while the measured load ran are counted (V8's profile
// clock and process.hrtime are both CLOCK_MONOTONIC on Linux); idle is left out
// of the percentages.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  BODY_100, ROOT, SIZE_PATHS, cpuMicros, installCleanup, loadTool, memoryKb, runLoad, sleep, startBackend, startBaton, stopAll, tempDir, waitHealthy
} from './lib.mjs'

const GROUPS = {
  gc: 'GC',
  program: 'V8 / native, not attributed (program)',
  httpServer: 'node http server (parse/write)',
  net: 'node net / streams / syscalls',
  tick: 'node events / timers / microtasks',
  nodeOther: 'node, other',
  undici: 'undici client',
  client: "baton's upstream client (src/upstream/http1)",
  baton: "baton's own code, besides",
  metrics: 'prom-client metrics',
  deps: 'other dependencies',
  other: 'other'
}

function groupOfUrl (url) {
  if (url.startsWith('wasm://') || url.includes('/node_modules/undici/')) return 'undici'
  if (url.includes('/node_modules/prom-client/') || url.includes('/node_modules/tdigest/') || url.includes('/node_modules/bintrees/')) return 'metrics'
  if (url.includes('/node_modules/')) return 'deps'
  if (url.includes('/upstream/http1/')) return 'client'
  if (url.includes('/dist/') || url.includes('/src/')) return 'baton'
  if (!url.startsWith('node:')) return 'other'
  const m = url.slice(5)
  if (/^_http_(server|common|incoming|outgoing)$|^http$|^internal\/http$/.test(m)) return 'httpServer'
  if (/^net$|^stream$|^internal\/(stream_base_commons|net|streams\/|dns)/.test(m)) return 'net'
  if (/^events$|^timers$|^internal\/(timers|process\/task_queues|async_hooks|process\/promises)/.test(m)) return 'tick'
  return 'nodeOther'
}

/** Self time per function and per group, from a .cpuprofile, within [fromUs, toUs] when given. */
export function analyze (profile, window) {
  const byId = new Map()
  for (const n of profile.nodes) byId.set(n.id, n)
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // A native frame (no url) is grouped with the nearest JS caller.
  const groupOf = new Map()
  const nodeGroup = id => {
    if (groupOf.has(id)) return groupOf.get(id)
    const n = byId.get(id)
    const name = n.callFrame.functionName
    let g
    if (name === '(garbage collector)') g = 'gc'
    else if (name === '(program)') g = 'program'
    else if (name === '(idle)') g = 'idle'
    else if (name === '(root)') g = 'other'
    else if (n.callFrame.url !== '') g = groupOfUrl(n.callFrame.url)
    else g = parent.has(id) ? nodeGroup(parent.get(id)) : 'other'
    groupOf.set(id, g)
    return g
  }

  const samples = profile.samples
  const deltas = profile.timeDeltas
  const stamps = new Array(samples.length)
  let t = profile.startTime
  for (let i = 0; i < samples.length; i++) { t += deltas[i]; stamps[i] = t }
  let from = profile.startTime
  let to = profile.endTime
  let windowed = false
  if (window !== undefined && window.toUs > profile.startTime && window.fromUs < profile.endTime) {
    from = Math.max(from, window.fromUs)
    to = Math.min(to, window.toUs)
    windowed = true
  }
  const self = new Map()
  for (let i = 0; i < samples.length; i++) {
    if (stamps[i] < from || stamps[i] > to) continue
    const dur = i + 1 < samples.length ? stamps[i + 1] - stamps[i] : 0
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dur)
  }

  // Inclusive time (self + callees) per function, each function counted once
  // per stack even when it recurses.
  const keyOf = id => {
    const cf = byId.get(id).callFrame
    const where = cf.url === '' ? (cf.functionName.startsWith('(') ? '' : '(native)') : `${shortUrl(cf.url)}:${cf.lineNumber + 1}`
    return `${cf.functionName}\u0000${where}`
  }
  const total = new Map()
  const inclusive = new Map()
  const onStack = new Map()
  const root = profile.nodes[0].id
  const stack = [[root, false]]
  while (stack.length > 0) {
    const [id, leaving] = stack.pop()
    const k = keyOf(id)
    if (leaving) {
      let t = self.get(id) ?? 0
      if (groupOf.get(id) === 'idle' || nodeGroup(id) === 'idle') t = 0
      for (const c of byId.get(id).children ?? []) t += total.get(c) ?? 0
      total.set(id, t)
      onStack.set(k, onStack.get(k) - 1)
      if (onStack.get(k) === 0) inclusive.set(k, (inclusive.get(k) ?? 0) + t)
      continue
    }
    onStack.set(k, (onStack.get(k) ?? 0) + 1)
    stack.push([id, true])
    for (const c of byId.get(id).children ?? []) stack.push([c, false])
  }

  const fns = new Map()
  const groups = new Map()
  let busy = 0
  let idle = 0
  for (const [id, us] of self) {
    const n = byId.get(id)
    const g = nodeGroup(id)
    if (g === 'idle') { idle += us; continue }
    busy += us
    groups.set(g, (groups.get(g) ?? 0) + us)
    const cf = n.callFrame
    const key = keyOf(id)
    const f = fns.get(key) ?? { name: cf.functionName === '' ? '(anonymous)' : cf.functionName, where: key.split('\u0000')[1], group: g, us: 0, totalUs: inclusive.get(key) ?? 0 }
    f.us += us
    fns.set(key, f)
  }
  // Functions with inclusive time but no self time still belong in the inclusive view.
  const incl = []
  for (const n of profile.nodes) {
    const k = keyOf(n.id)
    if (incl.some(f => f.key === k)) continue
    const g = nodeGroup(n.id)
    if (g === 'idle' || n.callFrame.functionName.startsWith('(')) continue
    const cf = n.callFrame
    incl.push({ key: k, name: cf.functionName === '' ? '(anonymous)' : cf.functionName, where: k.split('\u0000')[1], group: GROUPS[g] ?? g, groupKey: g, totalUs: inclusive.get(k) ?? 0, pct: 100 * (inclusive.get(k) ?? 0) / Math.max(1, busy) })
  }
  incl.sort((a, b) => b.totalUs - a.totalUs)
  return {
    windowed,
    fromUs: from,
    toUs: to,
    busyUs: busy,
    idleUs: idle,
    groups: [...groups].map(([g, us]) => ({ group: GROUPS[g] ?? g, key: g, us, pct: 100 * us / busy })).sort((a, b) => b.us - a.us),
    functions: [...fns.values()].map(f => ({ ...f, group: GROUPS[f.group] ?? f.group, pct: 100 * f.us / busy })).sort((a, b) => b.us - a.us),
    inclusive: incl
  }
}

function shortUrl (url) {
  if (url.startsWith('file://')) {
    const p = fileURLToPath(url)
    const rel = relative(ROOT, p)
    return rel.startsWith('..') ? p : rel
  }
  return url
}

export function report (a, top) {
  const ms = us => (us / 1000).toFixed(0)
  const lines = []
  lines.push(`CPU samples ${a.windowed ? 'while the measured load ran' : 'over the whole profile'}: ${ms(a.busyUs)} ms busy, ${ms(a.idleUs)} ms idle ` +
    `(${(100 * a.busyUs / Math.max(1, a.busyUs + a.idleUs)).toFixed(0)}% of the main thread busy). Percentages are of busy time.`)
  lines.push('')
  lines.push('| group | self ms | % |')
  lines.push('|---|---:|---:|')
  for (const g of a.groups) lines.push(`| ${g.group} | ${ms(g.us)} | ${g.pct.toFixed(1)} |`)
  lines.push('')
  lines.push('| # | function | where | group | self ms | % |')
  lines.push('|---:|---|---|---|---:|---:|')
  a.functions.slice(0, top).forEach((f, i) => {
    lines.push(`| ${i + 1} | \`${f.name}\` | ${f.where === '' ? '' : `\`${f.where}\``} | ${f.group} | ${ms(f.us)} | ${f.pct.toFixed(1)} |`)
  })
  lines.push('')
  lines.push('Inclusive time (self + callees) of the busiest entry points and of baton\'s own functions:')
  lines.push('')
  lines.push('| function | where | group | total ms | % |')
  lines.push('|---|---|---|---:|---:|')
  const picked = a.inclusive.filter(f => f.groupKey === 'baton' || f.groupKey === 'client' || /^(parserOnHeadersComplete|onStreamRead|resOnFinish|writeHead|end|onHeadersComplete|onMessageComplete|onBody|writeH1|execute|emit|processTicksAndRejections|listOnTimeout)$/.test(f.name))
  for (const f of picked.slice(0, top)) lines.push(`| \`${f.name}\` | \`${f.where}\` | ${f.group} | ${ms(f.totalUs)} | ${f.pct.toFixed(1)} |`)
  return lines.join('\n')
}

/**
 * The proxy worker's profile among those the run wrote: every process of
 * baton (supervisor, controller, worker) writes one, and the worker, which
 * carried the load, has by far the most samples.
 */
function workerProfile (dir, after) {
  const files = readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => join(dir, f))
    .filter(f => !after.has(f)).map(f => ({ f, size: statSync(f).size })).sort((a, b) => b.size - a.size)
  return files[0]?.f
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

async function main () {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '50' },
      size: { type: 'string', default: '100' },
      threads: { type: 'string', default: '1' },
      dir: { type: 'string', default: '/tmp/baton-prof' },
      top: { type: 'string', default: '15' },
      json: { type: 'string' },
      load: { type: 'string' },
      analyze: { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    process.stdout.write('usage: node scripts/bench/profile.mjs [--size 100|65536] [--duration S] [--warmup S] [--connections C] [--threads T] [--dir DIR] [--top N] [--json FILE] [--load wrk|autocannon] [--skip-build]\n' +
      '       node scripts/bench/profile.mjs --analyze FILE.cpuprofile [--top N] [--json FILE]\n')
    return
  }
  const top = Number(values.top)
  if (values.analyze !== undefined) {
    const a = analyze(JSON.parse(readFileSync(values.analyze, 'utf8')))
    process.stdout.write(report(a, top) + '\n')
    if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(a, null, 2) + '\n')
    return
  }

  installCleanup('bench')
  if (!values['skip-build']) {
    process.stdout.write('building baton (tsc -p tsconfig.json)...\n')
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' })
  }
  const tool = loadTool(values.load)
  const opts = { connections: Number(values.connections), threads: Number(values.threads) }
  const dir = values.dir
  mkdirSync(dir, { recursive: true })
  const before = new Set(readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => join(dir, f)))
  const work = tempDir('baton-prof-')
  try {
    const backend = await startBackend()
    const baton = await startBaton([backend.port], work, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
    await waitHealthy('baton', baton.url, BODY_100)
    const path = SIZE_PATHS[values.size]
    if (path === undefined) throw new Error(`--size must be one of ${Object.keys(SIZE_PATHS).join(', ')}`)
    const url = new URL(path, baton.url).href
    if (Number(values.warmup) > 0) await runLoad(tool, { url, seconds: Number(values.warmup), ...opts })
    const pids = baton.pids()
    const cpu0 = cpuMicros(pids)
    const fromUs = nowUs()
    const load = await runLoad(tool, { url, seconds: Number(values.duration), ...opts })
    const toUs = nowUs()
    const cpu = cpuMicros(pids) - cpu0
    const mem = memoryKb(pids)
    process.stdout.write(`load: ${Math.round(load.rps)} req/s, p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms, ` +
      `${(cpu / load.requests).toFixed(1)} µs CPU/request with the profiler on, RSS ${(mem.rss / 1024).toFixed(1)} MB, errors ${load.errors}\n`)
    const code = await baton.proc.stop('SIGTERM', 20_000)
    if (code !== 0) process.stdout.write(`warning: baton exited ${String(code)} on SIGTERM\n`)
    await sleep(100)
    const file = workerProfile(dir, before)
    if (file === undefined) throw new Error(`baton wrote no .cpuprofile into ${dir} (exit code ${String(code)})`)
    process.stdout.write(`profile: ${file} (${(statSync(file).size / 1024).toFixed(0)} kB)\n\n`)
    const a = analyze(JSON.parse(readFileSync(file, 'utf8')), { fromUs, toUs })
    process.stdout.write(report(a, top) + '\n')
    if (values.json !== undefined) {
      writeFileSync(values.json, JSON.stringify({ file, load, cpuPerReqWithProfiler: cpu / load.requests, analysis: a }, null, 2) + '\n')
    }
  } finally {
    await stopAll()
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(() => process.exit(0), err => {
    process.stderr.write(`profile: ${err.stack ?? err}\n`)
    stopAll().finally(() => process.exit(1))
  })
}
