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
// Default bench arguments: --services 10000 --endpoints 10 --peers none --changes 20. The bench
// client is this checkout's (bin/wdp.js next to this file); the daemon the variant's.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

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
const FIELDS = ['daemon_full_sync_ms', 'daemon_full_sync_cpu_ms', 'daemon_restart_to_forwarding_ms', 'daemon_restart_to_ready_ms', 'daemon_restart_cpu_ms', 'daemon_one_endpoint_visible_p50_ms'];
const short = (f) => f.replace('daemon_', '');
// (over the runs that measured the field: a null, e.g. a restart the bench skipped, is no 0)
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  const m = s.length >> 1;
  return !s.length ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
for (let r = 0; r < Number(rounds); r++) {
  for (const v of r % 2 ? [...variants].reverse() : variants) {
    const load = loadavg()[0];
    const p = spawnSync(process.execPath, [WDP, 'bench', 'control', ...benchArgs, '--json'], { env: { ...process.env, ...v.env }, encoding: 'utf8' });
    if (p.status !== 0) { v.failed++; console.error(`${v.name}: the bench failed: ${p.stderr.slice(-2000)}`); continue; }
    const d = JSON.parse(p.stdout.trim().split('\n').pop());
    v.runs.push(d);
    console.log(`${new Date().toISOString().slice(11, 19)} ${v.name.padEnd(10)} load ${load.toFixed(1)} ${FIELDS.map((f) => `${short(f)}=${d[f]}`).join(' ')}`);
  }
}
for (const v of variants) {
  const med = (f) => { const m = median(v.runs.map((d) => d[f])); return m === null ? '—' : Math.round(m * 10) / 10; };
  console.log(`MEDIAN ${v.name.padEnd(10)} n=${v.runs.length}${v.failed ? ` FAILED=${v.failed}` : ''} ${FIELDS.map((f) => `${short(f)}=${med(f)}`).join(' ')}`);
}
