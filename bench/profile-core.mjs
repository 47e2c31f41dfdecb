#!/usr/bin/env node
// Standalone profiling harness for the Wasm forwarding core (build/core.wasm via dist/src/core/host.js).
//
// Unlike `wdp bench core` it isolates one phase at a time, can run a FIXED amount of work, can
// compare two builds batch by batch in one process (--ab) and can sample per-function cost with
// perf (--cycles), which is what made measuring possible on a machine with load 16 on 2 cores.
// It prints total and median-of-batches ns/frame per phase and, for the new-flow phase, ns/frame
// per fill decile of the conntrack table (a cost growing with the fill level shows up there).
//
//   node bench/profile-core.mjs [--services 100] [--endpoints 10] [--flows 100000]
//        [--ct 1048576] [--phase est|new|both|kept|reject|routed] [--reject-clients N] [--batches N] [--seconds 2] [--masq] [--wasm path]
//        [--ab other.wasm] [--cycles] [--neighbours 110] [--node-routes 100] [--replies] [--local] [--affinity]
//
// --batches N: process exactly N batches per phase (deterministic work).
// --ab other.wasm: also measure another build, alternating batches (same load for both).
// --cycles [--event E]: perf-sampled cost per frame inside the core's Wasm functions, by function
//   (cycles, or on-CPU ns where perf falls back to cpu-clock; see below).
// --seconds S: otherwise each phase runs for about S seconds of core time (of the first build).
// --ct N: conntrack capacity (default max(flows, 1M), as `wdp bench core`); the new-flow phase
//   sends N unique tuples at most.
// --masq: services with FEF_MASQUERADE (every new flow allocates a SNAT port).
// --affinity: services with sessionAffinity ClientIP (3 h): every new flow looks up its client's
//   entry (the new-flow phase's clients are all new: a miss and an insert) and every established
//   one is a flow hit, as without it.
// --replies: the established (or kept) phase sends the flows' replies (backend -> client) instead
//   of their client packets.
// --phase reject: the established phase's frames once every Service has lost its endpoints and
//   the flows are flushed: every frame is a reject (answered, or over the reject rate limit);
//   --reject-clients N: from N client addresses (default: one per flow).
// --phase routed: the established phase's frames sent to 172.16.x.y instead, no service and no
//   flow: every frame takes the no-service path's route (one /12 route, plus --local's entries).
// --local: the node's local-traffic detector entries in the tables (a pod CIDR, four node addresses).
// --phase kept: the established flows once every backend left (the Services keep their ports
//   without endpoints: the UDP flows keep their addresses, docs/core.md "Original-direction hit"
//   step 1), so every frame takes the route to its flow's own address (stale.ts keptRoute). The
//   route table is a node's: --neighbours host routes (its pods; none of them a backend) before
//   --node-routes /24s (one per node's pod CIDR, in a shuffled order; the backends' are among
//   them), as the compiler writes them (longest prefix first).
// Frames are 60-byte IPv4/UDP with correct checksums, refilled into the slots by the host before
// each process() call; only process() is timed.
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { Core } from '../dist/src/core/host.js';
import * as L from '../dist/assembly/layout.js';
import { defaultMaglevSize } from '../dist/src/ir/maglev-size.js';
import { maglevTable } from '../dist/src/compiler/maglev.js';
import { intToIp } from '../dist/src/bench/peers/service-set.js';
import { ipv4Value } from '../dist/src/util/addr.js';

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
const affinity = flag('affinity');
const replies = flag('replies');
const neighbours = Number(opt('neighbours', 110));
const nodeRoutes = Math.max(Number(opt('node-routes', 100)), Math.ceil(services * endpoints / 256));
const rejectClients = Math.max(1, Math.min(flows, Number(opt('reject-clients', flows))));
const wasmPath = opt('wasm', undefined);   // A/B: compare another build of the core in the same conditions
// --local: the local-traffic detector's entries a node has (a pod CIDR holding the clients, the
// node's and masquerade addresses), which the "node at one end" test of new flows and routed
// frames (assembly/node-addr.ts) looks at.
const LOCAL = flag('local') ? [{ prefix: '100.64.0.0/10', outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'pod' },
  ...['192.168.255.1/32', '192.168.255.2/32', '198.51.100.7/32', 'fd00::1/128'].map((prefix) => ({ prefix, outPort: 0xffff, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'node' }))] : [];
const BATCH = 256, STRIDE = 64, FRAME_LEN = 60;

// --cycles: on-CPU time per frame inside the core's Wasm functions, by function, from
// `perf record` samples taken only while the measured phase runs (perf's control fifo). perf asks
// for cycles:u; where the PMU has no cycle counter (this VM) perf falls back to cpu-clock and the
// unit is nanoseconds of on-CPU time (reported as "unit"). Either way it does not grow when the
// scheduler takes the CPU away, but on a VM it still includes time stolen by the hypervisor.
if (flag('cycles')) {
  const me = new URL(import.meta.url).pathname;
  const rest = args.filter((a) => a !== '--cycles');
  // --event: another perf event (e.g. instructions:u where the PMU has it; this VM's does not)
  const event = opt('event', 'cycles:u');
  const wasm = wasmPath ?? new URL('../build/core.wasm', import.meta.url).pathname;
  const watPath = wasm.replace(/\.wasm$/, '.wat');
  const names = existsSync(watPath)
    ? [...readFileSync(watPath, 'utf8').matchAll(/^ \(func \$(\S+)/gm)].map((x) => x[1]) : [];
  const notPacketPath = /init|flush|crcInit|heap_base|config_ptr|expire_all|ct_active/i;
  const tag = `/tmp/wdp-profile-${process.pid}`;
  const data = `${tag}.perf`, ctl = `${tag}.ctl`, ack = `${tag}.ack`;
  try {
    for (const f of [ctl, ack]) if (spawnSync('mkfifo', [f]).status !== 0) throw new Error('mkfifo failed');
    const r = spawnSync('perf', ['record', '-q', '-e', event, '-c', '100003', '-D', '-1', '--control', `fifo:${ctl},${ack}`,
      '-o', data, '--', process.execPath, '--perf-basic-prof', me, ...rest],
      { encoding: 'utf8', env: { ...process.env, WDP_PERF_CTL: ctl, WDP_PERF_ACK: ack } });
    if (r.status !== 0) throw new Error(`perf record failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    const hdr = spawnSync('perf', ['report', '-i', data, '--stdio', '--header-only'], { encoding: 'utf8' }).stdout;
    const unit = /name = cpu-clock/.test(hdr) ? 'ns_on_cpu' : /name = cycles/.test(hdr) ? 'cycles' : event;
    const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '-g', 'none', '--sort', 'sym', '-F', 'sample,sym'], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const frames = (out.est?.frames ?? 0) + (out.new?.frames ?? 0) + (out.kept?.frames ?? 0) + (out.reject?.frames ?? 0);
    const fns = {};
    let total = 0;
    for (const x of rep.stdout.matchAll(/^\s*(\d+)\s+\[\.\] JS:wasm-function\[(\d+)\]/gm)) {
      const name = (names[Number(x[2])] ?? `f${x[2]}`).replace(/^.*assembly\//, '');
      if (notPacketPath.test(name)) continue;
      const v = Number(x[1]) * 100003 / frames;
      total += v;
      fns[name] = Math.round((fns[name] ?? 0) + v);
    }
    console.log(JSON.stringify({ phase, unit, per_frame: Math.round(total), by_function: fns, frames, wall: out, args: { services, endpoints, flows, ct, masq, wasm } }));
  } finally {
    for (const f of [data, ctl, ack]) rmSync(f, { force: true });
    // --perf-basic-prof leaves /tmp/perf-<pid>.map behind; drop the ones this script produced
    for (const f of readdirSync('/tmp')) {
      if (!/^perf-\d+\.map$/.test(f)) continue;
      try { if (readFileSync(`/tmp/${f}`, 'utf8').includes(me)) rmSync(`/tmp/${f}`, { force: true }); } catch { /* gone */ }
    }
  }
  process.exit(0);
}

// perf control (set by --cycles): count only while a phase runs
const perfCtl = process.env.WDP_PERF_CTL ? openSync(process.env.WDP_PERF_CTL, 'w') : -1;
const perfAck = process.env.WDP_PERF_ACK ? openSync(process.env.WDP_PERF_ACK, 'r') : -1;
const perf = (cmd) => {
  if (perfCtl < 0) return;
  writeSync(perfCtl, `${cmd}\n`);
  readSync(perfAck, Buffer.alloc(8));
};

const ip4 = (a, b, c, d) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const vipOf = (s) => (ip4(10, 96, 0, 0) + s) >>> 0;
const backendOf = (k) => (ip4(10, 128, 0, 0) + k) >>> 0;

/** services x endpoints UDP ClusterIP services sharing one Maglev pattern (built once). */
function buildIr(m) {
  const pattern = maglevTable(Array.from({ length: endpoints }, (_, j) => j + 1), Array.from({ length: endpoints }, (_, j) => `slot-${j}`), m);
  const frontends = new Map(), backends = new Map();
  for (let s = 0; s < services; s++) {
    const ids = [];
    for (let j = 0; j < endpoints; j++) {
      const id = s * endpoints + j + 1;
      ids.push(id);
      backends.set(id, { id, service: `p/s${s}`, addr: intToIp(backendOf(id - 1)), family: 4, port: 8080, state: L.BES_READY,
        outPort: 1, dstMac: '02:00:00:00:be:01', srcMac: '02:00:00:00:00:bb' });
    }
    const maglev = new Uint32Array(m);
    for (let k = 0; k < m; k++) maglev[k] = ids[pattern[k] - 1];
    frontends.set(s + 1, { id: s + 1, service: `p/s${s}`, portName: '', kind: 'ClusterIP', addr: intToIp(vipOf(s)), family: 4,
      port: 53, proto: 'UDP', flags: (masq ? L.FEF_MASQUERADE : 0) | (affinity ? L.FEF_AFFINITY : 0), affinityTimeoutMs: affinity ? 10_800_000 : 0, sourceRanges: [], backends: ids, maglev });
  }
  return { frontends, backends, routes: [...LOCAL], snatV4: masq ? '192.168.255.1' : undefined };
}

/** `ir` once every backend left (the frontends keep their ports without endpoints), with a node's
 * route table: host routes of its pods (10.200.x.y, no backend among them), then one /24 per
 * node (10.128.0.0/24 + i), shuffled; backend k (10.128.0.0 + k) is in node route k >> 8. */
function keptIr(base) {
  const mac = { dstMac: '02:00:00:00:be:02', srcMac: '02:00:00:00:00:bb' };
  const routes = [];
  for (let i = 0; i < neighbours; i++) routes.push({ prefix: `${intToIp((ip4(10, 200, 0, 0) + i) >>> 0)}/32`, outPort: 1, ...mac });
  const order = Array.from({ length: nodeRoutes }, (_, i) => i);
  let a = 7;
  for (let i = order.length - 1; i > 0; i--) { a = (a * 1103515245 + 12345) >>> 0; const j = a % (i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  for (const i of order) routes.push({ prefix: `${intToIp((ip4(10, 128, 0, 0) + i * 256) >>> 0)}/24`, outPort: 1, ...mac });
  const frontends = new Map();
  for (const [id, f] of base.frontends) frontends.set(id, { ...f, backends: [], maglev: new Uint32Array(0) });
  return { frontends, backends: new Map(), routes, snatV4: base.snatV4 };
}

function csum(u8, start, end, initial) {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return (~s) & 0xffff;
}

/** 60-byte IPv4/UDP frame with correct IPv4 and UDP checksums at u8[at]. */
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
const ir = buildIr(m);
const newCount = ct;
// Median of per-batch ns/frame: a batch (~50-300 us) is much shorter than a scheduler time slice,
// so on a loaded machine most batches run undisturbed and the median ignores the preempted ones.
const median = (xs) => { const a = Float64Array.from(xs).sort(); return a.length ? +a[a.length >> 1].toFixed(1) : 0; };
const now = () => (1000 + (performance.now() - t0)) >>> 0;

/** One core (one build) with its frames in its own memory, flows established. */
function setup(path) {
  const core = Core.create({
    batchMax: BATCH, slotSize: 2048, flows: ct, wasmPath: path,
    capacities: { frontends: services, backends: services * endpoints, maglevWords: services * m, cidrs: 16, routes: neighbours + nodeRoutes + 16 },
    timeouts: { udpMs: 0x7fffffff, udpRepliedMs: 0x7fffffff },
  });
  core.applyIr(ir);
  const estRegion = core.allocate(flows * STRIDE);
  const newRegion = core.allocate(newCount * STRIDE);
  const u8 = core.u8;
  for (let f = 0; f < flows; f++) writeFrame(u8, estRegion + f * STRIDE, (ip4(100, 64, 0, 0) + f) >>> 0, vipOf(f % services), 1024, 53);
  for (let i = 0; i < newCount; i++) writeFrame(u8, newRegion + i * STRIDE, (ip4(172, 16, 0, 0) + (i & 0xfffff)) >>> 0, vipOf(i % services), 2048 + (i >>> 20), 53);
  const u32 = new Uint32Array(core.memory.buffer);
  const dv = new DataView(core.memory.buffer);
  for (let i = 0; i < BATCH; i++) dv.setUint16(core.descOffset(i) + L.D_IN_PORT, 0, true);
  const fill = (i, src) => {
    let s = src >>> 2, d = core.slotOffset(i) >>> 2;
    for (let k = 0; k < 16; k++) u32[d++] = u32[s++];
    dv.setUint16(core.descOffset(i) + L.D_LEN, FRAME_LEN, true);
  };
  for (let base = 0; base < flows; base += BATCH) {
    const n = Math.min(BATCH, flows - base);
    for (let i = 0; i < n; i++) fill(i, estRegion + (base + i) * STRIDE);
    core.process(n, now());
  }
  if (replies) { // each flow's reply (backend -> client, or -> the SNAT address and port) in its place
    for (const fl of core.flows({ includeExpired: true })) {
      const f = (ipv4Value(fl.client) - ip4(100, 64, 0, 0)) >>> 0;
      writeFrame(u8, estRegion + f * STRIDE, ipv4Value(fl.backend), ipv4Value(fl.natSource ?? fl.client), fl.backendPort, fl.natSourcePort ?? fl.clientPort);
    }
  }
  return { core, fill, estRegion, newRegion, g: () => core.counters().global, path: path ?? 'build/core.wasm' };
}

// --ab other.wasm: a second build, measured batch by batch alternately with the first, so both
// see the same machine load; its results are reported under "b".
const abPath = opt('ab', undefined);
const cores = [setup(wasmPath)];
if (abPath) cores.push(setup(abPath));
const report = { setup_ms: Math.round(performance.now() - t0) };
const stats = () => cores.map(() => ({ frames: 0, ns: 0n, perBatch: [], deciles: new Array(10).fill(0).map(() => ({ frames: 0, ns: 0n })) }));
const timed = (c, st, n) => {
  const tn = now();
  const t1 = process.hrtime.bigint();
  c.core.process(n, tn);
  const dt = process.hrtime.bigint() - t1;
  st.ns += dt; st.frames += n; st.perBatch.push(Number(dt) / n);
  return dt;
};
const summary = (st) => ({ frames: st.frames, ns_per_frame: +(Number(st.ns) / st.frames).toFixed(1),
  mpps: +(st.frames / Number(st.ns) * 1e3).toFixed(3), median_ns_per_frame: median(st.perBatch),
  median_mpps: +(1e3 / median(st.perBatch)).toFixed(3) });
const limitNs = BigInt(Math.round(seconds * 1e9));

if (phase === 'kept') for (const c of cores) c.core.applyIr(keptIr(ir));
if (phase === 'routed') {
  for (const c of cores) {
    c.core.ctFlush();
    c.core.applyIr({ ...ir, routes: [{ prefix: '172.16.0.0/12', outPort: 1, dstMac: '02:00:00:00:be:02', srcMac: '02:00:00:00:00:bb' }, ...LOCAL] });
    const u8 = c.core.u8;
    for (let f = 0; f < flows; f++) writeFrame(u8, c.estRegion + f * STRIDE, (ip4(100, 64, 0, 0) + f) >>> 0, (ip4(172, 16, 0, 0) + f) >>> 0, 1024, 53);
  }
}
if (phase === 'reject') {
  for (const c of cores) {
    c.core.ctFlush();
    c.core.applyIr(keptIr(ir));
    const u8 = c.core.u8;
    for (let f = 0; f < flows; f++) writeFrame(u8, c.estRegion + f * STRIDE, (ip4(100, 64, 0, 0) + (f % rejectClients)) >>> 0, vipOf(f % services), 1024 + (f >>> 16), 53);
  }
}

if (phase === 'est' || phase === 'both' || phase === 'kept' || phase === 'reject' || phase === 'routed') {
  const perm = new Uint32Array(flows);
  for (let i = 0; i < flows; i++) perm[i] = i;
  let a = 42;
  const rnd = () => { a = (a * 1103515245 + 12345) >>> 0; return a / 4294967296; };
  for (let i = flows - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); const t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
  const before = cores.map((c) => c.g());
  const st = stats();
  let pos = 0, batches = 0;
  perf('enable');
  while (fixedBatches ? batches < fixedBatches : st[0].ns < limitNs) {
    cores.forEach((c, ci) => {
      for (let i = 0; i < BATCH; i++) c.fill(i, c.estRegion + perm[(pos + i) % flows] * STRIDE);
      timed(c, st[ci], BATCH);
    });
    pos = (pos + BATCH) % flows;
    batches++;
  }
  perf('disable');
  const res = cores.map((c, ci) => ({ ...summary(st[ci]), hit_fraction: (c.g().ct_hit - before[ci].ct_hit) / st[ci].frames,
    forward_fraction: (c.g().forward - before[ci].forward) / st[ci].frames,
    ...(phase === 'reject' ? { reject_fraction: (c.g().reject - before[ci].reject) / st[ci].frames } : {}) }));
  const name = phase === 'kept' || phase === 'reject' || phase === 'routed' ? phase : 'est';
  report[name] = res[0];
  if (abPath) report[`${name}_b`] = res[1];
}

if (phase === 'new' || phase === 'both') {
  const c0 = cores.map((c) => { c.core.ctFlush(); return c.g().ct_new; });
  const st = stats();
  let batches = 0;
  perf('enable');
  for (let base = 0; base < newCount; base += BATCH) {
    if (fixedBatches ? batches >= fixedBatches : st[0].ns >= limitNs) break;
    const n = Math.min(BATCH, newCount - base);
    cores.forEach((c, ci) => {
      for (let i = 0; i < n; i++) c.fill(i, c.newRegion + (base + i) * STRIDE);
      const dt = timed(c, st[ci], n);
      const d = st[ci].deciles[Math.min(9, Math.floor(base / newCount * 10))];
      d.frames += n; d.ns += dt;
    });
    batches++;
  }
  perf('disable');
  const res = cores.map((c, ci) => ({ ...summary(st[ci]), created_fraction: (c.g().ct_new - c0[ci]) / st[ci].frames,
    ns_per_frame_by_fill_decile: st[ci].deciles.filter((d) => d.frames).map((d) => +(Number(d.ns) / d.frames).toFixed(1)) }));
  report.new = res[0];
  if (abPath) report.new_b = res[1];
}
report.args = { services, endpoints, flows, ct, masq, affinity, replies, wasm: cores[0].path, ab: abPath, ...(phase === 'kept' ? { neighbours, nodeRoutes } : {}), ...(phase === 'reject' ? { rejectClients } : {}) };
console.log(JSON.stringify(report));
