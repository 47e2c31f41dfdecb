// `wdp bench e2e`: packets through a ClusterIP across real namespaces, wdp against its peers.
//
// Topology (built once per contender, identically, in private namespaces):
//
//   client ns  c0 10.131.0.2/16 ──veth── r0 10.131.0.1/16  ROUTER ns  r1 10.130.2.1/24 ──veth── s0 10.130.2.2/24  server ns
//
// The router namespace is the contender:
//   - generator alone: r0 drops every frame at netdev ingress — trafgen's ceiling in this run
//     and the CPU baseline subtracted from every contender (src/bench/cpu-account.ts);
//   - kernel: IP forwarding with kube-proxy's nftables DNAT rules (same generator as `bench
//     control`);
//   - wdp: the daemon with AF_XDP (or AF_PACKET) ports on r0/r1, no kernel forwarding;
//   - ovs: a private Open vSwitch, userspace (netdev) datapath, conntrack NAT (peers/ovs.ts),
//     skipped with its reason when Open vSwitch is not installed.
// Client and server are identical for all: trafgen blasts 60-byte frames (64 on the wire with FCS)
// from the client, the server counts what arrives translated on s0 (and drops it at netdev
// ingress so replies cannot load the path), a Node client opens TCP connections in a loop, a Node
// UDP client ping-pongs for latency. Addresses are inside the cluster CIDR, so no contender
// masquerades: all do plain DNAT.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { withNamespaces, runOk, run, requireTools, nsArgv } from './peers/netns.js';
import { nftRuleset } from './peers/nftables.js';
import { ovsUnavailable, startOvs, type OvsService } from './peers/ovs.js';
import type { BenchService } from './peers/service-set.js';
import { Progress, median, round } from './report.js';
import { rotation, pooledQuantile, pairedPooledRatio, roundRatios, bootstrapRatioRange, type RatioRange } from './paired-rounds.js';
import { rttFloorFacts, type RttFloorFacts } from './platform.js';
import { serviceObject, sliceObject } from './control.js';
import { CpuMeter, ksoftirqdPids, forwarderCpuSeconds, type GeneratorBaseline } from './cpu-account.js';

export { processCpuSeconds, processTreeCpuSeconds } from './cpu-account.js';

/** The dataplanes compared, in the order they run. */
export const CONTENDERS = ['kernel', 'wdp', 'ovs'] as const;
export type Contender = typeof CONTENDERS[number];
/** The traffic tests: UDP ping-pong, TCP connection rate, one-flow blast, new-flow blast. */
export const E2E_TESTS = ['rtt', 'conn', 'one', 'new'] as const;
export type E2eTest = typeof E2E_TESTS[number];

export interface E2eOptions {
  /** Per blast test; the TCP connection test's total per contender (split over the rounds). */
  seconds: number;
  /** UDP ping-pongs per contender (split over the rounds; default 10,000). */
  rttSamples?: number;
  /** The time bound of one contender's ping-pongs over all rounds (default 60 s): on a loaded
   * machine the chunks stop early, with fewer samples (reported), rather than run for minutes. */
  rttSeconds?: number;
  /** Latency and connection rate: interleaved rounds, the order rotating (default 10). */
  rounds?: number;
  connConcurrency?: number; // parallel TCP connect loops
  /** Measure one contender (kept for `--only`); `contenders` says which in general. */
  only?: 'wdp' | 'kernel';
  contenders?: Contender[];
  tests?: E2eTest[];
  /** Measure the generator alone (its ceiling and the CPU baseline); default true. */
  generator?: boolean;
  /** wdp's port type on r0/r1 (default afxdp; the daemon falls back to afpacket with a log line). */
  wdpPort?: 'afxdp' | 'afpacket';
  /** wdp's busyPollUs (default: the daemon's default). */
  wdpBusyPollUs?: number;
  /** Another build's bin/wdp.js to run as the wdp contender (A/B of two versions). */
  wdpBin?: string;
  /** wdp's workerNice (default: the daemon's default). */
  wdpWorkerNice?: number;
  /** wdp's workerRealtimePriority (default: the daemon's default). */
  wdpWorkerRealtime?: number;
  /** wdp's AF_XDP RX ring size and XDP attach mode on both ports (default: the daemon's). */
  wdpRxRing?: number;
  wdpXdpMode?: 'native' | 'generic';
  /** More top-level keys of wdp's config (A/B of an option), e.g. { workerCpus: [1] }. */
  wdpExtra?: Record<string, unknown>;
  /** More environment variables for wdp's daemon process (added to the bench's own). */
  wdpEnv?: Record<string, string>;
  progress?: Progress;
}

/** Shares of the daemon's busy loop time: rx burst, Wasm core, tx burst, and other (the TS slow
 * path: ARP/ND, neighbour learning). Idle waiting is excluded from these four; `busy_pct` is the
 * busy share of busy + idle-wait + busy-poll time, `spin_pct` the busy-poll (empty polls within
 * the busy-poll window) share of it, `frames_per_batch` the mean batch the core saw and
 * `busy_us_per_batch` the busy loop time per batch (rx + core + slow path + tx). */
export interface TimeSplit { rx_pct: number; core_pct: number; tx_pct: number; other_pct?: number; busy_pct?: number; spin_pct?: number; frames_per_batch?: number; busy_us_per_batch?: number }

/** Per contender: `${contender}_${field}`. */
type SideField =
  | 'mpps' | 'new_flow_mpps' | 'offered_mpps' | 'conn_per_s' | 'conn_failures'
  | 'rtt_p50_us' | 'rtt_p99_us' | 'cpu_s'
  | 'cpu_ns_per_packet' | 'new_flow_cpu_ns_per_packet' | 'process_cpu_ns_per_packet'
  | 'untranslated_frames'
  | 'rtt_samples' | 'rtt_lost' | 'rtt_p50_per_kernel' | 'rtt_p99_per_kernel' | 'rtt_p99_per_kernel_lo' | 'rtt_p99_per_kernel_hi' | 'conn_per_kernel';
export const SIDE_FIELDS: SideField[] = ['mpps', 'new_flow_mpps', 'offered_mpps', 'conn_per_s', 'conn_failures', 'rtt_p50_us', 'rtt_p99_us', 'cpu_s',
  'cpu_ns_per_packet', 'new_flow_cpu_ns_per_packet', 'process_cpu_ns_per_packet', 'untranslated_frames',
  'rtt_samples', 'rtt_lost', 'rtt_p50_per_kernel', 'rtt_p99_per_kernel', 'rtt_p99_per_kernel_lo', 'rtt_p99_per_kernel_hi', 'conn_per_kernel'];

/** How the latency and connection-rate figures were taken (runE2eInterleaved): every
 * contender's topology up at once, `rounds` rounds of `rtt_chunk` round trips and `conn_chunk_s`
 * seconds of connections per contender, the order rotating every round. Per contender: each
 * round's p99 and its ratio to the kernel's p99 in the same round, and the connection rate per
 * round. `ratio_range_level`: the level of the `*_per_kernel_lo/hi` bootstrap range. */
export interface E2eInterleave {
  rounds: number; rtt_chunk: number; rtt_seconds: number; conn_chunk_s: number; ratio_range_level: number;
  /** each chunk's uncounted warm-up in its client: seconds of connections, round trips (CONN_WARMUP_S, RTT_WARMUP) */
  conn_warmup_s: number; rtt_warmup: number;
  load_start: number; load_end: number;
  rtt_p99_us_rounds: Partial<Record<Contender, Array<number | null>>>;
  rtt_p99_per_kernel_rounds: Partial<Record<Contender, Array<number | null>>>;
  conn_per_s_chunks: Partial<Record<Contender, number[]>>;
  process_cpu_us_per_rtt: Partial<Record<Contender, number | null>>;
}
type SideFields = { [K in `${Contender}_${SideField}`]: number | null };
type SideReasons = { [K in `${Contender}_unavailable_reason`]?: string };

export type E2eResult = {
  suite: 'e2e';
  seconds: number;
  vip: string;
  port: number;
  /** The generator alone, frames dropped at the router's netdev ingress: the ceiling of every
   * blast figure in this run. */
  generator_mpps: number | null;
  generator_new_flow_mpps: number | null;
  /** trafgen + ksoftirqd CPU per offered frame in that run: subtracted from every contender. */
  generator_cpu_ns_per_frame: number | null;
  generator_unavailable_reason?: string;
  wdp_time_split: TimeSplit | null;
  wdp_port_type: string | null;
  ovs_port_type: string | null;
  /** Latency and connection rate: how they were taken and their spread; null when neither ran. */
  interleave: E2eInterleave | null;
  /** What sets a round trip's floor on this host (platform.ts), read at the start. */
  platform: RttFloorFacts;
  notes: string[];
} & SideFields & SideReasons;

// ---- fixed addressing --------------------------------------------------------------------------

const CLIENT = '10.131.0.2', CLIENT_GW = '10.131.0.1', CLIENT_PLEN = 16;
const SERVER = '10.130.2.2', SERVER_GW = '10.130.2.1', SERVER_PLEN = 24;
const VIP_BLAST = '10.96.99.10', VIP_TCP = '10.96.99.11', VIP_ECHO = '10.96.99.12';
const SVC_PORT = 80, SINK_PORT = 8080, ECHO_PORT = 8081;
/** The flow capacity every contender gets: the kernel's nf_conntrack_max in these namespaces, so
 * the new-flow test fills every table at the same point. */
const CONNTRACK_MAX = 262144;

/** The three services both contenders program: a UDP sink (blast tests), a TCP service
 * (connection rate) and a UDP echo (latency), each with the one server as endpoint. */
export function e2eServices(): BenchService[] {
  const svc = (name: string, vip: string, proto: 'TCP' | 'UDP', target: number): BenchService => ({
    namespace: 'bench', name, portName: 'p', clusterIP: vip, port: SVC_PORT, targetPort: target, proto,
    endpoints: [{ addr: SERVER, port: target }],
  });
  return [svc('udp-sink', VIP_BLAST, 'UDP', SINK_PORT), svc('tcp', VIP_TCP, 'TCP', SINK_PORT), svc('udp-echo', VIP_ECHO, 'UDP', ECHO_PORT)];
}

export interface Topology { client: string; router: string; server: string; routerMacC: string; routerMacS: string; clientMac: string; serverMac: string }

async function linkMac(ns: string, dev: string): Promise<string> {
  const r = await runOk(['ip', '-n', ns, '-j', 'link', 'show', dev]);
  return (JSON.parse(r.stdout) as Array<{ address: string }>)[0].address;
}

async function sysctl(ns: string, kv: string): Promise<void> { await runOk(['sysctl', '-q', '-w', kv], { ns }); }

/** Client, router and server namespaces wired with veths; addresses on client and server only.
 * The router's interfaces get configured by the contender. */
async function wire([client, router, server]: string[]): Promise<Topology> {
  for (const ns of [client, router, server]) {
    // IPv6 autoconf/MLD frames would show up in the counters; nothing here uses IPv6
    await sysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1');
    await sysctl(ns, 'net.ipv6.conf.default.disable_ipv6=1');
  }
  // created directly inside the namespaces: the root namespace never sees these links
  await runOk(['ip', 'link', 'add', 'c0', 'netns', client, 'type', 'veth', 'peer', 'name', 'r0', 'netns', router]);
  await runOk(['ip', 'link', 'add', 's0', 'netns', server, 'type', 'veth', 'peer', 'name', 'r1', 'netns', router]);
  for (const [ns, dev] of [[client, 'c0'], [router, 'r0'], [router, 'r1'], [server, 's0']]) {
    // checksum offload off on every veth end, on both contenders: a user-space dataplane reading
    // with AF_PACKET would otherwise see partial checksums from local senders. The kernel side
    // gets the same setting so the topologies are identical (64-byte UDP does not use GRO/TSO).
    await runOk(['ethtool', '-K', dev, 'tx', 'off', 'rx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'], { ns });
    await runOk(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  await runOk(['ip', '-n', client, 'addr', 'add', `${CLIENT}/${CLIENT_PLEN}`, 'dev', 'c0']);
  await runOk(['ip', '-n', client, 'route', 'add', 'default', 'via', CLIENT_GW]);
  await runOk(['ip', '-n', server, 'addr', 'add', `${SERVER}/${SERVER_PLEN}`, 'dev', 's0']);
  await runOk(['ip', '-n', server, 'route', 'add', 'default', 'via', SERVER_GW]);
  // the blast sink: drop at the earliest hook so the server's stack does not answer with ICMP.
  // Only frames that arrive translated count as forwarded (`ok`); a frame still addressed to the
  // ClusterIP (a contender failing open, e.g. with a full conntrack table) counts `untranslated`.
  await runOk(['nft', '-f', '-'], { ns: server, input: sinkRuleset() });
  return {
    client, router, server,
    routerMacC: await linkMac(router, 'r0'), routerMacS: await linkMac(router, 'r1'),
    clientMac: await linkMac(client, 'c0'), serverMac: await linkMac(server, 's0'),
  };
}

export function sinkRuleset(): string {
  return `table netdev sink {
  counter ok { }
  counter untranslated { }
  chain in {
    type filter hook ingress device s0 priority 0 ;
    ip daddr ${SERVER} udp dport ${SINK_PORT} counter name "ok" drop
    udp dport ${SVC_PORT} counter name "untranslated" drop
  }
}
`;
}

/** The generator alone: the router drops everything at r0's netdev ingress (before any protocol
 * handler or tap), so what trafgen gets onto the wire is its ceiling in this topology. */
async function dropRouter(t: Topology): Promise<void> {
  await runOk(['nft', '-f', '-'], { ns: t.router, input: 'table netdev gen {\n  chain in {\n    type filter hook ingress device r0 priority 0 ; policy drop ;\n  }\n}\n' });
}

/** What a `command` variant's router is told, after its own arguments: the client's, the server's
 * and the router's two MACs (r0 towards the client, r1 towards the server), the server's address,
 * then per service its protocol number, ClusterIP, port and target port. The client's and the
 * server's namespaces are in its environment (WDP_BENCH_CLIENT_NS, WDP_BENCH_SERVER_NS). */
export function commandArgv(t: Topology): string[] {
  return [t.clientMac, t.serverMac, t.routerMacC, t.routerMacS, SERVER,
    ...e2eServices().flatMap((s) => [s.proto === 'TCP' ? '6' : '17', s.clusterIP, String(s.port), String(s.targetPort)])];
}

/** The kernel contender: IP forwarding plus kube-proxy's nftables ruleset in the router. */
async function kernelRouter(t: Topology): Promise<void> {
  await runOk(['ip', '-n', t.router, 'addr', 'add', `${CLIENT_GW}/${CLIENT_PLEN}`, 'dev', 'r0']);
  await runOk(['ip', '-n', t.router, 'addr', 'add', `${SERVER_GW}/${SERVER_PLEN}`, 'dev', 'r1']);
  await sysctl(t.router, 'net.ipv4.ip_forward=1');
  // the new-flow test spoofs random client addresses inside 10.131.0.0/16; they are on-link
  await sysctl(t.router, 'net.ipv4.conf.all.rp_filter=0');
  await sysctl(t.router, 'net.ipv4.conf.r0.rp_filter=0');
  await runOk(['nft', '-f', '-'], { ns: t.router, input: nftRuleset(e2eServices()).text });
}

// ---- helpers run inside the namespaces ---------------------------------------------------------

const SERVER_JS = `
import net from 'node:net';
import dgram from 'node:dgram';
const [tcpPort, echoPort] = process.argv.slice(2).map(Number);
const srv = net.createServer((s) => { s.on('error', () => {}); s.destroy(); });
srv.on('error', (e) => { console.error(String(e)); process.exit(2); });
const echo = dgram.createSocket('udp4');
echo.on('message', (m, r) => echo.send(m, r.port, r.address));
let up = 0;
const ready = () => { if (++up === 2) console.log('ready'); };
// the kernel's largest accept queue (somaxconn 4096), not Node's 511: the client's handshakes
// complete in the kernel whether or not the server has accepted, so at ~30k connections/s a 17-ms
// stall of this process overflowed 511, and each dropped handshake held one of the client's loops
// for its 1-s retransmit (docs/performance.md, "How wdp bench e2e measures")
srv.listen({ port: tcpPort, host: '0.0.0.0', backlog: 4096 }, ready);
echo.bind(echoPort, '0.0.0.0', ready);
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

/** Each latency and connection chunk's client (CONN_JS, RTT_JS) is a fresh Node process in the
 * client namespace: its first connections and round trips run its own code cold (the interpreter,
 * then the compiles on the same 2 vCPUs the forwarder needs), at a fraction of the rate it reaches
 * ~250 ms later. That is the client's start, not the forwarder, so each chunk's client warms up
 * first, uncounted. Without it (second machine, kernel and wdp in alternating rounds) connections/s
 * wdp ÷ kernel followed the chunk's length: 0.80 at 0.3 s, 1.04 at 1 s, 1.25 at 2 s
 * (docs/performance.md, "How `wdp bench e2e` measures"). */
export const CONN_WARMUP_S = 0.3;
export const RTT_WARMUP = 100;

export const CONN_JS = `
import net from 'node:net';
const [host, port, secs, conc, warmupSecs] = process.argv.slice(2);
let ok = 0, fail = 0;
// the loops run warmupSecs before the counted secs: a connection counts when it ends after t0
const t0 = performance.now() + Number(warmupSecs ?? 0) * 1000, end = t0 + Number(secs) * 1000;
function once() {
  return new Promise((res) => {
    const s = net.connect({ host, port: Number(port) });
    const done = (good) => { if (performance.now() >= t0) { if (good) ok++; else fail++; } s.removeAllListeners(); s.on('error', () => {}); s.resetAndDestroy(); res(); };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
async function loop() { while (performance.now() < end) await once(); }
await Promise.all(Array.from({ length: Number(conc) }, loop));
console.log(JSON.stringify({ ok, fail, seconds: (performance.now() - t0) / 1000 }));
`;

export const RTT_JS = `
import dgram from 'node:dgram';
const [host, port, n, raw, maxSeconds, warmup] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
await new Promise((r) => s.connect(Number(port), host, r));
const rtts = []; let lost = 0;
const payload = Buffer.alloc(18);
// the first \`warmup\` round trips are not recorded; the bound in time (a loaded machine stops a
// chunk early, with fewer samples) starts after them
const warm = Number(warmup ?? 0);
let deadline = Infinity;
for (let i = 0; i < warm + Number(n) && performance.now() < deadline; i++) {
  if (i === warm) deadline = performance.now() + (Number(maxSeconds) > 0 ? Number(maxSeconds) * 1000 : Infinity);
  payload.writeUInt32BE(i, 0);
  const t0 = process.hrtime.bigint();
  const got = await new Promise((res) => {
    const timer = setTimeout(() => { s.off('message', on); res(false); }, 500);
    function on(m) { if (m.length === payload.length && m.readUInt32BE(0) === i) { clearTimeout(timer); s.off('message', on); res(true); } }
    s.on('message', on);
    s.send(payload);
  });
  if (i < warm) continue;
  if (got) rtts.push(Number(process.hrtime.bigint() - t0) / 1000); else lost++;
}
rtts.sort((a, b) => a - b);
const q = (p) => rtts.length ? rtts[Math.min(rtts.length - 1, Math.max(0, Math.ceil(p * rtts.length - 1e-9) - 1))] : null; // (quantileSorted's nearest rank)
console.log(JSON.stringify({ p50: q(0.5), p99: q(0.99), samples: rtts.length, lost, warmed: warm, ...(raw === 'raw' ? { rtts } : {}) }));
s.close();
`;

// Children run in their own process group: trafgen forks a worker per CPU and a signal to the
// parent alone leaves the worker transmitting. Signals therefore go to the whole group.
const liveGroups = new Set<number>();
let exitHook = false;

function startInNs(ns: string, argv: string[], env?: Record<string, string>): ChildProcess {
  const full = nsArgv(argv, ns);
  const child = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(env ? { env: { ...process.env, ...env } } : {}) });
  if (child.pid) {
    const pid = child.pid;
    liveGroups.add(pid);
    child.once('exit', () => liveGroups.delete(pid));
  }
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const g of liveGroups) { try { process.kill(-g, 'SIGKILL'); } catch { /* already gone */ } } });
  }
  return child;
}

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  try { if (child.pid) process.kill(-child.pid, sig); } catch { /* already gone */ }
}

function waitForLine(child: ChildProcess, want: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '', err = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${want}" (stderr: ${err.trim()})`)), timeoutMs);
    child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      if (buf.split('\n').some((l) => l.trim() === want)) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with code ${code} before "${want}": ${err.trim()}`)); });
  });
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const hard = setTimeout(() => signalGroup(child, 'SIGKILL'), 3000);
    child.once('exit', () => { clearTimeout(hard); resolve(); });
    signalGroup(child, signal);
  });
}

async function nodeJson<T>(ns: string, script: string, args: string[], timeoutMs: number): Promise<T> {
  const r = await run(['node', script, ...args], { ns, timeoutMs });
  if (r.code !== 0) throw new Error(`${script.split('/').pop()} in ${ns} failed (code ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as T;
}

// ---- counters ----------------------------------------------------------------------------------

/** What a blast window reads at its start and end. */
interface Sample { t: number; forwarded: number; untranslated: number; clientTx: number; generatorS: number; forwarderS: number }

async function ifStats(ns: string, dev: string): Promise<{ rx: number; tx: number }> {
  const r = await runOk(['ip', '-n', ns, '-j', '-s', 'link', 'show', dev]);
  const j = (JSON.parse(r.stdout) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>)[0];
  return { rx: j.stats64.rx.packets, tx: j.stats64.tx.packets };
}

/** The server sink's named counters (see sinkRuleset). */
async function sinkCounters(ns: string): Promise<{ ok: number; untranslated: number }> {
  const r = await runOk(['nft', '-j', 'list', 'counters', 'table', 'netdev', 'sink'], { ns });
  const out = { ok: 0, untranslated: 0 };
  for (const o of (JSON.parse(r.stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> }).nftables) {
    if (o.counter && (o.counter.name === 'ok' || o.counter.name === 'untranslated')) out[o.counter.name] = o.counter.packets;
  }
  return out;
}

/** Whose CPU a blast window reads: the generator's process tree + ksoftirqd, and the forwarder's
 * processes (none for the kernel contender). */
interface Meters { generator: CpuMeter; forwarder: CpuMeter | null }

async function sample(t: Topology, m: Meters, countServer: boolean): Promise<Sample> {
  const t0 = performance.now();
  const [s, c] = await Promise.all([countServer ? sinkCounters(t.server) : Promise.resolve({ ok: 0, untranslated: 0 }), ifStats(t.client, 'c0')]);
  const t1 = performance.now();
  return { t: (t0 + t1) / 2, forwarded: s.ok, untranslated: s.untranslated, clientTx: c.tx, generatorS: m.generator.seconds(), forwarderS: m.forwarder?.seconds() ?? 0 };
}

// ---- the traffic tests -------------------------------------------------------------------------

/** trafgen config: 60-byte frames (64 with FCS) to VIP_BLAST:80 from CLIENT. With `newFlows`,
 * client address (within 10.131.0.0/16) and source port are random per packet: 2^32 tuples, so
 * practically every packet is a flow neither contender has seen. */
export function trafgenConfig(dstMac: string, newFlows: boolean): string {
  const vip = VIP_BLAST.split('.').join(', ');
  const src = newFlows ? '10, 131, drnd(2)' : CLIENT.split('.').join(', ');
  const sport = newFlows ? 'drnd(2)' : 'const16(40000)';
  return `{ eth(da=${dstMac}, type=0x0800),
  0x45, 0x00, const16(46), ${newFlows ? 'drnd(2)' : 'const16(1)'}, 0x40, 0x00, 64, 17, csumip(14, 33),
  ${src}, ${vip},
  ${sport}, const16(${SVC_PORT}), const16(26), const16(0),
  fill(0x00, 18) }
`;
}

interface BlastResult {
  mpps: number; offeredMpps: number; dt: number;
  forwarded: number; untranslated: number; offered: number;
  generatorS: number; forwarderS: number;
}

/** How long a blast's warm-up waits at most for the contender's first forwarded frame. */
const WARMUP_FORWARDING_MS = 3000;

/** One trafgen blast; `forwarderPids`: the contender's processes (their trees) to meter. */
async function blast(t: Topology, dir: string, newFlows: boolean, seconds: number, forwarderPids: number[], countServer = true): Promise<BlastResult> {
  const cfg = join(dir, newFlows ? 'newflows.trafgen' : 'oneflow.trafgen');
  writeFileSync(cfg, trafgenConfig(t.routerMacC, newFlows));
  // one generator process: a second would compete with the contender for the machine's 2 cores
  const gen = startInNs(t.client, ['trafgen', '-o', 'c0', '-i', cfg, '-P', '1', '-q']);
  let genErr = '';
  gen.stderr!.on('data', (b: Buffer) => { genErr += b.toString(); });
  try {
    // warm-up: ARP, conntrack, the contender's first batches; not counted
    const before = countServer ? (await sinkCounters(t.server)).ok : 0;
    await sleep(Math.min(500, seconds * 250));
    // ... and until the contender forwarded a frame: Open vSwitch installs its datapath flows after
    // its first upcalls, which on a loaded machine outlasts a short blast's warm-up (a 0.3 s blast
    // then measured 0). Bounded, and over once trafgen exited (reported below): a contender that
    // forwards nothing is measured as such.
    for (const until = Date.now() + WARMUP_FORWARDING_MS; countServer && gen.exitCode === null && Date.now() < until && (await sinkCounters(t.server)).ok === before;) await sleep(20);
    if (gen.exitCode !== null) throw new Error(`trafgen exited early (code ${gen.exitCode}): ${genErr.trim()}`);
    // trafgen's worker is a child of the process started: the tree is resolved after warm-up
    const meters: Meters = { generator: new CpuMeter([gen.pid!], ksoftirqdPids()), forwarder: forwarderPids.length ? new CpuMeter(forwarderPids) : null };
    const a = await sample(t, meters, countServer);
    await sleep(seconds * 1000);
    const b = await sample(t, meters, countServer);
    if (gen.exitCode !== null) throw new Error(`trafgen exited during the test (code ${gen.exitCode}): ${genErr.trim()}`);
    const dt = (b.t - a.t) / 1000;
    return {
      mpps: (b.forwarded - a.forwarded) / dt / 1e6,
      offeredMpps: (b.clientTx - a.clientTx) / dt / 1e6,
      dt,
      forwarded: b.forwarded - a.forwarded, untranslated: b.untranslated - a.untranslated, offered: b.clientTx - a.clientTx,
      generatorS: b.generatorS - a.generatorS, forwarderS: b.forwarderS - a.forwarderS,
    };
  } finally {
    await stopChild(gen);
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

interface SideResult { one: BlastResult | null; many: BlastResult | null }

/** A contender's blasts, one after the other in its own topology (latency and connection rate
 * come from the interleaved rounds instead, runE2eInterleaved). */
async function blastSide(t: Topology, dir: string, o: E2eOptions, p: Progress, label: string, forwarderPids: number[]): Promise<SideResult> {
  const tests = new Set(o.tests ?? E2E_TESTS);
  return {
    one: tests.has('one') ? await p.step(`${label}: UDP 64 B one flow ${o.seconds} s`, () => blast(t, dir, false, o.seconds, forwarderPids)) : null,
    many: tests.has('new') ? await p.step(`${label}: UDP 64 B new flow per packet ${o.seconds} s`, () => blast(t, dir, true, o.seconds, forwarderPids)) : null,
  };
}

function setField(res: E2eResult, c: Contender, f: SideField, v: number | null, digits: number): void {
  res[`${c}_${f}`] = v === null || !Number.isFinite(v) ? null : round(v, digits);
}

/** Writes a contender's blast figures into the result (`${c}_*`). */
function fillBlasts(res: E2eResult, c: Contender, s: SideResult, base: GeneratorBaseline | null): void {
  const set = (f: SideField, v: number | null, digits: number) => setField(res, c, f, v, digits);
  const nsPerPacket = (b: BlastResult | null, forwarderOnly: boolean): number | null => {
    if (!b || b.forwarded === 0) return null;
    const cpu = forwarderOnly ? b.forwarderS : forwarderCpuSeconds(b, base);
    return cpu === null ? null : cpu / b.forwarded * 1e9;
  };
  set('mpps', s.one?.mpps ?? null, 4);
  set('new_flow_mpps', s.many?.mpps ?? null, 4);
  const offered = [s.one, s.many].filter((b): b is BlastResult => !!b).map((b) => b.offeredMpps);
  set('offered_mpps', offered.length ? Math.max(...offered) : null, 4);
  const blasts = [s.one, s.many].filter((b): b is BlastResult => !!b);
  const cpus = blasts.map((b) => forwarderCpuSeconds(b, base));
  set('cpu_s', blasts.length && cpus.every((x) => x !== null) ? cpus.reduce((a, x) => a + x!, 0) : null, 2);
  set('cpu_ns_per_packet', nsPerPacket(s.one, false), 0);
  set('new_flow_cpu_ns_per_packet', nsPerPacket(s.many, false), 0);
  set('process_cpu_ns_per_packet', c === 'kernel' ? null : nsPerPacket(s.one, true), 0);
  set('untranslated_frames', blasts.length ? blasts.reduce((a, b) => a + b.untranslated, 0) : null, 0);
}

/** Writes a contender's interleaved latency and connection figures into the result; throws
 * (the side then fails with the reason) when a requested test got nothing through. */
function fillLatency(res: E2eResult, c: Contender, f: InterleaveFigures, tests: Set<E2eTest>): void {
  if (f.unavailable_reason) throw new Error(f.unavailable_reason);
  if (tests.has('rtt') && f.rtt_samples === 0) throw new Error(`no UDP echo came back through ${VIP_ECHO}:${SVC_PORT} (${f.rtt_lost} lost)`);
  if (tests.has('conn') && !f.conn_per_s) throw new Error(`no TCP connection to ${VIP_TCP}:${SVC_PORT} succeeded (${f.conn_failures} failed)`);
  const set = (k: SideField, v: number | null, digits: number) => setField(res, c, k, v, digits);
  const vsKernel = f.ratio_to === 'kernel' && c !== 'kernel';
  if (tests.has('rtt')) {
    set('rtt_p50_us', f.rtt_p50_us, 1);
    set('rtt_p99_us', f.rtt_p99_us, 1);
    set('rtt_samples', f.rtt_samples, 0);
    set('rtt_lost', f.rtt_lost, 0);
    if (vsKernel) {
      set('rtt_p50_per_kernel', f.rtt_p50_ratio, 3);
      set('rtt_p99_per_kernel', f.rtt_p99_ratio, 3);
      set('rtt_p99_per_kernel_lo', f.rtt_p99_ratio_range?.lo ?? null, 3);
      set('rtt_p99_per_kernel_hi', f.rtt_p99_ratio_range?.hi ?? null, 3);
    }
  }
  if (tests.has('conn')) {
    set('conn_per_s', f.conn_per_s, 1);
    set('conn_failures', f.conn_failures, 0);
    if (vsKernel) set('conn_per_kernel', f.conn_ratio, 3);
  }
}

// ---- the wdp contender -------------------------------------------------------------------------

interface WdpDaemon { pid: number; stop(): Promise<void>; timeSplit(): Promise<TimeSplit | null>; portKinds(): Promise<string | null>; log(): string }

const WDP_BIN = fileURLToPath(new URL('../../../bin/wdp.js', import.meta.url));

/** Why the wdp side cannot run here, or null when it can. */
export function wdpDaemonUnavailable(): string | null {
  const daemonJs = fileURLToPath(new URL('../daemon/daemon.js', import.meta.url));
  if (!existsSync(daemonJs)) return 'the wdp daemon is not built (dist/src/daemon/daemon.js missing; `wdp start` has not landed or `npm run build` was not run)';
  if (!existsSync(fileURLToPath(new URL('../../../build/core.wasm', import.meta.url)))) return 'build/core.wasm missing — run `npm run build`';
  return null;
}

/** One HTTP request to the daemon's API over its unix socket. */
function unixRequest(socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: 30_000, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    if (body) req.write(body);
    req.end();
  });
}

/** The worker's loop-time counters (rx burst / core / slow path / tx burst / idle wait, and the
 * batches and frames the core processed, all since start) as shares. */
export function timeSplitOf(g: Record<string, number>): TimeSplit | null {
  const rx = g.slowpath_time_rx_ns ?? 0, core = g.slowpath_time_core_ns ?? 0;
  const slow = g.slowpath_time_slow_ns ?? 0, tx = g.slowpath_time_tx_ns ?? 0;
  const total = rx + core + slow + tx;
  if (!(total > 0)) return null;
  const pct = (x: number) => Math.round((x / total) * 1000) / 10;
  const out: TimeSplit = { rx_pct: pct(rx), core_pct: pct(core), tx_pct: pct(tx), other_pct: pct(slow) };
  const wait = g.slowpath_time_wait_ns, spin = g.slowpath_time_spin_ns ?? 0;
  if (wait !== undefined) out.busy_pct = Math.round((total / (total + wait + spin)) * 1000) / 10;
  if (spin > 0) out.spin_pct = Math.round((spin / (total + (wait ?? 0) + spin)) * 1000) / 10;
  if (g.slowpath_batches > 0) {
    out.frames_per_batch = Math.round((g.slowpath_frames / g.slowpath_batches) * 10) / 10;
    out.busy_us_per_batch = Math.round(total / g.slowpath_batches / 100) / 10;
  }
  return out;
}

/** The wdp contender: `wdp start` in the router namespace with AF_XDP/AF_PACKET ports on r0 (towards the
 * client, an uplink answering ARP for 10.131.0.1) and r1 (towards the server, a pod port with the
 * server as its pod); no IP addresses and no forwarding in the router's kernel. The three services
 * are then POSTed to the daemon's API, exactly as a user would. */
async function startWdpRouter(t: Topology, dir: string, o: E2eOptions): Promise<WdpDaemon> {
  const portType = o.wdpPort ?? 'afxdp';
  const sock = join(dir, 'wdp-api.sock');
  const ring = portType !== 'afxdp' ? {} : { ...(o.wdpRxRing !== undefined ? { rxRing: o.wdpRxRing } : {}), ...(o.wdpXdpMode ? { xdpMode: o.wdpXdpMode } : {}) };
  const config = {
    node: { name: 'bench-router', addresses: [] },
    ports: [
      { name: 'client', type: portType, ifname: 'r0', role: 'uplink', gateways: [CLIENT_GW], ...ring },
      { name: 'server', type: portType, ifname: 'r1', role: 'pod', gateways: [SERVER_GW], pods: [{ ip: SERVER, mac: t.serverMac }], ...ring },
    ],
    // the client side, including the random sources of the new-flow test, is behind r0
    routes: [{ prefix: `10.131.0.0/${CLIENT_PLEN}`, port: 'client', mac: t.clientMac }],
    api: { listen: sock },
    stateDir: join(dir, 'wdp-state'),
    logLevel: 'warn',
    // the same flow capacity as the kernel's nf_conntrack_max here, so the new-flow test fills
    // both tables at the same point
    conntrack: { flows: CONNTRACK_MAX },
    ...(o.wdpBusyPollUs !== undefined ? { busyPollUs: o.wdpBusyPollUs } : {}),
    ...(o.wdpWorkerNice !== undefined ? { workerNice: o.wdpWorkerNice } : {}),
    ...(o.wdpWorkerRealtime !== undefined ? { workerRealtimePriority: o.wdpWorkerRealtime } : {}),
    ...o.wdpExtra,
  };
  const cfgFile = join(dir, 'wdp-e2e.yaml');
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const child = startInNs(t.router, ['node', o.wdpBin ?? WDP_BIN, 'start', '--config', cfgFile], o.wdpEnv);
  let log = '';
  child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  const stop = async () => { await stopChild(child, 'SIGTERM'); };
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`wdp daemon exited (${child.exitCode ?? child.signalCode}): ${log.trim().split('\n').slice(-5).join(' | ')}`);
      if (Date.now() > deadline) throw new Error(`wdp daemon API did not come up within 60 s: ${log.trim().split('\n').slice(-5).join(' | ')}`);
      try { if ((await unixRequest(sock, 'GET', '/api/v1/generation')).status === 200) break; } catch { /* not listening yet */ }
      await sleep(100);
    }
    const objects = e2eServices().flatMap((s) => [serviceObject(s), sliceObject(s)]);
    const r = await unixRequest(sock, 'POST', '/api/v1/apply', JSON.stringify(objects));
    if (r.status !== 200) throw new Error(`wdp daemon refused the services (${r.status}): ${r.text.slice(0, 300)}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pid: child.pid!,
    stop,
    log: () => log,
    // the worker's loop-time counters (rx burst / core / slow path / tx burst), since start
    // what the ports really are (an afxdp port falls back to AF_PACKET where XDP is unavailable)
    portKinds: async () => {
      try {
        const r = await unixRequest(sock, 'GET', '/api/v1/ports');
        if (r.status !== 200) return null;
        const items = (JSON.parse(r.text) as { items: Array<{ kind?: string; stats?: Record<string, number> }> }).items;
        const kinds = new Set(items.map((x) => x.kind ?? 'unknown'));
        const sum = (k: string) => items.reduce((a, x) => a + (x.stats?.[k] ?? 0), 0);
        return `${[...kinds].sort().join(',')} (since start: rx ${sum('rxPackets')}, rx dropped ${sum('rxDropped')} of which ring full ${sum('kernelDrops')}, tx ${sum('txPackets')} in ${sum('txKicks')} kicks, tx errors ${sum('txErrors')})`;
      } catch { return null; }
    },
    timeSplit: async () => {
      try {
        const r = await unixRequest(sock, 'GET', '/api/v1/counters');
        if (r.status !== 200) return null;
        return timeSplitOf((JSON.parse(r.text) as { global?: Record<string, number> }).global ?? {});
      } catch { return null; }
    },
  };
}

// ---- the other contenders ----------------------------------------------------------------------

/** Client/server neighbour entries for the gateways, where the router does not answer ARP. */
async function staticGatewayNeighbours(t: Topology): Promise<void> {
  await runOk(['ip', '-n', t.client, 'neigh', 'replace', CLIENT_GW, 'lladdr', t.routerMacC, 'dev', 'c0', 'nud', 'permanent']);
  await runOk(['ip', '-n', t.server, 'neigh', 'replace', SERVER_GW, 'lladdr', t.routerMacS, 'dev', 's0', 'nud', 'permanent']);
}

function ovsServices(): OvsService[] {
  return e2eServices().map((s) => ({ vip: s.clusterIP, port: s.port, proto: s.proto === 'TCP' ? 'tcp' : 'udp', addr: s.endpoints[0].addr, target: s.endpoints[0].port }));
}

// ---- the suite ---------------------------------------------------------------------------------

function emptyResult(seconds: number): E2eResult {
  const r = {
    suite: 'e2e', seconds, vip: VIP_BLAST, port: SVC_PORT,
    generator_mpps: null, generator_new_flow_mpps: null, generator_cpu_ns_per_frame: null,
    wdp_time_split: null, wdp_port_type: null, ovs_port_type: null, interleave: null, platform: rttFloorFacts(),
    notes: [
      'one trafgen process; 60-byte frames (64 on the wire); Mpps counted at the server interface, translated frames only (an nftables counter on s0 ingress)',
      'generator_*: trafgen with the router dropping every frame at r0 netdev ingress — the ceiling of every blast figure in this run',
      '*_cpu_ns_per_packet: the forwarder\'s CPU per translated frame = (forwarder processes + trafgen + ksoftirqd utime+stime − the generator-alone CPU per offered frame × frames offered) / frames forwarded (src/bench/cpu-account.ts); *_process_cpu_ns_per_packet: the forwarder process alone (its kernel rx path runs in the sender\'s softirq and is not in it); *_cpu_s: that forwarder CPU over both blast windows',
      'on veth the kernel forwards in the sender\'s softirq, on the generator\'s CPU: a slower kernel path also lowers the offered rate, so compare *_mpps with generator_mpps and *_offered_mpps',
      'latency and connection rate: every contender\'s topology up at once, short chunks per contender in rounds, the order rotating every round, so load drift hits all alike; RTT percentiles pool every round\'s samples, conn/s is the median chunk; *_per_kernel are ratios to the kernel in the same rounds, *_lo/_hi a bootstrap range over whole rounds (interleave.*)',
    ],
  } as Partial<E2eResult> & Record<string, unknown>;
  for (const c of CONTENDERS) for (const f of SIDE_FIELDS) r[`${c}_${f}`] = null;
  return r as E2eResult;
}

export async function runE2eBench(o: E2eOptions): Promise<E2eResult> {
  if (!(o.seconds > 0)) throw new Error('--seconds must be > 0');
  requireTools(['ip', 'nft', 'trafgen', 'sysctl', 'ethtool']);
  const p = o.progress ?? new Progress(false);
  const contenders = new Set<Contender>(o.contenders ?? (o.only ? [o.only] : CONTENDERS));
  const tests = new Set(o.tests ?? E2E_TESTS);
  const blasts = tests.has('one') || tests.has('new');
  const res = emptyResult(o.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-e2e-'));
  let base: GeneratorBaseline | null = null;
  const skip = (c: Contender, why: string) => { res[`${c}_unavailable_reason`] = why; };
  const failed = (c: Contender) => res[`${c}_unavailable_reason`] !== undefined;
  /** A contender that fails reports why and keeps its figures null; the others stay valid. */
  const side = async (c: Contender, fn: () => Promise<void>) => {
    try { await fn(); } catch (e) {
      for (const f of SIDE_FIELDS) res[`${c}_${f}`] = null;
      skip(c, `the ${c} side failed: ${(e as Error).message}`);
      p.note(`${c} side failed: ${(e as Error).message}`);
    }
  };
  try {
    if (o.generator === false || !blasts) res.generator_unavailable_reason = o.generator === false ? 'not requested' : 'no blast test requested';
    else {
      try {
        await withNamespaces(['gc', 'gr', 'gs'], async (names) => {
          const t = await wire(names);
          await dropRouter(t);
          const one = await p.step(`generator alone: one flow ${o.seconds} s`, () => blast(t, dir, false, o.seconds, [], false));
          const many = await p.step(`generator alone: new flow per packet ${o.seconds} s`, () => blast(t, dir, true, o.seconds, [], false));
          res.generator_mpps = round(one.offeredMpps, 4);
          res.generator_new_flow_mpps = round(many.offeredMpps, 4);
          const frames = one.offered + many.offered;
          if (frames > 0) {
            base = { cpuPerFrameS: (one.generatorS + many.generatorS) / frames };
            res.generator_cpu_ns_per_frame = round(base.cpuPerFrameS * 1e9, 0);
          }
        });
      } catch (e) {
        res.generator_unavailable_reason = `the generator-alone run failed: ${(e as Error).message}`;
        p.note(res.generator_unavailable_reason);
      }
    }

    const runnable: Contender[] = [];
    for (const c of CONTENDERS) {
      const why = !contenders.has(c) ? 'not requested' : c === 'wdp' ? wdpDaemonUnavailable() : c === 'ovs' ? ovsUnavailable() : null;
      if (why) { skip(c, why); if (c === 'ovs' && contenders.has(c)) p.note(`ovs skipped: ${why}`); } else runnable.push(c);
    }

    if ((tests.has('rtt') || tests.has('conn')) && runnable.length) await interleavedLatency(res, runnable, tests, o, p, side);

    if (blasts) for (const c of runnable) {
      if (failed(c)) continue;
      if (c === 'kernel') {
        await side(c, () => withNamespaces(['kc', 'kr', 'ks'], async (names) => {
          const t = await wire(names);
          await kernelRouter(t);
          fillBlasts(res, c, await blastSide(t, dir, o, p, 'kernel', []), base);
        }));
      } else if (c === 'wdp') {
        await side(c, () => withNamespaces(['wc', 'wr', 'ws'], async (names) => {
          const t = await wire(names);
          const d = await startWdpRouter(t, dir, o);
          try {
            let w: SideResult;
            try { w = await blastSide(t, dir, o, p, 'wdp', [d.pid]); } catch (e) {
              throw new Error(`${(e as Error).message}\n  daemon log (last lines): ${d.log().trim().split('\n').slice(-8).join('\n  ')}`);
            }
            fillBlasts(res, c, w, base);
            res.wdp_port_type = await d.portKinds();
            res.wdp_time_split = await d.timeSplit();
            if (!res.wdp_time_split) res.notes.push('wdp_time_split is null: the daemon does not report how its time divides between rx, core and tx');
          } finally { await d.stop(); }
        }));
      } else {
        await side(c, () => withNamespaces(['oc', 'or', 'os'], async (names) => {
          const t = await wire(names);
          const ovs = await startOvsRouter(t, dir);
          try {
            fillBlasts(res, c, await blastSide(t, dir, o, p, 'ovs', [ovs.vswitchdPid]), base);
            res.ovs_port_type = ovs.portType;
          } finally { await ovs.stop(); }
        }));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

/** The latency and connection-rate tests of every runnable contender, interleaved (every
 * topology up at once, rounds of short chunks, the order rotating), into `res`. */
async function interleavedLatency(res: E2eResult, runnable: Contender[], tests: Set<E2eTest>, o: E2eOptions, p: Progress,
  side: (c: Contender, fn: () => Promise<void>) => Promise<void>): Promise<void> {
  const rounds = o.rounds ?? 10;
  const rttSeconds = o.rttSeconds ?? 60;
  const rttChunk = tests.has('rtt') ? Math.max(1, Math.ceil((o.rttSamples ?? 10_000) / rounds)) : 0;
  const connSeconds = tests.has('conn') ? o.seconds / rounds : 0;
  const wdp: WdpVariantOptions = {
    wdpBin: o.wdpBin, wdpBusyPollUs: o.wdpBusyPollUs, wdpWorkerNice: o.wdpWorkerNice, wdpWorkerRealtime: o.wdpWorkerRealtime,
    wdpPort: o.wdpPort, wdpRxRing: o.wdpRxRing, wdpXdpMode: o.wdpXdpMode, wdpExtra: o.wdpExtra, wdpEnv: o.wdpEnv,
  };
  const loadStart = loadavg()[0];
  p.note(`latency and connection rate: ${rounds} rounds × (${rttChunk} round trips + ${round(connSeconds, 2)} s of connections) per contender, ${runnable.join(', ')} up at once, order rotating`);
  let figs: InterleaveFigures[];
  try {
    figs = await runE2eInterleaved({
      variants: runnable.map((c) => ({ name: c, contender: c, ...(c === 'wdp' ? { wdp } : {}) })),
      rounds, rttChunk, rttChunkSeconds: rttSeconds / rounds, connSeconds, connConcurrency: o.connConcurrency,
      baseline: runnable.includes('kernel') ? 'kernel' : undefined, progress: p,
    });
  } catch (e) {
    for (const c of runnable) await side(c, () => Promise.reject(e));
    return;
  }
  const loadEnd = loadavg()[0];
  const by = <T>(pick: (f: InterleaveFigures) => T) => Object.fromEntries(figs.map((f) => [f.name, pick(f)])) as Partial<Record<Contender, T>>;
  res.interleave = {
    rounds, rtt_chunk: rttChunk, rtt_seconds: rttSeconds, conn_chunk_s: round(connSeconds, 3),
    conn_warmup_s: connSeconds > 0 ? CONN_WARMUP_S : 0, rtt_warmup: rttChunk > 0 ? RTT_WARMUP : 0,
    ratio_range_level: figs.find((f) => f.rtt_p99_ratio_range)?.rtt_p99_ratio_range?.level ?? 0.9,
    load_start: round(loadStart, 2), load_end: round(loadEnd, 2),
    rtt_p99_us_rounds: by((f) => f.rtt_p99_us_rounds),
    rtt_p99_per_kernel_rounds: Object.fromEntries(figs.filter((f) => f.ratio_to === 'kernel' && f.name !== 'kernel').map((f) => [f.name, f.rtt_p99_ratio_rounds])),
    conn_per_s_chunks: by((f) => f.conn_per_s_chunks),
    process_cpu_us_per_rtt: by((f) => f.process_cpu_us_per_rtt),
  };
  for (const f of figs) {
    const c = f.name as Contender;
    await side(c, async () => {
      fillLatency(res, c, f, tests);
      if (c === 'wdp') { res.wdp_port_type = f.port_kinds; res.wdp_time_split = f.time_split; }
      if (c === 'ovs') res.ovs_port_type = f.port_kinds;
    });
  }
}

// ---- interleaved rounds ------------------------------------------------------------------------

/** wdp's options a variant (or the bench's wdp contender) can set. */
export type WdpVariantOptions = Pick<E2eOptions, 'wdpBin' | 'wdpBusyPollUs' | 'wdpWorkerNice' | 'wdpWorkerRealtime' | 'wdpPort' | 'wdpRxRing' | 'wdpXdpMode' | 'wdpExtra' | 'wdpEnv'>;

/** One contender of an interleaved comparison: the kernel, wdp with its own options, or OVS. */
export interface InterleaveVariant {
  name: string;
  /** 'generator': the router drops every frame at r0's ingress (blasts only): the ceiling and
   * the CPU baseline of the blast figures, measured in the same rounds. 'ovs': the private Open
   * vSwitch (peers/ovs.ts), stopped (SIGSTOP) outside its own chunks — its PMD thread polls a CPU
   * all the time, which would otherwise take half of a 2-CPU machine from every other contender.
   * 'command': a router you bring (a prototype to measure beside the others): the router gets the
   * gateway addresses (its kernel answers ARP, forwards nothing) and `command` runs in its
   * namespace with the topology appended (commandArgv) until its stdin closes; it prints `ready`. */
  contender: 'kernel' | 'wdp' | 'ovs' | 'generator' | 'command';
  wdp?: WdpVariantOptions;
  command?: string[];
}

export interface InterleaveFigures {
  name: string;
  /** Why this variant's figures are missing or partial: it did not come up, or a chunk failed
   * (it then sat out the remaining rounds). Absent when every round ran. */
  unavailable_reason?: string;
  rtt_p50_us: number | null; rtt_p99_us: number | null; rtt_samples: number; rtt_lost: number;
  /** Each round's chunk p99 (null where the variant had no samples that round). */
  rtt_p99_us_rounds: Array<number | null>;
  /** The variant the ratios below are against (`baseline`, default the first variant measuring
   * latency); null when it has no figures. */
  ratio_to: string | null;
  /** Pooled p50 / p99 over the baseline's, both pooled over the rounds both ran (pairedPooledRatio). */
  rtt_p50_ratio: number | null; rtt_p99_ratio: number | null;
  /** Per round: this variant's chunk p99 over the baseline's chunk p99 in the same round. */
  rtt_p99_ratio_rounds: Array<number | null>;
  /** A 90% range of the pooled ratios, by a bootstrap over whole rounds (paired-rounds.ts). */
  rtt_p99_ratio_range: RatioRange | null;
  rtt_p50_ratio_range: RatioRange | null;
  conn_per_s: number | null;          // median over the rounds' chunks
  conn_per_s_chunks: number[];
  conn_failures: number;
  /** Median chunk over the baseline's median chunk (the rounds both ran), and per round. */
  conn_ratio: number | null;
  conn_ratio_rounds: Array<number | null>;
  /** The forwarder process's CPU per round trip in the latency chunks (wdp, OVS): what a
   * busy-poll costs shows here. */
  process_cpu_us_per_rtt: number | null;
  /** Per blast test ('one', 'new'), pooled over the rounds: frames forwarded (translated, at the
   * server) and offered per second, the forwarder process's CPU per forwarded frame, and with a
   * generator variant in the run the forwarder CPU per packet by the bench's one formula
   * (cpu-account.ts); for the generator variant, offered_mpps is the ceiling. */
  blasts: Partial<Record<'one' | 'new', InterleaveBlast>>;
  /** wdp: the worker's time split since start (all rounds). */
  time_split: TimeSplit | null;
  /** wdp: what its ports are, with their counters since start; OVS: its port type. */
  port_kinds: string | null;
}

export interface InterleaveBlast {
  mpps: number | null; offered_mpps: number; process_cpu_ns_per_packet: number | null; cpu_ns_per_packet: number | null;
  mpps_chunks: number[];
}

export interface InterleaveOptions {
  variants: InterleaveVariant[];
  rounds: number;
  /** UDP round trips per variant and round (0: none). */
  rttChunk: number;
  /** A chunk's time bound: it stops early with fewer samples (default: none but the count). */
  rttChunkSeconds?: number;
  /** Seconds of TCP connections per variant and round (0: none), `connConcurrency` loops (16). */
  connSeconds: number;
  connConcurrency?: number;
  /** Uncounted warm-up before each chunk's figures, in the chunk's own client process: seconds of
   * connections (CONN_WARMUP_S) and round trips (RTT_WARMUP). */
  connWarmupS?: number; rttWarmup?: number;
  /** The variant every ratio is against (default: the first variant that measures latency). */
  baseline?: string;
  /** blast tests per round and variant ('one', 'new'), each `blastSeconds` long (default 2) */
  blasts?: Array<'one' | 'new'>; blastSeconds?: number; progress?: Progress;
  /** Called once every variant is up, before the rounds (e.g. to profile or trace them by hand:
   * the namespaces and the daemon's pid); the rounds start when it resolves. */
  onUp?: (up: Array<{ name: string; client: string; router: string; server: string; pid: number | null; echo: string; tcp: string }>) => Promise<void>;
}

const OVS_DEPS = {
  startInNs: (ns: string, argv: string[], env?: Record<string, string>) => { const ch = startInNs(ns, argv, env); ch.stdout!.resume(); ch.stderr!.resume(); return ch; },
  stopChild: (ch: unknown, sig?: NodeJS.Signals) => stopChild(ch as ChildProcess, sig),
  sleep,
};

/** Starts the private OVS in the topology's router namespace (state under `dir`). */
async function startOvsRouter(t: Topology, dir: string) {
  await staticGatewayNeighbours(t);
  return startOvs({
    router: t.router, toClient: { dev: 'r0', mac: t.routerMacC }, toServer: { dev: 'r1', mac: t.routerMacS },
    clientMac: t.clientMac, serverMac: t.serverMac, clientPrefix: `10.131.0.0/${CLIENT_PLEN}`,
  }, ovsServices(), dir, OVS_DEPS, CONNTRACK_MAX);
}

/**
 * Every variant's topology up at once, then rounds of short chunks — `rttChunk` UDP round trips
 * and `connSeconds` of TCP connections per variant, the order rotating every round — so a load
 * change on the machine hits every variant alike (paired, unlike runs one after the other). RTT
 * percentiles come from all rounds' samples pooled; the connection rate is the median chunk; the
 * ratios to the baseline come with their per-round values and a bootstrap range over the rounds.
 * A variant that fails to come up or fails a chunk is reported with its reason and sits out the
 * remaining rounds; the others go on.
 */
export async function runE2eInterleaved(o: InterleaveOptions): Promise<InterleaveFigures[]> {
  const blastTests = o.blasts ?? [];
  requireTools(['ip', 'nft', 'sysctl', 'ethtool', ...(blastTests.length ? ['trafgen'] : [])]);
  if (o.variants.some((v) => v.contender === 'generator') && (o.rttChunk > 0 || o.connSeconds > 0)) throw new Error('a generator variant measures blasts only: --rtt-chunk 0 --conn-seconds 0');
  const p = o.progress ?? new Progress(false);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-e2e-ab-'));
  writeFileSync(join(dir, 'server.mjs'), SERVER_JS);
  writeFileSync(join(dir, 'conn.mjs'), CONN_JS);
  writeFileSync(join(dir, 'rtt.mjs'), RTT_JS);
  interface Pooled { forwarded: number; offered: number; dt: number; forwarderS: number; generatorS: number; chunks: number[] }
  interface Live {
    v: InterleaveVariant; t: Topology | null; pid: number | null; failed?: string;
    /** SIGSTOP/SIGCONT for a contender that must not run outside its chunks (OVS's PMD). */
    pause: ((on: boolean) => void) | null;
    rttRounds: Array<number[] | null>; lost: number; conns: Array<number | null>; connFail: number; cpuS: number; cpuSamples: number;
    pooled: Partial<Record<'one' | 'new', Pooled>>; timeSplit: TimeSplit | null; portKinds: string | null;
  }
  const live: Live[] = [];
  const stops: Array<() => Promise<void>> = [];
  const up = async (k: number): Promise<void> => {
    if (k === o.variants.length) return run();
    const v = o.variants[k];
    await withNamespaces([`a${k}c`, `a${k}r`, `a${k}s`], async (names) => {
      const x: Live = { v, t: null, pid: null, pause: null, rttRounds: [], lost: 0, conns: [], connFail: 0, cpuS: 0, cpuSamples: 0, pooled: {}, timeSplit: null, portKinds: null };
      live.push(x);
      try {
        const t = await wire(names);
        const own = join(dir, `v${k}`);   // each contender its own socket, state and config
        if (v.contender === 'kernel') await kernelRouter(t);
        else if (v.contender === 'generator') await dropRouter(t);
        else if (v.contender === 'command') {
          if (!v.command?.length) throw new Error('a command variant needs its command');
          await runOk(['ip', '-n', t.router, 'addr', 'add', `${CLIENT_GW}/${CLIENT_PLEN}`, 'dev', 'r0']);
          await runOk(['ip', '-n', t.router, 'addr', 'add', `${SERVER_GW}/${SERVER_PLEN}`, 'dev', 'r1']);
          const cmd = startInNs(t.router, [...v.command, ...commandArgv(t)], { WDP_BENCH_CLIENT_NS: t.client, WDP_BENCH_SERVER_NS: t.server });
          let said = '';   // its stderr, the last 16 KiB
          cmd.stderr!.on('data', (b: Buffer) => { said = (said + b.toString()).slice(-16384); });
          stops.push(async () => {
            // stdin's end asks it to stop: what it says then (its own counters) is printed
            cmd.stdin!.end();
            if (cmd.exitCode === null && cmd.signalCode === null) {
              await new Promise<void>((resolve) => { const hard = setTimeout(resolve, 2000); cmd.once('close', () => { clearTimeout(hard); resolve(); }); });
            }
            await stopChild(cmd, 'SIGTERM');
            for (const line of said.trim().split('\n').filter(Boolean)) p.note(`${v.name}: ${line}`);
          });
          await waitForLine(cmd, 'ready', 10_000);
          x.pid = cmd.pid!;
        } else if (v.contender === 'ovs') {
          const ovs = await startOvsRouter(t, own);
          const pid = ovs.vswitchdPid;
          x.pause = (on) => { try { process.kill(-pid, on ? 'SIGSTOP' : 'SIGCONT'); } catch { /* gone: its chunk fails */ } };
          stops.push(async () => { x.pause?.(false); await ovs.stop(); });
          x.pid = pid; x.portKinds = ovs.portType;
        } else {
          const d = await startWdpRouter(t, own, { seconds: 1, ...v.wdp });
          stops.push(async () => { x.timeSplit = await d.timeSplit(); x.portKinds = await d.portKinds(); await d.stop(); });
          x.pid = d.pid;
        }
        const srv = startInNs(t.server, ['node', join(dir, 'server.mjs'), String(SINK_PORT), String(ECHO_PORT)]);
        stops.push(async () => { srv.stdin!.end(); await stopChild(srv, 'SIGTERM'); });
        await waitForLine(srv, 'ready', 10_000);
        x.t = t;
        x.pause?.(true);
      } catch (e) {
        x.failed = `${v.name} did not come up: ${(e as Error).message}`;
        p.note(x.failed);
      }
      try { await up(k + 1); } finally { while (stops.length) await stops.pop()!(); }
    });
  };
  const turn = async (x: Live, t: Topology, r: number): Promise<void> => {
    if (o.rttChunk > 0) {
      const meter = x.pid ? new CpuMeter([x.pid]) : null;
      const c0 = meter?.seconds() ?? 0;
      const bound = o.rttChunkSeconds ?? 0;
      const rtt = await nodeJson<{ samples: number; lost: number; warmed: number; rtts: number[] }>(t.client, join(dir, 'rtt.mjs'),
        [VIP_ECHO, String(SVC_PORT), String(o.rttChunk), 'raw', String(bound), String(o.rttWarmup ?? RTT_WARMUP)], Math.max(120, bound + 60) * 1000);
      // the forwarder's CPU over the chunk's round trips, its warm-up's included
      if (meter) { x.cpuS += meter.seconds() - c0; x.cpuSamples += rtt.samples + rtt.warmed; }
      x.rttRounds[r] = rtt.rtts; x.lost += rtt.lost;
    }
    if (o.connSeconds > 0) {
      const conn = await nodeJson<{ ok: number; fail: number; seconds: number }>(t.client, join(dir, 'conn.mjs'),
        [VIP_TCP, String(SVC_PORT), String(o.connSeconds), String(o.connConcurrency ?? 16), String(o.connWarmupS ?? CONN_WARMUP_S)], (o.connSeconds + (o.connWarmupS ?? CONN_WARMUP_S)) * 1000 + 30_000);
      x.conns[r] = conn.ok / conn.seconds; x.connFail += conn.fail;
    }
    for (const b of blastTests) {
      const gen = x.v.contender === 'generator';
      const res = await blast(t, join(dir, `v${live.indexOf(x)}`), b === 'new', o.blastSeconds ?? 2, x.pid ? [x.pid] : [], !gen);
      const pl = (x.pooled[b] ??= { forwarded: 0, offered: 0, dt: 0, forwarderS: 0, generatorS: 0, chunks: [] });
      pl.forwarded += res.forwarded; pl.offered += res.offered; pl.dt += res.dt; pl.forwarderS += res.forwarderS; pl.generatorS += res.generatorS;
      pl.chunks.push(round(gen ? res.offeredMpps : res.mpps, 3));
    }
  };
  const run = async () => {
    if (o.onUp) await o.onUp(live.filter((x) => x.t).map((x) => ({ name: x.v.name, client: x.t!.client, router: x.t!.router, server: x.t!.server, pid: x.pid, echo: `${VIP_ECHO}:${SVC_PORT}`, tcp: `${VIP_TCP}:${SVC_PORT}` })));
    for (let r = 0; r < o.rounds; r++) {
      for (const i of rotation(live.length, r)) {
        const x = live[i];
        if (x.failed || !x.t) continue;
        x.pause?.(false);
        try { await turn(x, x.t, r); } catch (e) {
          x.failed = `${x.v.name} failed in round ${r + 1} and sat out the rest: ${(e as Error).message}`;
          p.note(x.failed);
        } finally { x.pause?.(true); }
      }
      p.note(`round ${r + 1}/${o.rounds} done (load ${loadavg()[0].toFixed(1)})`);
    }
  };
  for (let k = 0; k < o.variants.length; k++) mkdirSync(join(dir, `v${k}`), { recursive: true });
  try { await up(0); } finally { rmSync(dir, { recursive: true, force: true }); }
  // the generator alone's CPU per offered frame, pooled over its rounds and blast tests
  const gens = live.filter((x) => x.v.contender === 'generator').flatMap((x) => Object.values(x.pooled));
  const genFrames = gens.reduce((a, g) => a + g.offered, 0);
  const base: GeneratorBaseline | null = genFrames > 0 ? { cpuPerFrameS: gens.reduce((a, g) => a + g.generatorS, 0) / genFrames } : null;
  const blastFigures = (x: Live): Partial<Record<'one' | 'new', InterleaveBlast>> => {
    const out: Partial<Record<'one' | 'new', InterleaveBlast>> = {};
    for (const [b, pl] of Object.entries(x.pooled) as Array<['one' | 'new', Pooled]>) {
      const gen = x.v.contender === 'generator';
      const fwdCpu = gen ? null : forwarderCpuSeconds(pl, base);
      out[b] = {
        mpps: gen ? null : round(pl.forwarded / pl.dt / 1e6, 4), offered_mpps: round(pl.offered / pl.dt / 1e6, 4),
        process_cpu_ns_per_packet: x.pid && pl.forwarded ? round(pl.forwarderS / pl.forwarded * 1e9, 0) : null,
        cpu_ns_per_packet: fwdCpu !== null && pl.forwarded ? round(fwdCpu / pl.forwarded * 1e9, 0) : gen && pl.offered ? round(pl.generatorS / pl.offered * 1e9, 0) : null,
        mpps_chunks: pl.chunks,
      };
    }
    return out;
  };
  const rounds = (xs: Array<number[] | null>) => Array.from({ length: o.rounds }, (_, r) => xs[r] ?? null);
  const sampled = (x: Live) => x.rttRounds.some((c) => c?.length) || x.conns.some((c) => c != null);
  const ref = live.find((x) => (o.baseline ? x.v.name === o.baseline : x.v.contender !== 'generator') && sampled(x)) ?? null;
  const r1 = (v: number | null) => v === null ? null : round(v, 1);
  const r3 = (v: number | null) => v === null ? null : round(v, 3);
  const div = (a: number | null, b: number | null) => a !== null && b !== null && b > 0 ? a / b : null;
  const median0 = (xs: Array<number | null>) => { const v = xs.filter((c): c is number => c != null); return v.length ? median(v) : null; };
  // a ratio to the baseline pairs the rounds both ran (one that failed sat out the rest)
  const rttRatio = (x: Live, q: number) => ref ? pairedPooledRatio(rounds(x.rttRounds), rounds(ref.rttRounds), q) : null;
  const connRatio = (x: Live) => {
    if (!ref) return null;
    const both = Array.from({ length: o.rounds }, (_, r) => r).filter((r) => x.conns[r] != null && ref.conns[r] != null);
    return div(median0(both.map((r) => x.conns[r]!)), median0(both.map((r) => ref.conns[r]!)));
  };
  const range = (x: Live, q: number) => {
    const g = ref && x !== ref ? bootstrapRatioRange(rounds(x.rttRounds), rounds(ref.rttRounds), q) : null;
    return g && { ...g, lo: round(g.lo, 3), hi: round(g.hi, 3) };
  };
  return live.map((x): InterleaveFigures => {
    const p50 = pooledQuantile(x.rttRounds, 0.5), p99 = pooledQuantile(x.rttRounds, 0.99);
    const samples = x.rttRounds.reduce((a, c) => a + (c?.length ?? 0), 0);
    const conn = median0(x.conns);
    return {
      name: x.v.name, ...(x.failed ? { unavailable_reason: x.failed } : {}),
      rtt_p50_us: r1(p50), rtt_p99_us: r1(p99), rtt_samples: samples, rtt_lost: x.lost,
      rtt_p99_us_rounds: rounds(x.rttRounds).map((c) => r1(c?.length ? pooledQuantile([c], 0.99) : null)),
      ratio_to: ref?.v.name ?? null,
      rtt_p50_ratio: r3(rttRatio(x, 0.5)), rtt_p99_ratio: r3(rttRatio(x, 0.99)),
      rtt_p99_ratio_rounds: ref ? roundRatios(rounds(x.rttRounds), rounds(ref.rttRounds), 0.99).map(r3) : [],
      rtt_p99_ratio_range: range(x, 0.99), rtt_p50_ratio_range: range(x, 0.5),
      conn_per_s: r1(conn),
      conn_per_s_chunks: x.conns.filter((c): c is number => c != null).map((v) => Math.round(v)),
      conn_failures: x.connFail,
      conn_ratio: r3(connRatio(x)),
      conn_ratio_rounds: ref ? Array.from({ length: o.rounds }, (_, r) => r3(div(x.conns[r] ?? null, ref.conns[r] ?? null))) : [],
      process_cpu_us_per_rtt: x.pid && x.cpuSamples ? r1((x.cpuS / x.cpuSamples) * 1e6) : null,
      blasts: blastFigures(x), time_split: x.timeSplit, port_kinds: x.portKinds,
    };
  });
}
