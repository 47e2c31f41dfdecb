// One thread of `wdp bench core --workers N` (src/bench/core-workers.ts): a core of its own, the
// steering rings shared with the other threads, and a share of the flows' frames as a port in a
// PACKET_FANOUT group would deliver them. Established UDP flows only: the rate of the steady
// state, hand-off included.
import { workerData, parentPort } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import * as L from '../../assembly/layout.js';
import { Core } from '../core/host.js';
import { Steering, type SteerPlan } from '../daemon/steering.js';
import { mulberry32 } from '../util/rng.js';
import { buildIr, maglevSizeFor, writeFrame, vipOf, estClientOf, STRIDE, FRAME_LEN } from './core.js';

export interface CoreWorkerJob {
  self: number; workers: number; services: number; endpoints: number; flows: number; batch: number; seconds: number;
  /** how the frames are shared: 'fanout' = by flow number (independent of the owner: the kernel's
   * hash), 'owner' = each thread gets exactly the flows it owns (nothing to hand over) */
  split: 'fanout' | 'owner';
  rings?: SteerPlan['rings'];
  ctl: SharedArrayBuffer;      // Int32: [0] threads done establishing, [1] go
}

export interface CoreWorkerResult {
  self: number; processed: number; ns: number; cpuNs: number; forwarded: number; ctHit: number; ctNew: number;
  handedOff: number; received: number; ringFull: number; ownFrames: number;
}

const job = workerData as CoreWorkerJob;
/** This thread's time on a CPU in ns (the scheduler's own account, /proc/thread-self/schedstat):
 * on a machine busy with other work the wall time says little about what the core costs. */
const cpuNs = (): number => { try { return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]); } catch { return NaN; } };
const ctl = new Int32Array(job.ctl);
const m = maglevSizeFor(job.services, job.endpoints);
const core = Core.create({
  batchMax: job.batch, flows: Math.max(job.flows, 1024),
  capacities: { frontends: job.services, backends: job.services * job.endpoints, maglevWords: job.services * m, cidrs: 16, routes: 16 },
  timeouts: { udpMs: 0x7fffffff, udpRepliedMs: 0x7fffffff },
  ...(job.workers > 1 ? { steer: { workers: job.workers, self: job.self } } : {}),
});
core.applyIr(buildIr(job.services, job.endpoints, m));
const steering = job.rings ? new Steering(core, { workers: job.workers, self: job.self, rings: job.rings, slotSize: core.slotSize }) : undefined;

// every flow's frame, then this thread's share
const region = core.allocate(job.flows * STRIDE);
for (let f = 0; f < job.flows; f++) writeFrame(core.u8, region + f * STRIDE, estClientOf(f), vipOf(f % job.services), 1024 + Math.floor(f / 0x400000), 53);
const u32 = new Uint32Array(core.memory.buffer);
const u16 = new Uint16Array(core.memory.buffer);
const arena = core.map.arena, desc = core.map.desc, slot = core.slotSize;
const fill = (i: number, src: number) => {
  const s = src >>> 2, d = (arena + i * slot) >>> 2;
  for (let k = 0; k < 16; k++) u32[d + k] = u32[s + k];
  u16[(desc + i * L.DESC_SIZE + L.D_LEN) >>> 1] = FRAME_LEN;
  u16[(desc + i * L.DESC_SIZE + L.D_IN_PORT) >>> 1] = 0;
};
const own: number[] = [];
for (let f = 0; f < job.flows; f++) {
  if (job.split === 'fanout') { if (f % job.workers === job.self) own.push(f); continue; }
  fill(0, region + f * STRIDE);
  if (job.workers === 1 || core.steer(0, 1) === 0) own.push(f);
}
const t0 = performance.now();
const nowMs = () => (1000 + (performance.now() - t0)) >>> 0;

/** One round: what the others handed over, then `take` of this thread's frames; returns frames processed. */
function round(next: () => number, take: number): number {
  let n = steering ? steering.receive(job.batch) : 0;
  const first = n;
  for (let k = 0; k < take && n < job.batch; k++) fill(n++, region + next() * STRIDE);
  if (steering) n = steering.dispatch(first, n);
  if (n > 0) core.process(n, nowMs());
  return n;
}

// establish every flow (its owner creates it), then drain until every thread has
// A generator inside the thread is infinitely fast: while a peer lags (descheduled on a busy
// machine) it would only fill that peer's ring to drop frames. Like a NIC paced by the wire, it
// waits instead (off the CPU: the peer may need this one), and takes what is handed to it.
const pause = new Int32Array(new SharedArrayBuffer(4));
const paced = (next: () => number, take: number): number => {
  if (!steering?.backedUp()) return round(next, take);
  Atomics.wait(pause, 0, 0, 0.05);
  return round(next, 0);
};
let pos = 0;
while (pos < own.length) paced(() => own[pos++], Math.min(job.batch, own.length - pos));
Atomics.add(ctl, 0, 1);
while (Atomics.load(ctl, 0) < job.workers || steering?.pending()) round(() => 0, 0);
parentPort!.postMessage({ type: 'ready' });
Atomics.wait(ctl, 1, 0);

// the timed phase: random flows of this thread's share, for `seconds`
const rnd = mulberry32(7 + job.self);
const perm = Uint32Array.from(own);
for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); const t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
let p = 0;
const nextFlow = () => { const f = perm[p]; if (++p === perm.length) p = 0; return f; };
const g0 = core.counters().global;
const s0 = { ...(steering?.stats ?? { handedOff: 0, received: 0, ringFull: 0 }) };
let processed = 0;
const cpu0 = cpuNs();
const start = process.hrtime.bigint();
const end = start + BigInt(Math.round(job.seconds * 1e9));
let now = start;
while (now < end) {
  for (let k = 0; k < 16; k++) processed += paced(nextFlow, perm.length ? job.batch : 0);
  now = process.hrtime.bigint();
}
const g1 = core.counters().global;
const s1 = steering?.stats ?? { handedOff: 0, received: 0, ringFull: 0 };
const result: CoreWorkerResult = {
  self: job.self, processed, ns: Number(now - start), cpuNs: cpuNs() - cpu0, forwarded: g1.forward - g0.forward, ctHit: g1.ct_hit - g0.ct_hit, ctNew: g1.ct_new - g0.ct_new,
  handedOff: s1.handedOff - s0.handedOff, received: s1.received - s0.received, ringFull: s1.ringFull - s0.ringFull, ownFrames: own.length,
};
parentPort!.postMessage({ type: 'result', result });
