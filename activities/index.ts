/** Every activity the worker registers. All I/O lives here: MongoDB, mail, SMS, hashing. */
export { issueCode, deliverCode } from './codes';
export {
  findRecoveryTarget,
  findAndClaimRecoveryTarget,
  findClaimAndIssueCode,
  releaseRecoveryClaim,
  claimActiveFlow,
  releaseActiveFlow,
  recordFailedAttempt,
  verifySecurityAnswers,
  startRecoveryHold,
  applyPasswordReset,
} from './recovery';
export { openSupportCase, supportCaseAccount, expireSupportCase, notifySupportRejected } from './support';
export { createSignUpAccount } from './signup';
export { changeContactTarget, checkNewContact, applyContactChange, startContactChangeHold } from './contacts';
