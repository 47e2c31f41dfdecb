// When the daemon (re)programs its NodeConfig: a learned or lost neighbour, a port added or removed,
// the Node's addresses changing all mark it changed; it is programmed once per debounce interval,
// one apply at a time, each apply reading the node config when it runs (so it carries everything
// changed up to then).
//
// The rule that matters: "changed" is cleared BEFORE the node config is read for an apply, never
// after the apply returns. A change that arrives while an apply is in flight (its node config was
// read before the change) then stays marked and gets its own apply. Clearing it after the apply
// lost such a change: a neighbour learned during the daemon's first program was logged as learned
// and never programmed, and the pod stayed unreachable until something else changed.
export class NodeProgramming {
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private live = false;
  private stopped = false;

  /** `apply` reads the node config and programs it; its errors go to `onError` (the next change
   * programs again). */
  constructor(private readonly apply: () => Promise<void>, private readonly debounceMs: number, private readonly onError: (e: Error) => void) {}

  /** Something in the node config changed: programmed within debounceMs once started (before
   * that, by start()). */
  changed(): void {
    this.dirty = true;
    if (!this.timer && this.live && !this.stopped) this.timer = setTimeout(() => { this.timer = undefined; void this.now(); }, this.debounceMs);
  }

  /** Programs now, after the apply in flight; resolves when done (never rejects). */
  now(): Promise<void> {
    if (this.stopped) return this.chain;
    this.dirty = false;
    this.chain = this.chain.then(() => this.apply().catch((e: Error) => this.onError(e)));
    return this.chain;
  }

  /** The first program, whose failure is the caller's (the daemon's start fails): run directly,
   * with the same clearing rule. */
  async first(apply: () => Promise<void>): Promise<void> {
    this.dirty = false;
    await apply();
  }

  /** From now on changes are programmed by the debounce timer; one that came before is now. */
  start(): void {
    this.live = true;
    if (this.dirty) void this.now();
  }

  /** Whether a change is waiting (marked, or its timer running). */
  get pending(): boolean { return this.dirty || this.timer !== undefined; }

  /** Resolves once every change so far is programmed (bounded: ~2 s of waiting for the timer). */
  async settled(): Promise<void> {
    for (let i = 0; i < 100 && this.pending && !this.stopped; i++) await new Promise((r) => setTimeout(r, 20));
    await this.chain;
  }

  /** No more programs; resolves when the one in flight is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
  }
}
