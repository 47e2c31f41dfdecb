// Where a forwarding worker's loop time goes: the busy stages of each iteration (rx burst, Wasm
// core, slow path, tx burst), its idle waits and its busy-poll spins, in ns, with the batches and
// frames seen (the mean batch). Reported as the slowpath_time_*_ns, slowpath_batches and
// slowpath_frames counters (docs/running.md).
//
// Accumulated in a Float64Array rather than string-keyed counters: added to on every batch, a
// record of numbers boxes a fresh heap number per store once a sum passes 2^31 (2 s in ns), and a
// key built per call (`time_${stage}_ns`) is a string per call — garbage whose collection (a
// young-generation scavenge, 0.2–30 ms on a loaded VM) pauses the forwarding path.

export const LOOP_STAGES = ['rx', 'core', 'slow', 'tx', 'wait', 'spin'] as const;
export type LoopStage = typeof LOOP_STAGES[number];

export const T_RX = 0, T_CORE = 1, T_SLOW = 2, T_TX = 3, T_WAIT = 4, T_SPIN = 5;
const BATCHES = LOOP_STAGES.length, FRAMES = BATCHES + 1;

export class LoopTimes {
  private readonly v = new Float64Array(FRAMES + 1);

  /** `ms` (a performance.now() difference) added to stage `i` (T_RX..T_SPIN), in ns. */
  add(i: number, ms: number): void { this.v[i] += ms * 1e6; }

  /** One batch of `frames` frames went through the core. */
  batch(frames: number): void { this.v[BATCHES] += 1; this.v[FRAMES] += frames; }

  /** The counters, named as the worker reports them (without the `slowpath_` prefix); stages
   * never entered are left out, as before any frame. */
  entries(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    LOOP_STAGES.forEach((s, i) => { if (this.v[i] > 0) out.push([`time_${s}_ns`, Math.round(this.v[i])]); });
    if (this.v[BATCHES] > 0) out.push(['batches', this.v[BATCHES]], ['frames', this.v[FRAMES]]);
    return out;
  }
}
