import { ConfigError } from '../config/errors.js'
import { ControllerError, type ControllerErrorCode } from '../controller/errors.js'
import { BatonError } from '../errors.js'

export type AdminErrorCode =
  | 'BATON_ERR_ADMIN_UNAUTHORIZED' // 401: no token, or a wrong one
  | 'BATON_ERR_ADMIN_NO_ROUTE' // 404: no route has that path
  | 'BATON_ERR_ADMIN_METHOD' // 404: the path exists, not with that method
  | 'BATON_ERR_ADMIN_BAD_PATH' // 400: the path is not valid percent-encoding
  | 'BATON_ERR_ADMIN_BAD_JSON' // 400: the body is not JSON
  | 'BATON_ERR_ADMIN_BAD_BODY' // 400: the body does not fit the route's schema
  | 'BATON_ERR_ADMIN_BODY_TOO_LARGE' // 413
  | 'BATON_ERR_ADMIN_INTERNAL' // 500: a bug; logged

export type AdminStatus = 400 | 401 | 404 | 409 | 413 | 500

/** An admin request refused by the admin API itself, with the status it answers. */
export class AdminError extends BatonError<AdminErrorCode> {
  constructor (readonly status: AdminStatus, code: AdminErrorCode, message: string) {
    super(code, message)
  }
}

/** The status of each refusal the controller makes. */
const CONTROLLER_STATUS: Record<ControllerErrorCode, AdminStatus> = {
  BATON_ERR_POOL_NOT_FOUND: 404,
  BATON_ERR_POOL_NOT_MANAGED: 400,
  BATON_ERR_POOL_GONE: 404,
  BATON_ERR_ROLLOUT_NOT_FOUND: 404,
  BATON_ERR_ROLLOUT_RUNNING: 409,
  BATON_ERR_ROLLOUT_FINISHED: 409,
  BATON_ERR_NO_PREVIOUS_REVISION: 409,
  BATON_ERR_STRATEGY_STUCK: 400,
  BATON_ERR_STRATEGY_INCOMPLETE: 400,
  BATON_ERR_NOTHING_TO_PROMOTE: 409,
  BATON_ERR_UPGRADE_RUNNING: 409,
  BATON_ERR_UPGRADE_ROLLOUT: 409,
  BATON_ERR_UPGRADE_CONFIG: 400,
  BATON_ERR_UPGRADE_BROKEN: 500,
  BATON_ERR_UPGRADE_NO_CONTROLLER: 409,
  BATON_ERR_SUPERVISOR: 500
}

/** The answer to any error: its status, code and message. Anything not raised on purpose is a 500. */
export function answerOf (err: unknown): { status: AdminStatus, code: string, message: string } {
  if (err instanceof AdminError) return { status: err.status, code: err.code, message: err.message }
  if (err instanceof ConfigError) return { status: 400, code: err.code, message: err.message }
  if (err instanceof ControllerError) return { status: CONTROLLER_STATUS[err.code], code: err.code, message: err.message }
  return { status: 500, code: 'BATON_ERR_ADMIN_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}
