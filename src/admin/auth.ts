import { createHash, timingSafeEqual } from 'node:crypto'

const SCHEME = 'Bearer '

/**
 * Compares a bearer token in constant time. Both sides are hashed first so
 * that neither the length nor a prefix of the token leaks through timing.
 */
export function tokenMatches (header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith(SCHEME)) return false
  const given = createHash('sha256').update(header.slice(SCHEME.length)).digest()
  const wanted = createHash('sha256').update(token).digest()
  return timingSafeEqual(given, wanted)
}
