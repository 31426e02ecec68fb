import { yaml } from './helpers.js'

/** The reference config example, with its comments: every kind of pool and most keys (README "Config reference" has a longer one). */
export const SPEC_EXAMPLE = yaml`
  listen:
    - port: 8080                 # host defaults to 0.0.0.0; several listeners allowed
  admin:
    listen: 127.0.0.1:9901
    token: \${BATON_ADMIN_TOKEN}  # \${VAR} and \${VAR:-default} are read from the environment
  proxy:
    timeouts: { connect: 2s, headers: 30s, idle: 60s, upstream: 60s }
    retries: 2                   # see guarantee G4
  routes:                        # first match wins; a request matching none gets 404
    - match: { host: api.example.com, pathPrefix: /v1 }
      pool: api
    - match: { pathPrefix: / }
      pool: web
  pools:
    web:
      size: 3                    # instances serving when no rollout runs
      balance: least-request     # least-request (default) | round-robin
      version: v1                # the version label of the current revision
      process:                   # managed instances: baton starts and stops them
        command: node scripts/demo-app.mjs
        cwd: .
        env: { PORT: "{port}", APP_VERSION: "{version}" }
        ports: 41000-41999       # each instance gets a free port from this range
      readiness:
        path: /ready             # HTTP GET; 2xx or 3xx is ready
        interval: 250ms
        timeout: 1s
        successThreshold: 1
        failureThreshold: 3
        startTimeout: 30s        # not ready by then: the start failed
      rollout:
        maxSurge: 1              # count or percentage of size, like Kubernetes
        maxUnavailable: 0
        minReady: 2s             # must stay ready and healthy this long to count
        slowStart: 0s            # ramp a new instance's share of traffic over this time
        drainTimeout: 30s        # in-flight requests and WebSockets get this long
        stopSignal: SIGTERM
        stopTimeout: 10s         # then SIGKILL
        progressDeadline: 10m
        onFailure: rollback      # rollback | pause
    worker:                      # instances as containers on one or more Docker engines
      size: 4
      version: "1.4.2"
      docker:
        engines: [unix:///var/run/docker.sock]   # or tcp://host:2376 with tls: {ca, cert, key}
        image: registry.example.com/shop:{version}
        port: 8080               # the app's port inside the container; published on a free host port
        env: { APP_VERSION: "{version}" }
        init: true               # an init as PID 1, so the stop signal reaches the app
      readiness: { path: /ready }
    api:
      servers: [127.0.0.1:3000, 127.0.0.1:3001]   # static upstreams: routed and health-checked, not managed
      readiness: { path: /healthz, interval: 2s }  # for static servers: the active health check
`
