import { InvalidArgumentError, Option, type Command } from 'commander'
import { AdminClient, withAdminOption, type ClientOptions } from '../client.js'
import { enc, revisionLabel, type RolloutView } from '../views.js'
import { report, RolloutWatcher, wantsBar } from '../watch.js'

/** What a shell reports for a command ended by SIGINT: 128 + 2. */
const EXIT_ON_SIGINT = 130

interface RolloutOptions extends ClientOptions {
  version?: string
  env?: Record<string, string>
  maxSurge?: number | string
  maxUnavailable?: number | string
  strategy?: string
  watch?: boolean
  tty?: boolean
}

/** `--env K=V`, repeatable, into one map. */
function collectEnv (value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=')
  if (eq <= 0) throw new InvalidArgumentError('expected NAME=value')
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) }
}

/** A count stays a number; anything else (25%, or a typo) goes as given and the server judges it. */
function scaled (value: string): number | string {
  return /^\d+$/.test(value) ? Number(value) : value
}

/** One line saying what started. */
export function started (v: RolloutView): string {
  return `rollout ${v.id} started: pool ${v.pool}, ${revisionLabel(v.fromRevision, v.fromVersion)} -> ${revisionLabel(v.toRevision, v.toVersion)}, ${v.total} instance(s)\n`
}

/**
 * Starts a rollout (`start` makes the call) and, with `watch`, follows it to
 * its end; the event stream opens first so that no step is missed.
 */
export async function startAndWatch (client: AdminClient, start: () => Promise<RolloutView>, watch: { tty?: boolean } | undefined): Promise<void> {
  if (watch === undefined) {
    process.stdout.write(started(await start()))
    return
  }
  const watcher = new RolloutWatcher({ client, ...wantsBar(watch) })
  const t0 = Date.now()
  let onSigint: (() => void) | undefined
  try {
    await watcher.connect()
    const v = await start()
    onSigint = () => {
      watcher.close()
      process.stderr.write(`baton: stopped watching; rollout ${v.id} goes on (baton status ${v.pool})\n`)
      process.exit(EXIT_ON_SIGINT)
    }
    process.once('SIGINT', onSigint)
    report(await watcher.follow(v), t0)
  } finally {
    if (onSigint !== undefined) process.off('SIGINT', onSigint)
    watcher.close()
  }
}

export function registerRollout (program: Command): void {
  withAdminOption(program.command('rollout')
    .description('start a rollout of a pool to a new revision (the current one with --version and --env applied)')
    .argument('<pool>', 'the pool to roll out')
    .option('--version <version>', 'version label of the new revision (default: the current one)')
    .option('--env <NAME=value>', 'environment variable of the new revision, merged over the pool\'s env (repeatable)', collectEnv)
    .option('--max-surge <n>', 'instances above size during the rollout: a count or a percentage such as 25%', scaled)
    .option('--max-unavailable <n>', 'instances below size during the rollout: a count or a percentage', scaled)
    .option('--strategy <name>', 'rolling, canary or blueGreen for this rollout (default: the pool\'s rollout.strategy)')
    .option('-w, --watch', 'follow the rollout: a progress bar on a terminal, plain lines otherwise; exit 0 on success, 1 on failure or rollback')
    .addOption(new Option('--tty', 'draw the progress bar even when stdout is not a terminal').hideHelp()))
    .action(async (pool: string, opts: RolloutOptions) => {
      const client = new AdminClient(opts)
      const strategy = {
        ...(opts.maxSurge === undefined ? {} : { maxSurge: opts.maxSurge }),
        ...(opts.maxUnavailable === undefined ? {} : { maxUnavailable: opts.maxUnavailable }),
        ...(opts.strategy === undefined ? {} : { strategy: opts.strategy })
      }
      const body = {
        ...(opts.version === undefined ? {} : { version: opts.version }),
        ...(opts.env === undefined ? {} : { env: opts.env }),
        ...(Object.keys(strategy).length === 0 ? {} : { strategy })
      }
      await startAndWatch(client, async () => await client.call<RolloutView>('rollout', 'POST', `/v1/pools/${enc(pool)}/rollouts`, body),
        opts.watch === true ? opts : undefined)
    })
}
