// Host for the Wasm forwarding core: loads build/core.wasm, places every region of the memory
// map (assembly/layout.ts) after the core's static data, and gives typed access to descriptors,
// packet slots, counters, conntrack and trace. Tables are written by TableWriter (table-writer.ts).
//
// Crossing the JS<->Wasm boundary costs ~10-30 ns; the host crosses it once per batch
// (`process(count, now)`), never per packet. Everything else here is plain memory access.
import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import * as L from '../../assembly/layout.js';
import { PROTO_NUMBER, type Ir, type Proto } from '../ir/ir.js';
import { diffIr, type IrDiff } from '../ir/diff.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from './timeouts.js';
import { TableWriter, type TableCapacities, tableSetBytes } from './table-writer.js';
import { pinFronts, voidStalePins } from './affinity-pins.js';
import { udpCleanupPlan, udpCleanup } from './udp-cleanup.js';
import { RetiredFronts } from './retired-fronts.js';
import { RetiredSweep } from './retired-sweep.js';
import { NodeFlagSweep } from './node-flag-sweep.js';
import { SharedRejectLimit, type RejectLimitShare } from './shared-reject-limit.js';
import { canonicalAddr, formatAddr, parseAddr } from '../util/addr.js';
import { addrPortKey, frontendIndex, type FrontendIndex } from './frontend-index.js';
import { SetFlowIds } from './set-flow-ids.js';
import type { CounterSnapshot, FlowFilter, FlowInfo } from './dataplane-types.js';
import { adviseHugePages, type HugePageStatus } from './hugepages.js';
import {
  REASON_NAMES, GLOBAL_COUNTER_NAMES, CT_STATE_NAMES, CT_FLAG_NAMES, VERDICT_NAMES, reasonName,
} from './names.js';

export { DEFAULT_TIMEOUTS, type Timeouts };

export interface CoreOptions {
  batchMax?: number;        // frames per process() call (default 256)
  slotSize?: number;        // bytes per packet slot = largest frame (default 2048)
  flows?: number;           // conntrack capacity (default 65536); index gets 4 slots per flow
  affinitySlots?: number;   // sessionAffinity table slots (default 16384)
  /** Fragment table entries (default 4096, FRAG_WAYS per bucket; 0 = none: every non-first
   *  fragment is dropped). Docs: docs/core.md "Fragments". */
  fragments?: number;
  capacities?: Partial<TableCapacities>; // initial table capacities; grown automatically
  timeouts?: Partial<Timeouts>;
  expireBudget?: number;    // flow entries examined for expiry per batch (default 64)
  evictWindow?: number;     // flow entries examined for a victim when full (default 64)
  snatPortMin?: number;     // default 32768
  snatPortMax?: number;     // default 60999
  /** Several workers on one interface (assembly/steer.ts): how many share the interfaces and which
   * one this core is; SNAT ports are then taken only where the owner function names this core;
   * `retiredSweep`: the block the workers age the retired set's filter by (retired-sweep.ts; without
   * it the filter only fills). Default: alone (1, 0). */
  steer?: { workers: number; self: number; retiredSweep?: SharedArrayBuffer };
  /** The reject rate limit's buckets shared with other workers' cores (shared-reject-limit.ts):
   *  the node's, as the kernel's. Default: this core's own. */
  rejectLimit?: RejectLimitShare;
  /** Egress MTU per port index (the port's interface MTU: the largest IP packet it sends; 0 =
   *  unknown, unchecked — every port's default). Changed later with setPortMtu. Docs: docs/core.md
   *  "Egress MTU". */
  portMtu?: Record<number, number>;
  /** Per port index the node's addresses a time exceeded sent out of that port comes from (one per
   *  family; none: a routed packet whose TTL runs out there is dropped unanswered). Changed later
   *  with setPortAddresses. Docs: docs/core.md "Time exceeded". */
  portAddresses?: Record<number, string[]>;
  wasmPath?: string;
  /** Put the table sets on transparent huge pages (default false; see src/core/hugepages.ts for
   * what it gains and what it cost on the VM we measure on). */
  hugePages?: boolean;
}

export interface FrameResult {
  verdict: (typeof VERDICT_NAMES)[number];
  verdictCode: number;
  reason: string;
  reasonCode: number;
  outPort: number;          // L.PORT_NONE when dropped
  frame: Uint8Array;        // copy of the (rewritten) frame
}

export interface TraceRecord {
  stages: number; verdict: number; reason: number; outPort: number; front: number; backend: number;
  flow: number; ct: number; select: number; proto: number; family: number; l3: number; l4: number; hash: number;
}

const DEFAULT_CAPACITIES: TableCapacities = {
  frontends: 1024, backends: 4096, maglevWords: 1 << 18, cidrs: 1024, routes: 256,
};

let cachedModule: WebAssembly.Module | undefined;
let cachedPath: string | undefined;
let cachedHash = 0;

export function defaultWasmPath(): string {
  // dist/src/core/host.js -> build/core.wasm
  return new URL('../../../build/core.wasm', import.meta.url).pathname;
}

function loadModule(path: string): WebAssembly.Module {
  if (cachedModule && cachedPath === path) return cachedModule;
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch (e) {
    throw new Error(`cannot read the forwarding core at ${path} — run \`npm run build\` first (${(e as Error).message})`);
  }
  cachedModule = new WebAssembly.Module(new Uint8Array(bytes));
  cachedPath = path;
  cachedHash = crc32(bytes); // ~1 ms: a table image names the module it was written by
  return cachedModule;
}

const align = (n: number, a = 64) => Math.ceil(n / a) * a;
const pow2 = (n: number) => { let p = 1; while (p < n) p *= 2; return p; };
const PAGE = 65536;

interface CoreExports {
  memory: WebAssembly.Memory;
  config_ptr(): number;
  trace_filter_ptr(): number;
  reject_limit_ptr(): number;
  reject_limit_share(on: number): void;
  heap_base(): number;
  init(): number;
  process(count: number, now: number): void;
  ct_flush(): void;
  ct_restore(src: number, now: number): number;
  ct_recorded_front(e: number, front: number): number;
  ct_node_sweep(): number;
  ct_active(): number;
  ct_expire_step(now: number, budget: number): number;
  ct_free_flow(flow: number): number;
  steer(first: number, count: number): number;
  steer_retired_stage(): number;
  steer_retired_clear(): void;
  steer_retired_add(family: number): number;
  steer_retired_filter_add(): void;
  steer_retired_filter_hits(): number;
  steer_retired_filter(): number;
  steer_retired_filter_set(bits: number): void;
  [k: string]: unknown;
}

/** Where every region lives. Computed once; table sets and per-id counters move when they grow. */
export interface MemoryMap {
  cfg: number; desc: number; arena: number; trace: number; counters: number;
  svcCounters: number; svcMax: number; beCounters: number; beMax: number;
  ctIndex: number; ctIndexSlots: number; ctFlows: number; ctFlowsMax: number;
  aff: number; affSlots: number; frag: number; fragBuckets: number; portMtu: number; portAddr: number; tableSets: [number, number]; end: number;
}

export class Core {
  readonly exports: CoreExports;
  readonly memory: WebAssembly.Memory;
  readonly batchMax: number;
  readonly slotSize: number;
  readonly map: MemoryMap;
  readonly tables: TableWriter;
  /** CRC-32 of the Wasm module's bytes: a table image written by another build is refused. */
  readonly moduleHash: number;
  private readonly t0 = performance.now();
  private lastNow: number | undefined;   // `now` of the last batch: callers may run a synthetic clock
  private lastNowAt = 0;                 // performance.now() when that batch ran
  private u8cache: Uint8Array;
  private dvcache: DataView;
  private u32cache = new Uint32Array(0);
  private readonly wantHugePages: boolean;
  /** Whether the table sets are backed by transparent huge pages, and if not, why. */
  hugePages: HugePageStatus = { mode: 'unknown', advisedBytes: 0, reason: 'not requested' };
  /** With several workers on one interface: the frontend addresses the applies removed (steer.ts). */
  readonly retired?: RetiredFronts;
  /** The flows' node flag decided again when an apply changes the node's addresses. */
  readonly nodeFlags = new NodeFlagSweep();
  /** The reject rate limit's node-wide buckets (opts.rejectLimit). */
  private rejectShare?: SharedRejectLimit;

  static create(opts: CoreOptions = {}): Core {
    return new Core(opts);
  }

  private constructor(opts: CoreOptions) {
    const mod = loadModule(opts.wasmPath ?? defaultWasmPath());
    this.moduleHash = cachedHash;
    const instance = new WebAssembly.Instance(mod, {
      env: {
        abort: (_m: number, _f: number, line: number, col: number) => {
          throw new Error(`wdp core aborted at ${line}:${col}`);
        },
        seed: () => Date.now(),
        reject_limit_enter: (now: number, bucket: number, client: number, family: number) => this.rejectShare!.enter(now, bucket, client, family),
        reject_limit_bucket: (bucket: number) => this.rejectShare!.bucket(bucket),
        reject_limit_leave: (bucket: number, write: number) => this.rejectShare!.leave(bucket, write),
      },
    });
    this.exports = instance.exports as unknown as CoreExports;
    this.memory = this.exports.memory;
    this.wantHugePages = opts.hugePages ?? false;
    this.batchMax = opts.batchMax ?? L.DEFAULT_BATCH_MAX;
    this.slotSize = opts.slotSize ?? L.DEFAULT_SLOT_SIZE;
    if (!(this.batchMax >= 1 && this.batchMax <= 65535)) throw new RangeError('batchMax must be 1..65535');
    if (!(this.slotSize >= 128 && this.slotSize <= 65535 && this.slotSize % 64 === 0)) {
      throw new RangeError('slotSize must be a multiple of 64 in 128..65535');
    }
    const flows = Math.max(16, opts.flows ?? 65536);
    const affSlots = pow2(Math.max(16, opts.affinitySlots ?? 16384));
    const fragEntries = opts.fragments ?? 4096;
    if (!(Number.isInteger(fragEntries) && fragEntries >= 0 && fragEntries <= 1 << 22)) throw new RangeError('fragments must be an integer in 0..4194304');
    const fragBuckets = fragEntries === 0 ? 0 : pow2(Math.max(1, Math.ceil(fragEntries / L.FRAG_WAYS)));
    const caps: TableCapacities = { ...DEFAULT_CAPACITIES, ...(opts.capacities ?? {}) };

    const cfg = this.exports.config_ptr();
    let p = align(this.exports.heap_base());
    const take = (bytes: number) => { const at = p; p = align(p + bytes); return at; };
    const ctIndexSlots = pow2(flows * 4);
    const map: MemoryMap = {
      cfg,
      desc: take(this.batchMax * L.DESC_SIZE),
      arena: take(this.batchMax * this.slotSize),
      trace: take(this.batchMax * L.TRACE_SIZE),
      counters: take((L.GC_COUNT + L.REASON_COUNT) * 8),
      svcCounters: take((caps.frontends + 1) * L.PC_SIZE), svcMax: caps.frontends,
      beCounters: take((caps.backends + 1) * L.PC_SIZE), beMax: caps.backends,
      ctIndex: take(ctIndexSlots * L.CTI_SIZE), ctIndexSlots,
      ctFlows: take((flows + 1) * L.CT_SIZE), ctFlowsMax: flows,
      aff: take(affSlots * L.AFF_SIZE), affSlots,
      frag: fragBuckets ? take(fragBuckets * L.FRAG_WAYS * L.FRAG_SIZE) : 0, fragBuckets,
      portMtu: take(L.PORT_MTU_ENTRIES * 2),
      portAddr: take(L.PORT_MTU_ENTRIES * L.PA_SIZE),
      tableSets: [0, 0], end: 0,
    };
    const setBytes = tableSetBytes(caps);
    map.tableSets = [take(setBytes), take(setBytes)];
    map.end = p;
    this.map = map;
    this.ensureMemory(p);
    this.adviseHugePages(map.tableSets[0], map.tableSets[1] + setBytes - map.tableSets[0]);
    this.u8cache = new Uint8Array(this.memory.buffer);
    this.dvcache = new DataView(this.memory.buffer);

    const t = { ...DEFAULT_TIMEOUTS, ...(opts.timeouts ?? {}) };
    // CFG_TO_* are u32 ms, compared with differences of the core's u32 ms clock: a larger value
    // written would wrap (50 days became ~7.6 h), so it is refused by name instead
    for (const [name, ms] of Object.entries(t)) {
      if (!(Number.isInteger(ms) && ms >= 0 && ms <= 0xffffffff)) throw new RangeError(`timeouts.${name} must be an integer number of ms in 0..4294967295 (about 49.7 days: the core's clock is 32-bit ms), not ${ms}`);
    }
    const dv = this.dv;
    const w = (off: number, v: number) => dv.setUint32(cfg + off, v >>> 0, true);
    this.u8.fill(0, cfg, cfg + L.CFG_SIZE);
    w(L.CFG_MAGIC, L.CFG_MAGIC_VALUE);
    w(L.CFG_VERSION, L.LAYOUT_VERSION);
    w(L.CFG_GEN, 0);
    w(L.CFG_TRACE, 0);
    w(L.CFG_BATCH_MAX, this.batchMax);
    w(L.CFG_SLOT_SIZE, this.slotSize);
    w(L.CFG_DESC_OFF, map.desc);
    w(L.CFG_ARENA_OFF, map.arena);
    w(L.CFG_TRACE_OFF, map.trace);
    w(L.CFG_COUNTERS_OFF, map.counters);
    w(L.CFG_SVC_COUNTERS_OFF, map.svcCounters);
    w(L.CFG_SVC_MAX, map.svcMax);
    w(L.CFG_BE_COUNTERS_OFF, map.beCounters);
    w(L.CFG_BE_MAX, map.beMax);
    w(L.CFG_CT_INDEX_OFF, map.ctIndex);
    w(L.CFG_CT_INDEX_MASK, ctIndexSlots - 1);
    w(L.CFG_CT_FLOWS_OFF, map.ctFlows);
    w(L.CFG_CT_FLOWS_MAX, flows);
    w(L.CFG_AFF_OFF, map.aff);
    w(L.CFG_AFF_MASK, affSlots - 1);
    w(L.CFG_TABLESET0_OFF, map.tableSets[0]);
    w(L.CFG_TABLESET1_OFF, map.tableSets[1]);
    w(L.CFG_TO_TCP_SYN, t.tcpSynMs);
    w(L.CFG_TO_TCP_EST, t.tcpEstablishedMs);
    w(L.CFG_TO_TCP_CLOSE, t.tcpCloseMs);
    w(L.CFG_TO_UDP, t.udpMs);
    w(L.CFG_TO_UDP_REPLIED, t.udpRepliedMs);
    w(L.CFG_TO_SCTP, t.sctpMs);
    w(L.CFG_TO_ICMP, t.udpMs);
    w(L.CFG_EXPIRE_BUDGET, opts.expireBudget ?? 64);
    w(L.CFG_EVICT_WINDOW, opts.evictWindow ?? 64);
    w(L.CFG_TO_TCP_UNCONFIRMED, t.tcpUnconfirmedMs);
    w(L.CFG_TO_TCP_HALF_CLOSED, t.tcpHalfClosedMs);
    w(L.CFG_TO_SCTP_HANDSHAKE, t.sctpHandshakeMs);
    w(L.CFG_TO_SCTP_SHUTDOWN, t.sctpShutdownMs);
    w(L.CFG_TO_SCTP_CLOSED, t.sctpClosedMs);
    w(L.CFG_TO_SCTP_HEARTBEAT, t.sctpHeartbeatMs);
    w(L.CFG_FRAG_OFF, map.frag);
    w(L.CFG_FRAG_MASK, fragBuckets ? fragBuckets - 1 : 0);
    w(L.CFG_TO_FRAG, t.fragmentMs);
    w(L.CFG_PORT_MTU_OFF, map.portMtu);
    // every port unknown (stored 0xffff: the core's one compare passes every packet)
    this.u8.fill(0xff, map.portMtu, map.portMtu + L.PORT_MTU_ENTRIES * 2);
    for (const [port, mtu] of Object.entries(opts.portMtu ?? {})) this.setPortMtu(Number(port), mtu);
    w(L.CFG_PORT_ADDR_OFF, map.portAddr);
    for (const [port, addrs] of Object.entries(opts.portAddresses ?? {})) this.setPortAddresses(Number(port), addrs);
    const pmin = opts.snatPortMin ?? 32768, pmax = opts.snatPortMax ?? 60999;
    if (!(pmin >= 1 && pmax <= 65535 && pmin <= pmax)) throw new RangeError('SNAT port range must be within 1..65535');
    w(L.CFG_SNAT_PORT_MIN, pmin);
    w(L.CFG_SNAT_PORT_MAX, pmax);
    const st = opts.steer ?? { workers: 1, self: 0 };
    if (!(Number.isInteger(st.workers) && st.workers >= 1 && st.workers <= L.STEER_RECHECK && Number.isInteger(st.self) && st.self >= 0 && st.self < st.workers)) {
      throw new RangeError(`steer: worker ${st.self} of ${st.workers} is not a valid worker index`);
    }
    w(L.CFG_STEER_WORKERS, st.workers);
    w(L.CFG_STEER_SELF, st.self);
    if (st.workers > 1) this.retired = new RetiredFronts(st.retiredSweep ? new RetiredSweep(st.retiredSweep, st.self) : undefined);

    this.tables = new TableWriter(this, caps);
    this.tables.initSets();
    const rc = this.exports.init();
    if (rc !== 0) throw new Error(`wdp core init() failed with code ${rc} (layout mismatch between host and core?)`);
    if (opts.rejectLimit) {
      this.rejectShare = new SharedRejectLimit(this, opts.rejectLimit, performance.timeOrigin + this.t0);
      this.exports.reject_limit_share(1);
    }
  }

  // ---- memory access --------------------------------------------------------------------------

  /** Grows linear memory so that [0, end) is addressable. Views are refreshed lazily. */
  ensureMemory(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
  }

  /** Marks [at, at + bytes) MADV_HUGEPAGE: the table writer calls it for fresh table sets, before
   * it touches them (advice applies to pages faulted in after it). */
  adviseHugePages(at: number, bytes: number): void {
    if (!this.wantHugePages) return;
    const s = adviseHugePages(new Uint8Array(this.memory.buffer, at, bytes));
    const advisedBytes = this.hugePages.advisedBytes + s.advisedBytes;
    this.hugePages = advisedBytes > 0 ? { mode: s.mode, advisedBytes }
      : { mode: s.mode, advisedBytes: 0, reason: s.reason ?? `the table sets (${bytes} bytes) hold no whole 2 MiB page` };
  }

  /** Allocates `bytes` at the end of the map (table sets and counters that outgrow their region). */
  allocate(bytes: number): number {
    const at = this.map.end;
    this.map.end = align(at + bytes);
    this.ensureMemory(this.map.end);
    return at;
  }

  // The views are made afresh only when memory grew: a grow detaches the old buffer (every grow,
  // even by 0 pages; the core's memory is not shared), which leaves its views 0 bytes long.
  // Comparing with memory.buffer instead was an API call on every access (the table writer
  // makes ~100k at 10k services: ~10 ms of a full sync's write).
  get u8(): Uint8Array {
    if (this.u8cache.byteLength === 0) this.u8cache = new Uint8Array(this.memory.buffer);
    return this.u8cache;
  }

  /** Linear memory as u32 words (little-endian, as Wasm and every host wdp runs on). */
  get u32(): Uint32Array {
    if (this.u32cache.byteLength === 0) this.u32cache = new Uint32Array(this.memory.buffer);
    return this.u32cache;
  }

  get dv(): DataView {
    // (a DataView of a detached buffer throws on byteLength: its buffer's is 0)
    if (this.dvcache.buffer.byteLength === 0) this.dvcache = new DataView(this.memory.buffer);
    return this.dvcache;
  }

  /** Sets port `port`'s egress MTU (bytes of IP packet; 0 = unknown: nothing checked). The core
   *  reads it per packet, so a change applies from the next batch. */
  setPortMtu(port: number, mtu: number): void {
    if (!(Number.isInteger(port) && port >= 0 && port < L.PORT_NONE)) throw new RangeError(`port index must be an integer in 0..${L.PORT_NONE - 1}, not ${port}`);
    if (!(Number.isInteger(mtu) && mtu >= 0 && mtu <= 0xffff)) throw new RangeError(`MTU must be an integer in 0..65535 (0 = unknown), not ${mtu}`);
    this.dv.setUint16(this.map.portMtu + port * 2, mtu === 0 ? 0xffff : mtu, true);
  }

  /** Sets the addresses port `port` answers a spent TTL from: at most one IPv4 and one IPv6
   *  address (the first of each family given; a family not given: none). Applies from the next batch. */
  setPortAddresses(port: number, addrs: readonly string[]): void {
    if (!(Number.isInteger(port) && port >= 0 && port < L.PORT_NONE)) throw new RangeError(`port index must be an integer in 0..${L.PORT_NONE - 1}, not ${port}`);
    const at = this.map.portAddr + port * L.PA_SIZE;
    const entry = new Uint8Array(L.PA_SIZE);
    const seen = new Set<number>();
    for (const s of addrs) {
      const a = parseAddr(s);
      if (seen.has(a.family)) continue;
      seen.add(a.family);
      if (a.family === 4) entry.set(a.bytes.subarray(0, 4), L.PA_V4); else entry.set(a.bytes, L.PA_V6);
    }
    this.u8.set(entry, at);
  }

  /** Port `port`'s time exceeded source addresses as set (canonical; none: []). */
  portAddresses(port: number): string[] {
    if (!(port >= 0 && port < L.PORT_MTU_ENTRIES)) return [];
    const e = this.u8.subarray(this.map.portAddr + port * L.PA_SIZE, this.map.portAddr + (port + 1) * L.PA_SIZE);
    const out: string[] = [];
    if (e.subarray(L.PA_V4, L.PA_V4 + 4).some((b) => b !== 0)) out.push(formatAddr(e, 4, L.PA_V4));
    if (e.subarray(L.PA_V6, L.PA_V6 + 16).some((b) => b !== 0)) out.push(formatAddr(e, 6, L.PA_V6));
    return out;
  }

  /** Port `port`'s egress MTU as set (0 = unknown). */
  portMtu(port: number): number {
    const v = port >= 0 && port < L.PORT_MTU_ENTRIES ? this.dv.getUint16(this.map.portMtu + port * 2, true) : 0xffff;
    return v === 0xffff ? 0 : v;
  }

  cfg32(off: number): number { return this.dv.getUint32(this.map.cfg + off, true); }
  /** Stores a CONFIG word. Storing CFG_GEN or a CFG_TABLESETn_OFF publishes tables: CFG_TABLE_EPOCH
   * changes with it, so what the core caches of the active set (assembly/route-cache.ts) is
   * looked up again. */
  setCfg32(off: number, v: number): void {
    this.dv.setUint32(this.map.cfg + off, v >>> 0, true);
    if (off === L.CFG_GEN || off === L.CFG_TABLESET0_OFF || off === L.CFG_TABLESET1_OFF) {
      this.dv.setUint32(this.map.cfg + L.CFG_TABLE_EPOCH, (this.dv.getUint32(this.map.cfg + L.CFG_TABLE_EPOCH, true) + 1) >>> 0, true);
    }
  }

  /** Milliseconds on the core clock (u32, wraps after 49 days; the core compares wrap-safely). */
  now(): number { return (performance.now() - this.t0) >>> 0; }

  /** The core's idea of now: the last batch's clock advanced by the real time since (so a caller
   * driving a synthetic clock and the daemon's real clock both read consistently). */
  clockNow(): number {
    if (this.lastNow === undefined) return this.now();
    return (this.lastNow + (performance.now() - this.lastNowAt)) >>> 0;
  }

  /** What native ports need to burst straight into the arena. */
  private area?: { memory: ArrayBuffer; arenaOff: number; slotSize: number; descOff: number };
  /** Where the ports read and write frames. One object, refreshed when the memory grows (its
   * buffer changes) — a worker asks for it twice per batch, and a fresh object each time was
   * garbage on the forwarding path. Read it afresh after anything that can grow the memory. */
  burstArea(): { memory: ArrayBuffer; arenaOff: number; slotSize: number; descOff: number } {
    const buf = this.memory.buffer;
    const a = this.area;
    if (a && a.memory === buf && a.arenaOff === this.map.arena && a.descOff === this.map.desc) return a;
    return (this.area = { memory: buf, arenaOff: this.map.arena, slotSize: this.slotSize, descOff: this.map.desc });
  }

  slotOffset(i: number): number { return this.map.arena + i * this.slotSize; }
  descOffset(i: number): number { return this.map.desc + i * L.DESC_SIZE; }

  writeFrame(i: number, frame: Uint8Array, inPort = 0): void {
    if (i < 0 || i >= this.batchMax) throw new RangeError(`slot ${i} outside batch of ${this.batchMax}`);
    const n = Math.min(frame.length, this.slotSize);
    this.u8.set(frame.subarray(0, n), this.slotOffset(i));
    const d = this.descOffset(i), dv = this.dv;
    // an oversize frame keeps its true length so the core counts it as drop_oversize
    dv.setUint16(d + L.D_LEN, Math.min(frame.length, 0xffff), true);
    dv.setUint16(d + L.D_IN_PORT, inPort, true);
    dv.setUint16(d + L.D_OUT_PORT, L.PORT_NONE, true);
    dv.setUint8(d + L.D_VERDICT, 0);
    dv.setUint8(d + L.D_REASON, 0);
  }

  readFrame(i: number): Uint8Array {
    const len = Math.min(this.dv.getUint16(this.descOffset(i) + L.D_LEN, true), this.slotSize);
    const at = this.slotOffset(i);
    return this.u8.slice(at, at + len);
  }

  descriptor(i: number) {
    const d = this.descOffset(i), dv = this.dv;
    return {
      len: dv.getUint16(d + L.D_LEN, true), inPort: dv.getUint16(d + L.D_IN_PORT, true),
      outPort: dv.getUint16(d + L.D_OUT_PORT, true), verdict: dv.getUint8(d + L.D_VERDICT),
      reason: dv.getUint8(d + L.D_REASON), hash: dv.getUint32(d + L.D_HASH, true),
    };
  }

  /** One batch: frames already in slots 0..count-1. */
  process(count: number, now = this.now()): void {
    if (count > this.batchMax) throw new RangeError(`batch of ${count} exceeds batchMax ${this.batchMax}`);
    this.exports.process(count, now >>> 0);
    this.lastNow = now >>> 0;
    this.lastNowAt = performance.now();
  }

  /** Several workers on one interface: the owning worker of the frames in slots first..count-1,
   * written to their descriptors' D_VERDICT (L.STEER_LOCAL = this core's; L.STEER_RECHECK set: that
   * worker is to steer it once more); returns how many belong
   * to another worker. process() overwrites D_VERDICT. See assembly/steer.ts. */
  steer(first: number, count: number): number {
    if (count > this.batchMax) throw new RangeError(`batch of ${count} exceeds batchMax ${this.batchMax}`);
    return this.exports.steer(first, count);
  }

  /** Convenience for tests, trace and pcap: runs frames in batches and returns each result. */
  run(frames: Array<Uint8Array | { frame: Uint8Array; inPort?: number }>, now = this.now(), inPort = 0): FrameResult[] {
    const out: FrameResult[] = [];
    for (let base = 0; base < frames.length; base += this.batchMax) {
      const n = Math.min(this.batchMax, frames.length - base);
      for (let i = 0; i < n; i++) {
        const f = frames[base + i];
        if (f instanceof Uint8Array) this.writeFrame(i, f, inPort);
        else this.writeFrame(i, f.frame, f.inPort ?? inPort);
      }
      this.process(n, now);
      for (let i = 0; i < n; i++) {
        const d = this.descriptor(i);
        out.push({
          verdict: VERDICT_NAMES[d.verdict] ?? 'drop', verdictCode: d.verdict,
          reason: reasonName(d.reason), reasonCode: d.reason, outPort: d.outPort, frame: this.readFrame(i),
        });
      }
    }
    return out;
  }

  /** Runs frames in trace mode. `dryRun` (default true): decisions and rewrite only, no state change. */
  trace(frames: Uint8Array[], inPort = 0, dryRun = true, now = this.now()): Array<FrameResult & { trace: TraceRecord }> {
    const out: Array<FrameResult & { trace: TraceRecord }> = [];
    this.setCfg32(L.CFG_TRACE, L.TRACE_ON | (dryRun ? L.TRACE_DRY_RUN : 0));
    try {
      for (let base = 0; base < frames.length; base += this.batchMax) {
        const n = Math.min(this.batchMax, frames.length - base);
        const res = this.run(frames.slice(base, base + n), now, inPort);
        res.forEach((r, i) => out.push({ ...r, trace: this.traceRecord(i) }));
      }
    } finally {
      this.setCfg32(L.CFG_TRACE, 0);
    }
    return out;
  }

  traceRecord(i: number): TraceRecord { return this.traceRecordAt(this.map.trace + i * L.TRACE_SIZE); }

  /** Address of the live trace filter block (layout.ts "Live trace filter"; src/observe/core-filter.ts). */
  get traceFilterBase(): number { return (this.tfBase ??= this.exports.trace_filter_ptr()); }
  private tfBase: number | undefined;

  /** The trace record at byte offset `t` (a TRACE region slot, or a live trace's match record). */
  traceRecordAt(t: number): TraceRecord {
    const dv = this.dv;
    return {
      stages: dv.getUint32(t + L.TR_STAGES, true), verdict: dv.getUint8(t + L.TR_VERDICT),
      reason: dv.getUint8(t + L.TR_REASON), outPort: dv.getUint16(t + L.TR_OUT_PORT, true),
      front: dv.getUint32(t + L.TR_FRONT, true), backend: dv.getUint32(t + L.TR_BACKEND, true),
      flow: dv.getUint32(t + L.TR_FLOW, true), ct: dv.getUint8(t + L.TR_CT), select: dv.getUint8(t + L.TR_SELECT),
      proto: dv.getUint8(t + L.TR_PROTO), family: dv.getUint8(t + L.TR_FAMILY),
      l3: dv.getUint16(t + L.TR_L3, true), l4: dv.getUint16(t + L.TR_L4, true), hash: dv.getUint32(t + L.TR_HASH, true),
    };
  }

  // ---- tables ---------------------------------------------------------------------------------

  /** The Ir the tables currently hold. */
  get ir(): Ir { return this.tables.ir; }
  /** Number of generation flips so far. */
  get generation(): number { return this.tables.generation; }

  /** Replace the whole state with `ir` (writes only what differs). Returns the diff applied. */
  applyIr(ir: Ir): IrDiff {
    const diff = diffIr(this.tables.ir, ir);
    this.applyDiff(diff, ir);
    return diff;
  }

  /** Apply a diff the caller computed; `next` is the resulting whole Ir. The sessionAffinity
   * pins the diff left on a backend outside their frontend's new set, or keyed by a frontend it
   * removed or took affinity from, are voided (affinity-pins.ts: one pass over the affinity table
   * when the diff rewrites a frontend with affinity or one loses it). The UDP flows of a frontend
   * it removes are freed (its Service port deleted in its family) or orphaned (its address left a
   * live port): udp-cleanup.ts, one pass over the conntrack entries when a UDP frontend goes. When
   * it changes the node's addresses, every flow's node flag is decided again (node-flag-sweep.ts). */
  applyDiff(diff: IrDiff, next: Ir): void {
    // the first apply over a table image: the entries still carry the image's ids, which
    // table-image.ts catchUp re-places under the new ones (checking the sets there)
    const overImage = this.tables.fromImage;
    const fronts = overImage ? null : pinFronts(this, diff);   // (reads the set in force until the apply's flip)
    const udp = overImage ? null : udpCleanupPlan(this.tables.frontRecords, diff);
    this.retired?.note(this, this.tables.frontRecords, diff);
    this.tables.apply(diff, next);
    voidStalePins(this, fronts, next);
    udpCleanup(this, this.tables.frontRecords, udp);
    this.nodeFlags.applied(this, diff, overImage);
  }

  /** Frees flow `f` if it is in use (udp-cleanup.ts). */
  freeFlow(f: number): void { this.exports.ct_free_flow(f); }

  ctFlush(): void { this.exports.ct_flush(); }

  /** The expiry sweep of a batch without one: `budget` entries from the core's cursor; how many freed. */
  ctExpireStep(budget: number, now = this.now()): number { return this.exports.ct_expire_step(now >>> 0, budget >>> 0) >>> 0; }

  // ---- counters -------------------------------------------------------------------------------

  private u64(off: number): number { return Number(this.dv.getBigUint64(off, true)); }

  /** Adds `delta` to counter `slot` (a global counter L.GC_*, or L.GC_COUNT + a reason), never
   * below 0. */
  private addCounter(slot: number, delta: number): void {
    const off = this.map.counters + slot * 8;
    const v = this.dv.getBigUint64(off, true) + BigInt(delta);
    this.dv.setBigUint64(off, v < 0n ? 0n : v, true);
  }

  // The worker's hold queue (docs/running.md, "Frames waiting for a neighbour") corrects what the
  // core counted: a frame it keeps until its backend's neighbour is resolved is not a drop unless
  // it is dropped in the end, and one decided again after its release was received only once. So
  // every frame received counts once in rx_packets and once in its final verdict.

  /** `n` frames the last batch dropped for want of a route (drop_no_route) were kept instead. */
  countHeld(n: number): void {
    this.addCounter(L.GC_DROP, -n);
    this.addCounter(L.GC_COUNT + L.REASON_DROP_NO_ROUTE, -n);
  }

  /** `n` frames kept were dropped after all (held too long, their port removed): drop_no_route. */
  countHeldDropped(n: number): void {
    this.addCounter(L.GC_DROP, n);
    this.addCounter(L.GC_COUNT + L.REASON_DROP_NO_ROUTE, n);
  }

  /** `n` frames kept (`bytes` in all) were decided again by the last batch: received once. */
  countRedecided(n: number, bytes: number): void {
    this.addCounter(L.GC_RX_PACKETS, -n);
    this.addCounter(L.GC_RX_BYTES, -bytes);
  }

  counters(): CounterSnapshot {
    const c = this.map.counters;
    const global: Record<string, number> = {};
    GLOBAL_COUNTER_NAMES.forEach((n, i) => { if (n) global[n] = this.u64(c + i * 8); });
    const reasons: Record<string, number> = {};
    REASON_NAMES.forEach((n, i) => { if (n) reasons[n] = this.u64(c + (L.GC_COUNT + i) * 8); });
    const frontends: CounterSnapshot['frontends'] = {};
    for (const id of this.tables.ir.frontends.keys()) {
      const o = this.map.svcCounters + id * L.PC_SIZE;
      frontends[id] = { packets: this.u64(o + L.PC_PACKETS), bytes: this.u64(o + L.PC_BYTES) };
    }
    const backends: CounterSnapshot['backends'] = {};
    for (const id of this.tables.ir.backends.keys()) {
      const o = this.map.beCounters + id * L.PC_SIZE;
      backends[id] = { packets: this.u64(o + L.PC_PACKETS), bytes: this.u64(o + L.PC_BYTES) };
    }
    global.ct_node_sweeps = this.nodeFlags.sweeps; global.ct_node_flag_changed = this.nodeFlags.changed;
    if (this.retired) {
      global.steer_retired_filtered = this.retired.filtered; global.steer_retired_filter_hits = this.exports.steer_retired_filter_hits();
      global.steer_retired_filter_bits = this.retired.filterBits(this);
      global.steer_retired_filter_sweeps = this.retired.sweeps; global.steer_retired_filter_cleared = this.retired.cleared;
    }
    return { generation: this.generation, global, reasons, frontends, backends };
  }

  // ---- conntrack ------------------------------------------------------------------------------

  /** Decodes live flow entries. O(table capacity): an API/debug path, not a packet path. */
  flows(filter: FlowFilter = {}, now = this.clockNow()): FlowInfo[] {
    const out: FlowInfo[] = [];
    const limit = filter.limit ?? Infinity;
    const timeout = this.flowTimeouts();
    // the image's tables carry ids, not names: until the catch-up no id can be matched to a Service
    if (filter.service !== undefined && this.tables.fromImage) {
      throw new Error('cannot list flows by service while forwarding from the table image of a restart: the image holds ids, not names (the control plane has not caught up yet)');
    }
    for (let f = 1; f <= this.map.ctFlowsMax && out.length < limit; f++) {
      const info = this.flowEntry(f, now, filter.includeExpired ? undefined : timeout);
      if (!info) continue;
      if (filter.frontendId !== undefined && info.frontendId !== filter.frontendId) continue;
      if (filter.service !== undefined && this.tables.ir.frontends.get(info.frontendId)?.service !== filter.service) continue;
      if (filter.backend !== undefined && info.backend !== filter.backend) continue;
      if (filter.client !== undefined && info.client !== filter.client) continue;
      if (filter.proto !== undefined && info.proto !== filter.proto) continue;
      out.push(info);
    }
    return out;
  }

  /** Idle timeout (ms) of each CTS_* state, as the core applies it (index = state). */
  flowTimeouts(): number[] {
    const timeout: number[] = [];
    timeout[L.CTS_TCP_SYN] = this.cfg32(L.CFG_TO_TCP_SYN);
    timeout[L.CTS_TCP_EST] = this.cfg32(L.CFG_TO_TCP_EST);
    timeout[L.CTS_TCP_CLOSING] = this.cfg32(L.CFG_TO_TCP_CLOSE);
    timeout[L.CTS_UDP] = this.cfg32(L.CFG_TO_UDP);
    timeout[L.CTS_UDP_REPLIED] = this.cfg32(L.CFG_TO_UDP_REPLIED);
    timeout[L.CTS_SCTP] = this.cfg32(L.CFG_TO_SCTP);
    timeout[L.CTS_TCP_SYN_RECV] = timeout[L.CTS_TCP_MIDSTREAM] = this.cfg32(L.CFG_TO_TCP_UNCONFIRMED);
    timeout[L.CTS_TCP_HALF_CLOSED_ORIG] = timeout[L.CTS_TCP_HALF_CLOSED_REPLY] = this.cfg32(L.CFG_TO_TCP_HALF_CLOSED);
    timeout[L.CTS_SCTP_CLOSED] = this.cfg32(L.CFG_TO_SCTP_CLOSED);
    timeout[L.CTS_SCTP_COOKIE_WAIT] = timeout[L.CTS_SCTP_COOKIE_ECHOED] = this.cfg32(L.CFG_TO_SCTP_HANDSHAKE);
    timeout[L.CTS_SCTP_SHUTDOWN] = timeout[L.CTS_SCTP_SHUTDOWN_ACK_SENT] = this.cfg32(L.CFG_TO_SCTP_SHUTDOWN);
    timeout[L.CTS_SCTP_HEARTBEAT_SENT] = this.cfg32(L.CFG_TO_SCTP_HEARTBEAT);
    return timeout;
  }

  /** One flow entry by id (a trace record's `flow`), undefined when free (or, given `timeout`,
   * past it). O(1): live trace decodes the entry of each traced packet. */
  flowEntry(f: number, now = this.clockNow(), timeout?: number[]): FlowInfo | undefined {
    if (!(f >= 1 && f <= this.map.ctFlowsMax)) return undefined;
    const u8 = this.u8, dv = this.dv;
    const protoName = (p: number): FlowInfo['proto'] => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : 'OTHER');
    const e = this.map.ctFlows + f * L.CT_SIZE;
    const state = u8[e + L.CT_STATE];
    if (state === L.CTS_NONE) return undefined;
    if (timeout && ((now - dv.getUint32(e + L.CT_LAST_SEEN, true)) >>> 0) > (timeout[state] ?? 0)) return undefined;
    const family = u8[e + L.CT_FAMILY] === 6 ? 6 : 4;
    const flags = u8[e + L.CT_FLAGS];
    const info: FlowInfo = {
      flow: f, proto: protoName(u8[e + L.CT_PROTO]), family,
      client: formatAddr(u8, family, e + L.CT_CLIENT), clientPort: dv.getUint16(e + L.CT_CPORT, true),
      vip: formatAddr(u8, family, e + L.CT_VIP), vipPort: dv.getUint16(e + L.CT_VPORT, true),
      backend: formatAddr(u8, family, e + L.CT_BACKEND), backendPort: dv.getUint16(e + L.CT_BPORT, true),
      state: CT_STATE_NAMES[state] ?? `state_${state}`,
      frontendId: dv.getUint32(e + L.CT_FRONT, true), backendId: dv.getUint32(e + L.CT_BACKEND_ID, true),
      ageMs: (now - dv.getUint32(e + L.CT_CREATED, true)) >>> 0,
      idleMs: (now - dv.getUint32(e + L.CT_LAST_SEEN, true)) >>> 0,
      flags: CT_FLAG_NAMES.filter(([b]) => (flags & b) !== 0).map(([, n]) => n),
    };
    // a flow whose backend left the endpoints goes on to its own address (docs/core.md
    // "Original-direction hit"; `backend` above), and the id it was created with may name another
    // backend by now: listed as backend id 0 and backendLeft, as the core traces it. While the
    // tables are a restart's image the control plane's view is still empty: the image's own
    // tables say it, as the core reads them (set-flow-ids.ts)
    const image = this.imageFlowIds();
    if (info.backendId !== 0 && !(image ? image.backendHolds(e) : this.idNamesBackend(info.backendId, info.backend, info.backendPort))) info.backendId = 0;
    if (info.backendId === 0) info.backendLeft = true;
    // once its Service port is gone (or re-created at another address), its frontend id may name
    // another frontend, whatever became of its backend
    if (!(image ? image.frontHolds(e) : this.idNamesFront(info.frontendId, e, family, info.vip))) info.frontendId = 0;
    if (flags & L.CTF_SNAT) {
      info.natSource = (flags & L.CTF_HAIRPIN ? this.hairpinAddress(family) : this.snatAddress(family)) ?? '';
      info.natSourcePort = dv.getUint16(e + L.CT_NPORT, true);
    }
    return info;
  }

  /** Whether backend `id` exists in the generation in force and names `addr` (canonical) and
   * `port` (assembly/stale.ts backendHolds, on the compiler's view of the same tables). */
  private idNamesBackend(id: number, addr: string, port: number): boolean {
    const be = this.tables.ir.backends.get(id);
    return !!be && be.port === port && canonicalAddr(be.addr) === addr;
  }

  /** Whether frontend `id` is, in the generation in force, a frontend of the (VIP, port,
   * protocol) of flow entry `e` (`vip` its canonical text): the one the service map has for it or
   * that frontend's cluster front, else one whose own key it is (a ClusterPolicy frontend's;
   * assembly/stale.ts heldFrontId). The index is built once per generation. */
  private idNamesFront(id: number, e: number, family: 4 | 6, vip: string): boolean {
    if (id === 0) return false;
    if (this.frontIndexGen !== this.generation || !this.frontIndex) {
      this.frontIndex = frontendIndex(this.tables.ir);
      this.frontIndexGen = this.generation;
    }
    const proto = this.u8[e + L.CT_PROTO], vport = this.dv.getUint16(e + L.CT_VPORT, true);
    const fid = this.frontIndex.get(proto)?.get(addrPortKey(this.u8, e + L.CT_VIP, family, vport));
    if (fid !== undefined && (fid === id || (this.tables.ir.frontends.get(fid)?.clusterFront ?? 0) === id)) return true;
    const own = this.tables.ir.frontends.get(id);
    return !!own && own.family === family && own.port === vport && PROTO_NUMBER[own.proto] === proto && canonicalAddr(own.addr) === vip;
  }
  private frontIndexGen = -1;
  private frontIndex: FrontendIndex | null = null;

  /** The id checks on the active set while the tables are an image no apply has rewritten yet
   * (TableWriter.fromImage), else null. Built once: nothing writes the tables until that apply. */
  private imageFlowIds(): SetFlowIds | null {
    if (!this.tables.fromImage) { this.imageIds = null; return null; }
    return (this.imageIds ??= new SetFlowIds(this, this.map.tableSets[this.cfg32(L.CFG_GEN) & 1]));
  }
  private imageIds: SetFlowIds | null = null;

  /** The masquerade source of `family`, or null when none is set (CFG_HAS_SNAT). */
  snatAddress(family: 4 | 6): string | null {
    return (this.cfg32(L.CFG_HAS_SNAT) & (family === 4 ? 1 : 2)) ? this.cfgAddr(family === 4 ? L.CFG_SNAT_V4 : L.CFG_SNAT_V6, family) : null;
  }

  /** The hairpin source of `family` (the node's own flows to itself), or null when none is set. */
  hairpinAddress(family: 4 | 6): string | null {
    return (this.cfg32(L.CFG_HAS_SNAT) & (family === 4 ? 4 : 8)) ? this.cfgAddr(family === 4 ? L.CFG_HAIRPIN_V4 : L.CFG_HAIRPIN_V6, family) : null;
  }

  /** Inserts one saved flow entry (CT_SIZE bytes in the layout's format, its times on the clock
   * of `now`; the core hashes its keys and sets CT_REPLY_HASH) through the core's own lookup,
   * allocator and index insert (assembly/ct-restore.ts). Given as bytes it is staged in packet
   * slot 0; given as an address (flowStage's view) it is read there. Never call it while a batch
   * is in flight. Returns the flow index, 0 = no free entry, -1 = a live flow owns one of its keys. */
  restoreFlowEntry(entry: Uint8Array | number, now: number): number {
    const at = typeof entry === 'number' ? entry : this.stageFlowEntry(entry);
    const r = this.exports.ct_restore(at, now >>> 0) >>> 0;
    return r === 0xffffffff ? -1 : r;
  }

  /** The staging area of restoreFlowEntry and recordedFront (packet slot 0, CT_SIZE bytes) as a
   * view into core memory: a restore that builds each entry there saves a copy per call. The view
   * holds while the memory does not grow (no core call a restore makes grows it); never while a
   * batch is in flight. */
  flowStage(): Uint8Array {
    const at = this.slotOffset(0);
    return this.u8.subarray(at, at + L.CT_SIZE);
  }

  /** Copies a flow entry (CT_SIZE bytes) into packet slot 0 for a core call that reads one there;
   * returns its address. Never while a batch is in flight: the worker makes these calls from its
   * control messages, between batches (src/daemon/worker.ts run: drainControl). */
  private stageFlowEntry(entry: Uint8Array): number {
    if (entry.length !== L.CT_SIZE) throw new RangeError(`a flow entry is ${L.CT_SIZE} bytes, got ${entry.length}`);
    const at = this.slotOffset(0);
    this.u8.set(entry, at);
    return at;
  }

  /** The frontend id the core records a flow like `entry` under (CT_SIZE bytes in the layout's
   * format, CT_CLIENT_PORT a current port index; or the address of an entry in core memory) when
   * the service map has frontend `front` for its (VIP, port, protocol): front's cluster front when
   * front short-circuits the flow's client (a pod's or the node's flow to an
   * externalTrafficPolicy Local frontend), else front — as assembly/pipeline.ts newFlow decides
   * it, on the tables in force (assembly/ct-restore.ts ctRecordedFront). Bytes that are a view
   * into core memory (flowStage's) are read where they are; other bytes are staged in packet slot
   * 0: never while a batch is in flight. */
  recordedFront(entry: Uint8Array | number, front: number): number {
    const at = typeof entry === 'number' ? entry : entry.buffer === this.u8.buffer ? entry.byteOffset : this.stageFlowEntry(entry);
    return this.exports.ct_recorded_front(at, front >>> 0) >>> 0;
  }

  private cfgAddr(off: number, family: 4 | 6): string {
    return formatAddr(this.u8, family, this.map.cfg + off);
  }
}

export type { Proto };
