import type { Command } from 'commander'
import { SseParser, type SseMessage } from './sse.js'

export const DEFAULT_ADMIN = 'http://127.0.0.1:9901'

/**
 * A failure the CLI reports as one line on stderr (`baton: MESSAGE`) with a
 * non-zero exit code, never a stack trace.
 */
export class CliError extends Error {
  constructor (message: string, readonly exitCode = 1) {
    super(message)
    this.name = 'CliError'
  }
}

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
      throw new CliError(`"${raw}" is not an admin API address (expected e.g. ${DEFAULT_ADMIN})`)
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError(`"${raw}" is not an http(s) address`)
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
   * One call; resolves with the parsed JSON answer of a 2xx. `what` names the
   * action in errors: `baton: WHAT refused (409): <the server's error>`.
   */
  async call<T = any> (what: string, method: string, path: string, body?: unknown, timeoutMs = 15_000): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.url(path), {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      throw new CliError(`cannot reach the admin API at ${this.where}: ${networkReason(err)}`)
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new CliError(`${what}: the admin API at ${this.where} broke off its answer: ${networkReason(err)}`)
    }
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    if (!res.ok) {
      const reason = typeof (parsed as { error?: unknown })?.error === 'string'
        ? (parsed as { error: string }).error
        : (text.trim().split('\n')[0].slice(0, 200) || res.statusText || 'no reason given')
      const problems = (parsed as { problems?: unknown })?.problems
      const details = Array.isArray(problems) && problems.length > 0 ? `: ${problems.map(String).join('; ')}` : ''
      const hint = res.status === 401 ? (this.token === undefined ? ' (set BATON_ADMIN_TOKEN)' : ' (check BATON_ADMIN_TOKEN)') : ''
      throw new CliError(`${what} ${res.status >= 500 ? 'failed' : 'refused'} (${res.status}): ${reason}${details}${hint}`)
    }
    if (parsed === undefined && text !== '') throw new CliError(`${what}: the admin API at ${this.where} did not answer JSON`)
    return parsed as T
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
      throw new CliError(`cannot reach the admin API at ${this.where}: ${networkReason(err)}`)
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => undefined)
      throw new CliError(`events refused (${res.status})`)
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
