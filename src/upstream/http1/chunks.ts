/**
 * Where response body bytes go when they leave the shared read buffer. A
 * small run is copied into Node's pooled small buffers; a large one into a
 * 64 KiB buffer that comes back here once the client's socket has written
 * it (see recycle), so a stream of large responses allocates no memory
 * outside V8's heap per read, and sets off no garbage collection for it.
 */

const SIZE = 64 * 1024
/** Runs up to this long are copied into Node's pool (Buffer.allocUnsafe does so below 4 KiB). */
const SMALL = 4095
/** Idle large buffers kept for reuse (4 MiB). */
const MAX_IDLE = 64
const idle: ArrayBuffer[] = []

/** A copy of src[start, end) that the caller owns; hand a large one back with recycle() once nothing refers to it. */
export function copyOut (src: Buffer, start: number, end: number): Buffer {
  const n = end - start
  const chunk = n <= SMALL ? Buffer.allocUnsafe(n) : Buffer.from(idle.pop() ?? new ArrayBuffer(SIZE), 0, n)
  src.copy(chunk, 0, start, end)
  return chunk
}

/** Whether `chunk` came from copyOut's large buffers (and so may be recycled). */
export function recyclable (chunk: Buffer): boolean {
  return chunk.byteOffset === 0 && chunk.buffer.byteLength === SIZE && chunk.length > SMALL
}

/** Takes back a large chunk from copyOut whose bytes have been written and that nothing reads any more. */
export function recycle (chunk: Buffer): void {
  if (idle.length < MAX_IDLE && recyclable(chunk)) idle.push(chunk.buffer as ArrayBuffer)
}
