import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

/** Debian's chromium (`.ci/run` installs it when missing). */
export const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium'

/**
 * Why the browser tests cannot run here, or undefined when they can. In CI
 * (CI set) they always run: a missing browser there is a failure, not a skip.
 */
export function browserMissing (): string | undefined {
  const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
  if (existsSync(CHROMIUM) || ci) return undefined
  return `${CHROMIUM} is missing (apt-get install chromium, or set BATON_CHROMIUM): the live page's browser tests are skipped`
}

/** A private, quiet browser: no first-run, sync, component updates or background calls of its own. */
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

export interface RecordedRequest { url: string, method: string, authorization: string | undefined }

export interface Browser {
  context: BrowserContext
  page: Page
  /** Every request any page of the context made, in order. */
  requests: RecordedRequest[]
  /** Console errors, uncaught page errors and CSP violations, in order. */
  problems: string[]
  close: () => Promise<void>
}

/**
 * Starts headless chromium with a fresh profile, one page, and a recorder on
 * every request: one for `origin` goes on, any other is recorded and
 * refused, so a test can assert that none was ever made.
 */
export async function openBrowser (origin: string, viewport = { width: 1280, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'baton-chromium-'))
  // Playwright passes the profile as --user-data-dir, with its own automation flags.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport
  })
  const requests: RecordedRequest[] = []
  const problems: string[] = []
  await context.route('**/*', async route => {
    const r = route.request()
    requests.push({ url: r.url(), method: r.method(), authorization: (await r.allHeaders()).authorization })
    if (new URL(r.url()).origin === origin) await route.continue()
    else await route.abort('blockedbyclient')
  })
  const page = context.pages()[0] ?? await context.newPage()
  page.on('console', m => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
  page.on('pageerror', e => problems.push(`page error: ${e.message}`))
  return {
    context,
    page,
    requests,
    problems,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}
