// End to end, the time exceeded a packet to a ClusterIP gets when its TTL / hop limit runs out at
// the node (docs/core.md "Time exceeded"), through `wdp start`, with a real traceroute from the
// client namespace:
//
//   client (10.0.0.2, fd00::2) --c0-- dp (wdp) -- pod-a (ClusterIP 10.96.0.10 / fd00:96::10 :80 -> :8080, :53 -> :5353)
//   remote (192.168.100.10, fd00:100::10) --r0-- dp -- host port wdp-host: the node's stack, a
//     hostNetwork server on the node address (ClusterIP 10.96.0.20 / fd00:96::20 :80 -> :8081)
//
// Under kube-proxy the kernel attaches the time exceeded to the probe's conntrack entry (new or
// established) and NAT-reverses it, so the client gets it from the ClusterIP, quoting its own
// probe: `traceroute -T -p 80 <ClusterIP>` shows the ClusterIP at hop 1 (the node's hop) and again
// at hop 2 (the pod's SYN-ACK, from the ClusterIP) — measured on a namespace router with
// kube-proxy-shaped nftables DNAT rules. A probe that would open a new flow leaves no conntrack
// entry; a probe on an established UDP flow (same source port) is answered too. A probe to a Service
// whose endpoint is the node itself is delivered to it (the kernel's local delivery checks no TTL):
// the node's SYN-ACK answers the first probe, and the trace ends at hop 1. The last tests run
// the same probes through that kernel reference — a router namespace with nftables DNAT rules
// shaped like kube-proxy's — and expect the same hops. Without traceroute (or nft, for the kernel
// reference) the tests are skipped. The last ones compare a rejected TCP SYN and UDP datagram to a
// ClusterIP without endpoints (docs/core.md "Reject") with the same router's kube-proxy-shaped
// reject rules.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { systemTool } from '../dist/src/util/system-tool.js';
import { hops } from './lib/traceroute.js';
import { e2eSuite, hostPort, api, serviceYaml, sliceYaml, sleep, waitFor, NODE_V4, NODE_V6, POD_SERVER } from './lib/topology.js';
import { kernelRouterNamespaces } from './lib/kernel-router.js';

const has = (tool) => { try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const TRACEROUTE = has('traceroute');
// the system's nft (node_modules/.bin has an unrelated `nft`: src/util/system-tool.ts)
const NFT = systemTool('nft');

const HOST_HTTP = 8081;
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'tap' }],
  // the node's own stack behind a host port (as test/e2e-host.test.js): the node addresses on its TAP
  configure: (config) => config.ports.push(hostPort()),
});
const { serial, apply } = suite;
let topo;
test.before(async () => {
  await suite.ready;
  topo = suite.topo;
  if (!topo) return;
  // a hostNetwork server: on the node addresses, in the node's (the dataplane namespace's) stack
  const host = topo.lab.spawn(topo.ns.dp, process.execPath, [POD_SERVER, 'host', '--http', String(HOST_HTTP)]);
  topo.podProcs.push(host);
  let out = '';
  host.stdout.on('data', (d) => { out += d; });
  await waitFor('the hostNetwork server to listen', async () => out.includes('ready'), 10000);
});
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons ?? {};
const flowsTo = async (vip, port) => (await api(topo, 'GET', '/api/v1/conntrack')).json.items.filter((f) => f.vip === vip && f.vipPort === port);

const services = () => [
  serviceYaml({ name: 'web', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  serviceYaml({ name: 'web6', clusterIP: 'fd00:96::10', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({ name: 'web6-1', service: 'web6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip6], conditions: { ready: true }, nodeName: 'node-a' })) }),
  // endpoints at the node itself (hostNetwork)
  serviceYaml({ name: 'hostsvc', clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: HOST_HTTP, protocol: 'TCP' }] }),
  sliceYaml({ name: 'hostsvc-1', service: 'hostsvc', ports: [{ name: 'http', port: HOST_HTTP, protocol: 'TCP' }],
    endpoints: [{ addresses: [NODE_V4], conditions: { ready: true }, nodeName: 'node-a' }] }),
  serviceYaml({ name: 'hostsvc6', clusterIP: 'fd00:96::20', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, targetPort: HOST_HTTP, protocol: 'TCP' }] }),
  sliceYaml({ name: 'hostsvc6-1', service: 'hostsvc6', addressType: 'IPv6', ports: [{ name: 'http', port: HOST_HTTP, protocol: 'TCP' }],
    endpoints: [{ addresses: [NODE_V6], conditions: { ready: true }, nodeName: 'node-a' }] }),
  // no endpoints: rejected (docs/core.md "Reject")
  serviceYaml({ name: 'empty', clusterIP: '10.96.0.30', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
  serviceYaml({ name: 'empty6', clusterIP: 'fd00:96::30', extra: { ipFamilies: ['IPv6'] }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
];

/** traceroute from the client with `args`; tried up to 4 times (a second apart: the reject rate
 * limit refills) until `ok(hops)`; returns the last run's { got, out }. */
async function trace(args, ok, ns = topo.ns.client) {
  let got, r;
  for (let i = 0; i < 4; i++) {
    if (i) await sleep(1100);
    r = await topo.lab.execAsync(ns, 'traceroute', ['-n', '-q', '1', '-w', '2', ...args], { timeoutMs: 30000 });
    got = hops(r.stdout);
    if (ok(got)) break;
  }
  return { got, out: `${r.stdout}\n${r.stderr}` };
}

for (const { fam, vip } of [{ fam: 4, vip: '10.96.0.10' }, { fam: 6, vip: 'fd00:96::10' }]) {
  if (!TRACEROUTE) {
    test.skip(`IPv${fam}: traceroute to a ClusterIP (traceroute is not installed)`, () => {});
    continue;
  }
  serial(`IPv${fam}: a TCP traceroute to the ClusterIP shows it at hop 1 (the node's time exceeded) and hop 2; the TTL-1 probe opens no flow`, async (t) => {
    await apply(services());
    const before = await reasons();
    // only TTL-1 probes: answered from the ClusterIP, and no flow stays behind
    const one = await trace([`-${fam}`, '-T', '-p', '80', '-f', '1', '-m', '1', vip], (g) => g.get(1) === vip);
    t.is(one.got.get(1), vip, `hop 1 of a TTL-1 probe\n${one.out}\n${topo.daemonLog.slice(-1500)}`);
    t.deepEqual(await flowsTo(vip, 80), [], 'the TTL-1 probes opened no flow');
    const after = await reasons();
    t.true((after.reject_ttl_exceeded ?? 0) > (before.reject_ttl_exceeded ?? 0), 'counted reject_ttl_exceeded');
    // the whole path: the node's hop, then the pod answering through the ClusterIP
    const all = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', vip], (g) => g.get(1) === vip && g.get(2) === vip);
    t.is(all.got.get(1), vip, `hop 1\n${all.out}`);
    t.is(all.got.get(2), vip, `hop 2 (the SYN-ACK)\n${all.out}`);
    t.false(all.got.has(3), `the trace ends at hop 2\n${all.out}`);
  });

  serial(`IPv${fam}: a UDP probe with TTL 1 on an established flow (same source port) is answered from the ClusterIP`, async (t) => {
    await apply(services());
    const sport = String(41000 + fam);
    // TTL 2 opens the flow (the pod echoes: traceroute sees no ICMP at hop 2, which is fine)
    await topo.lab.execAsync(topo.ns.client, 'traceroute', ['-n', '-q', '1', '-w', '1', `-${fam}`, '-U', '-p', '53', `--sport=${sport}`, '-f', '2', '-m', '2', vip], { timeoutMs: 30000 });
    const open = (await flowsTo(vip, 53)).filter((f) => f.clientPort === Number(sport));
    t.is(open.length, 1, `the flow of source port ${sport}: ${JSON.stringify(await flowsTo(vip, 53))}`);
    const one = await trace([`-${fam}`, '-U', '-p', '53', `--sport=${sport}`, '-f', '1', '-m', '1', vip], (g) => g.get(1) === vip);
    t.is(one.got.get(1), vip, `hop 1 on the established flow\n${one.out}`);
    const still = (await flowsTo(vip, 53)).filter((f) => f.clientPort === Number(sport));
    t.is(still.length, 1, 'the flow is still there, the only one of that port');
    t.is(still[0].flow, open[0].flow);
  });

  const hostVip = fam === 4 ? '10.96.0.20' : 'fd00:96::20';
  serial(`IPv${fam}: a TCP traceroute to a ClusterIP whose endpoint is the node itself (hostNetwork) ends at hop 1: the node's SYN-ACK, no time exceeded`, async (t) => {
    await apply(services());
    const before = await reasons();
    const all = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', hostVip], (g) => g.get(1) === hostVip && !g.has(2), topo.ns.remote);
    t.is(all.got.get(1), hostVip, `hop 1 (the node's SYN-ACK)\n${all.out}\n${topo.daemonLog.slice(-1500)}`);
    t.false(all.got.has(2), `the trace ends at hop 1: the TTL-1 probe reached the node\n${all.out}`);
    const after = await reasons();
    t.is(after.reject_ttl_exceeded ?? 0, before.reject_ttl_exceeded ?? 0, 'no time exceeded for the node\'s own endpoint');
  });

  serial(`IPv${fam}: the node's own TCP traceroute to the ClusterIP (through the host port) ends at hop 1: the pod's SYN-ACK, no time exceeded`, async (t) => {
    await apply(services());
    const before = await reasons();
    const all = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', vip], (g) => g.get(1) === vip && !g.has(2), topo.ns.dp);
    t.is(all.got.get(1), vip, `hop 1 (the pod's SYN-ACK)\n${all.out}\n${topo.daemonLog.slice(-1500)}`);
    t.false(all.got.has(2), `the trace ends at hop 1: the node's TTL-1 probe was not answered by the node\n${all.out}`);
    const after = await reasons();
    t.is(after.reject_ttl_exceeded ?? 0, before.reject_ttl_exceeded ?? 0, 'no time exceeded for the node\'s own packets');
  });
}

// ---- the kernel reference -------------------------------------------------------------------------
//   kc (10.9.0.2, fd09::2) -- kr (Linux router: nftables DNAT 10.96.0.10 / fd00:96::10 :80 -> :8080,
//   :53 -> :5353 on the server; 10.9.0.1, fd09::1 / 10.9.1.1, fd09:1::1) -- ks (10.9.1.5, fd09:1::5)
let kernel;
async function kernelRouter() {
  if (kernel) return kernel;
  const { lab } = topo;
  const { kc, kr, ks } = kernelRouterNamespaces(lab);
  // kube-proxy's nftables proxier's shape: the service-ips verdict map from the nat prerouting (and output)
  // chain to a service chain that DNATs (one endpoint)
  const rules = `table inet kube-proxy {
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 10.96.0.10 . tcp . 80 : goto service-web-tcp, 10.96.0.10 . udp . 53 : goto service-web-udp,
      10.96.0.20 . tcp . 80 : goto service-host-tcp }
  }
  map service-ips6 {
    type ipv6_addr . inet_proto . inet_service : verdict
    elements = { fd00:96::10 . tcp . 80 : goto service-web6-tcp, fd00:96::10 . udp . 53 : goto service-web6-udp,
      fd00:96::20 . tcp . 80 : goto service-host6-tcp }
  }
  chain service-web-tcp {
    meta l4proto tcp dnat ip to 10.9.1.5:8080
  }
  chain service-web-udp {
    meta l4proto udp dnat ip to 10.9.1.5:5353
  }
  chain service-web6-tcp {
    meta l4proto tcp dnat ip6 to [fd09:1::5]:8080
  }
  chain service-web6-udp {
    meta l4proto udp dnat ip6 to [fd09:1::5]:5353
  }
  chain service-host-tcp {
    meta l4proto tcp dnat ip to 10.9.1.1:${HOST_HTTP}
  }
  chain service-host6-tcp {
    meta l4proto tcp dnat ip6 to [fd09:1::1]:${HOST_HTTP}
  }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service-ips
    ip6 daddr . meta l4proto . th dport vmap @service-ips6
  }
  # a Service without endpoints: the no-endpoint-services map's verdict, the reject chain's bare
  # reject, from the filter hooks (ct state new), as the nftables proxier writes them
  map no-endpoint-services {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 10.96.0.30 . tcp . 80 : goto reject-chain, 10.96.0.30 . udp . 53 : goto reject-chain }
  }
  map no-endpoint-services6 {
    type ipv6_addr . inet_proto . inet_service : verdict
    elements = { fd00:96::30 . tcp . 80 : goto reject-chain, fd00:96::30 . udp . 53 : goto reject-chain }
  }
  chain reject-chain {
    reject
  }
  chain service-endpoints-check {
    ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services6
  }
  chain filter-input {
    type filter hook input priority -110; policy accept;
    ct state new jump service-endpoints-check
  }
  chain filter-forward {
    type filter hook forward priority -110; policy accept;
    ct state new jump service-endpoints-check
  }
  chain filter-output {
    type filter hook output priority -110; policy accept;
    ct state new jump service-endpoints-check
  }
  chain nat-prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain nat-output {
    type nat hook output priority -100; policy accept;
    jump services
  }
}
`;
  const r = lab.exec(kr, NFT, ['-f', '-'], { input: rules });
  if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
  if (!lab.exec(kr, NFT, ['list', 'ruleset']).stdout.includes('service-ips')) throw new Error('nft loaded no ruleset');
  const server = lab.spawn(ks, process.execPath, [POD_SERVER, 'ks', '--http', '8080', '--udp', '5353']);
  topo.podProcs.push(server);
  // a hostNetwork endpoint: a server on the router itself, which the host Service DNATs to
  const own = lab.spawn(kr, process.execPath, [POD_SERVER, 'kr', '--http', String(HOST_HTTP)]);
  topo.podProcs.push(own);
  let out = '', ownOut = '';
  server.stdout.on('data', (d) => { out += d; });
  own.stdout.on('data', (d) => { ownOut += d; });
  await waitFor('the kernel reference servers to listen', async () => out.includes('ready') && ownOut.includes('ready'), 10000);
  kernel = { kc, kr };
  return kernel;
}

/** The router's conntrack entries (its procfs view; undefined when the kernel has none). */
function kernelEntries(kr) {
  const r = topo.lab.exec(kr, 'cat', ['/proc/net/nf_conntrack']);
  return r.code === 0 ? r.stdout.split('\n').filter(Boolean) : undefined;
}

for (const { fam, vip } of [{ fam: 4, vip: '10.96.0.10' }, { fam: 6, vip: 'fd00:96::10' }]) {
  if (!TRACEROUTE || !NFT) {
    test.skip(`IPv${fam}: kernel reference (traceroute or nft is not installed)`, () => {});
    continue;
  }
  serial(`IPv${fam}: kernel reference — the same probes through a Linux router with kube-proxy-shaped DNAT rules give the same hops`, async (t) => {
    const { kc, kr } = await kernelRouter();
    const one = await trace([`-${fam}`, '-T', '-p', '80', '-f', '1', '-m', '1', vip], (g) => g.get(1) === vip, kc);
    t.is(one.got.get(1), vip, `kernel: hop 1 of a TTL-1 probe\n${one.out}`);
    const entries = kernelEntries(kr);
    if (entries) t.deepEqual(entries.filter((l) => l.startsWith(`ipv${fam} `) && l.includes('dport=80 ')), [], 'kernel: the TTL-1 probes left no conntrack entry');
    else t.log('the kernel lists no conntrack entries (/proc/net/nf_conntrack): not compared');
    const all = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', vip], (g) => g.get(1) === vip && g.get(2) === vip, kc);
    t.is(all.got.get(1), vip, `kernel: hop 1\n${all.out}`);
    t.is(all.got.get(2), vip, `kernel: hop 2\n${all.out}`);
    t.false(all.got.has(3), `kernel: the trace ends at hop 2\n${all.out}`);
    const sport = String(42000 + fam);
    await topo.lab.execAsync(kc, 'traceroute', ['-n', '-q', '1', '-w', '1', `-${fam}`, '-U', '-p', '53', `--sport=${sport}`, '-f', '2', '-m', '2', vip], { timeoutMs: 30000 });
    const udp = await trace([`-${fam}`, '-U', '-p', '53', `--sport=${sport}`, '-f', '1', '-m', '1', vip], (g) => g.get(1) === vip, kc);
    t.is(udp.got.get(1), vip, `kernel: hop 1 on the established UDP flow\n${udp.out}`);
    // the endpoint is the router itself: the TTL-1 probe is delivered locally, answered by its SYN-ACK
    const hostVip = fam === 4 ? '10.96.0.20' : 'fd00:96::20';
    const own = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', hostVip], (g) => g.get(1) === hostVip && !g.has(2), kc);
    t.is(own.got.get(1), hostVip, `kernel: hop 1 to the router's own endpoint\n${own.out}`);
    t.false(own.got.has(2), `kernel: the trace ends at hop 1 (local delivery, no time exceeded)\n${own.out}`);
    // the router's own traceroute to the ClusterIP: DNAT in OUTPUT, sent without ip_forward
    const self = await trace([`-${fam}`, '-T', '-p', '80', '-m', '3', vip], (g) => g.get(1) === vip && !g.has(2), kr);
    t.is(self.got.get(1), vip, `kernel: the router's own trace, hop 1\n${self.out}`);
    t.false(self.got.has(2), `kernel: the router's own trace ends at hop 1 (its output, no TTL check)\n${self.out}`);
  });
}

// The answer's IPv4 header (icmp_send's: TOS 0xc0 with the probe's TOS bits 0x1e, no DF), as
// captured by the client: wdp's for a probe to the ClusterIP, the kernel reference's for the same
// probe through its router.
const TCPDUMP = has('tcpdump');

/** The outer IPv4 header fields { tos, ttl, id, flags } of the first time exceeded namespace `ns`
 * receives for a UDP probe with TTL 1 and TOS 0x1f to `vip`:53 (tcpdump -v while traceroute sends);
 * { out } when none was seen. */
async function answerHeader(ns, vip) {
  const cap = topo.lab.execAsync(ns, 'timeout', ['8', 'tcpdump', '-c', '1', '-nvl', '-i', 'eth0', 'icmp[0] == 11'], { timeoutMs: 15000 });
  await sleep(1500);
  await topo.lab.execAsync(ns, 'traceroute', ['-n', '-q', '1', '-w', '1', '-4', '-U', '-p', '53', '-t', '31', '-f', '1', '-m', '1', vip], { timeoutMs: 15000 });
  const r = await cap;
  const m = r.stdout.match(/tos (0x[0-9a-f]+)\S* ttl (\d+), id (\d+), offset \d+, flags \[([^\]]*)\]/);
  return m ? { tos: m[1], ttl: Number(m[2]), id: Number(m[3]), flags: m[4] } : { out: `${r.stdout}\n${r.stderr}` };
}

if (!TRACEROUTE || !NFT || !TCPDUMP) {
  test.skip('IPv4: the time exceeded\'s header, wdp and the kernel reference (traceroute, nft or tcpdump is not installed)', () => {});
} else {
  serial('IPv4: the time exceeded\'s header is the kernel\'s — TOS 0xc0 with the probe\'s TOS bits, no DF, TTL 64 — wdp and the kernel reference', async (t) => {
    await apply(services());
    await sleep(1100); // the reject rate limit refills
    const ours = await answerHeader(topo.ns.client, '10.96.0.10');
    const { kc } = await kernelRouter();
    const kernelOnes = await answerHeader(kc, '10.96.0.10');
    t.like(kernelOnes, { tos: '0xde', ttl: 64, flags: 'none' }, `the kernel's answer: ${JSON.stringify(kernelOnes)}`);
    t.like(ours, { tos: '0xde', ttl: 64, flags: 'none' }, `wdp's answer: ${JSON.stringify(ours)}`);
    t.true(ours.id > 0, 'an ID of its own');
  });
}

// The IPv6 answer's flow label: icmp6_send leaves it to the output path, which gives the error an
// automatic one (net.ipv6.auto_flowlabels=1, the default): a hash of the error's own flow, so the
// errors of one source, destination and type share one label. The kernel keys that hash with a
// boot-time secret (its value is not comparable), so both are checked for a label that is set
// and the same on two answers (assembly/flow-label.ts).

/** The flow labels (0 when tcpdump shows none) of the first two time exceeded namespace `ns`
 * receives for two UDP probes with hop limit 1 to `vip`:53; { out } when fewer were seen. */
async function answerLabels(ns, vip) {
  const cap = topo.lab.execAsync(ns, 'timeout', ['10', 'tcpdump', '-c', '2', '-nvl', '-i', 'eth0', 'icmp6 and ip6[40] == 3'], { timeoutMs: 15000 });
  await sleep(1500);
  await topo.lab.execAsync(ns, 'traceroute', ['-n', '-q', '2', '-w', '1', '-6', '-U', '-p', '53', '-f', '1', '-m', '1', vip], { timeoutMs: 15000 });
  const r = await cap;
  const labels = [...r.stdout.matchAll(/IP6 \((?:class 0x[0-9a-f]+, )?(?:flowlabel (0x[0-9a-f]+), )?hlim \d+/g)].map((m) => Number(m[1] ?? 0));
  return labels.length >= 2 ? { labels } : { out: `${r.stdout}\n${r.stderr}` };
}

if (!TRACEROUTE || !NFT || !TCPDUMP) {
  test.skip('IPv6: the time exceeded\'s flow label, wdp and the kernel reference (traceroute, nft or tcpdump is not installed)', () => {});
} else {
  serial('IPv6: the time exceeded carries an automatic flow label, one for the errors of one source, destination and type — wdp and the kernel reference', async (t) => {
    await apply(services());
    await sleep(1100); // the reject rate limit refills
    const ours = await answerLabels(topo.ns.client, 'fd00:96::10');
    const { kc } = await kernelRouter();
    const kernelOnes = await answerLabels(kc, 'fd00:96::10');
    for (const [who, got] of [['the kernel', kernelOnes], ['wdp', ours]]) {
      t.truthy(got.labels, `${who}: two answers: ${got.out}`);
      if (!got.labels) continue;
      t.true(got.labels[0] > 0, `${who}'s answer has a flow label: ${JSON.stringify(got.labels)}`);
      t.is(got.labels[1], got.labels[0], `${who}: one label for both answers: ${JSON.stringify(got.labels)}`);
    }
  });
}

// A rejected connection (a ClusterIP without endpoints), wdp and the kernel reference: the nftables
// proxier's bare `reject` answers a TCP SYN and a UDP datagram alike with an ICMP port unreachable
// (ICMPv6 type 1 code 4), never a RST, and the kernel's __icmp_send / icmp6_send send it from the
// router's address on the route back to the client (the ClusterIP is not local: refused in
// filter-forward), not from the ClusterIP. wdp's answer comes from the client port's gateway address
// (10.0.0.1 / fd00::1), the kernel's from its address facing the client (10.9.0.1 / fd09::1); both
// quote the packet with the TTL ip_forward left. The client's socket is refused at once either way
// (ECONNREFUSED). The node's own SYN (the router's; wdp's node stack behind the host port) is
// refused in filter-output, from its own source address (the route back to a local address). (kube-proxy writes these rules in an ip and an ip6 table, where nft makes the
// bare `reject` an icmp / icmpv6 port-unreachable; the reference's inet table makes it icmpx
// port-unreachable, the same two errors.)

/** The bytes (from the IP header on) of the first ICMP / ICMPv6 destination unreachable namespace
 * `ns` receives while it connects over `proto` to `vip`:`port` (a TCP connect, or two datagrams on
 * a connected UDP socket), and what the socket reported: { ip: Buffer, refused: 'ECONNREFUSED' | ... }
 * or { out } when none was captured. */
async function rejectAnswer(ns, fam, proto, vip, port, dev = 'eth0') {
  const filter = fam === 4 ? 'icmp and icmp[0] == 3' : 'icmp6 and ip6[40] == 1';
  const cap = topo.lab.execAsync(ns, 'timeout', ['8', 'tcpdump', '-c', '1', '-nl', '-x', '-i', dev, filter], { timeoutMs: 15000 });
  await sleep(1500);
  const script = proto === 'TCP'
    ? `const s = require('net').connect({ host: ${JSON.stringify(vip)}, port: ${port} });
       const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);
       s.on('connect', () => { console.log('connected'); process.exit(0); });
       s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(0); });`
    : `const s = require('dgram').createSocket(${JSON.stringify(fam === 4 ? 'udp4' : 'udp6')});
       const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);
       s.on('error', (e) => { clearTimeout(t); console.log(e.code); process.exit(0); });
       s.connect(${port}, ${JSON.stringify(vip)}, () => { s.send('q'); setTimeout(() => s.send('q'), 300); });`;
  const sent = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 15000 });
  const r = await cap;
  const hex = [...r.stdout.matchAll(/^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/gm)].map((m) => m[1].replace(/\s+/g, '')).join('');
  const refused = sent.stdout.trim();
  return hex ? { ip: Buffer.from(hex, 'hex'), refused } : { out: `${r.stdout}\n${r.stderr}\n${sent.stdout}${sent.stderr}`, refused };
}

/** The fields of an ICMP / ICMPv6 error compared: its source, type, code and the quoted packet's
 * protocol, destination and TTL / hop limit (the kernel's filter-forward hook runs after
 * ip_forward's decrement: 63 for the clients' 64). */
function errorFields(fam, ip) {
  const fmt6 = (b) => [...Array(8).keys()].map((i) => b.readUInt16BE(i * 2).toString(16)).join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  if (fam === 4) {
    const hl = (ip[0] & 15) * 4, q = ip.subarray(hl + 8);
    return { src: [...ip.subarray(12, 16)].join('.'), type: ip[hl], code: ip[hl + 1], quotedProto: q[9], quotedSrc: [...q.subarray(12, 16)].join('.'), quotedDst: [...q.subarray(16, 20)].join('.'), quotedTtl: q[8] };
  }
  const q = ip.subarray(48);
  return { src: fmt6(ip.subarray(8, 24)), type: ip[40], code: ip[41], quotedProto: q[6], quotedSrc: fmt6(q.subarray(8, 24)), quotedDst: fmt6(q.subarray(24, 40)), quotedTtl: q[7] };
}

for (const { fam, empty, gw, kgw } of [{ fam: 4, empty: '10.96.0.30', gw: '10.0.0.1', kgw: '10.9.0.1' }, { fam: 6, empty: 'fd00:96::30', gw: 'fd00::1', kgw: 'fd09::1' }]) {
  if (!NFT || !TCPDUMP) {
    test.skip(`IPv${fam}: a rejected TCP SYN and UDP datagram, wdp and the kernel reference (nft or tcpdump is not installed)`, () => {});
    continue;
  }
  serial(`IPv${fam}: a TCP SYN and a UDP datagram to a ClusterIP without endpoints get the kernel's ICMP${fam === 4 ? '' : 'v6'} port unreachable from the router's address facing the client (a TTL-1 SYN its time exceeded) — wdp and the kernel reference`, async (t) => {
    await apply(services());
    const { kc, kr } = await kernelRouter();
    const want = { type: fam === 4 ? 3 : 1, code: fam === 4 ? 3 : 4 };
    for (const [proto, port, l4] of [['TCP', 80, 6], ['UDP', 53, 17]]) {
      await sleep(1100); // the reject rate limit refills
      const kernelOnes = await rejectAnswer(kc, fam, proto, empty, port);
      const ours = await rejectAnswer(topo.ns.client, fam, proto, empty, port);
      for (const [who, got, src] of [['the kernel', kernelOnes, kgw], ['wdp', ours, gw]]) {
        t.truthy(got.ip, `${who}: an ICMP error for the ${proto} packet: ${got.out}`);
        if (!got.ip) continue;
        const { quotedSrc: _, ...fields } = errorFields(fam, got.ip);
        t.deepEqual(fields, { ...want, src, quotedProto: l4, quotedDst: empty, quotedTtl: 63 }, `${who}'s answer to ${proto}`);
        t.is(got.refused, 'ECONNREFUSED', `${who}: the ${proto} socket is refused`);
      }
    }
    // the node's own connection (the router's; wdp's node stack behind the host port): refused in
    // filter-output, from the route back to its own address — the SYN's own source — quoted as sent
    await sleep(1100);
    const kernelOwn = await rejectAnswer(kr, fam, 'TCP', empty, 80, 'lo');
    const ourOwn = await rejectAnswer(topo.ns.dp, fam, 'TCP', empty, 80, 'wdp-host');
    for (const [who, got] of [['the kernel', kernelOwn], ['wdp', ourOwn]]) {
      t.truthy(got.ip, `${who}: an ICMP error for the node's own SYN: ${got.out}`);
      if (!got.ip) continue;
      const f = errorFields(fam, got.ip);
      t.like(f, { ...want, quotedProto: 6, quotedDst: empty, quotedTtl: 64 }, `${who}'s answer to its own SYN: ${JSON.stringify(f)}`);
      t.is(f.src, f.quotedSrc, `${who}: from the SYN's own source: ${JSON.stringify(f)}`);
      t.is(got.refused, 'ECONNREFUSED', `${who}: its own socket is refused`);
    }
    // a TTL-1 SYN: ip_forward's time exceeded comes before the reject, from the same address
    if (TRACEROUTE) {
      await sleep(1100);
      const kernelHop = await trace([`-${fam}`, '-T', '-p', '80', '-f', '1', '-m', '1', empty], (g) => g.get(1) === kgw, kc);
      t.is(kernelHop.got.get(1), kgw, `kernel: hop 1 of a TTL-1 probe to the ClusterIP without endpoints\n${kernelHop.out}`);
      const ourHop = await trace([`-${fam}`, '-T', '-p', '80', '-f', '1', '-m', '1', empty], (g) => g.get(1) === gw);
      t.is(ourHop.got.get(1), gw, `wdp: hop 1 of a TTL-1 probe to the ClusterIP without endpoints\n${ourHop.out}`);
    }
  });
}
