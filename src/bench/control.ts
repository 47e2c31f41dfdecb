// `wdp bench control`: how long it takes to program N services x M endpoints, wdp against the
// kernel's own kube-proxy shapes, on the same generated service set in the same run.
//
// wdp figures come from the real code paths: raw Kubernetes objects -> validation (src/model) ->
// compiler (src/compiler) -> table writer (src/core/table-writer.ts) into a fresh core, and — when the
// control API (src/api/) is present — the same objects POSTed to it over HTTP. Peer figures come
// from iptables-restore / nft -f loading kube-proxy-shaped rules into private network namespaces.
// Each contender starts from empty state, so every figure is a full initial sync.
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { minorFaults, pageFaultCostUs } from './faults.js';
import { fileURLToPath } from 'node:url';
import { makeServiceSet, endpointCount, type BenchService } from './peers/service-set.js';
import {
  iptablesRuleset, loadIptables, countIptablesRules, availableIptablesVariants, iptablesRestoreBinary,
  iptablesUpdateOneEndpoint, type IptablesVariant,
} from './peers/iptables.js';
import { nftRuleset, loadNft, countNftServiceElements, nftUpdateOneEndpoint, nftChainExists, nftEndpointChain } from './peers/nftables.js';
import { withNamespaces, commandExists, run } from './peers/netns.js';
import { Progress, median, round } from './report.js';
import { validateAll } from '../model/schema.js';
import { Compiler, warmMaglevWorker } from '../compiler/compiler.js';
import { LocalDataplane } from '../core/dataplane.js';
import type { CoreOptions } from '../core/host.js';
import { describePages } from '../core/hugepages.js';
import type { Ir } from '../ir/ir.js';
import { frame } from '../packet/build.js';
import type { ModelObject } from '../model/types.js';
import { createRequire } from 'node:module';
import { daemonUnavailable, measureDaemon, type DaemonFigures, type FullSyncPart } from './control-daemon.js';

// benchmark.js is CommonJS without bundled types; only the few members used here are declared
interface BenchmarkJs {
  on(ev: 'complete' | 'error', fn: () => void): void;
  run(o: { async: boolean }): void;
  error?: Error;
  stats: { mean: number; rme: number; sample: number[] };
}
const Benchmark = createRequire(import.meta.url)('benchmark') as new (name: string, o: Record<string, unknown>) => BenchmarkJs;

export type PeerName = 'iptables' | 'nft';

export interface ControlBenchOptions {
  services: number;
  endpoints: number;
  peers?: PeerName[];                 // default both
  iptablesVariant?: IptablesVariant | 'auto';
  repeat?: number;                    // measurements per figure; the median is reported
  api?: 'auto' | 'off';               // 'off': measure apply in-process even if the API exists
  warmup?: boolean;                   // default true: one untimed small sync first (JIT, fastify)
  hugePages?: boolean;                // table sets on transparent huge pages (default false, as the daemon)
  changes?: number;                   // one-endpoint changes through the daemon's API (p50/p99 of these)
  daemonNice?: number;                // the daemon's workerNice and controlNice (default: its defaults)
  progress?: Progress;
}

export interface ControlBenchResult {
  suite: 'control';
  services: number;
  endpoints_per_service: number;
  endpoints_total: number;
  repeat: number;
  validate_ms: number;
  compile_ms: number;
  /** minor page faults during the compile (median run), and this machine's cost of one: on a VM
   * where a fault costs ~18 µs, the faults can be most of compile_ms (src/bench/faults.ts) */
  compile_page_faults: number;
  page_fault_us: number;
  /** every run's compile_ms and faults, in run order: the spread on a shared VM is part of the figure */
  compile_runs_ms: number[];
  compile_runs_page_faults: number[];
  /** the untimed warm-up's compile, the first full compile in this process (null without warm-up):
   * a fresh daemon's first sync pays V8's JIT and the heap's growth on top of compile_ms */
  compile_first_ms: number | null;
  compile_first_page_faults: number | null;
  table_write_ms: number;
  /** minor page faults during the table write (median run) */
  table_write_page_faults: number;
  /** how the core's memory was backed: "madvise: 2 MiB pages, 64 MiB advised" or "4 KiB pages: <why>" */
  core_memory_pages: string;
  /** the last run's Maglev tables filled on the worker thread (src/compiler/maglev-pool.ts), of all */
  compile_maglev_worker: string;
  apply_ms: number;
  /** daemon: a `wdp start` process with a state dir, over its API (src/bench/control-daemon.ts);
   * http-api: the API in this process without persistence; in-process: no API */
  apply_path: 'daemon' | 'http-api' | 'in-process';
  apply_path_note?: string;
  update_one_endpoint_ms: number;
  /** the daemon as it runs (medians over --repeat daemon lifetimes); null when it could not run */
  daemon_full_sync_ms: number | null;
  daemon_full_sync_requests: number | null;
  /** the last run's requests of the full sync, each (FullSyncPart) */
  daemon_full_sync_parts: FullSyncPart[] | null;
  daemon_one_endpoint_p50_ms: number | null;
  daemon_one_endpoint_p99_ms: number | null;
  /** the max when fewer than 1000 changes were made */
  daemon_one_endpoint_p999_ms: number | null;
  daemon_one_endpoint_max_ms: number | null;
  /** CPU ms of the daemon process (all threads) for the full sync / from start to ready on the restart */
  daemon_full_sync_cpu_ms: number | null;
  daemon_restart_cpu_ms: number | null;
  /** the same changes until packets see them: from the client's send until the last worker switched
   * (control-daemon.ts; `visible_from` says whether measured on the shared monotonic clock or estimated) */
  daemon_one_endpoint_visible_p50_ms: number | null;
  daemon_one_endpoint_visible_p99_ms: number | null;
  daemon_one_endpoint_visible_p999_ms: number | null;
  daemon_one_endpoint_visible_from: 'monotonic-clock' | 'estimate' | null;
  /** the daemon's own view of the same: from its API reading the request until every worker switched */
  daemon_one_endpoint_daemon_p50_ms: number | null;
  daemon_one_endpoint_daemon_p99_ms: number | null;
  daemon_one_endpoint_daemon_p999_ms: number | null;
  /** the daemon's workerNice and controlNice as the bench configured them (0: the defaults) */
  daemon_nice: number | null;
  /** 1-minute load average at the start and the end of the changes (of the last run) */
  daemon_one_endpoint_loadavg_1m: [number, number] | null;
  daemon_one_endpoint_samples: number | null;
  /** per one-endpoint change, ms: the daemon's CPU time (all threads), its threads' time waiting
   * for a CPU, the bench client's CPU time */
  daemon_one_endpoint_daemon_cpu_ms: number | null;
  daemon_one_endpoint_daemon_cpu_wait_ms: number | null;
  daemon_one_endpoint_client_cpu_ms: number | null;
  /** spawn → control plane ready (API answering, every service programmed, every worker forwarding) */
  daemon_restart_to_ready_ms: number | null;
  /** spawn → forwarding resumed (from the table images: before the control plane is ready) */
  daemon_restart_to_forwarding_ms: number | null;
  /** workers that resumed from their table image / workers (of the last run) */
  daemon_restart_images_used: [number, number] | null;
  /** CPU ms of the daemon process (all threads) from its start until forwarding resumed from a table image */
  daemon_restart_to_forwarding_cpu_ms: number | null;
  daemon_stop_ms: number | null;
  daemon_unavailable_reason?: string;
  /** benchmark.js mean of the in-process incremental path (compile one slice + write + first batch) */
  update_one_endpoint_inprocess_ms: number;
  update_one_endpoint_inprocess_rme_pct: number;
  update_one_endpoint_inprocess_samples: number;
  iptables_variant: string | null;
  iptables_rules: number | null;
  iptables_restore_ms: number | null;
  iptables_update_one_endpoint_ms: number | null;
  iptables_unavailable_reason?: string;
  nft_rules: number | null;
  nft_ms: number | null;
  nft_update_one_endpoint_ms: number | null;
  nft_unavailable_reason?: string;
  apply_speedup_vs_iptables: number | null;
  apply_speedup_vs_nft: number | null;
  update_speedup_vs_iptables: number | null;
  update_speedup_vs_nft: number | null;
}

// ---- the wdp side's input: the same services as Kubernetes objects -----------------------------

const NODE_MAC = '02:77:64:70:00:01';
const GATEWAY_MAC = '02:77:64:70:00:fe';

export function nodeConfigObject(): Record<string, unknown> {
  return {
    apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'bench-node' },
    spec: {
      nodeName: 'bench-node', nodeAddresses: ['192.168.77.1'],
      // every pod address behind one next hop on port 1: resolution cost is one LPM per endpoint
      routes: [{ prefix: '10.128.0.0/9', port: 1, nextHopMac: GATEWAY_MAC, localMac: NODE_MAC }],
    },
  };
}

export function serviceObject(s: BenchService): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { namespace: s.namespace, name: s.name },
    spec: {
      type: 'ClusterIP', clusterIP: s.clusterIP, clusterIPs: [s.clusterIP],
      ports: [{ name: s.portName, protocol: s.proto, port: s.port, targetPort: s.targetPort }],
    },
  };
}

export function sliceObject(s: BenchService, endpoints = s.endpoints): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { namespace: s.namespace, name: `${s.name}-bench`, labels: { 'kubernetes.io/service-name': s.name } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.addr], conditions: { ready: true }, nodeName: 'bench-node' })),
    ports: [{ name: s.portName, protocol: s.proto, port: s.targetPort }],
  };
}

export function benchObjects(svcs: BenchService[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [nodeConfigObject()];
  for (const s of svcs) { out.push(serviceObject(s)); out.push(sliceObject(s)); }
  return out;
}

/** The endpoint set after "one endpoint change": endpoint 0 of service 0 moves to a fresh address
 * outside the generated range (a pod rescheduled). `flip` alternates between two such addresses
 * so repeated updates each change something. */
export function changedEndpoints(s: BenchService, flip: number): { endpoints: BenchService['endpoints']; newAddr: string } {
  const newAddr = flip % 2 === 0 ? '10.255.255.1' : '10.255.255.2';
  return { endpoints: [{ addr: newAddr, port: s.targetPort }, ...s.endpoints.slice(1)], newAddr };
}

// ---- "the next batch sees it" ------------------------------------------------------------------

/** Runs batches of fresh SYNs to `svc`'s VIP through the core until one is DNATed to `addr`.
 * Returns the number of batches it took (1 when the change was visible to the first batch).
 * Throws if it never shows up: an update that no batch sees is a failure, not a slow figure. */
export function batchesUntilBackendSeen(dp: LocalDataplane, svc: BenchService, addr: string, sportBase: number): number {
  const core = dp.core;
  const want = addr.split('.').map(Number);
  const n = Math.min(64, core.batchMax);
  for (let b = 0; b < 8; b++) {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      // a new source port per packet: every packet is a new flow, so each one selects a backend
      const sport = 1024 + ((sportBase + b * n + i) % 60000);
      frames.push(frame({ src: '192.168.200.7', dst: svc.clusterIP, proto: svc.proto, sport, dport: svc.port, flags: 'S' }));
    }
    const res = core.run(frames);
    for (const r of res) {
      if (r.verdict !== 'forward') continue;
      const f = r.frame;
      // IPv4 destination at Ethernet(14) + 16
      if (f[30] === want[0] && f[31] === want[1] && f[32] === want[2] && f[33] === want[3]) return b + 1;
    }
  }
  throw new Error(`after the update, ${8 * n} new flows to ${svc.clusterIP}:${svc.port} never reached ${addr}: the change was not applied`);
}

// ---- HTTP API (optional until src/api lands) ---------------------------------------------------

interface ApiHandle {
  /** POST objects; resolves when the API says they are applied. */
  apply(objects: Record<string, unknown>[]): Promise<void>;
  dataplane: LocalDataplane;
  close(): Promise<void>;
}

type ApiStarter = (dp: LocalDataplane) => Promise<ApiHandle>;

/** Starts the real control API (src/api/server.ts) in this process on an ephemeral loopback port
 * over `dp`, so apply_ms includes HTTP, JSON parsing, validation, compile and table write — what
 * a client of the daemon waits for. Returns a reason instead when the API module is missing. */
async function loadApiStarter(): Promise<{ start?: ApiStarter; reason?: string }> {
  const file = new URL('../api/server.js', import.meta.url);
  if (!existsSync(fileURLToPath(file))) return { reason: 'control API not built (dist/src/api/server.js missing)' };
  let mod: { createControlPlane?: (o: Record<string, unknown>) => Promise<{ url: string; close(): Promise<void> }> };
  try { mod = await import(file.href); } catch (e) { return { reason: `control API failed to load: ${(e as Error).message}` }; }
  const create = mod.createControlPlane;
  if (typeof create !== 'function') return { reason: 'src/api/server.js does not export createControlPlane()' };
  const start: ApiStarter = async (dp) => {
    // no state dir (no disk writes in the timed path), no healthz listener, a body limit that
    // fits 100k services in one request
    const cp = await create({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, bodyLimit: 1 << 30 });
    return {
      dataplane: dp,
      async apply(objects) {
        const r = await fetch(`${cp.url}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(objects) });
        const text = await r.text();
        if (!r.ok) throw new Error(`POST /api/v1/apply answered ${r.status}: ${text.slice(0, 300)}`);
      },
      close: () => cp.close(),
    };
  };
  return { start };
}

// ---- measurement helpers -----------------------------------------------------------------------

function ratio(peer: number | null, ours: number | null): number | null {
  if (peer === null || ours === null || !(ours > 0)) return null;
  return round(peer / ours, 2);
}

interface WdpFigures {
  validate_ms: number; compile_ms: number; compile_page_faults: number; table_write_ms: number;
  table_write_page_faults: number; core_memory_pages: string; compile_maglev_worker: string;
  apply_ms: number; apply_path: 'daemon' | 'http-api' | 'in-process'; apply_path_note?: string;
  update_one_endpoint_ms: number;
}

/** One in-process full sync + one endpoint update. Every stage is the production code. */
interface Programmed { compiler: Compiler; dp: LocalDataplane }

async function wdpInProcessOnce(core: CoreOptions, svcs: BenchService[], raws: Record<string, unknown>[], flip: number, keep?: (p: Programmed) => void): Promise<WdpFigures> {
  const t0 = performance.now();
  warmMaglevWorker(raws); // as the daemon does before validating a first sync
  const objects: ModelObject[] = validateAll(raws);
  const f1 = minorFaults(), t1 = performance.now();
  const compiler = new Compiler();
  const full = compiler.change({ upsert: objects }); // what compileAll does; the diff is what the daemon applies
  const ir: Ir = compiler.ir;
  const t2 = performance.now(), f2 = minorFaults();
  const dp = new LocalDataplane(core);
  const f3 = minorFaults(), t3 = performance.now();
  await dp.apply(full.diff, ir);
  const t4 = performance.now(), f4 = minorFaults();
  if (dp.core.ir.frontends.size !== svcs.length) {
    throw new Error(`wdp programmed ${dp.core.ir.frontends.size} frontends for ${svcs.length} services`);
  }
  const s0 = svcs[0];
  const { endpoints, newAddr } = changedEndpoints(s0, flip);
  const sliceRaw = sliceObject(s0, endpoints);
  const u0 = performance.now();
  const [slice] = validateAll([sliceRaw]);
  const change = compiler.change({ upsert: [slice] });
  await dp.apply(change.diff, compiler.ir);
  batchesUntilBackendSeen(dp, s0, newAddr, flip * 4096);
  const u1 = performance.now();
  if (keep) keep({ compiler, dp }); else await dp.close();
  return {
    validate_ms: t1 - t0, compile_ms: t2 - t1, compile_page_faults: f2 - f1, table_write_ms: t4 - t3,
    table_write_page_faults: f4 - f3,
    core_memory_pages: describePages(dp.core.hugePages),
    compile_maglev_worker: full.maglevWorker ? `${full.maglevWorker.filledByWorker} of ${full.maglevWorker.tables} tables` : 'not used',
    apply_ms: t4 - t3 + (t2 - t0), apply_path: 'in-process',
    update_one_endpoint_ms: u1 - u0,
  };
}

async function wdpViaApiOnce(core: CoreOptions, start: ApiStarter, svcs: BenchService[], raws: Record<string, unknown>[], flip: number): Promise<{ apply_ms: number; update_one_endpoint_ms: number }> {
  const dp = new LocalDataplane(core);
  const api = await start(dp);
  try {
    const t0 = performance.now();
    await api.apply(raws);
    const t1 = performance.now();
    if (dp.core.ir.frontends.size !== svcs.length) {
      throw new Error(`API apply left ${dp.core.ir.frontends.size} frontends for ${svcs.length} services`);
    }
    const s0 = svcs[0];
    const { endpoints, newAddr } = changedEndpoints(s0, flip);
    const u0 = performance.now();
    await api.apply([sliceObject(s0, endpoints)]);
    batchesUntilBackendSeen(dp, s0, newAddr, flip * 4096);
    const u1 = performance.now();
    return { apply_ms: t1 - t0, update_one_endpoint_ms: u1 - u0 };
  } finally {
    await api.close();
    await dp.close();
  }
}

/** The in-process incremental path under benchmark.js: compiler.change() for one EndpointSlice,
 * dataplane.apply() of its diff, then batches until one is DNATed to the new address — repeated
 * until benchmark.js has a stable mean (bounded by `maxTime` seconds). This is the cost the HTTP
 * figure pays on top of request handling. */
async function benchUpdateInProcess(svcs: BenchService[], programmed: Programmed, maxTime: number): Promise<{ mean_ms: number; rme_pct: number; samples: number }> {
  const { compiler, dp } = programmed;
  const s0 = svcs[0];
  const slices = [0, 1].map((f) => { const c = changedEndpoints(s0, f); return { slice: validateAll([sliceObject(s0, c.endpoints)])[0], addr: c.newAddr }; });
  let flip = 0;
  const bench = new Benchmark('update_one_endpoint', {
    fn: () => {
      const { slice, addr } = slices[flip++ & 1];
      const change = compiler.change({ upsert: [slice] });
      dp.core.applyDiff(change.diff, compiler.ir);
      batchesUntilBackendSeen(dp, s0, addr, flip * 64);
    },
    maxTime, minSamples: 5, initCount: 1,
  });
  await new Promise<void>((resolve, reject) => {
    bench.on('complete', () => resolve());
    bench.on('error', () => reject(bench.error ?? new Error('benchmark.js failed')));
    bench.run({ async: true });
  });
  await dp.close();
  if (bench.error) throw bench.error;
  return { mean_ms: bench.stats.mean * 1000, rme_pct: bench.stats.rme, samples: bench.stats.sample.length };
}

// ---- peers -------------------------------------------------------------------------------------

interface PeerFigures { full_ms: number; update_ms: number; rules: number }

async function iptablesOnce(svcs: BenchService[], variant: IptablesVariant, p: Progress, label: string): Promise<PeerFigures> {
  const rs = iptablesRuleset(svcs);
  return withNamespaces(['ipt'], async ([ns]) => {
    const full = await p.step(`${label}: ${iptablesRestoreBinary(variant)} ${rs.rules} rules`, () => loadIptables(ns, variant, rs.text));
    const present = await countIptablesRules(ns, variant);
    if (present !== rs.rules) throw new Error(`${iptablesRestoreBinary(variant)} loaded ${present} rules, expected ${rs.rules}`);
    const after = { ...svcs[0], endpoints: changedEndpoints(svcs[0], 0).endpoints };
    const update = await p.step(`${label}: one-endpoint partial restore`, () => iptablesUpdateOneEndpoint(ns, variant, svcs[0], after));
    const again = await countIptablesRules(ns, variant);
    if (again !== rs.rules) throw new Error(`after the one-endpoint restore ${again} rules are present, expected ${rs.rules}`);
    return { full_ms: full, update_ms: update, rules: rs.rules };
  });
}

async function nftOnce(svcs: BenchService[], p: Progress, label: string): Promise<PeerFigures> {
  const rs = nftRuleset(svcs);
  return withNamespaces(['nft'], async ([ns]) => {
    const full = await p.step(`${label}: nft -f ${rs.rules} rules, ${rs.chains} chains`, () => loadNft(ns, rs.text));
    const present = await countNftServiceElements(ns);
    const expected = svcs.filter((s) => s.endpoints.length > 0).length;
    if (present !== expected) throw new Error(`nft loaded ${present} service-ips elements, expected ${expected}: ${(await run(['nft', 'list', 'ruleset'], { ns })).stdout.slice(0, 1500)}`);
    const after = { ...svcs[0], endpoints: changedEndpoints(svcs[0], 0).endpoints };
    const update = await p.step(`${label}: one-endpoint nft transaction`, () => nftUpdateOneEndpoint(ns, svcs[0], after));
    if (!(await nftChainExists(ns, nftEndpointChain(after, after.endpoints[0])))) throw new Error('the one-endpoint nft transaction did not create the new endpoint chain');
    return { full_ms: full, update_ms: update, rules: rs.rules };
  });
}

/** Picks the iptables variant: the requested one, else the first whose restore works here. */
async function pickIptablesVariant(want: IptablesVariant | 'auto'): Promise<{ variant?: IptablesVariant; reason?: string }> {
  const avail = availableIptablesVariants();
  if (want !== 'auto') {
    return avail.includes(want) ? { variant: want } : { reason: `${iptablesRestoreBinary(want)} not found — install with: apt-get install -y iptables` };
  }
  if (!avail.length) return { reason: 'neither iptables-nft-restore nor iptables-legacy-restore found — install with: apt-get install -y iptables' };
  const probe = makeServiceSet({ services: 1, endpoints: 1 });
  const errors: string[] = [];
  for (const v of avail) {
    try {
      await withNamespaces(['iptp'], async ([ns]) => { await loadIptables(ns, v, iptablesRuleset(probe).text); });
      return { variant: v };
    } catch (e) { errors.push((e as Error).message); }
  }
  return { reason: `no iptables-restore variant works here: ${errors.join('; ')}` };
}

// ---- the suite ---------------------------------------------------------------------------------

export async function runControlBench(o: ControlBenchOptions): Promise<ControlBenchResult> {
  const p = o.progress ?? new Progress(false);
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) throw new Error(`--repeat must be an integer in 1..50 (got ${repeat})`);
  const peers = o.peers ?? ['iptables', 'nft'];
  const svcs = makeServiceSet({ services: o.services, endpoints: o.endpoints });
  if (o.endpoints < 1) throw new Error('--endpoints must be >= 1: the update figure moves an endpoint');
  const coreOpts: CoreOptions = { flows: 4096, hugePages: o.hugePages ?? false };
  const raws = benchObjects(svcs);

  // wdp is a long-running daemon: its first sync after start pays V8's JIT — at the size it
  // runs: optimised code and its feedback depend on it, a 50-service warm-up left the next two
  // full compiles ~2x slower — the heap's growth, and fastify's route compilation, once. So one
  // untimed in-process sync of the whole set first, whose compile is reported on its own
  // (compile_first_ms: what a fresh daemon's first full sync costs), and one small sync through
  // the API; the timed runs are then steady-state (the peers are fresh processes each time by
  // nature, so they have no such phase to skip).
  const api = o.api !== 'off' ? await loadApiStarter() : { reason: 'API disabled with --no-api' };
  let first: WdpFigures | null = null;
  if (o.warmup !== false) {
    first = await wdpInProcessOnce(coreOpts, svcs, raws, 0);
    if (api.start) {
      const small = makeServiceSet({ services: Math.min(50, o.services), endpoints: o.endpoints, vipBase: '10.100.0.10', podBase: '10.200.0.2' });
      await wdpViaApiOnce(coreOpts, api.start, small, benchObjects(small), 1);
    }
  }

  // wdp in-process (always: it splits the cost into validate / compile / table write)
  const wdpRuns: WdpFigures[] = [];
  const bar = p.bar(`wdp: compile + write ${svcs.length} services`, repeat);
  let programmed: Programmed | undefined;
  for (let r = 0; r < repeat; r++) {
    // the last run's compiler and core stay up for the benchmark.js update figure below
    wdpRuns.push(await wdpInProcessOnce(coreOpts, svcs, raws, r, r === repeat - 1 ? (x) => { programmed = x; } : undefined));
    bar.tick();
  }
  if (!programmed) throw new Error('internal: no programmed dataplane kept');
  const inproc = await benchUpdateInProcess(svcs, programmed, Math.min(2, 0.5 * repeat));
  programmed = undefined; // its core's memory (hundreds of MB at 100k services) can go now
  bar.done();
  const wdp: WdpFigures = {
    validate_ms: median(wdpRuns.map((x) => x.validate_ms)),
    compile_ms: median(wdpRuns.map((x) => x.compile_ms)),
    compile_page_faults: median(wdpRuns.map((x) => x.compile_page_faults)),
    table_write_ms: median(wdpRuns.map((x) => x.table_write_ms)),
    table_write_page_faults: median(wdpRuns.map((x) => x.table_write_page_faults)),
    core_memory_pages: wdpRuns[wdpRuns.length - 1].core_memory_pages,
    compile_maglev_worker: wdpRuns[wdpRuns.length - 1].compile_maglev_worker,
    apply_ms: median(wdpRuns.map((x) => x.apply_ms)),
    apply_path: 'in-process',
    update_one_endpoint_ms: median(wdpRuns.map((x) => x.update_one_endpoint_ms)),
  };

  // wdp as it runs: the daemon with its store, over its API
  let daemon: DaemonFigures | null = null;
  let daemonReason: string | undefined = o.api === 'off' ? 'API disabled with --no-api' : daemonUnavailable() ?? undefined;
  if (!daemonReason) {
    try {
      const runs: DaemonFigures[] = [];
      for (let r = 0; r < repeat; r++) {
        runs.push(await measureDaemon({
          svcs, objects: raws.filter((x) => x.kind !== 'NodeConfig'), changes: o.changes ?? 200, progress: p,
          ...(o.daemonNice !== undefined ? { nice: o.daemonNice } : {}),
          sliceWith: (s, addr) => sliceObject(s, [{ addr, port: s.targetPort }, ...s.endpoints.slice(1)]),
        }));
      }
      const med = (f: (x: DaemonFigures) => number) => round(median(runs.map(f)));
      daemon = {
        full_sync_ms: med((x) => x.full_sync_ms), full_sync_requests: runs[0].full_sync_requests, full_sync_parts: runs[runs.length - 1].full_sync_parts, one_endpoint_p50_ms: med((x) => x.one_endpoint_p50_ms),
        one_endpoint_p99_ms: med((x) => x.one_endpoint_p99_ms), one_endpoint_p999_ms: med((x) => x.one_endpoint_p999_ms),
        one_endpoint_max_ms: round(Math.max(...runs.map((x) => x.one_endpoint_max_ms))), one_endpoint_loadavg_1m: runs[runs.length - 1].one_endpoint_loadavg_1m,
        one_endpoint_visible_p50_ms: med((x) => x.one_endpoint_visible_p50_ms), one_endpoint_visible_p99_ms: med((x) => x.one_endpoint_visible_p99_ms),
        one_endpoint_visible_p999_ms: med((x) => x.one_endpoint_visible_p999_ms),
        one_endpoint_visible_from: runs.every((x) => x.one_endpoint_visible_from === 'monotonic-clock') ? 'monotonic-clock' : 'estimate',
        one_endpoint_daemon_p50_ms: runs.every((x) => x.one_endpoint_daemon_p50_ms !== null) ? med((x) => x.one_endpoint_daemon_p50_ms!) : null,
        one_endpoint_daemon_p99_ms: runs.every((x) => x.one_endpoint_daemon_p99_ms !== null) ? med((x) => x.one_endpoint_daemon_p99_ms!) : null,
        one_endpoint_daemon_p999_ms: runs.every((x) => x.one_endpoint_daemon_p999_ms !== null) ? med((x) => x.one_endpoint_daemon_p999_ms!) : null,
        one_endpoint_samples: runs.reduce((n, x) => n + x.one_endpoint_samples, 0),
        one_endpoint_daemon_cpu_ms: runs.every((x) => x.one_endpoint_daemon_cpu_ms !== null) ? med((x) => x.one_endpoint_daemon_cpu_ms!) : null,
        one_endpoint_daemon_cpu_wait_ms: runs.every((x) => x.one_endpoint_daemon_cpu_wait_ms !== null) ? med((x) => x.one_endpoint_daemon_cpu_wait_ms!) : null,
        one_endpoint_client_cpu_ms: med((x) => x.one_endpoint_client_cpu_ms),
        restart_to_ready_ms: med((x) => x.restart_to_ready_ms), stop_ms: med((x) => x.stop_ms),
        restart_to_forwarding_ms: runs.every((x) => x.restart_to_forwarding_ms !== null) ? med((x) => x.restart_to_forwarding_ms!) : null,
        restart_images_used: runs[runs.length - 1].restart_images_used,
        restart_to_forwarding_cpu_ms: runs.every((x) => x.restart_to_forwarding_cpu_ms !== null) ? med((x) => x.restart_to_forwarding_cpu_ms!) : null,
        full_sync_cpu_ms: runs.every((x) => x.full_sync_cpu_ms !== null) ? med((x) => x.full_sync_cpu_ms!) : null,
        restart_cpu_ms: runs.every((x) => x.restart_cpu_ms !== null) ? med((x) => x.restart_cpu_ms!) : null,
      };
    } catch (e) { daemonReason = `the daemon run failed: ${(e as Error).message}`; }
  }

  // wdp through the HTTP API in this process when the daemon could not run
  if (daemon) {
    wdp.apply_ms = daemon.full_sync_ms;
    wdp.update_one_endpoint_ms = daemon.one_endpoint_p50_ms;
    wdp.apply_path = 'daemon';
  } else if (o.api !== 'off') {
    if (api.start) {
      const runs: Array<{ apply_ms: number; update_one_endpoint_ms: number }> = [];
      const b2 = p.bar(`wdp: POST ${raws.length} objects to the control API`, repeat);
      for (let r = 0; r < repeat; r++) { runs.push(await wdpViaApiOnce(coreOpts, api.start, svcs, raws, r)); b2.tick(); }
      b2.done();
      wdp.apply_ms = median(runs.map((x) => x.apply_ms));
      wdp.update_one_endpoint_ms = median(runs.map((x) => x.update_one_endpoint_ms));
      wdp.apply_path = 'http-api';
    } else {
      wdp.apply_path_note = `${api.reason}; apply_ms is validate + compile + table write in-process`;
    }
  } else {
    wdp.apply_path_note = 'API disabled with --no-api; apply_ms is validate + compile + table write in-process';
  }

  const res: ControlBenchResult = {
    suite: 'control', services: svcs.length, endpoints_per_service: o.endpoints, endpoints_total: endpointCount(svcs), repeat,
    validate_ms: round(wdp.validate_ms), compile_ms: round(wdp.compile_ms),
    compile_page_faults: Math.round(wdp.compile_page_faults), page_fault_us: round(pageFaultCostUs()),
    compile_runs_ms: wdpRuns.map((x) => round(x.compile_ms)), compile_runs_page_faults: wdpRuns.map((x) => x.compile_page_faults),
    compile_first_ms: first ? round(first.compile_ms) : null, compile_first_page_faults: first ? first.compile_page_faults : null,
    table_write_ms: round(wdp.table_write_ms), table_write_page_faults: Math.round(wdp.table_write_page_faults),
    core_memory_pages: wdp.core_memory_pages, compile_maglev_worker: wdp.compile_maglev_worker,
    apply_ms: round(wdp.apply_ms), apply_path: wdp.apply_path,
    ...(wdp.apply_path_note ? { apply_path_note: wdp.apply_path_note } : {}),
    update_one_endpoint_ms: round(wdp.update_one_endpoint_ms),
    daemon_full_sync_ms: daemon?.full_sync_ms ?? null, daemon_full_sync_requests: daemon?.full_sync_requests ?? null, daemon_full_sync_parts: daemon?.full_sync_parts ?? null, daemon_one_endpoint_p50_ms: daemon?.one_endpoint_p50_ms ?? null,
    daemon_one_endpoint_p99_ms: daemon?.one_endpoint_p99_ms ?? null, daemon_one_endpoint_p999_ms: daemon?.one_endpoint_p999_ms ?? null,
    daemon_one_endpoint_max_ms: daemon?.one_endpoint_max_ms ?? null, daemon_one_endpoint_loadavg_1m: daemon?.one_endpoint_loadavg_1m ?? null,
    daemon_one_endpoint_visible_p50_ms: daemon?.one_endpoint_visible_p50_ms ?? null, daemon_one_endpoint_visible_p99_ms: daemon?.one_endpoint_visible_p99_ms ?? null,
    daemon_one_endpoint_visible_p999_ms: daemon?.one_endpoint_visible_p999_ms ?? null, daemon_one_endpoint_visible_from: daemon?.one_endpoint_visible_from ?? null,
    daemon_one_endpoint_daemon_p50_ms: daemon?.one_endpoint_daemon_p50_ms ?? null, daemon_one_endpoint_daemon_p99_ms: daemon?.one_endpoint_daemon_p99_ms ?? null,
    daemon_one_endpoint_daemon_p999_ms: daemon?.one_endpoint_daemon_p999_ms ?? null,
    daemon_one_endpoint_samples: daemon?.one_endpoint_samples ?? null,
    daemon_one_endpoint_daemon_cpu_ms: daemon?.one_endpoint_daemon_cpu_ms ?? null, daemon_one_endpoint_daemon_cpu_wait_ms: daemon?.one_endpoint_daemon_cpu_wait_ms ?? null,
    daemon_one_endpoint_client_cpu_ms: daemon?.one_endpoint_client_cpu_ms ?? null, daemon_nice: daemon ? o.daemonNice ?? 0 : null, daemon_restart_to_ready_ms: daemon?.restart_to_ready_ms ?? null,
    daemon_restart_to_forwarding_ms: daemon?.restart_to_forwarding_ms ?? null, daemon_restart_images_used: daemon?.restart_images_used ?? null,
    daemon_restart_to_forwarding_cpu_ms: daemon?.restart_to_forwarding_cpu_ms ?? null,
    daemon_stop_ms: daemon?.stop_ms ?? null, daemon_full_sync_cpu_ms: daemon?.full_sync_cpu_ms ?? null, daemon_restart_cpu_ms: daemon?.restart_cpu_ms ?? null,
    ...(daemonReason ? { daemon_unavailable_reason: daemonReason } : {}),
    update_one_endpoint_inprocess_ms: round(inproc.mean_ms), update_one_endpoint_inprocess_rme_pct: round(inproc.rme_pct, 1),
    update_one_endpoint_inprocess_samples: inproc.samples,
    iptables_variant: null, iptables_rules: null, iptables_restore_ms: null, iptables_update_one_endpoint_ms: null,
    nft_rules: null, nft_ms: null, nft_update_one_endpoint_ms: null,
    apply_speedup_vs_iptables: null, apply_speedup_vs_nft: null, update_speedup_vs_iptables: null, update_speedup_vs_nft: null,
  };

  if (peers.includes('iptables')) {
    if (!commandExists('ip')) res.iptables_unavailable_reason = 'ip (iproute2) not found — install with: apt-get install -y iproute2';
    else {
      const pick = await pickIptablesVariant(o.iptablesVariant ?? 'auto');
      if (!pick.variant) res.iptables_unavailable_reason = pick.reason;
      else {
        // a peer that fails (or exceeds its time limit) costs only its own figures, not the run
        try {
          const runs: PeerFigures[] = [];
          for (let r = 0; r < repeat; r++) runs.push(await iptablesOnce(svcs, pick.variant, p, `iptables ${r + 1}/${repeat}`));
          res.iptables_variant = iptablesRestoreBinary(pick.variant);
          res.iptables_rules = runs[0].rules;
          res.iptables_restore_ms = round(median(runs.map((x) => x.full_ms)));
          res.iptables_update_one_endpoint_ms = round(median(runs.map((x) => x.update_ms)));
        } catch (e) {
          res.iptables_unavailable_reason = `${iptablesRestoreBinary(pick.variant)} failed: ${(e as Error).message}`;
        }
      }
    }
  } else res.iptables_unavailable_reason = 'not requested (--peers)';

  if (peers.includes('nft')) {
    if (!commandExists('nft') || !commandExists('ip')) res.nft_unavailable_reason = 'nft or ip not found — install with: apt-get install -y nftables iproute2';
    else {
      try {
        const runs: PeerFigures[] = [];
        for (let r = 0; r < repeat; r++) runs.push(await nftOnce(svcs, p, `nft ${r + 1}/${repeat}`));
        res.nft_rules = runs[0].rules;
        res.nft_ms = round(median(runs.map((x) => x.full_ms)));
        res.nft_update_one_endpoint_ms = round(median(runs.map((x) => x.update_ms)));
      } catch (e) {
        res.nft_unavailable_reason = `nft failed: ${(e as Error).message}`;
      }
    }
  } else res.nft_unavailable_reason = 'not requested (--peers)';

  res.apply_speedup_vs_iptables = ratio(res.iptables_restore_ms, res.apply_ms);
  res.apply_speedup_vs_nft = ratio(res.nft_ms, res.apply_ms);
  res.update_speedup_vs_iptables = ratio(res.iptables_update_one_endpoint_ms, res.update_one_endpoint_ms);
  res.update_speedup_vs_nft = ratio(res.nft_update_one_endpoint_ms, res.update_one_endpoint_ms);
  return res;
}
