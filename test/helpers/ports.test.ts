import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The claims of test/helpers/ports.ts, in a folder of their own so that the
// suite's real claims are not disturbed: a block held by a live process is
// never handed out, one whose owner is gone is taken over.
const root = mkdtempSync(join(tmpdir(), 'baton-port-claims-'))
process.env.BATON_TEST_PORTS_DIR = root
const { claimPortRange } = await import('./ports.js')
const { isAlive } = await import('./pool.js')
const dir = join(root, 'baton-test-ports')

/** What a lock file says of its owner: "PID STARTTIME" (field 22 of /proc/PID/stat). */
function ownerOf (pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return `${pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`
}

describe('port range claims', () => {
  let other: ReturnType<typeof spawn>
  beforeAll(async () => {
    // Another live process, to own locks.
    other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
    await new Promise(resolve => other.once('spawn', resolve))
  })
  afterAll(() => {
    other.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })

  it('hands out distinct blocks, each under a lock naming this process', () => {
    const ranges = Array.from({ length: 20 }, () => claimPortRange(60))
    expect(new Set(ranges).size).toBe(20)
    for (const r of ranges) {
      const [from, to] = r.split('-').map(Number)
      expect(to - from).toBe(59)
      expect(from % 100).toBe(0)
      expect(from >= 20000 && to < 30000).toBe(true)
      expect(readFileSync(join(dir, `${from}.lock`), 'utf8')).toBe(ownerOf(process.pid))
    }
  })

  it('never takes a block a live process holds; takes over one whose owner is gone', async () => {
    const held = new Set(readdirSync(dir))
    // Every free block to the other live process, but one to a dead one.
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
    await new Promise(resolve => dead.once('spawn', resolve))
    const deadOwner = ownerOf(dead.pid!)
    await new Promise(resolve => dead.once('exit', resolve))
    expect(isAlive(dead.pid!)).toBe(false)
    const free = Array.from({ length: 100 }, (_, k) => `${20000 + k * 100}.lock`).filter(f => !held.has(f))
    const stale = free[Math.floor(free.length / 2)]
    for (const f of free) writeFileSync(join(dir, f), f === stale ? deadOwner : ownerOf(other.pid!))
    expect(claimPortRange(10)).toBe(`${stale.slice(0, 5)}-${Number(stale.slice(0, 5)) + 9}`)
    expect(readFileSync(join(dir, stale), 'utf8')).toBe(ownerOf(process.pid))
    expect(() => claimPortRange()).toThrow(/all 100 port blocks .* are claimed by live processes/)
    // The other process goes: its blocks are free to take.
    other.kill('SIGKILL')
    await new Promise(resolve => other.once('exit', resolve))
    expect(free).toContain(`${claimPortRange().split('-')[0]}.lock`)
  })
})
