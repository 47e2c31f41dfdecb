// `wdp bench core|control|e2e|io|kube` (kube: src/bench/kube.ts). Every subcommand prints a Markdown table by default, exactly
// one JSON object with --json (progress and notes go to stderr, never stdout), and draws an SVG
// with --plot FILE.svg. Errors print one clear line on stderr and exit 1 — with --json, stdout
// then stays empty rather than carrying a half-made object.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resolve as resolvePath } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { Progress, mdTable, kvTable, round, fmt, type Cell } from './report.js';
import { lineChart, barChart, stack } from './svg.js';
import type { ControlBenchResult, PeerName } from './control.js';
import type { E2eResult } from './e2e.js';
import { formatRttFloor } from './platform.js';
import type { CoreWorkersBenchResult } from './core-workers.js';
import { registerKubeBench } from './kube.js';
import { durationArg } from '../util/duration.js';
import { CORE_BENCH_DEFAULTS, IO_BENCH_DEFAULTS } from './defaults.js';

// ---- option parsing: every number is checked, with the option's name in the error --------------

function intOpt(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const s = v.replace(/_/g, '').trim();
    const m = /^(-?\d+(?:\.\d+)?)([kKmM]?)$/.exec(s);
    const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max} (k/M suffixes allowed), got ${JSON.stringify(v)}`);
    return n;
  };
}

function listOpt(name: string, parse: (v: string) => number): (v: string) => number[] {
  return (v: string) => {
    const parts = v.split(',').map((x) => x.trim()).filter(Boolean);
    if (!parts.length) throw new InvalidArgumentError(`${name} must be a comma-separated list`);
    return parts.map(parse);
  };
}

// ---- output ------------------------------------------------------------------------------------

interface CommonOpts { json?: boolean; plot?: string; quiet?: boolean }

function progressFor(o: CommonOpts): Progress { return new Progress(!o.quiet); }

/** Where the figures came from: they mean little without it (2 cores shared with the generator). */
export function hostInfo(): { nproc: number; cpu: string; kernel: string; loadavg_1m: number; date: string } {
  let cpu = 'unknown';
  try { cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu; } catch { /* not Linux */ }
  return { nproc: availableParallelism(), cpu, kernel: release(), loadavg_1m: round(loadavg()[0], 2), date: new Date().toISOString() };
}

function emit(o: CommonOpts, result: object, markdown: () => string, plot?: () => string): void {
  const host = hostInfo();
  if (o.plot) {
    if (!plot) throw new Error('--plot is not supported by this suite');
    writeFileSync(o.plot, plot());
    if (!o.quiet) process.stderr.write(`wrote ${o.plot}\n`);
  }
  if (o.json) process.stdout.write(JSON.stringify({ ...result, host }) + '\n');
  else process.stdout.write(`${markdown()}\n_${host.date} — ${host.nproc} CPUs (${host.cpu}), Linux ${host.kernel}, load average ${host.loadavg_1m}_\n`);
}

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`wdp bench: ${msg}\n`);
  process.exit(1);
}

/** Wraps an action so any error becomes one line on stderr and exit code 1. */
function guarded<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try { await fn(...a); } catch (e) { fail(e); }
    // peers' child processes and timers are gone by now; exit explicitly so a lingering handle in
    // a suite (e.g. a keep-alive socket) cannot keep the benchmark hanging after it printed
    process.exit(0);
  };
}

// ---- sibling suites owned by other modules, loaded when present -------------------------------

type Suite = (opts: Record<string, unknown>) => Promise<Record<string, unknown>>;

async function loadSuite(file: string, exportName: string): Promise<Suite> {
  const url = new URL(file, import.meta.url);
  if (!existsSync(fileURLToPath(url))) {
    throw new Error(`this suite is not built yet: ${fileURLToPath(url)} is missing (src/bench/${file.replace('./', '').replace('.js', '.ts')} has not landed, or run \`npm run build\`)`);
  }
  const mod = (await import(url.href)) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== 'function') throw new Error(`${file} does not export ${exportName}()`);
  return fn as Suite;
}

function numericKeys(rows: Record<string, unknown>[], skip: string[]): string[] {
  const keys = new Set<string>();
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && !skip.includes(k)) keys.add(k);
  return [...keys];
}

function flatRow(r: Record<string, unknown>): Record<string, Cell> {
  const out: Record<string, Cell> = {};
  for (const [k, v] of Object.entries(r)) if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v as Cell;
  return out;
}

function rowsTable(rows: Record<string, unknown>[]): string {
  const flat = rows.map(flatRow);
  const headers = [...new Set(flat.flatMap((r) => Object.keys(r)))];
  return mdTable(headers, flat.map((r) => headers.map((h) => r[h])));
}

// ---- core --------------------------------------------------------------------------------------

export const SWEEPS: Record<'services' | 'flows', number[]> = {
  services: [100, 1_000, 10_000, 100_000],
  flows: [1_000, 10_000, 100_000, 1_000_000, 4_000_000],
};

function registerCore(bench: Command): void {
  bench.command('core')
    .description('forwarding-core throughput in this process (wraps runCoreBench)')
    .option('--services <n>', `services (default: ${CORE_BENCH_DEFAULTS.services})`, intOpt('--services', 1, 1_000_000))
    .option('--endpoints <m>', `endpoints per service (default: ${CORE_BENCH_DEFAULTS.endpoints})`, intOpt('--endpoints', 1, 1000))
    .option('--flows <f>', `distinct flows in the traffic mix (default: ${CORE_BENCH_DEFAULTS.flows / 1000}k)`, intOpt('--flows', 1, 16_000_000))
    .option('--seconds <duration>', `measuring time per point: 3s, 500ms, or a bare number of seconds (default: ${CORE_BENCH_DEFAULTS.seconds}, with --workers ${CORE_BENCH_DEFAULTS.workersSeconds})`, durationArg({ flag: '--seconds', unit: 's', min: 0.05, max: 3600 }))
    .option('--batch <n>', `frames per process() call (default: ${CORE_BENCH_DEFAULTS.batch})`, intOpt('--batch', 1, 65535))
    .option('--ct-capacity <n>', 'conntrack capacity for the new-flow test (default: 1M, at least --flows)', intOpt('--ct-capacity', 16, 1 << 24))
    .option('--huge-pages', 'table sets on transparent huge pages (the daemon\'s hugePages: true)')
    .option('--workers <n>', 'N worker threads sharing the traffic (fanout + steering) against one: established flows (src/bench/core-workers.ts)', intOpt('--workers', 2, 16))
    .addOption(new Option('--sweep <what>', 'one row per point: services 100..100k or flows 1k..4M').choices(['services', 'flows']))
    .option('--points <list>', `override the sweep points, comma-separated (default: services ${SWEEPS.services.join(',')}; flows ${SWEEPS.flows.join(',')})`, listOpt('--points', intOpt('--points', 1, 16_000_000)))
    .option('--json', 'one JSON object on stdout')
    .option('--plot <file.svg>', 'draw the sweep as a line chart')
    .option('--quiet', 'no progress on stderr')
    .action(guarded(async (o: CommonOpts & { services?: number; endpoints?: number; flows?: number; seconds?: number; batch?: number; ctCapacity?: number; sweep?: 'services' | 'flows'; points?: number[]; hugePages?: boolean; workers?: number }) => {
      if (o.workers !== undefined) {
        if (o.sweep || o.ctCapacity !== undefined || o.hugePages) throw new Error('--workers takes --services, --endpoints, --flows, --seconds and --batch only');
        const runCoreWorkersBench = await loadSuite('./core-workers.js', 'runCoreWorkersBench');
        const r = await runCoreWorkersBench({ workers: o.workers, services: o.services, endpoints: o.endpoints, flows: o.flows, seconds: o.seconds, batchSize: o.batch }) as unknown as CoreWorkersBenchResult;
        const result = { suite: 'core-workers', ...r };
        const { runs, ...flat } = result;
        emit(o, result, () => `${kvTable(flat)}\n${rowsTable(runs.map(({ per_worker_mpps: pw, ...x }) => ({ ...x, per_worker_mpps: pw.join(' / ') })) as unknown as Record<string, unknown>[])}`,
          () => barChart({ title: `wdp core: 1 vs ${r.workers} workers`, yLabel: 'Mpps', groups: runs.map((x) => ({ label: `${x.workers} ${x.split}`, bars: [{ name: 'wall', value: x.mpps }, { name: 'per CPU', value: x.mpps_per_cpu }] })) }));
        return;
      }
      const runCoreBench = await loadSuite('./core.js', 'runCoreBench');
      const p = progressFor(o);
      const base: Record<string, unknown> = {};
      for (const k of ['services', 'endpoints', 'flows', 'seconds'] as const) if (o[k] !== undefined) base[k] = o[k];
      if (o.batch !== undefined) base.batchSize = o.batch;
      if (o.ctCapacity !== undefined) base.newFlowTable = o.ctCapacity;
      if (o.hugePages) base.hugePages = true;
      /** one bar per run, fed by runCoreBench's onProgress(fraction) */
      const runOne = async (label: string, opts: Record<string, unknown>) => {
        const bar = p.bar(label, 100);
        let shown = 0;
        const r = await runCoreBench({ ...opts, onProgress: (f: number) => { const n = Math.floor(Math.min(1, f) * 100); if (n > shown) { bar.tick(n - shown); shown = n; } } });
        bar.done();
        return r;
      };
      if (!o.sweep) {
        if (o.points) throw new Error('--points needs --sweep');
        const r = await runOne('core', base);
        const result = { suite: 'core', ...r };
        emit(o, result, () => kvTable(result), () => barChart({ title: 'wdp core', yLabel: 'value', groups: [{ label: 'core', bars: numericKeys([r], []).filter((k) => /pps/.test(k)).map((k) => ({ name: k, value: r[k] as number })) }] }));
        return;
      }
      const points = o.points ?? SWEEPS[o.sweep];
      const rows: Record<string, unknown>[] = [];
      for (const [i, x] of points.entries()) {
        const r = await runOne(`core ${o.sweep}=${x} (${i + 1}/${points.length})`, { ...base, [o.sweep]: x });
        rows.push({ [o.sweep]: x, ...r });
      }
      const result = { suite: 'core', sweep: o.sweep, rows };
      const sweep = o.sweep;
      const wanted = [sweep, 'established_mpps', 'established_mpps_incl_refill', 'new_flow_mpps', 'reference_established_mpps', 'speedup_vs_reference', 'bytes_per_flow', 'wasm_memory_mb'];
      const narrow = rows.map((r) => Object.fromEntries(wanted.filter((k) => k in r).map((k) => [k, r[k]])));
      emit(o, result, () => `### wdp bench core --sweep ${sweep}\n\n${rowsTable(narrow.some((r) => Object.keys(r).length > 1) ? narrow : rows)}\n(all fields: --json)\n`, () => {
        const ys = numericKeys(rows, [sweep, 'services', 'flows', 'endpoints', 'seconds']);
        const rate = ys.filter((k) => /pps/.test(k));
        return lineChart({
          title: `wdp core: throughput vs ${sweep}`, xLabel: sweep, yLabel: rate.length ? 'Mpps' : 'value', logX: true,
          series: (rate.length ? rate : ys.slice(0, 4)).map((k) => ({ name: k, points: rows.map((r) => [r[sweep] as number, typeof r[k] === 'number' ? (r[k] as number) : null] as [number, number | null]) })),
        });
      });
    }));
}

// ---- control -----------------------------------------------------------------------------------

/** "p50 / p99 / p99.9" of three figures, or null when there are none. */
function triple(a: number | null, b: number | null, c: number | null): string | null {
  return a === null || b === null || c === null ? null : [a, b, c].map((x) => x.toFixed(2)).join(' / ');
}

export function controlMarkdown(r: ControlBenchResult): string {
  const rows: Cell[][] = [
    ['wdp', r.apply_path, r.apply_ms, r.update_one_endpoint_ms, null],
    [`iptables (${r.iptables_variant ?? 'unavailable'})`, 'iptables-restore, kube-proxy iptables shape', r.iptables_restore_ms, r.iptables_update_one_endpoint_ms, r.iptables_rules],
    ['nftables', 'nft -f, kube-proxy nftables shape', r.nft_ms, r.nft_update_one_endpoint_ms, r.nft_rules],
  ];
  let s = `### wdp bench control — ${r.services} services x ${r.endpoints_per_service} endpoints\n\n`;
  s += mdTable(['dataplane', 'path', 'full sync ms', 'one endpoint ms', 'rules'], rows);
  s += '\n' + mdTable(['wdp stage (in-process)', 'ms'], [
    ['validate', r.validate_ms], [`compile (median; runs: ${r.compile_runs_ms.join(', ')}; Maglev tables on the worker: ${r.compile_maglev_worker})`, r.compile_ms],
    [`compile, the first in this process (untimed warm-up: cold JIT and heap; ${r.compile_first_page_faults ?? '-'} page faults)`, r.compile_first_ms],
    [`compile: page faults (${r.compile_page_faults} x ${r.page_fault_us} µs measured on this machine)`, Math.round(r.compile_page_faults * r.page_fault_us) / 1000],
    [`table write (${r.table_write_page_faults} page faults; core memory on ${r.core_memory_pages})`, r.table_write_ms],
    [`one endpoint: compile + write + first batch (benchmark.js, ±${r.update_one_endpoint_inprocess_rme_pct}%)`, r.update_one_endpoint_inprocess_ms],
  ]);
  if (r.daemon_full_sync_ms !== null) {
    s += '\n' + mdTable(['wdp daemon (`wdp start` with a state dir, over its API)', 'ms'], [
      [`full sync (${r.daemon_full_sync_requests === 1 ? 'one POST' : `${r.daemon_full_sync_requests} POSTs under the 16 MiB body limit`}, until acknowledged: programmed and durable)`, r.daemon_full_sync_ms],
      [`one-endpoint change p50 (${r.daemon_one_endpoint_samples} changes, each until acknowledged)`, r.daemon_one_endpoint_p50_ms],
      ['one-endpoint change p99', r.daemon_one_endpoint_p99_ms], ['one-endpoint change p99.9', r.daemon_one_endpoint_p999_ms],
      ['one-endpoint change max', r.daemon_one_endpoint_max_ms],
      [r.daemon_one_endpoint_visible_from === 'estimate'
        ? 'one-endpoint change until packets see it (estimated: the answer less the wait for the fsync after the workers switched) p50 / p99 / p99.9'
        : 'one-endpoint change until packets see it (client\'s send to the last worker\'s switch) p50 / p99 / p99.9', triple(r.daemon_one_endpoint_visible_p50_ms, r.daemon_one_endpoint_visible_p99_ms, r.daemon_one_endpoint_visible_p999_ms)],
      ['the same in the daemon (its API read the request to the last worker\'s switch) p50 / p99 / p99.9', triple(r.daemon_one_endpoint_daemon_p50_ms, r.daemon_one_endpoint_daemon_p99_ms, r.daemon_one_endpoint_daemon_p999_ms)],
      ...(r.daemon_nice ? [[`the daemon's workerNice / controlNice`, `${r.daemon_nice} / ${r.daemon_nice}`] as Cell[]] : []),
      ['per one-endpoint change: the daemon\'s CPU time (all threads) / its threads\' time waiting for a CPU / the bench client\'s CPU time', r.daemon_one_endpoint_daemon_cpu_ms === null ? null : [r.daemon_one_endpoint_daemon_cpu_ms, r.daemon_one_endpoint_daemon_cpu_wait_ms ?? NaN, r.daemon_one_endpoint_client_cpu_ms ?? NaN].map((x) => x.toFixed(2)).join(' / ')],
      ['load average (1 min) at the changes\' start / end', r.daemon_one_endpoint_loadavg_1m ? r.daemon_one_endpoint_loadavg_1m.map((x) => x.toFixed(2)).join(' / ') : null],
      [`restart: spawn to forwarding (packets translated again${r.daemon_restart_images_used ? `; table images used by ${r.daemon_restart_images_used[0]} of ${r.daemon_restart_images_used[1]} workers` : ''})`, r.daemon_restart_to_forwarding_ms],
      ['restart: spawn to control plane ready (API answering, every service programmed, every worker forwarding)', r.daemon_restart_to_ready_ms], ['stop (SIGTERM to exit)', r.daemon_stop_ms],
      ['CPU time of the daemon (all threads): full sync / restart to ready', r.daemon_full_sync_cpu_ms === null ? null : `${Math.round(r.daemon_full_sync_cpu_ms)} / ${Math.round(r.daemon_restart_cpu_ms ?? NaN)}`],
      ['CPU time of the daemon (all threads): restart to forwarding from the table image', r.daemon_restart_to_forwarding_cpu_ms],
    ]);
  }
  s += '\n' + mdTable(['ratio', 'x'], [
    ['apply_speedup_vs_iptables', r.apply_speedup_vs_iptables], ['apply_speedup_vs_nft', r.apply_speedup_vs_nft],
    ['update_speedup_vs_iptables', r.update_speedup_vs_iptables], ['update_speedup_vs_nft', r.update_speedup_vs_nft],
  ]);
  const notes = [r.apply_path_note, r.daemon_unavailable_reason && `daemon: ${r.daemon_unavailable_reason}`, r.iptables_unavailable_reason && `iptables: ${r.iptables_unavailable_reason}`, r.nft_unavailable_reason && `nft: ${r.nft_unavailable_reason}`].filter(Boolean);
  if (notes.length) s += '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
  return s;
}

export function controlPlot(r: ControlBenchResult): string {
  return barChart({
    title: `control plane: ${r.services} services x ${r.endpoints_per_service} endpoints`, yLabel: 'milliseconds', logY: true,
    groups: [
      { label: 'full sync', bars: [{ name: 'wdp', value: r.apply_ms }, { name: 'iptables-restore', value: r.iptables_restore_ms }, { name: 'nft -f', value: r.nft_ms }] },
      { label: 'one endpoint change', bars: [{ name: 'wdp', value: r.update_one_endpoint_ms }, { name: 'iptables-restore', value: r.iptables_update_one_endpoint_ms }, { name: 'nft -f', value: r.nft_update_one_endpoint_ms }] },
    ],
  });
}

function registerControl(bench: Command): void {
  bench.command('control')
    .description('control-plane programming time: wdp vs iptables-restore vs nft, same service set')
    .requiredOption('--services <n>', 'services', intOpt('--services', 1, 1_000_000))
    .option('--endpoints <m>', 'endpoints per service', intOpt('--endpoints', 1, 1000), 4)
    .option('--peers <list>', 'kernel peers to measure: iptables,nft (or none)', 'iptables,nft')
    .addOption(new Option('--iptables <variant>', 'iptables backend').choices(['auto', 'nft', 'legacy']).default('auto'))
    .option('--repeat <r>', 'measurements per figure (median reported)', intOpt('--repeat', 1, 50), 1)
    .option('--no-api', 'measure apply in-process even when the control API is available')
    .option('--changes <n>', 'one-endpoint changes through the daemon (p50/p99)', intOpt('--changes', 1, 100_000), 200)
    .option('--huge-pages', 'table sets on transparent huge pages (the daemon\'s hugePages: true)')
    .option('--daemon-nice <n>', "the daemon's workerNice and controlNice, -20..19 (default: the daemon's, 0)", intOpt('--daemon-nice', -20, 19))
    .option('--json', 'one JSON object on stdout')
    .option('--plot <file.svg>', 'draw side-by-side bars')
    .option('--quiet', 'no progress on stderr')
    .action(guarded(async (o: CommonOpts & { services: number; endpoints: number; peers: string; iptables: 'auto' | 'nft' | 'legacy'; repeat: number; api: boolean; hugePages?: boolean; changes: number; daemonNice?: number }) => {
      const peers = o.peers === 'none' ? [] : o.peers.split(',').map((x) => x.trim()).filter(Boolean);
      for (const x of peers) if (x !== 'iptables' && x !== 'nft') throw new Error(`--peers: unknown peer ${JSON.stringify(x)} (iptables, nft or none)`);
      const { runControlBench } = await import('./control.js');
      const r = await runControlBench({
        services: o.services, endpoints: o.endpoints, peers: peers as PeerName[], iptablesVariant: o.iptables,
        repeat: o.repeat, api: o.api ? 'auto' : 'off', progress: progressFor(o), hugePages: !!o.hugePages, changes: o.changes,
        ...(o.daemonNice !== undefined ? { daemonNice: o.daemonNice } : {}),
      });
      emit(o, r, () => controlMarkdown(r), () => controlPlot(r));
    }));
}

// ---- e2e ---------------------------------------------------------------------------------------

export function e2eMarkdown(r: E2eResult): string {
  const cols = ['wdp', 'kernel', 'ovs'] as const;
  const row = (label: string, f: string, gen: Cell = null): Cell[] => [label, ...cols.map((c) => (r as unknown as Record<string, Cell>)[`${c}_${f}`] ?? null), gen];
  const rows: Cell[][] = [
    row('UDP 64 B, one flow (Mpps)', 'mpps', r.generator_mpps),
    row('UDP 64 B, every packet a new flow (Mpps)', 'new_flow_mpps', r.generator_new_flow_mpps),
    row('offered by the generator (Mpps, higher of the two)', 'offered_mpps'),
    row('forwarder CPU per packet, one flow (ns)', 'cpu_ns_per_packet', r.generator_cpu_ns_per_frame),
    row('forwarder CPU per packet, new flows (ns)', 'new_flow_cpu_ns_per_packet'),
    row('forwarder process CPU per packet, one flow (ns)', 'process_cpu_ns_per_packet'),
    row('TCP connections / s (median round)', 'conn_per_s'),
    row('TCP connections / s, / kernel\'s', 'conn_per_kernel'),
    row('UDP round trip p50 (µs)', 'rtt_p50_us'),
    row('UDP round trip p99 (µs)', 'rtt_p99_us'),
    row('RTT p50 / kernel\'s', 'rtt_p50_per_kernel'),
    row('RTT p99 / kernel\'s', 'rtt_p99_per_kernel'),
    row(`· its ${Math.round((r.interleave?.ratio_range_level ?? 0.9) * 100)}% range over the rounds, low`, 'rtt_p99_per_kernel_lo'),
    row('· high', 'rtt_p99_per_kernel_hi'),
    row('UDP round trips measured', 'rtt_samples'),
    row('UDP round trips lost', 'rtt_lost'),
    row('forwarder CPU seconds over both blasts', 'cpu_s'),
    row('frames that reached the server untranslated', 'untranslated_frames'),
  ];
  let s = `### wdp bench e2e — ${r.seconds} s per test, ClusterIP ${r.vip}:${r.port}\n\n`;
  const ports = [r.wdp_port_type && `wdp ports: ${r.wdp_port_type}`, r.ovs_port_type && `ovs ports: ${r.ovs_port_type}`].filter(Boolean).join('; ');
  if (ports) s += `${ports}\n\n`;
  s += mdTable(['test', 'wdp', 'kernel nftables DNAT', 'OVS userspace ct(nat)', 'generator alone'], rows);
  if (r.interleave) s += '\n' + e2eInterleaveMarkdown(r);
  if (r.platform) s += `\nRound-trip floor of this host: ${formatRttFloor(r.platform)}\n`;
  if (r.wdp_time_split) s += '\nwdp worker loop time:\n\n' + kvTable(r.wdp_time_split as unknown as Record<string, unknown>);
  const reasons = [...cols.map((c) => r[`${c}_unavailable_reason`] && `${c}: ${r[`${c}_unavailable_reason`]}`), r.generator_unavailable_reason && `generator: ${r.generator_unavailable_reason}`];
  const notes = [...reasons, ...r.notes].filter(Boolean);
  if (notes.length) s += '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
  return s;
}

/** How the latency and connection figures were taken, and how firm they are: per round. */
export function e2eInterleaveMarkdown(r: E2eResult): string {
  const iv = r.interleave!;
  const names = Object.keys(iv.rtt_p99_us_rounds) as Array<'wdp' | 'kernel' | 'ovs'>;
  const warm = iv.rtt_warmup || iv.conn_warmup_s ? ` (each chunk after its client's uncounted warm-up: ${fmt(iv.rtt_warmup)} round trips, ${fmt(iv.conn_warmup_s)} s of connections)` : '';
  let s = `Latency and connection rate: ${iv.rounds} rounds × (${fmt(iv.rtt_chunk)} UDP round trips + ${fmt(iv.conn_chunk_s)} s of TCP connections) ` +
    `per contender (${names.join(', ')})${warm}, every topology up at once, the order rotating every round; load ${iv.load_start} → ${iv.load_end}.\n\n`;
  const rounds = Array.from({ length: iv.rounds }, (_, i) => String(i + 1));
  const one = (v: number | null | undefined): Cell => v ?? null;
  const rows: Cell[][] = [];
  for (const c of names) rows.push([`${c} RTT p99 µs`, ...rounds.map((_, i) => one(iv.rtt_p99_us_rounds[c]?.[i]))]);
  for (const c of names) if (iv.rtt_p99_per_kernel_rounds[c]?.length && c !== 'kernel') rows.push([`${c} p99 / kernel's`, ...rounds.map((_, i) => one(iv.rtt_p99_per_kernel_rounds[c]?.[i]))]);
  for (const c of names) if (iv.conn_per_s_chunks[c]?.length) rows.push([`${c} conn/s`, ...rounds.map((_, i) => one(iv.conn_per_s_chunks[c]?.[i]))]);
  return s + mdTable(['round', ...rounds], rows);
}

export function e2ePlot(r: E2eResult): string {
  const bars = (f: 'mpps' | 'new_flow_mpps' | 'conn_per_s' | 'rtt_p50_us' | 'rtt_p99_us') => [
    { name: 'wdp', value: r[`wdp_${f}`] }, { name: 'kernel nft DNAT', value: r[`kernel_${f}`] }, { name: 'OVS userspace', value: r[`ovs_${f}`] },
  ];
  return stack([
    barChart({
      title: 'e2e throughput through a ClusterIP (64-byte UDP)', yLabel: 'Mpps',
      groups: [
        { label: 'one flow', bars: [...bars('mpps'), { name: 'generator alone', value: r.generator_mpps }] },
        { label: 'new flow per packet', bars: [...bars('new_flow_mpps'), { name: 'generator alone', value: r.generator_new_flow_mpps }] },
      ],
    }),
    barChart({
      title: 'e2e TCP connection rate and UDP round trip', yLabel: 'value', logY: true,
      groups: [
        { label: 'TCP conn/s', bars: bars('conn_per_s') },
        { label: 'RTT p50 µs', bars: bars('rtt_p50_us') },
        { label: 'RTT p99 µs', bars: bars('rtt_p99_us') },
      ],
    }),
  ]);
}

function choiceListOpt<T extends string>(name: string, allowed: readonly T[]): (v: string) => T[] {
  return (v: string) => {
    const xs = v.split(',').map((x) => x.trim()).filter(Boolean);
    for (const x of xs) if (!allowed.includes(x as T)) throw new InvalidArgumentError(`${name}: unknown value ${JSON.stringify(x)} (one or more of ${allowed.join(', ')})`);
    if (!xs.length) throw new InvalidArgumentError(`${name}: at least one of ${allowed.join(', ')}`);
    return xs as T[];
  };
}

function registerE2e(bench: Command): void {
  const contenders = ['wdp', 'kernel', 'ovs'] as const, tests = ['rtt', 'conn', 'one', 'new'] as const;
  bench.command('e2e')
    .description('end-to-end through namespaces: wdp daemon vs kernel nftables DNAT vs Open vSwitch userspace ct(nat), same topology and generator, and the generator alone')
    .option('--seconds <duration>', 'duration of each blast (a bare number is seconds); the TCP connection test per contender, split over the rounds', durationArg({ flag: '--seconds', unit: 's', min: 0.1, max: 600 }), 3)
    .option('--rtt-samples <n>', 'UDP ping-pong round trips per contender for the latency figures, split over the rounds', intOpt('--rtt-samples', 10, 1_000_000), 10_000)
    .option('--rtt-seconds <duration>', "time bound of one contender's round trips over all rounds (fewer samples when it runs out; a bare number is seconds)", durationArg({ flag: '--rtt-seconds', unit: 's', min: 0.1, max: 3600 }), 60)
    .option('--rounds <n>', 'latency and connection rate: rounds of short chunks, every contender up at once, the order rotating', intOpt('--rounds', 1, 1000), 10)
    .addOption(new Option('--only <side>', 'measure one side').choices(['wdp', 'kernel']))
    .option('--contenders <list>', `which dataplanes (${contenders.join(',')}); OVS is skipped with a reason when not installed (default: all, or --only's)`, choiceListOpt('--contenders', contenders))
    .option('--tests <list>', `which tests (${tests.join(',')}; default: all)`, choiceListOpt('--tests', tests))
    .option('--no-generator', 'skip the generator-alone run (no ceiling, no CPU-per-packet figures)')
    .addOption(new Option('--wdp-port <type>', 'wdp port type on the router').choices(['afxdp', 'afpacket']).default('afxdp'))
    .option('--wdp-busy-poll <duration>', "wdp's busyPollUs: 50us, 0.1ms, or a bare number of microseconds (default: the daemon's)", durationArg({ flag: '--wdp-busy-poll', unit: 'us', min: 0, max: 100_000, integer: true }))
    .option('--wdp-bin <path>', "another build's bin/wdp.js as the wdp contender (A/B of versions; default: this one's)")
    .option('--wdp-worker-nice <n>', "wdp's workerNice, -20..19 (default: the daemon's)", intOpt('--wdp-worker-nice', -20, 19))
    .option('--wdp-worker-realtime <prio>', "wdp's workerRealtimePriority, 0..99 (default: the daemon's)", intOpt('--wdp-worker-realtime', 0, 99))
    .option('--wdp-kernel-path', "wdp with its kernel path on (config kernelPath; Linux 6.6+): established flows forwarded by the kernel")
    .option('--json', 'one JSON object on stdout')
    .option('--plot <file.svg>', 'draw side-by-side bars')
    .option('--quiet', 'no progress on stderr')
    .action(guarded(async (o: CommonOpts & { seconds: number; rttSamples: number; rttSeconds: number; rounds: number; only?: 'wdp' | 'kernel'; contenders?: Array<typeof contenders[number]>; tests?: Array<typeof tests[number]>; generator: boolean; wdpPort: 'afxdp' | 'afpacket'; wdpBusyPoll?: number; wdpBin?: string; wdpWorkerNice?: number; wdpWorkerRealtime?: number; wdpKernelPath?: boolean }) => {
      if (o.only && o.contenders) throw new Error('--only and --contenders: use one of them');
      const { runE2eBench } = await import('./e2e.js');
      const r = await runE2eBench({
        seconds: o.seconds, rttSamples: o.rttSamples, rttSeconds: o.rttSeconds, rounds: o.rounds, only: o.only, contenders: o.contenders, tests: o.tests,
        generator: o.generator, wdpPort: o.wdpPort, wdpBusyPollUs: o.wdpBusyPoll, wdpBin: o.wdpBin ? resolvePath(o.wdpBin) : undefined, wdpWorkerNice: o.wdpWorkerNice, wdpWorkerRealtime: o.wdpWorkerRealtime, progress: progressFor(o),
        ...(o.wdpKernelPath ? { wdpExtra: { kernelPath: { enabled: true } } } : {}),
      });
      emit(o, r, () => e2eMarkdown(r), () => e2ePlot(r));
    }));
}

// ---- io ----------------------------------------------------------------------------------------

/** Adapts a suite's onProgress(phase, done, total) callback to progress bars on stderr. */
function phaseProgress(p: Progress): (phase: string, done: number, total: number) => void {
  let cur: { phase: string; bar: ReturnType<Progress['bar']>; done: number } | null = null;
  return (phase, done, total) => {
    if (!cur || cur.phase !== phase) {
      cur?.bar.done();
      cur = { phase, bar: p.bar(phase, Math.max(1, total)), done: 0 };
    }
    if (done > cur.done) { cur.bar.tick(done - cur.done); cur.done = done; }
    if (done >= total) { cur.bar.done(); cur = null; }
  };
}

function registerIo(bench: Command): void {
  bench.command('io')
    .description('port I/O throughput: AF_PACKET and TAP ports vs kernel forwarding (wraps runIoBench)')
    .option('--seconds <duration>', `measuring window per mode: 3s, 500ms, or a bare number of seconds (default: ${IO_BENCH_DEFAULTS.seconds})`, durationArg({ flag: '--seconds', unit: 's', min: 0.05, max: 3600 }))
    .option('--warmup <duration>', `traffic before each window opens, a bare number in seconds (default: ${IO_BENCH_DEFAULTS.warmupSeconds})`, durationArg({ flag: '--warmup', unit: 's', min: 0, max: 60 }))
    .option('--batch <n>', `frames per burst (default: ${IO_BENCH_DEFAULTS.batch})`, intOpt('--batch', 1, 65535))
    .option('--size <bytes>', `frame length without FCS (default: ${IO_BENCH_DEFAULTS.size})`, intOpt('--size', 60, 65535))
    .option('--modes <list>', 'af_packet,tap,kernel (default: all three)')
    .option('--json', 'one JSON object on stdout')
    .option('--plot <file.svg>', 'draw the figures as bars')
    .option('--quiet', 'no progress on stderr')
    .action(guarded(async (o: CommonOpts & { seconds?: number; warmup?: number; batch?: number; size?: number; modes?: string }) => {
      const runIoBench = await loadSuite('./io.js', 'runIoBench');
      const p = progressFor(o);
      const opts: Record<string, unknown> = { onProgress: phaseProgress(p) };
      for (const k of ['seconds', 'batch', 'size'] as const) if (o[k] !== undefined) opts[k] = o[k];
      if (o.warmup !== undefined) opts.warmupSeconds = o.warmup;
      if (o.modes !== undefined) {
        const modes = o.modes.split(',').map((x) => x.trim()).filter(Boolean);
        for (const m of modes) if (!['af_packet', 'tap', 'kernel'].includes(m)) throw new Error(`--modes: unknown mode ${JSON.stringify(m)} (af_packet, tap, kernel)`);
        opts.modes = modes;
      }
      const r = await runIoBench(opts);
      const result = { suite: 'io', ...r };
      const rows = Array.isArray(r.rows) ? (r.rows as Record<string, unknown>[]) : null;
      emit(o, result, () => {
        let s = '### wdp bench io\n\n' + (rows ? rowsTable(rows) : kvTable(result));
        const notes = Array.isArray(r.notes) ? (r.notes as string[]) : [];
        if (notes.length) s += '\n' + notes.map((n) => `- ${n}`).join('\n') + '\n';
        return s;
      }, () => barChart({
        title: 'port I/O: frames forwarded between two namespaces', yLabel: 'Mpps',
        groups: (rows ?? []).map((row) => ({ label: String(row.mode), bars: [
          { name: 'forwarded', value: typeof row.forwarded_mpps === 'number' ? row.forwarded_mpps : null },
          { name: 'offered', value: typeof row.offered_mpps === 'number' ? row.offered_mpps : null },
        ] })),
      }));
    }));
}

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks: core, control, e2e, io, kube (Markdown by default, --json for machines)');
  registerCore(bench);
  registerControl(bench);
  registerE2e(bench);
  registerIo(bench);
  registerKubeBench(bench, hostInfo);
}
