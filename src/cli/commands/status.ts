import type { Command } from 'commander'
import { AdminClient, withAdminOption, type ClientOptions } from '../client.js'
import { formatUptime, table } from '../format.js'
import { enc, revisionLabel, statusWords, stepWords, type PoolView, type RolloutView } from '../views.js'

const LIVE = new Set(['starting', 'ready', 'serving', 'draining'])

/** One line per pool: its revision, how many serve, its rollout. */
function summary (p: PoolView, rollout: RolloutView | undefined): string {
  const serving = p.instances.filter(i => i.state === 'serving').length
  if (p.kind === 'static') return `${p.name}: static servers, ${serving} of ${p.instances.length} healthy\n`
  let line = `${p.name}: ${revisionLabel(p.revision, p.version)}, ${serving} of ${p.size} serving`
  if (p.crashLoop === true) line += `, crash loop (${p.restarts ?? 0} restarts)`
  if (p.rollout === null) line += ', no rollout running'
  else if (rollout === undefined) line += `, rollout ${p.rollout}`
  else {
    const steps = stepWords(rollout)
    line += `, rollout ${rollout.id} ${statusWords(rollout)} (${rollout.updated}/${rollout.total} updated, ${revisionLabel(rollout.fromRevision, rollout.fromVersion)} -> ${revisionLabel(rollout.toRevision, rollout.toVersion)}${steps === '' ? '' : `; ${rollout.strategy ?? ''} ${steps}`})`
  }
  const failures = p.instances.filter(i => i.state === 'failed' && i.failure != null).map(i => `  ${i.id} failed: ${i.failure as string}\n`)
  return line + '\n' + failures.join('')
}

export function registerStatus (program: Command): void {
  withAdminOption(program.command('status')
    .description('show pools, instances, versions, states, in-flight counts and the current rollouts')
    .argument('[pool]', 'only this pool')
    .option('--json', 'print the admin API\'s JSON as it is'))
    .action(async (name: string | undefined, opts: ClientOptions & { json?: boolean }) => {
      const client = new AdminClient(opts)
      const answer = name === undefined
        ? await client.call<{ pools: PoolView[] }>('status', 'GET', '/v1/pools')
        : await client.call<PoolView>('status', 'GET', `/v1/pools/${enc(name)}`)
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(answer, null, 2) + '\n')
        return
      }
      const pools = 'pools' in answer ? answer.pools : [answer]
      const now = Date.now()
      const rows = [['POOL', 'INSTANCE', 'VERSION', 'STATE', 'IN-FLIGHT', 'REQUESTS', 'UPTIME']]
      for (const p of pools) {
        for (const i of p.instances) {
          rows.push([p.name, i.id, i.version, i.state,
            String(i.inflight), String(i.requests), LIVE.has(i.state) ? formatUptime(now - Date.parse(i.startedAt)) : '-'])
        }
      }
      process.stdout.write(table(rows))
      for (const p of pools) {
        const rollout = p.rollout === null
          ? undefined
          : await client.call<RolloutView>('status', 'GET', `/v1/rollouts/${enc(p.rollout)}`).catch(() => undefined)
        process.stdout.write(summary(p, rollout))
      }
      // Which baton answered (README "Upgrading baton"): an upgrade of baton changes the generation.
      const h = await client.call<{ version?: string, generation?: number, pid?: number }>('status', 'GET', '/healthz').catch(() => undefined)
      if (h?.version !== undefined) process.stdout.write(`baton ${h.version}, generation ${String(h.generation)} (controller pid ${String(h.pid)})\n`)
    })
}
