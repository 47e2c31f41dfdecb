// End to end through `wdp start`: packets to or from the node itself keep their TTL / hop limit
// (docs/core.md "Time exceeded", difference (19)), as under kube-proxy, where only ip_forward /
// ip6_forward decrement it — local delivery and the node's own output do not. What relies on it:
// BGP with TTL security (GTSM, RFC 5082: BIRD `ttl security`, FRR `ttl-security hops 1`, Linux
// IP_MINTTL / IPV6_MINHOPCOUNT 255 — Calico, MetalLB, kube-router), VRRP's TTL 255, IPv6 ND.
//
//   client (10.0.0.2, fd00::2) --c0-- dp (wdp: the client's gateway) --r0-- remote (192.168.100.10, fd00:100::10)
//   dp's host port wdp-host: the node's stack (192.168.100.2, fd00:100::2), bridged with r0
//   pod-a (10.244.1.11, fd00:244::11)
//
// Every server and client socket sends with TTL / hop limit 255 and refuses anything below 255
// (IP_MINTTL / IPV6_MINHOPCOUNT on the listening and the connecting socket: the SYN, the SYN-ACK
// and the data must all arrive with 255), so a connection is made only when no hop between the two
// decrements: a server on the node reached from the remote host (on-link, through the uplink
// the host port is bridged with) and from the pod (routed by wdp to the node address); the node's own connections out to the remote host, to the
// pod (routed from the node address) and to a ClusterIP whose endpoint is the pod (the node's
// Service flow, both ways); a ClusterIP whose endpoint is the node itself (hostNetwork) from the
// client and from the pod. A client sending with 254 is refused, so the sockets do check. The
// last test runs the same sockets through a kernel reference (a Linux router with kube-proxy-shaped
// nftables DNAT rules): 255 to, from and DNATed to itself, 254 when it forwards. Without python3
// (or nft, for the reference) the tests are skipped.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { systemTool } from '../dist/src/util/system-tool.js';
import { e2eSuite, hostPort, serviceYaml, sliceYaml, waitFor, NODE_V4, NODE_V6 } from './lib/topology.js';
import { kernelRouterNamespaces } from './lib/kernel-router.js';

const PY = (() => { try { return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim(); } catch { return ''; } })();

// serve FAMILY ADDR PORT NAME | connect FAMILY ADDR PORT TTL: TTL / hop limit out, 255 the least accepted in
const GTSM = `
import socket, sys
mode, fam, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
af = socket.AF_INET6 if fam == '6' else socket.AF_INET
def arm(s, ttl):
    if af == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, 2, ttl)      # IP_TTL
        s.setsockopt(socket.IPPROTO_IP, 21, 255)     # IP_MINTTL
    else:
        s.setsockopt(socket.IPPROTO_IPV6, 16, ttl)   # IPV6_UNICAST_HOPS
        s.setsockopt(socket.IPPROTO_IPV6, 73, 255)   # IPV6_MINHOPCOUNT
if mode == 'serve':
    s = socket.socket(af, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if af == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    arm(s, 255)
    s.bind((addr, port))
    s.listen(64)
    print('ready', flush=True)
    while True:
        c, peer = s.accept()
        c.settimeout(5)
        try:
            c.sendall(b'%s %s\\n' % (sys.argv[5].encode(), c.recv(64)))
        except Exception:
            pass
        c.close()
else:
    s = socket.socket(af, socket.SOCK_STREAM)
    arm(s, int(sys.argv[5]))
    s.settimeout(2)
    try:
        s.connect((addr, port))
        s.sendall(b'hi')
        print(s.recv(64).decode().strip(), flush=True)
    except Exception as e:
        print('error', type(e).__name__, flush=True)
`;

const PORT = 7179;
// the system's nft (node_modules/.bin has an unrelated `nft`: src/util/system-tool.ts)
const NFT = systemTool('nft');
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'tap' }],
  configure: (config) => {
    const host = hostPort();
    // the node reaches the pods' IPv6 addresses through wdp too, and answers the client (a
    // hostNetwork endpoint's replies) through it
    host.hostRoutes.push({ prefix: 'fd00:244::/64', via: 'fd00:100::1' }, { prefix: '10.0.0.0/24', via: '10.244.0.1' }, { prefix: 'fd00::/64', via: 'fd00:100::1' });
    config.ports.push(host);
  },
});
const { serial, apply } = suite;
let topo;
const servers = [];

test.before(async () => {
  await suite.ready;
  topo = suite.topo;
  if (!topo || !PY) return;
  const pod = topo.pods[0];
  // the node's servers (in its stack behind the host port), the remote host's, the pod's
  const at = [[topo.ns.dp, NODE_V4, 'node'], [topo.ns.dp, NODE_V6, 'node'], [topo.ns.remote, '192.168.100.10', 'remote'], [topo.ns.remote, 'fd00:100::10', 'remote'],
    [pod.ns, pod.ip, 'pod'], [pod.ns, pod.ip6, 'pod']];
  for (const [ns, addr, name] of at) {
    const child = topo.lab.spawn(ns, PY, ['-c', GTSM, 'serve', addr.includes(':') ? '6' : '4', addr, String(PORT), name]);
    topo.podProcs.push(child);
    servers.push(child);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    await waitFor(`the GTSM server on ${addr}`, async () => out.includes('ready'), 10000).catch((e) => { throw new Error(`${e.message}: ${out || child.exitCode}`); });
  }
});

/** A connection from `ns` to addr:port sending with `ttl`: the server's answer ('node hi', …) or
 * 'error …'; tried a few times while it fails (a first packet may race a neighbour resolution). */
async function gtsm(ns, addr, { ttl = 255, tries = 4, port = PORT } = {}) {
  let got = '';
  for (let i = 0; i < tries; i++) {
    const r = await topo.lab.execAsync(ns, PY, ['-c', GTSM, 'connect', addr.includes(':') ? '6' : '4', addr, String(port), String(ttl)], { timeoutMs: 10000 });
    got = (r.stdout.trim() || r.stderr.trim()).split('\n').pop();
    if (!got.startsWith('error')) break;
  }
  return got;
}

const skip = () => !PY;
const why = 'python3 is not installed';

serial('a server on the node with IP_MINTTL / IPV6_MINHOPCOUNT 255 accepts a client that sends with 255: from the remote host (on-link) and from the pod (routed by wdp to the node address); 254 is refused', async (t) => {
  if (skip()) { t.pass(why); return; }
  for (const node of [NODE_V4, NODE_V6]) {
    t.is(await gtsm(topo.ns.remote, node), 'node hi', `remote -> ${node}\n${topo.daemonLog.slice(-1500)}`);
    t.is(await gtsm(topo.pods[0].ns, node), 'node hi', `pod -> ${node} (routed)`);
    t.regex(await gtsm(topo.ns.remote, node, { ttl: 254, tries: 1 }), /^error/, `remote -> ${node} with 254: refused (the sockets check)`);
  }
});

serial('the node\'s own connections out with TTL / hop limit 255 arrive with 255: to the remote host, to the pod (routed from the node address), to a ClusterIP whose endpoint is the pod (both ways)', async (t) => {
  if (skip()) { t.pass(why); return; }
  const pod = topo.pods[0];
  await apply([
    serviceYaml({ name: 'bgp', clusterIP: '10.96.9.10', ports: [{ name: 'bgp', port: 179, targetPort: PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'bgp-1', service: 'bgp', ports: [{ name: 'bgp', port: PORT, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip], conditions: { ready: true }, nodeName: 'node-a' }] }),
    serviceYaml({ name: 'bgp6', clusterIP: 'fd00:96::90', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'bgp', port: 179, targetPort: PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'bgp6-1', service: 'bgp6', addressType: 'IPv6', ports: [{ name: 'bgp', port: PORT, protocol: 'TCP' }], endpoints: [{ addresses: [pod.ip6], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  for (const remote of ['192.168.100.10', 'fd00:100::10']) t.is(await gtsm(topo.ns.dp, remote), 'remote hi', `node -> ${remote}\n${topo.daemonLog.slice(-1500)}`);
  for (const addr of [pod.ip, pod.ip6]) t.is(await gtsm(topo.ns.dp, addr), 'pod hi', `node -> pod ${addr} (routed)`);
  for (const vip of ['10.96.9.10', 'fd00:96::90']) t.is(await gtsm(topo.ns.dp, vip, { port: 179 }), 'pod hi', `node -> ClusterIP ${vip} -> pod`);
});

serial('a ClusterIP whose endpoint is the node itself (hostNetwork) delivers with 255: from the client and from the pod', async (t) => {
  if (skip()) { t.pass(why); return; }
  await apply([
    serviceYaml({ name: 'hostbgp', clusterIP: '10.96.9.20', ports: [{ name: 'bgp', port: PORT, targetPort: PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'hostbgp-1', service: 'hostbgp', ports: [{ name: 'bgp', port: PORT, protocol: 'TCP' }], endpoints: [{ addresses: [NODE_V4], conditions: { ready: true }, nodeName: 'node-a' }] }),
    serviceYaml({ name: 'hostbgp6', clusterIP: 'fd00:96::91', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'bgp', port: PORT, targetPort: PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'hostbgp6-1', service: 'hostbgp6', addressType: 'IPv6', ports: [{ name: 'bgp', port: PORT, protocol: 'TCP' }], endpoints: [{ addresses: [NODE_V6], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  for (const vip of ['10.96.9.20', 'fd00:96::91']) {
    t.is(await gtsm(topo.ns.client, vip), 'node hi', `client -> ${vip} -> the node\n${topo.daemonLog.slice(-1500)}`);
    t.is(await gtsm(topo.pods[0].ns, vip), 'node hi', `pod -> ${vip} -> the node`);
  }
});

// ---- the kernel reference -------------------------------------------------------------------------
//   kc (10.9.0.2, fd09::2) -- kr (Linux router with kube-proxy-shaped nftables DNAT: 10.96.9.10 /
//   fd00:96::90 :179 -> the server, 10.96.9.20 / fd00:96::91 :179 -> the router's own address;
//   10.9.0.1, fd09::1 / 10.9.1.1, fd09:1::1) -- ks (10.9.1.5, fd09:1::5)
// The same GTSM sockets: what wdp keeps at 255 the kernel keeps at 255 (local delivery, its own
// output, DNAT to itself in PREROUTING and OUTPUT), and what it forwards arrives with 254.
if (!NFT || !PY) test.skip('kernel reference: GTSM through a Linux router with kube-proxy-shaped DNAT rules (nft or python3 is not installed)', () => {});
else serial('kernel reference: a Linux router keeps 255 for itself (local delivery, its output, DNAT to itself) and forwards with 254', async (t) => {
  const { lab } = topo;
  const { kc, kr, ks } = kernelRouterNamespaces(lab);
  const rules = `table inet kube-proxy {
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 10.96.9.10 . tcp . 179 : goto service-pod, 10.96.9.20 . tcp . 179 : goto service-host }
  }
  map service-ips6 {
    type ipv6_addr . inet_proto . inet_service : verdict
    elements = { fd00:96::90 . tcp . 179 : goto service-pod6, fd00:96::91 . tcp . 179 : goto service-host6 }
  }
  chain service-pod { meta l4proto tcp dnat ip to 10.9.1.5:${PORT}; }
  chain service-host { meta l4proto tcp dnat ip to 10.9.1.1:${PORT}; }
  chain service-pod6 { meta l4proto tcp dnat ip6 to [fd09:1::5]:${PORT}; }
  chain service-host6 { meta l4proto tcp dnat ip6 to [fd09:1::1]:${PORT}; }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service-ips
    ip6 daddr . meta l4proto . th dport vmap @service-ips6
  }
  chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }
  chain nat-output { type nat hook output priority -100; policy accept; jump services; }
}
`;
  const r = lab.exec(kr, NFT, ['-f', '-'], { input: rules });
  t.is(r.code, 0, `nft: ${r.stderr}`);
  for (const [ns, addr, name] of [[kr, '0.0.0.0', 'router'], [kr, '::', 'router'], [ks, '0.0.0.0', 'server'], [ks, '::', 'server']]) {
    const child = lab.spawn(ns, PY, ['-c', GTSM, 'serve', addr.includes(':') ? '6' : '4', addr, String(PORT), name]);
    topo.podProcs.push(child);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    await waitFor(`the reference's GTSM server (${name}: ${out})`, async () => out.includes('ready'), 10000);
  }
  for (const [own, vipHost, vipPod, server] of [['10.9.0.1', '10.96.9.20', '10.96.9.10', '10.9.1.5'], ['fd09::1', 'fd00:96::91', 'fd00:96::90', 'fd09:1::5']]) {
    t.is(await gtsm(kc, own), 'router hi', `client -> the router's address ${own}: delivered locally with 255`);
    t.is(await gtsm(kc, vipHost, { port: 179 }), 'router hi', `client -> ${vipHost} DNATed to the router: delivered locally with 255`);
    t.is(await gtsm(kr, server), 'server hi', `the router's own connection to ${server}: its output, 255`);
    t.is(await gtsm(kr, vipPod, { port: 179 }), 'server hi', `the router's own connection to ${vipPod} (OUTPUT DNAT): 255`);
    t.regex(await gtsm(kc, server, { tries: 1 }), /^error/, `client -> ${server} through the router: forwarded, 254, refused`);
  }
});
