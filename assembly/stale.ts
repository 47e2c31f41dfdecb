// Whether a conntrack flow's translation still holds in the generation in force. A flow keeps its
// backend by id, but the compiler hands a freed id to the next new backend (src/compiler/ids.ts,
// first-in-first-out, no delay), so a usable id alone does not mean the flow's pod still exists:
// the id must still name the address, port and family the flow was translated to. A source-NATed
// flow also needs its family's SNAT address (without it the rewrite would write a zeroed source).
// Cost on a hit: one 16-byte compare and two small ones on the backend entry the hit loads anyway.
// Semantics: docs/core.md "Original-direction hit" step 1.
import * as L from "./layout";
import { CtFlow, Backend } from "./records";
import { addrEq } from "./addr";
import { backendAt, hasSnat } from "./regions";
import { backendUsable } from "./select";

/** The flow's backend entry if the flow still holds in the generation in force, else null (the
 * flow is stale: re-select it, or drop what cannot be re-selected). */
@inline export function flowBackend(e: CtFlow): Backend | null {
  const bid = e.backendId;
  if (!backendUsable(bid)) return null;
  const be = backendAt(bid);
  if (<u32>be.port != <u32>e.bport || be.family != e.family || !addrEq(be.addrPtr, e.backendAddr)) return null;
  if ((e.flags & L.CTF_SNAT) != 0 && !hasSnat(<u32>e.family)) return null;
  return be;
}
