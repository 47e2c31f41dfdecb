// Many backends as columns: how a full sync's 100k backends travel to a forwarding worker and how
// the worker keeps them (backend-store.ts), without an object per backend on either side.
//
//   row i ─┬─ id[i], family[i], state[i], port[i]     typed arrays
//          ├─ owner[i] ──▶ ownerService[k], ownerPortName[k]   (one entry per run of a service port's rows)
//          ├─ hop[i]   ──▶ hopOutPort[k], hopDstMac[k], hopSrcMac[k]   (one per next hop: a few)
//          ├─ node[i], zone[i] ──▶ labels[k]   (0: absent; node and zone names: a few)
//          └─ addr: addrs.slice(addrAt[i], addrAt[i + 1])   (every address in one string)
//
// Why: a structured clone writes an object with all its property names, and the worker rebuilt
// 100k objects with seven strings each from joined columns — at 10k services x 10 endpoints that
// was ~100 ms to decode plus ~200 ms of GC in the worker (every object survives: scavenged, then
// promoted) and ~28k page faults of fresh heap. Here the worker keeps what it received; a backend
// becomes an object only when something asks for it (a trace, a listing, a flow restore). The
// strings of a dictionary are sent as arrays: no separator can clash with them, so any string
// goes by column.
import type { Family, IrBackend } from './ir.js';
import type { IrList } from './list.js';
import { columnsHold, offsetsFit, OwnerRuns } from './wire-columns.js';

/** The wire form (what postMessage clones). */
export interface BackendColumns {
  n: number;
  id: Uint32Array; family: Uint8Array; state: Uint8Array; port: Uint32Array;
  owner: Uint32Array; ownerService: string[]; ownerPortName: string[];
  hop: Uint32Array; hopOutPort: Uint32Array; hopDstMac: string[]; hopSrcMac: string[];
  /** node[i] / zone[i]: 0 when absent, else k + 1 for labels[k] ('' is a label like any other). */
  node: Uint32Array; zone: Uint32Array; labels: string[];
  addrs: string; addrAt: Uint32Array;
}

/** A dictionary that remembers the last value looked up: consecutive rows mostly share it. */
class Dict {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();
  private last: string | undefined = undefined;
  private lastIdx = -1;
  of(s: string): number {
    if (s === this.last) return this.lastIdx;
    let k = this.index.get(s);
    if (k === undefined) { k = this.values.length; this.values.push(s); this.index.set(s, k); }
    this.last = s; this.lastIdx = k;
    return k;
  }
}

/** Fills BackendColumns row by row, the next hops and node/zone labels given as indexes into
 * dictionaries the caller keeps: `hops` (hop k: hops.outPort[k], ...), `labels` (a label value
 * v > 0 is labels[v - 1]). */
export class BackendColumnsWriter {
  readonly c: BackendColumns;
  private readonly owners = new OwnerRuns();
  private readonly addrs: string[];
  private i = 0;
  private addrEnd = 0;
  constructor(n: number, hopOutPort: Uint32Array, hopDstMac: string[], hopSrcMac: string[], labels: string[]) {
    this.c = {
      n, id: new Uint32Array(n), family: new Uint8Array(n), state: new Uint8Array(n), port: new Uint32Array(n),
      owner: new Uint32Array(n), ownerService: this.owners.service, ownerPortName: this.owners.portName,
      hop: new Uint32Array(n), hopOutPort, hopDstMac, hopSrcMac,
      node: new Uint32Array(n), zone: new Uint32Array(n), labels,
      addrs: '', addrAt: new Uint32Array(n + 1),
    };
    this.addrs = new Array<string>(n);
  }

  /** The next row; `hop`, `node`, `zone`: dictionary indexes (node, zone: 0 = absent). */
  add(id: number, service: string, portName: string, addr: string, family: number, port: number, state: number, hop: number, node: number, zone: number): void {
    const c = this.c, i = this.i++;
    c.id[i] = id; c.family[i] = family; c.state[i] = state; c.port[i] = port;
    c.owner[i] = this.owners.of(service, portName);
    c.hop[i] = hop; c.node[i] = node; c.zone[i] = zone;
    this.addrs[i] = addr; this.addrEnd += addr.length; c.addrAt[i + 1] = this.addrEnd;
  }

  /** The columns, once every row was added (the dictionaries complete by now). */
  finish(): BackendColumns {
    const c = this.c;
    if (this.i !== c.n) throw new Error(`internal: backend columns sized for ${c.n} rows got ${this.i}`);
    c.addrs = this.addrs.join('');
    return c;
  }
}

/** `list` by column. Reads it once, in order (a list read from the compiler's tables may pass one
 * reused object: everything is copied out). */
export function encodeBackendColumns(list: IrList<IrBackend>): BackendColumns {
  const n = list.length;
  const hopOut: number[] = [], hopDstMac: string[] = [], hopSrcMac: string[] = [], hopIndex = new Map<string, number>();
  let lastOut = -1, lastDst = '', lastSrc = '', lastHop = -1;
  const labels = new Dict();
  const w = new BackendColumnsWriter(n, new Uint32Array(0), hopDstMac, hopSrcMac, labels.values);
  let i = 0;
  list.forEach((b) => {
    if (i++ >= n) throw new Error(`internal: a backend list of length ${n} passed more rows`);
    if (lastHop < 0 || b.outPort !== lastOut || b.dstMac !== lastDst || b.srcMac !== lastSrc) {
      const key = `${b.outPort}|${b.dstMac}|${b.srcMac}`;
      let k = hopIndex.get(key);
      if (k === undefined) { k = hopOut.length; hopOut.push(b.outPort); hopDstMac.push(b.dstMac); hopSrcMac.push(b.srcMac); hopIndex.set(key, k); }
      lastOut = b.outPort; lastDst = b.dstMac; lastSrc = b.srcMac; lastHop = k;
    }
    w.add(b.id, b.service, b.portName, b.addr, b.family, b.port, b.state, lastHop,
      b.nodeName === undefined ? 0 : labels.of(b.nodeName) + 1, b.zone === undefined ? 0 : labels.of(b.zone) + 1);
  });
  const c = w.finish();
  c.hopOutPort = Uint32Array.from(hopOut);
  return c;
}

/** Whether `idx[i] < size` for every row (`size` + 1 where 0 means absent: labels). */
function indexesBelow(idx: ArrayLike<number>, size: number): boolean {
  for (let i = 0; i < idx.length; i++) if (!(idx[i] < size)) return false;
  return true;
}

const BACKEND_ROW_COLUMNS = ['id', 'family', 'state', 'port', 'owner', 'hop', 'node', 'zone'] as const;

/** Received columns checked whole before a row is read: the per-row columns hold n entries, the
 * address offsets fit the joined string, every owner, next hop and label index names an entry of
 * its dictionary (a message that does not add up is refused, not decoded into undefined fields). */
function checkBackendColumns(c: BackendColumns): void {
  const n = c.n, owners = c.ownerService?.length, hops = c.hopOutPort?.length, labels = c.labels?.length;
  if (!(Number.isInteger(n) && n >= 0 && columnsHold(c, BACKEND_ROW_COLUMNS, n) && typeof c.addrs === 'string' && offsetsFit(c.addrAt, n, c.addrs.length) &&
    c.ownerPortName?.length === owners && c.hopDstMac?.length === hops && c.hopSrcMac?.length === hops && labels !== undefined &&
    indexesBelow(c.owner, owners) && indexesBelow(c.hop, hops) && indexesBelow(c.node, labels + 1) && indexesBelow(c.zone, labels + 1))) {
    throw new Error(`internal: backend columns of ${n} rows are inconsistent`);
  }
}

/** A row's node or zone name from its column value (0: absent). */
function labelAt(c: BackendColumns, k: number): string | undefined { return k === 0 ? undefined : c.labels[k - 1]; }

/** Received columns as a list of backends (IrList): forEach passes one reused object, slice and
 * the iterator build objects of their own. Also answers a row's fields without an object. */
export class BackendColumnList implements IrList<IrBackend> {
  /** The addresses parsed, 4 little-endian u32 words a row (IPv4 zero-padded): made by the table
   * writer's validation, read by its writes of the same apply, then dropped. */
  addrWords: Uint32Array | null = null;
  constructor(readonly c: BackendColumns) { checkBackendColumns(c); }

  get length(): number { return this.c.n; }
  idAt(i: number): number { return this.c.id[i]; }
  /** The highest id of the rows (0: none), computed once (the writer's capacity checks, its
   * regrow and the worker's BackendStore each need it: 100k ids at 10k services). */
  get maxId(): number {
    if (this.maxIdMemo < 0) {
      const ids = this.c.id;
      let max = 0;
      for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
      this.maxIdMemo = max;
    }
    return this.maxIdMemo;
  }
  private maxIdMemo = -1;
  addrAt(i: number): string { return this.c.addrs.slice(this.c.addrAt[i], this.c.addrAt[i + 1]); }
  outPortAt(i: number): number { return this.c.hopOutPort[this.c.hop[i]]; }

  /** Fills `out` with row i and returns it. */
  load(i: number, out: IrBackend): IrBackend {
    const c = this.c, h = c.hop[i], o = c.owner[i];
    out.id = c.id[i]; out.service = c.ownerService[o]; out.portName = c.ownerPortName[o]; out.addr = this.addrAt(i);
    out.family = c.family[i] as Family; out.port = c.port[i]; out.state = c.state[i];
    out.outPort = c.hopOutPort[h]; out.dstMac = c.hopDstMac[h]; out.srcMac = c.hopSrcMac[h];
    out.nodeName = labelAt(c, c.node[i]); out.zone = labelAt(c, c.zone[i]);
    return out;
  }

  /** Row i as an object of its own, optional fields only when present (as the compiler makes them). */
  row(i: number): IrBackend {
    const c = this.c, h = c.hop[i], o = c.owner[i];
    const b: IrBackend = {
      id: c.id[i], service: c.ownerService[o], portName: c.ownerPortName[o], addr: this.addrAt(i), family: c.family[i] as Family,
      port: c.port[i], state: c.state[i], outPort: c.hopOutPort[h], dstMac: c.hopDstMac[h], srcMac: c.hopSrcMac[h],
    };
    const node = labelAt(c, c.node[i]), zone = labelAt(c, c.zone[i]);
    if (node !== undefined) b.nodeName = node;
    if (zone !== undefined) b.zone = zone;
    return b;
  }

  forEach(fn: (item: IrBackend) => void): void {
    const cursor: IrBackend = { id: 0, service: '', portName: '', addr: '', family: 4, port: 0, state: 0, outPort: 0, dstMac: '', srcMac: '', nodeName: undefined, zone: undefined };
    for (let i = 0; i < this.c.n; i++) fn(this.load(i, cursor));
  }

  forEachId(fn: (id: number) => void): void { const ids = this.c.id; for (let i = 0; i < ids.length; i++) fn(ids[i]); }

  slice(start = 0, end = this.c.n): IrBackend[] {
    const out: IrBackend[] = [], to = Math.min(end, this.c.n);
    for (let i = Math.max(0, start); i < to; i++) out.push(this.row(i));
    return out;
  }

  *[Symbol.iterator](): Iterator<IrBackend> { for (let i = 0; i < this.c.n; i++) yield this.row(i); }
  toJSON(): IrBackend[] { return this.slice(); }
}
