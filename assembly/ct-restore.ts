// Restoring saved flows (a daemon restart or upgrade; src/core/flow-export.ts is the host side).
// The host stages one flow entry in the layout's CT_SIZE format, with CT_REPLY_HASH already set,
// and this inserts it through the core's own allocation and index insert: the free list, the
// active count and the index stay exactly as if the core had created the flow. Its reply-key
// index slot is what marks a masqueraded flow's SNAT port as taken (the port allocator probes the
// index), so restored flows and new ones never share a port.
import * as L from "./layout";
import { gInitialized, loadConfig, ctAlloc, idxInsert, flowPtr } from "./core";

/** Inserts the flow entry staged at `src` (CT_SIZE bytes); `origHash` is its original key's flow
 * hash. Returns the flow index, 0 when the core is not initialised or no entry is free. The host
 * stops before the free list runs out (ct_active() < flows): eviction judges expiry by the last
 * batch's clock, which a restore before the first batch does not have. */
export function ctRestore(src: usize, origHash: u32): u32 {
  if (!gInitialized) return 0;
  loadConfig();
  const flow = ctAlloc();
  if (flow == 0) return 0;
  const e = flowPtr(flow);
  memory.copy(e, src, L.CT_SIZE);
  idxInsert(origHash, flow << 1);
  idxInsert(load<u32>(e, L.CT_REPLY_HASH), (flow << 1) | 1);
  return flow;
}
