// A flow's FLOW_NODE (the node itself is its client or backend: its packets keep their TTL, docs/
// core.md "Time exceeded") is decided when the flow is created (pipeline.ts newFlow) or restored
// (ct-restore.ts), from the node addresses in force. The host calls this after an apply that
// changes the node's addresses (the SNAT addresses, the detector's RTK_LOCAL_NODE entries:
// src/core/node-flag-sweep.ts), so that a flow whose client or backend became, or stopped being,
// a node address keeps or decrements the TTL of its next packet as a flow created now would — as
// the kernel, which decides per packet whether it delivers locally, forwards or sends its own.
//
// Cost: one pass over the flow table (CT_FLOWS_MAX entries: a state byte each, and for a flow in
// use the node-address filter of node-addr.ts, two byte tests, a compare on a hit), between two
// batches, only at such an apply (a NodeConfig change: rare): 3.3 ms for a table of 1M entries
// holding 839k flows (load 7 on 2 CPUs), the worker's frames waiting meanwhile as for any apply.
// Nothing on the packet path.
import * as L from "./layout";
import { loadConfig, loadTableSet, flowAt, gCtMax } from "./regions";
import { nodeAddrLoad, nodeEnds } from "./node-addr";

/** Sets FLOW_NODE on every flow in use (expired or not: its packets may come before the expiry
 * sweep frees it) whose client or backend is a node address of the tables in force, clears it on
 * the others; returns how many flows it changed. */
export function nodeFlagSweep(): u32 {
  loadConfig();
  loadTableSet();
  nodeAddrLoad();
  let changed: u32 = 0;
  for (let f: u32 = 1; f <= gCtMax; f++) {
    const fl = flowAt(f);
    if (<u32>fl.state == L.CTS_NONE) continue;
    const e = fl.ptr;
    const flags = <u32>load<u8>(e, L.CT_FLAGS);
    const want = nodeEnds(fl.clientAddr, fl.backendAddr, <u32>fl.family) != 0 ? L.FLOW_NODE : 0;
    if ((flags & L.FLOW_NODE) == want) continue;
    store<u8>(e, <u8>((flags & ~L.FLOW_NODE) | want), L.CT_FLAGS);
    changed++;
  }
  return changed;
}
