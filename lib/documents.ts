/**
 * The documents a new account accepts at sign-up, at their current versions. Bump a version here
 * when its document changes: flows started from then on show (and require) the new one; a client
 * that sends the versions it showed earlier gets 409 document_outdated and must show them again.
 */
import type { LegalDocument } from '../workflows/messages';

export const LEGAL_DOCUMENTS: readonly LegalDocument[] = [
  { id: 'privacy-policy', version: '2026-01' },
  { id: 'user-agreement', version: '2026-01' },
];
