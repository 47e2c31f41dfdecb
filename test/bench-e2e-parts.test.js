// The pieces of `wdp bench e2e` that need no root and no traffic: the Open vSwitch flows, the
// server sink's counters, the CPU-per-packet arithmetic and process metering, the worker's time
// split, and the Markdown table with a contender skipped.
import test from 'ava';
import { spawn } from 'node:child_process';
import { sinkRuleset, timeSplitOf, SIDE_FIELDS, CONTENDERS } from '../dist/src/bench/e2e.js';
import { ovsFlows, ovsUnavailable, OVS_TOOLS } from '../dist/src/bench/peers/ovs.js';
import { forwarderCpuSeconds, CpuMeter, processTree, processCpuSeconds, threadSchedStats, schedTotals } from '../dist/src/bench/cpu-account.js';
import { e2eMarkdown } from '../dist/src/bench/cli.js';
import { commandExists } from '../dist/src/bench/peers/netns.js';

const TOPO = {
  router: 'r', toClient: { dev: 'r0', mac: '02:00:00:00:00:01' }, toServer: { dev: 'r1', mac: '02:00:00:00:00:02' },
  clientMac: '02:00:00:00:00:03', serverMac: '02:00:00:00:00:04', clientPrefix: '10.131.0.0/16',
};

test('ovs flows: conntrack DNAT from the client side, reverse NAT back, nothing else forwarded', (t) => {
  const f = ovsFlows(TOPO, [{ vip: '10.96.99.10', port: 80, proto: 'udp', addr: '10.130.2.2', target: 8080 }, { vip: '10.96.99.11', port: 80, proto: 'tcp', addr: '10.130.2.2', target: 8080 }]).trim().split('\n');
  t.true(f.includes('table=0,priority=100,udp,in_port=r0,nw_dst=10.96.99.10,tp_dst=80,actions=ct(commit,zone=1,nat(dst=10.130.2.2:8080),table=1)'));
  t.true(f.includes('table=0,priority=100,tcp,in_port=r0,nw_dst=10.96.99.11,tp_dst=80,actions=ct(commit,zone=1,nat(dst=10.130.2.2:8080),table=1)'));
  t.true(f.includes('table=0,priority=90,ip,in_port=r1,actions=ct(zone=1,nat,table=2)'));
  // replies only for tracked established connections, towards the client prefix, MACs rewritten
  t.true(f.some((l) => l.startsWith('table=2,priority=10,ip,ct_state=+trk+est,nw_dst=10.131.0.0/16,') && l.includes('mod_dl_dst:02:00:00:00:00:03') && l.endsWith('output:r0')));
  t.true(f.some((l) => l.startsWith('table=1,') && l.includes('mod_dl_dst:02:00:00:00:00:04') && l.includes('dec_ttl') && l.endsWith('output:r1')));
  // every table ends in an explicit drop (fail-mode secure: no NORMAL fallback)
  for (const tbl of [0, 1, 2]) t.true(f.includes(`table=${tbl},priority=0,actions=drop`));
});

test('ovs availability: a reason naming the package exactly when a tool is missing', (t) => {
  const missing = OVS_TOOLS.filter((x) => !commandExists(x));
  const why = ovsUnavailable();
  if (missing.length) t.regex(why, /openvswitch-switch/);
  else t.is(why, null);
});

test('server sink: translated frames and frames still addressed to the ClusterIP counted apart', (t) => {
  const r = sinkRuleset();
  t.regex(r, /ip daddr 10\.130\.2\.2 udp dport 8080 counter name "ok" drop/);
  t.regex(r, /udp dport 80 counter name "untranslated" drop/);
  t.regex(r, /hook ingress device s0/);
});

test('forwarder CPU: the generator-alone cost per offered frame is subtracted, never below zero', (t) => {
  const base = { cpuPerFrameS: 1e-6 };
  // 1 s of forwarder + 2 s of generator for 1.5M frames offered: 3 - 1.5 = 1.5 s of forwarding
  t.is(forwarderCpuSeconds({ forwarderS: 1, generatorS: 2, offered: 1.5e6 }, base), 1.5);
  t.is(forwarderCpuSeconds({ forwarderS: 0, generatorS: 1, offered: 2e6 }, base), 0);
  t.is(forwarderCpuSeconds({ forwarderS: 1, generatorS: 1, offered: 1 }, null), null);
});

test('cpu meter: a busy child process is metered through its parent', async (t) => {
  // a shell whose child spins: the tree of the shell includes the spinning node
  const child = spawn('sh', ['-c', `${process.execPath} -e "const e=Date.now()+3000; while(Date.now()<e);"`], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    t.true(processTree(child.pid).length >= 2, 'the shell and its node child');
    const m = new CpuMeter([child.pid]);
    const a = m.seconds();
    const t0 = Date.now();
    let b = a;
    // bounded: CPU time moves in 10 ms ticks; on a loaded machine the child may wait its turn
    while (b - a < 0.05 && Date.now() - t0 < 2500) { await new Promise((r) => setTimeout(r, 100)); b = m.seconds(); }
    t.true(b - a >= 0.05, `metered ${b - a} s`);
    t.is(processCpuSeconds(2 ** 30), null);
  } finally { child.kill('SIGKILL'); }
});

test('worker time split: shares of busy time, busy share of busy + wait, mean batch', (t) => {
  const s = timeSplitOf({ slowpath_time_rx_ns: 100, slowpath_time_core_ns: 200, slowpath_time_slow_ns: 0, slowpath_time_tx_ns: 700, slowpath_time_wait_ns: 3000, slowpath_batches: 4, slowpath_frames: 130 });
  t.deepEqual(s, { rx_pct: 10, core_pct: 20, tx_pct: 70, other_pct: 0, busy_pct: 25, frames_per_batch: 32.5, busy_us_per_batch: 0.3 });
  t.is(timeSplitOf({}), null);
});

test('markdown: a skipped contender is n/a with its reason, the generator column is filled', (t) => {
  const r = { suite: 'e2e', seconds: 1, vip: '10.96.99.10', port: 80, generator_mpps: 1.5, generator_new_flow_mpps: 1.4, generator_cpu_ns_per_frame: 900, wdp_time_split: null, wdp_port_type: 'native-afxdp', ovs_port_type: null, notes: [] };
  for (const c of CONTENDERS) for (const f of SIDE_FIELDS) r[`${c}_${f}`] = c === 'ovs' ? null : 1;
  r.ovs_unavailable_reason = 'Open vSwitch is not installed';
  const md = e2eMarkdown(r);
  t.regex(md, /\| UDP 64 B, one flow \(Mpps\) +\| +1 \| +1 \| +n\/a \| +1\.50 \|/);
  t.regex(md, /- ovs: Open vSwitch is not installed/);
  t.regex(md, /wdp ports: native-afxdp/);
});

test('markdown: the interleaved rounds per round, the p99 ratio with its range, the host\'s round-trip floor', (t) => {
  const r = { suite: 'e2e', seconds: 3, vip: '10.96.99.10', port: 80, generator_mpps: null, generator_new_flow_mpps: null, generator_cpu_ns_per_frame: null, wdp_time_split: null, wdp_port_type: null, ovs_port_type: null, notes: [] };
  for (const c of CONTENDERS) for (const f of SIDE_FIELDS) r[`${c}_${f}`] = null;
  Object.assign(r, { kernel_rtt_p99_us: 600, wdp_rtt_p99_us: 900, wdp_rtt_p99_per_kernel: 1.5, wdp_rtt_p99_per_kernel_lo: 1.2, wdp_rtt_p99_per_kernel_hi: 1.9, wdp_rtt_samples: 10000, kernel_rtt_samples: 10000 });
  r.ovs_unavailable_reason = 'not requested';
  r.interleave = {
    rounds: 3, rtt_chunk: 1000, rtt_seconds: 60, conn_chunk_s: 0.3, conn_warmup_s: 0.3, rtt_warmup: 100, ratio_range_level: 0.9, load_start: 3.2, load_end: 4.1,
    rtt_p99_us_rounds: { kernel: [500, 700, null], wdp: [800, 1000, 900] },
    rtt_p99_per_kernel_rounds: { kernel: [1, 1, null], wdp: [1.6, 1.43, null] },
    conn_per_s_chunks: { kernel: [9000, 9100, 9200], wdp: [9500, 9600, 9700] },
    process_cpu_us_per_rtt: { kernel: null, wdp: 60 },
  };
  r.platform = { cpuidle_driver: 'haltpoll', cpuidle_governor: 'haltpoll', cpuidle_states: 'POLL', guest_halt_poll_ns: 0, sched_autogroup_enabled: 1, nproc: 2, loadavg: [3.2, 2, 1] };
  const md = e2eMarkdown(r);
  t.regex(md, /each chunk after its client's uncounted warm-up: 100 round trips, 0\.300 s of connections/);
  t.regex(md, /\| RTT p99 \/ kernel's +\| +1\.50 \| +n\/a \| +n\/a \| +n\/a \|/);
  t.regex(md, /\| · its 90% range over the rounds, low +\| +1\.20 \|/);
  t.regex(md, /\| UDP round trips measured +\| +10,000 \| +10,000 \|/);
  t.regex(md, /3 rounds × \(1,000 UDP round trips \+ 0\.300 s of TCP connections\) per contender \(kernel, wdp\).*load 3\.2 → 4\.1/);
  t.regex(md, /\| kernel RTT p99 µs +\| +500 \| +700 \| +n\/a \|/);
  t.regex(md, /\| wdp p99 \/ kernel's +\| +1\.60 \| +1\.43 \| +n\/a \|/);
  t.notRegex(md, /kernel p99 \/ kernel's/);
  t.regex(md, /\| wdp conn\/s +\| +9,500 \| +9,600 \| +9,700 \|/);
  t.regex(md, /Round-trip floor of this host: cpuidle haltpoll .*guest_halt_poll_ns 0, sched_autogroup_enabled 1, 2 CPUs, load 3\.2 2 1/);
});

// (a kernel without schedstats has no /proc/PID/task/TID/schedstat: nothing to check there)
const schedstatTest = threadSchedStats(process.pid).length ? test : test.skip;
schedstatTest('per-thread schedstat: this process has its main thread, totals sum the threads; a missing process is empty', (t) => {
  const threads = threadSchedStats(process.pid);
  t.true(threads.some(([tid]) => tid === process.pid), 'the main thread (tid = pid) is listed');
  for (const [, run, wait] of threads) { t.true(run >= 0); t.true(wait >= 0); }
  const [run, wait] = schedTotals(process.pid);
  t.true(run >= threads.reduce((a, [, r]) => a + r, 0) * 0.5 && run > 0);
  t.true(wait >= 0);
  t.deepEqual(threadSchedStats(undefined), []);
  t.is(schedTotals(undefined), null);
  t.deepEqual(threadSchedStats(2 ** 22 + 12345), []);
});
