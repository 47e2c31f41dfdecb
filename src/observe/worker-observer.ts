// The worker's side of live trace and capture: sessions the daemon starts and stops between
// batches, checked around each core.process() and before each tx burst.
//
//   no session:        the worker checks `active` once per batch — nothing else runs, and the
//                      core's filter block has no active filter (one branch per batch in the core)
//   a live trace:      its filter is compiled into one of the core's TF_SLOTS filter slots
//                      (core-filter.ts); before each batch the slot gets a budget (the rate cap's
//                      tokens), and the core records the frames that match (their trace record
//                      and input 5-tuple). After the batch only those are read, explained and
//                      posted: frames that do not match never reach JS. At most TF_SLOTS live
//                      traces run at once in a worker.
//   a capture:         frames arriving on the port (before translation) are copied before
//                      process(); frames leaving it (after translation, including what the slow
//                      path answered or injected: ARP/ND replies, probes, bridged frames, and the
//                      core's RSTs / ICMP errors) are copied just before the tx burst (`sent`)
//
// Matches are posted once per batch and session (one message, not one per packet).
import * as L from '../../assembly/layout.js';
import type { Core } from '../core/host.js';
import { traceEvent } from './trace-event.js';
import { nowNs } from '../ports/pcap.js';
import { compileFilter, emptyTuple, readTuple, tupleMatches, type CompiledFilter } from './filter.js';
import { budgetLeft, filterIds, matchCount, readMatch, setActive, setBudget, writeCoreFilter, writeIds, type FilterIds } from './core-filter.js';
import type { ObserveSpec, ObserveEvents, LiveTraceEvent, CapturedFrame } from './types.js';

interface Session {
  spec: ObserveSpec; match: CompiledFilter;
  slot: number;                 // the core filter slot of a live trace (-1: a capture)
  ids: FilterIds;               // the ids the core narrows service / backend by
  tokens: number; refilledAt: number; budget: number;
  trace: LiveTraceEvent[]; frames: CapturedFrame[];
}

export class WorkerObserver {
  private readonly sessions = new Map<number, Session>();
  private traces: Session[] = [];
  private captures: Session[] = [];
  private all: Session[] = [];
  private capturingIn = false;              // a capture wants frames as they arrive
  private inPorts = new Uint8Array(0);      // per port index: 1 when a capture wants its frames in / out
  private outPorts = new Uint8Array(0);
  private generation = -1;                  // the table generation the id lists were made for
  private mask = 0;                         // the core filter slots this observer made active
  private readonly input = emptyTuple();
  private readonly tuple = emptyTuple();

  constructor(private readonly worker: number, private readonly core: Core, private readonly post: (e: ObserveEvents) => void) {}

  /** Checked once per batch: whether before()/after() have anything to do. */
  get active(): boolean { return this.sessions.size > 0; }
  /** Whether sent() has anything to do. */
  get capturing(): boolean { return this.captures.length > 0; }

  /** Starts a session (between batches). A live trace beyond TF_SLOTS in use throws. */
  start(spec: ObserveSpec): void {
    if (this.sessions.has(spec.session)) this.stop(spec.session);
    let slot = -1;
    const match = compileFilter(spec.filter);
    let ids: FilterIds = {};
    if (spec.kind === 'trace') {
      const used = new Set(this.traces.map((s) => s.slot));
      for (let s = 0; s < L.TF_SLOTS && slot < 0; s++) if (!used.has(s)) slot = s;
      if (slot < 0) throw new Error(`at most ${L.TF_SLOTS} live traces can run at once`);
      ids = filterIds(this.core, spec.filter);
      writeCoreFilter(this.core, slot, match, ids);
    }
    this.sessions.set(spec.session, { spec, match, slot, ids, tokens: spec.kind === 'trace' ? spec.rate : 0, refilledAt: Date.now(), budget: 0, trace: [], frames: [] });
    this.update();
  }

  stop(session: number): boolean {
    const had = this.sessions.delete(session);
    this.update();
    return had;
  }

  private update(): void {
    const all = this.all = [...this.sessions.values()];
    this.traces = all.filter((s) => s.spec.kind === 'trace');
    this.captures = all.filter((s) => s.spec.kind === 'capture');
    this.capturingIn = this.captures.some((s) => s.spec.kind === 'capture' && s.spec.direction !== 'out');
    this.inPorts = new Uint8Array(this.captures.length ? L.PORT_NONE + 1 : 0);
    this.outPorts = new Uint8Array(this.inPorts.length);
    for (const s of this.captures) {
      if (s.spec.kind !== 'capture') continue;
      if (s.spec.direction !== 'out') this.inPorts[s.spec.port] = 1;
      if (s.spec.direction !== 'in') this.outPorts[s.spec.port] = 1;
    }
    let mask = 0;
    const dv = this.core.dv, base = this.core.traceFilterBase;
    for (const s of this.traces) { setBudget(dv, base, s.slot, 0); mask |= 1 << s.slot; }
    if (mask !== this.mask) setActive(this.core, mask);
    this.mask = mask;
    this.generation = this.core.generation;
  }

  /** Before core.process(n): the live traces' budgets (and ids after a table change), the
   * captured input frames — not those of slots [heldFrom, heldTo): frames the worker held for a
   * neighbour (src/daemon/hold-queue.ts), captured when received, now decided again. */
  before(core: Core, n: number, heldFrom = 0, heldTo = 0): void {
    if (this.traces.length) this.arm(core);
    if (this.capturingIn) this.captureIn(core, n, heldFrom, heldTo);
  }

  private arm(core: Core): void {
    let now = 0;                            // the clock (~0.1-0.3 µs a read here) only for buckets not full
    const regen = core.generation !== this.generation;
    const dv = core.dv, base = core.traceFilterBase;
    this.generation = core.generation;
    for (const s of this.traces) {
      const c = s.spec as Extract<ObserveSpec, { kind: 'trace' }>;
      if (s.tokens < c.rate) {
        now ||= Date.now();
        s.tokens = Math.min(c.rate, s.tokens + ((now - s.refilledAt) * c.rate) / 1000);
        s.refilledAt = now;
      }
      s.budget = Math.min(Math.floor(s.tokens), L.TM_MAX);
      setBudget(dv, base, s.slot, s.budget);
      // services and backends added or removed: the ids the names stand for change
      if (regen && (c.filter.service !== undefined || c.filter.backend !== undefined)) {
        s.ids = filterIds(core, c.filter);
        writeIds(core, s.slot, s.ids);
      }
    }
  }

  // The capture loops read descriptor fields as bytes of core.u8 (a DataView call per field cost
  // ~2x as much per frame): they run for every frame while a capture is active.
  private captureIn(core: Core, n: number, heldFrom: number, heldTo: number): void {
    const u8 = core.u8, dv = core.dv, desc = core.descOffset(0), wanted = this.inPorts;
    for (let i = 0; i < n; i++) {
      if (i === heldFrom && heldTo > heldFrom) { i = heldTo - 1; continue; }
      const d = desc + i * L.DESC_SIZE;
      const inPort = u8[d + L.D_IN_PORT] | (u8[d + L.D_IN_PORT + 1] << 8);
      if (!wanted[inPort]) continue;
      let read = false;
      for (const s of this.captures) {
        const c = s.spec;
        if (c.kind !== 'capture' || c.direction === 'out' || c.port !== inPort) continue;
        const len = Math.min(dv.getUint16(d + L.D_LEN, true), core.slotSize);
        if (!read) { readTuple(u8, core.slotOffset(i), len, this.tuple); read = true; }
        if (tupleMatches(s.match, this.tuple)) s.frames.push(this.copy(core, i, len, 'in', c.snaplen));
      }
    }
  }

  /** After core.process(n), before the slow path: the frames the core matched, explained. */
  after(core: Core, n: number): void {
    if (this.traces.length) this.report(core, n);
    this.flush();
  }

  private report(core: Core, n: number): void {
    const dv = core.dv, base = core.traceFilterBase;
    const m = Math.min(matchCount(dv, base), L.TM_MAX);
    let time = '';
    for (let k = 0; k < m; k++) {
      const match = readMatch(core, k, this.input);
      if (match.index >= n) continue;
      let ev: LiveTraceEvent | undefined;
      for (const s of this.traces) {
        if ((match.filters & (1 << s.slot)) === 0) continue;
        const f = s.spec.filter;
        // what the core could not narrow by id (or verifies the ids were current)
        if (f.service !== undefined && (match.trace.front ? core.ir.frontends.get(match.trace.front)?.service : undefined) !== f.service) continue;
        if (f.backend !== undefined && (match.trace.backend ? core.ir.backends.get(match.trace.backend)?.addr : undefined) !== f.backend) continue;
        const inPort = dv.getUint16(core.descOffset(match.index) + L.D_IN_PORT, true);
        time ||= new Date().toISOString();
        ev ??= traceEvent(core, match.index, match.trace, this.input, this.worker, inPort, time);
        s.trace.push(ev);
      }
    }
    for (const s of this.traces) {
      const used = s.budget - budgetLeft(dv, base, s.slot);
      if (used > 0 && s.tokens >= (s.spec as Extract<ObserveSpec, { kind: 'trace' }>).rate) s.refilledAt = Date.now();   // the bucket starts refilling now
      s.tokens -= used;
      s.budget = 0;
      setBudget(dv, base, s.slot, 0);   // a batch the observer does not arm (none received) records nothing
    }
  }

  /** Just before the tx burst of `total` frames (the batch after the slow path, plus injected
   * frames): every frame a captured port sends. */
  sent(core: Core, total: number): void {
    const u8 = core.u8, dv = core.dv, desc = core.descOffset(0), wanted = this.outPorts;
    for (let i = 0; i < total; i++) {
      const d = desc + i * L.DESC_SIZE;
      const verdict = u8[d + L.D_VERDICT];
      if (verdict !== L.V_FORWARD && verdict !== L.V_REJECT) continue;
      const outPort = u8[d + L.D_OUT_PORT] | (u8[d + L.D_OUT_PORT + 1] << 8);
      if (!wanted[outPort]) continue;
      let read = false;
      for (const s of this.captures) {
        const c = s.spec;
        if (c.kind !== 'capture' || c.direction === 'in' || outPort !== c.port) continue;
        const len = Math.min(dv.getUint16(d + L.D_LEN, true), core.slotSize);
        if (!read) { readTuple(u8, core.slotOffset(i), len, this.tuple); read = true; }
        if (tupleMatches(s.match, this.tuple)) s.frames.push(this.copy(core, i, len, 'out', c.snaplen));
      }
    }
    this.flush();
  }

  private flush(): void {
    for (const s of this.all) {
      if (!s.trace.length && !s.frames.length) continue;
      this.post({ session: s.spec.session, worker: this.worker, trace: s.trace, frames: s.frames });
      s.trace = []; s.frames = [];
    }
  }

  private copy(core: Core, i: number, len: number, dir: 'in' | 'out', snaplen: number): CapturedFrame {
    const at = core.slotOffset(i);
    return { tsNs: nowNs(), dir, origLen: len, data: core.u8.slice(at, at + Math.min(len, snaplen)) };
  }
}
