import { BatonError } from '../errors.js'

export type ControllerErrorCode =
  | 'BATON_ERR_POOL_NOT_FOUND' // no pool of that name
  | 'BATON_ERR_POOL_NOT_MANAGED' // a static pool has nothing to roll out
  | 'BATON_ERR_POOL_GONE' // the pool of a rollout was removed since
  | 'BATON_ERR_ROLLOUT_NOT_FOUND' // no rollout of that id (or it was pruned)
  | 'BATON_ERR_ROLLOUT_RUNNING' // one rollout at a time per pool (G5)
  | 'BATON_ERR_ROLLOUT_FINISHED' // pause/resume/abort of a rollout that has ended
  | 'BATON_ERR_NO_PREVIOUS_REVISION' // nothing to roll back to
  | 'BATON_ERR_STRATEGY_STUCK' // maxSurge and maxUnavailable both 0: the rollout could never move
  | 'BATON_ERR_STRATEGY_INCOMPLETE' // strategy: canary with no canary.steps in the body nor the pool's config
  | 'BATON_ERR_NOTHING_TO_PROMOTE' // promote of a rollout that is no canary, or has no step left
  | 'BATON_ERR_UPGRADE_RUNNING' // an upgrade of baton is under way: one at a time, and no changes meanwhile
  | 'BATON_ERR_UPGRADE_ROLLOUT' // an upgrade of baton was asked while a rollout runs
  | 'BATON_ERR_UPGRADE_CONFIG' // the config file has errors: the upgrade is refused, nothing changed
  | 'BATON_ERR_UPGRADE_BROKEN' // the installed baton cannot even check the config: the upgrade is refused
  | 'BATON_ERR_UPGRADE_NO_CONTROLLER' // no controller serves at this moment (one is being restarted)
  | 'BATON_ERR_SUPERVISOR' // the supervisor did not answer

/** A request the controller refuses: what was asked does not exist or cannot be done now. */
export class ControllerError extends BatonError<ControllerErrorCode> {
  /** What a refused config got wrong (BATON_ERR_UPGRADE_CONFIG): `FILE:LINE:COL key: message` lines. */
  problems: string[] = []
}
