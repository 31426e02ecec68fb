#!/usr/bin/env node
// npm run compare -- [--rounds N] [--quick] [--json FILE] [--ways naive,pm2,baton]
//
// Upgrades the same app (scripts/demo-app.mjs) from v1 to v2 under the same
// client load in three ways, and prints what the clients saw:
//   naive  one process on a port: SIGTERM (it stops gracefully; SIGKILL if still
//          there after 10 s, like `docker stop`), then start v2
//   pm2    `pm2 reload demo --update-env` of a 4-instance pm2 cluster
//          (exec_mode cluster, wait_ready, listen_timeout 10 s, kill_timeout 5 s;
//          PM2_KILL_SIGNAL=SIGTERM, the app's graceful stop, where pm2's default
//          is SIGINT), with its own PM2_HOME in a temp folder
//   baton  a pool of 4 behind baton, upgraded by POST /v1/pools/web/rollouts
// and a bad version (v2 answers 500 to 20 % of its requests) upgraded two
// ways, in a table of their own: a plain rolling update (bad-rolling) and a
// canary whose analysis catches it (bad-canary); each counts, over the 30 s
// from the upgrade's start, the requests that met the bad version.
//
// The load (scripts/compare/load-worker.mjs, the same for all three): 20
// keep-alive GET loops, 5 Connection: close GET loops, 5 POST loops with a
// 4 KiB body, 5 loops of 2 s slow requests (20 ms between two requests of a
// loop) and 5 WebSockets that send a message every 100 ms. A run: ~2 s
// warm-up, ~5 s steady, the upgrade, ~3 s after it. Every request is counted
// and every failure filed by kind and cause.
//
// Upgrade wall time: naive, SIGTERM → the new process answers /ready; pm2, the
// `pm2 reload` command; baton, the rollout's startedAt → finishedAt.
// Rounds are interleaved (naive, pm2, baton, naive, ...); the table gives the
// median per way of each column; --json writes every run.
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { DEFAULT_LOAD, startLoad } from './compare/load.mjs'
import { buildBaton, installCleanup, sleep, stopAll } from './compare/procs.mjs'
import { BAD_CANARY, BAD_DRAIN, BAD_WAYS, LABELS, WAYS } from './compare/ways.mjs'
import { readOptions } from './lib/options.mjs'

const USAGE = `usage: node scripts/compare.mjs [options]
  --rounds N           interleaved rounds (default 3)
  --quick              1 round
  --json FILE          also write every run (raw results) as JSON to FILE
  --ways LIST          comma list among naive,pm2,baton,bad-rolling,bad-canary (default: all)
  --steady S           seconds of steady load before the upgrade (default 5)
  --after S            seconds of load after the upgrade is done (default 3)
  --warmup S           seconds of load before the steady phase, not measured (default 2)
  --drain-timeout D    baton's rollout.drainTimeout (default 30s)
  --pm2-kill-signal S  PM2_KILL_SIGNAL for pm2's daemon (default SIGTERM, the app's graceful stop)
  --skip-build         do not rebuild baton (tsc) first
  -h, --help           this text`

const KINDS = ['keepalive', 'close', 'post', 'slow', 'ws']

function options () {
  const { values, num } = readOptions(USAGE, {
    ways: { type: 'string' },
    steady: { type: 'string' },
    after: { type: 'string' },
    'drain-timeout': { type: 'string', default: '30s' },
    'pm2-kill-signal': { type: 'string', default: 'SIGTERM' }
  })
  const ways = values.ways === undefined ? Object.keys(WAYS) : values.ways.split(',').map(s => s.trim()).filter(Boolean)
  for (const w of ways) if (!(w in WAYS)) throw new Error(`unknown way ${w}; choose among ${Object.keys(WAYS).join(', ')}`)
  return {
    rounds: Math.round(num('rounds', values.quick ? 1 : 3, 1)),
    json: values.json,
    ways,
    steadyMs: num('steady', 5, 1) * 1000,
    afterMs: num('after', 3, 0) * 1000,
    warmupMs: num('warmup', 2, 0) * 1000,
    drainTimeout: values['drain-timeout'],
    pm2KillSignal: values['pm2-kill-signal'],
    skipBuild: values['skip-build']
  }
}

const log = s => process.stderr.write(s + '\n')

/** Sums and picks what the table shows from one run's load result. */
function digest (r, upgradeAt) {
  const byKind = Object.fromEntries(KINDS.map(k => [k, 0]))
  let requests = 0
  let cut = 0
  const ws = { connects: 0, goingAway: 0, abnormal: 0, connectFailed: 0, sent: 0, echoed: 0, lost: 0 }
  for (const p of Object.values(r.phases)) {
    for (const k of KINDS) byKind[k] += p.kinds[k].failed
    for (const k of KINDS) if (k !== 'ws') requests += p.kinds[k].sent
    cut += p.kinds.slow.cut
    for (const f of Object.keys(ws)) ws[f] += p.ws[f]
  }
  const after = r.phases.after.kinds
  const oldAfter = ['keepalive', 'close', 'post', 'slow'].reduce((n, k) => n + (after[k].versions.v1 ?? 0), 0)
  const newAfter = ['keepalive', 'close', 'post', 'slow'].reduce((n, k) => n + (after[k].versions.v2 ?? 0), 0)
  // From the upgrade's start on: requests sent, and those the new version answered (any status).
  const fromUpgrade = ['upgrade', 'after'].flatMap(p => ['keepalive', 'close', 'post', 'slow'].map(k => r.phases[p].kinds[k]))
  const app500 = Object.entries(r.causes).filter(([cause]) => cause.endsWith(': HTTP 500')).reduce((n, [, byPhase]) => n + Object.values(byPhase).reduce((a, b) => a + b, 0), 0)
  return {
    requests,
    failed: Object.values(byKind).reduce((a, b) => a + b, 0),
    byKind,
    cut,
    ws,
    p99Steady: r.phases.steady.short.p99,
    p99Upgrade: r.phases.upgrade.short.p99,
    p99After: r.phases.after.short.p99,
    answeredAfter: { v1: oldAfter, v2: newAfter },
    sinceUpgrade: fromUpgrade.reduce((n, k) => n + k.sent, 0),
    metNew: fromUpgrade.reduce((n, k) => n + (k.met.v2 ?? 0), 0),
    app500,
    causes: r.causes,
    failures: r.failures.map(f => ({ ...f, tFromUpgradeS: Math.round((f.at - upgradeAt) / 10) / 100 }))
  }
}

async function runOnce (way, round, o) {
  const run = { way, round, startedAt: new Date().toISOString(), loadavgBefore: loadavg().map(x => Math.round(x * 100) / 100) }
  let target
  let load
  try {
    target = await WAYS[way](o)
    load = await startLoad(target.host, target.port, DEFAULT_LOAD)
    await sleep(o.warmupMs)
    load.phase('steady')
    await sleep(o.steadyMs)
    load.phase('upgrade')
    const upgradeAt = Date.now()
    const up = await target.upgrade()
    load.phase('after')
    // The bad-version runs count over the same time from the upgrade's start, however long their rollout took.
    await sleep(target.horizonMs === undefined ? o.afterMs : Math.max(o.afterMs, target.horizonMs - (Date.now() - upgradeAt)))
    const result = await load.stop()
    load = undefined
    run.upgrade = { wallMs: Math.round(up.wallMs), ok: up.ok, status: up.status, note: up.note, events: up.events }
    run.marks = result.marks
    Object.assign(run, digest(result, upgradeAt))
    run.phases = result.phases
    run.ok = up.ok
    if (!up.ok) run.error = up.note
  } catch (err) {
    run.ok = false
    run.error = err.stack ?? String(err)
  } finally {
    if (load !== undefined) await load.kill().catch(() => undefined)
    if (target !== undefined) await target.teardown().catch(err => { log(`compare: ${way} teardown failed: ${err.message}`) })
  }
  run.loadavgAfter = loadavg().map(x => Math.round(x * 100) / 100)
  return run
}

function median (xs) {
  const v = xs.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2
}

const fmt = (v, digits = 0) => v === null || v === undefined ? '—' : (Math.round(v * 10 ** digits) / 10 ** digits).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

const COLUMNS = [
  ['way', r => r.label],
  ['HTTP requests', r => fmt(r.requests)],
  ['failed (all kinds)', r => fmt(r.failed)],
  ['keep-alive GET', r => fmt(r.byKind.keepalive)],
  ['Connection: close GET', r => fmt(r.byKind.close)],
  ['POST 4 KiB', r => fmt(r.byKind.post)],
  ['slow 2 s', r => fmt(r.byKind.slow)],
  ['WebSocket', r => fmt(r.byKind.ws)],
  ['cut long requests', r => fmt(r.cut)],
  ['WS closed 1001 (clean)', r => fmt(r.wsGoingAway)],
  ['WS msgs lost', r => fmt(r.wsLost)],
  ['p99 steady (ms)', r => fmt(r.p99Steady, 1)],
  ['p99 during upgrade (ms)', r => fmt(r.p99Upgrade, 1)],
  ['upgrade wall time (s)', r => fmt(r.wallMs === null ? null : r.wallMs / 1000, 1)]
]

function row (label, runs) {
  const m = f => median(runs.map(f))
  return {
    label,
    requests: m(r => r.requests),
    failed: m(r => r.failed),
    byKind: Object.fromEntries(KINDS.map(k => [k, m(r => r.byKind[k])])),
    cut: m(r => r.cut),
    wsGoingAway: m(r => r.ws.goingAway),
    wsLost: m(r => r.ws.lost),
    p99Steady: m(r => r.p99Steady),
    p99Upgrade: m(r => r.p99Upgrade),
    wallMs: m(r => r.upgrade.wallMs)
  }
}

const BAD_COLUMNS = [
  ['way', r => r.label],
  ['HTTP requests in the 30 s from the upgrade', r => fmt(r.sinceUpgrade)],
  ['answered by the bad v2', r => fmt(r.metNew)],
  ['500s from the bad v2', r => fmt(r.app500)],
  ['failed by baton', r => fmt(r.batonFailed)],
  ['rollout', r => r.outcome],
  ['rollout wall time (s)', r => fmt(r.wallMs === null ? null : r.wallMs / 1000, 1)]
]

function badRow (label, runs) {
  const m = f => median(runs.map(f))
  const outcomes = [...new Set(runs.map(r => r.upgrade.status ?? '?'))].join(', ')
  return {
    label,
    sinceUpgrade: m(r => r.sinceUpgrade),
    metNew: m(r => r.metNew),
    app500: m(r => r.app500),
    batonFailed: m(r => r.failed - r.app500),
    outcome: outcomes,
    wallMs: m(r => r.upgrade.wallMs)
  }
}

function table (rows, columns = COLUMNS) {
  const out = [`| ${columns.map(c => c[0]).join(' | ')} |`, `|${columns.map((_, i) => i === 0 ? '---' : '---:').join('|')}|`]
  for (const r of rows) out.push(`| ${columns.map(c => c[1](r)).join(' | ')} |`)
  return out.join('\n')
}

function causesText (way, runs) {
  const sum = {}
  for (const r of runs) {
    for (const [cause, byPhase] of Object.entries(r.causes ?? {})) {
      sum[cause] ??= {}
      for (const [p, n] of Object.entries(byPhase)) sum[cause][p] = (sum[cause][p] ?? 0) + n
    }
  }
  const lines = Object.entries(sum)
    .map(([cause, byPhase]) => [cause, Object.values(byPhase).reduce((a, b) => a + b, 0), byPhase])
    .sort((a, b) => b[1] - a[1])
    .map(([cause, n, byPhase]) => `  - ${cause}: ${n} (${Object.entries(byPhase).map(([p, k]) => `${p} ${k}`).join(', ')})`)
  return `- ${LABELS[way]}, over ${runs.length} run(s):\n${lines.length === 0 ? '  - none' : lines.join('\n')}`
}

async function main () {
  installCleanup('compare')
  const o = options()
  if (o.ways.includes('baton') && !o.skipBuild) {
    log('compare: building baton (tsc)...')
    const warn = buildBaton()
    if (warn !== undefined) log(`compare: warning: ${warn}`)
  }
  log(`compare: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map(x => x.toFixed(2)).join(' ')}; ${o.rounds} round(s) of ${o.ways.join(', ')}`)
  const runs = []
  for (let round = 1; round <= o.rounds; round++) {
    for (const way of o.ways) {
      log(`compare: round ${round}/${o.rounds}: ${way}...`)
      const r = await runOnce(way, round, o)
      runs.push(r)
      if (!r.ok) log(`compare:   ${way} FAILED: ${r.error}`)
      if (r.requests !== undefined) {
        log(`compare:   ${r.requests} HTTP requests, ${r.failed} failed ${JSON.stringify(r.byKind)}, ${r.cut} cut; ws ${JSON.stringify(r.ws)}; ` +
          `p99 ${fmt(r.p99Steady, 1)} → ${fmt(r.p99Upgrade, 1)} ms; upgrade ${fmt(r.upgrade.wallMs / 1000, 2)} s` +
          (BAD_WAYS.has(way)
            ? `; ${r.metNew} of ${r.sinceUpgrade} answered by the bad v2 (${r.app500} 500s); rollout ${r.upgrade.status}`
            : r.answeredAfter.v1 > 0 ? `; WARNING: ${r.answeredAfter.v1} answers from v1 after the upgrade` : ''))
      }
    }
  }
  const good = way => runs.filter(r => r.way === way && r.requests !== undefined)
  const plain = o.ways.filter(w => !BAD_WAYS.has(w))
  const bad = o.ways.filter(w => BAD_WAYS.has(w))
  const rows = plain.map(w => row(LABELS[w], good(w)))
  const failedRuns = runs.filter(r => !r.ok)

  let report = `## Upgrading v1 → v2 under load: median of ${o.rounds} round(s)\n\n${table(rows)}\n`
  if (bad.length > 0) {
    report += `\n## A bad v2 (500 to 20 % of its requests): median of ${o.rounds} round(s)\n\n${table(bad.map(w => badRow(LABELS[w], good(w))), BAD_COLUMNS)}\n`
    report += `\nThe same load; the canary's steps: ${BAD_CANARY.steps.map(st => `${st.weight} % for ${st.pause}`).join(', ')}, analysis minRequests ${BAD_CANARY.analysis.minRequests}, maxErrorRate ${BAD_CANARY.analysis.maxErrorRate}; drainTimeout ${BAD_DRAIN} in both. ` +
      '"answered by the bad v2" counts every answer it gave (any status) in the 30 s from the upgrade\'s start; the rolling update leaves v2 on every instance after that.\n'
  }
  report += `\nLoad: ${DEFAULT_LOAD.mix.keepalive} keep-alive GET, ${DEFAULT_LOAD.mix.close} Connection: close GET, ${DEFAULT_LOAD.mix.post} POST 4 KiB and ${DEFAULT_LOAD.mix.slow} slow 2 s loops (${DEFAULT_LOAD.thinkMs} ms between requests), ` +
    `${DEFAULT_LOAD.mix.ws} WebSockets with a message every ${DEFAULT_LOAD.wsEveryMs} ms; ${o.steadyMs / 1000} s steady, the upgrade, ${o.afterMs / 1000} s after. ` +
    `p99 is over the keep-alive, close and POST requests that started in the phase. "cut long requests" are slow requests (also counted under "slow 2 s") that failed after >= 200 ms in flight.\n`
  report += `\n### Failures by cause (kind: cause: count (phase in which it started or happened))\n\n${o.ways.map(w => causesText(w, good(w))).join('\n')}\n`
  const batonFails = good('baton').flatMap(r => r.failures.map(f => ({ round: r.round, ...f })))
  if (batonFails.length > 0) {
    report += '\n### Every baton failure (round, kind, phase, seconds from the upgrade start, cause)\n\n'
    report += batonFails.slice(0, 50).map(f => `- round ${f.round}: ${f.kind}, ${f.phase}, t=${f.tFromUpgradeS} s, ${f.cause}${f.ms !== undefined ? ` after ${f.ms} ms` : ''}`).join('\n') + '\n'
  }
  report += '\n### Every run\n\n| round | way | HTTP requests | failed | cut | WS 1001 | WS lost | p99 steady | p99 upgrade | wall (s) | load avg before/after | note |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n'
  for (const r of runs) {
    if (r.requests === undefined) { report += `| ${r.round} | ${r.way} | run failed: ${String(r.error).split('\n')[0]} ||||||||||\n`; continue }
    report += `| ${r.round} | ${r.way} | ${r.requests} | ${r.failed} | ${r.cut} | ${r.ws.goingAway} | ${r.ws.lost} | ${fmt(r.p99Steady, 1)} | ${fmt(r.p99Upgrade, 1)} | ${fmt(r.upgrade.wallMs / 1000, 2)}${r.ok ? '' : ' (upgrade failed)'} | ${r.loadavgBefore[0]} / ${r.loadavgAfter[0]} | ${r.upgrade.note ?? ''} |\n`
  }
  process.stdout.write(report)
  if (o.json !== undefined) {
    writeFileSync(o.json, JSON.stringify({ node: process.version, cpus: cpus().length, options: o, load: DEFAULT_LOAD, runs }, null, 2))
    log(`compare: raw results written to ${o.json}`)
  }
  await stopAll()
  process.exitCode = failedRuns.length > 0 ? 1 : 0
}

main().catch(async err => {
  process.stderr.write(`${err.stack ?? err}\n`)
  await stopAll()
  process.exitCode = 1
})
