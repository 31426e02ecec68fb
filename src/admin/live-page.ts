import { readdirSync, readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AdminServer } from './server.js'

/**
 * The live page (README "The live page"): `GET /` and its own files under `/page/`, served
 * without a token because they hold no pool data; every call the page makes
 * for data goes through the token-checked API. The files are the ones in
 * src/admin/page, copied next to this module by `npm run build`.
 */

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url))

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}

/**
 * Self only: no inline script or style, no other host. `blob:` images are
 * the rollout reports, fetched with the token and shown from memory (an
 * <img src> cannot send an Authorization header).
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

const PAGE_HEADERS = {
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // The files are small and change with baton itself: never serve a stale one.
  'cache-control': 'no-store'
}

interface PageFile { type: string, body: Buffer }

/** Reads the page's files once; a build without them gets a page that says so instead of a crash. */
function loadFiles (dir: string): Map<string, PageFile> {
  const files = new Map<string, PageFile>()
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return files
  }
  for (const name of names) {
    const type = TYPES[extname(name)]
    if (type !== undefined) files.set(name, { type, body: readFileSync(dir + name) })
  }
  return files
}

function send (res: ServerResponse, status: number, type: string, body: Buffer | string): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * Registers `GET /` and `GET /page/FILE`. `tokenRequired` is asked on every
 * load of the page, so that a reload that sets or clears `admin.token` shows.
 */
export function registerLivePage (admin: AdminServer, tokenRequired: () => boolean, dir = PAGE_DIR): void {
  const files = loadFiles(dir)
  admin.onOpen('GET', '/', (_req, res) => {
    const index = files.get('index.html')
    if (index === undefined) {
      send(res, 500, 'text/plain; charset=utf-8', `the live page's files are missing from ${dir}: run npm run build\n`)
      return
    }
    // The page asks for the token before its first call rather than after a 401.
    const html = index.body.toString('utf8').replace('data-auth=""', `data-auth="${tokenRequired() ? 'token' : 'none'}"`)
    send(res, 200, index.type, html)
  })
  admin.onOpen('GET', '/page/:file', (_req, res, [name]) => {
    const file = name === 'index.html' ? undefined : files.get(name)
    if (file === undefined) {
      send(res, 404, 'application/json', JSON.stringify({ error: `no such page file: ${name}` }))
      return
    }
    send(res, 200, file.type, file.body)
  })
}
