// Applying an IrDiff to a whole Ir, for holders that only receive diffs (forwarding workers).
// In place, O(size of the diff): copying the maps per diff was O(services + endpoints) on every
// endpoint change (100k entries at 10k services x 10 endpoints). Returns the undo, for a caller
// whose table write fails after the patch.
import { setSnat, snatOf, type Ir, type IrBackend, type IrFrontend } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import { BackendColumnList } from '../ir/backend-columns.js';
import { BackendStore } from '../ir/backend-store.js';

export function patchIrInPlace(ir: Ir, diff: IrDiff): () => void {
  // what each touched id held before, in the order touched (arrays, not maps: a full sync touches
  // 10k frontends); undone in reverse, so an id touched twice ends with what it held first
  const fIds: number[] = [], fOld: Array<IrFrontend | undefined> = [];
  const bIds: number[] = [], bOld: Array<IrBackend | undefined> = [];
  const prevRoutes = ir.routes, prevSnat = snatOf(ir);
  for (const id of diff.frontendsRemove) { fIds.push(id); fOld.push(ir.frontends.get(id)); ir.frontends.delete(id); }
  for (const f of diff.frontendsUpsert) { fIds.push(f.id); fOld.push(ir.frontends.get(f.id)); ir.frontends.set(f.id, f); }
  for (const id of diff.backendsRemove) { bIds.push(id); bOld.push(ir.backends.get(id)); ir.backends.delete(id); }
  // received columns into a store that keeps them: no object per backend (the store's own undo)
  const bulk = diff.backendsUpsert instanceof BackendColumnList && ir.backends instanceof BackendStore ? ir.backends.setRows(diff.backendsUpsert) : null;
  if (!bulk) for (const b of diff.backendsUpsert) { bIds.push(b.id); bOld.push(ir.backends.get(b.id)); ir.backends.set(b.id, b); }
  if (diff.routes) ir.routes = diff.routes;
  if (diff.snat) setSnat(ir, diff.snat);
  return () => {
    bulk?.();
    for (let i = fIds.length - 1; i >= 0; i--) { const f = fOld[i]; if (f) ir.frontends.set(fIds[i], f); else ir.frontends.delete(fIds[i]); }
    for (let i = bIds.length - 1; i >= 0; i--) { const b = bOld[i]; if (b) ir.backends.set(bIds[i], b); else ir.backends.delete(bIds[i]); }
    ir.routes = prevRoutes;
    setSnat(ir, prevSnat);
  };
}
