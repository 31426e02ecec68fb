import { readFileSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBackend, type Backend } from '../helpers/backend.js'
import { runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { config, deadPort } from '../helpers/http.js'

// README "Command line": client commands find the admin API through --admin or
// BATON_ADMIN and send BATON_ADMIN_TOKEN; a refused or failed call prints one
// clear line and exits non-zero, never a stack trace.

const COMMANDS: string[][] = [['rollout', 'web'], ['status'], ['pause', 'web'], ['resume', 'web'], ['abort', 'web'], ['rollback', 'web'], ['reload']]
const NO_ENV = { BATON_ADMIN: '', BATON_ADMIN_TOKEN: '', BATON_FORCE_TTY: '' }

/** Exactly one line on stderr, `baton: ...`, nothing on stdout, a non-zero exit. */
function expectOneLine (r: { code: number | null, stdout: string, stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0)
  expect(r.code).not.toBeNull()
  expect(r.stdout).toBe('')
  expect(r.stderr.split('\n')).toHaveLength(1)
  expect(r.stderr).toMatch(/^baton: /)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/)
}

describe('CLI: help and refusals', () => {
  let backend: Backend
  let baton: RunningBaton

  beforeAll(async () => {
    backend = await startBackend({ NAME: 'a' })
    baton = await startBaton(config({ web: { servers: [backend.address] } }, { admin: { listen: '127.0.0.1:0', token: 'secret' } }))
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
    await backend.kill()
  })

  it('has --help for every command', async () => {
    const top = await runCli(['--help'])
    expect(top.code).toBe(0)
    for (const c of ['start', 'check', 'rollout', 'status', 'pause', 'resume', 'abort', 'rollback', 'reload']) expect(top.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'))
    const rollout = await runCli(['rollout', '--help'])
    expect(rollout.code).toBe(0)
    expect(rollout.stdout).toMatch(/^Usage: baton rollout \[options\] <pool>/)
    for (const o of ['--version <version>', '--env <NAME=value>', '--max-surge <n>', '--max-unavailable <n>', '-w, --watch', '--admin <url>']) expect(rollout.stdout).toContain(o)
    expect(rollout.stdout).not.toContain('--tty')
    const usage: Record<string, string> = { status: 'status [options] [pool]', pause: 'pause [options] <pool>', resume: 'resume [options] <pool>', abort: 'abort [options] <pool>', rollback: 'rollback [options] <pool>', reload: 'reload [options]' }
    await Promise.all(Object.entries(usage).map(async ([cmd, line]) => {
      const r = await runCli([cmd, '--help'])
      expect(r.code, cmd).toBe(0)
      expect(r.stdout).toContain(`Usage: baton ${line}`)
      expect(r.stdout).toContain('--admin <url>')
    }))
  })

  it('says once that baton is not running, for every command', async () => {
    const port = await deadPort()
    await Promise.all(COMMANDS.map(async args => {
      const r = await runCli([...args, '--admin', `http://127.0.0.1:${port}`], { env: NO_ENV })
      expectOneLine(r, new RegExp(`^baton: cannot reach the admin API at http://127\\.0\\.0\\.1:${port}: connection refused`))
    }))
    // BATON_ADMIN, and host:port without a scheme.
    expectOneLine(await runCli(['status'], { env: { ...NO_ENV, BATON_ADMIN: `127.0.0.1:${port}` } }), /connection refused/)
    expectOneLine(await runCli(['status', '--admin', 'http://[nope'], { env: NO_ENV }), /is not an admin API address/)
  })

  it('refuses without a token or with a bad one (401)', async () => {
    await Promise.all(COMMANDS.map(async args => {
      const none = await runCli([...args, '--admin', baton.adminUrl], { env: NO_ENV })
      expectOneLine(none, new RegExp(`^baton: ${args[0]} refused \\(401\\): a valid bearer token is required \\(set BATON_ADMIN_TOKEN\\)$`))
      if (!['status', 'rollout', 'reload'].includes(args[0])) return
      const bad = await runCli(args, { env: { ...NO_ENV, BATON_ADMIN: baton.adminUrl, BATON_ADMIN_TOKEN: 'wrong' } })
      expectOneLine(bad, new RegExp(`^baton: ${args[0]} refused \\(401\\): a valid bearer token is required \\(check BATON_ADMIN_TOKEN\\)$`))
    }))
  })

  it('works with the token, and refuses what the API refuses in one line', async () => {
    const env = { ...NO_ENV, BATON_ADMIN: baton.adminUrl, BATON_ADMIN_TOKEN: 'secret' }
    const status = await runCli(['status'], { env })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/^POOL +INSTANCE +VERSION +STATE +IN-FLIGHT +REQUESTS +UPTIME$/m)
    expect(status.stdout).toMatch(new RegExp(`^web +web/${backend.address.replace(/\./g, '\\.')} +v1 +serving +0 +\\d+ +\\d+s$`, 'm'))
    expect(status.stdout).toMatch(/^web: static servers, 1 of 1 healthy$/m)

    const refusals: Array<[string[], RegExp]> = [
      [['status', 'nope'], /^baton: status refused \(404\): no pool named "nope"$/],
      [['rollout', 'nope'], /^baton: rollout refused \(404\): no pool named "nope"$/],
      [['rollout', 'web', '--version', 'v2'], /^baton: rollout refused \(400\): pool "web" has static servers/],
      [['rollout', 'web', '--watch'], /^baton: rollout refused \(400\)/],
      [['pause', 'web'], /^baton: pause refused: no rollout is running in pool "web"$/],
      [['abort', 'nope'], /^baton: abort refused \(404\): no pool named "nope"$/],
      [['rollback', 'web'], /^baton: rollback refused \(400\)/]
    ]
    await Promise.all(refusals.map(async ([args, pattern]) => { expectOneLine(await runCli(args, { env }), pattern) }))

    // reload: what changed, or the refusal of a bad file in one line (and nothing changes).
    const reload = await runCli(['reload'], { env })
    expect(reload.code, reload.stderr).toBe(0)
    expect(reload.stdout).toBe('config reloaded: nothing changed')
    const good = readFileSync(baton.configFile, 'utf8')
    writeFileSync(baton.configFile, good.replace(/^listen:/m, 'listen: 12\nlisten_typo:'))
    try {
      expectOneLine(await runCli(['reload'], { env }), /^baton: reload refused \(400\): the new config is invalid \(\d+ error\(s\)\); nothing was changed: .*baton\.yaml:\d+:\d+ /)
    } finally {
      writeFileSync(baton.configFile, good)
    }
    expect((await runCli(['status'], { env })).code).toBe(0)
  })

  it('reports a usage mistake and exits non-zero', async () => {
    const env = { ...NO_ENV, BATON_ADMIN: baton.adminUrl }
    const noEq = await runCli(['rollout', 'web', '--env', 'NOEQUALS'], { env })
    expect(noEq.code).toBe(1)
    expect(noEq.stderr).toContain("error: option '--env <NAME=value>' argument 'NOEQUALS' is invalid. expected NAME=value")
    const noPool = await runCli(['rollout'], { env })
    expect(noPool.code).toBe(1)
    expect(noPool.stderr).toContain("error: missing required argument 'pool'")
  })
})
