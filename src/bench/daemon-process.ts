// The daemon as a benchmark runs it (`wdp bench control`, `wdp bench kube`): a real `wdp start`
// process in a network namespace, in a session of its own, polled and traced over its control API.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ApiClient } from '../cli/client.js';
import { commandExists, nsArgv } from './peers/netns.js';
import { processCpuSeconds } from './cpu-account.js';

const WDP_BIN = fileURLToPath(new URL('../../../bin/wdp.js', import.meta.url));

/** What expectBackend traces to (a BenchService has it). */
export interface TraceTarget { clusterIP: string; proto: string; port: number; endpoints: readonly unknown[] }

/** User + system CPU ms of process `pid` so far, all threads (/proc/PID/stat), or null. */
export function cpuMs(pid: number | undefined): number | null {
  const s = pid === undefined ? null : processCpuSeconds(pid);
  return s === null ? null : s * 1000;
}

/** Why the daemon cannot be measured here, or null. */
export function daemonUnavailable(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the daemon runs in a network namespace with a TAP port: needs root';
  if (!commandExists('ip')) return 'ip (iproute2) not found — install with: apt-get install -y iproute2';
  return null;
}

export interface Daemon { child: ChildProcess; log(): string }

/** Extra node flags for the daemon, e.g. WDP_BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p"
 * to profile it as the bench drives it (node refuses --cpu-prof in NODE_OPTIONS). */
export const NODE_ARGS = (process.env.WDP_BENCH_DAEMON_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** Another build's bin/wdp.js to run as the daemon (an A/B of versions, back to back); default
 * this build's. `inp.bin` takes precedence. */
export const DAEMON_BIN = process.env.WDP_BENCH_DAEMON_BIN || WDP_BIN;

/** Where the daemon's whole output goes as well (e.g. with --trace-gc in WDP_BENCH_DAEMON_NODE_ARGS);
 * otherwise only its last lines are kept, for an error message. */
const LOG_FILE = process.env.WDP_BENCH_DAEMON_LOG ?? '';

const liveDaemons = new Set<number>();
let exitHook = false;

export function startDaemon(ns: string, config: string, bin: string): Daemon {
  const argv = nsArgv(['node', ...NODE_ARGS, bin, 'start', '--config', config], ns);
  // In a session of its own, as a daemon runs (a service's or a pod's cgroup): with the kernel's
  // autogroup scheduling the threads of one session share one CPU share, and in the bench's
  // session the client's CPU counted against the daemon's. Killed with the bench if that exits
  // before stopping it (SIGINT, SIGTERM and SIGHUP included: the namespace helper exits on them).
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid !== undefined) {
    liveDaemons.add(pid);
    child.once('exit', () => liveDaemons.delete(pid));
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => { for (const p of liveDaemons) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } });
    }
  }
  let log = '';
  const keep = (d: Buffer) => { log = (log + d.toString()).slice(-4000); if (LOG_FILE) appendFileSync(LOG_FILE, d); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, log: () => log };
}

export function stopDaemon(d: Daemon): Promise<void> {
  return new Promise((resolve) => {
    if (d.child.exitCode !== null || d.child.signalCode !== null) return resolve();
    const hard = setTimeout(() => d.child.kill('SIGKILL'), 10_000);
    d.child.once('exit', () => { clearTimeout(hard); resolve(); });
    d.child.kill('SIGTERM');
  });
}

/** Polls GET /api/v1/generation until `ok` holds for its answer, every `everyMs`; bounded by
 * `timeoutMs`; throws with the daemon's last lines when it exits or the time is up. */
export async function waitGeneration<G>(api: ApiClient, d: Daemon, ok: (g: G) => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<G> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`the daemon exited (${d.child.exitCode ?? d.child.signalCode}): ${d.log().trim().split('\n').slice(-3).join(' | ')}`);
    try {
      const g = await api.call('GET', '/api/v1/generation') as G;
      if (ok(g)) return g;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`the daemon was not ${what} within ${timeoutMs} ms: ${d.log().trim().split('\n').slice(-3).join(' | ')}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls until the API answers with `services` Services programmed and the workers forwarding
 * (the restore summary's durationMs is set once forwarding resumed, after the saved flows are
 * back; the API listens a little earlier); bounded by `timeoutMs`. */
export function waitReady(api: ApiClient, d: Daemon, services: number, timeoutMs: number): Promise<unknown> {
  return waitGeneration<{ services: number; restore?: { durationMs?: number } }>(api, d,
    (g) => g.services === services && (g.restore === undefined || (g.restore.durationMs ?? 0) > 0), timeoutMs, `ready with ${services} services`);
}


export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}


/** A trace through the worker's core selects the moved endpoint for some source port: the change
 * is in the tables packets see, not only acknowledged. */
export async function expectBackend(api: ApiClient, s: TraceTarget, addr: string): Promise<void> {
  for (let sport = 1024; sport < 1024 + 64 * s.endpoints.length; sport++) {
    const tr = await api.call('POST', '/api/v1/trace', JSON.stringify({ src: '192.168.200.7', dst: s.clusterIP, proto: s.proto, sport, dport: s.port })) as { backend?: { addr?: string } };
    if (tr.backend?.addr === addr) return;
  }
  throw new Error(`after the change, no trace to ${s.clusterIP}:${s.port} reached ${addr}: the change was acknowledged but not programmed`);
}

/** A restart as the daemon's restore summary tells it (see control-daemon.ts's header). */
export interface RestartFigures {
  restart_to_ready_ms: number;
  /** spawn → forwarding resumed (from the table images when they were used); null when the
   * daemon does not say when forwarding resumed (an older build) */
  restart_to_forwarding_ms: number | null;
  /** workers that resumed from their table image / workers; null when the daemon does not say */
  restart_images_used: [number, number] | null;
  /** CPU time of the daemon process (all threads) from its start until forwarding resumed from
   * a table image; null without one */
  restart_to_forwarding_cpu_ms: number | null;
  /** CPU time of the daemon process (all threads) from its start to ready */
  restart_cpu_ms: number | null;
}

/** The figures of a restart that took `restartMs` from spawn to ready, read right after. */
export async function restartFigures(api: ApiClient, d: Daemon, restartMs: number): Promise<RestartFigures> {
  const restartCpu = cpuMs(d.child.pid);
  const summary = (await api.call('GET', '/api/v1/generation') as { restore?: { forwardingAfterMs?: number; readyAfterMs?: number; images?: Array<{ used: boolean; cpuMs?: number }> } }).restore;
  const imageCpu = summary?.images?.filter((x) => x.used && x.cpuMs !== undefined).map((x) => x.cpuMs!) ?? [];
  return {
    restart_to_ready_ms: restartMs,
    restart_to_forwarding_ms: summary?.forwardingAfterMs !== undefined && summary.readyAfterMs !== undefined
      ? restartMs - Math.max(0, summary.readyAfterMs - summary.forwardingAfterMs) : null,
    restart_images_used: summary?.images ? [summary.images.filter((x) => x.used).length, summary.images.length] : null,
    restart_to_forwarding_cpu_ms: imageCpu.length ? Math.min(...imageCpu) : null,
    restart_cpu_ms: restartCpu,
  };
}
