#!/usr/bin/env node
// Standalone profiling harness for the Wasm forwarding core (build/core.wasm via dist/src/core/host.js).
//
// Unlike `wdp bench core` it isolates one phase at a time and can run a FIXED amount of work, so
// the same run can go under `valgrind --tool=callgrind` (instruction counts do not care about the
// load other engineers put on the machine) or `perf stat`. It prints ns/frame per phase and, for
// the new-flow phase, per fill decile of the conntrack table (a cost that grows with the fill
// level shows up there, where a single average would hide it).
//
//   node bench/profile-core.mjs [--services 100] [--endpoints 10] [--flows 100000]
//        [--ct 1048576] [--phase est|new|both] [--batches N] [--seconds 2] [--masq]
//
// --batches N: process exactly N batches per phase (deterministic work; for callgrind/perf).
// --seconds S: otherwise each phase runs for about S seconds of core time.
// --masq: services with FEF_MASQUERADE (every new flow allocates a SNAT port).
// Frames are 60-byte IPv4/UDP with correct checksums, refilled into the slots by the host before
// each process() call; only process() is timed.
import { Core } from '../dist/src/core/host.js';
import * as L from '../dist/assembly/layout.js';
import { buildMaglev, defaultMaglevSize } from '../dist/src/core/maglev.js';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const flag = (name) => args.includes(`--${name}`);
const services = Number(opt('services', 100));
const endpoints = Number(opt('endpoints', 10));
const flows = Number(opt('flows', 100_000));
const ct = Number(opt('ct', Math.max(flows, 1 << 20)));
const phase = opt('phase', 'both');
const fixedBatches = opt('batches', undefined) === undefined ? 0 : Number(opt('batches'));
const seconds = Number(opt('seconds', 2));
const masq = flag('masq');
const BATCH = 256, STRIDE = 64, FRAME_LEN = 60;

const ip4 = (a, b, c, d) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const ipStr = (v) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
const vipOf = (s) => (ip4(10, 96, 0, 0) + s) >>> 0;
const backendOf = (k) => (ip4(10, 128, 0, 0) + k) >>> 0;

function buildIr(m) {
  const pattern = buildMaglev(Array.from({ length: endpoints }, (_, j) => j + 1), Array.from({ length: endpoints }, (_, j) => `slot-${j}`), m);
  const frontends = new Map(), backends = new Map();
  for (let s = 0; s < services; s++) {
    const ids = [];
    for (let j = 0; j < endpoints; j++) {
      const id = s * endpoints + j + 1;
      ids.push(id);
      backends.set(id, { id, service: `p/s${s}`, addr: ipStr(backendOf(id - 1)), family: 4, port: 8080, state: L.BES_READY,
        outPort: 1, dstMac: '02:00:00:00:be:01', srcMac: '02:00:00:00:00:bb' });
    }
    const maglev = new Uint32Array(m);
    for (let k = 0; k < m; k++) maglev[k] = ids[pattern[k] - 1];
    frontends.set(s + 1, { id: s + 1, service: `p/s${s}`, portName: '', kind: 'ClusterIP', addr: ipStr(vipOf(s)), family: 4,
      port: 53, proto: 'UDP', flags: masq ? L.FEF_MASQUERADE : 0, affinityTimeoutMs: 0, sourceRanges: [], backends: ids, maglev });
  }
  return { frontends, backends, routes: [], snatV4: masq ? '192.168.255.1' : undefined };
}

function csum(u8, start, end, initial) {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return (~s) & 0xffff;
}

function writeFrame(u8, at, src, dst, sport, dport) {
  u8.fill(0, at, at + STRIDE);
  const mac = [0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0x0c, 0x01];
  for (let i = 0; i < 12; i++) u8[at + i] = mac[i];
  u8[at + 12] = 0x08;
  const ip = at + 14;
  u8[ip] = 0x45; u8[ip + 3] = 46; u8[ip + 8] = 64; u8[ip + 9] = 17;
  for (let i = 0; i < 4; i++) { u8[ip + 12 + i] = (src >>> (24 - 8 * i)) & 255; u8[ip + 16 + i] = (dst >>> (24 - 8 * i)) & 255; }
  const ck = csum(u8, ip, ip + 20, 0);
  u8[ip + 10] = ck >> 8; u8[ip + 11] = ck & 255;
  const udp = ip + 20;
  u8[udp] = sport >> 8; u8[udp + 1] = sport & 255; u8[udp + 2] = dport >> 8; u8[udp + 3] = dport & 255;
  u8[udp + 5] = 26;
  for (let i = 0; i < 18; i++) u8[udp + 8 + i] = (i * 13 + sport) & 255;
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + 17 + 26;
  let uc = csum(u8, udp, udp + 26, pseudo);
  if (uc === 0) uc = 0xffff;
  u8[udp + 6] = uc >> 8; u8[udp + 7] = uc & 255;
}

const t0 = performance.now();
const m = defaultMaglevSize(endpoints);
const core = Core.create({
  batchMax: BATCH, slotSize: 2048, flows: ct,
  capacities: { frontends: services, backends: services * endpoints, maglevWords: services * m, cidrs: 16, routes: 16 },
  timeouts: { udpMs: 0x7fffffff, udpRepliedMs: 0x7fffffff },
});
core.applyIr(buildIr(m));
const newCount = ct;
const estRegion = core.allocate(flows * STRIDE);
const newRegion = core.allocate(newCount * STRIDE);
{
  const u8 = core.u8;
  for (let f = 0; f < flows; f++) writeFrame(u8, estRegion + f * STRIDE, (ip4(100, 64, 0, 0) + f) >>> 0, vipOf(f % services), 1024, 53);
  for (let i = 0; i < newCount; i++) writeFrame(u8, newRegion + i * STRIDE, (ip4(172, 16, 0, 0) + (i & 0xfffff)) >>> 0, vipOf(i % services), 2048 + (i >>> 20), 53);
}
const u32 = new Uint32Array(core.memory.buffer);
const dv = new DataView(core.memory.buffer);
for (let i = 0; i < BATCH; i++) dv.setUint16(core.descOffset(i) + L.D_IN_PORT, 0, true);
const fill = (i, src) => {
  let s = src >>> 2, d = core.slotOffset(i) >>> 2;
  for (let k = 0; k < 16; k++) u32[d++] = u32[s++];
  dv.setUint16(core.descOffset(i) + L.D_LEN, FRAME_LEN, true);
};
const now = () => (1000 + (performance.now() - t0)) >>> 0;
const g = () => core.counters().global;
const report = {};

// establish
for (let base = 0; base < flows; base += BATCH) {
  const n = Math.min(BATCH, flows - base);
  for (let i = 0; i < n; i++) fill(i, estRegion + (base + i) * STRIDE);
  core.process(n, now());
}
report.setup_ms = Math.round(performance.now() - t0);

if (phase === 'est' || phase === 'both') {
  const perm = new Uint32Array(flows);
  for (let i = 0; i < flows; i++) perm[i] = i;
  let a = 42;
  const rnd = () => { a = (a * 1103515245 + 12345) >>> 0; return a / 4294967296; };
  for (let i = flows - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); const t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
  const before = g();
  let frames = 0, ns = 0n, pos = 0, batches = 0;
  const limitNs = BigInt(Math.round(seconds * 1e9));
  while (fixedBatches ? batches < fixedBatches : ns < limitNs) {
    for (let i = 0; i < BATCH; i++) { fill(i, estRegion + perm[pos] * STRIDE); if (++pos === flows) pos = 0; }
    const tn = now();
    const t1 = process.hrtime.bigint();
    core.process(BATCH, tn);
    ns += process.hrtime.bigint() - t1;
    frames += BATCH; batches++;
  }
  const after = g();
  report.est = { frames, ns_per_frame: +(Number(ns) / frames).toFixed(1), mpps: +(frames / Number(ns) * 1e3).toFixed(3),
    hit_fraction: (after.ct_hit - before.ct_hit) / frames };
}

if (phase === 'new' || phase === 'both') {
  core.ctFlush();
  const c0 = g().ct_new;
  const deciles = new Array(10).fill(0).map(() => ({ frames: 0, ns: 0n }));
  let frames = 0, ns = 0n, batches = 0;
  const limitNs = BigInt(Math.round(seconds * 1e9));
  for (let base = 0; base < newCount; base += BATCH) {
    if (fixedBatches ? batches >= fixedBatches : ns >= limitNs) break;
    const n = Math.min(BATCH, newCount - base);
    for (let i = 0; i < n; i++) fill(i, newRegion + (base + i) * STRIDE);
    const tn = now();
    const t1 = process.hrtime.bigint();
    core.process(n, tn);
    const dt = process.hrtime.bigint() - t1;
    ns += dt; frames += n; batches++;
    const d = deciles[Math.min(9, Math.floor(base / newCount * 10))];
    d.frames += n; d.ns += dt;
  }
  report.new = { frames, ns_per_frame: +(Number(ns) / frames).toFixed(1), mpps: +(frames / Number(ns) * 1e3).toFixed(3),
    created_fraction: (g().ct_new - c0) / frames,
    ns_per_frame_by_fill_decile: deciles.filter((d) => d.frames).map((d) => +(Number(d.ns) / d.frames).toFixed(1)) };
}
report.args = { services, endpoints, flows, ct, masq };
console.log(JSON.stringify(report));
