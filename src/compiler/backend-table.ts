// The compiler's backends, stored by column instead of one object per backend.
//
//   id ─┬─ addr[id]      string   (the endpoint address, as validated)
//       ├─ nodeName[id]  u32 ──▶ labels[k] = string | undefined (0 = undefined)
//       ├─ zone[id]      u32 ──▶ labels[k]   (node and zone names: a few per cluster)
//       ├─ owner[id]     ref ──▶ { service, portName }   one object per compiled service port
//       ├─ hop[id]       u32 ──▶ hops[k]    = { outPort, dstMac, srcMac }   one per next hop (0 = none)
//       ├─ port[id]      u16
//       ├─ family[id]    u8 (4 | 6; 0 = no backend with this id)
//       └─ state[id]     u8 (L.BES_*)
//
// Why: at 10k services x 10 endpoints an object per backend is 100k objects of ~110 bytes that all
// survive the compile (each copied by the scavenger, each in freshly touched pages). Columns are
// ~40 bytes per backend in a few large arrays that are allocated once; the strings are shared
// with the model objects.
//
// It is a Map<number, IrBackend> to everything else: get() and the iterators build a fresh object
// per call (cheap, short-lived: listings and small diffs), set() stores one. The columns come in
// chunks of 4096 ids (below). Bulk readers — the
// table writer on a full apply — read rows() (table-rows.ts), which load() into one reused object.
import * as L from '../../assembly/layout.js';
import type { Family, IrBackend, IrRecords } from '../ir/ir.js';
import { typedArray, type SlabAllocator } from './slab.js';
import { presentIds, type PortOwner } from './columns.js';
import { WireRows } from './table-rows.js';
import { BackendColumnsWriter, type BackendColumns } from '../ir/backend-columns.js';
import { NextHop } from './next-hops.js';

const NO_MAC = '00:00:00:00:00:00';

/** Rows 0 .. n-1 of a service port's backends by column, for putRun (the compiler's candidates). */
export interface BackendRun {
  readonly n: number;
  readonly id: ArrayLike<number>; readonly addr: ArrayLike<string>; readonly family: ArrayLike<Family>;
  readonly port: ArrayLike<number>; readonly state: ArrayLike<number>; readonly hop: ArrayLike<NextHop | null>;
  /** the endpoint each row is: its node and zone names */
  readonly ep: ArrayLike<{ readonly nodeName?: string; readonly zone?: string } | null>;
}

// Columns come in chunks of 4096 ids: growing the table allocates one more chunk and never copies
// what is there. A single doubling copy of 100k-entry columns was a ~25 ms stall on the first
// endpoint change after a full compile (the change's new id fell past the end).
const CHUNK_BITS = 12, CHUNK = 1 << CHUNK_BITS, MASK = CHUNK - 1;

class Chunk {
  readonly addr: Array<string | undefined> = new Array<string | undefined>(CHUNK).fill(undefined);
  // a reference, not an index into an interned list: interning needed a (port name, service) →
  // index map of every service (~12 ms and ~1 MB of a 10k-service compile), and the garbage
  // collector frees the owners of removed services, which an intern list would keep forever
  readonly owner: Array<PortOwner | undefined> = new Array<PortOwner | undefined>(CHUNK).fill(undefined);
  readonly nodeName: Uint32Array; // labels: half the bytes of a pointer column, never scanned by GC
  readonly zone: Uint32Array;
  readonly hop: Uint32Array;
  readonly port: Uint16Array;
  readonly family: Uint8Array; // 0 = no backend with this id
  readonly state: Uint8Array;
  /** Typed columns from `alloc` (a full compile's slab) or buffers of their own. */
  constructor(alloc?: SlabAllocator) {
    const a: SlabAllocator = alloc ?? typedArray;
    this.nodeName = a(CHUNK, 4) as Uint32Array; this.zone = a(CHUNK, 4) as Uint32Array; this.hop = a(CHUNK, 4) as Uint32Array;
    this.port = a(CHUNK, 2) as Uint16Array; this.family = a(CHUNK, 1) as Uint8Array; this.state = a(CHUNK, 1) as Uint8Array;
  }
}

export class BackendTable implements IrRecords<IrBackend> {
  private chunks: Chunk[] = [];
  private count = 0;
  private readonly hops: NextHop[] = [new NextHop(L.PORT_NONE, NO_MAC, NO_MAC)];
  private readonly hopIndex = new Map<string, number>();
  private readonly hopByObject = new WeakMap<object, number>();
  private lastHopObject: NextHop | null = null;
  private lastHopIdx = 0;
  // node and zone names, interned: a cluster has a few (kept for the table's lifetime)
  private readonly labels: Array<string | undefined> = [undefined];
  private readonly labelIndex = new Map<string, number>();
  // consecutive endpoints mostly share a node: the last label looked up ('' matches none:
  // validation makes an empty name undefined)
  private lastLabel = '';
  private lastLabelIdx = 0;
  /** Bumped by every change: a diff's rows refuse to read a table that moved on (table-rows.ts). */
  version = 0;

  get size(): number { return this.count; }
  get [Symbol.toStringTag](): string { return 'BackendTable'; }

  // ---- interning (per service port, per next hop) -----------------------------------------
  /** The index of a next hop; 0 is "none" (PORT_NONE, zero MACs). */
  hopOf(outPort: number, dstMac: string, srcMac: string): number {
    if (outPort === L.PORT_NONE && dstMac === NO_MAC && srcMac === NO_MAC) return 0;
    // consecutive backends mostly share a next hop: the last one matched, without a key string
    const last = this.hops[this.lastHopOf];
    if (last.outPort === outPort && last.dstMac === dstMac && last.srcMac === srcMac) return this.lastHopOf;
    const key = `${outPort}|${dstMac}|${srcMac}`;
    let k = this.hopIndex.get(key);
    if (k === undefined) { k = this.hops.length; this.hops.push(new NextHop(outPort, dstMac, srcMac)); this.hopIndex.set(key, k); }
    this.lastHopOf = k;
    return k;
  }
  private lastHopOf = 0;

  /** The index of a node or zone name (0 = none). */
  private labelOf(s: string | undefined): number {
    if (s === undefined || s === '') return 0;
    if (s === this.lastLabel) return this.lastLabelIdx;
    let k = this.labelIndex.get(s);
    if (k === undefined) { k = this.labels.length; this.labels.push(s); this.labelIndex.set(s, k); }
    this.lastLabel = s; this.lastLabelIdx = k;
    return k;
  }

  /** hopOf for a next-hop object the caller shares between backends (the compiler's resolved
   * neighbours and routes): one lookup by identity instead of a key string per backend. */
  hopOfObject(h: NextHop): number {
    if (h === this.lastHopObject) return this.lastHopIdx; // endpoints of a port mostly share a route
    let k = this.hopByObject.get(h);
    if (k === undefined) { k = this.hopOf(h.outPort, h.dstMac, h.srcMac); this.hopByObject.set(h, k); }
    this.lastHopObject = h; this.lastHopIdx = k;
    return k;
  }

  // ---- column writes ------------------------------------------------------------------------
  /** Chunks up to the one of `id` (which must be in range), allocated now. */
  private reserve(id: number, alloc?: SlabAllocator): Chunk {
    while (this.chunks.length <= id >>> CHUNK_BITS) this.chunks.push(new Chunk(alloc));
    return this.chunks[id >>> CHUNK_BITS];
  }

  /** Room for ids below `slots`, allocated now (the compiler's bound on a fresh compile), the
   * typed columns carved from `alloc` when given. */
  grow(slots: number, alloc?: SlabAllocator): void { if (slots > 1) this.reserve(Math.min(slots - 1, 0xffffff), alloc); }

  /** Stores a service port's backends, rows 0 .. run.n - 1 of `run` (the compiler's candidates):
   * the one write of the columns (set() is a run of one row). The chunk, the last label and the
   * last next hop are kept in locals: a put() per backend once made five calls — calls that cost
   * while the compiler's code is not optimised yet (a daemon's one full sync, mostly). Every id is
   * checked: a RangeError for one that is not an integer in 1..16777215, before anything of the
   * run is written after it. */
  putRun(owner: PortOwner, run: BackendRun): void {
    const chunks = this.chunks, ids = run.id, eps = run.ep, hops = run.hop;
    let c: Chunk | undefined, base = -1, lastNode: string | undefined | null = null, lastNodeIdx = 0, lastHop: NextHop | null = null, lastHopIdx = 0;
    for (let r = 0; r < run.n; r++) {
      const id = ids[r], k = id >>> CHUNK_BITS;
      // (id & 0xffffff) === id: an integer in 0..2^24-1 (a fraction, a negative, NaN or a larger
      // number differs from its masked value): one compare per row
      if ((id & 0xffffff) !== id || id === 0) { this.version++; throw new RangeError(`backend id ${id} out of range 1..16777215`); }
      if (k !== base) { c = chunks[k] ?? this.reserve(id); base = k; }
      const i = id & MASK, ep = eps[r]!, node = ep.nodeName, hop = hops[r];
      if (c!.family[i] === 0) this.count++;
      if (node !== lastNode) { lastNode = node; lastNodeIdx = this.labelOf(node); }
      if (hop !== lastHop) { lastHop = hop; lastHopIdx = hop ? this.hopOfObject(hop) : 0; }
      c!.addr[i] = run.addr[r]; c!.nodeName[i] = lastNodeIdx; c!.zone[i] = ep.zone === undefined ? 0 : this.labelOf(ep.zone);
      c!.owner[i] = owner; c!.hop[i] = lastHopIdx; c!.port[i] = run.port[r]; c!.family[i] = run.family[r]; c!.state[i] = run.state[r];
    }
    this.version++;
  }

  set(id: number, b: IrBackend): this {
    // one owner object per set() unless the id keeps its owner (an update of the same backend)
    const c = this.chunks[id >>> CHUNK_BITS], cur = c !== undefined && id >= 1 ? c.owner[id & MASK] : undefined;
    const owner = cur !== undefined && cur.service === b.service && cur.portName === b.portName ? cur : { service: b.service, portName: b.portName };
    // putRun() of one row (a scratch run reused): the columns have one write
    const one = this.one;
    one.id[0] = id; one.addr[0] = b.addr; one.family[0] = b.family; one.port[0] = b.port; one.state[0] = b.state;
    one.hop[0] = this.hops[this.hopOf(b.outPort, b.dstMac, b.srcMac)]; one.ep[0].nodeName = b.nodeName; one.ep[0].zone = b.zone;
    try { this.putRun(owner, one); } finally { one.addr[0] = ''; one.hop[0] = null; one.ep[0].nodeName = undefined; one.ep[0].zone = undefined; }
    return this;
  }
  private readonly one = { n: 1, id: [0], addr: [''], family: [4] as Family[], port: [0], state: [0], hop: [null] as Array<NextHop | null>, ep: [{ nodeName: undefined as string | undefined, zone: undefined as string | undefined }] };

  delete(id: number): boolean {
    if (!this.has(id)) return false;
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    c.family[i] = 0; c.addr[i] = undefined; c.owner[i] = undefined; c.nodeName[i] = 0; c.zone[i] = 0;
    this.count--;
    this.version++;
    return true;
  }

  clear(): void {
    this.chunks = [];
    this.count = 0;
    this.version++;
  }

  // ---- reads ---------------------------------------------------------------------------------
  has(id: number): boolean {
    const c = this.chunks[id >>> CHUNK_BITS];
    return c !== undefined && id >= 1 && c.family[id & MASK] !== 0;
  }

  /** The fields that name a backend within its service (what the compiler looks previous ids up by). */
  addrOf(id: number): string | undefined { return this.has(id) ? this.chunks[id >>> CHUNK_BITS].addr[id & MASK] : undefined; }
  targetPortOf(id: number): number { return this.chunks[id >>> CHUNK_BITS].port[id & MASK]; }
  portNameOf(id: number): string { return this.chunks[id >>> CHUNK_BITS].owner[id & MASK]!.portName; }

  /** Fills `out` with backend `id` (which must exist) and returns it: one object reused for a
   * whole pass, so a bulk reader allocates nothing. */
  load(id: number, out: IrBackend): IrBackend {
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    const o = c.owner[i]!, h = this.hops[c.hop[i]];
    out.id = id; out.service = o.service; out.portName = o.portName; out.addr = c.addr[i]!;
    out.family = c.family[i] as Family; out.port = c.port[i]; out.state = c.state[i];
    out.outPort = h.outPort; out.dstMac = h.dstMac; out.srcMac = h.srcMac;
    out.nodeName = this.labels[c.nodeName[i]]; out.zone = this.labels[c.zone[i]];
    return out;
  }

  get(id: number): IrBackend | undefined {
    if (!this.has(id)) return undefined;
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    const o = c.owner[i]!, h = this.hops[c.hop[i]];
    // the same shape the compiler's literals have: optional fields only when present
    const b: IrBackend = {
      id, service: o.service, portName: o.portName, addr: c.addr[i]!, family: c.family[i] as Family, port: c.port[i],
      state: c.state[i], outPort: h.outPort, dstMac: h.dstMac, srcMac: h.srcMac,
    };
    const node = this.labels[c.nodeName[i]], zone = this.labels[c.zone[i]];
    if (node !== undefined) b.nodeName = node;
    if (zone !== undefined) b.zone = zone;
    return b;
  }

  forEach(fn: (value: IrBackend, id: number, map: Map<number, IrBackend>) => void, thisArg?: unknown): void {
    for (const [id, b] of this.entries()) fn.call(thisArg, b, id, this);
  }
  /** The ids in ascending order, as an array: one pass over the family columns (keys() is a
   * generator, ~20 ms for 100k ids). */
  idArray(): number[] { return presentIds(this.chunks, CHUNK_BITS, this.count); }
  *keys(): IterableIterator<number> { yield* this.idArray(); } // one scan of the columns, in idArray()
  *values(): IterableIterator<IrBackend> { for (const id of this.keys()) yield this.get(id)!; }
  *entries(): IterableIterator<[number, IrBackend]> { for (const id of this.keys()) yield [id, this.get(id)!]; }
  [Symbol.iterator](): IterableIterator<[number, IrBackend]> { return this.entries(); }

  /** Backends `ids` (a list, or a count n meaning 1..n) as a list that reads these columns:
   * its forEach passes one reused object (a full compile's diff and the table writer's regrow). */
  rows(ids: number[] | number): WireRows<IrBackend, BackendColumns> { return new WireRows<IrBackend, BackendColumns>(this, ids, (x) => this.wireColumns(x), rowCursor()); }

  /** Backends `ids` (which exist; a count n: 1..n) in the diff's wire columns: the table's next
   * hops and labels are the columns' dictionaries as they are (label k > 0 is labels[k] here and
   * labels[k - 1] there). */
  wireColumns(ids: number[] | number): BackendColumns {
    const n = typeof ids === 'number' ? ids : ids.length, chunks = this.chunks, hops = this.hops;
    const hopOut = new Uint32Array(hops.length), hopDst = new Array<string>(hops.length), hopSrc = new Array<string>(hops.length);
    for (let k = 0; k < hops.length; k++) { hopOut[k] = hops[k].outPort; hopDst[k] = hops[k].dstMac; hopSrc[k] = hops[k].srcMac; }
    const out = new BackendColumnsWriter(n, hopOut, hopDst, hopSrc, this.labels.slice(1) as string[]);
    for (let k = 0; k < n; k++) {
      const id = typeof ids === 'number' ? k + 1 : ids[k], c = chunks[id >>> CHUNK_BITS], i = id & MASK, o = c.owner[i]!;
      out.add(id, o.service, o.portName, c.addr[i]!, c.family[i], c.port[i], c.state[i], c.hop[i], c.nodeName[i], c.zone[i]);
    }
    return out.finish();
  }
}

function rowCursor(): IrBackend {
  return { id: 0, service: '', portName: '', addr: '', family: 4, port: 0, state: 0, outPort: 0, dstMac: NO_MAC, srcMac: NO_MAC, nodeName: undefined, zone: undefined };
}
