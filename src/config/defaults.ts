/**
 * Every default baton applies, in one place. The schema reads them from here
 * so that the README, `baton check` and the code never disagree.
 */
export const DEFAULTS = {
  /** Proxy worker processes (`auto`: one per CPU core). */
  workers: 1 as number | 'auto',
  /** Upgrading baton itself (README "Upgrading baton"). */
  upgrade: {
    /** The new generation must be serving within this, or it is stopped and the old one goes on. */
    timeout: 30_000,
    /** The old generation's open WebSockets and requests get this long, then WebSockets get a 1001 close. */
    drainTimeout: 30_000
  },
  /** Host a `listen:` entry binds when it names only a port. */
  listenHost: '0.0.0.0',
  /** Where the admin API listens when `admin.listen` is not given. */
  adminListen: '127.0.0.1:9901',
  proxy: {
    timeouts: {
      /** TCP connect to an upstream; a refused or slow connect is retried elsewhere. */
      connect: 2_000,
      /** A client must send its whole request head within this (slowloris cut: 408). */
      headers: 30_000,
      /** A client keep-alive connection with no request in flight is closed after this. */
      idle: 60_000,
      /** Upstream response headers, and each gap between body chunks, within this (else 504). */
      upstream: 60_000,
      /** A client sending a request body may pause at most this long (slow upload: 408), like nginx's client_body_timeout. */
      body: 30_000
    },
    /** How many other instances a failed attempt may be retried on (G4). */
    retries: 2,
    /** Largest request head accepted from a client; larger gets 431. */
    maxHeaderSize: 16_384,
    /**
     * Idle upstream connections are closed after this when the upstream sends
     * no `Keep-Alive: timeout=N` (with one: N less 1 s). Below Node's 5 s
     * server keep-alive, so that baton never writes into a socket being closed.
     */
    upstreamKeepAlive: 4_000,
    /** Connections to one upstream at most; requests beyond wait (up to the connect timeout) for one to free. */
    upstreamConnections: 1024
  },
  tls: {
    /** Oldest TLS version a TLS listener accepts (TLSv1.2 or TLSv1.3; OpenSSL 3 refuses older ones anyway). */
    minVersion: 'TLSv1.2' as const,
    /**
     * How often the controller makes a new session ticket key and publishes
     * it to every data plane (README "TLS": Node keeps one key, so a ticket
     * older than the last rotation costs one full handshake).
     */
    ticketKeyRotation: 12 * 3_600_000,
    /** HTTP/2 streams a client may have open on one connection (nginx's http2_max_concurrent_streams). */
    maxConcurrentStreams: 128
  },
  pool: {
    balance: 'least-request' as const,
    version: 'v1'
  },
  readiness: {
    path: '/ready',
    interval: 250,
    timeout: 1_000,
    successThreshold: 1,
    failureThreshold: 3,
    startTimeout: 30_000
  },
  rollout: {
    strategy: 'rolling' as const,
    maxSurge: 1 as number | string,
    maxUnavailable: 0 as number | string,
    /** Old instances left with only WebSockets that may drain beside a rollout's surge: the pool's size. */
    maxDraining: '100%' as number | string,
    minReady: 1_000,
    slowStart: 0,
    drainTimeout: 30_000,
    stopSignal: 'SIGTERM' as const,
    stopTimeout: 10_000,
    progressDeadline: 600_000,
    onFailure: 'rollback' as const,
    /** Rollout records kept per pool; each holds up to 10,000 instance transitions for its report. */
    historyLimit: 50
  },
  canary: {
    /** More steps than this is a config error: a canary is a handful of steps. */
    maxSteps: 20,
    /** New-revision requests a step needs before it is judged: none unless set. */
    minRequests: 0
  },
  blueGreen: {
    /** The old set stays ready this long after the switch, for an instant rollback. */
    scaleDownDelay: 30_000
  },
  /** Passive ejection of any pool's members, per data plane (like nginx max_fails/fail_timeout). */
  ejection: {
    consecutiveFailures: 5,
    duration: 10_000,
    /** Never eject more than this share of a pool (Envoy's panic threshold). */
    maxEjectedPercent: 50
  },
  docker: {
    engines: ['unix:///var/run/docker.sock'],
    init: true
  }
} as const
