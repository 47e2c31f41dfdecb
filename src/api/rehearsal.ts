// A rehearsal of the one-object change, once, when the control plane is idle after a large apply
// (a full sync, a restore).
//
// Why: a large apply takes the full compile's path; the next one-endpoint change takes the
// incremental one (the conflict check of one object, the incremental compile and its undo log,
// the diff's view, the rollback), which the process then runs for the first time. V8 compiles
// each of those functions to bytecode on its first call and interprets it: the first change after
// a full sync spent milliseconds there that later ones do not (docs/performance.md, "One-endpoint
// change: the first change's path, rehearsed").
//
// What: a dry run of one stored EndpointSlice of a Service with its first endpoint's readiness
// flipped, as the API takes a client's (its JSON text parsed, then ControlPlaneCore.apply with
// dryRun): a change the control plane checks and compiles like a real one (the service's backends
// and Maglev table are recomputed), then rolls back.
//
// Relies on: a dry run changes nothing — it stages no store write, posts nothing to the
// dataplane, counts no sync and rolls the compiler back (the API's dryRun, the same path; tested
// in test/rehearsal.test.js). It is queued like any transaction and starts only when none is
// queued or running: a real apply that arrives first goes first; one that arrives while the
// rehearsal runs waits for it (its own work: under a millisecond once warm, a few the first time).
//
// Costs: one dry run of one object on the control plane's thread per large apply (2–20 ms the first
// time on a loaded 2-vCPU VM: what the first change spent on it before); nothing when no
// EndpointSlice of a Service is stored. Not rehearsed: the HTTP request, the store's write and the
// forwarding worker's apply (a real apply would switch the tables).
import type { ControlPlaneCore } from './controlplane.js';
import type { SliceSpec } from '../model/types.js';
import { parseManifestSources } from '../model/load.js';

/** How often a rehearsal that found the control plane busy looks again, and for how long. */
const RETRY_MS = 20;
const RETRIES = 50;
/** Stored slices looked at for one that belongs to a Service and has an endpoint. */
const LOOK_AT = 100;

export class ChangeRehearsal {
  private due = false;
  /** Rehearsals run (for tests and the daemon's debug log). */
  runs = 0;

  constructor(private readonly core: Pick<ControlPlaneCore, 'idle' | 'apply' | 'compiler'>) {}

  /** After a large apply (ControlPlaneCore.run), or once the daemon forwards from a restored state
   * (daemon.ts: not in the middle of its start): rehearse once the control plane is idle (at most
   * once for several calls in a row). */
  schedule(): void {
    if (this.due) return;
    this.due = true;
    // after the large apply's answer went out (this runs from within its transaction)
    setImmediate(() => this.whenIdle(RETRIES));
  }

  private whenIdle(tries: number): void {
    if (!this.core.idle) {
      if (tries > 0) setTimeout(() => this.whenIdle(tries - 1), RETRY_MS).unref();
      else this.due = false;
      return;
    }
    this.due = false;
    const raw = rehearsalObject(this.core.compiler.eachSlice());
    if (!raw) return;
    this.runs++;
    // (its answer and any refusal are of no interest: it changes nothing either way)
    try {
      const { objs, texts } = parseManifestSources(JSON.stringify(raw), 'rehearsal');
      this.core.apply(objs, { dryRun: true, texts }).catch(() => undefined);
    } catch { /* its text did not parse: nothing to rehearse with */ }
  }
}

/** A stored slice of a Service with its first endpoint's readiness flipped (as a client would
 * send it), or null when none of the first LOOK_AT slices has a Service and an endpoint. */
export function rehearsalObject(slices: Iterable<SliceSpec>): Record<string, unknown> | null {
  let n = 0;
  for (const s of slices) {
    if (++n > LOOK_AT) break;
    const eps = s.raw.endpoints;
    if (s.service === null || !Array.isArray(eps) || eps.length === 0) continue;
    const ep = eps[0] as Record<string, unknown>;
    const cond = (typeof ep.conditions === 'object' && ep.conditions !== null ? ep.conditions : {}) as Record<string, unknown>;
    // (an absent `ready` means ready, as in Kubernetes)
    return { ...s.raw, endpoints: [{ ...ep, conditions: { ...cond, ready: cond.ready === false } }, ...eps.slice(1)] };
  }
  return null;
}
