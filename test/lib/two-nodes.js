// Two Kubernetes nodes, each running its own `wdp start`, fed by one API-server double, in network
// namespaces (nothing in the root namespace):
//
//   out (192.168.100.10) ─┐                    ┌─ a-dp: wdp (node-a, 192.168.100.2) ─ a0 (TAP), a1 (veth)  10.244.1.0/24
//                         ├─ lan: bridge br0 ──┤
//                         │                    └─ b-dp: wdp (node-b, 192.168.100.3) ─ b0 (TAP), b1 (veth)  10.244.2.0/24
//   ctl: the API-server double on 172.31.255.1, reached by both dp namespaces over a management
//        veth each (a network of its own, as a node's control-plane NIC; not through wdp)
//
// IPv6 beside it: outside fd00:100::10, node-a fd00:100::2, node-b fd00:100::3, pods in
// fd00:244:1::/64 and fd00:244:2::/64. Each node's uplink is an AF_PACKET (or AF_XDP) port on its
// veth to the bridge; its routes send the other node's pod CIDRs and node addresses out of the
// uplink to the other node's uplink MAC (what a cluster's routed pod network does). Each node has
// a host port (its own stack: the healthCheckNodePort servers, hostNetwork clients) with its node
// addresses, as the kube-e2e kit's single node. TAP pods' devices are persistent (they outlive a
// restart of their node's daemon, addresses and all). Each pod's port lists the pod's addresses
// (as the CNI plugin registers them), so its node delivers to it before the pod has sent
// anything. The outside client reaches node addresses on-link; LB IPs through the routes a test
// adds in its namespace.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { NetnsLab, must, sweepStale } from '../../dist/src/netns.js';
import { within } from './bounded-wait.js';
import { startPods, startDaemon, sleep } from '../../dist/src/demo/topology.js';

const DOUBLE = fileURLToPath(new URL('./apiserver-double.js', import.meta.url));
const API_HOST = '172.31.255.1';

/** The two nodes: name, node address, pod CIDR, uplink MAC, management link. */
export const NODES = {
  a: { name: 'node-a', ip: '192.168.100.2', ip6: 'fd00:100::2', podCIDR: '10.244.1.0/24', podCIDR6: 'fd00:244:1::/64', podNet: '10.244.1', podNet6: 'fd00:244:1::', mac: '02:0a:00:00:00:01', mgmt: ['172.31.1.1', '172.31.1.2'] },
  b: { name: 'node-b', ip: '192.168.100.3', ip6: 'fd00:100::3', podCIDR: '10.244.2.0/24', podCIDR6: 'fd00:244:2::/64', podNet: '10.244.2', podNet6: 'fd00:244:2::', mac: '02:0b:00:00:00:01', mgmt: ['172.31.2.1', '172.31.2.2'] },
};
export const OUTSIDE = '192.168.100.10';
export const OUTSIDE6 = 'fd00:100::10';
const POD_GATEWAYS = ['10.244.0.1', 'fd00:244::1'];

/** The Node object of `node` (one of NODES), with `labels` beside its hostname label. */
export function nodeObject(node, labels = {}) {
  return {
    metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, ...labels } }, spec: { podCIDRs: [node.podCIDR, node.podCIDR6] },
    status: { addresses: [{ type: 'InternalIP', address: node.ip }, { type: 'InternalIP', address: node.ip6 }, { type: 'Hostname', address: node.name }] },
  };
}

function kubeconfigFor(url) {
  return {
    apiVersion: 'v1', kind: 'Config', 'current-context': 'd',
    clusters: [{ name: 'd', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
  };
}

/** The double's REST paths over its control socket. */
function doubleClient(controlSock) {
  return (method, path, body) => new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: controlSock, method, path, timeout: 10000, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => { if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)); else resolve(JSON.parse(text)); });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    if (data) req.write(data);
    req.end();
  });
}

/** One node's daemon config (`other`: the other node, reached out of the uplink). */
function nodeConfig(dir, key, node, other, pods, kubeconfig, uplink) {
  return {
    node: { name: node.name },
    ports: [
      { name: 'uplink', type: uplink, ifname: 'eth1', role: 'uplink', gateways: [] },
      {
        name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'uplink', gateways: POD_GATEWAYS,
        hostAddresses: [`${node.ip}/24`, `${node.ip6}/64`],
        hostRoutes: [
          { prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: '10.244.0.0/16', via: '10.244.0.1' },
          { prefix: 'fd00:96::/108', via: 'fd00:244::1' }, { prefix: 'fd00:244::/32', via: 'fd00:244::1' },
        ],
      },
      ...pods.map((p) => (p.attach === 'tap'
        ? { name: p.name, type: 'tap', ifname: p.port, role: 'pod', gateways: POD_GATEWAYS, netns: p.ns, persist: true, pods: [{ ip: p.ip }, { ip: p.ip6 }] }
        : { name: p.name, type: 'afpacket', ifname: p.port, role: 'pod', gateways: POD_GATEWAYS, pods: [{ ip: p.ip }, { ip: p.ip6 }] })),
    ],
    routes: [
      { prefix: other.podCIDR, port: 'uplink', mac: other.mac },
      { prefix: `${other.ip}/32`, port: 'uplink', mac: other.mac },
      { prefix: other.podCIDR6, port: 'uplink', mac: other.mac },
      { prefix: `${other.ip6}/128`, port: 'uplink', mac: other.mac },
    ],
    api: { listen: join(dir, `${key}-api.sock`), healthz: 'off' },
    stateDir: join(dir, `${key}-state`),
    logLevel: 'info',
    probeIntervalMs: 200,
    conntrack: { flows: 4096 },
    kubernetes: {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: 'off', nodeWaitSeconds: 20,
      clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/32'], healthCheckBindAddress: '0.0.0.0',
    },
  };
}

/**
 * Builds the two nodes (`uplink`: the uplinks' port type, afpacket or afxdp), starts the double, writes both Node objects, starts both daemons and the
 * pods' servers. Resolves with { lab, dir, ns: { lan, out, ctl }, nodes: { a, b }, double }, where
 * each node is shaped as the single-node Topology (lab, ns.dp, pods, config, configFile, podProcs,
 * daemon, daemonLog) so the topology helpers (startDaemon, api, curl, httpMany) take it. Every
 * namespace is removed if the set-up fails.
 */
export async function buildTwoNodes({ kind = 'tn', uplink = 'afpacket' } = {}) {
  sweepStale();
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-two-'));
  const two = { lab, dir, ns: {}, nodes: {}, double: undefined };
  try {
    const lan = lab.namespace('lan');
    const out = lab.namespace('out');
    const ctl = lab.namespace('ctl');
    two.ns = { lan, out, ctl };
    lab.sysctl(lan, 'net.ipv6.conf.all.disable_ipv6', '1', ['net.ipv6.conf.default.disable_ipv6', '1']);
    must('ip', ['-n', lan, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    lab.up(lan, 'br0');
    const plug = (ifname) => must('ip', ['-n', lan, 'link', 'set', ifname, 'master', 'br0']);
    lab.veth(lan, 'lan-out', out, 'eth0');
    plug('lan-out');
    lab.addr(out, 'eth0', `${OUTSIDE}/24`);
    lab.addr(out, 'eth0', `${OUTSIDE6}/64`);
    must('ip', ['-n', ctl, 'addr', 'add', `${API_HOST}/32`, 'dev', 'lo']);

    for (const key of ['a', 'b']) {
      const node = NODES[key];
      const dp = lab.namespace(`${key}dp`);
      lab.sysctl(dp, 'net.ipv6.conf.all.disable_ipv6', '1', ['net.ipv6.conf.default.disable_ipv6', '1']);
      lab.veth(lan, `lan-${key}`, dp, 'eth1', { macB: node.mac });
      plug(`lan-${key}`);
      lab.veth(ctl, `ctl-${key}`, dp, 'mgmt');
      lab.addr(ctl, `ctl-${key}`, `${node.mgmt[0]}/30`);
      lab.addr(dp, 'mgmt', `${node.mgmt[1]}/30`);
      lab.route(dp, `${API_HOST}/32`, node.mgmt[0]);
      const pods = [0, 1].map((i) => {
        const ns = lab.namespace(`${key}${i}`);
        const attach = i === 0 ? 'tap' : 'afpacket';
        const port = `${attach === 'tap' ? 'tap' : 'v'}${i}`;
        if (attach !== 'tap') lab.veth(ns, 'eth0', dp, port);
        return {
          name: `pod-${key}${i}`, attach, ns, port, node: node.name,
          ip: `${node.podNet}.${11 + i}`, ip6: `${node.podNet6}${11 + i}`, ifname: attach === 'tap' ? port : 'eth0',
        };
      });
      two.nodes[key] = { key, ...node, lab, dir, runDir: join(dir, `${key}-run`), ns: { dp }, pods, config: undefined, configFile: join(dir, `${key}-wdp.yaml`), podProcs: [], daemon: undefined, daemonLog: '' };
    }

    // the API-server double, on the management network
    const controlSock = join(dir, 'double.sock');
    const child = lab.spawn(ctl, process.execPath, [DOUBLE, '--listen', `${API_HOST}:0`, '--control', controlSock, '--bookmark-ms', '1000']);
    const url = await new Promise((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('the API-server double did not start')), 15000);
      child.stdout.on('data', (d) => { buf += d; const m = /"url":"([^"]+)"/.exec(buf); if (m) { clearTimeout(t); resolve(m[1]); } });
      child.on('exit', (c) => { clearTimeout(t); reject(new Error(`the API-server double exited ${c}`)); });
    });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify(kubeconfigFor(url)));
    two.double = doubleClient(controlSock);

    for (const [key, otherKey] of [['a', 'b'], ['b', 'a']]) {
      const n = two.nodes[key];
      n.config = nodeConfig(dir, key, NODES[key], NODES[otherKey], n.pods, kubeconfig, uplink);
      writeFileSync(n.configFile, JSON.stringify(n.config, null, 2));
      await two.double('POST', '/api/v1/nodes', nodeObject(NODES[key]));
    }
    await Promise.all(Object.values(two.nodes).map((n) => startDaemon(n)));
    await Promise.all(Object.values(two.nodes).map((n) => startPods(n)));
    return two;
  } catch (e) {
    await destroyTwoNodes(two);
    throw e;
  }
}

/** Stops both daemons (SIGTERM, bounded), then removes every namespace and the temp dir. */
export async function destroyTwoNodes(two) {
  if (!two) return;
  await Promise.all(Object.values(two.nodes).map((n) => within(stopNode(n), 5000)));
  await two.lab.destroy();
  rmSync(two.dir, { recursive: true, force: true });
}

/** Stops `node`'s daemon (SIGTERM: its last checkpoint written; resolves with its exit code). */
export async function stopNode(node) {
  const d = node.daemon;
  if (!d || d.exitCode !== null || d.signalCode !== null) return d?.exitCode ?? null;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  return exited;
}

/** Routes `prefix` in `ns` via `via` (replacing any route to it). */
export function routeVia(two, ns, prefix, via) {
  must('ip', ['-n', ns, 'route', 'replace', prefix, 'via', via]);
}

export { sleep };
