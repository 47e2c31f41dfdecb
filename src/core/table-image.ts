// A table image: the bytes of a core's active table set, so that a restarted worker forwards from
// the tables as they were while the control plane is still reading, validating and compiling the
// saved state (as Cilium/Katran keep pinned BPF maps across agent restarts, and kube-proxy's rules
// stay in the kernel). The daemon writes one per worker at a clean stop and trusts it at the next
// start only when it describes exactly what the control plane will compile then
// (src/daemon/table-image-file.ts says when); this file is the format and what a core does with one.
//
// Image (little-endian):
//   0  magic "WDPTABLE"  8 bytes      8  format version u32 (IMAGE_VERSION; another is refused)
//   12 meta length u32               16 payload length u32
//   20 CRC-32 of meta + payload u32  24 meta (JSON, ImageMeta)   then the payload: the set's
//   regions (svcmap, frontends, backends, Maglev words, CIDRs, routes) — the used part of each.
//
// Loading allocates a fresh set of the image's capacities (Core.allocate: the bump allocator),
// copies the regions into it, writes its header and points both table-set words at it (nothing
// flips before the catch-up, which writes two new sets). A set's body holds only ids and offsets
// relative to its regions (the writer's regrow copies one set into the other the same way), so the
// sets need not be at the addresses they had in the old process; the region offsets within a set
// must be the ones this build's writer gives those capacities, or the image is refused. The
// writer then rewrites everything on the next apply (TableWriter.adoptImage).
//
// Ids: the image's frontend and backend ids are the old process's. The flows saved at the same
// stop name those ids, so they are imported as they are (ImageIds). The control plane's catch-up
// compile numbers ids afresh (1..n in the store's order), which after incremental changes are
// other ids: catchUp() then rewrites every live flow's ids and re-places the affinity entries by
// what the ids named (addresses, ports) under their Service port's affinity key (the import keys
// them by the image's tables, the catch-up by the new ones), and reports whether the new tables are byte-identical
// to the image (they are when the image was itself a compile of the saved state: a difference
// then means the compile is not deterministic).
import { crc32 } from 'node:zlib';
import * as L from '../../assembly/layout.js';
import type { Core } from './host.js';
import { TableWriter, tableSetBytes, TABLE_REGIONS, type TableCapacities } from './table-writer.js';
import { hashFinish, hashMix, HASH_START } from './hash.js';
import { IrIds, rehomeAffinity, type BackendRef, type FlowIdLookup, type FrontendRef } from './flow-export.js';
import type { Family } from '../util/addr.js';
import { SetFlowIds } from './set-flow-ids.js';
import { affinityKeyIn } from './affinity-pins.js';

export const IMAGE_MAGIC = 'WDPTABLE';
/** 2: Maglev ranges of index slots (assembly/layout.ts, "Maglev range"); version 1 held u32 backend
 * ids, and such an image is refused like any other version (the tables come from the catch-up). */
export const IMAGE_VERSION = 2;
const PREFIX = 24;
/** In an image's revision (src/daemon/table-image-file.ts storeRevisionStamp): what follows it
 * stamps the flow checkpoint saved with the image, what precedes it the store. */
export const IMAGE_FLOWS_MARK = ';flows ';
// CONFIG bytes the service tables own besides the sets: the masquerade and hairpin addresses
const CFG_RANGES: Array<[number, number]> = [[L.CFG_SNAT_V4, L.CFG_HAS_SNAT + 4], [L.CFG_HAIRPIN_V4, L.CFG_HAIRPIN_V6 + 16]];

/** What a table image says about itself (the checks a start makes, and how to place it). */
export interface ImageMeta {
  moduleHash: number;            // Core.moduleHash of the build that wrote it
  layoutHash: number;            // layoutHash(): every constant of assembly/layout.ts
  worker: number;
  workers: number;
  revision: string;              // the store's revision the tables compile (StateStore.revision())
  inputsHash: string;            // the compile's inputs outside the store (the daemon's NodeConfig, ports)
  savedAt: number;               // wall clock, ms
  caps: TableCapacities;
  offsets: number[];             // region offsets from a set's base
  lengths: number[];             // bytes of each region in the payload
  routeCount: number;
  localCount: number;
  cfg: string[];                 // CFG_RANGES' bytes, base64
  announced: string[];           // frontend addresses the uplinks answer ARP/ND for (announce)
}

export class ImageError extends Error {
  constructor(message: string) { super(message); this.name = 'ImageError'; }
}

/** The layout hash (src/core/hash.ts) of every constant of assembly/layout.ts, names included. */
export function layoutHash(): number {
  let h = HASH_START;
  for (const n of Object.keys(L).sort()) {
    const v = (L as unknown as Record<string, unknown>)[n];
    if (typeof v !== 'number') continue;
    for (let i = 0; i < n.length; i++) h = hashMix(h, n.charCodeAt(i));
    h = hashMix(h, v >>> 0);
  }
  return hashFinish(h);
}

/** The image of `core`'s active set (between batches: nothing may write the tables meanwhile). */
export function captureImage(core: Core, who: Pick<ImageMeta, 'worker' | 'workers' | 'revision' | 'inputsHash' | 'announced'>): Buffer {
  const ext = core.tables.imageExtents(), u8 = core.u8, dv = core.dv;
  const parts = ext.regions.map(([off, n]) => Buffer.from(u8.buffer, ext.base + off, n));
  const meta: ImageMeta = {
    moduleHash: core.moduleHash, layoutHash: layoutHash(), ...who, savedAt: Date.now(), caps: ext.caps,
    offsets: ext.regions.map(([o]) => o), lengths: ext.regions.map(([, n]) => n),
    routeCount: dv.getUint32(ext.base + L.TSH_ROUTE_COUNT, true), localCount: dv.getUint32(ext.base + L.TSH_LOCAL_COUNT, true),
    cfg: CFG_RANGES.map(([a, b]) => Buffer.from(u8.buffer, core.map.cfg + a, b - a).toString('base64')),
  };
  const m = Buffer.from(JSON.stringify(meta));
  const payloadLen = parts.reduce((s, p) => s + p.length, 0);
  const out = Buffer.allocUnsafe(PREFIX + m.length + payloadLen);
  out.write(IMAGE_MAGIC, 0, 'latin1');
  out.writeUInt32LE(IMAGE_VERSION, 8);
  out.writeUInt32LE(m.length, 12);
  out.writeUInt32LE(payloadLen, 16);
  let at = PREFIX + m.copy(out, PREFIX);
  for (const p of parts) at += p.copy(out, at);
  out.writeUInt32LE(crc32(out.subarray(PREFIX)), 20);
  return out;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNums = (x: unknown, n: number) => Array.isArray(x) && x.length === n && x.every((v) => Number.isInteger(v) && v >= 0);

/** The framing of an image: its metadata, where its payload starts and the CRC it must have. */
export interface ImageHead { meta: ImageMeta; metaBytes: Buffer; payloadAt: number; crc: number }

/** Bytes of an image to read to decode its head: the prefix, then (from it) the metadata. */
export const IMAGE_PREFIX_BYTES = PREFIX;
export function imageMetaBytes(prefix: Buffer): number { return prefix.length >= PREFIX ? prefix.readUInt32LE(12) : 0; }

/** Parses and checks an image's prefix and metadata (`head` holds at least those bytes; `size`
 * is the whole image's); throws ImageError saying what is wrong. The payload's CRC is the
 * caller's to check (decodeImage, or a reader that reads the payload straight into place). */
export function decodeImageHead(head: Buffer, size: number): ImageHead {
  if (size < PREFIX || head.length < PREFIX) throw new ImageError(`truncated: ${size} bytes, shorter than the ${PREFIX}-byte header`);
  if (head.toString('latin1', 0, 8) !== IMAGE_MAGIC) throw new ImageError('not a wdp table image (magic missing)');
  const version = head.readUInt32LE(8);
  if (version !== IMAGE_VERSION) throw new ImageError(`format version ${version}; this wdp reads version ${IMAGE_VERSION}`);
  const metaLen = head.readUInt32LE(12), payloadLen = head.readUInt32LE(16);
  if (size !== PREFIX + metaLen + payloadLen || head.length < PREFIX + metaLen) throw new ImageError(`${size} bytes, the header says ${PREFIX + metaLen + payloadLen} (truncated or trailing bytes)`);
  const metaBytes = head.subarray(PREFIX, PREFIX + metaLen);
  let meta: unknown;
  try { meta = JSON.parse(metaBytes.toString('utf8')); } catch (e) { throw new ImageError(`metadata is not JSON (corrupt?): ${(e as Error).message}`); }
  const caps = isObj(meta) ? meta.caps : undefined;
  if (!isObj(meta) || !isObj(caps) || !isNums(meta.offsets, TABLE_REGIONS) || !isNums(meta.lengths, TABLE_REGIONS) || !Array.isArray(meta.cfg) || meta.cfg.length !== CFG_RANGES.length ||
      typeof meta.revision !== 'string' || typeof meta.inputsHash !== 'string' || !Number.isInteger(meta.worker) || !Number.isInteger(meta.workers) ||
      !isNums([meta.routeCount, meta.localCount], 2) || !isNums([caps.frontends, caps.backends, caps.maglevWords, caps.cidrs, caps.routes], 5) ||
      !Array.isArray(meta.announced)) {
    throw new ImageError('metadata is malformed');
  }
  const m = meta as unknown as ImageMeta;
  if (m.lengths.reduce((s, n) => s + n, 0) !== payloadLen) throw new ImageError('region lengths do not add up to the payload');
  return { meta: m, metaBytes, payloadAt: PREFIX + metaLen, crc: head.readUInt32LE(20) };
}

/** Parses and checks a whole image in memory; throws ImageError saying what is wrong. */
export function decodeImage(buf: Buffer): { meta: ImageMeta; payload: Buffer } {
  const h = decodeImageHead(buf, buf.length);
  if (crc32(buf.subarray(PREFIX)) !== h.crc) throw new ImageError('checksum mismatch (corrupt)');
  return { meta: h.meta, payload: buf.subarray(h.payloadAt) };
}

/** Puts the payload's regions into a set at `base` of `u8` (core memory); `meta` gives their
 * offsets and lengths. Throws ImageError when they turn out to be damaged. */
export type ImageFill = (u8: Uint8Array, base: number, meta: ImageMeta) => void;

/** The fill of a payload already in memory (checked by decodeImage). */
export const fillFrom = (payload: Buffer): ImageFill => (u8, base, meta) => {
  let at = 0;
  for (let i = 0; i < TABLE_REGIONS; i++) {
    u8.set(payload.subarray(at, at + meta.lengths[i]), base + meta.offsets[i]);
    at += meta.lengths[i];
  }
};

/** What a start expects of an image; anything else is refused. */
export interface ImageExpect { moduleHash: number; worker: number; workers: number; revision: string | null; inputsHash: string }

/** Why `meta` cannot be loaded into a core of this build for `want`, or null when it can. */
export function imageProblem(meta: ImageMeta, want: ImageExpect): string | null {
  if (meta.moduleHash !== want.moduleHash) return `written by another build of the forwarding core (module ${hex(meta.moduleHash)}, this one ${hex(want.moduleHash)})`;
  if (meta.layoutHash !== layoutHash()) return `written with another table layout (${hex(meta.layoutHash)}, this build ${hex(layoutHash())})`;
  if (meta.worker !== want.worker || meta.workers !== want.workers) return `written by worker ${meta.worker} of ${meta.workers}; this is worker ${want.worker} of ${want.workers}`;
  if (want.revision === null) return 'the state store has no revision (no store, or it cannot be read)';
  if (meta.revision !== want.revision) {
    const [had, hadFlows] = meta.revision.split(IMAGE_FLOWS_MARK), [now, nowFlows] = want.revision.split(IMAGE_FLOWS_MARK);
    if (had === now && hadFlows !== nowFlows) return `the flow checkpoint is not the one written with it (restored once since, or rewritten by a later run: its flows would name other ids) (checkpoint ${nowFlows}, image's ${hadFlows})`;
    return `the saved state changed since it was written (store revision ${want.revision}, image ${meta.revision})`;
  }
  if (meta.inputsHash !== want.inputsHash) return inputsProblem(meta.inputsHash, want.inputsHash);
  const offsets = TableWriter.regionOffsets(meta.caps), bytes = tableSetBytes(meta.caps);
  if (offsets.some((o, i) => o !== meta.offsets[i])) return 'its table regions are laid out differently from this build\'s for the same capacities';
  for (let i = 0; i < TABLE_REGIONS; i++) {
    const end = i + 1 < TABLE_REGIONS ? offsets[i + 1] : bytes;
    if (meta.offsets[i] + meta.lengths[i] > end) return `region ${i} (${meta.lengths[i]} bytes) overruns its capacity`;
  }
  return null;
}

/** Which of the compile's inputs outside the store differ ("<node>/<ports>" digests). */
function inputsProblem(had: string, now: string): string {
  const [hn, hp] = had.split('/'), [nn, np] = now.split('/');
  const why: string[] = [];
  if (hn !== nn) why.push('the node configuration changed since it was written (node addresses, routes, neighbours, masquerade, hairpin or CIDRs)');
  if (hp !== np) why.push('the ports changed since it was written (a port added or removed, at runtime or in the config, or another MAC or interface; a runtime port whose pod went away while wdp was down)');
  return why.join('; ');
}

const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Loads a checked image into `core` (fresh: no batch run, no apply yet) and points the core at
 * it. Returns the base of the set the core now reads. */
export function loadImage(core: Core, meta: ImageMeta, fill: ImageFill): number {
  const cfg = CFG_RANGES.map(([a, b], i) => {
    const src = Buffer.from(String(meta.cfg[i]), 'base64');
    if (src.length !== b - a) throw new ImageError('metadata is malformed (configuration bytes)');
    return src;
  });
  // one set, named by both table-set words: nothing flips until the catch-up, whose rewrite
  // allocates two new sets (half the copy and the page faults of filling two)
  const caps = meta.caps, bytes = tableSetBytes(caps);
  const base = core.allocate(bytes);
  const bases: [number, number] = [base, base];
  core.adviseHugePages(base, bytes);
  // (a fill that fails leaves this set allocated but unused: nothing points at it yet)
  fill(core.u8, base, meta);
  // per-id counters must cover the image's ids (zero: a restart's counters start again)
  const map = core.map;
  if (caps.frontends > map.svcMax) { map.svcCounters = core.allocate((caps.frontends + 1) * L.PC_SIZE); map.svcMax = caps.frontends; }
  if (caps.backends > map.beMax) { map.beCounters = core.allocate((caps.backends + 1) * L.PC_SIZE); map.beMax = caps.backends; }
  core.tables.adoptImage(caps, bases);
  core.tables.writeImageHeader(0, meta.routeCount, meta.localCount);
  CFG_RANGES.forEach(([a], i) => core.u8.set(cfg[i], map.cfg + a));
  core.setCfg32(L.CFG_SVC_COUNTERS_OFF, map.svcCounters);
  core.setCfg32(L.CFG_SVC_MAX, map.svcMax);
  core.setCfg32(L.CFG_BE_COUNTERS_OFF, map.beCounters);
  core.setCfg32(L.CFG_BE_MAX, map.beMax);
  core.setCfg32(L.CFG_TABLESET0_OFF, bases[0]);
  core.setCfg32(L.CFG_TABLESET1_OFF, bases[1]);
  map.tableSets = bases;
  return base;
}

/** The little-endian u32 at b[at] (a saved flow entry's id: no DataView per flow restored). */
const u32At = (b: Uint8Array, at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

/** Ids as the loaded image names them: the flows saved at the same stop name the same ones, so
 * they are imported unchanged (a backend id whose entry no longer matches the flow is handled by
 * the core as a backend that left, as always: a UDP flow or a new SYN re-selects, an open TCP/SCTP
 * connection goes on to its own address — docs/core.md "Original-direction hit"). */
export class ImageIds implements FlowIdLookup {
  private readonly set: SetFlowIds;
  constructor(core: Core, base: number) { this.set = new SetFlowIds(core, base); }
  flowFront(e: Uint8Array): number | undefined {
    const id = u32At(e, L.CT_FRONT);
    return this.set.fe(id) >= 0 ? id : undefined;
  }
  flowBackend(_front: number, e: Uint8Array): number {
    const id = u32At(e, L.CT_BACKEND_ID);
    return this.set.be(id) >= 0 ? id : 0;
  }
  affinityFront(savedId: number, _ref: FrontendRef | undefined): { id: number; timeoutMs: number } | undefined {
    return this.affinity(savedId);
  }
  affinityBackend(_front: number, savedId: number, _ref: BackendRef | undefined): number | undefined {
    return this.set.be(savedId) >= 0 ? savedId : undefined;
  }
  private affinity(id: number): { id: number; timeoutMs: number } | undefined {
    const e = this.set.fe(id), dv = this.set.mem.dv;
    if (e < 0 || !(dv.getUint32(e + L.FE_FLAGS, true) & L.FEF_AFFINITY)) return undefined;
    // under its port's key in the image (an entry keyed by the frontend it was made through, a
    // NodePort's or an external IP's, is never looked up: the core keys by the port's ClusterIP)
    const key = imageAffinityKey(this.set, id);
    return key === undefined ? undefined : { id: key, timeoutMs: dv.getUint32(e + L.FE_AFF_TIMEOUT, true) };
  }
}

/** The affinity key (assembly/select.ts affinityKey, the same two reads) of frontend `id` in the
 * table set `set` reads: its FE_CLUSTER_FRONT, or that one's when it names another with
 * FEF_AFFINITY_SHARED; the frontend itself without one. Undefined when a named frontend is not in
 * the set (a damaged image: the entry is dropped, as one whose frontend is gone). Idempotent on a
 * key, so an entry already keyed by one stays where it is. */
export function imageAffinityKey(set: SetFlowIds, id: number): number | undefined {
  const dv = set.mem.dv, e = set.fe(id);
  if (e < 0) return undefined;
  const k = dv.getUint32(e + L.FE_CLUSTER_FRONT, true);
  if (k === 0) return id;
  const ke = set.fe(k);
  if (ke < 0) return undefined;
  const k2 = dv.getUint32(ke + L.FE_CLUSTER_FRONT, true);
  if (!(dv.getUint32(ke + L.FE_FLAGS, true) & L.FEF_AFFINITY_SHARED) || k2 === 0) return k;
  return set.fe(k2) < 0 ? undefined : k2;
}

export interface CatchUpResult {
  /** The new tables are byte-identical to the image (same ids, same layout). */
  equal: boolean;
  /** Live flows whose frontend or backend id changed (rewritten in place). */
  remapped: number;
  /** Live flows whose frontend was in the image and is not in the new tables (left to the core:
   * no-service or re-select). */
  unmatched: number;
  /** Affinity entries re-placed under their new ids (and dropped: no such frontend/backend now). */
  affinity: number;
  affinityDropped: number;
  ms: number;
}

/** After the first apply over an image (the control plane caught up): compares the new active set
 * with the image's (`imageBase`, still in memory: the bump allocator never reuses it) and, unless
 * they are identical, rewrites every live flow's frontend and backend ids to what the same
 * addresses are now (a flow short-circuited to its frontend's cluster front: that one's, as the
 * core records it — Core.recordedFront), and re-places the affinity entries (their slot hashes
 * the frontend id). Between batches only. O(conntrack capacity + affinity slots + the used tables). */
export function catchUp(core: Core, imageBase: number, imageExtents: Array<[number, number]>): CatchUpResult {
  const t0 = performance.now();
  const ext = core.tables.imageExtents(), u8 = core.u8;
  let equal = ext.regions.every(([o], i) => o === imageExtents[i][0]);
  for (let i = 0; equal && i < TABLE_REGIONS; i++) {
    const n = Math.max(ext.regions[i][1], imageExtents[i][1]), o = ext.regions[i][0];
    equal = Buffer.compare(Buffer.from(u8.buffer, ext.base + o, n), Buffer.from(u8.buffer, imageBase + o, n)) === 0;
  }
  const res: CatchUpResult = { equal, remapped: 0, unmatched: 0, affinity: 0, affinityDropped: 0, ms: 0 };
  if (!equal) {
    remapIds(core, imageBase, res);
    // what was counted under the image's ids would now be shown under other objects
    const map = core.map;
    u8.fill(0, map.svcCounters, map.svcCounters + (map.svcMax + 1) * L.PC_SIZE);
    u8.fill(0, map.beCounters, map.beCounters + (map.beMax + 1) * L.PC_SIZE);
  }
  res.ms = Math.round((performance.now() - t0) * 10) / 10;
  return res;
}

function remapIds(core: Core, imageBase: number, res: CatchUpResult): void {
  // what the image's ids named: its set is still in memory
  const u8 = core.u8, dv = core.dv, map = core.map, ids = new IrIds(core), old = new SetFlowIds(core, imageBase);
  for (let f = 1; f <= map.ctFlowsMax; f++) {
    const e = map.ctFlows + f * L.CT_SIZE;
    if (u8[e + L.CT_STATE] === L.CTS_NONE) continue;
    const family = u8[e + L.CT_FAMILY] as Family;
    const found = ids.front(u8[e + L.CT_PROTO], u8, e + L.CT_VIP, family, dv.getUint16(e + L.CT_VPORT, true));
    const oldFront = dv.getUint32(e + L.CT_FRONT, true), oldBack = dv.getUint32(e + L.CT_BACKEND_ID, true);
    // no frontend of its (VIP, port) now: no id names its frontend or backend any more (frontend 0,
    // as a restored flow's: a UDP one is an orphan, stale.ts udpOrphan)
    // (unmatched: only a flow its frontend held in the image — one whose Service was deleted under
    // it before the stop had none there either)
    if (found === undefined) {
      if (old.frontHolds(e)) res.unmatched++;
      dv.setUint32(e + L.CT_BACKEND_ID, 0, true); dv.setUint32(e + L.CT_FRONT, 0, true); continue;
    }
    // as the core records the flow: a pod's or the node's to an externalTrafficPolicy Local
    // frontend under its cluster front (the core reads the new tables, the catch-up's apply made)
    const front = core.recordedFront(e, found);
    const back = ids.backend(front, u8, e + L.CT_BACKEND, family, dv.getUint16(e + L.CT_BPORT, true));
    if (front !== oldFront || back !== oldBack) res.remapped++;
    dv.setUint32(e + L.CT_FRONT, front, true);
    dv.setUint32(e + L.CT_BACKEND_ID, back, true);
  }
  // affinity: the old ids' entries in the image's set say what they named
  const moved = rehomeAffinity(core, (frontId, backId) => {
    const fe = old.fe(frontId), be = old.be(backId);
    if (fe < 0 || be < 0) return undefined;
    const family = u8[fe + L.FE_FAMILY] as Family, proto = u8[fe + L.FE_PROTO], port = dv.getUint16(fe + L.FE_PORT, true);
    // a frontend its own (VIP, port) does not lead to was a ClusterPolicy frontend (the cluster
    // front of externalTrafficPolicy Local ones with internalTrafficPolicy Local): its entries
    // go to the ClusterPolicy frontend of that key now, not the ClusterIP with its local endpoints
    const policy = old.serviceFront(proto, fe + L.FE_ADDR, family, port) !== frontId;
    const found = ids.front(proto, u8, fe + L.FE_ADDR, family, port, policy);
    if (found === undefined) return undefined;
    // under the port's key in the new tables (the import keyed it by the image's; this holds an
    // entry that names some other frontend of the port there too)
    const front = affinityKeyIn(core.ir, found);
    const back = ids.backend(front, u8, be + L.BE_ADDR, u8[be + L.BE_FAMILY] as Family, dv.getUint16(be + L.BE_PORT, true));
    return back && ids.inSet(front, back) ? { front, back } : undefined;
  });
  res.affinity = moved.kept; res.affinityDropped = moved.dropped;
}

/** A core forwarding from a loaded image until the control plane's first apply: load, import the
 * flows saved with it (their ids are the image's), then after that apply call afterApply() once. */
export class ImageResume {
  readonly base: number;
  private readonly extents: Array<[number, number]>;
  private pending = true;
  /** `from`: the payload in memory (decodeImage checked it), or a fill that reads it into place. */
  constructor(private readonly core: Core, readonly meta: ImageMeta, from: Buffer | ImageFill) {
    this.base = loadImage(core, meta, Buffer.isBuffer(from) ? fillFrom(from) : from);
    this.extents = meta.offsets.map((o, i) => [o, meta.lengths[i]]);
  }
  /** The lookup that imports flows saved at the image's stop with their own ids. */
  ids(): FlowIdLookup { return new ImageIds(this.core, this.base); }
  /** Whether the tables are still the image's (no apply has rewritten them). */
  get waiting(): boolean { return this.pending; }
  /** After an apply: the first one since the image rewrote the tables — compare and remap once. */
  afterApply(): CatchUpResult | undefined {
    if (!this.pending || this.core.tables.fromImage) return undefined;
    this.pending = false;
    return catchUp(this.core, this.base, this.extents);
  }
}
