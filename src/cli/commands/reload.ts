import type { Command } from 'commander'
import { AdminClient, withAdminOption, type ClientOptions } from '../client.js'

interface ReloadAnswer { changes?: string[], rollouts?: string[], warnings?: string[] }

export function registerReload (program: Command): void {
  withAdminOption(program.command('reload')
    .description('ask the running baton to re-read its config file (like SIGHUP); changed pools are rolled out')
    .option('--json', 'print the admin API\'s JSON as it is'))
    .action(async (opts: ClientOptions & { json?: boolean }) => {
      const client = new AdminClient(opts)
      const answer = await client.call<unknown>('reload', 'POST', '/v1/reload')
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(answer ?? {}, null, 2) + '\n')
        return
      }
      const changes = Array.isArray((answer as ReloadAnswer)?.changes) ? (answer as ReloadAnswer).changes as string[] : []
      process.stdout.write(changes.length === 0 ? 'config reloaded: nothing changed\n' : 'config reloaded:\n')
      for (const c of changes) process.stdout.write(`  ${c}\n`)
      const warnings = (answer as ReloadAnswer)?.warnings
      if (Array.isArray(warnings)) for (const w of warnings) process.stdout.write(`${String(w)}\n`)
    })
}
