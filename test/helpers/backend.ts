import { fileURLToPath } from 'node:url'
import { startProc, type Proc } from './procs.js'

const BACKEND = fileURLToPath(new URL('../fixtures/backend.mjs', import.meta.url))

export interface Backend extends Proc {
  port: number
  address: string
}

/** Starts test/fixtures/backend.mjs as its own process on a port from the OS. */
export async function startBackend (env: Record<string, string> = {}): Promise<Backend> {
  const proc = startProc(process.execPath, [BACKEND], { env: { ...process.env, PORT: '0', ...env } })
  const first = await proc.waitLine(l => typeof l.port === 'number')
  return Object.assign(proc, { port: first.port as number, address: `127.0.0.1:${first.port as number}` })
}
