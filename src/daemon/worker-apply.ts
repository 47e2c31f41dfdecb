// A forwarding worker's part of an apply: the received diff patched into its core's Ir and
// written into its tables, without an object per backend for a diff that came by column.
import type { Core } from '../core/host.js';
import type { IrBackend, IrFrontend } from '../ir/ir.js';
import type { IrList } from '../ir/list.js';
import { receiveDiff, type IrDiffWire } from '../ir/diff-wire.js';
import { BackendColumnList } from '../ir/backend-columns.js';
import { BackendStore } from '../ir/backend-store.js';
import { patchIrInPlace } from './ir-patch.js';

/** Makes the (still empty) Ir of a fresh core keep its backends as received (backend-store.ts). */
export function keepBackendsAsReceived(core: Core): void {
  const ir = core.ir;
  if (ir.backends instanceof BackendStore) return;
  if (ir.backends.size !== 0) throw new Error('internal: the core already holds backends');
  ir.backends = new BackendStore();
}

export type ReceivedDiff = ReturnType<typeof receiveDiff>;

/** Applies `wire` to `core` — its Ir patched in place (undone if the table write refuses the diff),
 * then its tables. Returns the diff and the frontends it replaced or removed. O(diff). */
export function applyReceived(core: Core, wire: IrDiffWire): { diff: ReceivedDiff; replaced: IrFrontend[] } {
  const ir = core.ir, d = receiveDiff(wire);
  const replaced: IrFrontend[] = [];
  for (const id of d.frontendsRemove) { const f = ir.frontends.get(id); if (f) replaced.push(f); }
  for (const f of d.frontendsUpsert) { const o = ir.frontends.get(f.id); if (o) replaced.push(o); }
  const undo = patchIrInPlace(ir, d);
  try { core.applyDiff(d, ir); } catch (e) { undo(); throw e; }
  return { diff: d, replaced };
}

/** The backends of `list` by row: id, out port and address (made only when asked: by column it is
 * a slice of one joined string). Without a closure or an object per backend (a full sync's 100k). */
export interface BackendRows { readonly length: number; idAt(i: number): number; outPortAt(i: number): number; addrAt(i: number): string }

export function backendRows(list: IrList<IrBackend>): BackendRows {
  if (list instanceof BackendColumnList) return list;
  const a = list.slice(); // (objects: a few backends, an endpoint change)
  return { length: a.length, idAt: (i) => a[i].id, outPortAt: (i) => a[i].outPort, addrAt: (i) => a[i].addr };
}
