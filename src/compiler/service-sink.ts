// Where compiling a service puts its frontends and backends — the one thing a full compile and an
// incremental one do differently with a service:
//   TableSink   a full compile (from empty): rows straight into the compiler's column tables, no
//               object per record; the diff lists the tables' rows afterwards.
//   ObjectSink  an incremental compile (and recompileAll): IrFrontend/IrBackend objects, which the
//               caller compares with the current ones and puts into the Ir and the diff.
import * as L from '../../assembly/layout.js';
import type { Family, FrontendKind, IrBackend, IrFrontend, Proto } from '../ir/ir.js';
import type { BackendTable } from './backend-table.js';
import type { PortOwner } from './columns.js';
import type { ActiveSet, FrontendTable } from './frontend-table.js';
import type { Candidates } from './candidates.js';
import { dropRefs } from './service-output.js';

const NO_MAC = '00:00:00:00:00:00';

export interface ServiceSink {
  /** The backends of service port `owner`: candidates 0 .. n-1 of `cands`. */
  backends(owner: PortOwner, cands: Candidates): void;
  /** Frontend `id` of service port `owner`, spreading over active set `set` (its arrays are
   * referenced, not copied); `clusterFront`: IrFrontend.clusterFront (0 = none). */
  frontend(id: number, owner: PortOwner, kind: FrontendKind, addr: string, family: Family, port: number, proto: Proto,
    flags: number, affinityTimeoutMs: number, ranges: string[], set: ActiveSet, clusterFront: number): void;
}

export class TableSink implements ServiceSink {
  constructor(private readonly backendTable: BackendTable, private readonly frontendTable: FrontendTable) {}
  backends(owner: PortOwner, cands: Candidates): void {
    this.backendTable.putRun(owner, cands);
  }
  frontend(id: number, owner: PortOwner, kind: FrontendKind, addr: string, family: Family, port: number, proto: Proto,
    flags: number, affinityTimeoutMs: number, ranges: string[], set: ActiveSet, clusterFront: number): void {
    this.frontendTable.put(id, owner, kind, addr, family, port, proto, flags, affinityTimeoutMs, ranges, set, clusterFront);
  }
}

/** Collects one service's records as objects: fronts[0 .. nFronts), backs[0 .. nBacks). */
export class ObjectSink implements ServiceSink {
  readonly fronts: IrFrontend[] = [];
  nFronts = 0;
  readonly backs: IrBackend[] = [];
  nBacks = 0;
  reset(): void { this.nFronts = 0; this.nBacks = 0; }
  /** Drops the references (between changes), keeping the arrays' lengths. */
  release(): void { this.reset(); dropRefs(this.fronts, undefined as unknown as IrFrontend); dropRefs(this.backs, undefined as unknown as IrBackend); }

  backends(owner: PortOwner, cands: Candidates): void {
    for (let i = 0; i < cands.n; i++) {
      const hop = cands.hop[i], ep = cands.ep[i]!, nodeName = ep.nodeName, zone = ep.zone;
      const b: IrBackend = {
        id: cands.id[i], service: owner.service, portName: owner.portName, addr: cands.addr[i], family: cands.family[i], port: cands.port[i], state: cands.state[i],
        outPort: hop ? hop.outPort : L.PORT_NONE, dstMac: hop ? hop.dstMac : NO_MAC, srcMac: hop ? hop.srcMac : NO_MAC,
      };
      if (nodeName !== undefined) b.nodeName = nodeName;
      if (zone !== undefined) b.zone = zone;
      this.backs[this.nBacks++] = b;
    }
  }
  frontend(id: number, owner: PortOwner, kind: FrontendKind, addr: string, family: Family, port: number, proto: Proto,
    flags: number, affinityTimeoutMs: number, ranges: string[], set: ActiveSet, clusterFront: number): void {
    const f: IrFrontend = { // an incremental compile's sets are arrays of their own (offset 0, exact size)
      id, service: owner.service, portName: owner.portName, kind, addr, family, port, proto,
      flags, affinityTimeoutMs, sourceRanges: ranges, backends: set.ids as number[], maglev: set.mag, maglevIndexed: true,
    };
    if (clusterFront) f.clusterFront = clusterFront;
    this.fronts[this.nFronts++] = f;
  }
}
