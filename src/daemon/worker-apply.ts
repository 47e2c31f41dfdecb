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

/** fn(id, outPort, addr) for every backend of `list`; `addr()` makes the address string only
 * when called (by column it is a slice of one joined string). */
export function forEachBackendHop(list: IrList<IrBackend>, fn: (id: number, outPort: number, addr: () => string) => void): void {
  if (list instanceof BackendColumnList) {
    for (let i = 0; i < list.length; i++) fn(list.idAt(i), list.outPortAt(i), () => list.addrAt(i));
  } else list.forEach((b) => { const a = b.addr; fn(b.id, b.outPort, () => a); });
}
