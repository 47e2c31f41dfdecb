// `wdp bench control`, the daemon as it runs: a real `wdp start` process (forwarding worker on a
// TAP port, control API on a unix socket, desired-state store in a fresh state dir) in a private
// network namespace, driven over its API as a client would:
//
//   full sync      POST every Service and EndpointSlice in one request, until it is acknowledged
//   one endpoint   POST one EndpointSlice with one endpoint moved, until acknowledged: the worker
//                  has applied the diff (WorkerDataplane.apply answers after the worker's core
//                  took it, so the next packet sees it) and the store has committed it durably.
//                  Repeated over many services; p50/p99. The first and last are checked with a
//                  trace through the worker's core once all were made.
//   restart        SIGTERM, then a new process on the same state dir, timed two ways: spawn →
//                  control plane ready (the API answers with every service programmed and every
//                  worker forwarding: the daemon restores and programs before it listens) and
//                  spawn → forwarding (packets translated again: from the table images saved at
//                  the stop, before the control plane has restored). The second is the first less
//                  what the daemon's restore summary says lay between the two (forwardingAfterMs
//                  and readyAfterMs, both from the process's start); null for a build without it.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ApiClient } from '../cli/client.js';
import { withNamespaces } from './peers/netns.js';
import { schedTotals, threadSchedStats } from './cpu-account.js';
import { cpuMs, DAEMON_BIN, expectBackend, percentile, restartFigures, startDaemon, stopDaemon, waitReady, type RestartFigures } from './daemon-process.js';
import type { BenchService } from './peers/service-set.js';
import type { Progress } from './report.js';

export { daemonUnavailable } from './daemon-process.js';

const GATEWAY_MAC = '02:77:64:70:00:fe';

export interface DaemonFigures extends RestartFigures {
  full_sync_ms: number;
  full_sync_requests: number;
  /** Each request of the full sync: until answered, the daemon's transaction until every worker
   * switched (programmedMs) and until the store's commit too (syncMs), request read → switch. */
  full_sync_parts: FullSyncPart[];
  one_endpoint_p50_ms: number;
  one_endpoint_p99_ms: number;
  /** with fewer than 1000 changes this is the max */
  one_endpoint_p999_ms: number;
  one_endpoint_max_ms: number;
  /** The same changes until packets see them: from just before the client sent the request until
   * the last worker had switched tables (the answer's programmedAtNs), both on the host's
   * monotonic clock — the answer's way back is not in it. A daemon that does not report the
   * instant (an older build), or a clock that does not fit between send and answer, falls back to
   * the estimate of the answer's time less what the daemon did after the switch (an upper bound:
   * it counts the way back); `one_endpoint_visible_from` says which. */
  one_endpoint_visible_p50_ms: number;
  one_endpoint_visible_p99_ms: number;
  one_endpoint_visible_p999_ms: number;
  one_endpoint_visible_from: 'monotonic-clock' | 'estimate';
  /** The daemon's own view: from when its API read the request until every worker had switched
   * (receivedToProgrammedSeconds); null when the daemon does not report it. The difference to
   * the visible figures is the client's send and the daemon's wake-up to read it. */
  one_endpoint_daemon_p50_ms: number | null;
  one_endpoint_daemon_p99_ms: number | null;
  one_endpoint_daemon_p999_ms: number | null;
  /** 1-minute load average when the changes started and when they ended: the tail follows it */
  one_endpoint_loadavg_1m: [number, number];
  one_endpoint_samples: number;
  /** Per change, in ms: the daemon's CPU time (all its threads, from the kernel's per-thread
   * schedstat in ns) and its threads' time runnable but waiting for a CPU; the bench client's CPU
   * time. On a shared machine the latencies above follow the first two: the CPU a change needs,
   * and how long the scheduler made the daemon wait for it (null where schedstat is missing). */
  one_endpoint_daemon_cpu_ms: number | null;
  one_endpoint_daemon_cpu_wait_ms: number | null;
  one_endpoint_client_cpu_ms: number;
  stop_ms: number;
  /** CPU time the daemon process (all its threads) spent on the full sync, and from its start to
   * ready on the restart (RestartFigures): on a shared VM the wall times above wait for CPUs, these do not (null
   * where /proc is not readable). */
  full_sync_cpu_ms: number | null;
}

export interface FullSyncPart { ms: number; programmedMs: number; syncMs: number; receivedToProgrammedMs: number | null }

/** One JSON line per one-endpoint change (its time until acknowledged, until packets saw it, the
 * daemon's own view, the transaction and its switch, and when it was sent and answered on the
 * host's monotonic clock — that of `perf sched record -k CLOCK_MONOTONIC` and of the daemon's
 * --cpu-prof profiles), appended to this file: to find what the slow ones have in common (e.g.
 * with the daemon's --trace-gc in WDP_BENCH_DAEMON_LOG). FILE.threads gets one line per run: each
 * daemon thread's CPU time and wait for a CPU over the changes. */
const SAMPLES_FILE = process.env.WDP_BENCH_SAMPLES ?? '';
/** What a one-endpoint apply answers that the bench reads (ApplyResult, src/api/controlplane.ts);
 * an older daemon build has no programmedAtNs or receivedToProgrammedSeconds. */
interface ApplyAnswer { syncSeconds: number; programmedSeconds: number; programmedAtNs?: number; receivedToProgrammedSeconds?: number }

/** JSON arrays of `objects`, each at most ~`max` bytes, in order. */
function chunkedBodies(objects: readonly unknown[], max: number): string[] {
  const out: string[] = [];
  let cur: string[] = [], size = 0;
  for (const o of objects) {
    const t = JSON.stringify(o);
    if (size + t.length > max && cur.length) { out.push(`[${cur.join(',')}]`); cur = []; size = 0; }
    cur.push(t); size += t.length + 1;
  }
  if (cur.length) out.push(`[${cur.join(',')}]`);
  return out;
}

export interface DaemonBenchInput {
  svcs: BenchService[];
  /** Services and EndpointSlices as raw objects (no NodeConfig: the daemon programs its own). */
  objects: Record<string, unknown>[];
  /** The slice of `s` with its first endpoint moved to `addr`. */
  sliceWith(s: BenchService, addr: string): Record<string, unknown>;
  changes: number;
  progress: Progress;
  /** The `wdp` entry point to run (default: this build's bin/wdp.js; another build's for an A/B). */
  bin?: string;
  /** The daemon's workerNice and controlNice (default: the daemon's defaults, 0). */
  nice?: number;
}

/** One daemon lifetime on a fresh state dir: full sync, `changes` one-endpoint changes, restart. */
export async function measureDaemon(inp: DaemonBenchInput): Promise<DaemonFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-bench-control-'));
  try {
    return await withNamespaces(['ctl'], async ([ns]) => {
      const sock = join(dir, 'api.sock');
      const config = join(dir, 'wdp.json');
      writeFileSync(config, JSON.stringify({
        node: { name: 'bench-node', addresses: ['192.168.77.1'] },
        ports: [{ name: 'pods', type: 'tap', ifname: 'wdpb0', role: 'pod' }],
        // every pod address behind one next hop: the backends resolve, as on a node
        routes: [{ prefix: '10.128.0.0/9', port: 'pods', mac: GATEWAY_MAC }],
        api: { listen: `unix:${sock}`, healthz: 'off' },
        stateDir: join(dir, 'state'), logLevel: 'warn', conntrack: { flows: 4096 },
        ...(inp.nice !== undefined ? { workerNice: inp.nice, controlNice: inp.nice } : {}),
      }));
      const api = new ApiClient({ server: `unix:${sock}`, timeoutMs: 300_000 });
      let d = startDaemon(ns, config, inp.bin ?? DAEMON_BIN);
      try {
        await waitReady(api, d, 0, 60_000);
        // in requests under the daemon's 16 MiB body limit (one at 10k services x 10; ten at 100k)
        const bodies = chunkedBodies(inp.objects, 15 << 20);
        const c0 = cpuMs(d.child.pid);
        const t0 = performance.now();
        const parts: FullSyncPart[] = [];
        for (const body of bodies) {
          const p0 = performance.now();
          const r = await api.call('POST', '/api/v1/apply', body) as ApplyAnswer;
          parts.push({ ms: Math.round(performance.now() - p0), programmedMs: Math.round(r.programmedSeconds * 1000), syncMs: Math.round(r.syncSeconds * 1000),
            receivedToProgrammedMs: r.receivedToProgrammedSeconds === undefined ? null : Math.round(r.receivedToProgrammedSeconds * 1000) });
        }
        const full = performance.now() - t0;
        const c1 = cpuMs(d.child.pid);

        // one endpoint moved in a different service each time, over the whole set
        const samples: number[] = [], estimate: number[] = [];
        const latest = new Map<BenchService, string>(); // each changed service's last address
        let visible: number[] | null = [], inDaemon: number[] | null = [];
        const bar = inp.progress.bar(`daemon: ${inp.changes} one-endpoint changes`, inp.changes);
        const step = Math.max(1, Math.floor(inp.svcs.length / inp.changes));
        const loadBefore = loadavg()[0];
        const dc0 = schedTotals(d.child.pid), cc0 = process.cpuUsage();
        const ts0 = SAMPLES_FILE ? threadSchedStats(d.child.pid) : [];
        for (let i = 0; i < inp.changes; i++) {
          const s = inp.svcs[(i * step) % inp.svcs.length];
          const addr = `10.255.${(i >> 8) & 255}.${(i & 255) || 1}`;
          const slice = JSON.stringify(inp.sliceWith(s, addr));
          const sentNs = Number(process.hrtime.bigint());
          const r = await api.call('POST', '/api/v1/apply', slice) as ApplyAnswer;
          const answeredNs = Number(process.hrtime.bigint());
          const took = (answeredNs - sentNs) / 1e6;
          samples.push(took);
          estimate.push(took - Math.max(0, r.syncSeconds - r.programmedSeconds) * 1000);
          // the same clock only if the switch falls between send and answer (a daemon on this host)
          const at = r.programmedAtNs ?? 0;
          if (visible && at >= sentNs && at <= answeredNs) visible.push((at - sentNs) / 1e6); else visible = null;
          if (inDaemon && r.receivedToProgrammedSeconds !== undefined) inDaemon.push(r.receivedToProgrammedSeconds * 1000); else inDaemon = null;
          if (SAMPLES_FILE) appendFileSync(SAMPLES_FILE, `${JSON.stringify({ change: i, sentNs, ms: took, visibleMs: at ? (at - sentNs) / 1e6 : null, daemonMs: r.receivedToProgrammedSeconds === undefined ? null : r.receivedToProgrammedSeconds * 1000, syncMs: r.syncSeconds * 1000, programmedMs: r.programmedSeconds * 1000, answeredNs })}\n`);
          latest.set(s, addr);
          bar.tick();
        }
        bar.done();
        const loadAfter = loadavg()[0];
        const dc1 = schedTotals(d.child.pid), cc1 = process.cpuUsage(cc0);
        // the services of the first and the last change, as the changes left them — traced after
        // them all, so that up to 64 traces per endpoint do not run between two measured changes,
        // nor count in their CPU time
        for (const s of new Set([inp.svcs[0], inp.svcs[((inp.changes - 1) * step) % inp.svcs.length]])) {
          const addr = latest.get(s);
          if (addr) await expectBackend(api, s, addr);
        }
        if (SAMPLES_FILE) {
          // which of the daemon's threads took the CPU (main, forwarding worker, V8's compiler and GC helpers)
          const per = threadSchedStats(d.child.pid).map(([t, r, w]) => { const b = ts0.find((x) => x[0] === t); return { tid: t, cpuMs: (r - (b?.[1] ?? 0)) / 1e6, waitMs: (w - (b?.[2] ?? 0)) / 1e6 }; });
          appendFileSync(`${SAMPLES_FILE}.threads`, `${JSON.stringify({ pid: d.child.pid, changes: inp.changes, threads: per })}\n`);
        }

        const s0 = performance.now();
        await stopDaemon(d);
        const stop = performance.now() - s0;
        const r0 = performance.now();
        d = startDaemon(ns, config, inp.bin ?? DAEMON_BIN);
        await waitReady(api, d, inp.svcs.length, 120_000);
        const restart = await restartFigures(api, d, performance.now() - r0);
        samples.sort((a, b) => a - b);
        const seen = (visible ?? estimate).sort((a, b) => a - b);
        inDaemon?.sort((a, b) => a - b);
        return {
          full_sync_ms: full, full_sync_requests: bodies.length, full_sync_parts: parts, one_endpoint_p50_ms: percentile(samples, 50), one_endpoint_p99_ms: percentile(samples, 99),
          one_endpoint_p999_ms: percentile(samples, 99.9), one_endpoint_max_ms: samples[samples.length - 1], one_endpoint_samples: samples.length,
          one_endpoint_loadavg_1m: [loadBefore, loadAfter],
          one_endpoint_daemon_cpu_ms: dc0 && dc1 ? (dc1[0] - dc0[0]) / 1e6 / inp.changes : null,
          one_endpoint_daemon_cpu_wait_ms: dc0 && dc1 ? (dc1[1] - dc0[1]) / 1e6 / inp.changes : null,
          one_endpoint_client_cpu_ms: (cc1.user + cc1.system) / 1000 / inp.changes,
          one_endpoint_visible_p50_ms: percentile(seen, 50), one_endpoint_visible_p99_ms: percentile(seen, 99), one_endpoint_visible_p999_ms: percentile(seen, 99.9),
          one_endpoint_visible_from: visible ? 'monotonic-clock' : 'estimate',
          one_endpoint_daemon_p50_ms: inDaemon ? percentile(inDaemon, 50) : null, one_endpoint_daemon_p99_ms: inDaemon ? percentile(inDaemon, 99) : null,
          one_endpoint_daemon_p999_ms: inDaemon ? percentile(inDaemon, 99.9) : null,
          ...restart, stop_ms: stop,
          full_sync_cpu_ms: c0 !== null && c1 !== null ? c1 - c0 : null,
        };
      } finally {
        await stopDaemon(d);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

