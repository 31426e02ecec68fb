/**
 * Errors baton raises on purpose carry a stable code, like fastify's
 * FST_ERR_*: the code names the kind (programs and tests match on it), the
 * message says it for a person. Each area has its own subclass and codes:
 * ConfigError (src/config/errors.ts), DriverError (src/driver/types.ts),
 * ControllerError (src/controller/errors.ts), AdminError (src/admin/errors.ts),
 * CliError (src/cli/errors.ts).
 */
export class BatonError<Code extends string = string> extends Error {
  constructor (readonly code: Code, message: string) {
    super(message)
    this.name = new.target.name
  }
}
