// End to end, the node's own connections to a Service's external IP (and LoadBalancer ingress IP)
// that is one of its own addresses (a bare-metal `externalIPs: [<node IP>]`), with the host port
// of e2e-host.test.js: the dataplane namespace plays the node, its stack on the TAP wdp-host with
// the node address 192.168.100.2. kube-proxy's nftables proxier puts every (external IP, protocol,
// port) in its service-ips map, which its nat-output chain consults for the node's own packets:
// the node's connect(nodeIP:8080) reaches the Service's endpoints, while a host process listening
// on another port of that address (9090) still answers itself, and after the Service is gone
// 8080 is the host's again. Other hosts' connections to nodeIP:8080 arrive on the uplink and reach
// the Service too; the same for IPv6. A kernel reference (a namespace with kube-proxy-shaped
// nftables rules) gives the same answers to the same connections.
import test from 'ava';
import { systemTool } from '../dist/src/util/system-tool.js';
import { e2eSuite, hostPort, api, curl, serviceYaml, sliceYaml, waitFor, NODE_V4, NODE_V6, POD_SERVER } from './lib/topology.js';

const NFT = systemTool('nft');
const SVC_PORT = 8080, OTHER_PORT = 9090, LB_PORT = 8443;
let topo;

// the node's own servers on the node address: one on the Service's port (what the kernel would
// deliver to without wdp taking the port) and one on another port
const HOST_SERVERS = (addr) => `
  const http = require('http');
  let left = 3;
  for (const port of [${SVC_PORT}, ${OTHER_PORT}, ${LB_PORT}]) {
    http.createServer((q, r) => r.end('host' + port + '\\n')).listen(port, ${JSON.stringify(addr)}, () => { if (--left === 0) console.log('ready'); });
  }`;

/** `child` started in a test namespace, once it has said 'ready'. */
async function ready(child, what) {
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  await waitFor(what, () => out.includes('ready'), 10000);
}

const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'tap' }],
  configure: (config) => config.ports.push(hostPort()),
});
const { serial, apply } = suite;

test.before(async () => {
  await suite.ready;
  topo = suite.topo;
  if (!topo) return;
  for (const a of [NODE_V4, NODE_V6]) {
    const servers = topo.lab.spawn(topo.ns.dp, process.execPath, ['-e', HOST_SERVERS(a)]);
    topo.podProcs.push(servers);
    await ready(servers, `the host servers on ${a}`);
  }
});

/** The first line of the answer to GET url from `ns` ('' when none), retried a few times while it
 * is not `want` (a new backend's neighbour resolution). */
async function answer(ns, url, want) {
  let got = '';
  for (let i = 0; i < 10; i++) {
    const r = await curl(topo, ns, url, { timeout: 3 });
    got = r.code === 0 ? r.body.split('\n')[0] : `curl ${r.code}: ${r.stderr.trim()}`;
    if (got.startsWith(want)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return got;
}

const ourRules = async () => (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-4', 'rule', 'show'])).stdout
  .split('\n').filter((l) => /lookup 4242/.test(l) && !/dport \d+-\d+/.test(l)).map((l) => l.replace(/^\d+:\s+/, '').trim());

const services = () => [
  serviceYaml({ name: 'ext', clusterIP: '10.96.7.10', extra: { externalIPs: [NODE_V4] }, ports: [{ name: 'http', port: SVC_PORT, targetPort: 8080, protocol: 'TCP' }] }),
  sliceYaml({ name: 'ext-1', service: 'ext', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  serviceYaml({ name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.7.11', lbIngress: [NODE_V4], ports: [{ name: 'https', port: LB_PORT, targetPort: 8080, nodePort: 30443, protocol: 'TCP' }] }),
  sliceYaml({ name: 'lb-1', service: 'lb', ports: [{ name: 'https', port: 8080, protocol: 'TCP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
];

serial('the node\'s own connection to its address on a Service\'s external IP or LB ingress port reaches the Service; its other ports stay the host\'s; deleted, the port is the host\'s again', async (t) => {
  const node = `http://${NODE_V4}`;
  t.is(await answer(topo.ns.dp, `${node}:${SVC_PORT}/`, 'host'), `host${SVC_PORT}`, 'before the Service: the host\'s own server');
  await apply(services());
  t.regex(await answer(topo.ns.dp, `${node}:${SVC_PORT}/`, 'pod-a'), /^pod-a/, `the node's own connect(nodeIP:${SVC_PORT}) reaches the Service's endpoint\n${topo.daemonLog.slice(-2000)}`);
  t.regex(await answer(topo.ns.dp, `${node}:${LB_PORT}/`, 'pod-a'), /^pod-a/, `the node's own connection to its LB ingress IP port ${LB_PORT} reaches the Service`);
  t.is(await answer(topo.ns.dp, `${node}:${OTHER_PORT}/`, 'host'), `host${OTHER_PORT}`, 'another port of the address: the host\'s own server answers');
  // other hosts: through the uplink, as before
  t.regex(await answer(topo.ns.remote, `${node}:${SVC_PORT}/`, 'pod-a'), /^pod-a/, 'another host\'s connection to nodeIP:8080 reaches the Service');
  t.is(await answer(topo.ns.remote, `${node}:${OTHER_PORT}/`, 'host'), `host${OTHER_PORT}`, 'another host\'s connection to nodeIP:9090 reaches the host');
  t.deepEqual((await ourRules()).sort(), [
    `from all to ${NODE_V4} iif lo ipproto tcp dport ${SVC_PORT} lookup 4242`,
    `from all to ${NODE_V4} iif lo ipproto tcp dport ${LB_PORT} lookup 4242`,
  ], 'one rule per (address, protocol, port)');

  // a port changed: the rule follows
  const moved = services();
  moved[0].spec.ports[0].port = SVC_PORT + 1;
  await apply(moved.slice(0, 2));
  await waitFor('the rule to follow the port', async () => (await ourRules()).some((l) => l.includes(`dport ${SVC_PORT + 1} `)), 5000);
  t.is(await answer(topo.ns.dp, `${node}:${SVC_PORT}/`, 'host'), `host${SVC_PORT}`, 'the old port is the host\'s again');

  const del = (name) => api(topo, 'DELETE', `/api/v1/namespaces/default/services/${name}`);
  for (const name of ['ext', 'lb']) t.is((await del(name)).status, 200);
  t.deepEqual(await ourRules(), [], 'the Services\' rules are gone with them');
  t.is(await answer(topo.ns.dp, `${node}:${SVC_PORT}/`, 'host'), `host${SVC_PORT}`, 'deleted: the host\'s own server answers 8080 again');
  t.is(await answer(topo.ns.dp, `${node}:${LB_PORT}/`, 'host'), `host${LB_PORT}`);
});

serial('IPv6: the node\'s own connection to its IPv6 address on a Service\'s external IP port reaches the Service; another port stays the host\'s', async (t) => {
  const node6 = `http://[${NODE_V6}]`;
  // the node's own IPv6 traffic to its own addresses loops through lo (the fixture's namespace
  // starts with IPv6 off on it)
  await topo.lab.execAsync(topo.ns.dp, 'sysctl', ['-qw', 'net.ipv6.conf.lo.disable_ipv6=0']);
  t.is(await answer(topo.ns.dp, `${node6}:${SVC_PORT}/`, 'host'), `host${SVC_PORT}`, 'before the Service: the host\'s own server');
  await apply([
    serviceYaml({ name: 'ext6', clusterIP: 'fd00:96::70', extra: { ipFamilies: ['IPv6'], externalIPs: [NODE_V6] }, ports: [{ name: 'http', port: SVC_PORT, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'ext6-1', service: 'ext6', addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip6], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  const rules6 = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-6', 'rule', 'show'])).stdout;
  t.regex(rules6, new RegExp(`to ${NODE_V6} iif lo ipproto tcp dport ${SVC_PORT} lookup 4242`), rules6);
  t.regex(await answer(topo.ns.dp, `${node6}:${SVC_PORT}/`, 'pod-a'), /^pod-a/, `${topo.daemonLog.slice(-2000)}`);
  t.is(await answer(topo.ns.dp, `${node6}:${OTHER_PORT}/`, 'host'), `host${OTHER_PORT}`);
  t.is((await api(topo, 'DELETE', '/api/v1/namespaces/default/services/ext6')).status, 200);
  t.is(await answer(topo.ns.dp, `${node6}:${SVC_PORT}/`, 'host'), `host${SVC_PORT}`, 'deleted: the host\'s again');
});

serial('an address that becomes a node address gains the rules of its Services\' external ports; one that stops being one loses them', async (t) => {
  const SECOND = '192.168.100.30';
  await apply([
    serviceYaml({ name: 'ext2', clusterIP: '10.96.7.12', extra: { externalIPs: [SECOND] }, ports: [{ name: 'http', port: SVC_PORT, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'ext2-1', service: 'ext2', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  t.deepEqual(await ourRules(), [], 'not one of the host\'s addresses: no rule');
  const cur = await api(topo, 'GET', '/api/v1/nodeconfig');
  const spec = cur.json.spec;
  await apply([{ ...cur.json, spec: { ...spec, nodeAddresses: [...spec.nodeAddresses, SECOND] } }]);
  await waitFor('the rule of the new node address', async () => (await ourRules()).length === 1, 5000);
  t.deepEqual(await ourRules(), [`from all to ${SECOND} iif lo ipproto tcp dport ${SVC_PORT} lookup 4242`]);
  t.regex(await answer(topo.ns.dp, `http://${SECOND}:${SVC_PORT}/`, 'pod-a'), /^pod-a/, 'the node\'s own connection to its new address reaches the Service');
  await apply([{ ...cur.json, spec }]);
  await waitFor('the rule gone with the address', async () => (await ourRules()).length === 0, 5000);
  t.is((await api(topo, 'DELETE', '/api/v1/namespaces/default/services/ext2')).status, 200);
});

// The kernel reference: a node namespace (kn, 10.77.0.1 and 10.77.1.1) with a host server on 8080 and 9090, a pod
// namespace (kp, 10.77.1.2) serving 8080, and the node's nftables rules as kube-proxy writes them
// for a Service with externalIPs [10.77.0.1] port 8080 (nat-output → services → service-ips).
if (!NFT) test.skip('kernel reference: kube-proxy-shaped nftables rules give the same answers (nft is not installed)', () => {});
else serial('kernel reference: under kube-proxy-shaped nftables rules the node\'s own connections get the same answers', async (t) => {
  const { lab } = topo;
  const kn = lab.namespace('kn'), kp = lab.namespace('kp');
  lab.veth(kn, 'vp', kp, 'eth0');
  const sh = (ns, args) => { const r = lab.exec(ns, args[0], args.slice(1)); if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`); return r.stdout; };
  for (const [ns, dev, a] of [[kn, 'vp', '10.77.1.1/24'], [kn, 'vp', '10.77.0.1/32'], [kp, 'eth0', '10.77.1.2/24']]) lab.addr(ns, dev, a);
  lab.route(kp, 'default', '10.77.1.1');
  lab.sysctl(kn, 'net.ipv4.ip_forward', '1');
  const host = lab.spawn(kn, process.execPath, ['-e', HOST_SERVERS('10.77.0.1')]);
  const pod = lab.spawn(kp, process.execPath, [POD_SERVER, 'kpod', '--http', '8080']);
  topo.podProcs.push(host, pod);
  await ready(host, 'the reference host servers');
  await ready(pod, 'the reference pod');
  const rules = `
table ip kube-proxy {
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
  }
  chain mark-for-masquerade {
    meta mark set meta mark | 0x4000
  }
  chain masquerading {
    meta mark & 0x4000 == 0 return
    meta mark set meta mark ^ 0x4000
    masquerade fully-random
  }
  chain svc-ext {
    meta l4proto tcp dnat to 10.77.1.2:8080
  }
  chain external-ext {
    jump mark-for-masquerade
    goto svc-ext
  }
  chain services {
    ip daddr . meta l4proto . th dport vmap @service-ips
  }
  chain nat-output {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain nat-postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump masquerading
  }
}
`;
  const r = lab.exec(kn, NFT, ['-f', '-'], { input: rules });
  if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
  const get = async (port, want) => {
    let got = '';
    for (let i = 0; i < 5; i++) {
      const c = await curl(topo, kn, `http://10.77.0.1:${port}/`, { timeout: 3 });
      got = c.code === 0 ? c.body.split('\n')[0] : `curl ${c.code}`;
      if (got.startsWith(want)) break;
    }
    return got;
  };
  t.is(await get(SVC_PORT, 'host'), `host${SVC_PORT}`, 'kernel: no Service, the host\'s server');
  sh(kn, [NFT, 'add', 'element', 'ip', 'kube-proxy', 'service-ips', `{ 10.77.0.1 . tcp . ${SVC_PORT} : goto external-ext }`]);
  t.regex(await get(SVC_PORT, 'kpod'), /^kpod/, 'kernel: the node\'s own connection to its external IP port reaches the endpoint');
  t.is(await get(OTHER_PORT, 'host'), `host${OTHER_PORT}`, 'kernel: another port stays the host\'s');
  sh(kn, [NFT, 'delete', 'element', 'ip', 'kube-proxy', 'service-ips', `{ 10.77.0.1 . tcp . ${SVC_PORT} }`]);
  t.is(await get(SVC_PORT, 'host'), `host${SVC_PORT}`, 'kernel: Service gone, the host\'s server again');
});

serial('a restart after a crash takes the rules over (once each), a clean stop removes them and puts the local rule back', async (t) => {
  await apply(services());
  await waitFor('the rules', async () => (await ourRules()).length === 2, 5000);
  topo.daemon.kill('SIGKILL');
  await new Promise((r) => topo.daemon.once('exit', r));
  const { startDaemon } = await import('./lib/topology.js');
  await startDaemon(topo);
  await waitFor('the rules again', async () => (await ourRules()).length === 2, 10000);
  t.is((await ourRules()).length, 2, 'no duplicates after the restart');
  t.regex(await answer(topo.ns.dp, `http://${NODE_V4}:${SVC_PORT}/`, 'pod-a'), /^pod-a/, 'the node\'s own connection after the restart');
  topo.daemon.kill('SIGTERM');
  await new Promise((r) => { const tm = setTimeout(r, 10000); topo.daemon.once('exit', () => { clearTimeout(tm); r(); }); });
  const rules = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
  t.notRegex(rules, /4242/);
  t.regex(rules, /^0:\s+from all lookup local/m);
});
