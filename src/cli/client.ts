import type { Command } from 'commander'
import { CliError } from './errors.js'
import { SseParser, type SseMessage } from './sse.js'

export { CliError } from './errors.js'

export const DEFAULT_ADMIN = 'http://127.0.0.1:9901'
/** A call that gets no answer in this long fails (a rollout is answered at once: it runs on its own). */
const CALL_TIMEOUT_MS = 15_000
/** At most this much of a non-JSON refusal is quoted. */
const QUOTED_CHARS = 200

export interface ClientOptions { admin?: string }

/** Adds `--admin URL` to a client command. */
export function withAdminOption (cmd: Command): Command {
  return cmd.option('--admin <url>', `admin API address (env BATON_ADMIN, default ${DEFAULT_ADMIN})`)
}

/** Why a fetch failed at the network level, in words an operator reads. */
function networkReason (err: unknown): string {
  const e = err as { name?: string, message?: string, cause?: { code?: string, message?: string } }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'no answer in time'
  const code = e.cause?.code
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused (is baton running? see --admin or BATON_ADMIN)'
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'unknown host'
    case 'ECONNRESET': case 'UND_ERR_SOCKET': return 'the connection was reset'
    case 'ETIMEDOUT': case 'UND_ERR_CONNECT_TIMEOUT': return 'the connection timed out'
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host unreachable'
    default: return (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]
  }
}

/**
 * The admin API client of the CLI: `--admin URL`, else `BATON_ADMIN`, else
 * the default; `BATON_ADMIN_TOKEN` as a bearer token when it is set. Every
 * failure becomes a CliError of one line naming what was refused and why.
 */
export class AdminClient {
  readonly base: URL
  private readonly token: string | undefined

  constructor (opts: ClientOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    const raw = opts.admin ?? (env.BATON_ADMIN !== undefined && env.BATON_ADMIN !== '' ? env.BATON_ADMIN : DEFAULT_ADMIN)
    let base: URL
    try {
      base = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`)
    } catch {
      throw new CliError('BATON_ERR_CLI_ADMIN_ADDRESS', `"${raw}" is not an admin API address (expected e.g. ${DEFAULT_ADMIN})`)
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError('BATON_ERR_CLI_ADMIN_ADDRESS', `"${raw}" is not an http(s) address`)
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    this.base = base
    const token = env.BATON_ADMIN_TOKEN
    this.token = token === undefined || token === '' ? undefined : token
  }

  /** The admin API address as the user knows it (no trailing slash). */
  get where (): string { return this.base.href.replace(/\/$/, '') }

  url (path: string): URL { return new URL(path.replace(/^\//, ''), this.base) }

  private headers (extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }), ...extra }
  }

  /**
   * One call; resolves with the parsed JSON answer of a 2xx, typed as the
   * caller reads it (src/cli/views.ts). `what` names the action in errors:
   * `baton: WHAT refused (409): <the server's error>`.
   */
  async call<T> (what: string, method: string, path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const text = await this.request(what, method, path, body, timeoutMs)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new CliError('BATON_ERR_CLI_BAD_ANSWER', `${what}: the admin API at ${this.where} did not answer JSON`)
    }
  }

  /** A GET whose 2xx answer is text (the report's SVG), with the same timeout and errors as `call`. */
  async text (what: string, path: string, timeoutMs = CALL_TIMEOUT_MS): Promise<string> {
    return await this.request(what, 'GET', path, undefined, timeoutMs)
  }

  /** The answer's text of a 2xx; every other outcome becomes a CliError of one line. */
  private async request (what: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<string> {
    let res: Response
    try {
      res = await fetch(this.url(path), {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      throw new CliError('BATON_ERR_CLI_UNREACHABLE', `cannot reach the admin API at ${this.where}: ${networkReason(err)}`)
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new CliError('BATON_ERR_CLI_UNREACHABLE', `${what}: the admin API at ${this.where} broke off its answer: ${networkReason(err)}`)
    }
    if (res.ok) return text
    const answer = refusalOf(text)
    const reason = answer.error ?? (text.trim().split('\n')[0].slice(0, QUOTED_CHARS) || res.statusText || 'no reason given')
    const details = answer.problems.length > 0 ? `: ${answer.problems.join('; ')}` : ''
    const hint = res.status === 401 ? (this.token === undefined ? ' (set BATON_ADMIN_TOKEN)' : ' (check BATON_ADMIN_TOKEN)') : ''
    const failed = res.status >= 500
    throw new CliError(failed ? 'BATON_ERR_CLI_SERVER' : 'BATON_ERR_CLI_REFUSED',
      `${what} ${failed ? 'failed' : 'refused'} (${res.status}): ${reason}${details}${hint}`, answer.code)
  }

  /**
   * Opens GET /v1/events; resolves once the stream is open (so nothing that
   * happens after is missed) with the messages as they come. The iterator
   * ends when the stream does or `signal` aborts.
   */
  async events (signal: AbortSignal): Promise<AsyncIterable<SseMessage>> {
    let res: Response
    try {
      res = await fetch(this.url('/v1/events'), { headers: this.headers({ accept: 'text/event-stream' }), signal })
    } catch (err) {
      throw new CliError('BATON_ERR_CLI_UNREACHABLE', `cannot reach the admin API at ${this.where}: ${networkReason(err)}`)
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => undefined)
      throw new CliError(res.status >= 500 ? 'BATON_ERR_CLI_SERVER' : 'BATON_ERR_CLI_REFUSED', `events refused (${res.status})`)
    }
    const body = res.body
    return {
      async * [Symbol.asyncIterator] () {
        const parser = new SseParser()
        const decoder = new TextDecoder()
        try {
          for await (const chunk of body) yield * parser.push(decoder.decode(chunk, { stream: true }))
        } catch (err) {
          if (!signal.aborted) throw err
        }
        yield * parser.end()
      }
    }
  }
}

/** The admin API's error body, `{"error", "code", "problems"?}`, as far as it is one. */
function refusalOf (text: string): { error?: string, code?: string, problems: string[] } {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { problems: [] }
  }
  if (parsed === null || typeof parsed !== 'object') return { problems: [] }
  const o = parsed as Record<string, unknown>
  return {
    error: typeof o.error === 'string' ? o.error : undefined,
    code: typeof o.code === 'string' ? o.code : undefined,
    problems: Array.isArray(o.problems) ? o.problems.map(String) : []
  }
}
