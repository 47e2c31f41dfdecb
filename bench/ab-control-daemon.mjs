#!/usr/bin/env node
// A/B of daemon builds (or of environment settings) as `wdp bench control` drives them: rounds of
// one bench run per variant, the order reversed every other round (ABBA), so that a shared
// machine's load drift hits every variant alike; prints each run and each variant's medians.
//
//   node bench/ab-control-daemon.mjs ROUNDS NAME=SPEC [NAME=SPEC ...] [-- BENCH ARGS]
//   SPEC: comma-separated bin=PATH (another build's bin/wdp.js: WDP_BENCH_DAEMON_BIN) and
//         ENV=VALUE settings for that variant's bench and daemon
//   e.g. node bench/ab-control-daemon.mjs 8 main=bin=/tmp/main/bin/wdp.js new=bin=$PWD/bin/wdp.js
//
// Per run: the load (1-minute average) at its start and the fields below; then each variant's
// medians with the range of loads, each variant's medians over the first variant's, and each
// variant's per-round ratios to the first's (their median, and in how many rounds lower).
//
// Default bench arguments: --services 10000 --endpoints 10 --peers none --changes 20. The bench
// client is this checkout's (bin/wdp.js next to this file); the daemon the variant's.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { median as medianOf } from '../dist/src/bench/report.js';
import { alternateRuns, runJsonChild } from './ab-builds.mjs';

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const [rounds, ...specs] = dash < 0 ? argv : argv.slice(0, dash);
const benchArgs = dash < 0 ? ['--services', '10000', '--endpoints', '10', '--peers', 'none', '--changes', '20'] : argv.slice(dash + 1);
if (!(Number(rounds) > 0) || !specs.length) { console.error('usage: ab-control-daemon.mjs ROUNDS NAME=SPEC ... [-- BENCH ARGS]'); process.exit(2); }
const WDP = fileURLToPath(new URL('../bin/wdp.js', import.meta.url));
const variants = specs.map((s) => {
  const eq = s.indexOf('=');
  const env = {};
  for (const kv of (eq < 0 ? '' : s.slice(eq + 1)).split(',').filter(Boolean)) {
    const k = kv.slice(0, kv.indexOf('=')), v = kv.slice(kv.indexOf('=') + 1);
    env[k === 'bin' ? 'WDP_BENCH_DAEMON_BIN' : k] = v;
  }
  return { name: eq < 0 ? s : s.slice(0, eq), env, runs: [], failed: 0 };
});
const FIELDS = ['daemon_full_sync_ms', 'daemon_full_sync_cpu_ms', 'daemon_restart_to_forwarding_ms', 'daemon_restart_to_ready_ms', 'daemon_restart_cpu_ms',
  'daemon_one_endpoint_visible_p50_ms', 'daemon_one_endpoint_visible_p99_ms', 'daemon_one_endpoint_visible_p999_ms', 'daemon_one_endpoint_daemon_p99_ms', 'daemon_one_endpoint_daemon_cpu_ms'];
const short = (f) => f.replace('daemon_', '');
// (over the runs that measured the field: a null, e.g. a restart the bench skipped, is no 0)
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return s.length ? medianOf(s) : null;
};
let calls = 0;
alternateRuns(Number(rounds), variants, (v) => {
  const round = Math.floor(calls++ / variants.length);
  const load = loadavg()[0];
  let d;
  try { d = runJsonChild(WDP, ['bench', 'control', ...benchArgs, '--json'], v.env); } catch (e) { v.failed++; console.error(`${v.name}: the bench failed: ${e.message}`); return; }
  d.load = load;
  d.round = round;
  v.runs.push(d);
  console.log(`${new Date().toISOString().slice(11, 19)} ${v.name.padEnd(10)} load ${load.toFixed(1)} ${FIELDS.map((f) => `${short(f)}=${d[f]}`).join(' ')}`);
});
const med = (v, f) => median(v.runs.map((d) => d[f]));
const fmt = (x) => x === null ? '—' : Math.round(x * 100) / 100;
for (const v of variants) {
  const loads = v.runs.map((d) => d.load).sort((a, b) => a - b);
  console.log(`MEDIAN ${v.name.padEnd(10)} n=${v.runs.length}${v.failed ? ` FAILED=${v.failed}` : ''} load ${loads.length ? `${loads[0].toFixed(1)}–${loads[loads.length - 1].toFixed(1)}` : '—'} ${FIELDS.map((f) => `${short(f)}=${fmt(med(v, f))}`).join(' ')}`);
}
// each later variant against the first: the ratio of medians (below 1: smaller than the first's)
for (const v of variants.slice(1)) {
  console.log(`RATIO  ${v.name}/${variants[0].name} ${FIELDS.map((f) => { const a = med(variants[0], f), b = med(v, f); return `${short(f)}=${a && b !== null ? (b / a).toFixed(2) : '—'}`; }).join(' ')}`);
}
// each later variant against the first round by round: the median of the per-round ratios and in
// how many rounds it was lower. A shared machine's load swings within a set; a ratio of medians
// can follow one bad minute, the per-round count shows whether a difference keeps its sign
// (identical builds have differed by 1.08–1.17 in the full sync at loads 3–15: docs/performance.md,
// "How firm a figure is on this machine")
for (const v of variants.slice(1)) {
  console.log(`PAIRED ${v.name}/${variants[0].name} ${FIELDS.map((f) => {
    const rs = [];
    for (const d of v.runs) {
      const a = variants[0].runs.find((x) => x.round === d.round)?.[f], b = d[f];
      if (typeof a === 'number' && typeof b === 'number' && a > 0) rs.push(b / a);
    }
    const m = median(rs);
    return `${short(f)}=${m === null ? '—' : `${m.toFixed(2)}(${rs.filter((x) => x < 1).length}/${rs.length})`}`;
  }).join(' ')}`);
}
