// An IrDiff as a message to a forwarding worker. A structured clone writes every object with all
// of its property names, so a full sync's 100k backend and 10k frontend objects cost more to clone
// (on the main thread) and to rebuild (on the worker) than the worker's table write: measured at
// 10k services x 10 endpoints, ~420 ms of the main thread and ~290 ms of the worker under load
// (cpu profiles of the daemon). Many records therefore travel by column (backend-columns.ts,
// frontend-columns.ts): numbers in typed arrays (one copy each), strings in small dictionaries or
// joined into one string with offsets. A full compile's lists write their columns straight from
// the compiler's tables (WireColumnsSource): no object per record on the main thread. The worker
// keeps the backends' columns as received (receiveDiff; backend-store.ts) and builds its frontend
// objects from theirs. A few records (an endpoint change) travel as objects: nothing to gain there.
import type { IrBackend, IrFrontend } from './ir.js';
import type { IrDiff, IrDiffData } from './diff.js';
import type { IrList } from './list.js';
import { BackendColumnList, encodeBackendColumns, type BackendColumns } from './backend-columns.js';
import { encodeFrontendColumns, frontendObjects, type FrontendColumns } from './frontend-columns.js';

export type { BackendColumns, FrontendColumns };

/** From this many upserted backends (frontends) a diff sends them by column. */
export const COLUMN_MIN_BACKENDS = 512;
export const COLUMN_MIN_FRONTENDS = 128;

/** A list that writes its records into the wire's columns itself (the compiler's tables: a full
 * compile's diff), without an object per record. */
export interface WireColumnsSource<C> { wireColumns(): C }

function columnsOf<C>(list: IrList<unknown>): C | null {
  const s = list as IrList<unknown> & Partial<WireColumnsSource<C>>;
  return typeof s.wireColumns === 'function' ? s.wireColumns() : null;
}

/** What a worker receives: the diff with its lists as arrays, frontends and backends possibly by column. */
export interface IrDiffWire extends Omit<IrDiffData, 'backendsUpsert' | 'frontendsUpsert'> {
  frontendsUpsert: IrFrontend[] | FrontendColumns;
  backendsUpsert: IrBackend[] | BackendColumns;
}

/** `d` as a message (reads `d` now: a full compile's lists must be read before the next change). */
export function encodeDiff(d: IrDiff): IrDiffWire {
  const fs = d.frontendsUpsert, bs = d.backendsUpsert;
  const out: IrDiffWire = {
    frontendsUpsert: fs.length < COLUMN_MIN_FRONTENDS ? fs.slice() : columnsOf<FrontendColumns>(fs) ?? encodeFrontendColumns(fs.slice()),
    frontendsRemove: d.frontendsRemove.slice(),
    backendsUpsert: bs.length < COLUMN_MIN_BACKENDS ? bs.slice() : columnsOf<BackendColumns>(bs) ?? encodeBackendColumns(bs),
    backendsRemove: d.backendsRemove.slice(),
  };
  if (d.routes) out.routes = d.routes;
  if (d.snat) out.snat = d.snat;
  return out;
}

/** The diff that was encoded, every record an object of its own. */
export function decodeDiff(w: IrDiffWire): IrDiffData {
  const b = w.backendsUpsert, f = w.frontendsUpsert;
  return { ...w, frontendsUpsert: Array.isArray(f) ? f : frontendObjects(f), backendsUpsert: Array.isArray(b) ? b : new BackendColumnList(b).slice() };
}

/** The diff a worker applies, from what it received: backends by column stay columns (a
 * BackendColumnList, which the table writer and BackendStore read without an object per row). */
export function receiveDiff(w: IrDiffWire): IrDiff & Omit<IrDiffData, 'backendsUpsert'> {
  const b = w.backendsUpsert, f = w.frontendsUpsert;
  return { ...w, frontendsUpsert: Array.isArray(f) ? f : frontendObjects(f), backendsUpsert: Array.isArray(b) ? b : new BackendColumnList(b) };
}
