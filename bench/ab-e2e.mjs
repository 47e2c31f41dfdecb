// Interleaved A/B of wdp variants end to end (runE2eInterleaved in src/bench/e2e.ts): every
// variant's topology up at once — the kernel's nftables DNAT as the yardstick, wdp as built here,
// wdp with other options, or another build's bin/wdp.js — then rounds of short latency and
// connection-rate chunks, the order rotating every round, so load drift on a shared machine hits
// all alike. Prints each variant's pooled RTT p50/p99, median conn/s, the ratios to the first
// variant (the kernel, usually) with the p99 ratio's 90% range (a bootstrap over whole rounds) and
// its value in every round, the forwarder's CPU per round trip, and the host's round-trip floor
// (cpuidle, guest_halt_poll_ns, autogroup, CPUs, load). `ovs` is the private Open vSwitch
// (stopped outside its own chunks: its PMD thread polls a CPU). `wdp bench e2e` takes its latency
// and connection figures the same way (kernel, wdp and ovs as the variants).
//
//   node bench/ab-e2e.mjs --rounds 6 --rtt-chunk 500 --conn-seconds 1 \
//     --variant kernel=kernel --variant old=wdp,bin=/tmp/old/bin/wdp.js \
//     --variant nice0=wdp,nice=0 --variant default=wdp --variant bp200=wdp,busyPoll=200
//
// Each chunk's client (a fresh process) warms up first, uncounted: --conn-warmup SECONDS (0.3) of
// connections, --rtt-warmup N (100) round trips; 0 counts a cold client's start too.
//
// Throughput and CPU per packet the same way (trafgen blasts, `--blast one,new`, each
// --blast-seconds long per variant and round; a `generator` variant gives the ceiling and the CPU
// baseline, and then latency/connections are off: --rtt-chunk 0 --conn-seconds 0). `cfg.KEY=JSON`
// sets a key of that wdp's config (`cfg.kernelPath.enabled=true`: a nested one):
//
//   node bench/ab-e2e.mjs --rounds 4 --rtt-chunk 0 --conn-seconds 0 --blast one --blast-seconds 2 \
//     --variant gen=generator --variant kernel=kernel --variant old=wdp,bin=/tmp/old/bin/wdp.js \
//     --variant new=wdp --variant pinned=wdp,cfg.workerCpus=[1]
//
// A router you bring, measured beside the others: `command,cmd=PATH[,arg=A]...` runs PATH with
// its args in the router namespace (which has the gateway addresses, so its kernel answers ARP, and
// forwards nothing), the topology appended (src/bench/e2e.ts commandArgv), until its stdin closes;
// it prints `ready` when it forwards, and what it writes to stderr is printed at the end. The
// prototype of an established-flow path in the kernel is one (bench/proto/tc-fastpath.rs):
//
//   rustc -O -o /tmp/tc-fastpath bench/proto/tc-fastpath.rs
//   node bench/ab-e2e.mjs --rounds 4 --rtt-chunk 0 --conn-seconds 0 --blast one,new --blast-seconds 2 \
//     --variant gen=generator --variant kernel=kernel --variant tc=command,cmd=/tmp/tc-fastpath \
//     --variant tcxdp=command,cmd=/tmp/tc-fastpath,arg=--xdp --variant wdp=wdp
//
// Needs root (namespaces) and a built tree (npm run build).
import { loadavg } from 'node:os';
import { runE2eInterleaved, CONN_WARMUP_S, RTT_WARMUP } from '../dist/src/bench/e2e.js';
import { Progress } from '../dist/src/bench/report.js';
import { rttFloorFacts, formatRttFloor } from '../dist/src/bench/platform.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const variants = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] !== '--variant') continue;
  const [name, spec] = args[i + 1].split('=', 2).length === 2 ? [args[i + 1].slice(0, args[i + 1].indexOf('=')), args[i + 1].slice(args[i + 1].indexOf('=') + 1)] : [args[i + 1], args[i + 1]];
  const [contender, ...kv] = spec.split(',');
  if (!['kernel', 'wdp', 'ovs', 'generator', 'command'].includes(contender)) { console.error(`--variant ${args[i + 1]}: generator, kernel, ovs or wdp[,bin=PATH][,busyPoll=US][,nice=N][,rt=PRIO][,port=afxdp|afpacket][,rxRing=N][,xdpMode=native|generic][,cfg.KEY=JSON][,env.NAME=VALUE], or command,cmd=PATH[,arg=A]...`); process.exit(2); }
  const wdp = {}, commandArgs = [];
  let commandPath = null;
  for (const x of kv) {
    const k = x.slice(0, x.indexOf('=')), v = x.slice(x.indexOf('=') + 1);
    if (contender === 'command' && k === 'cmd') { commandPath = v; continue; }
    if (contender === 'command' && k === 'arg') { commandArgs.push(v); continue; }
    if (k === 'bin') wdp.wdpBin = v; else if (k === 'busyPoll') wdp.wdpBusyPollUs = Number(v);
    else if (k === 'nice') wdp.wdpWorkerNice = Number(v); else if (k === 'port') wdp.wdpPort = v;
    else if (k === 'rt') wdp.wdpWorkerRealtime = Number(v);
    else if (k === 'rxRing') wdp.wdpRxRing = Number(v); else if (k === 'xdpMode') wdp.wdpXdpMode = v;
    else if (k.startsWith('env.')) (wdp.wdpEnv ??= {})[k.slice(4)] = v;
    else if (k.startsWith('cfg.')) {
      // cfg.a.b=JSON sets a nested key (a comma inside JSON would end the option)
      let j; try { j = JSON.parse(v); } catch { j = v; }
      const path = k.slice(4).split('.');
      let o = (wdp.wdpExtra ??= {});
      for (const p of path.slice(0, -1)) o = (o[p] ??= {});
      o[path[path.length - 1]] = j;
    }
    else { console.error(`unknown variant option ${k}`); process.exit(2); }
  }
  if (contender === 'command' && !commandPath) { console.error(`--variant ${args[i + 1]}: a command variant needs cmd=PATH`); process.exit(2); }
  variants.push({ name, contender, wdp, ...(contender === 'command' ? { command: [commandPath, ...commandArgs] } : {}) });
}
if (variants.length < 2) { console.error('at least two --variant NAME=kernel|wdp|ovs[,...]'); process.exit(2); }
const platform = rttFloorFacts();
const load0 = loadavg()[0];
const t0 = new Date().toISOString();
const blasts = opt('--blast', '') ? opt('--blast', '').split(',') : [];
const rttChunk = Number(opt('--rtt-chunk', '500')), connSeconds = Number(opt('--conn-seconds', '1'));
const res = await runE2eInterleaved({
  variants, rounds: Number(opt('--rounds', '6')), rttChunk, connSeconds,
  // every ratio, range and per-round ratio against the first variant, as the table says (none
  // when it failed: not silently against another)
  baseline: variants[0].name,
  ...(opt('--rtt-chunk-seconds') ? { rttChunkSeconds: Number(opt('--rtt-chunk-seconds')) } : {}),
  // each chunk's client warms up first, uncounted (src/bench/e2e.ts CONN_WARMUP_S, RTT_WARMUP);
  // --conn-warmup 0 --rtt-warmup 0 count a cold client's start too
  ...(opt('--conn-warmup') ? { connWarmupS: Number(opt('--conn-warmup')) } : {}),
  ...(opt('--rtt-warmup') ? { rttWarmup: Number(opt('--rtt-warmup')) } : {}),
  blasts, blastSeconds: Number(opt('--blast-seconds', '2')),
  progress: new Progress(true),
  // --hold SECONDS: keep the topologies up that long before the rounds (profile or trace them by
  // hand: namespaces and daemon pids are printed); --rounds 0 then just holds them
  onUp: opt('--hold') ? async (up) => {
    console.log(JSON.stringify(up, null, 1));
    await new Promise((r) => setTimeout(r, Number(opt('--hold')) * 1000));
  } : undefined,
});
const ratio = (a, b) => (a != null && b ? Math.round((a / b) * 100) / 100 : null);
if (opt('--json')) (await import('node:fs')).writeFileSync(opt('--json'), JSON.stringify({ started: t0, load0, platform, res }, null, 2));
for (const r of res) if (r.unavailable_reason) console.log(`${r.name}: ${r.unavailable_reason}`);
for (const b of blasts) {
  const kernel = res.find((r) => r.name === 'kernel');
  console.log(`\n${b === 'one' ? 'one flow' : 'new flow per packet'}: Mpps forwarded (offered), CPU ns per packet (process alone), chunks`);
  console.log(`| variant | Mpps | offered | / kernel | CPU ns/packet | process ns/packet | busy % | frames/batch | µs/batch | chunks |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of res) {
    const f = r.blasts[b]; if (!f) continue;
    const ts = r.time_split;
    console.log(`| ${r.name} | ${f.mpps ?? '—'} | ${f.offered_mpps} | ${ratio(f.mpps, kernel?.blasts[b]?.mpps) ?? '—'} | ${f.cpu_ns_per_packet ?? '—'} | ${f.process_cpu_ns_per_packet ?? '—'} | ${ts?.busy_pct ?? '—'} | ${ts?.frames_per_batch ?? '—'} | ${ts?.busy_us_per_batch ?? '—'} | ${f.mpps_chunks.join(' ')} |`);
  }
}
const floor = `round-trip floor: ${formatRttFloor(platform)}`;
// what each chunk's client left out (the defaults when no flag said)
const warmups = `clients' uncounted warm-up: ${rttChunk > 0 ? `${opt('--rtt-warmup') ?? RTT_WARMUP} round trips` : '—'}, ${connSeconds > 0 ? `${opt('--conn-warmup') ?? CONN_WARMUP_S} s of connections` : '—'}`;
if (!(rttChunk > 0 || connSeconds > 0)) { console.log(`\n${t0} → ${new Date().toISOString()}, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}; ${floor}`); process.exit(0); }
const base = res[0];
// (the ratios over the rounds both ran: a variant that failed sat out the rest)
const two = (v) => (v == null ? '—' : v.toFixed(2));
const range = (g) => (g ? `${g.lo.toFixed(2)}–${g.hi.toFixed(2)}` : '—');
console.log(`| variant | RTT p50 µs | RTT p99 µs | conn/s (median chunk) | p50 / ${base.name} | p99 / ${base.name} | its 90% range | conn/s / ${base.name} | forwarder CPU µs per round trip | samples (lost) |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of res) {
  console.log(`| ${r.name} | ${r.rtt_p50_us} | ${r.rtt_p99_us} | ${r.conn_per_s} | ${two(r.rtt_p50_ratio)} | ${two(r.rtt_p99_ratio)} | ${range(r.rtt_p99_ratio_range)} | ${two(r.conn_ratio)} | ${r.process_cpu_us_per_rtt ?? '—'} | ${r.rtt_samples} (${r.rtt_lost}) |`);
}
const cells = (xs) => xs.map((v) => v ?? '—').join(' ');
console.log(`\np99 / ${base.name} per round: ${res.slice(1).map((r) => `${r.name} ${cells(r.rtt_p99_ratio_rounds)}`).join('; ')}`);
console.log(`${t0} → ${new Date().toISOString()}, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)}; conn/s chunks: ${res.map((r) => `${r.name} ${r.conn_per_s_chunks.join(' ')}`).join('; ')}`);
console.log(`${floor}; ${warmups}`);
