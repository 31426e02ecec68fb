import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { RolloutReport } from '../../rollout/report.js'
import { AdminClient, CliError, withAdminOption, type ClientOptions } from '../client.js'
import { enc, type RolloutView } from '../views.js'

const ms = (s: number | null): string => s === null ? '-' : s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`

/** The few lines that say what the users saw during a rollout. */
export function summarise (r: RolloutReport): string {
  const f = r.failed
  const lines = [
    `users saw: ${r.requests} requests during the rollout, ${f.total} failed` +
      (f.total > 0 ? ` (baton 5xx ${f.baton5xx}, upstream ${f.upstreamFailed}, app 5xx ${f.app5xx})` : '') +
      `, ${r.retries} retried by baton, ${r.clientAborts} client aborts`
  ]
  for (const p of r.phases) {
    if (p.requests === 0) continue
    lines.push(`  ${p.name.padEnd(9)} ${String(p.requests).padStart(8)} req  p50 ${ms(p.p50).padStart(9)}  p99 ${ms(p.p99).padStart(9)}  max ${ms(p.max).padStart(9)}${p.failed > 0 ? `  ${p.failed} failed` : ''}`)
  }
  // Canary verdicts (an older baton's report has none).
  for (const v of r.verdicts ?? []) lines.push(`  step ${v.step} ${v.verdict}: ${v.reason}`)
  return lines.join('\n')
}

/** `baton report ID [--svg FILE] [--json]`: a rollout's report, and its picture. */
export function registerReport (program: Command): void {
  withAdminOption(program.command('report')
    .description('print what the users saw during a rollout; --svg writes its picture')
    .argument('<id>', 'the rollout id (rollout and status print it)')
    .option('--svg <file>', 'write the rollout drawn as SVG to FILE')
    .option('--json', 'print the report as JSON'))
    .action(async (id: string, opts: ClientOptions & { svg?: string, json?: boolean }) => {
      const client = new AdminClient(opts)
      const v = await client.call<RolloutView & { report: RolloutReport | null }>('report', 'GET', `/v1/rollouts/${enc(id)}`)
      if (v.report === null) throw new CliError('BATON_ERR_CLI_REPORT_GONE', `report refused: the pool of rollout ${id} is gone`)
      if (opts.json === true) process.stdout.write(JSON.stringify(v.report, null, 2) + '\n')
      else process.stdout.write(`rollout ${v.id} (${v.status})\n${summarise(v.report)}\n`)
      if (opts.svg !== undefined) {
        const svg = await client.text('report', `/v1/rollouts/${enc(id)}/report.svg`)
        try {
          writeFileSync(opts.svg, svg)
        } catch (err) {
          throw new CliError('BATON_ERR_CLI_WRITE', `cannot write ${opts.svg}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
        }
        process.stdout.write(`picture written to ${opts.svg}\n`)
      }
    })
}
