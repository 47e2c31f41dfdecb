// `wdp replay`: a capture run offline through the same forwarding core the daemon runs, with the
// given Services/EndpointSlices/NodeConfig (e.g. the daemon's own, from `wdp get ... -o yaml`).
// Frames run one at a time in trace mode (the same decisions and state changes as the daemon:
// conntrack, affinity, SNAT ports), on a clock taken from the capture's timestamps, so timeouts
// fall as they did. The result of each frame is explained like a live trace.
import * as L from '../../assembly/layout.js';
import { Core } from '../core/host.js';
import { compileAll } from '../compiler/compiler.js';
import { validateAll } from '../model/schema.js';
import type { PcapRecord } from '../ports/pcap.js';
import { emptyTuple, readTuple } from './filter.js';
import { traceEvent } from './trace-event.js';
import type { LiveTraceEvent } from './types.js';

export interface ReplayOptions {
  inPort?: number;           // dataplane port index the frames arrive on (default 0)
  flows?: number;            // conntrack capacity (default the daemon's, 65536)
  wasmPath?: string;
}

export interface ReplayResult { event: LiveTraceEvent; frame: Uint8Array; tsNs: bigint }

/** Compiles `objects` (unvalidated manifests) and runs `records` through a fresh core. */
export function replay(objects: unknown[], records: readonly PcapRecord[], opts: ReplayOptions = {}): ReplayResult[] {
  const ir = compileAll(validateAll(objects), { maglevWorker: 'never' }).ir;
  const core = Core.create({ flows: opts.flows ?? 65536, batchMax: 1, ...(opts.wasmPath ? { wasmPath: opts.wasmPath } : {}) });
  core.applyIr(ir);
  const inPort = opts.inPort ?? 0;
  const t0 = records.length ? records[0].tsNs : 0n;
  const tuple = emptyTuple();
  const out: ReplayResult[] = [];
  for (const r of records) {
    // the core clock starts at 1 s (0 is never a flow's timestamp) and follows the capture
    const now = 1000 + Number((r.tsNs - t0) / 1_000_000n);
    core.writeFrame(0, r.data, inPort);
    readTuple(core.u8, core.slotOffset(0), Math.min(r.data.length, core.slotSize), tuple);
    core.setCfg32(L.CFG_TRACE, L.TRACE_ON);
    try { core.process(1, now); } finally { core.setCfg32(L.CFG_TRACE, 0); }
    const time = new Date(Number(r.tsNs / 1_000_000n)).toISOString();
    out.push({ event: traceEvent(core, 0, core.traceRecord(0), tuple, 0, inPort, time), frame: core.readFrame(0), tsNs: r.tsNs });
  }
  return out;
}
