// Applying an IrDiff to a whole Ir, for holders that only receive diffs (forwarding workers).
// In place, O(size of the diff): copying the maps per diff was O(services + endpoints) on every
// endpoint change (100k entries at 10k services x 10 endpoints). Returns the undo, for a caller
// whose table write fails after the patch.
import { setSnat, snatOf, type Ir, type IrBackend, type IrFrontend } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import { BackendColumnList } from '../ir/backend-columns.js';
import { BackendStore } from '../ir/backend-store.js';

export function patchIrInPlace(ir: Ir, diff: IrDiff): () => void {
  const oldF = new Map<number, IrFrontend | undefined>(), oldB = new Map<number, IrBackend | undefined>();
  const keepF = (id: number) => { if (!oldF.has(id)) oldF.set(id, ir.frontends.get(id)); };
  const keepB = (id: number) => { if (!oldB.has(id)) oldB.set(id, ir.backends.get(id)); };
  const prevRoutes = ir.routes, prevSnat = snatOf(ir);
  for (const id of diff.frontendsRemove) { keepF(id); ir.frontends.delete(id); }
  for (const f of diff.frontendsUpsert) { keepF(f.id); ir.frontends.set(f.id, f); }
  for (const id of diff.backendsRemove) { keepB(id); ir.backends.delete(id); }
  // received columns into a store that keeps them: no object per backend (the store's own undo)
  const bulk = diff.backendsUpsert instanceof BackendColumnList && ir.backends instanceof BackendStore ? ir.backends.setRows(diff.backendsUpsert) : null;
  if (!bulk) for (const b of diff.backendsUpsert) { keepB(b.id); ir.backends.set(b.id, b); }
  if (diff.routes) ir.routes = diff.routes;
  if (diff.snat) setSnat(ir, diff.snat);
  return () => {
    bulk?.();
    for (const [id, f] of oldF) { if (f) ir.frontends.set(id, f); else ir.frontends.delete(id); }
    for (const [id, b] of oldB) { if (b) ir.backends.set(id, b); else ir.backends.delete(id); }
    ir.routes = prevRoutes;
    setSnat(ir, prevSnat);
  };
}
