import { BatonError } from '../errors.js'

export type CliErrorCode =
  | 'BATON_ERR_CLI_ADMIN_ADDRESS' // --admin or BATON_ADMIN is no http(s) address
  | 'BATON_ERR_CLI_UNREACHABLE' // the admin API cannot be reached, did not answer in time, or broke off
  | 'BATON_ERR_CLI_REFUSED' // the admin API refused the call (4xx): `adminCode` says why
  | 'BATON_ERR_CLI_SERVER' // the admin API failed (5xx)
  | 'BATON_ERR_CLI_BAD_ANSWER' // the answer is not JSON where JSON was due
  | 'BATON_ERR_CLI_NO_ROLLOUT' // pause, resume or abort with no rollout running
  | 'BATON_ERR_CLI_ROLLOUT_FAILED' // a watched rollout failed, was rolled back or aborted
  | 'BATON_ERR_CLI_LOST' // a watch lost the admin API
  | 'BATON_ERR_CLI_REPORT_GONE' // the pool of the rollout is gone, and its traffic with it
  | 'BATON_ERR_CLI_WRITE' // a file could not be written
  | 'BATON_ERR_CLI_UPGRADE_FAILED' // an upgrade of baton began and failed (the old generation serves on)

/**
 * A failure the CLI reports as one line on stderr (`baton: MESSAGE`) with
 * exit code 1, never a stack trace.
 */
export class CliError extends BatonError<CliErrorCode> {
  readonly exitCode = 1
  /** The admin API's own code, when it refused or failed (BATON_ERR_ADMIN_*, BATON_ERR_ROLLOUT_RUNNING, ...). */
  readonly adminCode: string | undefined

  constructor (code: CliErrorCode, message: string, adminCode?: string) {
    super(code, message)
    this.adminCode = adminCode
  }
}
