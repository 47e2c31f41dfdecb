// End to end, issue 14's in-cluster rules with real clients through `wdp start` in namespaces:
// externalTrafficPolicy Local holds only for traffic from outside the cluster (a pod on this node
// reaching a NodePort or LoadBalancer IP gets every endpoint, like the ClusterIP; kube-proxy's
// local-traffic detector, here `node.clusterCIDRs`; the node itself likewise, masqueraded), and a
// ping to an allocated ClusterIP is answered with an ICMP port unreachable. pod-a is on this node
// (node-a); pod-b and pod-c are said to be on node-b. The client namespace (10.0.0.2) and the
// remote one (192.168.100.10) are outside the cluster CIDR 10.244.0.0/16. The dataplane namespace
// plays the node: its own stack sits behind wdp's host port (a TAP carrying the node address, as
// in e2e-host.test.js).
import test from 'ava';
import { curl, curlOk, httpMany, e2eSuite, api, serviceYaml, sliceYaml, waitFor, NODE_V4, NODE_V6 } from './lib/topology.js';
import { rootReason } from './lib/root-gate.js';

const suite = e2eSuite(test, {
  kind: 'etp',
  node: { serviceCIDRs: ['10.96.0.0/16'], clusterCIDRs: ['10.244.0.0/16'] },
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }],
  // the node's stack: its address on the host port's TAP; pods, services and the LB range via wdp
  configure: (config) => config.ports.push({
    name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
    hostAddresses: [`${NODE_V4}/24`, `${NODE_V6}/64`],
    hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }, { prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: '203.0.113.0/24', via: '10.244.0.1' }],
  }),
});
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const slice = (name, service, pods) => sliceYaml({
  name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: p === topo.pods[0] ? 'node-a' : 'node-b' })),
});
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons;

/** n requests from `ns`: the pods that answered and the peer addresses they saw. */
async function spread(ns, url, n = 16) {
  const res = await httpMany(topo, ns, url, n);
  const failed = res.filter((r) => r.error);
  if (failed.length) throw new Error(`${failed.length}/${n} requests to ${url} failed: ${failed[0].error}`);
  return { pods: [...new Set(res.map((r) => r.pod))].sort(), peers: [...new Set(res.map((r) => r.peer.replace('::ffff:', '')))].sort() };
}

serial('externalTrafficPolicy Local, no local endpoint: outside clients are dropped, a pod on this node reaches the remote endpoints (NodePort and LB IP)', async (t) => {
  await apply([
    serviceYaml({
      name: 'etp-remote', type: 'LoadBalancer', clusterIP: '10.96.8.10', lbIngress: ['203.0.113.20'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30810, protocol: 'TCP' }], extra: { externalTrafficPolicy: 'Local' },
    }),
    slice('etp-remote-1', 'etp-remote', topo.pods.slice(1)), // endpoints only on node-b
  ]);
  const podA = topo.pods[0];
  for (const url of [`http://${NODE_V4}:30810/`, 'http://203.0.113.20/']) {
    const before = await reasons();
    const outside = await curl(topo, topo.ns.remote, url, { timeout: 2 });
    t.is(outside.code, 28, `${url} from outside: expected a timeout (dropped), got ${outside.code}: ${outside.stderr}`);
    const after = await reasons();
    t.true((after.drop_etp_no_local ?? 0) > (before.drop_etp_no_local ?? 0), JSON.stringify(after));
    // a pod of this node: short-circuited to the cluster-wide endpoints, its address kept
    const first = await curlOk(topo, podA.ns, url);
    t.is(first.code, 0, `${url} from pod-a: ${first.stderr}\n${topo.daemonLog.slice(-2000)}`);
    const s = await spread(podA.ns, url);
    t.deepEqual(s.pods, ['pod-b', 'pod-c'], `${url} from a pod: every (remote) endpoint`);
    t.deepEqual(s.peers, [podA.ip], `${url} from a pod: not masqueraded`);
  }
});

serial('externalTrafficPolicy Local with a local endpoint: outside clients reach only it and keep their address; a pod reaches every endpoint', async (t) => {
  await apply([
    serviceYaml({
      name: 'etp-local', type: 'LoadBalancer', clusterIP: '10.96.8.11', lbIngress: ['203.0.113.21'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30811, protocol: 'TCP' }], extra: { externalTrafficPolicy: 'Local' },
    }),
    slice('etp-local-1', 'etp-local', topo.pods),
  ]);
  const podB = topo.pods[1];
  for (const url of [`http://${NODE_V4}:30811/`, 'http://203.0.113.21/']) {
    const first = await curlOk(topo, topo.ns.remote, url);
    t.is(first.code, 0, `${url}: ${first.stderr}`);
    const outside = await spread(topo.ns.remote, url, 12);
    t.deepEqual(outside.pods, ['pod-a'], `${url} from outside: the node-local endpoint only`);
    t.deepEqual(outside.peers, ['192.168.100.10'], `${url} from outside: the client address is kept`);
    // pod-b is a pod (its address is in the cluster CIDR) though its endpoint is "on node-b": it
    // reaches all three, itself included (hairpin: masqueraded, like kube-proxy's hairpin rule)
    const inside = await spread(podB.ns, url, 24);
    t.deepEqual(inside.pods, ['pod-a', 'pod-b', 'pod-c'], `${url} from a pod: every endpoint`);
  }
});

serial('both traffic policies Local, endpoints only elsewhere: the ClusterIP drops, while a pod still reaches the NodePort\'s remote endpoints', async (t) => {
  await apply([
    serviceYaml({
      name: 'both-local', type: 'NodePort', clusterIP: '10.96.8.13',
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30813, protocol: 'TCP' }],
      extra: { externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local' },
    }),
    slice('both-local-1', 'both-local', topo.pods.slice(1)),
  ]);
  const podA = topo.pods[0];
  const cip = await curl(topo, podA.ns, 'http://10.96.8.13/', { timeout: 2 });
  t.is(cip.code, 28, `ClusterIP (internalTrafficPolicy Local, no local endpoint): dropped, got ${cip.code}: ${cip.stderr}`);
  const first = await curlOk(topo, podA.ns, `http://${NODE_V4}:30813/`);
  t.is(first.code, 0, first.stderr);
  const s = await spread(podA.ns, `http://${NODE_V4}:30813/`);
  t.deepEqual(s.pods, ['pod-b', 'pod-c'], 'NodePort from a pod: the cluster-wide endpoints (kube-proxy\'s cluster policy chain)');
  const outside = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30813/`, { timeout: 2 });
  t.is(outside.code, 28, 'from outside: dropped');
});

// kube-proxy's nftables proxier masquerades traffic from the node itself ("fib saddr type local")
// to an eTP=Local NodePort and sends it to every endpoint; to an external/LB IP without a local
// endpoint its pre-DNAT output filter drops it
serial('the node itself: an eTP=Local NodePort without a local endpoint is short-circuited to the remote endpoint and masqueraded; the LB IP drops', async (t) => {
  await apply([
    serviceYaml({
      name: 'etp-host', type: 'LoadBalancer', clusterIP: '10.96.9.10', lbIngress: ['203.0.113.30'],
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30910, protocol: 'TCP' }], extra: { externalTrafficPolicy: 'Local' },
    }),
    slice('etp-host-1', 'etp-host', topo.pods.slice(1)), // no local endpoint
  ]);
  const np = await curlOk(topo, topo.ns.dp, `http://${NODE_V4}:30910/`);
  t.is(np.code, 0, `NodePort from the node itself: ${np.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.regex(np.body, /^pod-[bc]/);
  const flows = (await api(topo, 'GET', '/api/v1/conntrack')).json;
  const list = Array.isArray(flows) ? flows : flows.items ?? flows.flows ?? [];
  const npFlow = list.find((f) => JSON.stringify(f).includes('30910'));
  t.truthy(npFlow, `a NodePort flow in ${JSON.stringify(list).slice(0, 600)}`);
  t.true(JSON.stringify(npFlow).includes('snat'), `masqueraded: ${JSON.stringify(npFlow)}`);
  // the same service from outside: dropped (no local endpoint)
  const outside = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30910/`, { timeout: 2 });
  t.is(outside.code, 28, `from outside: expected a timeout, got ${outside.code}: ${outside.stderr}`);
  // the node itself to the LB IP: the nftables proxier drops it before DNAT
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.reasons;
  const lb = await curl(topo, topo.ns.dp, 'http://203.0.113.30/', { timeout: 2 });
  t.is(lb.code, 28, `LB IP from the node: expected a timeout, got ${lb.code}: ${lb.stderr}`);
  // (counted when the worker gets to the SYNs: waited for, not read once)
  const now = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons;
  const after = await waitFor('drop_etp_no_local counted', async () => { const r = await now(); return (r.drop_etp_no_local ?? 0) > (before.drop_etp_no_local ?? 0) && r; }, 10000).catch(now);
  t.true((after.drop_etp_no_local ?? 0) > (before.drop_etp_no_local ?? 0), JSON.stringify(after));
  // a local endpoint appears: the node reaches the LB IP, over every endpoint (masqueraded)
  await apply([slice('etp-host-1', 'etp-host', topo.pods)]);
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < 3; i++) {
    const r = await curlOk(topo, topo.ns.dp, 'http://203.0.113.30/');
    t.is(r.code, 0, r.stderr);
    seen.add(r.body.trim().split(/\s/)[0]);
  }
  t.deepEqual([...seen].sort(), ['pod-a', 'pod-b', 'pod-c'], 'the node itself: every endpoint');
});

const noPython = rootReason(['python3']);
// One ICMP echo request from a raw socket; prints the first ICMP message that comes back (type,
// code, source) or "timeout". python3 because the namespaces need no ping binary.
const PING = `
import socket, struct, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
def csum(b):
    b = b + b'\\0' * (len(b) % 2)
    n = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xffff); n += n >> 16
    return ~n & 0xffff
body = struct.pack('!BBHHH', 8, 0, 0, 0x77, 1) + b'wdp-ping'
pkt = body[:2] + struct.pack('!H', csum(body)) + body[4:]
end = time.time() + 3
while time.time() < end:
    s.sendto(pkt, (dst, 0))
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    ihl = (data[0] & 15) * 4
    print('%d %d %s' % (data[ihl], data[ihl + 1], addr[0])); sys.exit(0)
print('timeout')
`;

(noPython ? test.skip : serial)(`a ping to an allocated ClusterIP is answered with ICMP port unreachable (reject_cluster_ip_proto); to an unallocated service IP it is dropped${noPython ? ` (skipped: ${noPython})` : ''}`, async (t) => {
  await apply([
    serviceYaml({ name: 'pinged', clusterIP: '10.96.8.12', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    slice('pinged-1', 'pinged', topo.pods),
  ]);
  const before = await reasons();
  const ping = async (ns, dst) => (await topo.lab.execAsync(ns, 'python3', ['-c', PING, dst], { timeoutMs: 15000 })).stdout.trim();
  // from the in port's gateway address: the ClusterIP is not the node's, so __icmp_send's route back
  // to the sender picks the source (docs/core.md "Reject")
  t.is(await ping(topo.pods[0].ns, '10.96.8.12'), '3 3 10.244.0.1', 'from a pod: port unreachable from the pod port\'s gateway');
  t.is(await ping(topo.ns.client, '10.96.8.12'), '3 3 10.0.0.1', 'from the client: from the client port\'s gateway');
  t.is(await ping(topo.ns.client, '10.96.8.99'), 'timeout', 'an unallocated service IP: dropped');
  const after = await reasons();
  t.true((after.reject_cluster_ip_proto ?? 0) >= (before.reject_cluster_ip_proto ?? 0) + 2, JSON.stringify(after));
  t.true((after.drop_no_service_ip ?? 0) > (before.drop_no_service_ip ?? 0));
});
