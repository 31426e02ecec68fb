/**
 * The admin API's route table: exact segment matching, no regular
 * expressions. A pattern is a path whose segments are literals or `:name`
 * parameters; a request path matches when it has as many segments, every
 * literal is equal and every parameter non-empty. Parameters are
 * percent-decoded; a path that is not valid percent-encoding is reported as
 * such (the server answers 400), not thrown.
 */

interface Segment { param: boolean, text: string }

interface Route<H> { method: string, segments: Segment[], handler: H }

export type Lookup<H> =
  | { kind: 'found', handler: H, params: string[] }
  /** The path is known, not with this method. */
  | { kind: 'method', path: string }
  | { kind: 'none' }
  | { kind: 'bad-path' }

export class Router<H> {
  private readonly routes: Array<Route<H>> = []

  add (method: string, pattern: string, handler: H): void {
    if (!pattern.startsWith('/')) throw new TypeError(`a route pattern starts with /: ${pattern}`)
    const segments = pattern.slice(1).split('/').map(s => s.startsWith(':') ? { param: true, text: s.slice(1) } : { param: false, text: s })
    this.routes.push({ method, segments, handler })
  }

  find (method: string, path: string): Lookup<H> {
    const parts = path.startsWith('/') ? path.slice(1).split('/') : undefined
    if (parts === undefined) return { kind: 'none' }
    let pathKnown = false
    for (const r of this.routes) {
      if (!matches(r.segments, parts)) continue
      pathKnown = true
      if (r.method !== method) continue
      const params: string[] = []
      for (let i = 0; i < parts.length; i++) {
        if (!r.segments[i].param) continue
        try {
          params.push(decodeURIComponent(parts[i]))
        } catch {
          return { kind: 'bad-path' }
        }
      }
      return { kind: 'found', handler: r.handler, params }
    }
    return pathKnown ? { kind: 'method', path } : { kind: 'none' }
  }
}

function matches (segments: Segment[], parts: string[]): boolean {
  if (segments.length !== parts.length) return false
  for (let i = 0; i < parts.length; i++) {
    const s = segments[i]
    if (s.param ? parts[i] === '' : parts[i] !== s.text) return false
  }
  return true
}
