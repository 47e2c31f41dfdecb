// `wdp bench e2e`: packets through a ClusterIP across real namespaces, wdp against the kernel.
//
// Topology (built twice, identically, once per contender, in private namespaces):
//
//   client ns  c0 10.131.0.2/16 ──veth── r0 10.131.0.1/16  ROUTER ns  r1 10.130.2.1/24 ──veth── s0 10.130.2.2/24  server ns
//
// The router namespace is the contender: for the kernel it forwards with kube-proxy's nftables
// DNAT rules (same generator as `bench control`); for wdp it runs the daemon with AF_PACKET ports
// on r0/r1 and no kernel forwarding. Client and server are identical in both: trafgen blasts
// 60-byte frames (64 on the wire with FCS) from the client, the server counts what arrives on s0
// (and drops it at netdev ingress so replies cannot load the path), a Node client opens TCP
// connections in a loop, a Node UDP client ping-pongs for latency. Addresses are inside the
// cluster CIDR, so neither contender masquerades: both do plain DNAT.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { withNamespaces, runOk, run, requireTools, nsArgv } from './peers/netns.js';
import { nftRuleset } from './peers/nftables.js';
import type { BenchService } from './peers/service-set.js';
import { Progress, round } from './report.js';
import { serviceObject, sliceObject } from './control.js';

export interface E2eOptions {
  seconds: number;          // per traffic test
  rttSamples?: number;      // UDP ping-pongs
  connConcurrency?: number; // parallel TCP connect loops
  only?: 'wdp' | 'kernel';
  progress?: Progress;
}

/** Shares of the daemon's busy loop time: rx burst, Wasm core, tx burst, and other (the TS slow
 * path: ARP/ND, neighbour learning). Idle waiting is excluded. */
export interface TimeSplit { rx_pct: number; core_pct: number; tx_pct: number; other_pct?: number }

export interface E2eResult {
  suite: 'e2e';
  seconds: number;
  vip: string;
  port: number;
  wdp_mpps: number | null;
  kernel_mpps: number | null;
  wdp_new_flow_mpps: number | null;
  kernel_new_flow_mpps: number | null;
  wdp_offered_mpps: number | null;        // what trafgen got onto the wire: the ceiling of each figure
  kernel_offered_mpps: number | null;
  wdp_conn_per_s: number | null;
  kernel_conn_per_s: number | null;
  wdp_conn_failures: number | null;
  kernel_conn_failures: number | null;
  wdp_rtt_p50_us: number | null;
  wdp_rtt_p99_us: number | null;
  kernel_rtt_p50_us: number | null;
  kernel_rtt_p99_us: number | null;
  wdp_cpu_s: number | null;
  kernel_cpu_s: number | null;
  wdp_time_split: TimeSplit | null;
  wdp_unavailable_reason?: string;
  kernel_unavailable_reason?: string;
  notes: string[];
}

// ---- fixed addressing --------------------------------------------------------------------------

const CLIENT = '10.131.0.2', CLIENT_GW = '10.131.0.1', CLIENT_PLEN = 16;
const SERVER = '10.130.2.2', SERVER_GW = '10.130.2.1', SERVER_PLEN = 24;
const VIP_BLAST = '10.96.99.10', VIP_TCP = '10.96.99.11', VIP_ECHO = '10.96.99.12';
const SVC_PORT = 80, SINK_PORT = 8080, ECHO_PORT = 8081;

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
  // the blast sink: drop at the earliest hook so the server's stack does not answer with ICMP
  await runOk(['nft', '-f', '-'], { ns: server, input: `table netdev sink {\n  chain in {\n    type filter hook ingress device s0 priority 0 ;\n    udp dport ${SINK_PORT} drop\n  }\n}\n` });
  return {
    client, router, server,
    routerMacC: await linkMac(router, 'r0'), routerMacS: await linkMac(router, 'r1'),
    clientMac: await linkMac(client, 'c0'), serverMac: await linkMac(server, 's0'),
  };
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
srv.listen(tcpPort, '0.0.0.0', ready);
echo.bind(echoPort, '0.0.0.0', ready);
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

const CONN_JS = `
import net from 'node:net';
const [host, port, secs, conc] = process.argv.slice(2);
let ok = 0, fail = 0;
const t0 = performance.now(), end = t0 + Number(secs) * 1000;
function once() {
  return new Promise((res) => {
    const s = net.connect({ host, port: Number(port) });
    const done = (good) => { if (good) ok++; else fail++; s.removeAllListeners(); s.on('error', () => {}); s.resetAndDestroy(); res(); };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
async function loop() { while (performance.now() < end) await once(); }
await Promise.all(Array.from({ length: Number(conc) }, loop));
console.log(JSON.stringify({ ok, fail, seconds: (performance.now() - t0) / 1000 }));
`;

const RTT_JS = `
import dgram from 'node:dgram';
const [host, port, n] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
await new Promise((r) => s.connect(Number(port), host, r));
const rtts = []; let lost = 0;
const payload = Buffer.alloc(18);
for (let i = 0; i < Number(n); i++) {
  payload.writeUInt32BE(i, 0);
  const t0 = process.hrtime.bigint();
  const got = await new Promise((res) => {
    const timer = setTimeout(() => { s.off('message', on); res(false); }, 500);
    function on(m) { if (m.length === payload.length && m.readUInt32BE(0) === i) { clearTimeout(timer); s.off('message', on); res(true); } }
    s.on('message', on);
    s.send(payload);
  });
  if (got) rtts.push(Number(process.hrtime.bigint() - t0) / 1000); else lost++;
}
rtts.sort((a, b) => a - b);
const q = (p) => rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))] : null;
console.log(JSON.stringify({ p50: q(0.5), p99: q(0.99), samples: rtts.length, lost }));
s.close();
`;

// Children run in their own process group: trafgen forks a worker per CPU and a signal to the
// parent alone leaves the worker transmitting. Signals therefore go to the whole group.
const liveGroups = new Set<number>();
let exitHook = false;

function startInNs(ns: string, argv: string[]): ChildProcess {
  const full = nsArgv(argv, ns);
  const child = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
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

interface Sample { t: number; serverRx: number; clientTx: number; softirqS: number; daemonCpuS: number | null }

async function ifStats(ns: string, dev: string): Promise<{ rx: number; tx: number }> {
  const r = await runOk(['ip', '-n', ns, '-j', '-s', 'link', 'show', dev]);
  const j = (JSON.parse(r.stdout) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>)[0];
  return { rx: j.stats64.rx.packets, tx: j.stats64.tx.packets };
}

const CLK_TCK = 100; // USER_HZ: /proc/stat and /proc/PID/stat are in 1/100 s on every Linux ABI

/** System-wide softirq seconds (all CPUs): where the kernel does its forwarding and NAT. */
function softirqSeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  return Number(cpu[7]) / CLK_TCK;
}

/** utime + stime of a process and its threads (what the daemon's forwarding costs). */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch { return null; }
}

async function sample(t: Topology, daemonPid: number | null): Promise<Sample> {
  const t0 = performance.now();
  const [s, c] = await Promise.all([ifStats(t.server, 's0'), ifStats(t.client, 'c0')]);
  const t1 = performance.now();
  return { t: (t0 + t1) / 2, serverRx: s.rx, clientTx: c.tx, softirqS: softirqSeconds(), daemonCpuS: daemonPid ? processCpuSeconds(daemonPid) : null };
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

interface BlastResult { mpps: number; offeredMpps: number; softirqS: number; daemonCpuS: number | null; dt: number }

async function blast(t: Topology, dir: string, newFlows: boolean, seconds: number, daemonPid: number | null): Promise<BlastResult> {
  const cfg = join(dir, newFlows ? 'newflows.trafgen' : 'oneflow.trafgen');
  writeFileSync(cfg, trafgenConfig(t.routerMacC, newFlows));
  // one generator process: a second would compete with the contender for the machine's 2 cores
  const gen = startInNs(t.client, ['trafgen', '-o', 'c0', '-i', cfg, '-P', '1', '-q']);
  let genErr = '';
  gen.stderr!.on('data', (b: Buffer) => { genErr += b.toString(); });
  try {
    // warm-up: ARP, conntrack, the contender's first batches; not counted
    await sleep(Math.min(500, seconds * 250));
    if (gen.exitCode !== null) throw new Error(`trafgen exited early (code ${gen.exitCode}): ${genErr.trim()}`);
    const a = await sample(t, daemonPid);
    await sleep(seconds * 1000);
    const b = await sample(t, daemonPid);
    if (gen.exitCode !== null) throw new Error(`trafgen exited during the test (code ${gen.exitCode}): ${genErr.trim()}`);
    const dt = (b.t - a.t) / 1000;
    return {
      mpps: (b.serverRx - a.serverRx) / dt / 1e6,
      offeredMpps: (b.clientTx - a.clientTx) / dt / 1e6,
      softirqS: b.softirqS - a.softirqS,
      daemonCpuS: a.daemonCpuS !== null && b.daemonCpuS !== null ? b.daemonCpuS - a.daemonCpuS : null,
      dt,
    };
  } finally {
    await stopChild(gen);
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

interface SideResult {
  mpps: number; newFlowMpps: number; offeredMpps: number;
  connPerS: number; connFailures: number;
  rttP50: number | null; rttP99: number | null;
  softirqS: number; daemonCpuS: number | null;
}

async function measureSide(t: Topology, dir: string, o: E2eOptions, p: Progress, label: string, daemonPid: number | null): Promise<SideResult> {
  const serverJs = join(dir, 'server.mjs'), connJs = join(dir, 'conn.mjs'), rttJs = join(dir, 'rtt.mjs');
  const srv = startInNs(t.server, ['node', serverJs, String(SINK_PORT), String(ECHO_PORT)]);
  try {
    await waitForLine(srv, 'ready', 10_000);
    // latency and connection rate first: the new-flow blast fills the kernel's conntrack table
    // (262144 entries here), which would then slow every later test on the kernel side
    const rtt = await p.step(`${label}: UDP ping-pong x${o.rttSamples ?? 2000}`, () =>
      nodeJson<{ p50: number | null; p99: number | null; samples: number; lost: number }>(t.client, rttJs, [VIP_ECHO, String(SVC_PORT), String(o.rttSamples ?? 2000)], 120_000));
    if (rtt.samples === 0) throw new Error(`${label}: no UDP echo came back through ${VIP_ECHO}:${SVC_PORT} (${rtt.lost} lost)`);
    const conn = await p.step(`${label}: TCP connection rate ${o.seconds} s`, () =>
      nodeJson<{ ok: number; fail: number; seconds: number }>(t.client, connJs, [VIP_TCP, String(SVC_PORT), String(o.seconds), String(o.connConcurrency ?? 16)], o.seconds * 1000 + 30_000));
    if (conn.ok === 0) throw new Error(`${label}: no TCP connection to ${VIP_TCP}:${SVC_PORT} succeeded (${conn.fail} failed)`);
    const one = await p.step(`${label}: UDP 64 B one flow ${o.seconds} s`, () => blast(t, dir, false, o.seconds, daemonPid));
    const many = await p.step(`${label}: UDP 64 B new flow per packet ${o.seconds} s`, () => blast(t, dir, true, o.seconds, daemonPid));
    return {
      mpps: one.mpps, newFlowMpps: many.mpps, offeredMpps: Math.max(one.offeredMpps, many.offeredMpps),
      connPerS: conn.ok / conn.seconds, connFailures: conn.fail,
      rttP50: rtt.p50, rttP99: rtt.p99,
      softirqS: one.softirqS + many.softirqS,
      daemonCpuS: one.daemonCpuS !== null && many.daemonCpuS !== null ? one.daemonCpuS + many.daemonCpuS : null,
    };
  } finally {
    srv.stdin!.end();
    await stopChild(srv, 'SIGTERM');
  }
}

// ---- the wdp contender -------------------------------------------------------------------------

interface WdpDaemon { pid: number; stop(): Promise<void>; timeSplit(): Promise<TimeSplit | null>; log(): string }

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

/** utime+stime of `pid` and every descendant (port helper processes, if the daemon uses them):
 * /proc/PID/stat already sums the threads of one process, children are separate processes. */
export function processTreeCpuSeconds(pid: number): number | null {
  const own = processCpuSeconds(pid);
  if (own === null) return null;
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch { /* exited meanwhile */ }
  }
  let total = own;
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const c = stack.pop()!;
    total += processCpuSeconds(c) ?? 0;
    stack.push(...(children.get(c) ?? []));
  }
  return total;
}

/** The wdp contender: `wdp start` in the router namespace with AF_PACKET ports on r0 (towards the
 * client, an uplink answering ARP for 10.131.0.1) and r1 (towards the server, a pod port with the
 * server as its pod); no IP addresses and no forwarding in the router's kernel. The three services
 * are then POSTed to the daemon's API, exactly as a user would. */
async function startWdpRouter(t: Topology, dir: string): Promise<WdpDaemon> {
  const sock = join(dir, 'wdp-api.sock');
  const config = {
    node: { name: 'bench-router', addresses: [] },
    ports: [
      { name: 'client', type: 'afpacket', ifname: 'r0', role: 'uplink', gateways: [CLIENT_GW] },
      { name: 'server', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: [SERVER_GW], pods: [{ ip: SERVER, mac: t.serverMac }] },
    ],
    // the client side, including the random sources of the new-flow test, is behind r0
    routes: [{ prefix: `10.131.0.0/${CLIENT_PLEN}`, port: 'client', mac: t.clientMac }],
    api: { listen: sock },
    stateDir: join(dir, 'wdp-state'),
    logLevel: 'warn',
    // the same flow capacity as the kernel's nf_conntrack_max here, so the new-flow test fills
    // both tables at the same point
    conntrack: { flows: 262144 },
  };
  const cfgFile = join(dir, 'wdp-e2e.yaml');
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const child = startInNs(t.router, ['node', WDP_BIN, 'start', '--config', cfgFile]);
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
    timeSplit: async () => {
      try {
        const r = await unixRequest(sock, 'GET', '/api/v1/counters');
        if (r.status !== 200) return null;
        const g = (JSON.parse(r.text) as { global?: Record<string, number> }).global ?? {};
        const rx = g.slowpath_time_rx_ns ?? 0, core = g.slowpath_time_core_ns ?? 0;
        const slow = g.slowpath_time_slow_ns ?? 0, tx = g.slowpath_time_tx_ns ?? 0;
        const total = rx + core + slow + tx;
        if (!(total > 0)) return null;
        const pct = (x: number) => Math.round((x / total) * 1000) / 10;
        return { rx_pct: pct(rx), core_pct: pct(core), tx_pct: pct(tx), other_pct: pct(slow) };
      } catch { return null; }
    },
  };
}

// ---- the suite ---------------------------------------------------------------------------------

export async function runE2eBench(o: E2eOptions): Promise<E2eResult> {
  if (!(o.seconds > 0)) throw new Error('--seconds must be > 0');
  requireTools(['ip', 'nft', 'trafgen', 'sysctl', 'ethtool']);
  const p = o.progress ?? new Progress(false);
  const res: E2eResult = {
    suite: 'e2e', seconds: o.seconds, vip: VIP_BLAST, port: SVC_PORT,
    wdp_mpps: null, kernel_mpps: null, wdp_new_flow_mpps: null, kernel_new_flow_mpps: null,
    wdp_offered_mpps: null, kernel_offered_mpps: null,
    wdp_conn_per_s: null, kernel_conn_per_s: null, wdp_conn_failures: null, kernel_conn_failures: null,
    wdp_rtt_p50_us: null, wdp_rtt_p99_us: null, kernel_rtt_p50_us: null, kernel_rtt_p99_us: null,
    wdp_cpu_s: null, kernel_cpu_s: null, wdp_time_split: null,
    notes: [
      'one trafgen process; 60-byte frames (64 on the wire); Mpps counted at the server interface',
      'kernel_cpu_s is system-wide softirq time over both UDP blast windows (includes the generator\'s own transmit path); wdp_cpu_s is the daemon\'s utime+stime (with its child processes) over the same windows',
      'on veth the kernel forwards in the sender\'s softirq, on the generator\'s CPU: a slower kernel path also lowers the offered rate, so compare *_mpps with *_offered_mpps',
    ],
  };
  const dir = mkdtempSync(join(tmpdir(), 'wdp-e2e-'));
  try {
    writeFileSync(join(dir, 'server.mjs'), SERVER_JS);
    writeFileSync(join(dir, 'conn.mjs'), CONN_JS);
    writeFileSync(join(dir, 'rtt.mjs'), RTT_JS);

    if (o.only !== 'wdp') {
      await withNamespaces(['kc', 'kr', 'ks'], async (names) => {
        const t = await wire(names);
        await kernelRouter(t);
        const k = await measureSide(t, dir, o, p, 'kernel', null);
        res.kernel_mpps = round(k.mpps, 4); res.kernel_new_flow_mpps = round(k.newFlowMpps, 4);
        res.kernel_offered_mpps = round(k.offeredMpps, 4);
        res.kernel_conn_per_s = round(k.connPerS, 1); res.kernel_conn_failures = k.connFailures;
        res.kernel_rtt_p50_us = k.rttP50 === null ? null : round(k.rttP50, 1);
        res.kernel_rtt_p99_us = k.rttP99 === null ? null : round(k.rttP99, 1);
        res.kernel_cpu_s = round(k.softirqS, 2);
      });
    } else res.kernel_unavailable_reason = 'not requested (--only wdp)';

    if (o.only !== 'kernel') {
      const why = wdpDaemonUnavailable();
      if (why) res.wdp_unavailable_reason = why;
      else try {
        await withNamespaces(['wc', 'wr', 'ws'], async (names) => {
          const t = await wire(names);
          const d = await startWdpRouter(t, dir);
          try {
            let w: SideResult;
            try { w = await measureSide(t, dir, o, p, 'wdp', d.pid); } catch (e) {
              throw new Error(`${(e as Error).message}\n  daemon log (last lines): ${d.log().trim().split('\n').slice(-8).join('\n  ')}`);
            }
            res.wdp_mpps = round(w.mpps, 4); res.wdp_new_flow_mpps = round(w.newFlowMpps, 4);
            res.wdp_offered_mpps = round(w.offeredMpps, 4);
            res.wdp_conn_per_s = round(w.connPerS, 1); res.wdp_conn_failures = w.connFailures;
            res.wdp_rtt_p50_us = w.rttP50 === null ? null : round(w.rttP50, 1);
            res.wdp_rtt_p99_us = w.rttP99 === null ? null : round(w.rttP99, 1);
            res.wdp_cpu_s = w.daemonCpuS === null ? null : round(w.daemonCpuS, 2);
            res.wdp_time_split = await d.timeSplit();
            if (!res.wdp_time_split) res.notes.push('wdp_time_split is null: the daemon does not report how its time divides between rx, core and tx');
          } finally { await d.stop(); }
        });
      } catch (e) {
        // the kernel figures of this run stay valid; the wdp side reports why it has none rather
        // than failing the whole run or leaving half its figures filled in
        for (const k of ['wdp_mpps', 'wdp_new_flow_mpps', 'wdp_offered_mpps', 'wdp_conn_per_s', 'wdp_conn_failures', 'wdp_rtt_p50_us', 'wdp_rtt_p99_us', 'wdp_cpu_s', 'wdp_time_split'] as const) res[k] = null;
        res.wdp_unavailable_reason = `the wdp side failed: ${(e as Error).message}`;
        p.note(`wdp side failed: ${(e as Error).message}`);
      }
    } else res.wdp_unavailable_reason = 'not requested (--only kernel)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}
