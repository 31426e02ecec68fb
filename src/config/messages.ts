import type { z } from 'zod'

// Operator-facing wording for zod issues: `expected a number, got the string
// "8080"` rather than `Invalid input: expected number, received string`.

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a map (key: value)',
  record: 'a map (key: value)',
  array: 'a list',
  tuple: 'a list'
}

/** How a YAML value looks to the operator, for "got ..." */
export function describeValue (v: unknown): string {
  if (v === null) return 'an empty value'
  if (typeof v === 'string') return v === '' ? 'an empty string' : `the string "${v.length > 40 ? v.slice(0, 40) + '…' : v}"`
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a map'
  return String(v)
}

function plural (n: number | bigint, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`
}

/** Fallback messages for issues whose schema did not word its own. */
export const friendlyErrors: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}`
    case 'too_small': {
      const min = iss.minimum as number
      if (iss.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${plural(min, 'character')}`
      if (iss.origin === 'array' || iss.origin === 'set') return `needs at least ${plural(min, 'item')}`
      return iss.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`
    }
    case 'too_big': {
      const max = iss.maximum as number
      if (iss.origin === 'string') return `must be at most ${plural(max, 'character')}`
      if (iss.origin === 'array' || iss.origin === 'set') return `takes at most ${plural(max, 'item')}`
      return iss.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`
    }
    case 'invalid_value':
      return `expected ${iss.values.length === 1 ? '' : 'one of '}${iss.values.map(v => String(v)).join(', ')}`
    case 'invalid_format':
      if (iss.format === 'starts_with') return `must start with ${String((iss as { prefix?: string }).prefix)}`
      return 'is not in the expected format'
    case 'invalid_union':
      return 'is not any of the accepted forms'
    case 'invalid_key':
      return 'is not a valid key'
    default:
      return undefined
  }
}

/**
 * The final message of an issue, given the value found at its path:
 * a missing value "is required", a value of the wrong type says what it was.
 */
export function issueMessage (issue: z.core.$ZodIssue, present: boolean, value: unknown): string {
  let message = issue.message
  if (issue.code === 'invalid_key' && issue.issues.length > 0) message = issue.issues[0].message
  const typeProblem = issue.code === 'invalid_type' || issue.code === 'invalid_union'
  if (typeProblem && !present) return message.startsWith('expected') ? `is required (${message})` : 'is required'
  if (typeProblem && !message.includes(', got ')) return `${message}, got ${describeValue(value)}`
  return message
}
