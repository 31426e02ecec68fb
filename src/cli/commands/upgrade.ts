import type { Command } from 'commander'
import type { UpgradeEvent, UpgradeStarted, UpgradeStatus } from '../../supervisor/protocol.js'
import { AdminClient, CliError, withAdminOption, type ClientOptions } from '../client.js'
import type { SseMessage } from '../sse.js'

/** POST /v1/upgrade runs `baton check` of the installed code before it answers. */
const POST_TIMEOUT_MS = 90_000
/** Once the event stream has ended (the old controller retired), GET /v1/upgrade this often. */
const POLL_MS = 200
/** Beyond upgrade.timeout and upgrade.drainTimeout, the upgrade gets this long before the CLI gives up waiting. */
const MARGIN_MS = 30_000

interface HealthView { version?: string, generation?: number, pid?: number }

type Outcome = { phase: 'done' | 'failed', event: UpgradeEvent } | undefined

/**
 * `baton upgrade` (README "Upgrading baton"): asks the running baton to start
 * a new generation from the code installed on disk, follows its progress on
 * GET /v1/events and exits 0 once the new generation serves alone, or 1 with
 * the reason when the upgrade was refused or failed (the old generation then
 * serves on, untouched).
 */
export function registerUpgrade (program: Command): void {
  withAdminOption(program.command('upgrade')
    .description('upgrade baton itself to the code installed on disk, with no failed request (like SIGUSR2 to `baton start`)'))
    .action(async (opts: ClientOptions) => {
      const client = new AdminClient(opts)
      const t0 = Date.now()
      const out = (line: string): void => { process.stdout.write(line + '\n') }
      // Each step once, with the time since the command began.
      const shown = new Set<string>()
      const step = (e: UpgradeEvent): void => {
        if (shown.has(e.phase)) return
        shown.add(e.phase)
        out(`  ${((Date.now() - t0) / 1000).toFixed(1)}s ${e.message}`)
      }
      const abort = new AbortController()
      // The stream first, so that no event of this upgrade is missed.
      const events = await client.events(abort.signal)
      let started: UpgradeStarted
      try {
        started = await client.call<UpgradeStarted>('upgrade', 'POST', '/v1/upgrade', undefined, POST_TIMEOUT_MS)
      } catch (err) {
        abort.abort()
        throw err
      }
      out(`upgrading baton: generation ${started.from} → ${started.to}`)
      const until = Date.now() + started.timeoutMs + started.drainTimeoutMs + MARGIN_MS
      const timer = setTimeout(() => abort.abort(), until - Date.now())
      let outcome: Outcome
      try {
        outcome = await follow(events, started, step)
      } catch {
        // The stream broke off (the controller serving it retired): the status tells the rest.
      } finally {
        abort.abort()
        clearTimeout(timer)
      }
      outcome ??= await poll(client, started, until, step)
      if (outcome === undefined) {
        throw new CliError('BATON_ERR_CLI_LOST', `upgrade ${started.id} did not end in time; see GET /v1/upgrade and baton's log`)
      }
      if (outcome.phase === 'failed') {
        throw new CliError('BATON_ERR_CLI_UPGRADE_FAILED', `upgrade failed: ${outcome.event.reason ?? outcome.event.message}; generation ${started.from} serves on`)
      }
      const h = await client.call<HealthView>('upgrade', 'GET', '/healthz')
      out(`baton upgraded: generation ${String(h.generation)} serves (version ${String(h.version)}, controller pid ${String(h.pid)})`)
    })
}

/** Prints this upgrade's events as they come; its end, or undefined when the stream ends first. */
async function follow (events: AsyncIterable<SseMessage>, started: UpgradeStarted, step: (e: UpgradeEvent) => void): Promise<Outcome> {
  for await (const m of events) {
    if (m.event !== 'upgrade') continue
    const e = JSON.parse(m.data) as UpgradeEvent
    if (e.id !== started.id) continue
    step(e)
    if (e.phase === 'done' || e.phase === 'failed') return { phase: e.phase, event: e }
  }
  return undefined
}

/** Asks GET /v1/upgrade until this upgrade has ended, or `until`. */
async function poll (client: AdminClient, started: UpgradeStarted, until: number, step: (e: UpgradeEvent) => void): Promise<Outcome> {
  while (Date.now() < until) {
    const s = await client.call<UpgradeStatus>('upgrade', 'GET', '/v1/upgrade').catch(() => undefined)
    const last = s?.last
    if (last !== null && last !== undefined && last.id === started.id && (last.phase === 'done' || last.phase === 'failed')) {
      step(last)
      return { phase: last.phase, event: last }
    }
    const now = s?.running
    if (now !== null && now !== undefined && now.id === started.id) step(now)
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  return undefined
}
