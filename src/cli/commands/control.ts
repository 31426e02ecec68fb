import { Option, type Command } from 'commander'
import { AdminClient, CliError, withAdminOption, type ClientOptions } from '../client.js'
import { enc, revisionLabel, type PoolView, type RolloutView } from '../views.js'
import { startAndWatch } from './rollout.js'

const ACTIONS = {
  pause: {
    description: 'pause the current rollout of a pool: nothing more is started or stopped until resume',
    done: (v: RolloutView) => `rollout ${v.id} paused (${v.updated}/${v.total} updated)`
  },
  resume: {
    description: 'resume the paused rollout of a pool',
    done: (v: RolloutView) => `rollout ${v.id} resumed (${v.updated}/${v.total} updated)`
  },
  abort: {
    description: 'abort the current rollout of a pool and roll back to the revision it started from',
    done: (v: RolloutView) => `rollout ${v.id} aborted: rolling back to ${revisionLabel(v.fromRevision, v.fromVersion)}`
  },
  promote: {
    description: 'skip the remaining steps of a canary: the rest of the pool is replaced as a rolling update',
    done: (v: RolloutView) => `rollout ${v.id} promoted: the remaining steps are skipped (${v.updated}/${v.total} updated)`
  }
} as const

/** `pause|resume|abort POOL` act on the pool's current rollout; `rollback POOL` starts one back. */
export function registerControl (program: Command): void {
  for (const [action, a] of Object.entries(ACTIONS)) {
    withAdminOption(program.command(action)
      .description(a.description)
      .argument('<pool>', 'the pool whose rollout to ' + action))
      .action(async (name: string, opts: ClientOptions) => {
        const client = new AdminClient(opts)
        const pool = await client.call<PoolView>(action, 'GET', `/v1/pools/${enc(name)}`)
        if (pool.rollout === null) throw new CliError('BATON_ERR_CLI_NO_ROLLOUT', `${action} refused: no rollout is running in pool "${name}"`)
        const v = await client.call<RolloutView>(action, 'POST', `/v1/rollouts/${enc(pool.rollout)}/${action}`)
        process.stdout.write(a.done(v) + '\n')
      })
  }

  withAdminOption(program.command('rollback')
    .description('roll a pool back to its previous revision (a rollout of its own); during a blue-green\'s scaleDownDelay, switch back at once')
    .argument('<pool>', 'the pool to roll back')
    .option('-w, --watch', 'follow the rollback like rollout --watch')
    .addOption(new Option('--tty', 'draw the progress bar even when stdout is not a terminal').hideHelp()))
    .action(async (name: string, opts: ClientOptions & { watch?: boolean, tty?: boolean }) => {
      const client = new AdminClient(opts)
      await startAndWatch(client, async () => await client.call<RolloutView>('rollback', 'POST', `/v1/pools/${enc(name)}/rollback`),
        opts.watch === true ? opts : undefined)
    })
}
