// An IrDiff as a message to a forwarding worker. A structured clone writes every object with all
// of its property names, so a full sync's 100k backend objects cost more to clone (on the main
// thread) and to rebuild (on the worker) than the worker's table write: measured at 10k services
// x 10 endpoints, ~420 ms of the main thread and ~290 ms of the worker under load (cpu profiles of
// the daemon). Many backends therefore travel by column: numbers in typed arrays (one copy each),
// strings joined into one string per column (one copy each), read without an object per backend
// on this side (the compiler's table rows are read through one reused cursor). The worker builds
// its backend objects from the columns, which is what the clone's reader did, minus the names.
// A few backends (an endpoint change) travel as objects: nothing to gain there.
import type { IrBackend } from './ir.js';
import type { IrDiff, IrDiffData } from './diff.js';

/** From this many upserted backends a diff sends them by column. */
export const COLUMN_MIN_BACKENDS = 512;

/** Joins a column's strings into one. A backend whose strings hold it (an EndpointSlice's nodeName
 * and zone are free text) sends the diff's backends as objects. */
const SEP = '\n';

export interface BackendColumns {
  n: number;
  id: Uint32Array;
  family: Uint8Array;
  state: Uint8Array;
  port: Uint32Array;
  outPort: Uint32Array;
  /** Each joined by SEP, n entries; nodeName / zone: '' for none, with `has` bit 1 / 2 set when present. */
  service: string; portName: string; addr: string; dstMac: string; srcMac: string; nodeName: string; zone: string;
  has: Uint8Array;
}

/** What a worker receives: the diff with its lists as arrays, backends possibly by column. */
export interface IrDiffWire extends Omit<IrDiffData, 'backendsUpsert'> {
  backendsUpsert: IrBackend[] | BackendColumns;
}

/** `d` as a message (reads `d` now: a full compile's lists must be read before the next change). */
export function encodeDiff(d: IrDiff): IrDiffWire {
  const out: IrDiffWire = {
    frontendsUpsert: d.frontendsUpsert.slice(), frontendsRemove: d.frontendsRemove.slice(),
    backendsUpsert: (d.backendsUpsert.length >= COLUMN_MIN_BACKENDS && backendColumns(d)) || d.backendsUpsert.slice(),
    backendsRemove: d.backendsRemove.slice(),
  };
  if (d.routes) out.routes = d.routes;
  if (d.snat) out.snat = d.snat;
  return out;
}

/** The backends by column, or null when a string holds SEP. */
function backendColumns(d: IrDiff): BackendColumns | null {
  const n = d.backendsUpsert.length;
  const c: BackendColumns = {
    n, id: new Uint32Array(n), family: new Uint8Array(n), state: new Uint8Array(n), port: new Uint32Array(n), outPort: new Uint32Array(n),
    service: '', portName: '', addr: '', dstMac: '', srcMac: '', nodeName: '', zone: '', has: new Uint8Array(n),
  };
  const service: string[] = new Array(n), portName: string[] = new Array(n), addr: string[] = new Array(n), dstMac: string[] = new Array(n),
    srcMac: string[] = new Array(n), nodeName: string[] = new Array(n), zone: string[] = new Array(n);
  let i = 0, clash = false;
  // (forEach may pass one reused object: everything is copied out here)
  d.backendsUpsert.forEach((b) => {
    if (b.service.includes(SEP) || b.portName.includes(SEP) || b.addr.includes(SEP) || b.dstMac.includes(SEP) || b.srcMac.includes(SEP) ||
      (b.nodeName !== undefined && b.nodeName.includes(SEP)) || (b.zone !== undefined && b.zone.includes(SEP))) clash = true;
    c.id[i] = b.id; c.family[i] = b.family; c.state[i] = b.state; c.port[i] = b.port; c.outPort[i] = b.outPort;
    service[i] = b.service; portName[i] = b.portName; addr[i] = b.addr; dstMac[i] = b.dstMac; srcMac[i] = b.srcMac;
    nodeName[i] = b.nodeName ?? ''; zone[i] = b.zone ?? '';
    c.has[i] = (b.nodeName !== undefined ? 1 : 0) | (b.zone !== undefined ? 2 : 0);
    i++;
  });
  if (clash) return null;
  c.service = service.join(SEP); c.portName = portName.join(SEP); c.addr = addr.join(SEP); c.dstMac = dstMac.join(SEP);
  c.srcMac = srcMac.join(SEP); c.nodeName = nodeName.join(SEP); c.zone = zone.join(SEP);
  return c;
}

/** The diff a worker applies, from what it received. */
export function decodeDiff(w: IrDiffWire): IrDiffData {
  const b = w.backendsUpsert;
  return { ...w, backendsUpsert: Array.isArray(b) ? b : backendObjects(b) };
}

function backendObjects(c: BackendColumns): IrBackend[] {
  const { n } = c;
  const service = c.service.split(SEP), portName = c.portName.split(SEP), addr = c.addr.split(SEP), dstMac = c.dstMac.split(SEP),
    srcMac = c.srcMac.split(SEP), nodeName = c.nodeName.split(SEP), zone = c.zone.split(SEP);
  if (service.length !== n || addr.length !== n || dstMac.length !== n) throw new Error(`internal: a backend column holds ${addr.length} entries for ${n} backends`);
  const out: IrBackend[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const b: IrBackend = {
      id: c.id[i], service: service[i], portName: portName[i], addr: addr[i], family: c.family[i] as IrBackend['family'], port: c.port[i],
      state: c.state[i], outPort: c.outPort[i], dstMac: dstMac[i], srcMac: srcMac[i],
    };
    if (c.has[i] & 1) b.nodeName = nodeName[i];
    if (c.has[i] & 2) b.zone = zone[i];
    out[i] = b;
  }
  return out;
}
