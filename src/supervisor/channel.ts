import type { ChildProcess } from 'node:child_process'
import { BatonError } from '../errors.js'

/** Something with an IPC channel: a forked child, or this process when it was forked. */
interface Port {
  readonly connected: boolean
  send?: (message: unknown, handle?: never, options?: object, cb?: (err: Error | null) => void) => boolean
  on: (event: string, fn: (...args: never[]) => void) => unknown
  disconnect?: () => void
}

/** Every message has a type; calls and their results are the endpoint's own. */
export interface Message { type: string }

/** Request/response pairs one side may call on the other: name → { args, result }. */
export type Calls = Record<string, { args: unknown, result: unknown }>

interface CallMessage { type: 'call', rid: number, name: string, args: unknown }
interface ResultMessage { type: 'result', rid: number, ok: boolean, value?: unknown, error?: { code: string, message: string, details?: string[] } }

/** A call the other side refused or could not answer, with its code (BATON_ERR_...) and details (a config's problems). */
export class RemoteError extends BatonError {
  constructor (code: string, message: string, readonly details: string[] = []) {
    super(code, message)
  }
}

/** A call that got no answer in time, or whose channel closed first. */
const NO_ANSWER = 'BATON_ERR_IPC_NO_ANSWER'

/** Calls wait this long by default: everything the processes ask each other is quick. */
const CALL_TIMEOUT_MS = 30_000

/**
 * One end of a typed IPC channel between baton's processes (supervisor,
 * controller, workers): fire-and-forget messages of known types, and calls
 * answered by the other side, matched by id, with a timeout. A send on a
 * closed channel is dropped: the other side is gone, and the supervisor
 * learns that from the exit, not from a failed send.
 */
export class Endpoint<Out extends Message, In extends Message, Asks extends Calls = Calls, Answers extends Calls = Calls> {
  private readonly handlers = new Map<string, (msg: In, handle: unknown) => void>()
  private readonly answerers = new Map<string, (args: unknown) => unknown>()
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  private nextRid = 1
  private closed = false
  private readonly closeFns: Array<() => void> = []

  constructor (private readonly port: Port) {
    port.on('message', (msg: Message, handle: unknown) => this.receive(msg, handle))
    port.on('disconnect', () => this.onDisconnect())
  }

  get connected (): boolean { return !this.closed && this.port.connected }

  /** Sends a message (with a listening socket's handle, for 'listener' messages); false if the channel is closed. */
  send (msg: Out, handle?: object): boolean {
    return this.raw(msg, handle)
  }

  on<T extends In['type']> (type: T, fn: (msg: Extract<In, { type: T }>, handle: unknown) => void): this {
    this.handlers.set(type, fn as (msg: In, handle: unknown) => void)
    return this
  }

  /** Asks the other side; rejects with RemoteError when it refuses, or when no answer comes. */
  async call<K extends keyof Asks & string> (name: K, args: Asks[K]['args'], timeoutMs = CALL_TIMEOUT_MS): Promise<Asks[K]['result']> {
    const rid = this.nextRid++
    return await new Promise<Asks[K]['result']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid)
        reject(new RemoteError(NO_ANSWER, `no answer to ${name} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(rid, { resolve: v => resolve(v as Asks[K]['result']), reject, timer })
      const call: CallMessage = { type: 'call', rid, name, args }
      if (!this.raw(call)) {
        clearTimeout(timer)
        this.pending.delete(rid)
        reject(new RemoteError(NO_ANSWER, `cannot ask ${name}: the channel is closed`))
      }
    })
  }

  /** How this side answers a call; a thrown BatonError travels back with its code. */
  answer<K extends keyof Answers & string> (name: K, fn: (args: Answers[K]['args']) => Promise<Answers[K]['result']> | Answers[K]['result']): this {
    this.answerers.set(name, fn as (args: unknown) => unknown)
    return this
  }

  /** Called once when the channel closes (the other process exited or disconnected). */
  onClose (fn: () => void): this {
    if (this.closed) fn()
    else this.closeFns.push(fn)
    return this
  }

  disconnect (): void {
    if (this.port.connected) this.port.disconnect?.()
  }

  private raw (msg: unknown, handle?: object): boolean {
    if (this.closed || !this.port.connected || this.port.send === undefined) return false
    try {
      // The callback swallows a send that races the channel's close (ERR_IPC_CHANNEL_CLOSED).
      this.port.send(msg, handle as never, {}, () => undefined)
      return true
    } catch {
      return false
    }
  }

  private receive (msg: Message, handle: unknown): void {
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') return
    if (msg.type === 'call') { void this.serve(msg as CallMessage); return }
    if (msg.type === 'result') { this.settle(msg as ResultMessage); return }
    this.handlers.get(msg.type)?.(msg as In, handle)
  }

  private async serve (call: CallMessage): Promise<void> {
    const fn = this.answerers.get(call.name)
    let result: ResultMessage
    try {
      if (fn === undefined) throw new RemoteError('BATON_ERR_IPC_UNKNOWN_CALL', `this process does not answer ${call.name}`)
      result = { type: 'result', rid: call.rid, ok: true, value: await fn(call.args) }
    } catch (err) {
      const e = err as Error & { code?: unknown, details?: unknown }
      const details = Array.isArray(e.details) ? e.details.map(String) : undefined
      result = { type: 'result', rid: call.rid, ok: false, error: { code: typeof e.code === 'string' ? e.code : 'BATON_ERR_IPC_FAILED', message: e.message, details } }
    }
    this.raw(result)
  }

  private settle (r: ResultMessage): void {
    const p = this.pending.get(r.rid)
    if (p === undefined) return
    this.pending.delete(r.rid)
    clearTimeout(p.timer)
    if (r.ok) p.resolve(r.value)
    else p.reject(new RemoteError(r.error?.code ?? 'BATON_ERR_IPC_FAILED', r.error?.message ?? 'refused', r.error?.details))
  }

  private onDisconnect (): void {
    if (this.closed) return
    this.closed = true
    for (const [rid, p] of this.pending) {
      clearTimeout(p.timer)
      p.reject(new RemoteError(NO_ANSWER, 'the other process went away'))
      this.pending.delete(rid)
    }
    for (const fn of this.closeFns.splice(0)) fn()
  }
}

// ChildProcess and process both have an IPC channel with this shape, but
// their typings spell send() and on() as many overloads that no one
// interface matches: the two functions below adapt them, once.

/** The endpoint of a forked child, in its parent. */
export function childEndpoint<Out extends Message, In extends Message, Asks extends Calls = Calls, Answers extends Calls = Calls> (child: ChildProcess): Endpoint<Out, In, Asks, Answers> {
  return new Endpoint(child as unknown as Port)
}

/** This process's endpoint towards the parent that forked it. */
export function parentEndpoint<Out extends Message, In extends Message, Asks extends Calls = Calls, Answers extends Calls = Calls> (): Endpoint<Out, In, Asks, Answers> {
  if (process.send === undefined) throw new BatonError('BATON_ERR_IPC_NO_PARENT', 'this process was not started by baton\'s supervisor (no IPC channel)')
  return new Endpoint(process as unknown as Port)
}
