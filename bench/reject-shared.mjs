// The reject path with several workers sharing the node's reject rate limit block
// (src/core/shared-reject-limit.ts): threads, each with its own core, flood refused UDP datagrams
// (a ClusterIP port without endpoints) through process() at once for --seconds, on the real clock
// (the buckets refill as the kernel's do). Per thread: ns of process() per refused datagram,
// answers, drops (drop_reject_rate_limited), and how often a decision found the block's lock held
// (another worker deciding) and how often it gave up after the spin (not answered).
//   node bench/reject-shared.mjs [--threads 2] [--clients 256|1] [--own] [--seconds 3] [--wasm build/core.wasm]
// --own: each core keeps its own buckets (no shared block: what sharing costs is the difference).
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { rejectLimitBuffer } from '../dist/src/core/shared-reject-limit.js';
import { irFrom } from '../test/lib/ir-fixture.js';
import { frame } from '../dist/src/packet/build.js';

const N = 256;
const VIP = '10.96.0.10';

if (isMainThread) {
  const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i < 0 ? d : process.argv[i + 1]; };
  const threads = Number(arg('threads', 2)), clients = Number(arg('clients', 256)), seconds = Number(arg('seconds', 3));
  const wasmPath = arg('wasm', new URL('../build/core.wasm', import.meta.url).pathname);
  const own = process.argv.includes('--own');
  const buffer = own ? undefined : rejectLimitBuffer();
  const go = new SharedArrayBuffer(8);
  const results = await Promise.all(Array.from({ length: threads }, (_, t) => new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { t, threads, clients, seconds, wasmPath, buffer, go } });
    w.on('message', resolve); w.on('error', reject);
  })));
  const sum = (k) => results.reduce((a, r) => a + r[k], 0);
  console.log(JSON.stringify({ threads, clients, shared: !own, seconds, wasm: wasmPath,
    ns_per_refused: +(sum('ns') / sum('frames')).toFixed(1), frames: sum('frames'), answered: sum('answered'), limited: sum('limited'),
    // the node's limit over the decisions' span (own buckets: each core's)
    limit: (own ? threads : 1) * (L.RL_GLOBAL_BURST + Math.ceil(Math.max(...results.map((r) => r.last)) - Math.min(...results.map((r) => r.first))) + 1),
    decisions_contended: sum('contended'), gave_up: sum('gaveUp'), contended_fraction: +(sum('contended') / sum('frames')).toFixed(5),
    per_thread: results.map((r) => ({ ns_per_refused: +(r.ns / r.frames).toFixed(1), frames: r.frames, contended: r.contended, gave_up: r.gaveUp })) }));
} else {
  const { t, threads, clients, seconds, wasmPath, buffer, go } = workerData;
  const core = Core.create({ wasmPath, batchMax: N, flows: 4096, ...(buffer ? { rejectLimit: { buffer } } : {}) });
  core.applyIr(irFrom({
    frontends: [{ id: 1, addr: VIP, port: 53, proto: 'UDP', backends: [] }], backends: [],
    routes: [{ prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true }],
  }));
  // each thread its own clients (a fanout places a client's frames on one worker), or all one client
  const frames = Array.from({ length: N }, (_, i) => {
    const c = clients === 1 ? 0 : (t * N + i) % (clients * threads);
    return frame({ src: `10.0.${c >> 7}.${(c & 127) + 1}`, dst: VIP, proto: 'UDP', sport: 40000 + i, dport: 53, payload: 'q' });
  });
  const flag = new Int32Array(go);
  Atomics.add(flag, 0, 1);
  while (Atomics.load(flag, 0) < threads) { /* every thread ready: start together */ }
  let ns = 0, n = 0, answered = 0, limited = 0, first = -1, last = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    frames.forEach((f, i) => core.writeFrame(i, f, 0));
    const t0 = process.hrtime.bigint();
    const now = core.now();
    if (first < 0) first = performance.timeOrigin + performance.now();
    last = performance.timeOrigin + performance.now();
    core.process(N, now);
    ns += Number(process.hrtime.bigint() - t0);
    n += N;
    for (let i = 0; i < N; i++) { const d = core.descriptor(i); if (d.verdict === L.V_REJECT) answered++; else if (d.reason === L.REASON_DROP_REJECT_RATE_LIMITED) limited++; }
  }
  const share = core['rejectShare'];   // the core's SharedRejectLimit (its counts)
  parentPort.postMessage({ ns, frames: n, answered, limited, first, last, contended: share?.contended ?? 0, gaveUp: share?.gaveUp ?? 0 });
}
