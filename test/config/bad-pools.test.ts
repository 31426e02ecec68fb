import { describe } from 'vitest'
import { runCases, yaml, type Case } from './helpers.js'

// Pools, routes, listeners, the admin API: each config is complete YAML;
// line 1 is the first line of the literal.
const poolCases: Case[] = [
  {
    name: 'listener port out of range',
    text: yaml`
      listen:
        - port: 70000
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['2:11 listen.0.port: port must be 0-65535']
  },
  {
    name: 'port range too small for size + maxSurge',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 3
          process:
            command: node app.js
            ports: 41000-41002
    `,
    errors: ['8:14 pools.web.process.ports: the range has 3 ports but size + maxSurge needs 4']
  },
  {
    name: 'a surge percentage counts against the port range (250% of 4 is 10)',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 4
          process: { command: node app.js, ports: 41000-41009 }
          rollout: { maxSurge: 250% }
    `,
    errors: ['6:45 pools.web.process.ports: the range has 10 ports but size + maxSurge needs 14']
  },
  {
    name: 'a reversed port range',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 42000-41000 }
    `,
    errors: ['6:45 pools.web.process.ports: expected a range low-high within 1-65535']
  },
  {
    name: 'maxSurge 0 with maxUnavailable 0 can never move',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 3
          process: { command: node app.js, ports: 41000-41999 }
          rollout:
            maxSurge: 0
            maxUnavailable: 0
    `,
    errors: ['8:17 pools.web.rollout.maxSurge: maxSurge and maxUnavailable are both 0']
  },
  {
    name: 'percentages that round to 0 count as 0 (0% surge, 25% of 3 unavailable)',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 3
          process: { command: node app.js, ports: 41000-41999 }
          rollout: { maxSurge: 0%, maxUnavailable: 25% }
    `,
    errors: ['7:26 pools.web.rollout.maxSurge: maxSurge and maxUnavailable are both 0 for size 3']
  },
  {
    name: 'maxUnavailable above 100% and a negative maxSurge',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 3
          process: { command: node app.js, ports: 41000-41999 }
          rollout:
            maxSurge: -1
            maxUnavailable: 150%
    `,
    errors: [
      '8:17 pools.web.rollout.maxSurge: must not be negative',
      '9:23 pools.web.rollout.maxUnavailable: a percentage of at most 100%'
    ]
  },
  {
    name: 'a route to a missing pool',
    text: yaml`
      listen:
        - port: 8080
      routes:
        - match: { pathPrefix: / }
          pool: wbe
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['5:11 routes.0.pool: no pool named "wbe" (pools: web)']
  },
  {
    name: 'a route to a pool named like an Object method is still missing',
    text: yaml`
      listen: [{ port: 8080 }]
      routes: [{ pool: toString }]
      pools: { web: { servers: [127.0.0.1:3000] } }
    `,
    errors: ['2:18 routes.0.pool: no pool named "toString"']
  },
  {
    name: 'a pool with both process: and servers: (points at the second)',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
          process:
            command: node app.js
            ports: 41000-41999
    `,
    errors: ['6:5 pools.web.process: a pool has exactly one of process:, docker: or servers: (this one also has servers:)']
  },
  {
    name: 'a pool with none of process:, docker:, servers:',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 2
    `,
    errors: ['4:3 pools.web: a pool needs one of process:, docker: or servers:']
  },
  {
    name: 'a managed pool without size',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          process:
            command: node app.js
            ports: 41000-41999
    `,
    errors: ['4:3 pools.web.size: is required for a managed pool (process:)']
  },
  {
    name: 'size on a static pool',
    text: yaml`
      listen:
        - port: 8080
      pools:
        api:
          size: 3
          servers: [127.0.0.1:3000]
    `,
    errors: ['5:5 pools.api.size: size: is for managed pools']
  },
  {
    name: 'bad host:port in servers',
    text: yaml`
      listen:
        - port: 8080
      pools:
        api:
          servers: [127.0.0.1, "127.0.0.1:0", "bad host:80", 10.0.0.1:3001]
    `,
    errors: [
      '5:15 pools.api.servers.0: expected host:port such as 127.0.0.1:3000 (no port in "127.0.0.1")',
      '5:26 pools.api.servers.1: port must be 1-65535',
      '5:41 pools.api.servers.2: ("bad host" is not a host)'
    ]
  },
  {
    name: 'admin API off loopback without a token',
    text: yaml`
      listen:
        - port: 8080
      admin: {listen: 0.0.0.0:9901}
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['3:17 admin.listen: the admin API listens off loopback, so admin.token is required']
  },
  {
    name: 'admin token from an unset variable does not count',
    text: yaml`
      listen:
        - port: 8080
      admin:
        listen: 10.0.0.5:9901
        token: \${BATON_ADMIN_TOKEN}
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: ['4:11 admin.listen: admin.token is required']
  },
  {
    name: 'a bare IPv6 admin address needs brackets',
    text: yaml`
      listen: [{ port: 8080 }]
      admin: { listen: "::1:9901" }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `,
    errors: ['2:18 admin.listen: write an IPv6 address in brackets, e.g. [::1]:9901']
  },
  {
    name: 'the admin API on a listener port',
    text: yaml`
      listen: [{ port: 8080 }]
      admin: { listen: 127.0.0.1:8080 }
      pools: { web: { servers: [127.0.0.1:3000] } }
    `,
    errors: ['2:18 admin.listen: port 8080 is already taken by listen.0']
  },
  {
    name: 'a listener listed twice, and a wildcard over a specific address',
    text: yaml`
      listen:
        - port: 8080
        - port: 8080
        - { host: 127.0.0.1, port: 8080 }
        - { host: 127.0.0.1, port: 8081 }
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: [
      '3:11 listen.1.port: 0.0.0.0:8080 is already taken by listen.0',
      '4:30 listen.2.port: 127.0.0.1:8080 is already taken by listen.0 (0.0.0.0:8080)'
    ]
  },
  {
    name: 'several pools and no routes',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          servers: [127.0.0.1:3000]
        api:
          servers: [127.0.0.1:3001]
    `,
    errors: ['3:1 routes: is required when there are several pools (web, api)']
  },
  {
    name: 'an empty routes list',
    text: yaml`
      listen: [{ port: 8080 }]
      routes: []
      pools: { web: { servers: [127.0.0.1:3000] } }
    `,
    errors: ['2:9 routes: needs at least one route']
  },
  {
    name: 'a docker pool without image, with a bad engine URL',
    text: yaml`
      listen:
        - port: 8080
      pools:
        worker:
          size: 2
          docker:
            engines: [http://docker.example.com:2375]
            port: 8080
    `,
    errors: [
      '6:5 pools.worker.docker.image: is required (expected an image name)',
      '7:17 pools.worker.docker.engines.0: expected unix:///path/to/docker.sock or tcp://host:2376'
    ]
  },
  {
    name: 'a placeholder typo and {port} in an image',
    text: yaml`
      listen:
        - port: 8080
      pools:
        worker:
          size: 2
          docker:
            image: shop:{port}
            port: 8080
            env: { PORT: "{prot}" }
    `,
    errors: [
      '7:14 pools.worker.docker.image: {port} is not substituted here (only {version})',
      '9:20 pools.worker.docker.env.PORT: {prot} is not a placeholder; did you mean {port}?'
    ]
  },
  {
    name: 'a bad pool name points at the name',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web app:
          servers: [127.0.0.1:3000]
    `,
    errors: ['4:3 pools.web app: pool names use letters, digits, - and _']
  },
  {
    name: 'a pool with nothing under it',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
    `,
    errors: ['4:3 pools.web: expected a map (key: value), got an empty value']
  },
  {
    name: 'a listener without a port, and a bad host',
    text: yaml`
      listen:
        - host: 127.0.0.1
        - { host: "not a host", port: 8081 }
      pools:
        web:
          servers: [127.0.0.1:3000]
    `,
    errors: [
      '2:5 listen.0.port: is required (expected a port number)',
      '3:13 listen.1.host: expected an address such as 0.0.0.0 or 127.0.0.1'
    ]
  },
  {
    name: 'readiness: a path without / and a probe timeout longer than startTimeout',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          process: { command: node app.js, ports: 41000-41999 }
          readiness: { path: ready }
        api:
          size: 1
          process: { command: node api.js, ports: 42000-42999 }
          readiness: { timeout: 10s, startTimeout: 5s }
      routes:
        - pool: web
    `,
    errors: [
      '7:24 pools.web.readiness.path: must start with /',
      '11:27 pools.api.readiness.timeout: the probe timeout is longer than startTimeout'
    ]
  },
  {
    name: 'a bad balance and a command that is a map',
    text: yaml`
      listen:
        - port: 8080
      pools:
        web:
          size: 1
          balance: random
          process:
            command: { run: app }
            ports: 41000-41999
    `,
    errors: [
      '6:14 pools.web.balance: expected least-request or round-robin',
      '8:16 pools.web.process.command: expected a command string or a list of arguments, got a map'
    ]
  }
]

describe('bad pools, routes, listeners and admin: each problem with its line, column and key path', () => {
  runCases(poolCases)
})
