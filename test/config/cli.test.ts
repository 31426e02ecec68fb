import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { CLI, runCli, writeConfig } from '../helpers/baton.js'
import { startProc } from '../helpers/procs.js'

// The real CLI from dist/: `npm test` builds it first (pretest).
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -p tsconfig.json first`)
})

const GOOD = `
listen:
  - port: 0
    host: 127.0.0.1
admin:
  listen: 127.0.0.1:0
pools:
  web:
    servers: [127.0.0.1:3000]
`

const BAD = `listen:
  - port: 99999
pools:
  web:
    servers: [127.0.0.1:3000]
    size: 2
routes:
  - pool: api
`

/** Lines without the noise of a trailing empty line. */
const lines = (text: string): string[] => text.split('\n').filter(l => l !== '')

describe('baton check', () => {
  it('prints ok and exits 0 for a valid config', async () => {
    const file = writeConfig(GOOD)
    const r = await runCli(['check', '-c', file])
    expect(r).toMatchObject({ code: 0, stdout: 'ok' })
    expect(r.stderr).toBe('')
  })

  it('validates ./baton.yaml when no -c is given', async () => {
    const file = writeConfig(GOOD)
    const r = await runCli(['check'], { cwd: join(file, '..') })
    expect(r).toMatchObject({ code: 0, stdout: 'ok' })
  })

  it('exits 1 and prints every error as FILE:LINE:COL path: message', async () => {
    const file = writeConfig(BAD)
    const r = await runCli(['check', '-c', file])
    expect(r.code).toBe(1)
    expect(lines(r.stdout)).toEqual([
      `${file}:2:11 listen.0.port: port must be 0-65535`,
      `${file}:6:5 pools.web.size: size: is for managed pools (process: or docker:); a static pool has one instance per server`,
      `${file}:8:11 routes.0.pool: no pool named "api" (pools: web)`
    ])
    expect(r.stdout).not.toContain('ok')
  })

  it('reads ${VAR} from its environment', async () => {
    const file = writeConfig('listen: [{ port: "${PORT}" }]\npools: { web: { servers: [127.0.0.1:3000] } }\n')
    expect(await runCli(['check', '-c', file], { env: { PORT: '8080' } })).toMatchObject({ code: 0, stdout: 'ok' })
    const unset = await runCli(['check', '-c', file], { env: { PORT: '' } })
    expect(unset.code).toBe(1)
    expect(unset.stdout).toBe(`${file}:1:18 listen.0.port: expected a port number, got an empty string (from \${PORT}: PORT is not set)`)
  })

  it('a missing file is one clear line and exit 1, not a stack trace', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'baton-test-')), 'nope.yaml')
    const r = await runCli(['check', '-c', file])
    expect(r.code).toBe(1)
    const out = lines(r.stdout + '\n' + r.stderr)
    expect(out).toEqual([`${file}:1:1 (root): cannot read the config file: no such file`])
  })

  it('a directory instead of a file is one clear line too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-test-'))
    const r = await runCli(['check', '-c', dir])
    expect(r.code).toBe(1)
    expect(lines(r.stdout + '\n' + r.stderr)).toEqual([`${dir}:1:1 (root): cannot read the config file: it is a directory`])
  })

  it('a YAML syntax error gets its position', async () => {
    const file = writeConfig('listen:\n  - port: 8080\npools: {web: {servers: [127.0.0.1:3000]}\n')
    const r = await runCli(['check', '-c', file])
    expect(r.code).toBe(1)
    expect(lines(r.stdout)).toEqual([`${file}:3:8 pools: invalid YAML: this { is not closed (a } is missing, or the next line is not indented enough)`])
  })
})

describe('baton start with a bad config', () => {
  /** Runs `baton start` and waits for it to exit on its own (killing it after 15 s). */
  async function start (config: string): Promise<{ code: number | null, stdout: string[], stderr: string[] }> {
    const file = writeConfig(config)
    const proc = startProc(process.execPath, [CLI, 'start', '-c', file], { cwd: join(file, '..') })
    const timer = setTimeout(() => { void proc.kill('SIGKILL') }, 15_000)
    const code = await proc.exited
    clearTimeout(timer)
    return { code, stdout: proc.lines, stderr: proc.stderr }
  }

  it('exits non-zero before listening and prints the errors on stderr', async () => {
    const r = await start(BAD)
    expect(r.code).not.toBe(0)
    expect(r.code).not.toBe(-1) // it exited by itself, not by the safety kill
    expect(r.stderr).toEqual([
      expect.stringMatching(/baton\.yaml:2:11 listen\.0\.port: port must be 0-65535$/),
      expect.stringMatching(/baton\.yaml:6:5 pools\.web\.size: size: is for managed pools/),
      expect.stringMatching(/baton\.yaml:8:11 routes\.0\.pool: no pool named "api"/),
      expect.stringMatching(/^baton: .*baton\.yaml has 3 error\(s\); nothing was started$/)
    ])
    // No listener opened: no `listening` / `baton started` log line on stdout.
    expect(r.stdout.filter(l => /listening|baton started/.test(l))).toEqual([])
  })

  it('refuses an admin API off loopback without a token', async () => {
    const r = await start('listen: [{ port: 0, host: 127.0.0.1 }]\nadmin: { listen: 0.0.0.0:0 }\npools: { web: { servers: [127.0.0.1:3000] } }\n')
    expect(r.code).not.toBe(0)
    expect(r.code).not.toBe(-1)
    expect(r.stderr[0]).toMatch(/baton\.yaml:2:18 admin\.listen: the admin API listens off loopback, so admin\.token is required$/)
    expect(r.stdout.filter(l => /listening|baton started/.test(l))).toEqual([])
  })

  it('a missing config file: one line, non-zero, nothing started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-test-'))
    const proc = startProc(process.execPath, [CLI, 'start', '-c', join(dir, 'missing.yaml')], { cwd: dir })
    const code = await proc.exited
    expect(code).toBe(1)
    expect(proc.stderr.join('\n')).toContain('cannot read the config file: no such file')
    expect(proc.stderr.join('\n')).not.toMatch(/^\s+at /m)
    expect(proc.lines.filter(l => /listening|baton started/.test(l))).toEqual([])
  })
})
