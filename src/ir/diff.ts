// What changed between two Irs: the unit the table writer applies, the API lists and workers
// receive. Its lists are IrLists (list.ts): arrays, or rows the compiler reads from its tables on
// demand. IrDiffData is the same diff with every list an array — what a message carries.
import { sameBackend, sameFrontend, type Ir, type IrBackend, type IrFrontend, type IrRoute } from './ir.js';
import type { IrList } from './list.js';

export interface IrDiff {
  frontendsUpsert: IrList<IrFrontend>;
  frontendsRemove: IrList<number>;
  backendsUpsert: IrList<IrBackend>;
  backendsRemove: IrList<number>;
  routes?: IrRoute[];          // present when the route list changed (replaced whole: it is small)
  snat?: { v4?: string; v6?: string }; // present when changed
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

/** `d` with every list an array (for a message to another thread: a list that reads the
 * compiler's tables must be read here, where the tables are). */
export function diffData(d: IrDiff): IrDiffData {
  const out: IrDiffData = {
    frontendsUpsert: d.frontendsUpsert.slice(), frontendsRemove: d.frontendsRemove.slice(),
    backendsUpsert: d.backendsUpsert.slice(), backendsRemove: d.backendsRemove.slice(),
  };
  if (d.routes) out.routes = d.routes;
  if (d.snat) out.snat = d.snat;
  return out;
}

function sameRoutes(a: IrRoute[], b: IrRoute[]): boolean {
  return a.length === b.length && a.every((r, i) => r.prefix === b[i].prefix && r.outPort === b[i].outPort &&
    r.dstMac === b[i].dstMac && r.srcMac === b[i].srcMac && r.serviceCidr === b[i].serviceCidr && r.localSource === b[i].localSource);
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
  if (prev.snatV4 !== next.snatV4 || prev.snatV6 !== next.snatV6) d.snat = { v4: next.snatV4, v6: next.snatV6 };
  return d;
}

export function isEmptyDiff(d: IrDiff): boolean {
  return !d.frontendsUpsert.length && !d.frontendsRemove.length && !d.backendsUpsert.length &&
    !d.backendsRemove.length && !d.routes && !d.snat;
}
