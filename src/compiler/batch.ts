// A change batch's objects, before they are compiled: a full compile's grouping by service, the
// bound on its backends, and what is said about objects that are listed twice or name no service.
import { fieldError, type FieldError, type ModelObject, type NodeSpec, type SliceSpec } from '../model/types.js';
import type { ServiceRecord } from './service-record.js';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const bySpecKey = (a: ServiceRecord, b: ServiceRecord): number => cmp(a.spec!.key, b.spec!.key);
const bySliceService = (a: SliceSpec, b: SliceSpec): number => cmp(a.service!, b.service!) || cmp(a.key, b.key);
/** `xs` in `order`: xs itself when it is in order already (the common case: a listing is sorted;
 * O(n) instead of a sort), else sorted — in place, or as a copy with `copy`. */
export function sortedBy<T>(xs: T[], order: (a: T, b: T) => number, copy = false): T[] {
  for (let i = 1; i < xs.length; i++) if (order(xs[i - 1], xs[i]) > 0) return (copy ? xs.slice() : xs).sort(order);
  return xs;
}

/** A full compile's batch: its services as records in key order, each with its slices (sorted by
 * key, one slice alone, as linkSlice keeps them), found by merging two sorted lists rather than
 * by map lookups; slices naming a service the batch does not hold get a record without spec.
 * Unlabelled slices are in no record (`unlabelled`, in batch order). `node`: the batch's (last)
 * NodeConfig; `bound`: at most as many backends as the slices' endpoints times ports (each >= 1).
 * One pass over the batch for all of it: after a request's parse the objects are scattered over a
 * big heap, and a pass over 20k of them is mostly cache and TLB misses (the bound's own pass was
 * 5-11 ms in CPU profiles of the daemon's full sync). */
export function groupFresh(upserts: ModelObject[]): { recs: ServiceRecord[]; batchRecs: ServiceRecord[]; orphans: ServiceRecord[]; services: number; node: NodeSpec | null; bound: number; unlabelled: SliceSpec[] } {
  const batchRecs: ServiceRecord[] = [], slices: SliceSpec[] = [], unlabelled: SliceSpec[] = [];
  let node: NodeSpec | null = null, bound = 0;
  for (let u = 0; u < upserts.length; u++) {
    const o = upserts[u];
    if (o.kind === 'Service') batchRecs.push({ spec: o, slices: undefined, out: undefined });
    else if (o.kind === 'EndpointSlice') {
      bound += backendsAtMost(o);
      if (o.service !== null) slices.push(o); else unlabelled.push(o);
    } else node = o;
  }
  const svcRecs = sortedBy(batchRecs, bySpecKey, true); // batchRecs stays in batch order (indexFresh)
  sortedBy(slices, bySliceService);
  const recs: ServiceRecord[] = [], orphans: ServiceRecord[] = [];
  let j = 0;
  const take = (key: string): ServiceRecord['slices'] => { // the slices naming `key`, from slices[j]
    const from = j;
    while (j < slices.length && slices[j].service === key) j++;
    if (j - from === 0) return undefined;
    if (j - from === 1) return slices[from];
    const list = [slices[from]];
    for (let k = from + 1; k < j; k++) if (slices[k].key !== slices[k - 1].key) list.push(slices[k]); // a repeat: refused later
    return list.length === 1 ? list[0] : list;
  };
  const orphan = (key: string): void => { const r: ServiceRecord = { spec: undefined, slices: take(key), out: undefined }; recs.push(r); orphans.push(r); };
  for (let i = 0; i < svcRecs.length; i++) {
    const rec = svcRecs[i], key = rec.spec!.key;
    while (j < slices.length && slices[j].service! < key) orphan(slices[j].service!);
    rec.slices = take(key);
    recs.push(rec);
  }
  while (j < slices.length) orphan(slices[j].service!);
  return { recs, batchRecs, orphans, services: batchRecs.length, node, bound, unlabelled };
}

/** The error for an object listed twice in one request. */
export function duplicateError(o: ModelObject): FieldError {
  return o.kind === 'NodeConfig'
    ? fieldError('NodeConfig', undefined, o.name, '', 'FieldValueDuplicate', 'Duplicate value: only one NodeConfig may be given per request')
    : fieldError(o.kind, o.namespace, o.name, 'metadata.name', 'FieldValueDuplicate', 'Duplicate value: the object appears more than once in this request');
}

/** At most as many backends as a slice's endpoints times ports (each >= 1). */
const backendsAtMost = (sl: SliceSpec): number => sl.endpoints.length * Math.max(1, sl.ports.length);

/** The warning for each unlabelled slice of `upserts`. */
export function unlabelledSliceWarnings(upserts: ModelObject[], warnings: string[]): void {
  for (let u = 0; u < upserts.length; u++) {
    const o = upserts[u];
    if (o.kind === 'EndpointSlice' && !o.service) warnings.push(unlabelledWarning(o));
  }
}
export const unlabelledWarning = (sl: SliceSpec): string => `EndpointSlice ${sl.key}: no kubernetes.io/service-name label; it is stored but used by no service`;
