/** Errors baton raises on purpose, each with a stable code (like fastify's FST_ERR_*). */
export class BatonError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'BatonError'
    this.code = code
  }
}

export { ConfigError } from './config/errors.js'
