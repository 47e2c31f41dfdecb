// Writes service tables into the core's two table sets and flips the generation word.
//
// Left-right update: a diff is written into the INACTIVE set, CFG_GEN is flipped (one u32 store:
// the next batch sees the whole new generation, never a mix), then the same diff is replayed on
// the other set so both are identical again. Cost is proportional to the diff, not to the number of
// services: one service-map insert/delete per changed key, one frontend/backend entry each, the
// Maglev ranges of changed frontends (maglev-range.ts). Both sets use the same offsets for every Maglev range and CIDR
// list (the allocators below are shared), so replaying is byte-for-byte the same work — and so is
// copying the written set's regions into the other one: a diff that rewrites most of the tables
// (a full sync onto tables already large enough) is copied instead of replayed (copySet).
//
// When the Ir outgrows a capacity, both sets are reallocated larger (doubling) at the end of linear
// memory and rewritten whole before the flip; per-id counter regions are grown and copied. The
// old regions are not reused (a bump allocator): growth is rare and bounded by doubling.
import * as L from '../../assembly/layout.js';
import type { Ir, IrBackend, IrFrontend, IrRoute, SnatAddresses } from '../ir/ir.js';
import { emptyIr, PROTO_NUMBER, snatOf } from '../ir/ir.js';
import type { IrDiff } from '../ir/diff.js';
import type { IrList } from '../ir/list.js';
import { ipv4ValueAt, parseAddr, parseCidr, parseMacShared as parseMac, writeAddr } from '../util/addr.js';
import { BackendColumnList } from '../ir/backend-columns.js';
import type { BackendParts } from '../ir/backend-store.js';
import { HASH_START, hashFinish, hashMix } from './hash.js';
import { IdSet } from './id-set.js';
import { FrontRecords } from './front-records.js';
import { maglevRangeWords, maglevSlotBytes, maglevSlotWords } from './maglev-range.js';

const scratch16 = new Uint8Array(16); // validate()'s parse target
const scratchWords = new Uint32Array(scratch16.buffer); // (little-endian, as linear memory)
const NO_WORDS = new Uint32Array(0);

/** The part of the Wasm host the writer uses: linear memory, the config words, the bump
 * allocator, and the regions it moves when tables grow. */
export interface TableMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly dv: DataView;
  cfg32(off: number): number;
  setCfg32(off: number, v: number): void;
  /** `bytes` of fresh, zeroed memory at the end of the map (never handed out twice). */
  allocate(bytes: number): number;
  /** Asks for huge pages for [at, at + bytes) before it is first touched. */
  adviseHugePages(at: number, bytes: number): void;
  readonly map: {
    cfg: number; tableSets: [number, number];
    svcCounters: number; svcMax: number; beCounters: number; beMax: number;
  };
}

export interface TableCapacities {
  frontends: number;   // highest frontend id
  backends: number;    // highest backend id
  maglevWords: number; // total Maglev range words over all frontends (maglev-range.ts)
  cidrs: number;       // total source-range CIDRs over all frontends
  routes: number;
}

const align = (n: number, a = 64) => Math.ceil(n / a) * a;
const pow2 = (n: number) => { let p = 1; while (p < n) p *= 2; return p; };

interface SetLayout { base: number; svcmap: number; svcSlots: number; front: number; backend: number; maglev: number; cidr: number; route: number }

function setLayout(base: number, caps: TableCapacities): SetLayout & { end: number } {
  let p = base + L.TSH_SIZE;
  const take = (b: number) => { const at = p; p = align(p + b); return at; };
  // load <= 0.5 with two keys per frontend id at most: its own and, for a ClusterIP, its
  // address's catch-all key (see VipChange)
  const svcSlots = pow2(Math.max(16, caps.frontends * 4));
  const l = {
    base,
    svcmap: take(svcSlots * L.SM_SIZE), svcSlots,
    front: take((caps.frontends + 1) * L.FE_SIZE),
    backend: take((caps.backends + 1) * L.BE_SIZE),
    maglev: take(caps.maglevWords * 4),
    cidr: take(caps.cidrs * L.CIDR_SIZE),
    route: take(caps.routes * L.RT_SIZE),
    end: 0,
  };
  l.end = p;
  return l;
}

/** Where a set's regions start, in one order: service map, frontends, backends, Maglev words,
 * CIDRs, routes (usedBytes gives their extents in the same order). */
function regionStarts(s: SetLayout): number[] { return [s.svcmap, s.front, s.backend, s.maglev, s.cidr, s.route]; }

/** How many regions a set has (regionStarts' length): a table image saves each. */
export const TABLE_REGIONS = 6;

export function tableSetBytes(caps: TableCapacities): number {
  return setLayout(0, caps).end;
}

/** Size-bucketed allocator of word/entry ranges shared by both sets. Maglev sizes come from a
 * short list of primes, so exact-size reuse keeps fragmentation low. */
class RangeAllocator {
  private top = 0;
  private free = new Map<number, number[]>();
  constructor(public capacity: number) {}
  alloc(n: number): number {
    if (n === 0) return 0;
    const list = this.free.get(n);
    if (list && list.length) return list.pop()!;
    if (this.top + n > this.capacity) return -1;
    const at = this.top; this.top += n; return at;
  }
  release(at: number, n: number): void {
    if (n === 0) return;
    let list = this.free.get(n);
    if (!list) this.free.set(n, (list = []));
    list.push(at);
  }
  get used(): number { return this.top; }
}

export class TableWriter {
  ir: Ir = emptyIr();
  generation = 0;
  caps: TableCapacities;
  private sets: [SetLayout, SetLayout];
  private maglev: RangeAllocator;
  private cidrs: RangeAllocator;
  /** Each frontend id's placement and the service-map key it was written with (front-records.ts). */
  private fronts = new FrontRecords();
  private backendIds = new IdSet();
  /** ClusterIP frontend ids by address ("family|addr"): each address has one catch-all key in the
   * service map naming the lowest of them (the core rejects a miss that hits it). One id as a
   * number (most addresses: a Set each was 10k Sets to build and keep at 10k services). */
  private vips = new Map<string, number | Set<number>>();
  // incremental totals for capacity checks (see capacityFor)
  private maxFront = 0;
  private maxBack = 0;
  /** A regrow copies the first set's bytes into the second (false: writes it again, the way a
   * diff is replayed; tests compare the two). */
  secondSetByCopy = true;
  private totalMaglev = 0;
  private totalCidrs = 0;
  /** The sets hold a table image (src/core/table-image.ts), not what this writer's own state
   * describes: the next apply rewrites everything (a regrow from the image's capacities). */
  private rewriteNext = false;
  /** Copy the second set after the flip later, in slices (copyStep), instead of before apply()
   * returns: a forwarding worker answers the apply first and copies between batches and while
   * idle (at 10k services × 10 endpoints ~19 MB, most of it fresh pages after a regrow: a page
   * fault each). The core reads only the active set, so the other one may lag until the next
   * apply, which completes the copy first (settle). Off by default: callers that compare the two
   * sets right after an apply (tests) see them equal. */
  deferSecondSet = false;
  /** A deferred copy's regions still to copy: [from, to, bytes] each, and how far it got. */
  private pendingCopy: { regions: Array<[number, number, number]>; k: number; done: number } | null = null;
  /** The last frontend list whose addresses were parsed, and them: 4 little-endian u32 words
   * each, in list order (validate() parses every upserted frontend's address once; the writes,
   * service-map keys and ClusterIP catch-alls of the same apply read the words). */
  private parsedFronts: IrList<IrFrontend> | null = null;
  private parsedWords: Uint32Array = NO_WORDS;

  constructor(private core: TableMemory, caps: TableCapacities) {
    this.caps = { ...caps };
    this.sets = [setLayout(core.map.tableSets[0], caps), setLayout(core.map.tableSets[1], caps)];
    this.maglev = new RangeAllocator(caps.maglevWords);
    this.cidrs = new RangeAllocator(caps.cidrs);
  }

  /** Zero both sets and write their headers (called before the core's init()). */
  initSets(): void {
    for (const s of this.sets) this.writeHeader(s, 0);
    this.core.setCfg32(L.CFG_TABLESET0_OFF, this.sets[0].base);
    this.core.setCfg32(L.CFG_TABLESET1_OFF, this.sets[1].base);
  }

  /** Writes a set's header. The set itself is not zeroed: every set comes fresh from the host's
   * bump allocator (Core.allocate never hands memory out twice) and Wasm memory.grow zero-fills,
   * so it is zero already — and writing zeros would touch every page of it: at 10k services the
   * two sets are tens of MB, most of which the tables never need (capacity headroom), and a first
   * touch is a page fault. */
  private writeHeader(s: SetLayout, routeCount: number, localCount = 0): void {
    const dv = this.core.dv;
    const w = (off: number, v: number) => dv.setUint32(s.base + off, v >>> 0, true);
    w(L.TSH_SVCMAP_OFF, s.svcmap); w(L.TSH_SVCMAP_MASK, s.svcSlots - 1);
    w(L.TSH_FRONT_OFF, s.front); w(L.TSH_FRONT_MAX, this.caps.frontends);
    w(L.TSH_BACKEND_OFF, s.backend); w(L.TSH_BACKEND_MAX, this.caps.backends);
    w(L.TSH_MAGLEV_OFF, s.maglev); w(L.TSH_MAGLEV_WORDS, this.caps.maglevWords);
    w(L.TSH_CIDR_OFF, s.cidr); w(L.TSH_CIDR_MAX, this.caps.cidrs);
    w(L.TSH_ROUTE_OFF, s.route); w(L.TSH_ROUTE_COUNT, routeCount); w(L.TSH_ROUTE_MAX, this.caps.routes);
    w(L.TSH_LOCAL_COUNT, localCount);
  }

  /** Checks a diff before anything is written: ids in range or growable, addresses valid. */
  private validate(diff: IrDiff): void {
    this.frontAddrWords(diff.frontendsUpsert); // (throws on an invalid address, or one of another family)
    for (const f of diff.frontendsUpsert) {
      if (!(Number.isInteger(f.id) && f.id >= 1 && f.id <= 0xffffff)) throw new RangeError(`frontend id ${f.id} out of range`);
      if (f.maglev.length > 65536) throw new RangeError(`frontend ${f.id}: Maglev table larger than 65536`);
      for (let i = 0; i < f.sourceRanges.length; i++) parseCidr(f.sourceRanges[i]);
      // indexed loops: for-of over a typed array goes through the iterator (~14 ms per 2.5M slots)
      const t = f.maglev, n = f.backends.length;
      if (t.length === 0) continue; // (no range: its backend list is not written)
      if (f.maglevIndexed) {
        for (let i = 0; i < t.length; i++) if (t[i] >= n) throw new RangeError(`frontend ${f.id}: Maglev slot names backend index ${t[i]} of ${n}`);
      } else {
        for (let i = 0; i < t.length; i++) if (t[i] === 0) throw new RangeError(`frontend ${f.id}: Maglev table contains backend id 0`);
        slotIndexes(f); // (throws on an id its backend list does not hold)
      }
      for (const b of f.backends) if (!(Number.isInteger(b) && b >= 1 && b <= 0xffffffff)) throw new RangeError(`frontend ${f.id}: backend id ${b} in its backend list`);
    }
    const cols = backendColumnsOf(diff.backendsUpsert);
    if (cols) validateBackendColumns(cols);
    else {
      let dst: string | undefined, src: string | undefined; // (consecutive backends mostly share their MACs)
      diff.backendsUpsert.forEach((b) => {
        checkBackendId(b.id);
        writeAddr(b.addr, scratch16, 0);
        if (b.dstMac !== dst) { parseMac(b.dstMac); dst = b.dstMac; }
        if (b.srcMac !== src) { parseMac(b.srcMac); src = b.srcMac; }
      });
    }
    for (const r of diff.routes ?? []) { parseCidr(r.prefix); parseMac(r.dstMac); parseMac(r.srcMac); }
  }

  /** The addresses of `fronts` as 4 words each, in order: parsed once per list (validate() parses
   * the diff's; a regrow that writes another list parses that one). Throws on an invalid address
   * or one whose family is not the frontend's. */
  private frontAddrWords(fronts: IrList<IrFrontend>): Uint32Array {
    if (fronts === this.parsedFronts) return this.parsedWords;
    const n = fronts.length;
    const words = n * 4 <= this.parsedWords.length && this.parsedFronts === null ? this.parsedWords : new Uint32Array(n * 4);
    const bytes = new Uint8Array(words.buffer, words.byteOffset, n * 16);
    let i = 0;
    for (const f of fronts) {
      if (writeAddr(f.addr, bytes, i++ * 16) !== f.family) throw new RangeError(`frontend ${f.id}: address ${f.addr} is not IPv${f.family}`);
    }
    this.parsedFronts = fronts; this.parsedWords = words;
    return words;
  }

  /** Whether a deferred copy of the second set is still under way (deferSecondSet). */
  get copyPending(): boolean { return this.pendingCopy !== null; }

  /** Copies up to `maxBytes` more of a deferred second set (deferSecondSet); returns whether some
   * is left. A forwarding worker calls it between batches, so a slice bounds the pause. */
  copyStep(maxBytes: number): boolean {
    const c = this.pendingCopy;
    if (!c) return false;
    const u8 = this.core.u8;
    let budget = maxBytes;
    while (c.k < c.regions.length && budget > 0) {
      const [from, to, bytes] = c.regions[c.k];
      const n = Math.min(bytes - c.done, budget);
      u8.copyWithin(to + c.done, from + c.done, from + c.done + n);
      c.done += n; budget -= n;
      if (c.done === bytes) { c.k++; c.done = 0; }
    }
    if (c.k < c.regions.length) return true;
    this.pendingCopy = null;
    return false;
  }

  /** Completes a deferred copy: both sets equal again. */
  settle(): void { this.copyStep(Infinity); }

  /** The active set's regions as [offset from the set's base, bytes in use] — svcmap, frontends,
   * backends, Maglev words, CIDRs, routes — and the capacities that place them: what a table
   * image saves. Beyond these extents a set is zero. */
  imageExtents(): { caps: TableCapacities; base: number; regions: Array<[number, number]> } {
    const s = this.sets[this.core.cfg32(L.CFG_GEN) & 1], dv = this.core.dv;
    const routes = dv.getUint32(s.base + L.TSH_ROUTE_COUNT, true) + dv.getUint32(s.base + L.TSH_LOCAL_COUNT, true);
    const bytes = this.usedBytes(s, this.maxFront, this.maxBack, routes);
    return { caps: { ...this.caps }, base: s.base, regions: regionStarts(s).map((at, i) => [at - s.base, bytes[i]]) };
  }

  /** The region offsets (from a set's base) sets of `caps` have: a table image is refused when
   * its own differ (it was laid out by another writer). */
  static regionOffsets(caps: TableCapacities): number[] {
    return regionStarts(setLayout(0, caps));
  }

  /** The core now reads sets at `bases` laid out for `caps` that a table image filled (their
   * headers included); this writer's own bookkeeping does not describe them, so the next apply
   * rewrites everything into new sets of at least these capacities (the same layout when they
   * suffice: a control plane that catches up with the same state writes the same bytes). */
  adoptImage(caps: TableCapacities, bases: [number, number]): void {
    this.pendingCopy = null; // (the sets it would copy are left behind)
    this.caps = { ...caps };
    this.sets = [setLayout(bases[0], caps), setLayout(bases[1], caps)];
    this.rewriteNext = true;
  }

  /** Whether the tables are an adopted image no apply has rewritten yet. */
  get fromImage(): boolean { return this.rewriteNext; }
  /** The record of every frontend id written (read-only to callers: front-records.ts). */
  get frontRecords(): FrontRecords { return this.fronts; }

  /** Writes a set's header for sets adopted from an image (absolute offsets are its own). */
  writeImageHeader(which: 0 | 1, routeCount: number, localCount: number): void {
    this.writeHeader(this.sets[which], routeCount, localCount);
  }

  /** Applies `diff` atomically; `next` is the whole Ir after it. */
  apply(diff: IrDiff, next: Ir): void {
    this.settle(); // the inactive set must equal the active one before a diff is written into it
    try {
      this.validateAndWrite(diff, next);
    } finally {
      // the parsed addresses serve this apply only (later rewrites read the Ir): 16 bytes a row
      const c = backendColumnsOf(diff.backendsUpsert);
      if (c) c.addrWords = null;
      // (the frontends' words are kept, their list is not: the next large apply reuses the array)
      this.parsedFronts = null;
      this.backIdsMemo = null;
    }
  }

  private validateAndWrite(diff: IrDiff, next: Ir): void {
    this.validate(diff);
    // the diff's highest backend id, once (capacities, the copy's extents, the totals: by column a
    // list keeps it; otherwise each was a pass over the rows)
    const diffMaxBack = maxBackendId(diff.backendsUpsert);
    if (this.rewriteNext) {
      this.regrow(this.grownCaps(next, false), next, diff);
      this.rewriteNext = false;
      return;
    }
    const need = this.capacityFor(diff, next, diffMaxBack);
    if (need) {
      this.regrow(need, next, diff);
      return;
    }
    // placements: reuse a frontend's ranges when sizes are unchanged, else allocate fresh ones and
    // release the old ones after both sets are written (the active set may still read them).
    // By the diff's list position (an id listed twice gets two: the last is recorded).
    const released: Array<[RangeAllocator, number, number]> = [];
    const recs = this.fronts, ups = diff.frontendsUpsert;
    const mOffs = new Int32Array(ups.length), cOffs = new Int32Array(ups.length);
    let i = -1;
    for (const f of ups) {
      i++;
      const had = recs.has(f.id), m = maglevRangeWords(f.maglev.length, f.backends.length), r = f.sourceRanges.length;
      let mo: number, co: number;
      if (had && recs.maglevLen(f.id) === m) mo = recs.maglevOff(f.id);
      else {
        mo = this.maglev.alloc(m);
        if (had) released.push([this.maglev, recs.maglevOff(f.id), recs.maglevLen(f.id)]);
      }
      if (had && recs.cidrLen(f.id) === r) co = recs.cidrOff(f.id);
      else {
        co = this.cidrs.alloc(r);
        if (had) released.push([this.cidrs, recs.cidrOff(f.id), recs.cidrLen(f.id)]);
      }
      if (mo < 0 || co < 0) {
        // fragmented beyond capacity: rewrite everything compactly into larger sets
        this.regrow(this.grownCaps(next, true), next, diff);
        return;
      }
      mOffs[i] = mo; cOffs[i] = co;
    }
    for (const id of diff.frontendsRemove) {
      if (recs.has(id)) released.push([this.maglev, recs.maglevOff(id), recs.maglevLen(id)], [this.cidrs, recs.cidrOff(id), recs.cidrLen(id)]);
    }
    const vipChanges = this.vipChanges(diff, recs);
    const active = this.core.cfg32(L.CFG_GEN) & 1;
    const inactive = active ^ 1;
    this.writeDiff(this.sets[inactive], diff, recs, mOffs, cOffs, vipChanges);
    if (diff.snat) this.writeSnat(diff.snat);
    this.core.setCfg32(L.CFG_GEN, inactive);
    // (the extents for a copy: after this diff, as account() below will record them)
    let maxFront = this.maxFront, maxBack = this.maxBack;
    for (const f of ups) if (f.id > maxFront) maxFront = f.id;
    maxBack = Math.max(maxBack, diffMaxBack);
    if (this.secondSetByCopy && this.copyBeatsReplay(diff) && sameShape(this.sets[0], this.sets[1])) this.copySet(this.sets[inactive], this.sets[active], maxFront, maxBack, false);
    else this.writeDiff(this.sets[active], diff, recs, mOffs, cOffs, vipChanges);
    this.account(diff, diffMaxBack); // (reads the records before this diff)
    for (const id of diff.backendsRemove) this.backendIds.delete(id);
    forEachBackendId(diff.backendsUpsert, (id) => { this.backendIds.add(id); });
    for (const id of diff.frontendsRemove) { recs.delete(id); this.zeroCounters(this.core.map.svcCounters, id); }
    for (const id of diff.backendsRemove) this.zeroCounters(this.core.map.beCounters, id);
    i = -1;
    for (const f of ups) { i++; recs.set(f, mOffs[i], cOffs[i]); }
    for (const [alloc, at, n] of released) alloc.release(at, n);
    this.ir = next;
    this.generation++;
  }

  private zeroCounters(region: number, id: number): void {
    this.core.u8.fill(0, region + id * L.PC_SIZE, region + (id + 1) * L.PC_SIZE);
  }

  /** Makes set `b` a byte copy of set `a` (same shape) where `a` can hold anything: the whole
   * service map, frontends up to id `maxFront`, backends up to `maxBack`, the Maglev words and
   * CIDRs up to the allocators' tops, and the routes (all of their region unless `bFresh`: a
   * longer old list must not linger), then b's header. The bodies hold no absolute addresses
   * (only ids and offsets relative to the set's regions), so a memcpy replaces writing every row
   * a second time; unused capacity is not touched (first touches are page faults). With
   * deferSecondSet, `b` must be the inactive set: its bodies are copied later (copyStep). */
  private copySet(a: SetLayout, b: SetLayout, maxFront: number, maxBack: number, bFresh: boolean): void {
    const dv = this.core.dv;
    const routeCount = dv.getUint32(a.base + L.TSH_ROUTE_COUNT, true), localCount = dv.getUint32(a.base + L.TSH_LOCAL_COUNT, true);
    const from = regionStarts(a), to = regionStarts(b);
    const bytes = this.usedBytes(a, maxFront, maxBack, bFresh ? routeCount + localCount : this.caps.routes);
    const regions: Array<[number, number, number]> = [];
    for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0) regions.push([from[i], to[i], bytes[i]]);
    this.writeHeader(b, routeCount, localCount);
    this.pendingCopy = { regions, k: 0, done: 0 };
    if (!this.deferSecondSet) this.settle();
  }

  /** Bytes in use of each of a set's regions, in regionStarts' order, with frontends up to
   * `maxFront`, backends up to `maxBack`, the Maglev words and CIDRs up to the allocators' tops and
   * `routes` route entries: what a copy moves and an image saves (beyond it a region is zero). */
  private usedBytes(s: SetLayout, maxFront: number, maxBack: number, routes: number): number[] {
    return [s.svcSlots * L.SM_SIZE, (maxFront + 1) * L.FE_SIZE, (maxBack + 1) * L.BE_SIZE,
      this.maglev.used * 4, this.cidrs.used * L.CIDR_SIZE, routes * L.RT_SIZE];
  }

  /** Whether the second set is cheaper copied than written again: the diff's rows and Maglev
   * words against the bytes a copy moves, with a memcpy taken as ~10x cheaper per byte than the
   * writer's per-row work (an estimate, not measured apart: at 10k × 10 a full re-sync copied
   * measured 103–118 against 147–165 ms replayed, docs/performance.md, "Full sync"); an endpoint change stays a
   * replay of a few rows. */
  private copyBeatsReplay(diff: IrDiff): boolean {
    let replay = diff.backendsUpsert.length * L.BE_SIZE + diff.frontendsUpsert.length * (L.FE_SIZE + 2 * L.SM_SIZE);
    if (replay * 10 < this.sets[0].svcSlots * L.SM_SIZE) return false; // less than the service map alone: replay
    for (const f of diff.frontendsUpsert) replay += maglevRangeWords(f.maglev.length, f.backends.length) * 4;
    const copy = this.usedBytes(this.sets[0], this.maxFront, this.maxBack, this.caps.routes).reduce((n, b) => n + b, 0);
    return replay * 10 > copy;
  }

  /** CONFIG's SNAT and hairpin addresses (CFG_HAS_SNAT bit 0/1: SNAT v4/v6, bit 2/3: hairpin). */
  private writeSnat(snat: SnatAddresses): void {
    const u8 = this.core.u8, cfg = this.core.map.cfg;
    let bits = 0;
    const put = (addr: string | undefined, at: number, family: 4 | 6, bit: number, what: string): void => {
      u8.fill(0, cfg + at, cfg + at + 16);
      if (!addr) return;
      const a = parseAddr(addr);
      if (a.family !== family) throw new Error(`${what} is not IPv${family}`);
      u8.set(a.bytes, cfg + at);
      bits |= bit;
    };
    put(snat.v4, L.CFG_SNAT_V4, 4, 1, 'snatV4');
    put(snat.v6, L.CFG_SNAT_V6, 6, 2, 'snatV6');
    put(snat.hairpinV4, L.CFG_HAIRPIN_V4, 4, 4, 'hairpinV4');
    put(snat.hairpinV6, L.CFG_HAIRPIN_V6, 6, 8, 'hairpinV6');
    this.core.setCfg32(L.CFG_HAS_SNAT, bits);
  }

  // ---- one set ---------------------------------------------------------------------------------

  /** The ClusterIP addresses whose frontends `diff` changes, with the id their catch-all key names
   * afterwards (0: none left, the key goes). Updates this.vips. `prev`: the frontends written
   * before (null: none, fresh sets — each address's first ClusterIP frontend adds its change). */
  private vipChanges(diff: IrDiff, prev: FrontRecords | null): VipChanges {
    // keyed by the address string alone: an IPv6 address's has a ':', an IPv4 one's none (and
    // validate() refused an address of another family than its frontend's)
    const ch: VipChanges = { addr: [], family: [], id: [], at: [] };
    const touched = prev === null ? null : new Map<string, number>(); // address -> its change
    const touch = (addr: string, family: number, at: number) => {
      const k = touched?.get(addr);
      if (k !== undefined) { if (at >= 0) ch.at[k] = at; return; }
      touched?.set(addr, ch.addr.length);
      ch.addr.push(addr); ch.family.push(family); ch.id.push(0); ch.at.push(at);
    };
    const leave = (id: number) => {
      if (prev === null || !prev.has(id) || prev.kindOf(id) !== 'ClusterIP') return;
      const key = prev.addrOf(id), ids = this.vips.get(key);
      if (ids === id) this.vips.delete(key); else if (typeof ids === 'object') ids.delete(id);
      touch(key, prev.familyOf(id), -1);
    };
    for (const id of diff.frontendsRemove) leave(id);
    let i = -1;
    for (const f of diff.frontendsUpsert) {
      i++;
      if (prev !== null && prev.has(f.id) && (prev.kindOf(f.id) !== f.kind || prev.addrOf(f.id) !== f.addr || prev.familyOf(f.id) !== f.family)) leave(f.id);
      if (f.kind !== 'ClusterIP') continue;
      const key = f.addr;
      const ids = this.vips.get(key);
      if (ids === f.id || (typeof ids === 'object' && ids.has(f.id))) continue;
      if (ids === undefined) this.vips.set(key, f.id);
      else if (typeof ids === 'number') this.vips.set(key, new Set([ids, f.id]));
      else ids.add(f.id);
      if (touched !== null || ids === undefined) touch(key, f.family, i * 4);
    }
    for (let k = 0; k < ch.addr.length; k++) {
      const key = ch.addr[k], ids = this.vips.get(key);
      if (ids === undefined || (typeof ids === 'object' && ids.size === 0)) { this.vips.delete(key); continue; }
      if (typeof ids === 'number') { ch.id[k] = ids; continue; }
      let min = 0;
      for (const id of ids) if (min === 0 || id < min) min = id;
      ch.id[k] = min;
    }
    return ch;
  }

  /** Writes `diff` into set `s`; `fresh`: the set is new, every byte zero (a regrow's), so rows
   * need no clearing first. */
  private writeDiff(s: SetLayout, diff: IrDiff, prev: FrontRecords | null, mOffs: Int32Array, cOffs: Int32Array, vip: VipChanges, fresh = false): void {
    for (const id of diff.frontendsRemove) {
      if (prev !== null && prev.has(id)) this.svcmapDelete(s, prev, id); // (reads the old address from its entry: before the entry is cleared)
      this.core.u8.fill(0, s.front + id * L.FE_SIZE, s.front + (id + 1) * L.FE_SIZE);
    }
    for (const id of diff.backendsRemove) {
      this.core.u8.fill(0, s.backend + id * L.BE_SIZE, s.backend + (id + 1) * L.BE_SIZE);
    }
    const cols = backendColumnsOf(diff.backendsUpsert);
    if (cols) this.writeBackendColumns(s, cols, fresh);
    else diff.backendsUpsert.forEach((b) => this.writeBackend(s, b, fresh));
    const words = this.frontAddrWords(diff.frontendsUpsert);
    let i = -1;
    for (const f of diff.frontendsUpsert) { // (words, placements: in the list's order)
      i++;
      const had = prev !== null && prev.has(f.id);
      const moved = had && !prev.sameKey(f.id, f);
      // (the old key's address is read from the frontend's entry: before it is rewritten)
      if (moved) this.svcmapDelete(s, prev, f.id);
      this.writeFrontend(s, f, mOffs[i], cOffs[i], words, i * 4);
      if (!had || moved) this.svcmapInsert(s, f, words, i * 4);
    }
    for (let k = 0; k < vip.addr.length; k++) {
      let w = words, at = vip.at[k];
      if (at < 0) { w = scratchWords; at = 0; writeAddr(vip.addr[k], scratch16, 0); } // (an address a frontend left: rare)
      // (a fresh set holds no catch-all key but those this loop inserts, one per address)
      if (!fresh) this.svcmapDeleteKey(s, w, at, L.SM_ANY_PORT, L.SM_ANY_PROTO, vip.family[k], 0);
      if (vip.id[k] !== 0) this.svcmapInsertKey(s, w, at, L.SM_ANY_PORT, L.SM_ANY_PROTO, vip.family[k], vip.id[k]);
    }
    if (diff.routes) this.writeRoutes(s, diff.routes);
  }

  /** Frontend `f` (its address as 4 words at words[at]) into set `s`, its Maglev range at word
   * `maglevOff` and CIDRs at `cidrOff` (range allocator offsets). */
  private writeFrontend(s: SetLayout, f: IrFrontend, maglevOff: number, cidrOff: number, words: Uint32Array, at: number): void {
    const u8 = this.core.u8, dv = this.core.dv;
    if (f.maglev.length) this.writeMaglevRange(s.maglev + maglevOff * 4, f);
    for (let i = 0; i < f.sourceRanges.length; i++) { // (a loop: no closure per frontend)
      const cidr = parseCidr(f.sourceRanges[i]), c = s.cidr + (cidrOff + i) * L.CIDR_SIZE;
      u8.fill(0, c, c + L.CIDR_SIZE);
      u8.set(cidr.bytes, c + L.CIDR_ADDR);
      u8[c + L.CIDR_PLEN] = cidr.plen;
      u8[c + L.CIDR_FAMILY] = cidr.family;
    }
    const e = s.front + f.id * L.FE_SIZE;
    u8.fill(0, e, e + L.FE_SIZE);
    dv.setUint32(e + L.FE_FLAGS, f.flags, true);
    dv.setUint32(e + L.FE_MAGLEV_OFF, maglevOff, true);
    dv.setUint32(e + L.FE_MAGLEV_SIZE, f.maglev.length, true);
    dv.setUint32(e + L.FE_AFF_TIMEOUT, f.affinityTimeoutMs, true);
    dv.setUint32(e + L.FE_CIDR_OFF, cidrOff, true);
    dv.setUint32(e + L.FE_CIDR_COUNT, f.sourceRanges.length, true);
    dv.setUint32(e + L.FE_NBACKENDS, f.backends.length, true);
    dv.setUint32(e + L.FE_CLUSTER_FRONT, f.clusterFront ?? 0, true);
    const u32 = this.core.u32, a = (e + L.FE_ADDR) >>> 2; // (word-aligned: 64-byte entries on a 64-byte boundary)
    u32[a] = words[at]; u32[a + 1] = words[at + 1]; u32[a + 2] = words[at + 2]; u32[a + 3] = words[at + 3];
    dv.setUint16(e + L.FE_PORT, f.port, true);
    u8[e + L.FE_PROTO] = PROTO_NUMBER[f.proto];
    u8[e + L.FE_FAMILY] = f.family;
  }

  /** Frontend `f`'s Maglev range at byte `at`: its slots as indexes into its backend list (the
   * compiler's index table, when its width is the range's, is copied as it is), zeros to a whole
   * word, then the list, then zeros to the range's end. */
  private writeMaglevRange(at: number, f: IrFrontend): void {
    const u8 = this.core.u8, u32 = this.core.u32, ids = f.backends, n = ids.length, t = f.maglev, m = t.length, width = maglevSlotBytes(n);
    if (f.maglevIndexed && t.BYTES_PER_ELEMENT === width) u8.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), at);
    else {
      // backend ids, or indexes of another width: each slot's index, at the range's width
      const out = width === 1 ? u8.subarray(at, at + m) : width === 2 ? new Uint16Array(u8.buffer, at, m) : u32.subarray(at >>> 2, (at >>> 2) + m);
      if (f.maglevIndexed) out.set(t);
      else { const index = slotIndexes(f); for (let i = 0; i < m; i++) out[i] = index.get(t[i])!; }
    }
    const list = at + maglevSlotWords(m, n) * 4, end = at + maglevRangeWords(m, n) * 4;
    u8.fill(0, at + m * width, list);
    for (let i = 0, w = list >>> 2; i < n; i++) u32[w + i] = ids[i];
    u8.fill(0, list + n * 4, end);
  }

  private writeBackend(s: SetLayout, b: IrBackend, fresh: boolean): void {
    const u8 = this.core.u8, dv = this.core.dv;
    const e = s.backend + b.id * L.BE_SIZE;
    if (!fresh) u8.fill(0, e, e + L.BE_SIZE);
    writeAddr(b.addr, u8, e + L.BE_ADDR);
    dv.setUint16(e + L.BE_PORT, b.port, true);
    u8[e + L.BE_FAMILY] = b.family;
    u8[e + L.BE_STATE] = b.state;
    dv.setUint16(e + L.BE_OUT_PORT, b.outPort, true);
    // consecutive backends mostly share their next hop: the last MACs are kept (no lookup)
    if (b.dstMac !== this.lastDstMac) { this.lastDstMac = b.dstMac; this.lastDstBytes = parseMac(b.dstMac); }
    if (b.srcMac !== this.lastSrcMac) { this.lastSrcMac = b.srcMac; this.lastSrcBytes = parseMac(b.srcMac); }
    u8.set(this.lastDstBytes, e + L.BE_DST_MAC);
    u8.set(this.lastSrcBytes, e + L.BE_SRC_MAC);
  }
  private lastDstMac: string | undefined; private lastDstBytes: Uint8Array = new Uint8Array(6);
  private lastSrcMac: string | undefined; private lastSrcBytes: Uint8Array = new Uint8Array(6);

  /** Every backend of `parts` into fresh set `s` (a regrow's rewrite): each batch's current rows
   * from its columns, its addresses parsed for this (and dropped again unless an apply holds them). */
  private writeBackendParts(s: SetLayout, parts: BackendParts): void {
    for (const { list, rows } of parts.batches) {
      const parsed = list.addrWords !== null;
      if (!parsed) validateBackendColumns(list);
      try { this.writeBackendColumns(s, list, true, rows); } finally { if (!parsed) list.addrWords = null; }
    }
    for (let i = 0; i < parts.objects.length; i++) this.writeBackend(s, parts.objects[i], true);
  }

  /** writeBackend of every row of `c` (validated: its addresses parsed), or of rows `only`, from
   * the columns. */
  private writeBackendColumns(s: SetLayout, c: BackendColumnList, fresh: boolean, only?: Uint32Array): void {
    const u8 = this.core.u8, u32 = this.core.u32, words = c.addrWords!, cols = c.c, n = only ? only.length : c.length;
    if ((s.backend & 3) !== 0) throw new Error('internal: backend region not word-aligned');
    // the next hops' MACs: dst then src, 12 bytes each (BE_DST_MAC, BE_SRC_MAC adjacent)
    const hops = cols.hopDstMac.map((dst, k) => { const m = new Uint8Array(12); m.set(parseMac(dst)); m.set(parseMac(cols.hopSrcMac[k]), 6); return m; });
    for (let r = 0; r < n; r++) {
      const i = only ? only[r] : r;
      const e = s.backend + cols.id[i] * L.BE_SIZE;
      if (!fresh) u8.fill(0, e, e + L.BE_SIZE);
      const w = (e + L.BE_ADDR) >>> 2, a = i * 4;
      u32[w] = words[a]; u32[w + 1] = words[a + 1]; u32[w + 2] = words[a + 2]; u32[w + 3] = words[a + 3];
      const port = cols.port[i], h = cols.hop[i], out = cols.hopOutPort[h];
      u8[e + L.BE_PORT] = port; u8[e + L.BE_PORT + 1] = port >>> 8; // u16 little-endian, as setUint16
      u8[e + L.BE_FAMILY] = cols.family[i];
      u8[e + L.BE_STATE] = cols.state[i];
      u8[e + L.BE_OUT_PORT] = out; u8[e + L.BE_OUT_PORT + 1] = out >>> 8;
      u8.set(hops[h], e + L.BE_DST_MAC);
    }
  }

  /** The routes, longest prefix first, then the local-source entries (pods before the node, as
   * listed: the core takes the first that holds a source). */
  private writeRoutes(s: SetLayout, routes: IrRoute[]): void {
    const u8 = this.core.u8, dv = this.core.dv;
    const sorted = routes.filter((r) => !r.localSource).map((r) => ({ r, c: parseCidr(r.prefix) })).sort((a, b) => b.c.plen - a.c.plen);
    const local = routes.filter((r) => r.localSource === 'pod' || r.localSource === 'podPort').concat(routes.filter((r) => r.localSource === 'node'));
    u8.fill(0, s.route, s.route + this.caps.routes * L.RT_SIZE);
    local.forEach((r, i) => {
      const e = s.route + (sorted.length + i) * L.RT_SIZE;
      if (r.localSource === 'podPort') { // matched by the frame's in port, not an address
        dv.setUint16(e + L.RT_OUT_PORT, r.outPort, true);
        u8[e + L.RT_KIND] = L.RTK_LOCAL_POD_PORT;
        return;
      }
      const c = parseCidr(r.prefix);
      u8.set(c.bytes, e + L.RT_ADDR);
      u8[e + L.RT_PLEN] = c.plen;
      u8[e + L.RT_FAMILY] = c.family;
      dv.setUint16(e + L.RT_OUT_PORT, L.PORT_NONE, true);
      u8[e + L.RT_KIND] = r.localSource === 'pod' ? L.RTK_LOCAL_POD : L.RTK_LOCAL_NODE;
    });
    dv.setUint32(s.base + L.TSH_LOCAL_COUNT, local.length, true);
    sorted.forEach(({ r, c }, i) => {
      const e = s.route + i * L.RT_SIZE;
      u8.set(c.bytes, e + L.RT_ADDR);
      u8[e + L.RT_PLEN] = c.plen;
      u8[e + L.RT_FAMILY] = c.family;
      dv.setUint16(e + L.RT_OUT_PORT, r.outPort, true);
      u8.set(parseMac(r.dstMac), e + L.RT_DST_MAC);
      u8.set(parseMac(r.srcMac), e + L.RT_SRC_MAC);
      u8[e + L.RT_KIND] = r.serviceCidr ? L.RTK_SERVICE_CIDR : L.RTK_FORWARD;
    });
    dv.setUint32(s.base + L.TSH_ROUTE_COUNT, sorted.length, true);
  }

  // ---- service map: open addressing, linear probing, backward-shift delete -------------------

  private svcmapInsert(s: SetLayout, f: IrFrontend, words: Uint32Array, at: number): void {
    if (f.kind === 'ClusterPolicy') return; // reached only through another frontend's FE_CLUSTER_FRONT
    this.svcmapInsertKey(s, words, at, f.port, PROTO_NUMBER[f.proto], f.family, f.id);
  }

  /** Whether slot entry e holds (port, proto) for frontend `id` (any id when 0): a frontend id
   * appears twice when it also names its address's catch-all key. */
  private svcmapOwns(e: number, port: number, proto: number, id: number): boolean {
    const dv = this.core.dv;
    const front = dv.getUint32(e + L.SM_FRONT, true);
    return front !== 0 && (id === 0 || front === id) && dv.getUint16(e + L.SM_PORT, true) === port && this.core.u8[e + L.SM_PROTO] === proto;
  }

  /** Inserts key (address words[at..at+4), port, proto, family) naming frontend `id`. */
  private svcmapInsertKey(s: SetLayout, words: Uint32Array, at: number, port: number, proto: number, family: number, id: number): void {
    const u8 = this.core.u8, u32 = this.core.u32, dv = this.core.dv, mask = s.svcSlots - 1;
    const h = svcmapHashAt(words, at, port, proto, family);
    for (let i = h & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
      const e = s.svcmap + i * L.SM_SIZE;
      const front = dv.getUint32(e + L.SM_FRONT, true);
      if (front !== 0 && !(front === id && this.svcmapOwns(e, port, proto, id))) continue;
      const a = (e + L.SM_ADDR) >>> 2; // (word-aligned: 32-byte entries on a 64-byte boundary)
      u32[a] = words[at]; u32[a + 1] = words[at + 1]; u32[a + 2] = words[at + 2]; u32[a + 3] = words[at + 3];
      dv.setUint16(e + L.SM_PORT, port, true);
      u8[e + L.SM_PROTO] = proto;
      u8[e + L.SM_FAMILY] = family;
      dv.setUint32(e + L.SM_HASH, h, true);
      dv.setUint32(e + L.SM_FRONT, id, true); // written last: a reader never sees a half key
      return;
    }
    throw new Error('service map full'); // unreachable: capacity checked, load <= 0.5
  }

  /** Deletes the service-map key frontend `id` was written with (`prev`) from set `s`. Its address
   * is read from the frontend's entry in `s` (written from the same key; a set's entry is
   * rewritten only after this). */
  private svcmapDelete(s: SetLayout, prev: FrontRecords, id: number): void {
    if (prev.kindOf(id) === 'ClusterPolicy') return;
    this.svcmapDeleteKey(s, this.core.u32, (s.front + id * L.FE_SIZE + L.FE_ADDR) >>> 2, prev.portOf(id), PROTO_NUMBER[prev.protoOf(id)], prev.familyOf(id), id);
  }

  /** Deletes the entry of (address words[at..at+4), port, proto, family) written for `id` (0:
   * whichever id). */
  private svcmapDeleteKey(s: SetLayout, words: Uint32Array, at: number, port: number, proto: number, family: number, id: number): void {
    const u8 = this.core.u8, u32 = this.core.u32, dv = this.core.dv, mask = s.svcSlots - 1;
    let i = -1;
    const h = svcmapHashAt(words, at, port, proto, family);
    for (let j = h & mask, n = 0; n <= mask; j = (j + 1) & mask, n++) {
      const e = s.svcmap + j * L.SM_SIZE;
      if (dv.getUint32(e + L.SM_FRONT, true) === 0) return;
      const a = (e + L.SM_ADDR) >>> 2;
      if (dv.getUint32(e + L.SM_HASH, true) === h && u8[e + L.SM_FAMILY] === family && this.svcmapOwns(e, port, proto, id) &&
        u32[a] === words[at] && u32[a + 1] === words[at + 1] && u32[a + 2] === words[at + 2] && u32[a + 3] === words[at + 3]) { i = j; break; }
    }
    if (i < 0) return;
    // backward shift: pull later entries of the probe run into the hole if their home slot allows
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const ej = s.svcmap + j * L.SM_SIZE;
      if (dv.getUint32(ej + L.SM_FRONT, true) === 0) break;
      const home = dv.getUint32(ej + L.SM_HASH, true) & mask;
      // entry at j may move to i iff i lies cyclically in [home, j)
      const dist = (j - home) & mask, gap = (j - i) & mask;
      if (dist >= gap) {
        const ei = s.svcmap + i * L.SM_SIZE;
        u8.copyWithin(ei, ej, ej + L.SM_SIZE);
        i = j;
      }
    }
    u8.fill(0, s.svcmap + i * L.SM_SIZE, s.svcmap + (i + 1) * L.SM_SIZE);
  }

  // ---- growth ----------------------------------------------------------------------------------

  /** Capacities the state after `diff` needs beyond the current ones, or null when it fits.
   * O(size of the diff): totals are kept incrementally (ids only as upper bounds — removing the
   * highest id does not shrink anything). Fragmentation of the range allocators can still make an
   * allocation fail; apply() then regrows with force. */
  private capacityFor(diff: IrDiff, next: Ir, diffMaxBack: number): TableCapacities | null {
    let maxFront = this.maxFront, maxBack = this.maxBack;
    let maglevWords = this.totalMaglev, cidrs = this.totalCidrs;
    const recs = this.fronts;
    for (const id of diff.frontendsRemove) {
      if (recs.has(id)) { maglevWords -= recs.maglevLen(id); cidrs -= recs.cidrLen(id); }
    }
    for (const f of diff.frontendsUpsert) {
      if (f.id > maxFront) maxFront = f.id;
      const had = recs.has(f.id);
      maglevWords += maglevRangeWords(f.maglev.length, f.backends.length) - (had ? recs.maglevLen(f.id) : 0);
      cidrs += f.sourceRanges.length - (had ? recs.cidrLen(f.id) : 0);
    }
    maxBack = Math.max(maxBack, diffMaxBack);
    const routes = diff.routes ? diff.routes.length : next.routes.length;
    const c = this.caps;
    if (maxFront <= c.frontends && maxBack <= c.backends && routes <= c.routes &&
      maglevWords <= c.maglevWords && cidrs <= c.cidrs) return null;
    // a first apply into an empty writer (a first full sync): these totals are next's own (not
    // upper bounds), and next need not be read again (10k frontends, 100k backend ids)
    const first = this.fronts.size === 0 && this.backendIds.size === 0 && diff.frontendsRemove.length === 0 && diff.backendsRemove.length === 0;
    return this.grownCaps(next, false, first ? { maxFront, maxBack, maglevWords, cidrs } : undefined);
  }

  /** Updates the incremental totals after a diff (a regrow sets them from scratch). Before the
   * records are updated: it reads each frontend's placement before the diff. */
  private account(diff: IrDiff, diffMaxBack: number): void {
    const recs = this.fronts;
    for (const id of diff.frontendsRemove) {
      if (recs.has(id)) { this.totalMaglev -= recs.maglevLen(id); this.totalCidrs -= recs.cidrLen(id); }
    }
    for (const f of diff.frontendsUpsert) {
      const had = recs.has(f.id);
      if (f.id > this.maxFront) this.maxFront = f.id;
      this.totalMaglev += maglevRangeWords(f.maglev.length, f.backends.length) - (had ? recs.maglevLen(f.id) : 0);
      this.totalCidrs += f.sourceRanges.length - (had ? recs.cidrLen(f.id) : 0);
    }
    this.maxBack = Math.max(this.maxBack, diffMaxBack);
  }

  /** backendIdList(next) and its highest id (0: none), once per apply (a regrow's capacities, its
   * rewrite and its id set each need them). */
  private backendIdsOf(next: Ir): { ids: number[]; max: number } {
    const m = this.backIdsMemo;
    if (m && m.ir === next) return m;
    const ids = backendIdList(next);
    let max = 0; // (an Ir may keep its backends in a plain Map: not necessarily ascending)
    for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
    this.backIdsMemo = { ir: next, ids, max };
    return this.backIdsMemo;
  }
  private backIdsMemo: { ir: Ir; ids: number[]; max: number } | null = null;

  /** Capacities for `next` (doubling the current ones); `totals`: next's, when the caller has them. */
  private grownCaps(next: Ir, force: boolean, totals?: { maxFront: number; maxBack: number; maglevWords: number; cidrs: number }): TableCapacities {
    let maxFront = 0, maxBack = 0, maglevWords = 0, cidrs = 0;
    if (totals) ({ maxFront, maxBack, maglevWords, cidrs } = totals);
    else {
      forEachFrontendSize(next, (id, mWords, cidrLen) => { if (id > maxFront) maxFront = id; maglevWords += mWords; cidrs += cidrLen; });
      maxBack = this.backendIdsOf(next).max;
    }
    const grow = (have: number, need: number) => { let c = have; while (c < need) c *= 2; return c; };
    const c = this.caps;
    return {
      frontends: grow(c.frontends, maxFront),
      backends: grow(c.backends, maxBack),
      maglevWords: grow(c.maglevWords, Math.max(maglevWords * 2, force ? c.maglevWords * 2 : 0)),
      cidrs: grow(c.cidrs, Math.max(cidrs * 2, force ? c.cidrs * 2 : 0)),
      routes: grow(c.routes, next.routes.length),
    };
  }

  /** Rewrites everything into freshly allocated, larger sets, then flips to them. `diff` is the
   * change that needed it: when it upserts every frontend of `next` (a full compile's diff) its
   * objects are written rather than built again from `next`. */
  private regrow(need: TableCapacities, next: Ir, diff?: IrDiff): void {
    const core = this.core;
    // what is written: every frontend and backend of next, chosen (and counted) first
    // (the diff's frontends are all of next's when there are as many, with distinct ids; a full
    // compile lists them in id order: its own list is written, whose addresses validate() parsed)
    let fronts: IrFrontend[] | null = diff && diff.frontendsRemove.length === 0 && diff.frontendsUpsert.length === next.frontends.size
      ? (Array.isArray(diff.frontendsUpsert) ? diff.frontendsUpsert : [...diff.frontendsUpsert]) : null;
    if (fronts && !ascending(fronts)) fronts = [...fronts].sort((a, b) => a.id - b.id);
    if (fronts && !distinctSorted(fronts)) fronts = null;
    fronts ??= [...next.frontends.keys()].sort((a, b) => a - b).map((id) => next.frontends.get(id)!);
    let maxFront = 0, maglevWords = 0, cidrs = 0;
    for (let i = 0; i < fronts.length; i++) {
      const f = fronts[i];
      maxFront = f.id; maglevWords += maglevRangeWords(f.maglev.length, f.backends.length); cidrs += f.sourceRanges.length; // (ascending: the last is the highest)
    }
    // every backend: the diff's columns when they are every backend of next (a full sync's
    // diff), else read from next's columns when it keeps them so (no object per backend)
    const cols = diff && diff.backendsRemove.length === 0 ? backendColumnsOf(diff.backendsUpsert) : null;
    // (their ids as a set first: distinct when it holds as many; the set is kept, below)
    const colSet = cols !== null && cols.length === next.backends.size ? IdSet.of(cols.c.id, cols.maxId) : null;
    const allCols = colSet !== null && colSet.size === cols!.length ? cols : null;
    const nextIds = allCols ? null : this.backendIdsOf(next);
    const backIds: ArrayLike<number> = allCols ? allCols.c.id : nextIds!.ids; // (the columns' ids: no list of next's)
    // a worker's BackendStore hands out the column batches it received: written from their columns
    const parts = allCols ? null : (next.backends as { columnParts?(): BackendParts }).columnParts?.() ?? null;
    const backs: IrList<IrBackend> = allCols ?? (parts ? [] : next.backends.rows?.(nextIds!.ids) ?? nextIds!.ids.map((id) => next.backends.get(id)!));
    const maxBack = allCols ? allCols.maxId : nextIds!.max;
    // the capacities asked for, grown further if what is written needs more (they came from totals
    // a caller may have over a diff that is not all of next): the placements below cannot fail
    const grow = (have: number, want: number) => { let c = have; while (c < want) c *= 2; return c; };
    const caps: TableCapacities = {
      frontends: grow(need.frontends, maxFront), backends: grow(need.backends, maxBack),
      maglevWords: grow(need.maglevWords, maglevWords), cidrs: grow(need.cidrs, cidrs), routes: grow(need.routes, next.routes.length),
    };
    const oldCaps = this.caps;
    this.caps = caps;
    const bytes = tableSetBytes(caps);
    const bases: [number, number] = [core.allocate(bytes), core.allocate(bytes)];
    core.adviseHugePages(bases[0], bases[1] + bytes - bases[0]); // consecutive: one range
    const sets: [SetLayout, SetLayout] = [setLayout(bases[0], caps), setLayout(bases[1], caps)];
    // per-id counter regions must cover the new id ranges: grow and copy
    if (caps.frontends > oldCaps.frontends) {
      const at = core.allocate((caps.frontends + 1) * L.PC_SIZE);
      core.u8.copyWithin(at, core.map.svcCounters, core.map.svcCounters + (oldCaps.frontends + 1) * L.PC_SIZE);
      core.map.svcCounters = at; core.map.svcMax = caps.frontends;
    }
    if (caps.backends > oldCaps.backends) {
      const at = core.allocate((caps.backends + 1) * L.PC_SIZE);
      core.u8.copyWithin(at, core.map.beCounters, core.map.beCounters + (oldCaps.backends + 1) * L.PC_SIZE);
      core.map.beCounters = at; core.map.beMax = caps.backends;
    }
    this.maglev = new RangeAllocator(caps.maglevWords);
    this.cidrs = new RangeAllocator(caps.cidrs);
    const mOffs = new Int32Array(fronts.length), cOffs = new Int32Array(fronts.length);
    for (let i = 0; i < fronts.length; i++) {
      mOffs[i] = this.maglev.alloc(maglevRangeWords(fronts[i].maglev.length, fronts[i].backends.length)); cOffs[i] = this.cidrs.alloc(fronts[i].sourceRanges.length);
    }
    const full: IrDiff = { frontendsUpsert: fronts, frontendsRemove: [], backendsUpsert: backs, backendsRemove: [], routes: next.routes };
    const removedFronts: number[] = [];
    this.fronts.forEachId((id) => { if (!next.frontends.has(id)) removedFronts.push(id); });
    const removedBacks: number[] = [];
    this.backendIds.forEach((id) => { if (!next.backends.has(id)) removedBacks.push(id); });
    // The second set is a copy of the first: its body holds no absolute addresses (only ids and
    // offsets relative to the set's regions), so a memcpy of each region's used part replaces
    // writing 100k backends and every Maglev word a second time (the unused capacity is left
    // untouched: first touches are page faults). Only its header (absolute offsets) is its own.
    // The set the flip publishes is written; the other one, which the core reads only after the
    // next flip, is copied (now, or later with deferSecondSet).
    const active = core.cfg32(L.CFG_GEN) & 1;
    const inactive = active ^ 1;
    this.vips = new Map();
    const vipChanges = this.vipChanges(full, null);
    this.writeHeader(sets[inactive], 0);
    this.writeDiff(sets[inactive], full, null, mOffs, cOffs, vipChanges, true);
    if (parts) this.writeBackendParts(sets[inactive], parts);
    if (this.secondSetByCopy && sameShape(sets[0], sets[1])) this.copySet(sets[inactive], sets[active], maxFront, maxBack, true);
    else {
      this.writeHeader(sets[active], 0);
      this.writeDiff(sets[active], full, null, mOffs, cOffs, vipChanges, true);
      if (parts) this.writeBackendParts(sets[active], parts);
    }
    this.writeSnat(snatOf(next));
    // One flip publishes new sets, capacities and counter regions. Between batches on this thread,
    // so the several CFG words below are seen together by the next batch.
    core.setCfg32(L.CFG_SVC_COUNTERS_OFF, core.map.svcCounters);
    core.setCfg32(L.CFG_SVC_MAX, core.map.svcMax);
    core.setCfg32(L.CFG_BE_COUNTERS_OFF, core.map.beCounters);
    core.setCfg32(L.CFG_BE_MAX, core.map.beMax);
    core.setCfg32(inactive === 0 ? L.CFG_TABLESET0_OFF : L.CFG_TABLESET1_OFF, bases[inactive]);
    core.setCfg32(active === 0 ? L.CFG_TABLESET0_OFF : L.CFG_TABLESET1_OFF, bases[active]);
    core.setCfg32(L.CFG_GEN, inactive);
    this.sets = sets;
    core.map.tableSets = bases;
    for (const id of removedFronts) this.zeroCounters(core.map.svcCounters, id);
    for (const id of removedBacks) this.zeroCounters(core.map.beCounters, id);
    const recs = FrontRecords.sized(maxFront);
    for (let i = 0; i < fronts.length; i++) recs.set(fronts[i], mOffs[i], cOffs[i]);
    this.fronts = recs;
    this.backendIds = allCols ? colSet! : IdSet.of(backIds, maxBack);
    this.maxFront = maxFront; this.maxBack = maxBack; this.totalMaglev = maglevWords; this.totalCidrs = cidrs;
    this.ir = next;
    this.generation++;
  }
}

/** The list as received columns, when it is. */
function backendColumnsOf(list: IrList<IrBackend>): BackendColumnList | null {
  return list instanceof BackendColumnList ? list : null;
}

/** The highest backend id of `list` (0: none); by column, computed once per list. */
function maxBackendId(list: IrList<IrBackend>): number {
  if (list instanceof BackendColumnList) return list.maxId;
  let max = 0;
  forEachBackendId(list, (id) => { if (id > max) max = id; });
  return max;
}

/** fn(id) for every backend of `list`, in order (without reading the rows when the list can). */
function forEachBackendId(list: IrList<IrBackend>, fn: (id: number) => void): void {
  if (list.forEachId) list.forEachId(fn); else list.forEach((b) => fn(b.id));
}

function ascending(fs: IrFrontend[]): boolean {
  for (let i = 1; i < fs.length; i++) if (fs[i].id < fs[i - 1].id) return false;
  return true;
}

/** Whether no id of an ascending list is listed twice. */
function distinctSorted(fs: IrFrontend[]): boolean {
  for (let i = 1; i < fs.length; i++) if (fs[i].id === fs[i - 1].id) return false;
  return true;
}

function checkBackendId(id: number): void {
  if (!(Number.isInteger(id) && id >= 1 && id <= 0xffffff)) throw new RangeError(`backend id ${id} out of range`);
}

/** validate() of received backend columns: ids, addresses (parsed into c.addrWords, once), MACs. */
function validateBackendColumns(c: BackendColumnList): void {
  const cols = c.c, n = c.length;
  for (let i = 0; i < n; i++) checkBackendId(cols.id[i]);
  // (every row's next hop names one of these: BackendColumnList's constructor checked the indexes)
  for (let k = 0; k < cols.hopDstMac.length; k++) { parseMac(cols.hopDstMac[k]); parseMac(cols.hopSrcMac[k]); }
  if (c.addrWords) return;
  const words = new Uint32Array(n * 4), s = cols.addrs, at = cols.addrAt;
  for (let i = 0; i < n; i++) {
    const v = ipv4ValueAt(s, at[i], at[i + 1]);
    if (v >= 0) { // a.b.c.d as the little-endian word of bytes a, b, c, d
      words[i * 4] = ((v & 0xff) << 24) | (((v >>> 8) & 0xff) << 16) | (((v >>> 16) & 0xff) << 8) | (v >>> 24);
      continue;
    }
    writeAddr(c.addrAt(i), scratch16, 0); // throws on an invalid address
    words.set(scratchWords, i * 4);
  }
  c.addrWords = words;
}

/** Every backend id of `ir`: from the columns when the Ir keeps them so (ascending, without a
 * generator), else in the map's order (ascending for an IdMap, insertion order for a Map). */
function backendIdList(ir: Ir): number[] {
  return ir.backends.idArray?.() ?? [...ir.backends.keys()];
}

/** fn(id, Maglev range words, source ranges) for every frontend of `ir`: from the columns when the
 * Ir keeps them so (no object per frontend), else from the objects. */
function forEachFrontendSize(ir: Ir, fn: (id: number, maglevWords: number, cidrLen: number) => void): void {
  const fronts = ir.frontends;
  if (fronts.idArray && fronts.maglevLengthOf && fronts.backendCountOf && fronts.sourceRangeCountOf) {
    const ids = fronts.idArray();
    for (let i = 0; i < ids.length; i++) fn(ids[i], maglevRangeWords(fronts.maglevLengthOf(ids[i]), fronts.backendCountOf(ids[i])), fronts.sourceRangeCountOf(ids[i]));
  } else for (const f of fronts.values()) fn(f.id, maglevRangeWords(f.maglev.length, f.backends.length), f.sourceRanges.length);
}

/** A frontend's backend list as id -> its first index (for a Maglev table of backend ids). Throws
 * when the table names an id the list does not hold. */
function slotIndexes(f: IrFrontend): Map<number, number> {
  const index = new Map<number, number>();
  for (let i = 0; i < f.backends.length; i++) if (!index.has(f.backends[i])) index.set(f.backends[i], i);
  const t = f.maglev;
  for (let i = 0; i < t.length; i++) if (!index.has(t[i])) throw new RangeError(`frontend ${f.id}: Maglev table names backend id ${t[i]}, not in its backend list`);
  return index;
}

/** ClusterIP addresses whose catch-all service-map key changes, by column: address k's key names
 * frontend id[k] afterwards (0: the key goes); the address as 4 words at at[k] of the diff's parsed
 * frontend addresses (frontAddrWords) when a frontend of the diff has it (-1: parse addr[k]). */
interface VipChanges { addr: string[]; family: number[]; id: number[]; at: number[] }

/** Whether two sets have their regions at the same offsets from their bases (so one can be a
 * byte copy of the other). True for sets of the same capacities on equally aligned bases. */
function sameShape(a: SetLayout, b: SetLayout): boolean {
  return a.svcmap - a.base === b.svcmap - b.base && a.svcSlots === b.svcSlots && a.front - a.base === b.front - b.base &&
    a.backend - a.base === b.backend - b.base && a.maglev - a.base === b.maglev - b.base &&
    a.cidr - a.base === b.cidr - b.base && a.route - a.base === b.route - b.base;
}

/** Service-map hash: layout hash over [addr w0..w3, port | proto << 16 | family << 24]. */
export function svcmapHash(addr: Uint8Array, port: number, proto: number, family: number): number {
  const w = new Uint32Array(4);
  new Uint8Array(w.buffer).set(addr.subarray(0, 16));
  return svcmapHashAt(w, 0, port, proto, family);
}

/** svcmapHash of the address as 4 little-endian words at words[at] (no allocation). */
function svcmapHashAt(words: Uint32Array, at: number, port: number, proto: number, family: number): number {
  let h = HASH_START;
  h = hashMix(h, words[at] | 0); h = hashMix(h, words[at + 1] | 0); h = hashMix(h, words[at + 2] | 0); h = hashMix(h, words[at + 3] | 0);
  return hashFinish(hashMix(h, (port & 0xffff) | (proto << 16) | (family << 24)));
}
