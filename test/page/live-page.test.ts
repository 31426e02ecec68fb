import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { adminApi, demoPool } from '../helpers/admin.js'
import { claimPortRange } from '../helpers/ports.js'
import { ROOT, startBaton, type RunningBaton } from '../helpers/baton.js'
import { browserMissing, openBrowser, type Browser } from '../helpers/browser.js'
import { startLoad, type Load } from '../helpers/load.js'
import { adminJson, demoConfig, startRollout, waitRollout } from '../helpers/pool.js'

// SPEC §10 in a real headless chromium against a real baton: the page shows
// what /v1/pools says, follows a rollout as it happens, its buttons act
// through the API, it asks for the token and refuses a wrong one, and it
// never calls another host.

const missing = browserMissing()
if (missing !== undefined) console.warn(missing)

/** Screenshots go to docs/ with BATON_UPDATE_SCREENSHOTS=1, to a temp folder (removed after) otherwise. */
const UPDATE_SHOTS = process.env.BATON_UPDATE_SCREENSHOTS === '1'

/** The instance ids of a version in one pool's table. */
const ids = async (page: Page, pool: string, version: string): Promise<string[]> =>
  (await page.$$eval(`section[data-pool="${pool}"] tr[data-instance][data-version="${version}"]`, rows => rows.map(r => (r as HTMLElement).dataset.instance ?? ''))).sort()

/** Waits until the page's rows, pool by pool, are exactly the instance ids the API lists now. */
async function showsPools (page: Page, adminUrl: string, token?: string): Promise<void> {
  const { body } = await adminApi(adminUrl, token).get('/v1/pools')
  const want = body.pools.map(p => `${p.name}: ${p.instances.map(i => i.id).sort().join(' ')}`).sort()
  expect(want.length).toBeGreaterThan(0)
  await page.waitForFunction(w => {
    const got = [...document.querySelectorAll<HTMLElement>('section[data-pool]')].map(s =>
      `${s.dataset.pool ?? ''}: ${[...s.querySelectorAll<HTMLElement>('tr[data-instance]')].map(r => r.dataset.instance).sort().join(' ')}`).sort()
    return JSON.stringify(got) === JSON.stringify(w)
  }, want, { timeout: 15_000 })
}

function noOtherHost (b: Browser, adminUrl: string): void {
  expect(b.requests.length).toBeGreaterThan(5)
  const foreign = b.requests.filter(r => new URL(r.url).origin !== adminUrl)
  expect(foreign).toEqual([])
}

describe.skipIf(missing !== undefined)('the live page in headless chromium', () => {
  describe('without a token', () => {
    let baton: RunningBaton
    let browser: Browser | undefined
    let load: Load | undefined
    let shots: string

    beforeAll(async () => {
      shots = UPDATE_SHOTS ? join(ROOT, 'docs') : mkdtempSync(join(tmpdir(), 'baton-page-'))
      const config = demoConfig({ size: 3, readyDelayMs: 300, rollout: { minReady: '3s' } })
      config.pools.api = demoPool(claimPortRange(), { size: 1 })
      config.routes = [{ match: { host: 'api.test' }, pool: 'api' }, { match: { pathPrefix: '/' }, pool: 'web' }]
      baton = await startBaton(config)
    })
    afterEach(async () => { await browser?.close(); browser = undefined })
    afterAll(async () => {
      await load?.stop()
      if (!UPDATE_SHOTS) rmSync(shots, { recursive: true, force: true })
      expect(await baton.kill()).toBe(0)
    })

    it('shows every pool and instance, follows a rollout live, pauses it with a click, and calls no other host', async () => {
      load = startLoad(baton.url, { keepAlive: 2, maxMs: 110_000 })
      const b = browser = await openBrowser(baton.adminUrl)
      const page = b.page
      await page.goto(baton.adminUrl + '/')
      await showsPools(page, baton.adminUrl)
      // Traffic drawn from the stream: the legend names v1 once a second of it arrived.
      await page.waitForSelector('section[data-pool="web"] .legend li[data-version="v1"]', { timeout: 10_000 })
      const v1 = await ids(page, 'web', 'v1')
      expect(v1).toHaveLength(3)
      // A few seconds of history make the picture of the chart.
      await page.waitForFunction(() => document.querySelectorAll('section[data-pool="web"] .chart path.area').length > 0, undefined, { timeout: 10_000 })
      await new Promise(resolve => setTimeout(resolve, 4000))

      const r = await startRollout(baton.adminUrl, { version: 'v2' })
      const web = page.locator('section[data-pool="web"]')
      // The new version appears without a reload: its row, the rollout panel, and its traffic.
      await web.locator('tr[data-version="v2"]').first().waitFor({ timeout: 15_000 })
      await web.locator('.rollout h3', { hasText: r.id }).waitFor({ timeout: 5_000 })
      await web.locator('.legend li[data-version="v2"]').waitFor({ timeout: 15_000 })
      // The picture: once the first new instance has soaked and taken its share.
      await web.locator('.progress', { hasText: /^\s*1 of 3 instances updated/ }).waitFor({ timeout: 20_000 })
      await page.screenshot({ path: join(shots, 'page.png'), fullPage: true })

      // Pause by a click; the API says paused.
      const running = (await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body
      expect(running.status, 'the rollout ended before the pause could be tried: slow it down').toBe('running')
      await web.locator('button[data-action="pause"]').click()
      await web.locator('.notice', { hasText: 'Pause: done.' }).waitFor({ timeout: 5_000 })
      expect((await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body.status).toBe('paused')
      await web.locator('dd[data-fact="status"]', { hasText: 'paused' }).waitFor({ timeout: 5_000 })
      expect(await web.locator('button[data-action="pause"]').isDisabled()).toBe(true)

      // Resume by keyboard: focus and Enter.
      await web.locator('button[data-action="resume"]').focus()
      await page.keyboard.press('Enter')
      await web.locator('.notice', { hasText: 'Resume: done.' }).waitFor({ timeout: 5_000 })
      expect((await adminJson(baton.adminUrl, `/v1/rollouts/${r.id}`)).body.status).toMatch(/running|succeeded/)

      // The old instances leave, one by one, without a reload.
      await page.waitForFunction(() => document.querySelectorAll('section[data-pool="web"] tr[data-version="v1"]').length === 0 &&
        document.querySelectorAll('section[data-pool="web"] tr[data-version="v2"]').length === 3, undefined, { timeout: 60_000 })
      expect((await waitRollout(baton.adminUrl, r.id)).status).toBe('succeeded')
      await web.locator('dd[data-fact="status"]', { hasText: 'succeeded' }).waitFor({ timeout: 5_000 })
      await showsPools(page, baton.adminUrl)
      const v2 = await ids(page, 'web', 'v2')
      expect(v2.filter(id => v1.includes(id))).toEqual([])

      // The finished rollout is in the history, with its report picture.
      await web.locator('details.history > summary').click()
      const past = web.locator(`li[data-rollout="${r.id}"]`)
      await past.waitFor({ timeout: 5_000 })
      expect(await past.locator('summary').textContent()).toContain('succeeded')
      await past.locator('summary').click()
      await page.waitForFunction(id => {
        const img = document.querySelector<HTMLImageElement>(`li[data-rollout="${id}"] img`)
        return img !== null && img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:')
      }, r.id, { timeout: 10_000 })

      // A reload draws the minutes before it too: v1 has had no traffic since the rollout, so its area comes from GET /v1/pools/web/traffic.
      await page.reload()
      await page.waitForFunction(() => document.querySelectorAll('section[data-pool="web"] .chart path.area').length === 2, undefined, { timeout: 10_000 })

      // Phone width: nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 })
      await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, undefined, { timeout: 5_000 })
      await page.screenshot({ path: join(shots, 'page-phone.png'), fullPage: true })

      // A rolling rollout has no promote.
      expect(await web.locator('button[data-action="promote"]').isHidden()).toBe(true)

      const client = await load.stop()
      load = undefined
      expect(client.failed, client.samples.join('\n')).toBe(0)
      expect(client.sent).toBeGreaterThan(100)
      expect(b.problems).toEqual([])
      noOtherHost(b, baton.adminUrl)
    }, 150_000)

    it('renders a canary rollout\'s strategy, step, weight and analysis verdicts, and offers promote', async () => {
      // The pool view is fed a canary's resource as GET /v1/rollouts/ID gives it (test/rollout/canary.test.ts makes real ones).
      const b = browser = await openBrowser(baton.adminUrl)
      const page = b.page
      await page.goto(baton.adminUrl + '/')
      await page.locator('section[data-pool="web"]').waitFor({ timeout: 10_000 })
      // A string, so that vitest leaves its import() alone: it runs in the page.
      await page.evaluate(`(async () => {
        const { PoolView } = await import('/page/view.js')
        const { SeriesStyles } = await import('/page/chart.js')
        window.promoteCalls = []
        const view = new PoolView('canary', {
          control: async (id, action) => { window.promoteCalls.push(action + ' ' + id) },
          rollback: async () => {},
          report: async () => ''
        }, new SeriesStyles())
        document.body.append(view.element)
        view.update({ name: 'canary', version: 'v2', revision: 2, size: 4, instances: [], rollout: 'canary-2-abcdef', revisions: [{ number: 1 }, { number: 2 }] }, new Map())
        view.updateRollout({
          id: 'canary-2-abcdef', pool: 'canary', status: 'running', direction: 'forward', fromRevision: 1, toRevision: 2, fromVersion: 'v1', toVersion: 'v2',
          updated: 1, total: 4, startedAt: new Date().toISOString(), finishedAt: null, error: null, events: [],
          strategy: 'canary', step: 2, weight: 25,
          analysis: [
            { step: 1, verdict: 'pass', reason: '50 requests to v2: error rate 0% ≤ 1%', revisions: { v1: { requests: 950, errorRate: 0, p99: 0.004 }, v2: { requests: 50, errorRate: 0, p99: 0.005 } }, from: 1767225600000, to: 1767225630000 },
            { step: 2, verdict: 'fail', reason: 'error rate 2% of v2 (5 of 250 attempts) over maxErrorRate 1%', revisions: { v1: { requests: 750, errorRate: 0, p99: 0.004 }, v2: { requests: 250, errorRate: 0.02, p99: null } }, from: 1767225631000, to: 1767225691000 }
          ]
        })
      })()`)
      const canary = page.locator('section[data-pool="canary"]')
      expect(await canary.locator('dd[data-fact="strategy"]').textContent()).toBe('canary')
      expect(await canary.locator('dd[data-fact="step"]').textContent()).toBe('2')
      expect(await canary.locator('dd[data-fact="weight"]').textContent()).toBe('25% of requests to v2')
      const rows = await canary.locator('.analysis-table tbody tr').allTextContents()
      expect(rows).toHaveLength(2)
      expect(rows[0]).toContain('pass')
      expect(rows[0]).toContain('v2: 50 requests, 0.00% errors, p99 5.0 ms')
      expect(rows[1]).toContain('fail')
      expect(rows[1]).toContain('error rate 2% of v2 (5 of 250 attempts) over maxErrorRate 1%')
      expect(rows[1]).toContain('v2: 250 requests, 2.00% errors')
      expect(rows[1]).not.toContain('null')
      const promote = canary.locator('button[data-action="promote"]')
      expect(await promote.isVisible()).toBe(true)
      await promote.click()
      await canary.locator('.notice', { hasText: 'Promote: done.' }).waitFor({ timeout: 5_000 })
      expect(await page.evaluate(() => (window as unknown as { promoteCalls: string[] }).promoteCalls)).toEqual(['promote canary-2-abcdef'])
      expect(b.problems).toEqual([])
      noOtherHost(b, baton.adminUrl)
    })
  })

  describe('with admin.token set', () => {
    const TOKEN = 'page-secret-7f3a'
    let baton: RunningBaton
    let browser: Browser | undefined

    beforeAll(async () => {
      baton = await startBaton({
        listen: [{ port: 0, host: '127.0.0.1' }],
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        pools: { web: demoPool(claimPortRange(), { size: 2 }) }
      })
    })
    afterEach(async () => { await browser?.close(); browser = undefined })
    afterAll(async () => { expect(await baton.kill()).toBe(0) })

    it('asks for the token, refuses a wrong one, keeps the right one for the tab and never puts it in an address', async () => {
      const b = browser = await openBrowser(baton.adminUrl)
      const page = b.page
      await page.goto(baton.adminUrl + '/')
      await page.locator('#token').waitFor({ state: 'visible', timeout: 10_000 })
      // Nothing of a pool before the token, and no data call was even tried.
      expect(await page.locator('#pools').isHidden()).toBe(true)
      expect(await page.locator('section[data-pool]').count()).toBe(0)
      expect(b.requests.filter(r => new URL(r.url).pathname.startsWith('/v1/'))).toEqual([])
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('token')

      await page.locator('#token').fill('not-the-token')
      await page.keyboard.press('Enter')
      await page.locator('#login-message', { hasText: 'refused' }).waitFor({ timeout: 10_000 })
      expect(await page.locator('#pools').isHidden()).toBe(true)
      expect(await page.locator('section[data-pool]').count()).toBe(0)
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0)

      await page.locator('#token').fill(TOKEN)
      await page.locator('#login-form button[type="submit"]').click()
      await showsPools(page, baton.adminUrl, TOKEN)
      expect(await page.locator('#login').isHidden()).toBe(true)
      // The event stream runs with the token: traffic events arrive once a second.
      await page.locator('section[data-pool="web"] .legend li[data-series="failed"]').waitFor({ timeout: 10_000 })

      // Kept for the tab: a reload asks nothing.
      await page.reload()
      await showsPools(page, baton.adminUrl, TOKEN)
      expect(await page.locator('#login').isHidden()).toBe(true)

      // Forgetting it hides the pools and asks again.
      await page.locator('#forget').click()
      await page.locator('#token').waitFor({ state: 'visible', timeout: 5_000 })
      expect(await page.locator('section[data-pool]').count()).toBe(0)

      const data = b.requests.filter(r => new URL(r.url).pathname.startsWith('/v1/'))
      expect(data.length).toBeGreaterThan(3)
      expect(data.filter(r => r.authorization !== `Bearer ${TOKEN}`).map(r => r.authorization)).toEqual(['Bearer not-the-token'])
      expect(data.some(r => new URL(r.url).pathname === '/v1/events')).toBe(true)
      expect(b.requests.filter(r => r.url.includes(TOKEN) || r.url.includes('not-the-token'))).toEqual([])
      // The one expected complaint: the wrong token's 401.
      expect(b.problems.filter(p => !/status of 401/.test(p))).toEqual([])
      expect(b.problems.length).toBeLessThanOrEqual(1)
      noOtherHost(b, baton.adminUrl)
    }, 90_000)
  })
})
