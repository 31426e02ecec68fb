// Main-thread side of the client load: starts load-worker.mjs in a worker
// thread against one target, moves it through its phases, stops it and
// returns what it counted.
import { Worker } from 'node:worker_threads'

export const DEFAULT_LOAD = {
  mix: { keepalive: 20, close: 5, post: 5, slow: 5, ws: 5 },
  thinkMs: 20,
  slowMs: 2_000,
  postBytes: 4_096,
  wsEveryMs: 100,
  wsReconnectMs: 100,
  timeoutMs: 20_000
}

export async function startLoad (host, port, load = DEFAULT_LOAD) {
  const worker = new Worker(new URL('./load-worker.mjs', import.meta.url), { workerData: { host, port, ...load } })
  const marks = []
  let result
  const finished = new Promise((resolve, reject) => {
    worker.on('message', m => { if (m.type === 'result') { result = m.result; resolve(result) } })
    worker.once('error', reject)
    worker.once('exit', code => { if (result === undefined) reject(new Error(`load worker exited (${code}) without a result`)) })
  })
  await new Promise((resolve, reject) => {
    worker.once('message', m => { if (m.type === 'started') resolve() })
    worker.once('error', reject)
  })
  const started = Date.now()
  marks.push({ phase: 'warmup', at: started })
  return {
    started,
    marks,
    phase (p) {
      marks.push({ phase: p, at: Date.now() })
      worker.postMessage({ type: 'phase', phase: p })
    },
    async stop () {
      worker.postMessage({ type: 'stop' })
      const r = await finished
      await worker.terminate()
      return { ...r, marks }
    },
    async kill () { await worker.terminate() }
  }
}
