#!/usr/bin/env node
// npm run test:busy [-- vitest args]: the whole suite twice at once on this
// checkout, as when two CI jobs share a machine. It builds once, starts two
// vitest processes side by side (each runs its files one at a time, so two
// files run at any moment and each has the other's load), then prints each
// copy's counts and duration and exits non-zero if either copy failed.
// Each copy's full output and JSON report stay in the folder it prints.
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { installCleanup, ROOT, run, spawnChild } from './lib/procs.mjs'

installCleanup('test:busy')
const extra = process.argv.slice(2)
const COPIES = 2

console.log('test:busy: building once')
const built = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'])
if (built.code !== 0) {
  console.error(`test:busy: the build failed\n${built.stdout}\n${built.stderr}`)
  process.exit(1)
}

const out = mkdtempSync(join(tmpdir(), 'baton-test-busy-'))
console.log(`test:busy: ${COPIES} copies of the suite at once; their output goes to ${out}`)

// Plain text in the logs.
const { FORCE_COLOR: _color, ...plainEnv } = process.env

async function copy (n) {
  const log = join(out, `copy-${n}.log`)
  const json = join(out, `copy-${n}.json`)
  writeFileSync(log, '')
  const started = performance.now()
  const p = spawnChild(`vitest copy ${n}`, process.execPath, [
    join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run',
    '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...extra
  ], {
    env: { ...plainEnv, CI: 'true', NO_COLOR: '1' },
    onLine: line => appendFileSync(log, `${typeof line === 'string' ? line : JSON.stringify(line)}\n`)
  })
  const code = await p.exited
  const ms = performance.now() - started
  appendFileSync(log, p.stderr.map(l => `stderr: ${l}\n`).join(''))
  let report
  try { report = JSON.parse(readFileSync(json, 'utf8')) } catch { report = undefined }
  return { n, code, ms, report, log }
}

const copies = await Promise.all(Array.from({ length: COPIES }, async (_, i) => await copy(i + 1)))

let failed = false
for (const c of copies) {
  const s = (c.ms / 1000).toFixed(0)
  if (c.report === undefined) {
    failed = true
    console.log(`copy ${c.n}: vitest exited ${String(c.code)} without a report after ${s} s (see ${c.log})`)
    continue
  }
  const r = c.report
  const skipped = r.numPendingTests + r.numTodoTests
  console.log(`copy ${c.n}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped in ${s} s (vitest exit ${String(c.code)})`)
  for (const file of r.testResults) {
    for (const t of file.assertionResults) {
      if (t.status === 'failed') console.log(`  failed: ${file.name.slice(ROOT.length)} › ${t.fullName}`)
    }
    // A file that failed outside its tests (a hook, an import) has no failed assertion to show.
    if (file.status === 'failed' && !file.assertionResults.some(t => t.status === 'failed')) {
      console.log(`  failed: ${file.name.slice(ROOT.length)}: ${String(file.message).split('\n')[0]}`)
    }
  }
  if (c.code !== 0 || r.numFailedTests > 0 || r.numFailedTestSuites > 0) failed = true
}
console.log(failed ? 'test:busy: FAILED' : 'test:busy: both copies passed')
process.exit(failed ? 1 : 0)
