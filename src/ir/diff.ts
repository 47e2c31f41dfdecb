// What changed between two Irs: the unit the table writer applies, the API lists and workers
// receive. Its lists are IrLists (list.ts): arrays, or rows the compiler reads from its tables on
// demand. IrDiffData is the same diff with every list an array (what a worker applies; the message
// it receives is diff-wire.ts's IrDiffWire).
import { sameBackend, sameFrontend, sameRoutes, sameSnat, snatOf, type Ir, type IrBackend, type IrFrontend, type IrRoute, type SnatAddresses } from './ir.js';
import type { IrList } from './list.js';

export interface IrDiff {
  frontendsUpsert: IrList<IrFrontend>;
  frontendsRemove: IrList<number>;
  backendsUpsert: IrList<IrBackend>;
  backendsRemove: IrList<number>;
  routes?: IrRoute[];          // present when the route list changed (replaced whole: it is small)
  snat?: SnatAddresses;        // present when changed (all four addresses)
}

/** An IrDiff whose lists are arrays (built by hand, by diffIr, or received in a message). */
export interface IrDiffData extends IrDiff {
  frontendsUpsert: IrFrontend[];
  frontendsRemove: number[];
  backendsUpsert: IrBackend[];
  backendsRemove: number[];
}

/** A diff with no changes, its lists arrays to push to. */
export function emptyDiff(): IrDiffData {
  return { frontendsUpsert: [], frontendsRemove: [], backendsUpsert: [], backendsRemove: [] };
}

/** What changed from `prev` to `next`. Cost: O(size of both maps) — callers that know what they
 * touched (the compiler's incremental path) build an IrDiff directly instead. */
export function diffIr(prev: Ir, next: Ir): IrDiffData {
  const d = emptyDiff();
  for (const [id, f] of next.frontends) {
    const o = prev.frontends.get(id);
    if (!o || !sameFrontend(o, f)) d.frontendsUpsert.push(f);
  }
  for (const id of prev.frontends.keys()) if (!next.frontends.has(id)) d.frontendsRemove.push(id);
  for (const [id, b] of next.backends) {
    const o = prev.backends.get(id);
    if (!o || !sameBackend(o, b)) d.backendsUpsert.push(b);
  }
  for (const id of prev.backends.keys()) if (!next.backends.has(id)) d.backendsRemove.push(id);
  if (!sameRoutes(prev.routes, next.routes)) d.routes = next.routes;
  if (!sameSnat(snatOf(prev), snatOf(next))) d.snat = snatOf(next);
  return d;
}

export function isEmptyDiff(d: IrDiff): boolean {
  return !d.frontendsUpsert.length && !d.frontendsRemove.length && !d.backendsUpsert.length &&
    !d.backendsRemove.length && !d.routes && !d.snat;
}
