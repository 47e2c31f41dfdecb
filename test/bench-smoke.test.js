// `wdp bench <suite> --json` end to end through the real CLI, at tiny sizes. Asserts the JSON
// shape (exactly one object on stdout) and that every figure is a positive number — or, for a
// contender that cannot run here, null together with a reason. Never timing thresholds.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ovsUnavailable } from '../dist/src/bench/peers/ovs.js';
import { ROOT, wdp, oneJson } from './lib/bench-cli.js';

const isRoot = process.getuid?.() === 0;

const positive = (t, j, k) => t.true(typeof j[k] === 'number' && j[k] > 0, `${k} should be a positive number, got ${JSON.stringify(j[k])}`);

test.serial('bench control: wdp and both kernel peers, same service set', async (t) => {
  const N = 6, M = 2;
  const r = await wdp(['bench', 'control', '--services', String(N), '--endpoints', String(M), '--json']);
  const j = oneJson(t, r);
  t.is(j.suite, 'control');
  t.is(j.services, N);
  t.is(j.endpoints_total, N * M);
  for (const k of ['validate_ms', 'compile_ms', 'table_write_ms', 'apply_ms', 'update_one_endpoint_ms']) positive(t, j, k);
  t.true(['daemon', 'http-api', 'in-process'].includes(j.apply_path));
  // the stage split carries its runs and the page faults behind the compile figure
  t.is(j.compile_runs_ms.length, j.repeat);
  t.is(j.compile_runs_page_faults.length, j.repeat);
  t.true(j.compile_runs_ms.every((x) => x > 0));
  positive(t, j, 'compile_first_ms'); // the full-size warm-up's compile, reported on its own
  t.true(Number.isInteger(j.compile_first_page_faults));
  t.true(Number.isInteger(j.compile_page_faults) && j.compile_page_faults >= 0);
  t.true(j.page_fault_us > 0, `page_fault_us ${j.page_fault_us}`);
  if (!isRoot) {
    t.is(j.iptables_restore_ms, null);
    t.is(typeof j.iptables_unavailable_reason, 'string');
    return;
  }
  // as root the daemon itself is measured: a wdp start process with a state dir, over its API
  t.is(j.apply_path, 'daemon', j.daemon_unavailable_reason);
  for (const k of ['daemon_full_sync_ms', 'daemon_one_endpoint_p50_ms', 'daemon_one_endpoint_p99_ms', 'daemon_restart_to_ready_ms']) positive(t, j, k);
  t.true(j.daemon_one_endpoint_p99_ms >= j.daemon_one_endpoint_p50_ms);
  // until packets see it: from the client's send to the last worker's switch, on the host's
  // monotonic clock (the daemon runs here), so never after the answer came back; the daemon's own
  // view starts when it read the request, so never before the send
  t.is(j.daemon_one_endpoint_visible_from, 'monotonic-clock');
  for (const k of ['daemon_one_endpoint_visible_p50_ms', 'daemon_one_endpoint_visible_p99_ms', 'daemon_one_endpoint_p999_ms', 'daemon_one_endpoint_daemon_p50_ms', 'daemon_one_endpoint_daemon_p99_ms']) positive(t, j, k);
  t.true(j.daemon_one_endpoint_visible_p50_ms <= j.daemon_one_endpoint_p50_ms && j.daemon_one_endpoint_visible_p99_ms <= j.daemon_one_endpoint_p99_ms);
  t.true(j.daemon_one_endpoint_daemon_p50_ms <= j.daemon_one_endpoint_visible_p50_ms && j.daemon_one_endpoint_daemon_p99_ms <= j.daemon_one_endpoint_visible_p99_ms);
  t.true(j.daemon_one_endpoint_p999_ms >= j.daemon_one_endpoint_p99_ms);
  t.is(j.daemon_one_endpoint_samples, 200);
  // the CPU a change took and the daemon's wait for a CPU (the kernel's schedstat, in ns), and the client's
  for (const k of ['daemon_one_endpoint_daemon_cpu_ms', 'daemon_one_endpoint_client_cpu_ms']) positive(t, j, k);
  t.true(j.daemon_one_endpoint_daemon_cpu_wait_ms >= 0, `${j.daemon_one_endpoint_daemon_cpu_wait_ms}`);
  for (const k of ['iptables_restore_ms', 'iptables_update_one_endpoint_ms', 'nft_ms', 'nft_update_one_endpoint_ms']) positive(t, j, k);
  t.true(['iptables-nft-restore', 'iptables-legacy-restore'].includes(j.iptables_variant));
  // kube-proxy iptables shape: 5 filter + 8 fixed nat rules, then per service 1 KUBE-SERVICES
  // match, 1 masquerade mark, M probability jumps and 2 rules per KUBE-SEP chain
  t.is(j.iptables_rules, 13 + N * (2 + 3 * M));
  // nftables shape: 7 fixed rules, per service 2 (mark, numgen vmap) + 2 per endpoint chain
  t.is(j.nft_rules, 7 + N * (2 + 2 * M));
  for (const k of ['apply_speedup_vs_iptables', 'apply_speedup_vs_nft', 'update_speedup_vs_iptables', 'update_speedup_vs_nft']) positive(t, j, k);
  t.is(j.apply_speedup_vs_nft, Math.round((j.nft_ms / j.apply_ms) * 100) / 100);
});

test.serial('bench control: the peers leave no namespace behind', async (t) => {
  if (!isRoot) { t.pass('needs root for namespaces; the shape test above covers the rest'); return; }
  const r = await wdp(['bench', 'control', '--services', '2', '--endpoints', '1', '--json', '--quiet']);
  oneJson(t, r);
  // the bench names its namespaces wdp-b<its pid>-...: none may outlive it
  const list = await new Promise((res) => execFile('ip', ['netns', 'list'], (_e, out) => res(out)));
  t.false(list.includes(`wdp-b${r.pid}-`), list);
});

test.serial('bench control: bad input is a clear error and nothing on stdout', async (t) => {
  const r = await wdp(['bench', 'control', '--services', 'lots', '--json']);
  t.not(r.code, 0);
  t.is(r.stdout, '');
  t.regex(r.stderr, /--services must be an integer/);
  const r2 = await wdp(['bench', 'control', '--services', '3', '--peers', 'ipvs', '--json']);
  t.not(r2.code, 0);
  t.is(r2.stdout, '');
  t.regex(r2.stderr, /unknown peer "ipvs"/);
});

test.serial('bench control --plot writes an SVG with the contenders', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-bench-plot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'control.svg');
  const r = await wdp(['bench', 'control', '--services', '3', '--endpoints', '1', '--peers', 'none', '--plot', file, '--quiet']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /\| dataplane/);          // default output is a Markdown table
  const svg = readFileSync(file, 'utf8');
  t.true(svg.startsWith('<svg'));
  t.regex(svg, /<rect [^>]*fill="#1f77b4"><title>wdp: /);
  t.regex(svg, /n\/a/);                        // peers not run: drawn as n/a, not as zero
});

test.serial('bench e2e: generator and kernel figures positive; wdp and ovs positive or null with a reason', async (t) => {
  if (!isRoot) {
    const r = await wdp(['bench', 'e2e', '--seconds', '0.3', '--json']);
    t.not(r.code, 0);
    t.is(r.stdout, '');
    return;
  }
  const r = await wdp(['bench', 'e2e', '--seconds', '0.3', '--rtt-samples', '50', '--rounds', '5', '--json']);
  const j = oneJson(t, r);
  t.is(j.suite, 'e2e');
  // latency and connections from interleaved rounds: 5 rounds × 10 round trips per contender
  t.is(j.interleave.rounds, 5);
  t.is(j.interleave.rtt_chunk, 10);
  t.is(j.kernel_rtt_samples + j.kernel_rtt_lost, 50);
  t.is(j.interleave.rtt_p99_us_rounds.kernel.length, 5);
  t.is(typeof j.platform.nproc, 'number');
  t.true('guest_halt_poll_ns' in j.platform && 'sched_autogroup_enabled' in j.platform && 'cpuidle_driver' in j.platform);
  if (j.wdp_unavailable_reason === undefined) {
    positive(t, j, 'wdp_rtt_p99_per_kernel');
    t.true(j.wdp_rtt_p99_per_kernel_lo <= j.wdp_rtt_p99_per_kernel_hi);
    t.is(j.interleave.rtt_p99_per_kernel_rounds.wdp.length, 5);
  }
  for (const k of ['generator_mpps', 'generator_new_flow_mpps', 'generator_cpu_ns_per_frame']) positive(t, j, k);
  for (const k of ['kernel_mpps', 'kernel_new_flow_mpps', 'kernel_offered_mpps', 'kernel_conn_per_s', 'kernel_rtt_p50_us', 'kernel_rtt_p99_us']) positive(t, j, k);
  t.true(j.kernel_rtt_p99_us >= j.kernel_rtt_p50_us);
  t.true(typeof j.kernel_cpu_s === 'number' && j.kernel_cpu_s >= 0);
  t.true(typeof j.kernel_cpu_ns_per_packet === 'number' && j.kernel_cpu_ns_per_packet >= 0);
  const sideKeys = (c) => [`${c}_mpps`, `${c}_new_flow_mpps`, `${c}_conn_per_s`, `${c}_rtt_p50_us`, `${c}_rtt_p99_us`];
  for (const c of ['wdp', 'ovs']) {
    if (j[`${c}_unavailable_reason`] !== undefined) {
      t.is(typeof j[`${c}_unavailable_reason`], 'string');
      t.true(j[`${c}_unavailable_reason`].length > 0);
      for (const k of sideKeys(c)) t.is(j[k], null, `${k} must be null when ${c} did not run`);
    } else {
      for (const k of sideKeys(c)) positive(t, j, k);
      t.true(typeof j[`${c}_cpu_s`] === 'number' && j[`${c}_cpu_s`] >= 0);
      positive(t, j, `${c}_process_cpu_ns_per_packet`);
      t.is(typeof j[`${c}_port_type`], 'string');
    }
  }
  if (j.wdp_unavailable_reason === undefined) {
    const s = j.wdp_time_split;
    for (const k of ['rx_pct', 'core_pct', 'tx_pct', 'busy_pct', 'frames_per_batch']) t.true(typeof s[k] === 'number' && s[k] > 0, `wdp_time_split.${k}`);
  }
});

(isRoot ? test.serial : test.skip)('bench e2e: --contenders and --tests select what runs; the rest is null with "not requested" (needs root: namespaces)', async (t) => {
  const r = await wdp(['bench', 'e2e', '--seconds', '0.3', '--contenders', 'kernel', '--tests', 'one', '--json', '--quiet']);
  const j = oneJson(t, r);
  positive(t, j, 'kernel_mpps');
  t.is(j.kernel_rtt_p50_us, null);
  t.is(j.kernel_new_flow_mpps, null);
  t.is(j.wdp_unavailable_reason, 'not requested');
  t.is(j.ovs_unavailable_reason, 'not requested');
  positive(t, j, 'generator_mpps');
  const bad = await wdp(['bench', 'e2e', '--contenders', 'vpp']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /--contenders: unknown value "vpp"/);
});

(isRoot ? test.serial : test.skip)('bench/ab-e2e.mjs with blasts: the generator variant gives the ceiling, the kernel and wdp variants forwarded frames and CPU per packet; bad variants are refused (needs root: namespaces)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ab-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'ab.json');
  const r = await new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bench/ab-e2e.mjs'), '--rounds', '1', '--rtt-chunk', '0', '--conn-seconds', '0', '--blast', 'one', '--blast-seconds', '0.5',
    '--json', out, '--variant', 'gen=generator', '--variant', 'kernel=kernel', '--variant', 'wdp=wdp,rxRing=1024,cfg.workerCpus=[0]'],
  { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })));
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(readFileSync(out, 'utf8')).res;
  const by = Object.fromEntries(res.map((x) => [x.name, x.blasts.one]));
  t.true(by.gen.offered_mpps > 0 && by.gen.mpps === null && by.gen.cpu_ns_per_packet > 0, JSON.stringify(by.gen));
  for (const v of ['kernel', 'wdp']) t.true(by[v].mpps > 0 && by[v].cpu_ns_per_packet !== null, `${v}: ${JSON.stringify(by[v])}`);
  t.true(by.wdp.process_cpu_ns_per_packet !== null);
  t.true(res.find((x) => x.name === 'wdp').time_split.frames_per_batch > 0);
  t.regex(r.stdout, /\| wdp \| [0-9.]+ \| [0-9.]+ \|/);
  const bad = await new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bench/ab-e2e.mjs'), '--variant', 'a=kernel', '--variant', 'b=vpp'], { cwd: ROOT }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stderr })));
  t.not(bad.code, 0);
  t.regex(bad.stderr, /generator, kernel, ovs or wdp/);
});

(isRoot ? test.serial : test.skip)('bench/ab-e2e.mjs latency rounds: per-round p99 ratios and a range against the first variant, the host\'s round-trip floor (needs root: namespaces)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ab-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'ab.json');
  const variants = ['kernel=kernel', 'wdp=wdp', ...(ovsUnavailable() ? [] : ['ovs=ovs'])].flatMap((v) => ['--variant', v]);
  const r = await new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bench/ab-e2e.mjs'), '--rounds', '3', '--rtt-chunk', '40', '--conn-seconds', '0.2',
    '--json', out, ...variants], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })));
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  t.is(typeof j.platform.nproc, 'number');
  for (const x of j.res) {
    t.is(x.unavailable_reason, undefined, `${x.name}: ${x.unavailable_reason}`);
    t.is(x.rtt_samples + x.rtt_lost, 120, x.name);
    t.is(x.rtt_p99_us_rounds.length, 3);
    t.is(x.conn_per_s_chunks.length, 3);
    t.true(x.conn_per_s > 0, x.name);
    t.is(x.ratio_to, 'kernel');
    t.is(x.rtt_p99_ratio_rounds.length, 3);
  }
  const wdpFig = j.res.find((x) => x.name === 'wdp');
  t.true(wdpFig.rtt_p99_ratio > 0);
  t.true(wdpFig.rtt_p99_ratio_range.lo <= wdpFig.rtt_p99_ratio_range.hi, JSON.stringify(wdpFig.rtt_p99_ratio_range));
  t.is(wdpFig.rtt_p99_ratio_range.rounds, 3);
  t.regex(r.stdout, /p99 \/ kernel per round: wdp [0-9.]+ [0-9.]+ [0-9.]+/);
  t.regex(r.stdout, /round-trip floor: cpuidle .* CPUs, load /);
});

(isRoot ? test.serial : test.skip)('bench e2e latency rounds: bounded in time (fewer samples, reported), and a variant that cannot start is reported while the others are measured (needs root: namespaces)', async (t) => {
  const r = await wdp(['bench', 'e2e', '--contenders', 'kernel', '--tests', 'rtt', '--rounds', '2', '--rtt-samples', '200000', '--rtt-seconds', '0.6', '--json', '--quiet']);
  const j = oneJson(t, r);
  t.true(j.kernel_rtt_samples > 0 && j.kernel_rtt_samples < 200000, String(j.kernel_rtt_samples));
  t.is(j.interleave.rtt_chunk, 100000);
  t.is(j.kernel_conn_per_s, null);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ab-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'ab.json');
  const ab = await new Promise((resolve) => execFile(process.execPath, [join(ROOT, 'bench/ab-e2e.mjs'), '--rounds', '2', '--rtt-chunk', '20', '--conn-seconds', '0',
    '--json', out, '--variant', 'kernel=kernel', '--variant', `broken=wdp,bin=${join(dir, 'no-such-wdp.js')}`], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })));
  t.is(ab.code, 0, ab.stderr);
  const res = JSON.parse(readFileSync(out, 'utf8')).res;
  const broken = res.find((x) => x.name === 'broken'), kernel = res.find((x) => x.name === 'kernel');
  t.regex(broken.unavailable_reason, /broken did not come up: /);
  t.is(broken.rtt_samples, 0);
  t.is(broken.rtt_p99_ratio, null);
  t.is(kernel.unavailable_reason, undefined);
  t.is(kernel.rtt_samples + kernel.rtt_lost, 40);
  t.regex(ab.stdout, /broken: broken did not come up/);
});

test.serial('bench core: rows from runCoreBench, or a clear message while it has not landed', async (t) => {
  const built = existsSync(join(ROOT, 'dist/src/bench/core.js'));
  const r = await wdp(['bench', 'core', '--sweep', 'services', '--points', '10,100', '--endpoints', '2', '--flows', '1000', '--ct-capacity', '65536', '--seconds', '0.3', '--json', '--quiet']);
  if (!built) {
    t.not(r.code, 0);
    t.regex(r.stderr, /not built yet|missing/);
    t.is(r.stdout, '');
    return;
  }
  const j = oneJson(t, r);
  t.is(j.sweep, 'services');
  t.deepEqual(j.rows.map((x) => x.services), [10, 100]);
  for (const row of j.rows) {
    const figures = Object.entries(row).filter(([k, v]) => typeof v === 'number' && /pps/.test(k));
    t.true(figures.length > 0, `a row should carry at least one *pps figure: ${JSON.stringify(row)}`);
    for (const [k, v] of figures) t.true(v > 0, `${k} = ${v}`);
  }
});

test.serial('bench core --workers 2: one worker, fanout split and owner split, every frame forwarded on its flow', async (t) => {
  const r = await wdp(['bench', 'core', '--workers', '2', '--services', '10', '--endpoints', '2', '--flows', '2000', '--seconds', '0.3', '--json', '--quiet']);
  const j = oneJson(t, r);
  t.is(j.suite, 'core-workers');
  for (const k of ['one_worker_mpps', 'fanout_mpps', 'owner_split_mpps', 'one_worker_mpps_per_cpu', 'fanout_mpps_per_cpu', 'owner_split_mpps_per_cpu']) positive(t, j, k);
  t.deepEqual(j.runs.map((x) => [x.workers, x.split]), [[1, 'one'], [2, 'fanout'], [2, 'owner']]);
  for (const run of j.runs) {
    t.is(run.forwarded_fraction, 1, `${run.split}: every frame forwarded`);
    t.is(run.ct_new, 0, `${run.split}: every frame found its flow (none created in the timed phase)`);
  }
  t.true(j.runs[1].handed_off_fraction > 0.3, 'the fanout split hands frames over');
  t.is(j.runs[2].handed_off_fraction, 0, 'the owner split hands nothing over');
  const bad = await wdp(['bench', 'core', '--workers', '1']);
  t.not(bad.code, 0);
});

test.serial('bench io: figures positive or null with an error', async (t) => {
  const built = existsSync(join(ROOT, 'dist/src/bench/io.js'));
  const r = await wdp(['bench', 'io', '--seconds', '0.3', '--warmup', '0.1', '--json', '--quiet']);
  if (!built) { t.not(r.code, 0); t.is(r.stdout, ''); return; }
  const j = oneJson(t, r);
  t.is(j.suite, 'io');
  t.true(Array.isArray(j.rows) && j.rows.length > 0);
  for (const row of j.rows) {
    if (row.forwarded_mpps === null) t.is(typeof row.error, 'string', `mode ${row.mode}: null needs an error`);
    else t.true(row.forwarded_mpps > 0, `mode ${row.mode}`);
  }
});
