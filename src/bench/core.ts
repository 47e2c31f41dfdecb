// Forwarding-core benchmark: Mpps of the Wasm core in this thread, for established flows and for
// new flows, with the reference model's established-flow rate as the plain-JS baseline.
//
// Method (what the numbers mean):
//   * An Ir of `services` ClusterIP UDP services x `endpoints` ready backends (Maglev tables from
//     src/compiler/maglev.ts) is written into a Core sized for it; conntrack capacity max(flows, 1M).
//   * One 60-byte IPv4/UDP frame per flow (64 bytes on the wire with the FCS), unique 5-tuple,
//     correct checksums, is pre-built IN WASM MEMORY (a region after the core's tables). A batch
//     is filled by copying frames from there into the packet slots (what a port's rxBurst does),
//     then process(batch) runs.
//   * established_mpps: every flow is created first (one pass), then batches of frames of random
//     existing flows. Only the process() calls are timed; the refill copy is timed separately and
//     reported as established_mpps_incl_refill (the core plus the host's copy).
//   * new_flow_mpps: a second frame set of unique tuples (up to the conntrack capacity, 1M by
//     default) sent once after a ct_flush(); every frame is a conntrack miss, a service lookup, a
//     Maglev pick and a flow insertion. Rounds repeat (flush untimed) until the time is used.
//   * reference_established_mpps: the same kind of frames through src/reference/model.ts (a short
//     run on up to 20k flows: its Maps are the bottleneck, not the table size).
//   * Every run checks its own result through the core's counters (forward / ct_hit / ct_new
//     deltas) and reports the fractions, so a broken run cannot pass as a fast one.
// Timing uses process.hrtime.bigint(); a measurement runs for ~seconds/3.
import { mulberry32 } from '../util/rng.js';
import * as L from '../../assembly/layout.js';
import { Core, type CoreOptions } from '../core/host.js';
import { describePages } from '../core/hugepages.js';
import type { Ir, IrBackend, IrFrontend } from '../ir/ir.js';
import { defaultMaglevSize, MAGLEV_SIZES } from '../ir/maglev-size.js';
import { maglevRangeWords } from '../core/maglev-range.js';
import { maglevTable } from '../compiler/maglev.js';
import { tableSetBytes, type TableCapacities } from '../core/table-writer.js';
import { ReferenceModel } from '../reference/model.js';
import { intToIp } from './peers/service-set.js';
import { CORE_BENCH_DEFAULTS as D } from './defaults.js';

export interface CoreBenchOptions {
  services?: number;         // default 1000
  endpoints?: number;        // per service, default 10
  flows?: number;            // distinct established flows, default 100_000
  seconds?: number;          // total measuring time, default 3 (each of the three tests ~1/3)
  batchSize?: number;        // frames per process() call, default 256
  slotSize?: number;         // packet slot bytes, default 2048 (as a real port would use)
  newFlowTable?: number;     // conntrack capacity for the new-flow test, default 1M (at least `flows`)
  hugePages?: boolean;       // table sets on transparent huge pages (default false, as in the daemon)
  onProgress?: (fraction: number) => void;
  /** accepted for the CLI's convenience; progress is reported through onProgress only */
  progress?: unknown;
}

export interface CoreBenchResult {
  established_mpps: number;
  established_mpps_incl_refill: number;
  new_flow_mpps: number;
  reference_established_mpps: number;
  speedup_vs_reference: number;
  cpu_share: number;                       // CPU time / wall time during the established test
  // Per CPU-second of this process over the whole phase loop: includes the JS refill of the slots,
  // progress and GC — comparable with *_incl_refill, not with the process()-only figures above.
  established_mpps_per_cpu: number;
  new_flow_mpps_per_cpu: number;
  reference_established_mpps_per_cpu: number;
  services: number;
  endpoints: number;
  flows: number;
  batch_size: number;
  slot_size: number;
  frame_bytes: number;
  maglev_size: number;
  ct_capacity: number;
  bytes_per_flow: number;
  bytes_per_service: number;
  table_set_bytes: number;
  wasm_memory_mb: number;
  /** how the core's memory was backed (huge pages advised, or why not) */
  core_memory_pages: string;
  established_frames: number;
  established_forwarded_fraction: number;
  established_ct_hit_fraction: number;
  new_flow_frames: number;
  new_flow_created_fraction: number;
  reference_frames: number;
  setup_ms: number;
}

export const FRAME_LEN = 60;   // 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload; 64 on the wire with the FCS
export const STRIDE = 64;
const MAX_TOTAL_BACKENDS = 4_000_000;

const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
// address plan: VIPs 10.96.0.0/12, backends 10.128.0.0/9, established clients 100.64.0.0/10,
// new-flow clients 172.16.0.0/12 — disjoint, so no client is ever mistaken for a backend
export const vipOf = (s: number) => (ip4(10, 96, 0, 0) + s) >>> 0;
const backendOf = (k: number) => (ip4(10, 128, 0, 0) + k) >>> 0;
export const estClientOf = (f: number) => (ip4(100, 64, 0, 0) + (f % 0x400000)) >>> 0;
const newClientOf = (i: number) => (ip4(172, 16, 0, 0) + (i % 0x100000)) >>> 0;


/** Maglev size: the compiler's default (>= 100 x endpoints) while all tables fit in 16M words,
 *  else the largest listed prime that does (never below 251). Reported in the result. */
export function maglevSizeFor(services: number, endpoints: number): number {
  const want = defaultMaglevSize(endpoints);
  if (services * want <= 16 * 1024 * 1024) return want;
  let m = MAGLEV_SIZES[0];
  for (const p of MAGLEV_SIZES) if (services * p <= 16 * 1024 * 1024 && p <= want) m = p;
  return m;
}

/** The bench Ir. All services share one Maglev permutation over "endpoint slot j" keys, mapped to
 *  each service's own backend ids: identical lookup work to per-service tables, built in O(M)
 *  instead of O(services x M) (100k services would otherwise take minutes to build). */
export function buildIr(services: number, endpoints: number, m: number): Ir {
  const pattern = maglevTable(Array.from({ length: endpoints }, (_, j) => j + 1), Array.from({ length: endpoints }, (_, j) => `slot-${j}`), m);
  const frontends = new Map<number, IrFrontend>();
  const backends = new Map<number, IrBackend>();
  for (let s = 0; s < services; s++) {
    const ids: number[] = [];
    for (let j = 0; j < endpoints; j++) {
      const id = s * endpoints + j + 1;
      ids.push(id);
      backends.set(id, {
        id, service: `bench/s${s}`, portName: '', addr: intToIp(backendOf(id - 1)), family: 4, port: 8080, state: L.BES_READY,
        outPort: 1, dstMac: '02:00:00:00:be:01', srcMac: '02:00:00:00:00:bb',
      });
    }
    const maglev = new Uint32Array(m);
    for (let k = 0; k < m; k++) maglev[k] = ids[pattern[k] - 1];
    frontends.set(s + 1, {
      id: s + 1, service: `bench/s${s}`, portName: '', kind: 'ClusterIP', addr: intToIp(vipOf(s)), family: 4,
      port: 53, proto: 'UDP', flags: 0, affinityTimeoutMs: 0, sourceRanges: [], backends: ids, maglev,
    });
  }
  return { frontends, backends, routes: [] };
}

function csum(u8: Uint8Array, start: number, end: number, initial: number): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return (~s) & 0xffff;
}

/** Writes a 60-byte IPv4/UDP frame with correct IPv4 and UDP checksums at u8[at]. */
export function writeFrame(u8: Uint8Array, at: number, src: number, dst: number, sport: number, dport: number): void {
  u8.fill(0, at, at + STRIDE);
  const mac = [0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0x0c, 0x01];
  for (let i = 0; i < 12; i++) u8[at + i] = mac[i];
  u8[at + 12] = 0x08; u8[at + 13] = 0x00;
  const ip = at + 14;
  u8[ip] = 0x45; u8[ip + 2] = 0; u8[ip + 3] = 46; u8[ip + 8] = 64; u8[ip + 9] = 17;
  for (let i = 0; i < 4; i++) { u8[ip + 12 + i] = (src >>> (24 - 8 * i)) & 255; u8[ip + 16 + i] = (dst >>> (24 - 8 * i)) & 255; }
  const ck = csum(u8, ip, ip + 20, 0);
  u8[ip + 10] = ck >> 8; u8[ip + 11] = ck & 255;
  const udp = ip + 20;
  u8[udp] = sport >> 8; u8[udp + 1] = sport & 255; u8[udp + 2] = dport >> 8; u8[udp + 3] = dport & 255;
  u8[udp + 4] = 0; u8[udp + 5] = 26;
  for (let i = 0; i < 18; i++) u8[udp + 8 + i] = (i * 13 + sport) & 255;
  const pseudo = ((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + 17 + 26);
  let uc = csum(u8, udp, udp + 26, pseudo);
  if (uc === 0) uc = 0xffff;
  u8[udp + 6] = uc >> 8; u8[udp + 7] = uc & 255;
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));
const cpuUs = (u: NodeJS.CpuUsage) => u.user + u.system;

export async function runCoreBench(opts: CoreBenchOptions = {}): Promise<CoreBenchResult> {
  const services = opts.services ?? D.services;
  const endpoints = opts.endpoints ?? D.endpoints;
  const flows = opts.flows ?? D.flows;
  const seconds = opts.seconds ?? D.seconds;
  const batch = opts.batchSize ?? D.batch;
  const slotSize = opts.slotSize ?? L.DEFAULT_SLOT_SIZE;
  const progress = opts.onProgress ?? (() => {});
  for (const [k, v, min] of [['services', services, 1], ['endpoints', endpoints, 1], ['flows', flows, 1], ['batchSize', batch, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${k} must be an integer >= ${min}, got ${v}`);
  }
  if (!(seconds > 0)) throw new RangeError(`seconds must be > 0, got ${seconds}`);
  if (services * endpoints > MAX_TOTAL_BACKENDS) {
    throw new RangeError(`services x endpoints = ${services * endpoints} backends exceeds what this benchmark places in memory (${MAX_TOTAL_BACKENDS})`);
  }
  if (flows > 16_000_000) throw new RangeError(`flows ${flows} exceeds 16M (the frames alone would need ${Math.round(flows * STRIDE / 1e6)} MB)`);
  const t0 = performance.now();
  const m = maglevSizeFor(services, endpoints);
  const ir = buildIr(services, endpoints, m);
  const ctCapacity = Math.max(flows, opts.newFlowTable ?? 1 << 20);
  const coreOpts: CoreOptions = {
    batchMax: batch, slotSize, flows: ctCapacity, hugePages: opts.hugePages ?? false,
    capacities: { frontends: services, backends: services * endpoints, maglevWords: services * m, cidrs: 16, routes: 16 },
    // nothing may expire while it is measured
    timeouts: { udpMs: 0x7fffffff, udpRepliedMs: 0x7fffffff },
  };
  // Wasm memory is at most 4 GiB: refuse points that cannot fit rather than fail half-way
  const pow2 = (n: number) => { let p = 1; while (p < n) p *= 2; return p; };
  const estimate = pow2(ctCapacity * 4) * L.CTI_SIZE + (ctCapacity + 1) * L.CT_SIZE +
    (flows + Math.min(ctCapacity, 1 << 20)) * STRIDE + 2 * tableSetBytes(coreOpts.capacities as TableCapacities) + batch * slotSize + 64 * 1048576;
  if (estimate > 3.9 * 1024 ** 3) {
    throw new RangeError(`services=${services} endpoints=${endpoints} flows=${flows} needs ~${Math.round(estimate / 1048576)} MiB of Wasm memory (max 4096)`);
  }
  const core = Core.create(coreOpts);
  core.applyIr(ir);
  progress(0.1);
  await yieldToLoop();

  // pre-built frames in Wasm memory: established flows, then new-flow tuples
  const newCount = Math.min(ctCapacity, 1 << 20);
  const estRegion = core.allocate(flows * STRIDE);
  const newRegion = core.allocate(newCount * STRIDE);
  {
    const u8 = core.u8;
    for (let f = 0; f < flows; f++) writeFrame(u8, estRegion + f * STRIDE, estClientOf(f), vipOf(f % services), 1024 + Math.floor(f / 0x400000), 53);
    for (let i = 0; i < newCount; i++) writeFrame(u8, newRegion + i * STRIDE, newClientOf(i), vipOf(i % services), 2048 + Math.floor(i / 0x100000), 53);
  }
  const memBuf = core.memory.buffer;
  const u32 = new Uint32Array(memBuf);
  const u16 = new Uint16Array(memBuf);
  for (let i = 0; i < batch; i++) u16[(core.descOffset(i) + L.D_IN_PORT) >>> 1] = 0;
  const arena = core.map.arena, desc = core.map.desc;
  // the refill a port's rxBurst would do: one 64-byte frame copied as 16 words, unrolled (2-3x
  // faster than a loop or copyWithin in V8), plus the descriptor length
  const fill = (i: number, src: number) => {
    const s = src >>> 2, d = (arena + i * slotSize) >>> 2;
    u32[d] = u32[s]; u32[d + 1] = u32[s + 1]; u32[d + 2] = u32[s + 2]; u32[d + 3] = u32[s + 3];
    u32[d + 4] = u32[s + 4]; u32[d + 5] = u32[s + 5]; u32[d + 6] = u32[s + 6]; u32[d + 7] = u32[s + 7];
    u32[d + 8] = u32[s + 8]; u32[d + 9] = u32[s + 9]; u32[d + 10] = u32[s + 10]; u32[d + 11] = u32[s + 11];
    u32[d + 12] = u32[s + 12]; u32[d + 13] = u32[s + 13]; u32[d + 14] = u32[s + 14]; u32[d + 15] = u32[s + 15];
    u16[(desc + i * L.DESC_SIZE + L.D_LEN) >>> 1] = FRAME_LEN;
  };
  const nowMs = () => (1000 + (performance.now() - t0)) >>> 0;

  // establish every flow (one pass, in order)
  for (let base = 0; base < flows; base += batch) {
    const n = Math.min(batch, flows - base);
    for (let i = 0; i < n; i++) fill(i, estRegion + (base + i) * STRIDE);
    core.process(n, nowMs());
    if ((base / batch) % 512 === 511) await yieldToLoop();
  }
  const setupMs = performance.now() - t0;
  progress(0.25);
  await yieldToLoop();

  // ---- established flows, random order
  const perm = new Uint32Array(flows);
  for (let i = 0; i < flows; i++) perm[i] = i;
  const rnd = mulberry32(42);
  for (let i = flows - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); const t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
  const phaseNs = BigInt(Math.round((seconds / 3) * 1e9));
  const before = core.counters().global;
  let estFrames = 0, estNs = 0n, pos = 0;
  const estCpu0 = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  let lastYield = wallStart;
  while (estNs < phaseNs) {
    for (let i = 0; i < batch; i++) {
      fill(i, estRegion + perm[pos] * STRIDE);
      if (++pos === flows) pos = 0;
    }
    const now = nowMs();
    const a = process.hrtime.bigint();
    core.process(batch, now);
    const b = process.hrtime.bigint();
    estNs += b - a;
    estFrames += batch;
    if (b - lastYield > 50_000_000n) { lastYield = b; progress(0.25 + 0.25 * Number(estNs) / Number(phaseNs)); await yieldToLoop(); }
  }
  const estWallNs = process.hrtime.bigint() - wallStart;
  const estCpuUs = cpuUs(process.cpuUsage(estCpu0));
  const after = core.counters().global;
  progress(0.5);

  // ---- reference model, established, on up to 20k flows
  const refFlows = Math.min(flows, 20_000);
  const model = new ReferenceModel(ir, { flows: Math.max(refFlows, 16), slotSize, timeouts: { udpMs: 0x7fffffff, udpRepliedMs: 0x7fffffff } });
  const refFrames: Uint8Array[] = [];
  for (let f = 0; f < refFlows; f++) refFrames.push(core.u8.slice(estRegion + f * STRIDE, estRegion + f * STRIDE + FRAME_LEN));
  for (let base = 0; base < refFlows; base += batch) model.processBatch(refFrames.slice(base, base + batch), nowMs());
  const refPhaseNs = BigInt(Math.round(Math.min(seconds / 3, 1.5) * 1e9));
  let refN = 0, refNs = 0n, rpos = 0;
  const refCpu0 = process.cpuUsage();
  const refBatch: Uint8Array[] = new Array(batch);
  while (refNs < refPhaseNs) {
    for (let i = 0; i < batch; i++) { refBatch[i] = refFrames[Math.floor(rnd() * refFlows)]; }
    const now = nowMs();
    const a = process.hrtime.bigint();
    model.processBatch(refBatch, now);
    refNs += process.hrtime.bigint() - a;
    refN += batch;
    rpos++;
    if (rpos % 16 === 0) { progress(0.5 + 0.15 * Number(refNs) / Number(refPhaseNs)); await yieldToLoop(); }
  }
  const refCpuUs = cpuUs(process.cpuUsage(refCpu0));
  progress(0.65);

  // ---- new flows: flush, then every frame a new tuple into the empty table
  let newFrames = 0, newNs = 0n, created = 0, newCpuUs = 0;
  while (newNs < phaseNs) {
    core.ctFlush();
    const c0 = core.counters().global.ct_new;
    const cpu0 = process.cpuUsage();
    for (let base = 0; base < newCount && newNs < phaseNs; base += batch) {
      const n = Math.min(batch, newCount - base);
      for (let i = 0; i < n; i++) fill(i, newRegion + (base + i) * STRIDE);
      const now = nowMs();
      const a = process.hrtime.bigint();
      core.process(n, now);
      newNs += process.hrtime.bigint() - a;
      newFrames += n;
      if ((base / batch) % 256 === 255) { progress(0.65 + 0.35 * Math.min(1, Number(newNs) / Number(phaseNs))); await yieldToLoop(); }
    }
    newCpuUs += cpuUs(process.cpuUsage(cpu0));
    created += core.counters().global.ct_new - c0;
  }
  progress(1);

  const caps = core.tables.caps;
  const svcSlots = (() => { let p = 1; while (p < Math.max(16, caps.frontends * 2)) p *= 2; return p; })();
  const mpps = (n: number, ns: bigint) => (ns > 0n ? Math.round((n / (Number(ns) / 1e9) / 1e6) * 1000) / 1000 : 0);
  const est = mpps(estFrames, estNs), ref = mpps(refN, refNs);
  const perCpu = (n: number, us: number) => (us > 0 ? Math.round((n / us) * 1000) / 1000 : 0);
  return {
    established_mpps: est,
    established_mpps_incl_refill: mpps(estFrames, estWallNs),
    new_flow_mpps: mpps(newFrames, newNs),
    reference_established_mpps: ref,
    speedup_vs_reference: ref > 0 ? Math.round((est / ref) * 10) / 10 : 0,
    // On a shared machine wall-clock rates understate: these divide by the CPU time this process
    // actually got (so they include the refill / new-flow frame copy and the loop around process()).
    cpu_share: Number(estWallNs) > 0 ? Math.round((estCpuUs * 1000 / Number(estWallNs)) * 100) / 100 : 0,
    established_mpps_per_cpu: perCpu(estFrames, estCpuUs),
    new_flow_mpps_per_cpu: perCpu(newFrames, newCpuUs),
    reference_established_mpps_per_cpu: perCpu(refN, refCpuUs),
    services, endpoints, flows,
    batch_size: batch,
    slot_size: slotSize,
    frame_bytes: FRAME_LEN + 4,
    maglev_size: m,
    ct_capacity: ctCapacity,
    // conntrack: one flow entry plus its share of the index (4 slots per flow, power of two)
    bytes_per_flow: Math.round((core.map.ctIndexSlots * L.CTI_SIZE + (core.map.ctFlowsMax + 1) * L.CT_SIZE) / core.map.ctFlowsMax),
    // one table set: frontend entry + its service-map slots + Maglev range + its backends
    bytes_per_service: Math.round(L.FE_SIZE + (svcSlots * L.SM_SIZE) / services + maglevRangeWords(m, endpoints) * 4 + endpoints * L.BE_SIZE),
    table_set_bytes: tableSetBytes(caps),
    wasm_memory_mb: Math.round(core.memory.buffer.byteLength / 1048576),
    core_memory_pages: describePages(core.hugePages),
    established_frames: estFrames,
    established_forwarded_fraction: Math.round(((after.forward - before.forward) / estFrames) * 1e4) / 1e4,
    established_ct_hit_fraction: Math.round(((after.ct_hit - before.ct_hit) / estFrames) * 1e4) / 1e4,
    new_flow_frames: newFrames,
    new_flow_created_fraction: Math.round((created / newFrames) * 1e4) / 1e4,
    reference_frames: refN,
    setup_ms: Math.round(setupMs),
  };
}
