// A/B of wdp variants end to end: rounds of `wdp bench e2e --contenders kernel,wdp`, one
// invocation per variant per round, variants interleaved so load drift hits all alike. Each
// invocation measures the kernel too, so every wdp figure comes with its ratio to the kernel
// measured minutes (not hours) apart; the summary prints per-variant medians of those ratios.
//
//   node bench/ab-e2e.mjs --rounds 3 --tests rtt,conn --seconds 2 \
//     --variant 'old=--wdp-bin /tmp/old/bin/wdp.js' --variant 'bp0=--wdp-busy-poll 0' --variant 'bp200=--wdp-busy-poll 200'
//
// Output: one JSON line per invocation on stderr as it finishes, the summary table on stdout.
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const WDP = fileURLToPath(new URL('../bin/wdp.js', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const variants = [];
for (let i = 0; i < args.length; i++) if (args[i] === '--variant') {
  const v = args[i + 1], eq = v.indexOf('=');
  variants.push({ name: v.slice(0, eq), argv: v.slice(eq + 1).split(' ').filter(Boolean) });
}
if (!variants.length) { console.error('at least one --variant name=ARGS'); process.exit(2); }
const rounds = Number(opt('--rounds', '3'));
const common = ['bench', 'e2e', '--contenders', 'kernel,wdp', '--tests', opt('--tests', 'rtt,conn'), '--seconds', opt('--seconds', '2'),
  '--rtt-samples', opt('--rtt-samples', '2000'), '--json', '--quiet', ...(opt('--tests', 'rtt,conn').match(/one|new/) ? [] : ['--no-generator'])];

const FIG = [
  ['rtt_p50_us', 'lower'], ['rtt_p99_us', 'lower'], ['conn_per_s', 'higher'], ['mpps', 'higher'], ['new_flow_mpps', 'higher'], ['cpu_ns_per_packet', 'lower'],
];
const rows = [];
for (let r = 0; r < rounds; r++) {
  for (const v of (r % 2 ? [...variants].reverse() : variants)) {
    const load = loadavg()[0];
    let j;
    try { j = JSON.parse(execFileSync(process.execPath, [WDP, ...common, ...v.argv], { encoding: 'utf8', maxBuffer: 16 << 20, timeout: 600_000 }).trim().split('\n').pop()); } catch (e) {
      console.error(`${v.name} round ${r}: ${e.message.split('\n')[0]}`); continue;
    }
    const row = { variant: v.name, round: r, load: Math.round(load * 10) / 10, split: j.wdp_time_split, wdp_cpu_s: j.wdp_cpu_s };
    for (const [f] of FIG) {
      row[`wdp_${f}`] = j[`wdp_${f}`]; row[`kernel_${f}`] = j[`kernel_${f}`];
      row[`ratio_${f}`] = j[`wdp_${f}`] != null && j[`kernel_${f}`] ? Math.round((j[`wdp_${f}`] / j[`kernel_${f}`]) * 100) / 100 : null;
    }
    if (j.wdp_unavailable_reason) row.wdp_unavailable_reason = j.wdp_unavailable_reason;
    console.error(JSON.stringify(row));
    rows.push(row);
  }
}
const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : Math.round(((s[m - 1] + s[m]) / 2) * 100) / 100;
};
const figs = FIG.filter(([f]) => rows.some((x) => x[`ratio_${f}`] != null));
console.log(`| variant | ${figs.map(([f, d]) => `wdp/kernel ${f} (${d} is better)`).join(' | ')} | wdp ${figs.map(([f]) => f).join(' / ')} (median) |`);
console.log(`|---|${figs.map(() => '---:').join('|')}|---|`);
for (const v of variants) {
  const mine = rows.filter((x) => x.variant === v.name);
  console.log(`| ${v.name} | ${figs.map(([f]) => `${median(mine.map((x) => x[`ratio_${f}`]))} (${mine.map((x) => x[`ratio_${f}`]).join(', ')})`).join(' | ')} | ${figs.map(([f]) => median(mine.map((x) => x[`wdp_${f}`]))).join(' / ')} |`);
}
console.log(`\nrounds ${rounds}, loads ${rows.map((x) => x.load).join(' ')}`);
