// The comparison's own helpers (scripts/compare.mjs): HTTP calls, polling and
// the baton build; processes and temp folders come from scripts/lib/procs.mjs.
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import { join } from 'node:path'
import { ROOT, sleep } from '../lib/procs.mjs'

export * from '../lib/procs.mjs'

/** One request on a fresh connection; resolves with { status, headers, body }. */
export async function request (url, { method = 'GET', body, timeoutMs = 5_000 } = {}) {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent: false,
      timeout: timeoutMs,
      headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', c => { text += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.on('error', reject)
    req.end(body)
  })
}

export async function requestJson (url, opts) {
  const r = await request(url, opts)
  let parsed
  try { parsed = JSON.parse(r.body) } catch { parsed = r.body }
  return { status: r.status, body: parsed }
}

/** Polls `fn` every `everyMs` until it returns a truthy value; throws after `timeoutMs`. */
export async function until (what, fn, { timeoutMs = 30_000, everyMs = 50 } = {}) {
  const end = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last !== undefined ? `: ${last.message}` : ''}`)
    await sleep(everyMs)
  }
}

/** Builds baton (tsc) unless told not to; a failed build with a dist/ left is only a warning. */
export function buildBaton () {
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    return undefined
  } catch (err) {
    return `tsc failed (using the dist/ there is): ${String(err.stdout ?? '').split('\n').slice(0, 5).join(' | ')}`
  }
}
