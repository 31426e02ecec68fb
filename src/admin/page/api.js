// @ts-check
/**
 * The admin API as the live page uses it: same origin only, the bearer token
 * (kept in sessionStorage, so for this tab alone) on every call and never in
 * an address. The event stream is read with fetch, because EventSource
 * cannot send an Authorization header.
 */

const TOKEN_KEY = 'baton.adminToken'

/** The token in use, if any. */
export const token = {
  /** @returns {string | null} */
  get () { return sessionStorage.getItem(TOKEN_KEY) },
  /** @param {string} value */
  set (value) { sessionStorage.setItem(TOKEN_KEY, value) },
  clear () { sessionStorage.removeItem(TOKEN_KEY) }
}

/** The admin API answered 401: no token, or a wrong one. */
export class Unauthorized extends Error {
  constructor () {
    super('the admin token was refused')
    this.name = 'Unauthorized'
  }
}

/** Any other refusal, with the API's own sentence. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor (status, message) {
    super(message)
    this.name = 'ApiError'
    this.status = status
  }
}

/**
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
function headers (extra = {}) {
  const t = token.get()
  return t === null ? extra : { ...extra, authorization: `Bearer ${t}` }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {string} [accept]
 * @param {AbortSignal} [signal]
 * @returns {Promise<Response>}
 */
async function send (method, path, accept = 'application/json', signal) {
  const res = await fetch(path, { method, headers: headers({ accept }), cache: 'no-store', credentials: 'omit', redirect: 'error', signal })
  if (res.status === 401) throw new Unauthorized()
  if (!res.ok) {
    /** @type {unknown} */
    let body = null
    try { body = await res.json() } catch { /* not JSON: the status says enough */ }
    const said = body !== null && typeof body === 'object' && 'error' in body ? String(body.error) : `${method} ${path} answered ${res.status}`
    throw new ApiError(res.status, said)
  }
  return res
}

/**
 * A JSON call to the admin API.
 * @param {string} method
 * @param {string} path
 * @returns {Promise<any>}
 */
export async function call (method, path) {
  return await (await send(method, path)).json()
}

/**
 * An image from the admin API (the rollout reports), as a blob: URL for <img>.
 * @param {string} path
 * @returns {Promise<string>}
 */
export async function imageUrl (path) {
  return URL.createObjectURL(await (await send('GET', path, 'image/svg+xml')).blob())
}

/**
 * Reads GET /v1/events until it ends or `signal` aborts: `onOpen` once the
 * stream answered, then `onEvent` for every event. Resolves when the server
 * closed the stream; rejects on a network error or a refusal.
 * @param {AbortSignal} signal
 * @param {() => void} onOpen
 * @param {(type: string, data: any) => void} onEvent
 */
export async function streamEvents (signal, onOpen, onEvent) {
  const res = await send('GET', '/v1/events', 'text/event-stream', signal)
  if (res.body === null) throw new ApiError(res.status, 'the event stream has no body')
  onOpen()
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value.replace(/\r\n?/g, '\n')
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let type = 'message'
      /** @type {string[]} */
      const data = []
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        const text = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') type = text
        else if (field === 'data') data.push(text)
      }
      if (data.length === 0) continue
      let parsed
      try { parsed = JSON.parse(data.join('\n')) } catch { continue }
      onEvent(type, parsed)
    }
  }
}
