import { describe, expect, it } from 'vitest'
import { Router } from '../../src/admin/router.js'

// The admin API's route table alone: exact segments, decoded parameters.

function table (): Router<string> {
  const r = new Router<string>()
  r.add('GET', '/healthz', 'health')
  r.add('GET', '/v1/pools', 'pools')
  r.add('GET', '/v1/pools/:name', 'pool')
  r.add('POST', '/v1/pools/:name/rollouts', 'rollout')
  r.add('GET', '/v1/rollouts/:id/report.svg', 'svg')
  r.add('POST', '/v1/rollouts/:id/pause', 'pause')
  return r
}

describe('admin router', () => {
  const r = table()

  it('matches whole paths, segment by segment, and passes parameters decoded', () => {
    expect(r.find('GET', '/healthz')).toEqual({ kind: 'found', handler: 'health', params: [] })
    expect(r.find('GET', '/v1/pools')).toEqual({ kind: 'found', handler: 'pools', params: [] })
    expect(r.find('GET', '/v1/pools/web')).toEqual({ kind: 'found', handler: 'pool', params: ['web'] })
    expect(r.find('POST', '/v1/pools/web/rollouts')).toEqual({ kind: 'found', handler: 'rollout', params: ['web'] })
    expect(r.find('GET', '/v1/pools/a%20b')).toEqual({ kind: 'found', handler: 'pool', params: ['a b'] })
    expect(r.find('GET', '/v1/pools/%E2%82%AC')).toEqual({ kind: 'found', handler: 'pool', params: ['€'] })
    // An encoded slash stays inside its segment.
    expect(r.find('GET', '/v1/pools/a%2Fb')).toEqual({ kind: 'found', handler: 'pool', params: ['a/b'] })
  })

  it('reports bad percent-encoding in a parameter as such', () => {
    for (const path of ['/v1/pools/%E0', '/v1/pools/%', '/v1/pools/%zz', '/v1/pools/%C3%28']) {
      expect(r.find('GET', path), path).toEqual({ kind: 'bad-path' })
    }
  })

  it('tells a known path with another method from an unknown path', () => {
    expect(r.find('DELETE', '/v1/pools/web')).toEqual({ kind: 'method', path: '/v1/pools/web' })
    expect(r.find('GET', '/v1/pools/web/rollouts')).toEqual({ kind: 'method', path: '/v1/pools/web/rollouts' })
    expect(r.find('GET', '/v1/nothing')).toEqual({ kind: 'none' })
  })

  it('matches no prefix, suffix, empty parameter or extra slash', () => {
    for (const path of ['/v1/pools/', '/v1/pools//rollouts', '/v1/pools/web/', '/v1', '/', '', 'v1/pools', '/v1/pools/web/rollouts/x', '//v1/pools']) {
      expect(r.find('GET', path).kind, path).not.toBe('found')
    }
  })

  it('treats every character of a literal as itself: no pattern syntax', () => {
    // A regex table built from `report.svg` would let `.` match any character.
    expect(r.find('GET', '/v1/rollouts/x/reportXsvg')).toEqual({ kind: 'none' })
    expect(r.find('GET', '/v1/rollouts/x/report.svg')).toEqual({ kind: 'found', handler: 'svg', params: ['x'] })
    const odd = new Router<string>()
    odd.add('GET', '/a+b/(c)/[d]', 'odd')
    expect(odd.find('GET', '/a+b/(c)/[d]').kind).toBe('found')
    expect(odd.find('GET', '/aab/c/d').kind).toBe('none')
  })
})
