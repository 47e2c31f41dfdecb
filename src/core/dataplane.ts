// LocalDataplane: the Dataplane interface over a Core in this thread. Used by tests, the bench
// suites and the non-root demo; the daemon's WorkerDataplane answers the same calls from worker
// threads. Trace runs the real core in TRACE_ON | TRACE_DRY_RUN mode, so tracing a packet never
// creates a flow or moves a counter.
import * as L from '../../assembly/layout.js';
import { Core, type CoreOptions } from './host.js';
import type { Ir } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import type { CounterSnapshot, Dataplane, FlowFilter, FlowInfo, Programmed, TracePacketSpec, TraceResult } from './dataplane-types.js';
import { frame } from '../packet/build.js';
import { formatAddr } from '../util/addr.js';
import {
  VERDICT_NAMES, BACKEND_STATE_NAMES, TRACE_CT_NAMES, TRACE_SELECT_NAMES, reasonName, stageNames,
} from './names.js';
import type { TraceRecord } from './host.js';

export class LocalDataplane implements Dataplane {
  readonly core: Core;
  constructor(coreOrOptions: Core | CoreOptions = {}) {
    this.core = coreOrOptions instanceof Core ? coreOrOptions : Core.create(coreOrOptions);
  }

  async apply(diff: IrDiff, ir: Ir): Promise<Programmed> {
    this.core.applyDiff(diff, ir);
    return { generation: this.core.generation, programmedAtNs: Number(process.hrtime.bigint()) };
  }

  async counters(): Promise<CounterSnapshot> { return this.core.counters(); }
  async conntrack(filter?: FlowFilter): Promise<FlowInfo[]> { return this.core.flows(filter); }
  generation(): number { return this.core.generation; }
  async close(): Promise<void> { /* nothing held outside the Wasm instance */ }

  async trace(spec: TracePacketSpec): Promise<TraceResult> {
    return traceOnCore(this.core, spec);
  }
}

/** Builds the described packet, runs it through `core` in dry-run trace mode, explains it. */
export function traceOnCore(core: Core, spec: TracePacketSpec): TraceResult {
  const proto = spec.proto;
  const needsPorts = proto === 'TCP' || proto === 'UDP' || proto === 'SCTP';
  const f = frame({
    src: spec.src, dst: spec.dst, proto,
    sport: needsPorts ? spec.sport ?? 40000 : undefined,
    dport: needsPorts ? spec.dport ?? 80 : undefined,
    flags: proto === 'TCP' ? spec.tcpFlags ?? 'S' : undefined,
    icmpType: proto === 'ICMP' ? (spec.src.includes(':') ? 128 : 8) : undefined,
    srcMac: spec.srcMac, dstMac: spec.dstMac,
  });
  const [r] = core.trace([f], spec.inPort ?? 0, true);
  return explain(core, r.trace, r.frame);
}

export function explain(core: Core, t: TraceRecord, out: Uint8Array): TraceResult {
  const ir = core.ir;
  const res: TraceResult = {
    verdict: VERDICT_NAMES[t.verdict] ?? 'drop',
    reason: reasonName(t.reason),
    outPort: t.outPort === L.PORT_NONE ? null : t.outPort,
    stages: stageNames(t.stages),
    conntrack: TRACE_CT_NAMES[t.ct] ?? 'none',
    selection: TRACE_SELECT_NAMES[t.select] ?? 'none',
    hash: t.hash,
  };
  const frontend = t.front ? ir.frontends.get(t.front) : undefined;
  if (frontend) res.frontend = { id: frontend.id, service: frontend.service, portName: frontend.portName, kind: frontend.kind, addr: frontend.addr, port: frontend.port };
  const backend = t.backend ? ir.backends.get(t.backend) : undefined;
  if (backend) res.backend = { id: backend.id, addr: backend.addr, port: backend.port, state: BACKEND_STATE_NAMES[backend.state] ?? String(backend.state) };
  if (res.verdict !== 'drop' && (t.family === 4 || t.family === 6) && t.l3 > 0) {
    // the rewritten packet's addresses/ports, read at the offsets the core reported
    const fam = t.family as 4 | 6;
    const src = fam === 4 ? formatAddr(out, 4, t.l3 + 12) : formatAddr(out, 6, t.l3 + 8);
    const dst = fam === 4 ? formatAddr(out, 4, t.l3 + 16) : formatAddr(out, 6, t.l3 + 24);
    const o: NonNullable<TraceResult['output']> = { src, dst, hex: Buffer.from(out).toString('hex') };
    // the answer's protocol, not the packet's: a reject answers UDP with ICMP, whose type/code and
    // checksum are no ports (IPv6: the next header; the core's answers carry no extension headers)
    const proto = out[fam === 4 ? t.l3 + 9 : t.l3 + 6];
    if ((proto === 6 || proto === 17 || proto === 132) && t.l4 > 0 && t.l4 + 4 <= out.length) {
      o.sport = (out[t.l4] << 8) | out[t.l4 + 1];
      o.dport = (out[t.l4 + 2] << 8) | out[t.l4 + 3];
    }
    res.output = o;
  }
  return res;
}
