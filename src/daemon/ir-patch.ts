// Applying an IrDiff to a whole Ir, for holders that only receive diffs (forwarding workers).
// Cost: copies the two maps (O(services + endpoints)) per diff — diffs are control-plane rate.
import type { Ir, IrDiff } from '../core/ir.js';

export function patchIr(prev: Ir, diff: IrDiff): Ir {
  const frontends = new Map(prev.frontends);
  const backends = new Map(prev.backends);
  for (const id of diff.frontendsRemove) frontends.delete(id);
  for (const f of diff.frontendsUpsert) frontends.set(f.id, f);
  for (const id of diff.backendsRemove) backends.delete(id);
  for (const b of diff.backendsUpsert) backends.set(b.id, b);
  const next: Ir = { frontends, backends, routes: diff.routes ?? prev.routes };
  const snatV4 = diff.snat ? diff.snat.v4 : prev.snatV4;
  const snatV6 = diff.snat ? diff.snat.v6 : prev.snatV6;
  if (snatV4 !== undefined) next.snatV4 = snatV4;
  if (snatV6 !== undefined) next.snatV6 = snatV6;
  return next;
}
