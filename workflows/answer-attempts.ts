/**
 * The security-answer attempts of one flow (MAX_ANSWER_ATTEMPTS). Since ANSWERS_TAKEN_FIRST_PATCH an
 * attempt is taken before the answers are checked, so submissions that arrive together cannot check
 * more answers than the flow allows; before it each one waited on its check with the count untouched,
 * and ten simultaneous submissions were all checked (each three argon2 verifications).
 */
import { stepMismatch } from './messages';
import { ANSWERS_TAKEN_FIRST_PATCH, hasPatch } from './patches';

export class AnswerAttempts {
  private checking = 0;
  private takenFirst?: boolean;

  constructor(public left: number) {}

  /** Before the check: takes an attempt; with none left the submission is refused unchecked (409, like a step that is over). */
  take(): void {
    this.takenFirst ??= hasPatch(ANSWERS_TAKEN_FIRST_PATCH);
    if (!this.takenFirst) return;
    if (this.left <= 0) throw stepMismatch('No attempt is left.');
    this.left -= 1;
    this.checking += 1;
  }

  /** After the check: a right answer gives its attempt back. */
  settle(ok: boolean): void {
    if (!this.takenFirst) {
      if (!ok) this.left -= 1;
      return;
    }
    this.checking -= 1;
    if (ok) this.left += 1;
  }

  /** None left, and no check still running (one of them may yet be right). */
  get usedUp(): boolean {
    return this.left <= 0 && this.checking === 0;
  }
}
