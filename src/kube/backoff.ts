// client-go's reflector backoff (wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)):
// each failure waits the current step, jittered up to twice it (duration + random × duration), and
// doubles the step up to the cap; the steps start over once a failure comes more than `resetMs`
// after the one before. The jitter keeps a fleet of nodes whose watches an API server restart cut
// at the same moment from coming back in step; the reset rule keeps a server that accepts and then
// drops every connection from being retried at the first step each time.
export interface BackoffOptions { initialMs: number; capMs: number; resetMs?: number; jitter?: number; now?: () => number; random?: () => number }

export class Backoff {
  private stepMs: number;
  private lastFailure = -Infinity;
  private readonly resetMs: number;
  private readonly jitter: number;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly o: BackoffOptions) {
    this.stepMs = o.initialMs;
    this.resetMs = o.resetMs ?? 120_000;
    this.jitter = o.jitter ?? 1;
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  /** How long to wait before retrying after a failure now. */
  next(): number {
    const t = this.now();
    if (t - this.lastFailure > this.resetMs) this.stepMs = this.o.initialMs;
    this.lastFailure = t;
    const step = this.stepMs;
    this.stepMs = Math.min(this.stepMs * 2, this.o.capMs);
    return Math.round(step + this.jitter * this.random() * step);
  }
}
