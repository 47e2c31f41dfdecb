// The compiler's frontends, stored by column instead of one object per frontend (the frontends'
// counterpart of backend-table.ts).
//
//   id ─┬─ owner[id]    ref ──▶ { service, portName }  (the same object the port's backends name)
//       ├─ addr[id]     string  (VIP, node address, external or LB IP; shared with the model)
//       ├─ ranges[id]   ref ──▶ string[]  (source ranges: one shared empty list for most)
//       ├─ ids[id]      ref ──▶ Uint32Array | number[] ─┐ the active set: ids[id][idsOff .. +idsLen)
//       ├─ idsOff, idsLen  u32                      ────┘ (a full compile's slab, shared by all)
//       ├─ mag[id]      ref ──▶ Maglev slots ───────────┐ the table: mag[id][magOff .. +magLen)
//       ├─ magOff, magLen  u32                      ────┘
//       ├─ flags, affMs, clusterFront   u32
//       ├─ port            u16
//       └─ kind, proto, family (0 = no frontend with this id), indexed   u8
//
// Why: an object per frontend, plus an id array and a typed-array view of its Maglev table, is ~4 MB
// of young objects at 10k services that all survive the compile (each copied by the scavenger, each
// in freshly touched pages). Here a full compile's active sets are runs in one slab (ids as u32,
// tables as 1/2/4-byte slots), and a frontend is a row of ~70 bytes in a few chunked columns.
//
// To everything else it is a Map<number, IrFrontend>: get() and the iterators build a fresh object
// per call (listings, small diffs, the table writer), set() stores one.
import { FRONTEND_KIND_CODE, FRONTEND_KINDS, PROTO_CODE, PROTOS, type Family, type FrontendKind, type IrFrontend, type IrFrontendRecords, type MaglevSlots, type Proto } from '../ir/ir.js';
import { presentIds, type PortOwner } from './columns.js';
import { WireRows } from './table-rows.js';
import { FrontendColumnsWriter, type FrontendColumns } from '../ir/frontend-columns.js';

/** Where a frontend's active set lives: backend ids ids[idsOff .. idsOff + idsLen) and Maglev
 * slots mag[magOff .. magOff + magLen). The compiler fills one of these per set (scratch). */
export interface ActiveSetRef {
  ids: ArrayLike<number>; idsOff: number; idsLen: number;
  mag: MaglevSlots; magOff: number; magLen: number;
  indexed: boolean;    // slots are indexes into the ids (the compiler's form), else backend ids
}

const EMPTY_MAG = new Uint8Array(0);
const EMPTY_IDS: number[] = Object.freeze([]) as unknown as number[];

/** An ActiveSetRef as a class: the compiler's sets (one per (family, local-only) pair of a
 * service port, shared by the port's frontends that ask for the same set: on a full compile the
 * ids and the table are runs of the compile's slab, otherwise arrays of their own at offset 0)
 * and set()'s own. One class for both, so that put() sees one map: with an object literal in
 * set(), a full compile after an incremental change ran put() (and the compiler's emit, which
 * inlines it) as polymorphic code. */
export class ActiveSet implements ActiveSetRef {
  ids: ArrayLike<number> = EMPTY_IDS; idsOff = 0; idsLen = 0;
  mag: MaglevSlots = EMPTY_MAG; magOff = 0; magLen = 0;
  indexed = true;
  fallback = false;
  /** Drops the references (scratch between uses). */
  release(): void { this.ids = EMPTY_IDS; this.mag = EMPTY_MAG; }
}
const SET_REF = new ActiveSet(); // set()'s

// chunks of 1024 ids: growing never copies (10k services is ~10 chunks)
const CHUNK_BITS = 10, CHUNK = 1 << CHUNK_BITS, MASK = CHUNK - 1;

class Chunk {
  readonly owner = new Array<PortOwner | undefined>(CHUNK).fill(undefined);
  readonly addr = new Array<string | undefined>(CHUNK).fill(undefined);
  readonly ranges = new Array<string[] | undefined>(CHUNK).fill(undefined);
  readonly ids = new Array<ArrayLike<number> | undefined>(CHUNK).fill(undefined);
  readonly mag = new Array<MaglevSlots | undefined>(CHUNK).fill(undefined);
  readonly idsOff: Uint32Array; readonly idsLen: Uint32Array;
  readonly magOff: Uint32Array; readonly magLen: Uint32Array;
  readonly flags: Uint32Array; readonly affMs: Uint32Array; readonly clusterFront: Uint32Array;
  readonly port: Uint16Array;
  readonly kind: Uint8Array; readonly proto: Uint8Array; readonly family: Uint8Array; readonly indexed: Uint8Array;
  constructor() {
    const u32 = () => new Uint32Array(CHUNK), u8 = () => new Uint8Array(CHUNK);
    this.idsOff = u32(); this.idsLen = u32(); this.magOff = u32(); this.magLen = u32(); this.flags = u32(); this.affMs = u32(); this.clusterFront = u32();
    this.port = new Uint16Array(CHUNK);
    this.kind = u8(); this.proto = u8(); this.family = u8(); this.indexed = u8();
  }
}

export class FrontendTable implements IrFrontendRecords {
  private chunks: Chunk[] = [];
  private count = 0;
  /** Bumped by every change: a diff's rows refuse to read a table that moved on (table-rows.ts). */
  version = 0;

  get size(): number { return this.count; }
  get [Symbol.toStringTag](): string { return 'FrontendTable'; }

  private reserve(id: number): Chunk {
    if (!Number.isInteger(id) || id < 1 || id > 0xffffff) throw new RangeError(`frontend id ${id} out of range 1..16777215`);
    while (this.chunks.length <= id >>> CHUNK_BITS) this.chunks.push(new Chunk());
    return this.chunks[id >>> CHUNK_BITS];
  }

  /** Stores one frontend from its parts, no object (the compiler's bulk path). `set`'s arrays are
   * referenced, not copied: they must not change while the frontend is stored. */
  put(id: number, owner: PortOwner, kind: FrontendKind, addr: string, family: Family, port: number, proto: Proto,
    flags: number, affinityTimeoutMs: number, ranges: string[], set: ActiveSetRef, clusterFront = 0): void {
    const c = this.reserve(id), i = id & MASK;
    if (c.family[i] === 0) this.count++;
    c.owner[i] = owner; c.addr[i] = addr; c.ranges[i] = ranges;
    c.ids[i] = set.ids; c.idsOff[i] = set.idsOff; c.idsLen[i] = set.idsLen;
    c.mag[i] = set.mag; c.magOff[i] = set.magOff; c.magLen[i] = set.magLen; c.indexed[i] = set.indexed ? 1 : 0;
    c.flags[i] = flags; c.affMs[i] = affinityTimeoutMs; c.clusterFront[i] = clusterFront; c.port[i] = port;
    c.kind[i] = FRONTEND_KIND_CODE[kind]; c.proto[i] = PROTO_CODE[proto]; c.family[i] = family;
    this.version++;
  }

  set(id: number, f: IrFrontend): this {
    const c = this.chunks[id >>> CHUNK_BITS], cur = c !== undefined && id >= 1 ? c.owner[id & MASK] : undefined;
    const owner = cur !== undefined && cur.service === f.service && cur.portName === f.portName ? cur : { service: f.service, portName: f.portName };
    const r = SET_REF;
    r.ids = f.backends; r.idsOff = 0; r.idsLen = f.backends.length;
    r.mag = f.maglev; r.magOff = 0; r.magLen = f.maglev.length; r.indexed = f.maglevIndexed === true;
    this.put(id, owner, f.kind, f.addr, f.family, f.port, f.proto, f.flags, f.affinityTimeoutMs, f.sourceRanges, r, f.clusterFront ?? 0);
    r.release();
    return this;
  }

  delete(id: number): boolean {
    if (!this.has(id)) return false;
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK;
    c.family[i] = 0; c.owner[i] = undefined; c.addr[i] = undefined; c.ranges[i] = undefined; c.ids[i] = undefined; c.mag[i] = undefined;
    this.count--;
    this.version++;
    return true;
  }

  clear(): void { this.chunks = []; this.count = 0; this.version++; }

  // ---- reads ---------------------------------------------------------------------------------
  has(id: number): boolean {
    const c = this.chunks[id >>> CHUNK_BITS];
    return c !== undefined && id >= 1 && c.family[id & MASK] !== 0;
  }

  /** What the compiler looks a service's previous frontend ids up by (id must exist). */
  portNameOf(id: number): string { return this.chunks[id >>> CHUNK_BITS].owner[id & MASK]!.portName; }
  kindOf(id: number): FrontendKind { return FRONTEND_KINDS[this.chunks[id >>> CHUNK_BITS].kind[id & MASK]]; }
  addrOf(id: number): string { return this.chunks[id >>> CHUNK_BITS].addr[id & MASK]!; }
  /** Sizes the table writer sums over every frontend (no object). */
  maglevLengthOf(id: number): number { return this.chunks[id >>> CHUNK_BITS].magLen[id & MASK]; }
  backendCountOf(id: number): number { return this.chunks[id >>> CHUNK_BITS].idsLen[id & MASK]; }
  sourceRangeCountOf(id: number): number { return this.chunks[id >>> CHUNK_BITS].ranges[id & MASK]!.length; }

  get(id: number): IrFrontend | undefined {
    if (!this.has(id)) return undefined;
    const c = this.chunks[id >>> CHUNK_BITS], i = id & MASK, o = c.owner[i]!;
    const ids = c.ids[i]!, idsOff = c.idsOff[i], idsLen = c.idsLen[i];
    const backends = idsLen === 0 ? [] : new Array<number>(idsLen);
    for (let k = 0; k < idsLen; k++) backends[k] = ids[idsOff + k];
    const mag = c.mag[i]!, magOff = c.magOff[i], magLen = c.magLen[i];
    const f: IrFrontend = {
      id, service: o.service, portName: o.portName, kind: FRONTEND_KINDS[c.kind[i]], addr: c.addr[i]!, family: c.family[i] as Family,
      port: c.port[i], proto: PROTOS[c.proto[i]], flags: c.flags[i], affinityTimeoutMs: c.affMs[i], sourceRanges: c.ranges[i]!,
      backends, maglev: magOff === 0 && mag.length === magLen ? mag : magLen === 0 ? EMPTY_MAG : mag.subarray(magOff, magOff + magLen),
    };
    if (c.indexed[i]) f.maglevIndexed = true;
    if (c.clusterFront[i]) f.clusterFront = c.clusterFront[i];
    return f;
  }

  forEach(fn: (value: IrFrontend, id: number, map: Map<number, IrFrontend>) => void, thisArg?: unknown): void {
    const ids = this.idArray();
    for (let k = 0; k < ids.length; k++) fn.call(thisArg, this.get(ids[k])!, ids[k], this);
  }
  /** The ids in ascending order, as an array (one pass over the family columns). */
  idArray(): number[] { return presentIds(this.chunks, CHUNK_BITS, this.count); }
  *keys(): IterableIterator<number> { yield* this.idArray(); }
  *values(): IterableIterator<IrFrontend> { for (const id of this.idArray()) yield this.get(id)!; }
  *entries(): IterableIterator<[number, IrFrontend]> { for (const id of this.idArray()) yield [id, this.get(id)!]; }
  [Symbol.iterator](): IterableIterator<[number, IrFrontend]> { return this.entries(); }

  /** Frontends `ids` (a list, or a count n meaning 1..n) as a list read from these columns: the
   * objects are built on the first read and kept (the table writer reads them several times);
   * the diff's wire columns are written from the table without them. */
  rows(ids: number[] | number): WireRows<IrFrontend, FrontendColumns> { return new WireRows<IrFrontend, FrontendColumns>(this, ids, (x) => this.wireColumns(x)); }

  /** Frontends `ids` (which exist; a count n: 1..n) in the diff's wire columns, no object per row. */
  wireColumns(ids: number[] | number): FrontendColumns {
    const n = typeof ids === 'number' ? ids : ids.length, chunks = this.chunks;
    let nBackends = 0, s1 = 0, s2 = 0, s4 = 0;
    for (let k = 0; k < n; k++) {
      const id = typeof ids === 'number' ? k + 1 : ids[k], c = chunks[id >>> CHUNK_BITS], i = id & MASK, len = c.magLen[i];
      nBackends += c.idsLen[i];
      const w = c.mag[i]!.BYTES_PER_ELEMENT;
      if (w === 1) s1 += len; else if (w === 2) s2 += len; else s4 += len;
    }
    const out = new FrontendColumnsWriter(n, nBackends, s1, s2, s4);
    for (let k = 0; k < n; k++) {
      const id = typeof ids === 'number' ? k + 1 : ids[k], c = chunks[id >>> CHUNK_BITS], i = id & MASK, o = c.owner[i]!;
      out.add(id, o.service, o.portName, c.kind[i], c.proto[i], c.addr[i]!, c.family[i], c.port[i], c.flags[i], c.affMs[i], c.clusterFront[i],
        c.indexed[i] ? 3 : 0, c.ranges[i]!, c.ids[i]!, c.idsOff[i], c.idsLen[i], c.mag[i]!, c.magOff[i], c.magLen[i]);
    }
    return out.finish();
  }
}
