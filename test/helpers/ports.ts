import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Port ranges for managed pools in tests, claimed so that two copies of the
 * suite on one machine (two CI jobs, `npm run test:busy`) never share one.
 *
 * Ranges are blocks of 100 in 20000-29999: below Linux's ephemeral range
 * (32768-60999 by default), so neither the outgoing connections of load
 * generators and proxies nor a listener on port 0 can sit on them, and apart
 * from the random ranges older test code drew (30000-52999). A block is claimed by creating
 * `<tmp>/baton-test-ports/<base>.lock` with O_EXCL; the file names the owning
 * process (pid and its start time, since pids get reused). It is removed
 * when the test file is done (test/helpers/setup.ts: vitest ends its workers
 * without running their exit handlers) or the process exits, and a lock whose
 * owner is gone (killed, say) is stale and taken over.
 * Listeners and admin keep port 0 (ports from the OS).
 */
const FIRST = 20000
const BLOCK = 100
const BLOCKS = 100

const mine = new Map<string, string>()
let hooked = false

/** `n` consecutive ports (at most 100) that no other process of any test run holds: "FROM-TO". */
export function claimPortRange (n = 60): string {
  if (n < 1 || n > BLOCK) throw new Error(`a claimed port range has 1 to ${BLOCK} ports, not ${n}`)
  const dir = join(process.env.BATON_TEST_PORTS_DIR ?? tmpdir(), 'baton-test-ports')
  mkdirSync(dir, { recursive: true })
  if (!hooked) {
    hooked = true
    process.on('exit', releasePortRanges)
  }
  const me = owner(process.pid)
  if (me === undefined) throw new Error('cannot read /proc/self/stat to claim a port range')
  // Start at a random block: two copies starting together mostly miss each other.
  const start = Math.floor(Math.random() * BLOCKS)
  for (let k = 0; k < BLOCKS; k++) {
    const base = FIRST + ((start + k) % BLOCKS) * BLOCK
    const file = join(dir, `${base}.lock`)
    if (tryCreate(file, me) || (takeOverStale(file) && tryCreate(file, me))) {
      mine.set(file, me)
      return `${base}-${base + n - 1}`
    }
  }
  throw new Error(`all ${BLOCKS} port blocks in ${dir} are claimed by live processes`)
}

function tryCreate (file: string, content: string): boolean {
  let fd: number
  try {
    fd = openSync(file, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try { writeSync(fd, content) } finally { closeSync(fd) }
  return true
}

/**
 * Moves a lock whose owner is gone out of the way (rename is atomic: of two
 * processes that both found it stale, one moves it). A lock just created and
 * not yet written reads empty and is left alone.
 */
function takeOverStale (file: string): boolean {
  const content = read(file)
  if (content === undefined || alive(content)) return false
  // Empty: being written right now, or its writer died between open and write.
  if (content === '' && Date.now() - mtime(file) < 10_000) return false
  const aside = `${file}.stale.${process.pid}`
  try { renameSync(file, aside) } catch { return false }
  // Between our read and the rename another process may have taken the stale
  // lock over and written its own: then that one is live and goes back.
  const moved = read(aside)
  if (moved !== undefined && moved !== content && alive(moved)) {
    // link, not rename: it must not replace a lock a third process made meanwhile.
    try { linkSync(aside, file) } catch { /* that one holds it now */ }
    try { unlinkSync(aside) } catch { /* gone */ }
    return false
  }
  try { unlinkSync(aside) } catch { /* gone */ }
  return true
}

let deadBlock: { next: number, to: number } | undefined

/**
 * A port nothing listens on and nothing will while this process lives (a
 * server there refuses connections): from a block claimed for the purpose,
 * which no other test process and no port-0 bind gets. A port merely freed
 * by the OS could be handed to any other process's port-0 listener.
 */
export async function deadPort (): Promise<number> {
  for (let k = 0; k < 2 * BLOCK; k++) {
    if (deadBlock === undefined || deadBlock.next > deadBlock.to) {
      const [from, to] = claimPortRange(BLOCK).split('-').map(Number)
      deadBlock = { next: from, to }
    }
    const port = deadBlock.next++
    if (await nothingListens(port)) return port
  }
  throw new Error('no dead port found in two claimed blocks')
}

async function nothingListens (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** Gives back every range this process claimed. */
export function releasePortRanges (): void {
  for (const [file, me] of mine) {
    if (read(file) === me) { try { unlinkSync(file) } catch { /* gone */ } }
  }
  mine.clear()
  deadBlock = undefined
}

function mtime (file: string): number {
  try { return statSync(file).mtimeMs } catch { return Date.now() }
}

function read (file: string): string | undefined {
  try { return readFileSync(file, 'utf8') } catch { return undefined }
}

/** "PID STARTTIME": a process is the same one only if both match. */
function owner (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces) start at state; starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return `${pid} ${fields[19]}`
  } catch {
    return undefined
  }
}

function alive (content: string): boolean {
  const pid = Number(content.split(' ')[0])
  return Number.isInteger(pid) && pid > 0 && owner(pid) === content.trim()
}
