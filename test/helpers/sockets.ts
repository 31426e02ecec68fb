import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/**
 * Which process holds the server side of each TCP connection to `port`
 * (Linux /proc): client port → pid. A connection a test made from local
 * port P is served by the process whose fds include the socket of
 * 127.0.0.1:port ↔ 127.0.0.1:P. Lets a test tell which proxy worker
 * accepted which of its connections without anything in baton's answers.
 */
export function connectionOwners (port: number, pids: number[]): Map<number, number> {
  const inodeToClient = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try { text = readFileSync(file, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10) continue
      const local = Number.parseInt(f[1].split(':')[1], 16)
      const remote = Number.parseInt(f[2].split(':')[1], 16)
      // 01: ESTABLISHED
      if (local === port && f[3] === '01') inodeToClient.set(f[9], remote)
    }
  }
  const owners = new Map<number, number>()
  for (const pid of pids) {
    let fds: string[]
    try { fds = readdirSync(`/proc/${pid}/fd`) } catch { continue }
    for (const fd of fds) {
      let target: string
      try { target = readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { continue }
      const m = /^socket:\[(\d+)\]$/.exec(target)
      const client = m === null ? undefined : inodeToClient.get(m[1])
      if (client !== undefined) owners.set(client, pid)
    }
  }
  return owners
}
