import { describe, expect, it } from 'vitest'
import { ConfigError, formatProblem } from '../../src/config/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { expectProblems, problemsOf, yaml } from './helpers.js'

describe('every problem is reported, not just the first', () => {
  it('independent problems in every section come out together, sorted by position', () => {
    const text = yaml`
      pools:
        web:
          size: 2
          process: { command: node app.js, ports: 41000-41001 }
          readiness: { interval: 5x, timeout: 5 }
          rollout: { stopSignal: TERM, maxSurge: 0, maxUnavailable: 0 }
        api:
          servers: [127.0.0.1]
          colour: blue
      routes:
        - match: { pathPrefix: v1 }
          pool: nope
      listen:
        - port: 8080
        - port: 8080
      admin: { listen: 0.0.0.0:9901 }
      proxy: { retries: eleven }
    `
    expectProblems(problemsOf(text), [
      '5:28 pools.web.readiness.interval: "5x" is not a duration',
      '5:41 pools.web.readiness.timeout: a bare number has no unit',
      '6:28 pools.web.rollout.stopSignal: expected a signal name',
      '6:44 pools.web.rollout.maxSurge: maxSurge and maxUnavailable are both 0',
      '8:15 pools.api.servers.0: no port in "127.0.0.1"',
      '9:5 pools.api.colour: unknown key',
      '11:26 routes.0.match.pathPrefix: must start with /',
      '12:11 routes.0.pool: no pool named "nope" (pools: web, api)',
      '15:11 listen.1.port: 0.0.0.0:8080 is already taken by listen.0',
      '16:18 admin.listen: admin.token is required',
      '17:19 proxy.retries: expected a whole number of retries, got the string "eleven"'
    ])
  })

  it('cross-key checks run on the valid parts even when other parts are invalid', () => {
    // The pool's own rollout is fine, so its port range is checked even though
    // another pool and a listener are wrong.
    const text = yaml`
      listen: [{ port: -1 }]
      routes: [{ pool: web }, { pool: ghost }]
      pools:
        web: { size: 3, process: { command: x, ports: 41000-41002 } }
        bad: { size: 0, docker: { image: "", port: 8080 } }
    `
    expectProblems(problemsOf(text), [
      '1:18 listen.0.port: port must be 0-65535',
      '2:33 routes.1.pool: no pool named "ghost"',
      '4:49 pools.web.process.ports: the range has 3 ports but size + maxSurge needs 4',
      '5:16 pools.bad.size: at least 1',
      '5:36 pools.bad.docker.image: must not be empty'
    ])
  })

  it('ConfigError carries the problems and a message of FILE:LINE:COL path: message lines', () => {
    let err: unknown
    try {
      parseConfig('listen: [{ port: 8080 }]\npools: { web: { servers: [127.0.0.1:3000], sise: 3 } }\nextra: 1\n', 'conf/baton.yaml', {})
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    const e = err as ConfigError
    expect(e.code).toBe('BATON_ERR_CONFIG')
    expect(e.message.split('\n')).toEqual([
      'conf/baton.yaml:2:44 pools.web.sise: unknown key',
      'conf/baton.yaml:3:1 extra: unknown key'
    ])
    expect(e.problems.map(formatProblem)).toEqual(e.message.split('\n'))
  })

  it('every YAML syntax error is reported, and nothing else when the file does not parse', () => {
    const problems = problemsOf('listen:\n  - port: 8080\n bad: [\npools: {\n')
    expect(problems.length).toBeGreaterThan(0)
    for (const p of problems) expect(p.message).toMatch(/^invalid YAML: /)
    expect(problems.map(p => [p.line, p.col])).toEqual([...problems].sort((a, b) => a.line - b.line || a.col - b.col).map(p => [p.line, p.col]))
  })
})
