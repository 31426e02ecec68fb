/**
 * A proxy worker process (README "Processes"): the data plane on the
 * listening sockets the supervisor hands it, fed with the controller's
 * tables through the supervisor. It serves with its last table whatever the
 * controller does, and goes when the supervisor says (stop, drain after an
 * upgrade) or when its channel to the supervisor closes.
 */
import { log, setLogFields } from '../log.js'
import { parentEndpoint } from '../supervisor/channel.js'
import type { FromWorker, ListenerAddress, ToWorker, WorkerSupervisorLink } from '../supervisor/protocol.js'
import { DataPlane } from './data-plane.js'

/** Without its supervisor a worker still finishes what it has, this long at most. */
const ORPHAN_GRACE_MS = 1_000

const wid = Number(process.env.BATON_WORKER ?? 0)
setLogFields({ proc: 'worker', worker: wid, generation: Number(process.env.BATON_GENERATION ?? 0) })

const supervisor: WorkerSupervisorLink = parentEndpoint<FromWorker, ToWorker>()
let plane: DataPlane | undefined
const sockets = new Map<string, { listener: ListenerAddress, handle: object }>()
let leaving = false

function dataPlane (): DataPlane {
  if (plane === undefined) throw new Error('a command came before the first table')
  return plane
}

supervisor.on('table', ({ table }) => {
  if (plane === undefined) {
    plane = new DataPlane(table.proxy)
    const p = plane
    p.report({
      idle: id => { supervisor.send({ type: 'idle', id, version: p.appliedVersion }) },
      quiet: id => { supervisor.send({ type: 'quiet', id, version: p.appliedVersion }) },
      traffic: (second, seconds) => { supervisor.send({ type: 'traffic', second, seconds }) }
    })
  }
  plane.apply(table)
  supervisor.send({ type: 'applied', version: plane.appliedVersion })
})

supervisor.on('listener', ({ listener }, handle) => {
  if (handle !== null && typeof handle === 'object') sockets.set(listener.key, { listener, handle })
})

supervisor.on('listen', ({ keys }) => {
  const specs = keys.flatMap(k => {
    const s = sockets.get(k)
    return s === undefined ? [] : [{ host: s.listener.host, port: configuredPort(k), handle: s.handle }]
  })
  dataPlane().listen(specs).then(() => {
    for (const k of [...sockets.keys()]) if (!keys.includes(k)) sockets.delete(k)
    supervisor.send({ type: 'listening', listeners: [...sockets.values()].map(s => s.listener) })
  }, (err: Error) => {
    log('error', 'worker could not listen', { error: err.message })
    process.exit(1)
  })
})

supervisor.on('command', ({ rid, op, id }) => {
  const p = dataPlane()
  // A member this worker never had (it started after the member left the
  // table) has nothing in flight here: say so, or the drain waits for it.
  if (op === 'closeIdle' && !p.holds(id)) supervisor.send({ type: 'idle', id, version: p.appliedVersion })
  const done = op === 'closeIdle' ? p.closeIdle(id) : op === 'endRemaining' ? p.endRemaining(id) : p.forget(id)
  void done.then(() => supervisor.send({ type: 'done', rid }))
})

supervisor.on('reopenLogs', () => { plane?.reopenLogs() })

supervisor.on('query', ({ rid, what }) => {
  const p = dataPlane()
  if (what === 'counts') supervisor.send({ type: 'counts', rid, counts: p.counts() })
  else void p.metrics.json().then(metrics => supervisor.send({ type: 'metrics', rid, metrics }))
})

supervisor.on('drain', ({ drainTimeoutMs }) => {
  if (leaving) return
  leaving = true
  log('info', 'worker draining: an upgrade replaced it')
  const p = dataPlane()
  void p.drain(drainTimeoutMs).then(async () => {
    // Its counters live on in /metrics, summed into the retired workers'.
    supervisor.send({ type: 'final', metrics: await p.metrics.json() })
    supervisor.send({ type: 'drained' })
    log('info', 'worker drained')
    setTimeout(() => process.exit(0), 0)
  })
})

supervisor.on('stop', ({ graceMs }) => {
  if (leaving) return
  leaving = true
  void (plane?.close(graceMs) ?? Promise.resolve()).then(() => supervisor.send({ type: 'stopped' }))
})

supervisor.on('exit', () => {
  plane?.stop()
  process.exit(0)
})

// The supervisor is gone (SIGKILLed): finish briefly, never serve on unsupervised.
supervisor.onClose(() => {
  if (leaving) { process.exit(0); return }
  leaving = true
  void (plane?.close(ORPHAN_GRACE_MS) ?? Promise.resolve()).then(() => process.exit(0))
})

// Signals are the supervisor's to handle: a Ctrl-C on the terminal reaches
// the whole foreground group, and the worker must still drain in order.
process.on('SIGINT', () => undefined)
process.on('SIGTERM', () => undefined)
process.on('SIGHUP', () => undefined)
process.on('SIGUSR2', () => undefined)

/** The configured port of a listener key, `host:port` or `host:port#N` (see listenerKeys). */
function configuredPort (key: string): number {
  return Number(/:(\d+)(?:#\d+)?$/.exec(key)?.[1])
}
