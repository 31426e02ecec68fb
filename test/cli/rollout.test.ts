import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, demoPool, finished, settledOn, type AdminApi } from '../helpers/admin.js'
import { claimPortRange } from '../helpers/ports.js'
import { CLI, ROOT, runCli, startBaton, type RunningBaton } from '../helpers/baton.js'
import { config } from '../helpers/http.js'
import { startProc } from '../helpers/procs.js'
import { present } from '../helpers/views.js'
import type { PoolView } from '../helpers/views.js'

// README "Command line": baton rollout / status / pause / resume / abort / rollback
// against a real baton running a managed pool of the demo app.

describe('CLI: rollouts of a managed pool', () => {
  let baton: RunningBaton
  let api: AdminApi
  let env: Record<string, string>

  beforeAll(async () => {
    baton = await startBaton(config({ web: demoPool(claimPortRange(), { readiness: { startTimeout: '4s' } }) }))
    api = adminApi(baton.adminUrl)
    env = { BATON_ADMIN: baton.adminUrl, BATON_ADMIN_TOKEN: '', BATON_FORCE_TTY: '' }
  })
  afterAll(async () => {
    expect(await baton.kill()).toBe(0)
  })

  async function cli (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
    return await runCli(args, { env })
  }

  it('status: a table of the instances and a line per pool; --json is the API\'s answer', async () => {
    const r = await cli('status')
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^POOL +INSTANCE +VERSION +STATE +IN-FLIGHT +REQUESTS +UPTIME$/)
    expect(lines.filter(l => /^web +web-1-[0-9a-f]{6} +v1 +serving +0 +\d+ +\d+s$/.test(l))).toHaveLength(2)
    expect(lines.find(l => l.startsWith('web:'))).toBe('web: revision 1 (v1), 2 of 2 serving, no rollout running')
    expect(lines.find(l => l.startsWith('baton '))).toMatch(/^baton \d+\.\d+\.\d+\S*, generation 1 \(controller pid \d+\)$/)

    const json = await cli('status', '--json')
    expect(json.code).toBe(0)
    const all: { pools: PoolView[] } = JSON.parse(json.stdout)
    expect(all.pools).toHaveLength(1)
    expect(all.pools[0]).toMatchObject({ name: 'web', revision: 1, version: 'v1', size: 2, rollout: null })
    expect(all.pools[0].instances.map((i) => i.id).sort()).toEqual((await api.get('/v1/pools/web')).body.instances.map((i) => i.id).sort())
    const one = JSON.parse((await cli('status', 'web', '--json')).stdout)
    expect(one).toMatchObject({ name: 'web', version: 'v1' })
  })


  it('rollout --watch prints one line per step and exits 0 on success', async () => {
    const r = await cli('rollout', 'web', '--version', 'v2', '--watch')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^\[ +0\.\ds\] rollout web-2-[0-9a-f]{6}: pool web, revision 1 \(v1\) -> revision 2 \(v2\), 2 instance\(s\)$/)
    for (const step of [/web-2-\w+ \(v2\): starting$/, /web-2-\w+ \(v2\): serving$/, /web-1-\w+ \(v1\): draining$/, /web-1-\w+ \(v1\): stopped$/, /\] succeeded$/]) {
      expect(lines.some(l => step.test(l)), String(step)).toBe(true)
    }
    // Step lines, then what the users saw (the report summary), then the verdict.
    const summary = lines.findIndex(l => l.startsWith('users saw: '))
    expect(summary).toBeGreaterThan(0)
    for (const l of lines.slice(0, summary)) expect(l).toMatch(/^\[ *\d+\.\ds\] /)
    expect(lines.at(-1)).toMatch(/^rollout web-2-\w+ succeeded in \d+\.\ds: pool web runs revision 2 \(v2\) on 2 instance\(s\)$/)
    await api.waitPool('web', settledOn('v2'))
  })


  it('rollout --watch draws a progress bar when forced to (--tty)', async () => {
    const r = await cli('rollout', 'web', '--version', 'v3', '--watch', '--tty', '--max-surge', '2')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^web \[-{30}\] 0\/2 updated \| batch [-1] \| running \| \d+s$/m)
    expect(r.stdout).toMatch(/^web \[={30}\] 2\/2 updated \| batch 1 \| succeeded \| \d+s$/m)
    expect(r.stdout).not.toMatch(/\(v3\): starting/) // no plain step lines with the bar
    expect(r.stdout.split('\n').at(-1)).toMatch(/^rollout web-3-\w+ succeeded in/)
    await api.waitPool('web', settledOn('v3'))
  })


  it('rollback rolls back to the previous revision; with --watch it follows it to the end', async () => {
    // BATON_FORCE_TTY=1 forces the bar like --tty.
    const r = await runCli(['rollback', 'web', '--watch'], { env: { ...env, BATON_FORCE_TTY: '1' } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^rollout web-2-\w+: pool web, revision 3 \(v3\) -> revision 2 \(v2\), 2 instance\(s\)$/m)
    expect(r.stdout).toMatch(/\] 2\/2 updated \| batch \d \| succeeded \|/)
    expect(r.stdout.split('\n').at(-1)).toMatch(/^rollout web-2-\w+ succeeded in .*: pool web runs revision 2 \(v2\) on 2 instance\(s\)$/)
    await api.waitPool('web', settledOn('v2'))

    const plain = await cli('rollback', 'web')
    expect(plain.code, plain.stderr).toBe(0)
    expect(plain.stdout).toMatch(/^rollout web-3-\w+ started: pool web, revision 2 \(v2\) -> revision 3 \(v3\), 2 instance\(s\)$/)
    const id = plain.stdout.split(' ')[1]
    expect((await api.waitRollout(id, finished)).status).toBe('succeeded')
    await api.waitPool('web', settledOn('v3'))

    const bad = await cli('rollout', 'web', '--max-surge', 'abc')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toBe('baton: rollout refused (400): bad request body: strategy.maxSurge: expected a count or a percentage such as 25%')
  })

  it('pause, resume and abort a watched rollout: the watch follows and exits 1 on the abort', async () => {
    const watch = startProc(process.execPath, [CLI, 'rollout', 'web', '--version', 'v4', '--env', 'READY_DELAY=2000', '--watch'], { cwd: ROOT, env: { ...process.env, ...env } })
    const first = present((await watch.waitLine(l => l.text?.includes('rollout web-4-') === true, 15_000)).text, 'the first line')
    const m = /^\[ +\d+\.\ds\] rollout (web-4-[0-9a-f]{6}): pool web, revision 3 \(v3\) -> revision 4 \(v4\), 2 instance\(s\)$/.exec(first)
    expect(m, first).not.toBeNull()
    const id = m![1]

    const second = await cli('rollout', 'web', '--version', 'v5')
    expect(second.code).toBe(1)
    expect(second.stdout).toBe('')
    expect(second.stderr).toBe(`baton: rollout refused (409): a rollout (${id}) is already running in pool "web"`)

    const pause = await cli('pause', 'web')
    expect(pause.code, pause.stderr).toBe(0)
    expect(pause.stdout).toMatch(new RegExp(`^rollout ${id} paused \\(\\d/2 updated\\)$`))
    const status = await cli('status', 'web')
    expect(status.stdout.split('\n').find(l => l.startsWith('web:'))).toMatch(new RegExp(`^web: revision 4 \\(v4\\), \\d of 2 serving, rollout ${id} paused \\(\\d/2 updated, revision 3 \\(v3\\) -> revision 4 \\(v4\\)\\)$`))

    const resume = await cli('resume', 'web')
    expect(resume.code, resume.stderr).toBe(0)
    expect(resume.stdout).toMatch(new RegExp(`^rollout ${id} resumed`))
    expect((await api.get(`/v1/rollouts/${id}`)).body.status).toBe('running')

    const abort = await cli('abort', 'web')
    expect(abort.code, abort.stderr).toBe(0)
    expect(abort.stdout).toBe(`rollout ${id} aborted: rolling back to revision 3 (v3)`)
    expect(await watch.exited).toBe(1)
    for (const step of ['] paused', '] resumed', '] aborted: rolling back to revision 3 (v3)', '] aborted; the old revision serves at full size']) {
      expect(watch.lines.some(l => l.includes(step)), step).toBe(true)
    }
    expect(watch.stderr).toHaveLength(1)
    expect(watch.stderr[0]).toMatch(new RegExp(`^baton: rollout ${id} aborted after \\d+\\.\\ds; pool web runs revision 3 \\(v3\\) again$`))
    expect((await api.waitRollout(id, finished)).status).toBe('aborted')
    await api.waitPool('web', settledOn('v3'))

    const late = await cli('resume', 'web')
    expect(late.code).toBe(1)
    expect(late.stderr).toBe('baton: resume refused: no rollout is running in pool "web"')
  })


  it('rollout --watch exits 1 when the new version never gets ready and is rolled back', async () => {
    const r = await cli('rollout', 'web', '--version', 'v5', '--env', 'NEVER_READY=1', '--watch')
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/web-5-\w+ \(v5\): failed \(not ready within startTimeout \(4000 ms\)\)/)
    expect(r.stdout).toContain('rolling back to revision 3 (v3)')
    expect(r.stderr.split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/^baton: rollout web-5-\w+ rolled back after \d+\.\ds: instance web-5-\w+ of v5: not ready within startTimeout \(4000 ms\); pool web runs revision 3 \(v3\) again$/)
    const pool = await api.waitPool('web', settledOn('v3'))
    expect(pool).toMatchObject({ revision: 3, version: 'v3' })
  })

  it('rollout without --watch says what started and leaves it running', async () => {
    const r = await cli('rollout', 'web', '--version', 'v6', '--max-unavailable', '1', '--max-surge', '0')
    expect(r.code, r.stderr).toBe(0)
    const m = /^rollout (web-6-[0-9a-f]{6}) started: pool web, revision 3 \(v3\) -> revision 6 \(v6\), 2 instance\(s\)$/.exec(r.stdout)
    expect(m, r.stdout).not.toBeNull()
    expect((await api.waitRollout(m![1], finished)).status).toBe('succeeded')
    await api.waitPool('web', settledOn('v6'))
  })
})
