// The benchmark's Markdown: a table row per run as it happens, then per body
// size the medians, the ratios to nginx, HAProxy and http-proxy, and baton's
// aims (issue 12) with whether each is met; then the TLS and HTTP/2 rows
// against nginx over the same protocol, with the aim of issue 14.

const f0 = n => n === undefined ? '-' : Math.round(n).toLocaleString('en-US')
const f1 = n => n === undefined ? '-' : n.toFixed(1)
const f2 = n => n === undefined ? '-' : n.toFixed(2)
const mb = kb => kb === undefined ? '-' : (kb / 1024).toFixed(0)
const ratio = (a, b) => a === undefined || b === undefined || b === 0 ? undefined : a / b
const fx = r => r === undefined ? '-' : `${r.toFixed(2)}×`
const sizeName = size => size >= 1024 ? `${size / 1024} KiB` : `${size} B`

export const LABELS = {
  direct: 'direct (no proxy)',
  baton: 'baton',
  'baton-log': 'baton, access log on',
  'http-proxy': 'node http-proxy (keep-alive agent)',
  undici: 'minimal undici Pool.stream proxy',
  nginx: 'nginx (1 worker, upstream keepalive)',
  haproxy: 'HAProxy (1 thread, http-reuse always)',
  baton2: 'baton, 2 workers',
  nginx2: 'nginx (2 workers, upstream keepalive)',
  'baton-tls': 'baton, HTTP/1.1 over TLS',
  'nginx-tls': 'nginx, HTTP/1.1 over TLS',
  'baton-h2': 'baton, HTTP/2 over TLS',
  'nginx-h2': 'nginx, HTTP/2 over TLS'
}

/** The TLS rows: each with the nginx row over the same protocol and the same proxy's plain-HTTP row. */
const TLS_ROWS = {
  'baton-tls': { nginx: 'nginx-tls', plain: 'baton' },
  'nginx-tls': { nginx: 'nginx-tls', plain: 'nginx' },
  'baton-h2': { nginx: 'nginx-h2', plain: 'baton' },
  'nginx-h2': { nginx: 'nginx-h2', plain: 'nginx' }
}

/** Per size, the TLS and HTTP/2 table and, at 100 B, the aim: baton's CPU per request ≤ 1.5× nginx's over the same protocol. */
function tlsSection (size, m, names) {
  const header = ['target', 'req/s', '÷ nginx', 'p99 ms', 'CPU µs/req', 'CPU ÷ nginx', 'TLS adds µs/req', 'peak RSS MB', 'errors']
  const md = ['', `### ${sizeName(size)} responses over TLS (same certificate, keep-alive connections)`, '']
  md.push(table(header, names.map(name => {
    const r = m[name]
    const n = m[TLS_ROWS[name].nginx]
    const plain = m[TLS_ROWS[name].plain]
    const adds = r.cpuPerReq === undefined || plain?.cpuPerReq === undefined ? undefined : r.cpuPerReq - plain.cpuPerReq
    return [
      name.startsWith('baton') ? `**${LABELS[name]}**` : LABELS[name], f0(r.rps), fx(ratio(r.rps, n?.rps)), f2(r.p99),
      f1(r.cpuPerReq), fx(ratio(r.cpuPerReq, n?.cpuPerReq)), f1(adds), mb(r.rssKb), f0(r.errors)
    ]
  })))
  if (size !== 100) return md
  const rows = []
  for (const [b, n, what] of [['baton-tls', 'nginx-tls', 'HTTP/1.1'], ['baton-h2', 'nginx-h2', 'HTTP/2']]) {
    const cpu = ratio(m[b]?.cpuPerReq, m[n]?.cpuPerReq)
    if (cpu !== undefined) rows.push([`${what} over TLS: CPU per request ≤ 1.5× nginx's`, fx(cpu), cpu <= 1.5 ? 'yes' : 'no'])
  }
  if (rows.length > 0) md.push('', table([`aim at ${sizeName(size)} (issue 14)`, 'measured', 'met'], rows))
  return md
}

/** The nginx a target is held against: the one with as many workers. */
const nginxFor = (name, m) => name.endsWith('2') ? m.nginx2 : m.nginx

function table (header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => i === 0 ? '---' : '---:').join('|')}|`]
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`)
  return lines.join('\n')
}

const RUN_HEADER = ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'of which sys', 'peak RSS MB', 'upstream conns / 1,000 req', 'backend CPU µs/req', 'errors']

function runRow (r) {
  return [LABELS[r.target] ?? r.target, f0(r.rps), f2(r.p50), f2(r.p99), f1(r.cpuPerReq), f1(r.sysPerReq), mb(r.rssKb), f2(r.connsPer1000), f1(r.backendCpuPerReq), f0(r.errors)]
}

/** The aims of issue 12 for one size: [what, measured, met]. */
function aims (size, m) {
  const b = m.baton
  const n = m.nginx
  if (b === undefined) return []
  const check = (ok, want, got) => [want, got, ok === undefined ? '-' : ok ? 'yes' : 'no']
  const rows = []
  const rps = ratio(b.rps, n?.rps)
  const p99 = ratio(b.p99, n?.p99)
  const cpu = ratio(b.cpuPerReq, n?.cpuPerReq)
  if (size === 100) {
    rows.push(check(b.cpuPerReq === undefined ? undefined : b.cpuPerReq <= 40, 'CPU ≤ 40 µs/request', `${f1(b.cpuPerReq)} µs`))
    rows.push(check(rps === undefined ? undefined : rps >= 0.6, 'req/s ≥ 0.6× nginx', fx(rps)))
    rows.push(check(p99 === undefined ? undefined : p99 <= 1.5, 'p99 ≤ 1.5× nginx', fx(p99)))
  } else {
    rows.push(check(cpu === undefined ? undefined : cpu <= 1.2, 'CPU ≤ 1.2× nginx', fx(cpu)))
    rows.push(check(rps === undefined ? undefined : rps >= 0.9, 'req/s ≥ 0.9× nginx', fx(rps)))
  }
  rows.push(check(b.connsPer1000 === undefined ? undefined : b.connsPer1000 <= 1, 'upstream connections ≤ 1 per 1,000 requests', f2(b.connsPer1000)))
  rows.push(check(b.rssKb === undefined ? undefined : b.rssKb <= 90 * 1024, 'RSS under load ≤ 90 MB', `${mb(b.rssKb)} MB`))
  const log = m['baton-log']
  if (log !== undefined && b.cpuPerReq !== undefined && log.cpuPerReq !== undefined) {
    const cost = log.cpuPerReq - b.cpuPerReq
    rows.push(check(cost <= 5, 'access log on costs ≤ 5 µs/request', `${f1(cost)} µs`))
  }
  rows.push(check(b.errors === 0, 'no failed request', f0(b.errors)))
  return rows
}

export const report = {
  /** The per-run table, printed as the runs happen. */
  runTable () {
    return {
      header: `| ${RUN_HEADER.join(' | ')} |\n|${RUN_HEADER.map((_, i) => i === 0 ? '---' : '---:').join('|')}|\n`,
      row: r => `| ${runRow(r).join(' | ')} |\n`
    }
  },

  /** Everything after the runs: per size, medians, ratios and aims. */
  summary (meta, medians) {
    const md = []
    md.push(`Medians of ${meta.rounds} interleaved round(s), ${meta.duration} s each after ${meta.warmup} s warm-up; ` +
      `${meta.connections} keep-alive connections from ${meta.load}${meta.h2load === undefined ? '' : ` (HTTP/2: ${meta.h2load})`}; ${meta.backends} node backend(s), keep-alive; ` +
      `${meta.pinned ? 'proxies and backends pinned to CPU 0, the load to CPU 1; ' : 'unpinned; '}` +
      `${meta.batonFlags.length > 0 ? `baton run with \`node ${meta.batonFlags.join(' ')}\`; ` : ''}node ${meta.node} on ${meta.cpus} CPU(s) (${meta.cpuModel.trim()})` +
      `${meta.nginx !== undefined ? `; ${meta.nginx}` : ''}${meta.haproxy !== undefined ? `; ${meta.haproxy}` : ''}. ` +
      'CPU is utime+stime of the proxy\'s processes per request; peak RSS the largest VmRSS sampled under load; ' +
      'upstream conns the connections the backends accepted under load per 1,000 requests.')
    for (const size of meta.sizes) {
      const m = medians[size]
      const names = meta.targets.filter(t => m[t] !== undefined && TLS_ROWS[t] === undefined)
      const tlsNames = meta.targets.filter(t => m[t] !== undefined && TLS_ROWS[t] !== undefined)
      if (names.length > 0) md.push(...plainSection(size, m, names))
      if (tlsNames.length > 0) md.push(...tlsSection(size, m, tlsNames))
    }
    return md.join('\n')
  }
}

/** Per size, the plain-HTTP table and the aims of issue 12. */
function plainSection (size, m, names) {
  const md = ['', `### ${sizeName(size)} responses`, '']
  // ÷ nginx: against nginx with as many workers (baton, 2 workers ÷ nginx, 2 workers).
  const header = ['target', 'req/s', '÷ nginx', '÷ HAProxy', '÷ http-proxy', 'p99 ms', 'CPU µs/req', 'CPU ÷ nginx', 'peak RSS MB', 'upstream conns / 1,000 req']
  md.push(table(header, names.map(name => {
    const r = m[name]
    return [
      name === 'baton' ? `**${LABELS[name]}**` : LABELS[name],
      f0(r.rps), fx(ratio(r.rps, nginxFor(name, m)?.rps)), fx(ratio(r.rps, m.haproxy?.rps)), fx(ratio(r.rps, m['http-proxy']?.rps)),
      f2(r.p99), f1(r.cpuPerReq), fx(ratio(r.cpuPerReq, nginxFor(name, m)?.cpuPerReq)), mb(r.rssKb), f2(r.connsPer1000)
    ]
  })))
  const goals = aims(size, m)
  if (goals.length > 0) md.push('', table([`aim at ${sizeName(size)}`, 'measured', 'met'], goals))
  return md
}
