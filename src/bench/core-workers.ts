// `wdp bench core --workers N`: does the forwarding core scale over several workers sharing one
// interface (PACKET_FANOUT + steering, docs/performance.md "Several workers on one interface")?
// Three runs of the same established-flow traffic, one after the other, each `seconds` long:
//   1 worker                  every flow's frames through one core (no steering at all)
//   N workers, fanout split   frames shared by flow number, as a kernel hash independent of the
//                             flows' owners would: ~(N-1)/N of them are handed over through the
//                             steering rings (one copy each) — what the daemon does
//   N workers, owner split    each thread gets exactly the flows it owns (nothing handed over):
//                             the ceiling an in-kernel steering program would reach
// Each thread has its own core (conntrack holds the flows it owns) and reads its frames from
// Wasm memory; the figure is the frames processed by all threads per second of wall time.
// On a machine with fewer free CPUs than threads the N-worker figures cannot scale: the load
// average is part of the result.
import { Worker } from 'node:worker_threads';
import { loadavg } from 'node:os';
import { steerRingsFor } from '../daemon/steering.js';
import type { CoreWorkerJob, CoreWorkerResult } from './core-workers-thread.js';
import { round } from './report.js';
import { CORE_BENCH_DEFAULTS as D } from './defaults.js';

export interface CoreWorkersBenchOptions {
  workers?: number;    // default 2
  services?: number;   // default 1000
  endpoints?: number;  // default 10
  flows?: number;      // default 100_000
  seconds?: number;    // per run, default 2
  batchSize?: number;  // default 256
}

export interface CoreWorkersRun { workers: number; split: string; mpps: number; mpps_per_cpu: number; cpu_share: number; handed_off_fraction: number; ring_full: number; forwarded_fraction: number; ct_new: number; per_worker_mpps: number[] }

export interface CoreWorkersBenchResult {
  workers: number; services: number; endpoints: number; flows: number; seconds: number;
  one_worker_mpps: number; fanout_mpps: number; owner_split_mpps: number;
  scaling_fanout: number; scaling_owner_split: number;
  /** the same per CPU-second of each thread, summed (threads on CPUs of their own) */
  one_worker_mpps_per_cpu: number; fanout_mpps_per_cpu: number; owner_split_mpps_per_cpu: number;
  scaling_fanout_per_cpu: number; scaling_owner_split_per_cpu: number;
  runs: CoreWorkersRun[];
  load_before: number; load_after: number;
}

async function runOnce(base: Omit<CoreWorkerJob, 'self' | 'ctl' | 'rings'>, steer: boolean): Promise<CoreWorkersRun> {
  const ctl = new SharedArrayBuffer(8);
  const rings = steer && base.workers > 1 ? steerRingsFor(base.workers) : undefined;
  const threads = Array.from({ length: base.workers }, (_, self) => new Worker(new URL('./core-workers-thread.js', import.meta.url), {
    workerData: { ...base, self, ctl, ...(rings ? { rings } : {}) } satisfies CoreWorkerJob,
  }));
  const results: Promise<CoreWorkerResult>[] = [];
  const ready: Promise<void>[] = [];
  for (const t of threads) {
    let onReady!: () => void;
    ready.push(new Promise<void>((r) => { onReady = r; }));
    results.push(new Promise<CoreWorkerResult>((resolve, reject) => {
      t.on('message', (m: { type: string; result?: CoreWorkerResult }) => { if (m.type === 'ready') onReady(); else if (m.type === 'result') resolve(m.result!); });
      t.on('error', reject);
      t.on('exit', (code) => reject(new Error(`bench thread exited with code ${code}`)));
    }));
  }
  try {
    await Promise.race([Promise.all(ready), Promise.all(results)]);
    const c = new Int32Array(ctl);
    Atomics.store(c, 1, 1);
    Atomics.notify(c, 1);
    const rs = await Promise.all(results);
    const processed = rs.reduce((a, r) => a + r.processed, 0);
    const wallNs = Math.max(...rs.map((r) => r.ns));
    const own = rs.reduce((a, r) => a + r.processed - r.received, 0);
    return {
      workers: base.workers, split: base.workers === 1 ? 'one' : base.split,
      mpps: processed / wallNs * 1e3,
      // frames per CPU-second of each thread, summed: what N workers with a CPU each would reach
      mpps_per_cpu: rs.reduce((a, r) => a + r.processed / r.cpuNs * 1e3, 0),
      cpu_share: rs.reduce((a, r) => a + r.cpuNs, 0) / wallNs,
      handed_off_fraction: own ? rs.reduce((a, r) => a + r.handedOff, 0) / (own + rs.reduce((a, r) => a + r.handedOff, 0)) : 0,
      ring_full: rs.reduce((a, r) => a + r.ringFull, 0),
      forwarded_fraction: processed ? rs.reduce((a, r) => a + r.forwarded, 0) / processed : 0,
      ct_new: rs.reduce((a, r) => a + r.ctNew, 0),
      per_worker_mpps: rs.map((r) => r.processed / r.ns * 1e3),
    };
  } finally {
    await Promise.all(threads.map((t) => t.terminate()));
  }
}

export async function runCoreWorkersBench(opts: CoreWorkersBenchOptions = {}): Promise<CoreWorkersBenchResult> {
  const workers = opts.workers ?? 2;
  if (!Number.isInteger(workers) || workers < 2 || workers > 16) throw new RangeError(`workers must be 2..16, got ${workers}`);
  const base = {
    services: opts.services ?? D.services, endpoints: opts.endpoints ?? D.endpoints, flows: opts.flows ?? D.flows,
    batch: opts.batchSize ?? D.batch, seconds: opts.seconds ?? D.workersSeconds,
  };
  const loadBefore = loadavg()[0];
  const one = await runOnce({ ...base, workers: 1, split: 'fanout' }, false);
  const fan = await runOnce({ ...base, workers, split: 'fanout' }, true);
  const owner = await runOnce({ ...base, workers, split: 'owner' }, true);
  return {
    workers, services: base.services, endpoints: base.endpoints, flows: base.flows, seconds: base.seconds,
    one_worker_mpps: round(one.mpps), fanout_mpps: round(fan.mpps), owner_split_mpps: round(owner.mpps),
    scaling_fanout: round(fan.mpps / one.mpps), scaling_owner_split: round(owner.mpps / one.mpps),
    one_worker_mpps_per_cpu: round(one.mpps_per_cpu), fanout_mpps_per_cpu: round(fan.mpps_per_cpu), owner_split_mpps_per_cpu: round(owner.mpps_per_cpu),
    scaling_fanout_per_cpu: round(fan.mpps_per_cpu / one.mpps_per_cpu), scaling_owner_split_per_cpu: round(owner.mpps_per_cpu / one.mpps_per_cpu),
    runs: [one, fan, owner].map((r) => ({ ...r, mpps: round(r.mpps), mpps_per_cpu: round(r.mpps_per_cpu), cpu_share: round(r.cpu_share), handed_off_fraction: round(r.handed_off_fraction), forwarded_fraction: round(r.forwarded_fraction), per_worker_mpps: r.per_worker_mpps.map((x) => round(x)) })),
    load_before: round(loadBefore), load_after: round(loadavg()[0]),
  };
}
