// @ts-check
/**
 * The live page (README "The live page"): asks for the admin token when baton has one,
 * then shows every pool from GET /v1/pools, refreshed once a second and at
 * once on every instance or rollout event from GET /v1/events, and each
 * pool's traffic from the stream's `traffic` events (the minutes before the
 * page was opened from GET /v1/pools/NAME/traffic). Nothing of a pool is
 * in the page before a call with the token succeeded.
 */
import { ApiError, call, imageUrl, streamEvents, token, Unauthorized } from './api.js'
import { patternDefs, SeriesStyles } from './chart.js'
import { PoolView } from './view.js'

/** @typedef {import('./view.js').PoolData} PoolData */

const POLL_MS = 1000

/** @param {string} id @returns {HTMLElement} */
const byId = id => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the page has no #${id}`)
  return el
}

const main = byId('pools')
const login = byId('login')
const loginForm = /** @type {HTMLFormElement} */ (byId('login-form'))
const tokenInput = /** @type {HTMLInputElement} */ (byId('token'))
const loginMessage = byId('login-message')
const connection = byId('connection')
const forget = byId('forget')

const styles = new SeriesStyles()
/** @type {Map<string, PoolView>} */
const views = new Map()
/** Last request count of each instance, for its rate (unknown until a second count). @type {Map<string, { requests: number, at: number, rate: number | undefined }>} */
const counters = new Map()
/** The current rollout id of each pool as last seen, to notice one starting or ending. @type {Map<string, string | null>} */
const currentRollout = new Map()

/** @type {AbortController | undefined} */
let session
let refreshing = false
let again = false
/** @type {number | undefined} */
let soon

const actions = {
  /** @param {string} id @param {string} action */
  control: async (id, action) => { await call('POST', `/v1/rollouts/${encodeURIComponent(id)}/${action}`); refreshSoon() },
  /** @param {string} pool */
  rollback: async pool => { await call('POST', `/v1/pools/${encodeURIComponent(pool)}/rollback`); refreshSoon() },
  /** @param {string} id */
  report: async id => await imageUrl(`/v1/rollouts/${encodeURIComponent(id)}/report.svg`)
}

/** @param {string} text */
function showConnection (text) { connection.textContent = text }

/** @param {string} message */
function askForToken (message) {
  stop()
  main.hidden = true
  main.replaceChildren()
  views.clear()
  counters.clear()
  currentRollout.clear()
  forget.hidden = true
  login.hidden = false
  loginMessage.textContent = message
  showConnection('waiting for the admin token')
  tokenInput.value = ''
  tokenInput.focus()
}

loginForm.addEventListener('submit', event => {
  event.preventDefault()
  const value = tokenInput.value.trim()
  if (value === '') {
    loginMessage.textContent = 'Enter the admin token.'
    tokenInput.focus()
    return
  }
  token.set(value)
  void begin()
})

forget.addEventListener('click', () => {
  token.clear()
  askForToken('The token is forgotten in this tab.')
})

/** The first call decides: pools shown, or the token asked (again). */
async function begin () {
  stop()
  session = new AbortController()
  try {
    const pools = await fetchPools()
    login.hidden = true
    loginMessage.textContent = ''
    forget.hidden = token.get() === null
    main.hidden = false
    render(pools)
    void followEvents(session.signal)
    const poll = window.setInterval(refreshSoon, POLL_MS)
    session.signal.addEventListener('abort', () => clearInterval(poll))
  } catch (err) {
    failed(err)
  }
}

function stop () {
  session?.abort()
  session = undefined
  clearTimeout(soon)
  soon = undefined
}

/** @param {unknown} err */
function failed (err) {
  if (err instanceof Unauthorized) {
    const had = token.get() !== null
    token.clear()
    askForToken(had ? 'That token was refused: check admin.token in the config, then enter it again.' : 'Enter the admin token to see the pools.')
    return
  }
  if (err instanceof DOMException && err.name === 'AbortError') return
  showConnection(`the admin API cannot be reached (${err instanceof Error ? err.message : String(err)}); retrying`)
}

/** @returns {Promise<PoolData[]>} */
async function fetchPools () {
  return /** @type {{ pools: PoolData[] }} */ (await call('GET', '/v1/pools')).pools
}

/** Asks for a refresh soon; calls that come while one runs make one more after it. */
function refreshSoon () {
  if (soon !== undefined) return
  soon = window.setTimeout(() => {
    soon = undefined
    void refresh()
  }, 50)
}

async function refresh () {
  if (refreshing) { again = true; return }
  refreshing = true
  const mine = session
  try {
    const pools = await fetchPools()
    if (mine === session && mine !== undefined) render(pools)
  } catch (err) {
    if (mine === session) failed(err)
  } finally {
    refreshing = false
    if (again) { again = false; refreshSoon() }
  }
}

/** @param {PoolData[]} pools */
function render (pools) {
  const now = performance.now()
  const names = new Set(pools.map(p => p.name))
  for (const [name, view] of views) {
    if (!names.has(name)) { view.element.remove(); views.delete(name) }
  }
  for (const pool of pools) {
    const view = viewOf(pool.name)
    /** @type {Map<string, number>} */
    const rates = new Map()
    for (const i of pool.instances) {
      const c = counters.get(i.id)
      // A rate over less than half a second says more about timers than about traffic.
      if (c === undefined) counters.set(i.id, { requests: i.requests, at: now, rate: undefined })
      else if (now - c.at >= 500) counters.set(i.id, { requests: i.requests, at: now, rate: Math.max(0, i.requests - c.requests) / ((now - c.at) / 1000) })
      const rate = counters.get(i.id)?.rate
      if (rate !== undefined) rates.set(i.id, rate)
    }
    view.update(pool, rates)
    const before = currentRollout.get(pool.name)
    currentRollout.set(pool.name, pool.rollout)
    if (before !== pool.rollout) void loadHistory(view)
    if (pool.rollout !== null) void loadRollout(view, pool.rollout)
    else if (before !== undefined && before !== null) void loadRollout(view, before)
  }
  const alive = new Set(pools.flatMap(p => p.instances.map(i => i.id)))
  for (const id of counters.keys()) if (!alive.has(id)) counters.delete(id)
}

/** @param {string} name */
function viewOf (name) {
  let view = views.get(name)
  if (view === undefined) {
    view = new PoolView(name, actions, styles)
    views.set(name, view)
    void loadTraffic(view)
    const after = [...views.keys()].sort().indexOf(name)
    main.insertBefore(view.element, main.children[after] ?? null)
  }
  return view
}

/**
 * The rollout's own record (progress, step, weight, analysis, events). A
 * finished one stays shown until the next starts, so its outcome can be read.
 * @param {PoolView} view
 * @param {string} id
 */
async function loadRollout (view, id) {
  const mine = session
  try {
    const r = await call('GET', `/v1/rollouts/${encodeURIComponent(id)}`)
    if (mine === session) view.updateRollout(r)
  } catch (err) {
    if (mine === session && !(err instanceof ApiError && err.status === 404)) failed(err)
  }
}

/** @param {PoolView} view */
async function loadTraffic (view) {
  const mine = session
  try {
    const { traffic } = await call('GET', `/v1/pools/${encodeURIComponent(view.name)}/traffic`)
    if (mine === session) view.backfill(traffic)
  } catch (err) {
    if (mine !== session) return
    view.backfill([])
    if (!(err instanceof ApiError && err.status === 404)) failed(err)
  }
}

/** @param {PoolView} view */
async function loadHistory (view) {
  const mine = session
  try {
    const { rollouts } = await call('GET', `/v1/pools/${encodeURIComponent(view.name)}/rollouts`)
    if (mine === session) view.updateHistory(rollouts)
  } catch (err) {
    if (mine === session && !(err instanceof ApiError && err.status === 404)) failed(err)
  }
}

/**
 * Follows GET /v1/events for as long as the session lasts, reconnecting
 * with a growing pause; a reconnect refreshes everything it may have missed.
 * @param {AbortSignal} signal
 */
async function followEvents (signal) {
  let pause = 500
  while (!signal.aborted) {
    try {
      await streamEvents(signal, () => {
        pause = 500
        showConnection(`live · ${location.host}`)
        refreshSoon()
      }, onEvent)
      if (!signal.aborted) showConnection('the event stream ended; reconnecting…')
    } catch (err) {
      if (signal.aborted) return
      if (err instanceof Unauthorized) { failed(err); return }
      showConnection(`the event stream broke (${err instanceof Error ? err.message : String(err)}); reconnecting…`)
    }
    await new Promise(resolve => setTimeout(resolve, pause))
    pause = Math.min(pause * 2, 5000)
  }
}

/**
 * @param {string} type
 * @param {any} e
 */
function onEvent (type, e) {
  if (type === 'traffic') {
    viewOf(e.pool).traffic(e)
    return
  }
  const view = views.get(e.pool)
  if (type === 'instance' && view !== undefined) view.instance(e.instance, e.version, e.state, undefined, undefined, e.reason)
  if (type === 'instance' || type === 'rollout') refreshSoon()
}

document.body.append(patternDefs())
if (document.body.dataset.auth === 'token' && token.get() === null) askForToken('Enter the admin token to see the pools.')
else void begin()
