import { describe } from 'vitest'
import { runCases, yaml, type Case } from './helpers.js'

// Values and YAML: types, durations, numbers, ${VAR}, syntax. Pools, routes,
// listeners and the admin API are in bad-pools.test.ts. Each config is
// complete YAML; line 1 is the first line of the literal.
const valueCases: Case[] = [
  {
    name: 'unknown key at the top level points at the key',
    text: yaml`
      listen:
        - port: 8080
      bogus: 1
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['3:1 bogus: unknown key']
  },
  {
    name: 'unknown nested key (a typo) points at the key',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
          readiness:
            path: /healthz
            intervall: 2s
    `,
    errors: ['8:7 pools.web.readiness.intervall: unknown key']
  },
  {
    name: 'unknown key inside a flow map',
    text: yaml`
      listen: [{ port: 8080, hots: 127.0.0.1 }]
      pools: { web: { servers: [127.0.0.1:3000] } }
    `,
    errors: ['1:24 listen.0.hots: unknown key']
  },
  {
    name: 'a port written as a string is the wrong type',
    text: yaml`
      listen:
        - port: "8080"
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['2:11 listen.0.port: expected a port number, got the string "8080"']
  },
  {
    name: 'bad duration',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
          readiness: { interval: 5x }
    `,
    errors: ['6:28 pools.web.readiness.interval: "5x" is not a duration']
  },
  {
    name: 'a duration as a bare number has no unit',
    text: yaml`
      listen:
        - port: 8080
      proxy:
        timeouts:
          connect: 5
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['5:14 proxy.timeouts.connect: a bare number has no unit: write 5s or 5ms']
  },
  {
    name: 'a zero probe interval',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
          readiness: { interval: 0s }
    `,
    errors: ['6:28 pools.web.readiness.interval: must be longer than 0']
  },
  {
    name: 'a duration longer than a timer can hold',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 41000-41009 }
          rollout: { progressDeadline: 48h }
    `,
    errors: ['7:34 pools.web.rollout.progressDeadline: must be at most 24h']
  },
  {
    name: 'negative retries',
    text: yaml`
      listen:
        - port: 8080
      proxy:
        retries: -1
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['4:12 proxy.retries: must not be negative']
  },
  {
    name: 'a bad signal name and a bad onFailure',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 41000-41999 }
          rollout:
            stopSignal: TERM
            onFailure: retry
    `,
    errors: [
      '8:19 pools.web.rollout.stopSignal: expected a signal name: SIGTERM, SIGINT',
      '9:18 pools.web.rollout.onFailure: expected rollback or pause'
    ]
  },
  {
    name: 'historyLimit: a whole number of rollouts, at least 1',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 41000-41999 }
          rollout: { historyLimit: 0 }
        api:
          size: 1
          process: { command: node app.js, ports: 42000-42999 }
          rollout: { historyLimit: 2.5 }
      routes: [{ match: { pathPrefix: / }, pool: web }]
    `,
    errors: [
      '7:30 pools.web.rollout.historyLimit: at least 1',
      '11:30 pools.api.rollout.historyLimit: expected a whole number of rollouts'
    ]
  },
  {
    name: 'a duplicate key (YAML unique keys)',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
          servers: [127.0.0.1:3001]
    `,
    errors: ['6:5 pools.web.servers: duplicate key']
  },
  {
    name: 'YAML syntax: bad indentation',
    text: yaml`
      listen:
        - port: 8080
         host: 127.0.0.1
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['3:1 (root): invalid YAML: Sequence item without - indicator']
  },
  {
    name: 'YAML syntax: an unclosed bracket',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000
    `,
    errors: ['5:14 pools.web.servers: invalid YAML: this [ is not closed (a ] is missing, or the next line is not indented enough)']
  },
  {
    name: 'YAML syntax: an unclosed brace around closed ones points at the right one',
    text: yaml`
      listen: [{ port: 8080 }]
      pools: { web: { servers: [127.0.0.1:3000] }
    `,
    errors: ['2:8 pools: invalid YAML: this { is not closed']
  },
  {
    name: 'YAML syntax: a tab as indentation',
    text: 'listen:\n\t- port: 8080\npools: {}\n',
    errors: ['2:1 (root): invalid YAML: Tabs are not allowed as indentation']
  },
  {
    name: '${UNSET} with no default becomes empty, and the message says why',
    text: yaml`
      listen:
        - port: \${PORT:-8080}
        - port: \${UNSET}
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['3:11 listen.1.port: expected a port number, got an empty string (from ${UNSET}: UNSET is not set)']
  },
  {
    name: '${VAR:?message} is an error when VAR is unset',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: ["\${BACKEND:?set BACKEND to host:port}"]
    `,
    errors: ['5:15 pools.web.servers.0: ${BACKEND:?set BACKEND to host:port}: BACKEND is not set (set BACKEND to host:port)']
  },
  {
    name: 'an empty file',
    text: '',
    errors: [
      '1:1 listen: is required (expected a list of listeners',
      '1:1 pools: is required (expected a map of pools)'
    ]
  },
  {
    name: 'a listener on the default admin port (points at the listener)',
    text: 'listen: [{ port: 9901 }]\npools: { web: { servers: [127.0.0.1:3000] } }\n',
    errors: ["1:18 admin.listen: the admin API's default address 127.0.0.1:9901 is already taken by listen.0: set admin.listen"]
  },
  {
    name: 'an empty pools: map',
    text: 'listen: [{ port: 8080 }]\npools: {}\n',
    errors: ['2:8 pools: needs at least one pool']
  },
  {
    name: 'a document that is a list',
    text: '- port: 8080\n',
    errors: ['1:1 (root): expected a map of settings (listen:, pools:, ...), got a list']
  },
  {
    name: 'an alias to no anchor',
    text: yaml`
      defaults: &d { servers: [127.0.0.1:3000] }
      listen: [{ port: *port }]
      pools: { web: *d }
    `,
    errors: [
      '1:1 defaults: unknown key',
      '2:18 listen.0.port: *port refers to no &port anchor before it'
    ]
  },
  {
    name: 'anchors, merge keys and a bad merge',
    text: yaml`
      listen: [{ port: 8080 }]
      routes: [{ pool: a }]
      pools:
        a: &base { servers: [127.0.0.1:3000] }
        b: { <<: *base, balance: round-robin }
        c: { <<: 5, servers: [127.0.0.1:3001] }
    `,
    errors: ['6:12 pools.c.<<: << (merge) takes a map, an alias to one, or a list of them']
  },
  {
    name: 'a key that is a list, and __proto__ as a pool name',
    text: yaml`
      listen: [{ port: 8080 }]
      ? [a, b]
      : 1
      pools:
        __proto__: { servers: [127.0.0.1:3000] }
    `,
    errors: [
      '2:3 (root): keys must be plain names, not lists or maps',
      '5:3 pools.__proto__: pool names use letters, digits, - and _'
    ]
  }
]

describe('bad values and bad YAML: each problem with its line, column and key path', () => {
  runCases(valueCases)
})
