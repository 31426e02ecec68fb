// TLS pieces of the benchmark (scripts/bench.mjs): the certificate, made at
// bench time in the bench's temp dir (never a committed key), and h2load
// (Debian's nghttp2-client), the HTTP/2 load generator; wrk does HTTP/1.1
// over TLS itself.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { median, spawnPinned, which } from './lib.mjs'

/** The name the bench's certificate is for (SAN and CN); clients connect to 127.0.0.1 and get it as the default. */
export const CERT_NAME = 'bench.test'

/**
 * A self-signed ECDSA P-256 certificate and its key, by the openssl CLI, in
 * `dir`: { cert, key } paths. The same files serve baton and nginx.
 */
export function makeCertificate (dir) {
  const cert = join(dir, 'bench-cert.pem')
  const key = join(dir, 'bench-key.pem')
  execFileSync(which('openssl') ?? 'openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${CERT_NAME}`, '-addext', `subjectAltName=DNS:${CERT_NAME}`, '-keyout', key, '-out', cert
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  return { cert, key }
}

/** The h2load binary, or undefined when nghttp2-client is not installed. */
export const H2LOAD = which('h2load')

/** "h2load nghttp2/1.52.0". */
export function h2loadVersion () {
  const r = spawnSync(H2LOAD ?? 'h2load', ['--version'], { encoding: 'utf8' })
  const m = /nghttp2\/[\w.-]+/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)
  return m === null ? 'h2load' : `h2load ${m[0]}`
}

/**
 * Reads h2load's summary and its per-request log (`--log-file`: start µs,
 * status, duration µs, tab-separated), the latencies coming from the log
 * because h2load prints no percentiles. Exported for a quick self-check.
 */
export function parseH2load (out, log) {
  const done = /finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/.exec(out)
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out)
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
  if (done === null || reqs === null || codes === null) throw new Error(`cannot read h2load output:\n${out}`)
  const durations = []
  for (const line of log.split('\n')) {
    const f = line.split('\t')
    if (f.length >= 3 && f[1] !== '') durations.push(Number(f[2]) / 1000)
  }
  durations.sort((a, b) => a - b)
  const pct = p => durations.length === 0 ? undefined : durations[Math.min(durations.length - 1, Math.floor(durations.length * p / 100))]
  const requests = Number(reqs[4])
  const non2xx = Number(codes[2]) + Number(codes[3]) + Number(codes[4])
  // Failed besides non-2xx answers: errored and timed-out streams (h2load counts a non-2xx as failed too).
  const socketErrors = Number(reqs[6]) + Number(reqs[7])
  return {
    requests,
    rps: Number(done[3]),
    p50: median(durations),
    p99: pct(99),
    errors: non2xx + socketErrors,
    non2xx,
    socketErrors
  }
}

/**
 * h2load for `seconds` over `connections` HTTP/2 connections, `streams`
 * requests in flight on each (1: like wrk's one request at a time on a
 * keep-alive connection), `threads` threads; pinned as the load.
 */
export async function runH2load ({ url, seconds, connections, threads, streams = 1, logFile }) {
  if (H2LOAD === undefined) throw new Error('h2load is not installed (Debian: apt-get install nghttp2-client)')
  const p = spawnPinned('load', 'h2load', H2LOAD, [
    '-c', String(Math.max(connections, threads)), '-t', String(threads), '-m', String(streams),
    '-D', String(Math.max(1, Math.round(seconds))), '--log-file', logFile, url
  ])
  const code = await p.exited
  const out = p.lines.join('\n')
  if (code !== 0) throw new Error(`h2load exited ${String(code)}\n${p.tail()}`)
  return parseH2load(out, readFileSync(logFile, 'utf8'))
}
