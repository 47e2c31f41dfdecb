// One traced packet explained (live trace in the workers, `wdp replay` offline): the dry-run
// trace's explanation of the core's trace record, plus the input 5-tuple, the Maglev slot and
// the conntrack entry after the packet. Called only for packets that matched a filter.
import type { Core, TraceRecord } from '../core/host.js';
import { explain } from '../core/dataplane.js';
import { tupleDst, tupleSrc, type Tuple } from './filter.js';
import type { LiveTraceEvent, TupleView } from './types.js';

export function tupleView(t: Tuple): TupleView {
  const v: TupleView = { src: tupleSrc(t), dst: tupleDst(t), proto: t.proto === 6 ? 'TCP' : t.proto === 17 ? 'UDP' : t.proto === 132 ? 'SCTP' : t.proto === 1 || t.proto === 58 ? 'ICMP' : String(t.proto) };
  if (t.sport || t.dport) { v.sport = t.sport; v.dport = t.dport; }
  return v;
}

/** Explains slot `i` of the batch just processed with TRACE_ON (its record is `rec`). */
export function traceEvent(core: Core, i: number, rec: TraceRecord, input: Tuple, worker: number, inPort: number, time: string): LiveTraceEvent {
  const res = explain(core, rec, core.readFrame(i));
  const ev: LiveTraceEvent = { ...res, time, worker, inPort, input: tupleView(input) };
  if (ev.output) { const { hex: _hex, ...rest } = ev.output; ev.output = rest as typeof ev.output; }
  const front = rec.front ? core.ir.frontends.get(rec.front) : undefined;
  if (front && front.maglev.length && res.selection === 'maglev') ev.maglevSlot = rec.hash % front.maglev.length;
  const flow = rec.flow ? core.flowEntry(rec.flow) : undefined;
  if (flow) ev.flow = flow;
  return ev;
}
