// The demo / e2e topology: a dataplane namespace with one port per neighbour namespace.
//
//   client  (10.0.0.2, fd00::2)              --veth-- dp:c0   uplink, gateway 10.0.0.1 / fd00::1
//   remote  (192.168.100.10, fd00:100::10)   --veth-- dp:r0   uplink, node address 192.168.100.2
//   pod-X   (10.244.1.N/32, fd00:244::N/128)  a TAP the daemon creates inside pod-X's namespace,
//                                             or a veth whose dp end is an AF_PACKET (or AF_XDP) port
//
// Pods route everything via 10.244.0.1 / fd00:244::1 (on-link), which only the dataplane answers
// for (ARP/ND in the daemon's slow path). Each pod runs pod-server.js: HTTP answering its name,
// UDP echo. Used by `wdp demo` and by test/lib/topology.js (the e2e tests).
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, type IncomingHttpHeaders } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, sweepStale } from '../netns.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WDP_BIN = join(PACKAGE_ROOT, 'bin/wdp.js');
export const POD_SERVER = fileURLToPath(new URL('./pod-server.js', import.meta.url));
export const NODE_V4 = '192.168.100.2';
export const NODE_V6 = 'fd00:100::2';

export interface PodSpec { name: string; attach: 'tap' | 'afpacket' | 'afxdp' }
export interface Pod extends PodSpec { ns: string; ip: string; ip6: string; ifname: string }

export interface Topology {
  lab: NetnsLab;
  dir: string;
  /** the daemon's run directory (WDP_RUN_DIR: its interfaces' claims and hand-back records), under
   * `dir`: the lab's own, not the node's /run/wdp (daemonEnv) */
  runDir: string;
  ns: { dp: string; client: string; remote: string };
  pods: Pod[];
  config: Record<string, any>;
  configFile: string;
  podProcs: ChildProcess[];
  daemon?: ChildProcess;
  daemonLog: string;
}

export function buildTopology(opts: { pods: PodSpec[]; kind?: string; logLevel?: string; node?: Record<string, unknown>;
  /** transmit/receive queues of every veth (AF_XDP ports shared by several workers need as many) */
  queues?: number }): Topology {
  // a run that was SIGKILLed (e.g. a test runner timing out) cannot clean up after itself:
  // whatever it left is removed by the next run (only namespaces whose creator pid is gone)
  sweepStale();
  const lab = new NetnsLab(opts.kind ?? 't');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-lab-'));
  try {
    const dp = lab.namespace('dp');
    // The dataplane namespace has no IP stack of its own on the port interfaces.
    lab.sysctl(dp, 'net.ipv6.conf.all.disable_ipv6', '1', ['net.ipv6.conf.default.disable_ipv6', '1']);
    const client = lab.namespace('cli');
    const remote = lab.namespace('rem');
    const veth = opts.queues ? { queues: opts.queues } : {};
    lab.veth(client, 'eth0', dp, 'c0', veth);
    lab.veth(remote, 'eth0', dp, 'r0', veth);
    lab.addr(client, 'eth0', '10.0.0.2/24'); lab.addr(client, 'eth0', 'fd00::2/64');
    lab.route(client, 'default', '10.0.0.1'); lab.route(client, 'default', 'fd00::1');
    lab.addr(remote, 'eth0', '192.168.100.10/24'); lab.addr(remote, 'eth0', 'fd00:100::10/64');
    // node addresses are on-link for the remote client; LB ingress / external IPs are routed
    lab.route(remote, 'default', '192.168.100.1'); lab.route(remote, 'default', 'fd00:100::1');
    const ports: Array<Record<string, unknown>> = [
      { name: 'client', type: 'afpacket', ifname: 'c0', role: 'uplink', gateways: ['10.0.0.1', 'fd00::1'] },
      { name: 'remote', type: 'afpacket', ifname: 'r0', role: 'uplink', gateways: ['192.168.100.1', 'fd00:100::1'] },
    ];
    const pods: Pod[] = opts.pods.map((p, i) => {
      const n = 11 + i;
      const ns = lab.namespace(`p${i}`);
      const gateways = ['10.244.0.1', 'fd00:244::1'];
      if (p.attach !== 'tap') {
        lab.veth(ns, 'eth0', dp, `v${i}`, veth);
        ports.push({ name: p.name, type: p.attach, ifname: `v${i}`, role: 'pod', gateways });
      } else {
        ports.push({ name: p.name, type: 'tap', ifname: `tap${i}`, role: 'pod', gateways, netns: ns });
      }
      return { ...p, ns, ip: `10.244.1.${n}`, ip6: `fd00:244::${n}`, ifname: p.attach === 'tap' ? `tap${i}` : 'eth0' };
    });
    const config = {
      node: { name: 'node-a', addresses: [NODE_V4, NODE_V6], ...opts.node },
      ports,
      // a unix socket is reachable from every namespace: callers need not enter the dp namespace
      api: { listen: join(dir, 'api.sock'), healthz: 'off' },
      stateDir: join(dir, 'state'),
      logLevel: opts.logLevel ?? 'info',
      probeIntervalMs: 200,
      conntrack: { flows: 4096 },
    };
    const configFile = join(dir, 'wdp.yaml');
    writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
    return { lab, dir, runDir: join(dir, 'run'), ns: { dp, client, remote }, pods, config, configFile, podProcs: [], daemonLog: '' };
  } catch (e) {
    lab.destroySync();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Address the pods once their interface exists (TAP pods: once the daemon created the TAP in
 * their namespace; a pod whose interface already has its address is left as it is), then start
 * their servers. */
export async function startPods(topo: Topology, { http = [8080, 9090], udp = [5353] } = {}): Promise<void> {
  const { lab } = topo;
  for (const pod of topo.pods) {
    await lab.waitLink(pod.ns, pod.ifname, 15000);
    // a persistent TAP that kept its addresses and routes across a daemon restart: as it was
    if (lab.exec(pod.ns, 'ip', ['-o', 'addr', 'show', 'dev', pod.ifname]).stdout.includes(` ${pod.ip}/32 `)) continue;
    addressPod(lab, pod);
  }
  await Promise.all(topo.pods.map((pod) => new Promise<void>((resolve, reject) => {
    const child = lab.spawn(pod.ns, process.execPath, [POD_SERVER, pod.name, '--http', http.join(','), '--udp', udp.join(',')]);
    topo.podProcs.push(child);
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error(`pod ${pod.name} server not ready: ${err}`)), 10000);
    child.stdout!.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
    child.stderr!.on('data', (d) => { err += d; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`pod ${pod.name} server exited ${code}: ${err}`)); });
  })));
}

/** The pod's addresses (a /32 and a /128) and its routes via the gateways, on its interface. */
export function addressPod(lab: NetnsLab, pod: Pod): void {
  lab.sysctl(pod.ns, `net.ipv6.conf.${pod.ifname}.disable_ipv6`, '0');
  lab.up(pod.ns, pod.ifname);
  lab.addr(pod.ns, pod.ifname, `${pod.ip}/32`);
  lab.addr(pod.ns, pod.ifname, `${pod.ip6}/128`);
  lab.route(pod.ns, '10.244.0.1', undefined, pod.ifname);
  lab.route(pod.ns, 'default', '10.244.0.1', pod.ifname);
  lab.route(pod.ns, 'fd00:244::1', undefined, pod.ifname);
  lab.route(pod.ns, 'default', 'fd00:244::1', pod.ifname);
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

export interface ApiResponse { status: number; text: string; json: any; headers: IncomingHttpHeaders }

/** HTTP request to the daemon's API over its unix socket. */
export function api(topo: Topology, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({
      socketPath: topo.config.api.listen, method, path, timeout: 10000,
      headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json: unknown; try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, text, json, headers: res.headers });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('API request timed out')));
    if (data) req.write(data);
    req.end();
  });
}

/** The environment a `wdp start` of the lab runs with: its run directory the lab's (a daemon the
 * lab kills leaves its claims and records there, removed with the lab's directory). */
export function daemonEnv(topo: Topology): NodeJS.ProcessEnv {
  return { ...process.env, ...(topo.runDir ? { WDP_RUN_DIR: topo.runDir } : {}) };
}

/** Start `wdp start` inside the dataplane namespace; resolves when its API answers. */
export async function startDaemon(topo: Topology, extraArgs: string[] = []): Promise<ChildProcess> {
  const child = topo.lab.spawn(topo.ns.dp, process.execPath, [WDP_BIN, 'start', '--config', topo.configFile, ...extraArgs], { env: daemonEnv(topo) });
  topo.daemon = child;
  topo.daemonLog = '';
  child.stdout!.on('data', (d) => { topo.daemonLog += d; });
  child.stderr!.on('data', (d) => { topo.daemonLog += d; });
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${topo.daemonLog}`);
    try {
      if ((await api(topo, 'GET', '/healthz')).status === 200) return child;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`daemon API did not come up:\n${topo.daemonLog}`);
}

/** SIGTERM the daemon (clean stop), then remove every namespace and the temp dir. */
export async function destroyTopology(topo: Topology | undefined): Promise<void> {
  if (!topo) return;
  const d = topo.daemon;
  if (d && d.exitCode === null && d.signalCode === null) {
    d.kill('SIGTERM');
    await new Promise<void>((r) => { const t = setTimeout(r, 5000); d.once('exit', () => { clearTimeout(t); r(); }); });
  }
  await topo.lab.destroy();
  rmSync(topo.dir, { recursive: true, force: true });
}
