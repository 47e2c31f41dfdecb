// The worker's side of live trace and capture: sessions the daemon starts and stops between
// batches, checked around each core.process().
//
//   no session:        the worker checks `active` once per batch — nothing else runs
//   a live trace:      the batch runs with TRACE_ON (the core writes a trace record per frame; the
//                      decisions and state changes are the same as without it); before it, each
//                      frame's input 5-tuple is read; after it, frames matching the filter (input or
//                      output tuple, in port, then service/backend/reason from the record) are
//                      explained and posted, at most `rate` a second per worker
//   a capture:         frames arriving on the port (before translation) and/or leaving it (after)
//                      that match the 5-tuple filter are copied and posted
//
// Matches are posted once per batch and session (one message, not one per packet).
import * as L from '../../assembly/layout.js';
import type { Core } from '../core/host.js';
import { traceEvent } from './trace-event.js';
import { VERDICT_NAMES, reasonName } from '../core/names.js';
import { nowNs } from '../ports/pcap.js';
import { compileFilter, emptyTuple, readTuple, reasonMatches, tupleMatches, type CompiledFilter, type Tuple } from './filter.js';
import type { ObserveSpec, ObserveEvents, LiveTraceEvent, CapturedFrame } from './types.js';

interface Session { spec: ObserveSpec; match: CompiledFilter; tokens: number; refilledAt: number; trace: LiveTraceEvent[]; frames: CapturedFrame[] }

export class WorkerObserver {
  private readonly sessions = new Map<number, Session>();
  private list: Session[] = [];             // the sessions as an array: no iterator per frame
  private tracing = false;
  private inTuples: Tuple[] = [];
  private readonly outTuple = emptyTuple();

  constructor(private readonly worker: number, private readonly post: (e: ObserveEvents) => void) {}

  /** Checked once per batch: whether before()/after() have anything to do. */
  get active(): boolean { return this.sessions.size > 0; }

  start(spec: ObserveSpec): void {
    this.sessions.set(spec.session, { spec, match: compileFilter(spec.filter), tokens: spec.kind === 'trace' ? spec.rate : 0, refilledAt: Date.now(), trace: [], frames: [] });
    this.list = [...this.sessions.values()];
    this.tracing = [...this.sessions.values()].some((s) => s.spec.kind === 'trace');
  }

  stop(session: number): boolean {
    const had = this.sessions.delete(session);
    this.list = [...this.sessions.values()];
    this.tracing = [...this.sessions.values()].some((s) => s.spec.kind === 'trace');
    return had;
  }

  /** Before core.process(n): input tuples, captured input frames, the trace flag. */
  before(core: Core, n: number): void {
    while (this.inTuples.length < n) this.inTuples.push(emptyTuple());
    const u8 = core.u8, dv = core.dv;
    for (let i = 0; i < n; i++) {
      const d = core.descOffset(i);
      const len = Math.min(dv.getUint16(d + L.D_LEN, true), core.slotSize);
      const inPort = dv.getUint16(d + L.D_IN_PORT, true);
      // the input tuple: every frame's when tracing (the rewrite overwrites it), else only for
      // frames arriving on a captured port
      let t = this.tracing ? readTuple(u8, core.slotOffset(i), len, this.inTuples[i]) : undefined;
      for (let k = 0; k < this.list.length; k++) {
        const s = this.list[k], c = s.spec;
        if (c.kind !== 'capture' || c.direction === 'out' || c.port !== inPort) continue;
        t ??= readTuple(u8, core.slotOffset(i), len, this.inTuples[i]);
        if (!tupleMatches(s.match, t)) continue;
        s.frames.push(this.copy(core, i, len, 'in', c.snaplen));
      }
    }
    if (this.tracing) core.setCfg32(L.CFG_TRACE, L.TRACE_ON);
  }

  /** After core.process(n), before the slow path and tx: trace matches, captured output frames. */
  after(core: Core, n: number): void {
    if (this.tracing) core.setCfg32(L.CFG_TRACE, 0);
    const u8 = core.u8, dv = core.dv;
    const now = Date.now();
    for (const s of this.sessions.values()) {
      const c = s.spec;
      if (c.kind === 'trace') {
        s.tokens = Math.min(c.rate, s.tokens + ((now - s.refilledAt) * c.rate) / 1000);
        s.refilledAt = now;
      }
    }
    for (let i = 0; i < n; i++) {
      const d = core.descOffset(i);
      const verdict = dv.getUint8(d + L.D_VERDICT);
      const outPort = dv.getUint16(d + L.D_OUT_PORT, true);
      const len = Math.min(dv.getUint16(d + L.D_LEN, true), core.slotSize);
      // the output tuple, read at most once per frame for all sessions (a dropped frame has none)
      let out: Tuple | undefined;
      for (let k = 0; k < this.list.length; k++) {
        const s = this.list[k], c = s.spec;
        if (c.kind === 'capture') {
          if (c.direction === 'in' || outPort !== c.port || verdict === L.V_DROP || verdict === L.V_TO_HOST) continue;
          out ??= readTuple(u8, core.slotOffset(i), len, this.outTuple);
          if (tupleMatches(s.match, out)) s.frames.push(this.copy(core, i, len, 'out', c.snaplen));
          continue;
        }
        if (s.tokens < 1) continue;
        const f = c.filter;
        const inPort = dv.getUint16(d + L.D_IN_PORT, true);
        if (f.inPort !== undefined && f.inPort !== inPort) continue;
        if (!tupleMatches(s.match, this.inTuples[i])) {
          out ??= readTuple(u8, core.slotOffset(i), verdict === L.V_DROP ? 0 : len, this.outTuple);
          if (!tupleMatches(s.match, out)) continue;
        }
        const rec = core.traceRecord(i);
        const vName = VERDICT_NAMES[rec.verdict] ?? 'drop';
        if (!reasonMatches(f, reasonName(rec.reason), vName)) continue;
        const front = rec.front ? core.ir.frontends.get(rec.front) : undefined;
        if (f.service !== undefined && front?.service !== f.service) continue;
        const backend = rec.backend ? core.ir.backends.get(rec.backend) : undefined;
        if (f.backend !== undefined && backend?.addr !== f.backend) continue;
        s.tokens -= 1;
        const ev = traceEvent(core, i, rec, this.inTuples[i], this.worker, inPort, new Date(now).toISOString());
        s.trace.push(ev);
      }
    }
    for (const s of this.sessions.values()) {
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
