// A flow's node flag (FLOW_NODE: its client or backend is the node itself, so its packets keep their
// TTL — docs/core.md "Time exceeded") decided again when an apply changes the node's addresses.
// The core decides it when it creates or restores a flow; the node's addresses are the family's
// SNAT address and the local-traffic detector's node entries (routes with localSource 'node': the
// NodeConfig's node and masquerade addresses). When an apply changes either, every flow's flag is
// decided again from the new ones (assembly/node-sweep.ts), so a flow whose client or backend
// became a node address keeps the TTL of its next packet, and one that stopped being decrements
// it, as the kernel decides per packet. Counted in `ct_node_sweeps` (sweeps done) and
// `ct_node_flag_changed` (flows whose flag they changed).
//
// Cost: per apply, nothing unless it carries the route list or the SNAT addresses (then a string
// of the node entries, a few); per changed set of node addresses, one pass over the flow table in
// the core (CT_FLOWS_MAX entries: a state byte each, the node-address filter for flows in use),
// between two batches: 3.3 ms for 1M entries holding 839k flows (assembly/node-sweep.ts). What the apply held before is kept here as text, not read from the Ir: the
// compiler may patch the Ir it passed in place.
import type { IrDiff } from '../ir/diff.js';
import type { IrRoute } from '../ir/ir.js';

export interface NodeSweepCore {
  readonly exports: { ct_node_sweep(): number };
}

/** The node entries of a route list, as text (their order does not matter). */
function nodeRoutesKey(routes: readonly IrRoute[]): string {
  return routes.filter((r) => r.localSource === 'node').map((r) => r.prefix).sort().join(',');
}

export class NodeFlagSweep {
  /** Sweeps done, and the flows whose flag they changed. */
  sweeps = 0;
  changed = 0;
  private snat: string;
  private routes: string;

  /** `snatV4`, `snatV6`, `routes`: what the tables hold now (a new core: nothing). */
  constructor(snatV4?: string, snatV6?: string, routes: readonly IrRoute[] = []) {
    this.snat = `${snatV4 ?? ''}|${snatV6 ?? ''}`;
    this.routes = nodeRoutesKey(routes);
  }

  /** After the tables took `diff`: sweeps when it changed the node's addresses, or `always` (the
   * first apply over a restart's table image: its flows were restored on the image's addresses,
   * which the text here does not know). */
  applied(core: NodeSweepCore, diff: IrDiff, always = false): void {
    if (!diff.snat && !diff.routes && !always) return;
    let moved = always;
    if (diff.snat) {
      const s = `${diff.snat.v4 ?? ''}|${diff.snat.v6 ?? ''}`;
      if (s !== this.snat) { this.snat = s; moved = true; }
    }
    if (diff.routes) {
      const r = nodeRoutesKey(diff.routes);
      if (r !== this.routes) { this.routes = r; moved = true; }
    }
    if (!moved) return;
    this.sweeps++;
    this.changed += core.exports.ct_node_sweep() >>> 0;
  }
}
