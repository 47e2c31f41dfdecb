// An IrDiff as a message to a forwarding worker. A structured clone writes every object with all
// of its property names, so a full sync's 100k backend and 10k frontend objects cost more to clone
// (on the main thread) and to rebuild (on the worker) than the worker's table write: measured at
// 10k services x 10 endpoints, ~420 ms of the main thread and ~290 ms of the worker under load
// (cpu profiles of the daemon). Many records therefore travel by column: numbers in typed arrays
// (one copy each), strings joined into one string per column or, for backends, in small
// dictionaries (backend-columns.ts), read without an object each on this side (the compiler's
// table rows go through one reused cursor). The worker keeps the backends' columns as received
// (receiveDiff; backend-store.ts) and builds its frontend objects from theirs. A few records (an
// endpoint change) travel as objects: nothing to gain there.
import type { IrBackend, IrFrontend, MaglevSlots } from './ir.js';
import type { IrDiff, IrDiffData } from './diff.js';
import { BackendColumnList, encodeBackendColumns, type BackendColumns } from './backend-columns.js';

export type { BackendColumns };

/** From this many upserted backends (frontends) a diff sends them by column. */
export const COLUMN_MIN_BACKENDS = 512;
export const COLUMN_MIN_FRONTENDS = 128;

/** Joins a frontend column's strings into one. A frontend whose strings hold it (a source range)
 * sends the diff's frontends as objects. */
const SEP = '\n';

export interface FrontendColumns {
  n: number;
  id: Uint32Array; family: Uint8Array; port: Uint32Array; flags: Uint32Array; affinityTimeoutMs: Float64Array;
  /** IrFrontend.clusterFront, 0 for none (as in the compiler's frontend table). */
  clusterFront: Uint32Array;
  /** bit 1: maglevIndexed present, bit 2: its value */
  indexed: Uint8Array;
  /** Each joined by SEP, n entries. */
  service: string; portName: string; kind: string; addr: string; proto: string;
  /** Frontend i's source ranges: rangeCount[i] entries of `ranges` (joined by SEP), in order. */
  rangeCount: Uint32Array; ranges: string;
  /** Frontend i's backends: backends[backendsAt[i] .. backendsAt[i + 1]). */
  backendsAt: Uint32Array; backends: Uint32Array;
  /** Frontend i's Maglev table: maglevLen[i] slots of maglevWidth[i] bytes, at maglevAt[i] in the array of that width. */
  maglevWidth: Uint8Array; maglevAt: Uint32Array; maglevLen: Uint32Array; maglev1: Uint8Array; maglev2: Uint16Array; maglev4: Uint32Array;
}

/** What a worker receives: the diff with its lists as arrays, frontends and backends possibly by column. */
export interface IrDiffWire extends Omit<IrDiffData, 'backendsUpsert' | 'frontendsUpsert'> {
  frontendsUpsert: IrFrontend[] | FrontendColumns;
  backendsUpsert: IrBackend[] | BackendColumns;
}

/** `d` as a message (reads `d` now: a full compile's lists must be read before the next change). */
export function encodeDiff(d: IrDiff): IrDiffWire {
  const out: IrDiffWire = {
    frontendsUpsert: (d.frontendsUpsert.length >= COLUMN_MIN_FRONTENDS && frontendColumns(d.frontendsUpsert.slice())) || d.frontendsUpsert.slice(),
    frontendsRemove: d.frontendsRemove.slice(),
    backendsUpsert: d.backendsUpsert.length >= COLUMN_MIN_BACKENDS ? encodeBackendColumns(d.backendsUpsert) : d.backendsUpsert.slice(),
    backendsRemove: d.backendsRemove.slice(),
  };
  if (d.routes) out.routes = d.routes;
  if (d.snat) out.snat = d.snat;
  return out;
}

/** The frontends by column, or null when a string holds SEP. */
function frontendColumns(fs: IrFrontend[]): FrontendColumns | null {
  const n = fs.length;
  let nBackends = 0, nRanges = 0;
  const mag = [0, 0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const f = fs[i];
    if (f.service.includes(SEP) || f.portName.includes(SEP) || f.addr.includes(SEP) || f.sourceRanges.some((r) => r.includes(SEP))) return null;
    nBackends += f.backends.length; nRanges += f.sourceRanges.length; mag[f.maglev.BYTES_PER_ELEMENT] += f.maglev.length;
  }
  const c: FrontendColumns = {
    n, id: new Uint32Array(n), family: new Uint8Array(n), port: new Uint32Array(n), flags: new Uint32Array(n), affinityTimeoutMs: new Float64Array(n),
    clusterFront: new Uint32Array(n), indexed: new Uint8Array(n), service: '', portName: '', kind: '', addr: '', proto: '', rangeCount: new Uint32Array(n), ranges: '',
    backendsAt: new Uint32Array(n + 1), backends: new Uint32Array(nBackends),
    maglevWidth: new Uint8Array(n), maglevAt: new Uint32Array(n), maglevLen: new Uint32Array(n),
    maglev1: new Uint8Array(mag[1]), maglev2: new Uint16Array(mag[2]), maglev4: new Uint32Array(mag[4]),
  };
  const service: string[] = new Array(n), portName: string[] = new Array(n), kind: string[] = new Array(n), addr: string[] = new Array(n),
    proto: string[] = new Array(n), ranges: string[] = [];
  const at = [0, 0, 0, 0, 0];
  let b = 0;
  for (let i = 0; i < n; i++) {
    const f = fs[i];
    c.id[i] = f.id; c.family[i] = f.family; c.port[i] = f.port; c.flags[i] = f.flags; c.affinityTimeoutMs[i] = f.affinityTimeoutMs;
    c.clusterFront[i] = f.clusterFront ?? 0;
    c.indexed[i] = f.maglevIndexed === undefined ? 0 : f.maglevIndexed ? 3 : 1;
    service[i] = f.service; portName[i] = f.portName; kind[i] = f.kind; addr[i] = f.addr; proto[i] = f.proto;
    c.rangeCount[i] = f.sourceRanges.length;
    for (let k = 0; k < f.sourceRanges.length; k++) ranges.push(f.sourceRanges[k]);
    c.backendsAt[i] = b;
    for (let k = 0; k < f.backends.length; k++) c.backends[b++] = f.backends[k];
    const w = f.maglev.BYTES_PER_ELEMENT;
    c.maglevWidth[i] = w; c.maglevAt[i] = at[w]; c.maglevLen[i] = f.maglev.length;
    (w === 1 ? c.maglev1 : w === 2 ? c.maglev2 : c.maglev4).set(f.maglev, at[w]);
    at[w] += f.maglev.length;
  }
  c.backendsAt[n] = b;
  c.service = service.join(SEP); c.portName = portName.join(SEP); c.kind = kind.join(SEP); c.addr = addr.join(SEP); c.proto = proto.join(SEP);
  c.ranges = ranges.join(SEP);
  return c;
}

function frontendObjects(c: FrontendColumns): IrFrontend[] {
  const { n } = c;
  const service = c.service.split(SEP), portName = c.portName.split(SEP), kind = c.kind.split(SEP), addr = c.addr.split(SEP), proto = c.proto.split(SEP);
  const ranges = c.ranges === '' ? [] : c.ranges.split(SEP);
  if (service.length !== n || addr.length !== n) throw new Error(`internal: a frontend column holds ${addr.length} entries for ${n} frontends`);
  const out: IrFrontend[] = new Array(n);
  let r = 0;
  for (let i = 0; i < n; i++) {
    const nr = c.rangeCount[i], from = c.backendsAt[i], to = c.backendsAt[i + 1];
    const backends: number[] = new Array(to - from);
    for (let k = from; k < to; k++) backends[k - from] = c.backends[k];
    const w = c.maglevWidth[i], m0 = c.maglevAt[i], m1 = m0 + c.maglevLen[i];
    // (a view of the received array: it lives as long as any frontend of this diff)
    const maglev: MaglevSlots = w === 1 ? c.maglev1.subarray(m0, m1) : w === 2 ? c.maglev2.subarray(m0, m1) : c.maglev4.subarray(m0, m1);
    const f: IrFrontend = {
      id: c.id[i], service: service[i], portName: portName[i], kind: kind[i] as IrFrontend['kind'], addr: addr[i], family: c.family[i] as IrFrontend['family'],
      port: c.port[i], proto: proto[i] as IrFrontend['proto'], flags: c.flags[i], affinityTimeoutMs: c.affinityTimeoutMs[i],
      sourceRanges: nr === 0 ? [] : ranges.slice(r, r + nr), backends, maglev,
    };
    r += nr;
    if (c.clusterFront[i]) f.clusterFront = c.clusterFront[i];
    if (c.indexed[i] & 1) f.maglevIndexed = (c.indexed[i] & 2) !== 0;
    out[i] = f;
  }
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
