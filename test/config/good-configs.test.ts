import { describe, expect, it } from 'vitest'
import { dockerOf, expectProblems, problemsOf, processOf, serversOf, valid, yaml } from './helpers.js'
import { SPEC_EXAMPLE } from './spec-example.js'

const READINESS_DEFAULTS = { path: '/ready', interval: 250, timeout: 1000, successThreshold: 1, failureThreshold: 3, startTimeout: 30_000 }

describe('the reference example', () => {
  it('validates with all three pool kinds, normalised and defaulted', () => {
    const cfg = valid(SPEC_EXAMPLE)
    expect(cfg.file).toBe('baton.yaml')
    expect(cfg.listen).toEqual([{ host: '0.0.0.0', port: 8080 }])
    // ${BATON_ADMIN_TOKEN} unset: no token, which is fine on loopback.
    expect(cfg.admin).toEqual({ host: '127.0.0.1', port: 9901, token: undefined })
    expect(cfg.proxy).toEqual({ timeouts: { connect: 2000, headers: 30_000, idle: 60_000, upstream: 60_000, body: 30_000 }, retries: 2, maxHeaderSize: 16_384 })
    expect(cfg.routes).toEqual([
      { host: 'api.example.com', pathPrefix: '/v1', pool: 'api' },
      { host: undefined, pathPrefix: '/', pool: 'web' }
    ])
    expect(Object.keys(cfg.pools)).toEqual(['web', 'worker', 'api'])

    const { web, worker, api } = cfg.pools
    expect(web).toMatchObject({ name: 'web', kind: 'process', size: 3, balance: 'least-request', version: 'v1' })
    expect(processOf(web).process).toEqual({
      command: 'node scripts/demo-app.mjs',
      cwd: '.',
      env: { PORT: '{port}', APP_VERSION: '{version}' },
      ports: { from: 41000, to: 41999 }
    })
    expect(web.readiness).toEqual(READINESS_DEFAULTS)
    expect(web.rollout).toEqual({
      maxSurge: 1,
      maxUnavailable: 0,
      minReady: 2000,
      slowStart: 0,
      drainTimeout: 30_000,
      stopSignal: 'SIGTERM',
      stopTimeout: 10_000,
      progressDeadline: 600_000,
      onFailure: 'rollback',
      historyLimit: 50,
      strategy: 'rolling',
      maxDraining: '100%',
      blueGreen: { scaleDownDelay: 30_000 }
    })

    expect(worker).toMatchObject({ kind: 'docker', size: 4, version: '1.4.2', balance: 'least-request' })
    expect(dockerOf(worker).docker).toEqual({
      engines: ['unix:///var/run/docker.sock'],
      image: 'registry.example.com/shop:{version}',
      port: 8080,
      env: { APP_VERSION: '{version}' },
      init: true
    })
    // readiness: { path: /ready } gets every other default; rollout: is all defaults.
    expect(worker.readiness).toEqual(READINESS_DEFAULTS)
    expect(worker.rollout).toMatchObject({ maxSurge: 1, maxUnavailable: 0, minReady: 1000, drainTimeout: 30_000, onFailure: 'rollback' })

    expect(api).toMatchObject({ kind: 'static', size: 2, servers: ['127.0.0.1:3000', '127.0.0.1:3001'] })
    expect(api.readiness).toEqual({ ...READINESS_DEFAULTS, path: '/healthz', interval: 2000 })
  })

  it('takes the admin token from the environment', () => {
    expect(valid(SPEC_EXAMPLE, { BATON_ADMIN_TOKEN: 's3cret' }).admin.token).toBe('s3cret')
  })
})

describe('defaults and normal forms', () => {
  it('a minimal config: one listener, one pool, no routes', () => {
    const cfg = valid('listen: [{ port: 8080 }]\npools: { web: { servers: [127.0.0.1:3000] } }\n')
    expect(cfg.listen).toEqual([{ host: '0.0.0.0', port: 8080 }])
    expect(cfg.admin).toEqual({ host: '127.0.0.1', port: 9901, token: undefined })
    expect(cfg.routes).toEqual([{ host: undefined, pathPrefix: '/', pool: 'web' }])
    expect(cfg.proxy.retries).toBe(2)
    // A static pool is health-checked only when asked.
    expect(cfg.pools.web).toMatchObject({ kind: 'static', size: 1, balance: 'least-request', version: 'v1', readiness: undefined })
  })

  it('a managed pool gets readiness and rollout defaults', () => {
    const cfg = valid(yaml`
      listen: [{ port: 8080 }]
      pools:
        web:
          size: 2
          process: { command: [node, app.js, --port, "{port}"], ports: 41000-41003 }
    `)
    const web = cfg.pools.web
    expect(processOf(web).process).toEqual({ command: ['node', 'app.js', '--port', '{port}'], cwd: '.', env: {}, ports: { from: 41000, to: 41003 } })
    expect(web.readiness).toEqual(READINESS_DEFAULTS)
    expect(web.rollout).toMatchObject({ maxSurge: 1, maxUnavailable: 0, stopSignal: 'SIGTERM', stopTimeout: 10_000, progressDeadline: 600_000 })
  })

  it('durations: ms, s, m, h, compounds and a bare 0', () => {
    const cfg = valid(yaml`
      listen: [{ port: 8080 }]
      proxy: { timeouts: { connect: 1.5s, headers: 1m30s, idle: 1h, upstream: 750ms } }
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 41000-41001 }
          rollout: { slowStart: 0, drainTimeout: 0s, minReady: 2m }
    `)
    expect(cfg.proxy.timeouts).toEqual({ connect: 1500, headers: 90_000, idle: 3_600_000, upstream: 750, body: 30_000 })
    expect(cfg.pools.web.rollout).toMatchObject({ slowStart: 0, drainTimeout: 0, minReady: 120_000 })
  })

  it('percentages: maxSurge 25% and 250% (like Kubernetes) are kept as written', () => {
    const cfg = valid(yaml`
      listen: [{ port: 8080 }]
      routes: [{ pool: a }]
      pools:
        a: { size: 4, process: { command: x, ports: 41000-41004 }, rollout: { maxSurge: 25%, maxUnavailable: 25% } }
        b: { size: 4, process: { command: x, ports: 42000-42013 }, rollout: { maxSurge: 250% } }
    `)
    expect(cfg.pools.a.rollout).toMatchObject({ maxSurge: '25%', maxUnavailable: '25%' })
    expect(cfg.pools.b.rollout).toMatchObject({ maxSurge: '250%' })
    // 250% of 4 is 10 surge instances: one port fewer is an error.
    expectProblems(problemsOf(yaml`
      listen: [{ port: 8080 }]
      pools:
        b: { size: 4, process: { command: x, ports: 42000-42012 }, rollout: { maxSurge: 250% } }
    `), ['3:47 pools.b.process.ports: the range has 13 ports but size + maxSurge needs 14'])
  })

  it('addresses: IPv6 in brackets, host names, a tcp engine with TLS, route hosts lower-cased', () => {
    const cfg = valid(yaml`
      listen:
        - { host: "::", port: 8080 }
        - { host: "[::1]", port: 8443 }
      admin: { listen: "[::1]:9901" }
      routes:
        - { match: { host: "*.Example.COM" }, pool: api }
        - { pool: worker }
      pools:
        api: { servers: ["[::1]:3000", "backend.internal:3001"] }
        worker:
          size: 1
          docker:
            engines: [{ url: "tcp://docker1:2376", tls: { ca: ca.pem, cert: cert.pem, key: key.pem } }, "tcp://docker2"]
            image: shop:{version}
            port: 8080
    `)
    expect(cfg.listen).toEqual([{ host: '::', port: 8080 }, { host: '::1', port: 8443 }])
    expect(cfg.admin).toMatchObject({ host: '::1', port: 9901 })
    expect(cfg.routes[0]).toEqual({ host: '*.example.com', pathPrefix: undefined, pool: 'api' })
    expect(serversOf(cfg.pools.api).servers).toEqual(['[::1]:3000', 'backend.internal:3001'])
    expect(dockerOf(cfg.pools.worker).docker.engines).toHaveLength(2)
  })

  it('an admin API off loopback is fine with a token', () => {
    expect(valid('listen: [{ port: 8080 }]\nadmin: { listen: 0.0.0.0:9901, token: abc }\npools: { web: { servers: [127.0.0.1:3000] } }\n').admin)
      .toEqual({ host: '0.0.0.0', port: 9901, token: 'abc' })
  })

  it('text fields keep what was written: version 1.10, env 007, a numeric token', () => {
    const cfg = valid(yaml`
      listen: [{ port: 8080 }]
      admin: { token: 0123 }
      pools:
        web:
          size: 1
          version: 1.10
          process: { command: x, ports: 41000-41001, env: { A: 007, B: 1e3, C: true } }
    `)
    expect(cfg.pools.web.version).toBe('1.10')
    expect(processOf(cfg.pools.web).process.env).toEqual({ A: '007', B: '1e3', C: 'true' })
    expect(cfg.admin.token).toBe('0123')
  })

  it('YAML anchors and merge keys', () => {
    const cfg = valid(yaml`
      listen: [{ port: 8080 }]
      routes: [{ pool: web }]
      pools:
        web: &base
          size: 2
          process: { command: node app.js, ports: 41000-41009 }
          rollout: { drainTimeout: 5s }
        canary:
          <<: *base
          size: 1
    `)
    expect(cfg.pools.canary).toMatchObject({ size: 1, kind: 'process', rollout: { drainTimeout: 5000 } })
  })
})

describe('${VAR} substitution', () => {
  const text = yaml`
    listen:
      - port: \${PORT:-8080}
    pools:
      web:
        size: \${SIZE:-2}
        version: v\${UNSET}
        process:
          command: sh -c 'echo $\${HOME}'
          env: { GREETING: "\${GREETING:-hello world}", V: "\${V}" }
          ports: \${PORTS:-41000-41999}
  `

  it('a default becomes a number where one is expected; an unset variable becomes empty', () => {
    const cfg = valid(text)
    expect(cfg.listen[0].port).toBe(8080)
    expect(cfg.pools.web.size).toBe(2)
    expect(cfg.pools.web.version).toBe('v')
    expect(processOf(cfg.pools.web).process).toMatchObject({
      command: "sh -c 'echo ${HOME}'",
      env: { GREETING: 'hello world', V: '' },
      ports: { from: 41000, to: 41999 }
    })
  })

  it('set variables win over defaults; text that only looks numeric stays text', () => {
    const cfg = valid(text, { PORT: '9000', SIZE: '3', V: '1.10', GREETING: 'hi', PORTS: '5000-5009' })
    expect(cfg.listen[0].port).toBe(9000)
    expect(cfg.pools.web.size).toBe(3)
    expect(processOf(cfg.pools.web).process).toMatchObject({ env: { GREETING: 'hi', V: '1.10' }, ports: { from: 5000, to: 5009 } })
  })

  it('an empty variable counts as unset, like ${VAR:-default} in a shell', () => {
    expect(valid(text, { PORT: '' }).listen[0].port).toBe(8080)
  })

  it('a bad value from a variable says where it came from', () => {
    expectProblems(problemsOf(text, { PORT: 'http' }), ['2:11 listen.0.port: expected a port number, got the string "http" (from ${PORT:-8080})'])
  })
})

describe('pool names', () => {
  it('a pool may be named like an Object method, and lookups of other such names find nothing', () => {
    const cfg = valid('listen: [{ port: 8080 }]\npools: { constructor: { servers: [127.0.0.1:3000] } }\n')
    expect(Object.keys(cfg.pools)).toEqual(['constructor'])
    expect(cfg.pools['constructor' as string].kind).toBe('static')
    expect(cfg.pools.toString).toBeUndefined()
    expect(cfg.routes).toEqual([{ host: undefined, pathPrefix: '/', pool: 'constructor' }])
  })
})
