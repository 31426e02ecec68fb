#!/usr/bin/env -S node --max-semi-space-size=8
import { existsSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { ConfigError, formatProblem, formatWarning } from '../config/errors.js'
import { log, setLogFields } from '../log.js'
import { CliError } from './errors.js'
import { registerControl } from './commands/control.js'
import { registerReload } from './commands/reload.js'
import { registerReport } from './commands/report.js'
import { registerRollout } from './commands/rollout.js'
import { registerStatus } from './commands/status.js'
import { registerUpgrade } from './commands/upgrade.js'

/**
 * The proxy and the config loader load only for `start` and `check`, so that
 * the client commands start in a fraction of the time.
 */
async function server () {
  return { ...await import('../supervisor/supervisor.js'), ...await import('../config/load.js'), ...await import('../config/workers.js') }
}

/** `./baton.yaml`, else `config/baton.yaml` (README "Command line"). */
function defaultConfigFile (): string {
  return existsSync('baton.yaml') ? 'baton.yaml' : 'config/baton.yaml'
}

/** One clear line on stderr and a non-zero exit: never a stack trace. */
function fail (message: string, code = 1): never {
  process.stderr.write(`baton: ${message}\n`)
  process.exit(code)
}

const program = new Command()
program
  .name('baton')
  .description('Edge reverse proxy and load balancer with zero-downtime rolling upgrades')
  .showHelpAfterError()
  .exitOverride()

program.command('check')
  .description('validate a config file (like nginx -t): prints ok, or every error as FILE:LINE:COL key: message; warnings (an expired certificate) are printed and do not fail it')
  .option('-c, --config <file>', 'config file (default ./baton.yaml, else config/baton.yaml)')
  .action(async (opts: { config?: string }) => {
    const { loadConfigFile } = await server()
    const file = opts.config ?? defaultConfigFile()
    let warnings
    try {
      warnings = loadConfigFile(file).warnings
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const p of err.problems) process.stdout.write(formatProblem(p) + '\n')
      process.exit(1)
    }
    for (const w of warnings) process.stdout.write(formatWarning(w) + '\n')
    process.stdout.write('ok\n')
  })

program.command('start')
  .description('run the proxy, the admin API and the orchestrator in the foreground (the supervisor of baton\'s processes)')
  .option('-c, --config <file>', 'config file (default ./baton.yaml, else config/baton.yaml)')
  .action(async (opts: { config?: string }) => {
    const { Supervisor, isLoopback, loadConfigFile, workerCount } = await server()
    const file = opts.config ?? defaultConfigFile()
    let config
    try {
      config = loadConfigFile(file)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      for (const p of err.problems) process.stderr.write(formatProblem(p) + '\n')
      fail(`${file} has ${err.problems.length} error(s); nothing was started`)
    }
    for (const w of config.warnings) log('warn', 'config warning', { warning: formatWarning(w) })
    if (!isLoopback(config.admin.host) && config.admin.token === undefined) {
      fail('the admin API listens off loopback without admin.token; refusing to start')
    }
    setLogFields({ proc: 'supervisor' })
    const baton = new Supervisor(config, workerCount(config))
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log('info', 'signal received', { signal })
      baton.stop().then(() => process.exit(0), (err: Error) => {
        log('error', 'stop failed', { error: err.message })
        process.exit(1)
      })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    // SIGHUP re-reads the config, like nginx -s reload: the controller does it; a bad file changes nothing.
    process.on('SIGHUP', () => baton.reload())
    // SIGUSR2 upgrades baton itself, like nginx's binary upgrade (README "Upgrading baton").
    process.on('SIGUSR2', () => baton.upgrade())
    try {
      await baton.start()
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      log('error', 'start failed', { error: e.message, code: e.code })
      await baton.stop().catch(() => undefined)
      fail(`could not start: ${e.message}`)
    }
  })

// Client commands of the admin API (README "Command line"), one module each.
registerRollout(program)
registerStatus(program)
registerControl(program)
registerReload(program)
registerReport(program)
registerUpgrade(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  fail(err instanceof Error ? err.message : String(err), err instanceof CliError ? err.exitCode : 1)
}
