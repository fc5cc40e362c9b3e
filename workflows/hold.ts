/**
 * The recovery hold, the same for a reset and a change of phone or email: a change proven without a
 * channel on file (security answers, support) waits RECOVERY_HOLD at `hold`; every channel on file
 * gets a one-time cancel link, and a veto with its token ends the flow `cancelled` and changes
 * nothing. Once the hold is over and the change is being applied, nothing can cancel it any more.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { FlowEnded, FlowState, sameDigest } from './flow-state';
import { stepMismatch, vetoUpdate } from './messages';

export class Hold {
  /** The change is being made: veto, cancel and supersede are refused (they would answer "cancelled" while it went through). */
  applying = false;
  private tokenDigest?: string;
  private vetoed = false;

  constructor(private readonly flow: FlowState) {
    setHandler(
      vetoUpdate,
      ({ tokenDigest }) => {
        if (!sameDigest(this.tokenDigest, tokenDigest)) return flow.fail('token_invalid');
        this.vetoed = true;
        flow.end('cancelled', 'vetoed');
        return flow.ok();
      },
      {
        validator: (..._args: unknown[]) => {
          flow.expect('hold')();
          this.refuseWhileApplying();
        },
      },
    );
  }

  /** For the validators of the other ways to end the flow. */
  refuseWhileApplying(): void {
    if (this.applying) throw stepMismatch();
  }

  /** Shows `hold`, has `notify` tell every channel on file (it returns the cancel token's digest), and waits it out; a veto unwinds with FlowEnded. */
  async wait(holdMs: number, notify: (holdUntil: string) => Promise<{ tokenDigest: string }>): Promise<void> {
    const { flow } = this;
    const holdUntil = Date.now() + holdMs;
    flow.deadline = holdUntil;
    flow.goTo('hold', { holdUntil: new Date(holdUntil).toISOString() });
    ({ tokenDigest: this.tokenDigest } = await notify(new Date(holdUntil).toISOString()));
    await condition(() => this.vetoed || !flow.active, holdMs);
    if (!flow.active) throw new FlowEnded(flow.status);
  }
}
