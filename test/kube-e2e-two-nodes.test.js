// Kubernetes' Service e2e scenarios that need a second node running the proxy: two `wdp start`
// daemons (node-a and node-b, each with its own pods, Node object and host port) fed by one
// API-server double, their uplinks on one bridge with an outside client (test/lib/two-nodes.js).
// Real clients (curl, node's http and dgram, python sockets) in the pod, node and outside
// namespaces. Tests run in order on the same two daemons and each deletes what it created; the
// last builds two more nodes with AF_XDP uplinks. The map from upstream test names to wdp tests is
// docs/e2e-coverage.md; the segment that floods unicast frames is docs/running.md's "Frames
// addressed to another host's MAC".
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { READY, TERMINATING, SVC, EPS, service, cluster, slice, kit } from './lib/kube-e2e-kit.js';
import { rootGate, api, curl, httpMany, udpAsk, sleep, spawnNode, startDaemon, waitFor } from './lib/topology.js';
import { ECHO_PORT, ECHO_SERVER, ECHO_CLIENT, report } from './lib/echo-traffic.js';
import { pmtuProbe, EMSGSIZE } from './lib/pmtu-probe.js';
import { must, run } from '../dist/src/netns.js';
import { buildTwoNodes, destroyTwoNodes, nodeObject, routeVia, stopNode, NODES, OUTSIDE } from './lib/two-nodes.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

let two;
const { put, del, until, pods, hostServer } = kit(() => two, () => two.double);

test.before(async () => {
  if (!root) return;
  two = await buildTwoNodes();
});
test.after.always(async () => { await destroyTwoNodes(two); });

const tcp = (p) => ({ name: 'http', port: 80, targetPort: 8080, ...p });
const udp = (p) => ({ name: 'udp', port: 53, targetPort: 5353, protocol: 'UDP', ...p });
const PORTS = [{ name: 'http', port: 8080 }, { name: 'udp', port: 5353, protocol: 'UDP' }];
/** An endpoint tuple of the kit's slice(): the pod, ready, on its own node. */
const on = (pod, conditions = READY) => [pod, conditions, pod.node];

/** One GET from `ns`: { pod, peer } of the answer, or { error }. */
async function get(ns, url) {
  const [r] = await httpMany(two, ns, url, 1, { timeoutMs: 2000 });
  return r.error ? { error: r.error } : { pod: r.pod, peer: r.peer };
}
/** One UDP datagram from `ns` (from `bindPort` when given): { pod, from } of the answer, or null. */
async function ask(ns, host, port, bindPort) {
  const r = await udpAsk(two, ns, host, port, 'hostname', { timeoutMs: 1000, bindPort });
  return r.reply ? { pod: r.reply.split(':')[0], from: r.from } : null;
}
/** The tracked flows of `svc` in `node`'s wdp. */
async function flows(node, svc) {
  const r = await api(node, 'GET', `/api/v1/conntrack?service=default/${svc}`);
  return r.json?.items ?? [];
}
/** A healthCheckNodePort's answer from `ns`: [HTTP status, localEndpoints]; [0, null] when nothing answers. */
async function health(ns, ip, port) {
  const r = await two.lab.execAsync(ns, 'curl', ['-s', '-w', '\\n%{http_code}', '--max-time', '2', `http://${ip}:${port}/healthz`], { timeoutMs: 7000 });
  const lines = r.stdout.trim().split('\n');
  const status = Number(lines.pop()) || 0;
  let body; try { body = JSON.parse(lines.join('\n')); } catch { body = undefined; }
  return [status, body?.localEndpoints ?? null];
}

// ---- ClusterIP across nodes -------------------------------------------------------------------

serial('a pod on node-a reaches a ClusterIP whose only endpoint is a pod on node-b, TCP and UDP: DNAT on node-a, delivered untouched by node-b (client pod address kept), the reply reverse-translated by node-a; and the other way round', async (t) => {
  const { a, b } = two.nodes;
  const [a0, a1] = a.pods;
  const [b0, b1] = b.pods;
  const vip = '10.96.70.10';
  await put(SVC, service('cross', cluster(vip, [tcp(), udp()])));
  await put(EPS, slice('cross-1', 'cross', PORTS, [on(b0)]));
  t.deepEqual(await until({ pod: b0.name, peer: a0.ip }, () => get(a0.ns, `http://${vip}/`)), { pod: b0.name, peer: a0.ip }, 'TCP: node-b\'s pod answers and sees the client pod\'s own address');
  t.deepEqual(await until({ pod: b0.name, from: vip }, () => ask(a1.ns, vip, 53)), { pod: b0.name, from: vip }, 'UDP: answered from the ClusterIP (reverse NAT on node-a)');
  t.true((await flows(a, 'cross')).length > 0, 'node-a tracks the translated flows');
  t.deepEqual(await flows(b, 'cross'), [], 'node-b translated nothing: it delivered node-a\'s packets to its pod as they came');

  await put(EPS, slice('cross-1', 'cross', PORTS, [on(a1)]));
  t.deepEqual(await until({ pod: a1.name, peer: b1.ip }, () => get(b1.ns, `http://${vip}/`)), { pod: a1.name, peer: b1.ip }, 'node-b\'s pod to a pod on node-a, TCP');
  t.deepEqual(await until({ pod: a1.name, from: vip }, () => ask(b0.ns, vip, 53)), { pod: a1.name, from: vip }, 'and UDP');
  await del(EPS, 'cross-1');
  await del(SVC, 'cross');
});

// ---- no_snat.go ---------------------------------------------------------------------------------

serial('no_snat.go "Should be able to send traffic between Pods without SNAT": pod to pod across nodes, TCP and UDP, both ways, the server sees the client pod\'s address', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  for (const [from, to] of [[a0, b0], [a1, b1], [b0, a1], [b1, a0]]) {
    t.deepEqual(await until({ pod: to.name, peer: from.ip }, () => get(from.ns, `http://${to.ip}:8080/`), 12), { pod: to.name, peer: from.ip }, `${from.name} → ${to.name}, TCP`);
    t.deepEqual(await ask(from.ns, to.ip, 5353), { pod: to.name, from: to.ip }, `${from.name} → ${to.name}, UDP`);
  }
});

// ---- NodePort across nodes ----------------------------------------------------------------------

serial('service.go "should be able to create a functioning NodePort service" across nodes: from outside to either node\'s NodePort, the endpoint on node-a; externalTrafficPolicy Cluster masqueraded by the node reached, the reply back through it', async (t) => {
  const [a0] = two.nodes.a.pods;
  const np = 31010;
  await put(SVC, service('np-cluster', cluster('10.96.70.20', [tcp({ nodePort: np }), udp({ nodePort: np })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('np-cluster-1', 'np-cluster', PORTS, [on(a0)]));
  for (const node of [NODES.b, NODES.a]) {
    t.deepEqual(await until({ pod: a0.name, peer: node.ip }, () => get(two.ns.out, `http://${node.ip}:${np}/`)), { pod: a0.name, peer: node.ip }, `TCP to ${node.name}'s NodePort: masqueraded to ${node.name}'s address`);
    t.deepEqual(await until({ pod: a0.name, from: node.ip }, () => ask(two.ns.out, node.ip, np)), { pod: a0.name, from: node.ip }, `UDP to ${node.name}'s NodePort, answered from it`);
  }
  await del(EPS, 'np-cluster-1');
  await del(SVC, 'np-cluster');
});

// a healthCheckNodePort is allocated for type LoadBalancer only (the API server refuses it on a
// NodePort Service): a LoadBalancer whose load balancer has not reported an ingress IP yet
serial('externalTrafficPolicy Local across nodes: the NodePort of the node without a local endpoint drops outside clients; the node with one keeps the client address; each node\'s healthCheckNodePort answers its own local endpoint count (200 / 503)', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0] = two.nodes.b.pods;
  const np = 31020, hc = 32020;
  await put(SVC, service('np-local', cluster('10.96.70.30', [tcp({ nodePort: np }), udp({ nodePort: np })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: hc })));
  await put(EPS, slice('np-local-1', 'np-local', PORTS, [on(a0), on(a1)]));
  t.deepEqual(await until([200, 2], () => health(two.ns.out, NODES.a.ip, hc)), [200, 2], 'node-a: two local endpoints');
  t.deepEqual(await until([503, 0], () => health(two.ns.out, NODES.b.ip, hc)), [503, 0], 'node-b: none');
  t.deepEqual(await until([a0.name, a1.name], () => pods(two.ns.out, `http://${NODES.a.ip}:${np}/`, 12)), [a0.name, a1.name], 'node-a\'s NodePort: its local endpoints');
  t.is((await get(two.ns.out, `http://${NODES.a.ip}:${np}/`)).peer, OUTSIDE, 'the client address preserved');
  t.true(await until(true, async () => [a0.name, a1.name].includes((await ask(two.ns.out, NODES.a.ip, np))?.pod)), 'UDP answered by node-a\'s endpoints');
  t.deepEqual(await get(two.ns.out, `http://${NODES.b.ip}:${np}/`), { error: 'timeout' }, 'node-b\'s NodePort: no local endpoint, dropped (not forwarded to node-a, not refused)');
  t.is(await ask(two.ns.out, NODES.b.ip, np), null, 'UDP too');

  // an endpoint on node-b as well: its health check turns 200 and its NodePort serves only it
  await put(EPS, slice('np-local-1', 'np-local', PORTS, [on(a0), on(a1), on(b0)]));
  t.deepEqual(await until([200, 1], () => health(two.ns.out, NODES.b.ip, hc)), [200, 1], 'node-b: one local endpoint');
  t.deepEqual(await health(two.ns.out, NODES.a.ip, hc), [200, 2], 'node-a: still two');
  t.deepEqual(await until([b0.name], () => pods(two.ns.out, `http://${NODES.b.ip}:${np}/`, 8)), [b0.name], 'node-b\'s NodePort: only its own endpoint');
  t.is((await get(two.ns.out, `http://${NODES.b.ip}:${np}/`)).peer, OUTSIDE, 'the client address preserved');
  // node-a's endpoints gone: node-a 503 (none local), its NodePort drops
  await put(EPS, slice('np-local-1', 'np-local', PORTS, [on(b0)]));
  t.deepEqual(await until([503, 0], () => health(two.ns.out, NODES.a.ip, hc)), [503, 0], 'node-a: none left');
  t.deepEqual(await until({ error: 'timeout' }, () => get(two.ns.out, `http://${NODES.a.ip}:${np}/`), 10), { error: 'timeout' }, 'node-a\'s NodePort drops');
  await del(EPS, 'np-local-1');
  await del(SVC, 'np-local');
});

serial('a pod on node-b reaches node-a\'s NodePort (externalTrafficPolicy Cluster: masqueraded by node-a, endpoints on both nodes) and, with externalTrafficPolicy Local, node-a\'s local endpoint with its own address (pods are not external clients); a pod on node-a likewise node-b\'s', async (t) => {
  const [a0] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  const np = 31030, npLocal = 31031;
  await put(SVC, service('np-from-pod', cluster('10.96.70.40', [tcp({ nodePort: np }), udp({ nodePort: np })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('np-from-pod-1', 'np-from-pod', PORTS, [on(a0), on(b0)]));
  t.deepEqual(await until([a0.name, b0.name], () => pods(b1.ns, `http://${NODES.a.ip}:${np}/`, 16)), [a0.name, b0.name], 'both nodes\' endpoints through node-a\'s NodePort');
  const r = await httpMany(two, b1.ns, `http://${NODES.a.ip}:${np}/`, 8, { timeoutMs: 2000 });
  t.deepEqual([...new Set(r.map((x) => x.peer))], [NODES.a.ip], 'masqueraded to node-a\'s address');
  t.deepEqual(await until(true, async () => ['pod-a0', 'pod-b0'].includes((await ask(b1.ns, NODES.a.ip, np))?.pod)), true, 'UDP answered');

  await put(SVC, service('np-from-pod-local', cluster('10.96.70.41', [tcp({ nodePort: npLocal })], { type: 'NodePort', externalTrafficPolicy: 'Local' })));
  await put(EPS, slice('np-from-pod-local-1', 'np-from-pod-local', PORTS.slice(0, 1), [on(a0)]));
  t.deepEqual(await until({ pod: a0.name, peer: b1.ip }, () => get(b1.ns, `http://${NODES.a.ip}:${npLocal}/`)), { pod: a0.name, peer: b1.ip }, 'Local: node-a\'s endpoint, the pod\'s address kept');
  t.deepEqual(await get(two.ns.out, `http://${NODES.b.ip}:${npLocal}/`), { error: 'timeout' }, 'while outside clients of node-b (no local endpoint) are dropped');
  // and the other way: a pod on node-a to node-b's NodePort, whose local endpoint answers it unmasqueraded
  await put(EPS, slice('np-from-pod-local-1', 'np-from-pod-local', PORTS.slice(0, 1), [on(a0), on(b0)]));
  t.deepEqual(await until({ pod: b0.name, peer: a0.ip }, () => get(a0.ns, `http://${NODES.b.ip}:${npLocal}/`)), { pod: b0.name, peer: a0.ip }, 'Local: a pod on node-a to node-b\'s NodePort: node-b\'s endpoint, the pod\'s address kept');
  await del(EPS, 'np-from-pod-local-1');
  await del(SVC, 'np-from-pod-local');
  await del(EPS, 'np-from-pod-1');
  await del(SVC, 'np-from-pod');
});

// ---- LoadBalancer IP routed to either node ----------------------------------------------------

serial('a LoadBalancer IP routed to either node: Cluster answered through both (masqueraded by the node it reached), Local only through the node with the endpoint (client address kept); pods on node-b reach the Local one (node-a\'s endpoint); node-b itself the Cluster one only', async (t) => {
  const { b } = two.nodes;
  const [a0] = two.nodes.a.pods;
  const [b0, b1] = b.pods;
  const lbC = '203.0.113.50', lbL = '203.0.113.51';
  await put(SVC, service('lb-cluster', { ...cluster('10.96.70.50', [tcp({ nodePort: 31050 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), lbIP: lbC }));
  await put(EPS, slice('lb-cluster-1', 'lb-cluster', PORTS.slice(0, 1), [on(a0)]));
  await put(SVC, service('lb-local', { ...cluster('10.96.70.51', [tcp({ nodePort: 31051 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32051 }), lbIP: lbL }));
  await put(EPS, slice('lb-local-1', 'lb-local', PORTS.slice(0, 1), [on(a0)]));
  try {
    for (const node of [NODES.a, NODES.b]) {
      routeVia(two, two.ns.out, `${lbC}/32`, node.ip);
      routeVia(two, two.ns.out, `${lbL}/32`, node.ip);
      t.deepEqual(await until({ pod: a0.name, peer: node.ip }, () => get(two.ns.out, `http://${lbC}/`)), { pod: a0.name, peer: node.ip }, `Cluster via ${node.name}: masqueraded by it`);
      if (node === NODES.a) {
        t.deepEqual(await until({ pod: a0.name, peer: OUTSIDE }, () => get(two.ns.out, `http://${lbL}/`)), { pod: a0.name, peer: OUTSIDE }, 'Local via node-a (its endpoint): the client address kept');
      } else {
        t.deepEqual(await until({ error: 'timeout' }, () => get(two.ns.out, `http://${lbL}/`), 10), { error: 'timeout' }, 'Local via node-b (no local endpoint): dropped');
      }
    }
    // pods: node-b's own wdp takes the LB IP (as kube-proxy does for pods' traffic to an LB IP)
    t.deepEqual(await until({ pod: a0.name, peer: b1.ip }, () => get(b1.ns, `http://${lbL}/`)), { pod: a0.name, peer: b1.ip }, 'a pod on node-b to the Local LB IP: node-a\'s endpoint, not dropped, not masqueraded');
    t.deepEqual(await until({ pod: a0.name, peer: NODES.b.ip }, () => get(b0.ns, `http://${lbC}/`)), { pod: a0.name, peer: NODES.b.ip }, 'a pod on node-b to the Cluster LB IP: masqueraded by node-b (kube-proxy masquerades all traffic to an external destination of policy Cluster)');
    // node-b's own stack (its LB traffic routed into wdp's host port, as a node's default route
    // through the host port sends it): the Cluster LB IP answered, masqueraded; the Local one,
    // without an endpoint on node-b, dropped — the nftables proxier's filter-output checks
    // no-endpoint-services before DNAT, so only a NodePort short-circuits the node's own traffic
    must('ip', ['-n', b.ns.dp, 'route', 'replace', '203.0.113.0/24', 'via', '10.244.0.1', 'dev', 'wdp-host', 'onlink']);
    t.deepEqual(await until({ pod: a0.name, peer: NODES.b.ip }, () => get(b.ns.dp, `http://${lbC}/`)), { pod: a0.name, peer: NODES.b.ip }, 'node-b itself to the Cluster LB IP: node-a\'s endpoint');
    t.deepEqual(await get(b.ns.dp, `http://${lbL}/`), { error: 'timeout' }, 'node-b itself to the Local LB IP without a local endpoint: dropped');
  } finally {
    await del(EPS, 'lb-local-1');
    await del(SVC, 'lb-local');
    await del(EPS, 'lb-cluster-1');
    await del(SVC, 'lb-cluster');
  }
});

// ---- conntrack.go "server pod cycles" across nodes -------------------------------------------------

serial('conntrack.go "should be able to preserve UDP traffic when server pod cycles for a ClusterIP / NodePort service", loadbalancer.go "... for a LoadBalancer service on different nodes": the endpoint moves from node-a to node-b while each client keeps its source port', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0] = two.nodes.b.pods;
  const vip = '10.96.70.60', np = 31060;
  const lb = '203.0.113.60';
  await put(SVC, service('cycles', { ...cluster(vip, [udp({ nodePort: np })], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), lbIP: lb }));
  routeVia(two, two.ns.out, `${lb}/32`, NODES.b.ip);
  await put(EPS, slice('cycles-1', 'cycles', PORTS.slice(1), [on(a0)]));
  const viaVip = async () => (await ask(a1.ns, vip, 53, 24601))?.pod ?? null; // a client pod on node-a
  const viaNodePort = async () => (await ask(two.ns.out, NODES.b.ip, np, 24602))?.pod ?? null; // outside, through node-b
  const viaLB = async () => (await ask(two.ns.out, lb, 53, 24603))?.pod ?? null; // outside, the LB IP routed to node-b
  t.is(await until(a0.name, viaVip), a0.name, 'ClusterIP: the first server pod, on node-a');
  t.is(await until(a0.name, viaNodePort), a0.name, 'NodePort of node-b: the first server pod, on node-a');
  t.is(await until(a0.name, viaLB), a0.name, 'LB IP through node-b: the first server pod');
  // the server pod deleted; its replacement scheduled on node-b
  await put(EPS, slice('cycles-1', 'cycles', PORTS.slice(1), []));
  await sleep(300);
  await put(EPS, slice('cycles-1', 'cycles', PORTS.slice(1), [on(b0)]));
  t.is(await until(b0.name, viaVip, 20), b0.name, 'ClusterIP: the same 5-tuple reaches the new pod on node-b');
  t.is(await until(b0.name, viaNodePort, 20), b0.name, 'NodePort: the same 5-tuple reaches the new pod on node-b');
  t.is(await until(b0.name, viaLB, 20), b0.name, 'LB IP: the same 5-tuple reaches the new pod on node-b');
  await del(EPS, 'cycles-1');
  await del(SVC, 'cycles');
});

// ---- internalTrafficPolicy Local across nodes ----------------------------------------------------

serial('service.go "should respect internalTrafficPolicy=Local Pod to Pod": a pod reaches only its own node\'s endpoints; a pod on a node without one gets nothing (dropped, not sent to the other node)', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  const vip = '10.96.70.70';
  await put(SVC, service('itp-local', cluster(vip, [tcp(), udp()], { internalTrafficPolicy: 'Local' })));
  await put(EPS, slice('itp-local-1', 'itp-local', PORTS, [on(b0)]));
  t.deepEqual(await until({ pod: b0.name, peer: b1.ip }, () => get(b1.ns, `http://${vip}/`)), { pod: b0.name, peer: b1.ip }, 'node-b\'s pod: its node\'s endpoint');
  t.deepEqual(await get(a1.ns, `http://${vip}/`), { error: 'timeout' }, 'node-a\'s pod: no endpoint on node-a, dropped');
  t.is(await ask(a1.ns, vip, 53), null, 'UDP too');
  await put(EPS, slice('itp-local-1', 'itp-local', PORTS, [on(a0), on(b0)]));
  t.deepEqual(await until([a0.name], () => pods(a1.ns, `http://${vip}/`, 8)), [a0.name], 'node-a\'s pod: only node-a\'s endpoint');
  t.deepEqual(await pods(b1.ns, `http://${vip}/`, 8), [b0.name], 'node-b\'s pod: only node-b\'s');
  await del(EPS, 'itp-local-1');
  await del(SVC, 'itp-local');
});

// ---- the nodes themselves (hostNetwork) as clients and endpoints ---------------------------------

serial('networking.go "Granular Checks: Services should function for node-Service", "Pods should function for node-pod communication" and "should function for service endpoints using hostNetwork" across nodes: node-b (its own stack) reaches a ClusterIP and node-a\'s NodePort served by node-a\'s pod, and node-a\'s pod directly; node-b\'s hostNetwork endpoint from a pod on node-a and from outside through node-a\'s NodePort', async (t) => {
  const { a, b } = two.nodes;
  const [a0, a1] = a.pods;
  const hostPort = 10280;
  await put(SVC, service('node-client', cluster('10.96.70.80', [tcp({ nodePort: 31080 }), udp({ nodePort: 31080 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('node-client-1', 'node-client', PORTS, [on(a0)]));
  t.deepEqual(await until({ pod: a0.name, peer: NODES.b.ip }, () => get(b.ns.dp, 'http://10.96.70.80/')), { pod: a0.name, peer: NODES.b.ip }, 'node-b to the ClusterIP: node-a\'s pod sees node-b\'s address');
  t.deepEqual(await until({ pod: a0.name, from: '10.96.70.80' }, () => ask(b.ns.dp, '10.96.70.80', 53)), { pod: a0.name, from: '10.96.70.80' }, 'UDP');
  t.deepEqual(await until({ pod: a0.name, peer: NODES.a.ip }, () => get(b.ns.dp, `http://${NODES.a.ip}:31080/`)), { pod: a0.name, peer: NODES.a.ip }, 'node-b to node-a\'s NodePort: masqueraded by node-a');
  t.deepEqual(await until({ pod: a0.name, from: NODES.a.ip }, () => ask(b.ns.dp, NODES.a.ip, 31080)), { pod: a0.name, from: NODES.a.ip }, 'UDP');

  await hostServer(t, b.ns.dp, 'node-b', hostPort);
  await put(SVC, service('host-ep', cluster('10.96.70.81', [tcp({ targetPort: hostPort }), udp({ targetPort: hostPort })])));
  await put(EPS, slice('host-ep-1', 'host-ep', [{ name: 'http', port: hostPort }, { name: 'udp', port: hostPort, protocol: 'UDP' }], [[{ ip: NODES.b.ip, name: 'node-b' }, READY, 'node-b']]));
  t.deepEqual(await until({ pod: 'node-b', peer: a1.ip }, () => get(a1.ns, 'http://10.96.70.81/')), { pod: 'node-b', peer: a1.ip }, 'a pod on node-a to node-b\'s hostNetwork endpoint: the pod\'s address kept');
  t.deepEqual(await until({ pod: 'node-b', from: '10.96.70.81' }, () => ask(a1.ns, '10.96.70.81', 53)), { pod: 'node-b', from: '10.96.70.81' }, 'UDP');
  // from outside through node-a's NodePort: masqueraded by node-a, node-b's stack answers node-a's address
  await put(SVC, service('host-ep', cluster('10.96.70.81', [tcp({ targetPort: hostPort, nodePort: 31081 }), udp({ targetPort: hostPort, nodePort: 31081 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  t.deepEqual(await until({ pod: 'node-b', peer: NODES.a.ip }, () => get(two.ns.out, `http://${NODES.a.ip}:31081/`)), { pod: 'node-b', peer: NODES.a.ip }, 'outside to node-a\'s NodePort, node-b\'s hostNetwork endpoint: masqueraded by node-a');
  t.deepEqual(await until({ pod: 'node-b', from: NODES.a.ip }, () => ask(two.ns.out, NODES.a.ip, 31081)), { pod: 'node-b', from: NODES.a.ip }, 'UDP');
  // networking.go "Granular Checks: Pods should function for node-pod communication": node-b's stack to node-a's pod and back
  t.deepEqual(await until({ pod: a0.name, peer: NODES.b.ip }, () => get(b.ns.dp, `http://${a0.ip}:8080/`)), { pod: a0.name, peer: NODES.b.ip }, 'node-b to a pod on node-a, no Service');
  t.deepEqual(await until({ pod: 'node-b', peer: a0.ip }, () => get(a0.ns, `http://${NODES.b.ip}:${hostPort}/`)), { pod: 'node-b', peer: a0.ip }, 'a pod on node-a to node-b\'s address, no Service');
  await del(EPS, 'host-ep-1');
  await del(SVC, 'host-ep');
  await del(EPS, 'node-client-1');
  await del(SVC, 'node-client');
});

// ---- hairpin through another node --------------------------------------------------------------

serial('a pod reaching itself through the other node\'s NodePort: masqueraded by that node, the answer back through it', async (t) => {
  const [a0] = two.nodes.a.pods;
  await put(SVC, service('hairpin-remote', cluster('10.96.70.90', [tcp({ nodePort: 31090 }), udp({ nodePort: 31090 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('hairpin-remote-1', 'hairpin-remote', PORTS, [on(a0)]));
  t.deepEqual(await until({ pod: a0.name, peer: NODES.b.ip }, () => get(a0.ns, `http://${NODES.b.ip}:31090/`)), { pod: a0.name, peer: NODES.b.ip }, 'TCP');
  t.deepEqual(await until({ pod: a0.name, from: NODES.b.ip }, () => ask(a0.ns, NODES.b.ip, 31090)), { pod: a0.name, from: NODES.b.ip }, 'UDP');
  await del(EPS, 'hairpin-remote-1');
  await del(SVC, 'hairpin-remote');
});

// ---- ICMP errors and large transfers across nodes ---------------------------------------------

serial('an ICMP port unreachable from node-b\'s pod reaches the client on node-a translated back to the ClusterIP (and, from outside, to node-b\'s NodePort masqueraded by node-b)', async (t) => {
  const [, a1] = two.nodes.a.pods;
  const [b0] = two.nodes.b.pods;
  // the Service's targetPort has no listener on the pod: the pod answers port unreachable
  await put(SVC, service('icmp-remote', cluster('10.96.70.100', [udp({ targetPort: 5999, nodePort: 31100 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('icmp-remote-1', 'icmp-remote', [{ name: 'udp', port: 5999, protocol: 'UDP' }], [on(b0)]));
  /** a connected UDP socket's view: 'refused' when an ICMP port unreachable came back, null for silence */
  const refused = async (ns, host, port) => {
    const script = `
      const s = require('dgram').createSocket('udp4');
      const t = setTimeout(() => { console.log('null'); process.exit(0); }, 1500);
      s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify(e.code === 'ECONNREFUSED' ? 'refused' : e.code)); process.exit(0); });
      s.on('message', (m) => { clearTimeout(t); console.log(JSON.stringify(String(m))); process.exit(0); });
      s.connect(${port}, ${JSON.stringify(host)}, () => { s.send('hostname'); setTimeout(() => s.send('hostname'), 300); });`;
    const r = await two.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 8000 });
    try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return `no output: ${r.stderr}`; }
  };
  t.is(await until('refused', () => refused(a1.ns, '10.96.70.100', 53)), 'refused', 'a pod on node-a, through the ClusterIP');
  t.is(await until('refused', () => refused(two.ns.out, NODES.b.ip, 31100)), 'refused', 'outside, through node-b\'s NodePort');
  await del(EPS, 'icmp-remote-1');
  await del(SVC, 'icmp-remote');
});

serial('networking.go "should be able to handle large requests: http" across nodes: a 4 MiB upload from a pod on node-a through the ClusterIP to node-b\'s pod, and from outside through node-a\'s NodePort to it, bytes and order checked', async (t) => {
  const [a0] = two.nodes.a.pods;
  const [b0] = two.nodes.b.pods;
  await put(SVC, service('large-remote', cluster('10.96.70.110', [tcp({ nodePort: 31110 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('large-remote-1', 'large-remote', PORTS.slice(0, 1), [on(b0)]));
  t.is(await until(b0.name, async () => (await get(a0.ns, 'http://10.96.70.110/')).pod), b0.name);
  const body = Buffer.alloc(4 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
  const sha = createHash('sha256').update(body).digest('hex');
  const file = join(two.dir, 'large-body');
  writeFileSync(file, body);
  for (const [label, ns, url] of [['ClusterIP from node-a\'s pod', a0.ns, 'http://10.96.70.110/sink'], ['node-a\'s NodePort from outside', two.ns.out, `http://${NODES.a.ip}:31110/sink`]]) {
    const r = await curl(two, ns, url, { timeout: 30, extra: ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', '-H', 'Expect:'] });
    t.is(r.code, 0, `${label}: curl ${r.stderr}`);
    t.is(r.body.trim(), `${body.length} ${sha}`, `${label}: node-b's pod got every byte in order`);
  }
  await del(EPS, 'large-remote-1');
  await del(SVC, 'large-remote');
});

// ---- UDP flows of externalTrafficPolicy Local when the node's local endpoint leaves ----------------

// kube-proxy clears the UDP conntrack entries of an endpoint that stops serving
// (pkg/proxy/conntrack/cleanup.go); the client's next datagram is a new flow, which
// externalTrafficPolicy Local sends only to this node's endpoints: none left, dropped — not to
// the other node's endpoint.
serial('externalTrafficPolicy Local, UDP: an outside client\'s 5-tuple through node-b, whose only local endpoint leaves, is not moved to node-a\'s endpoint (dropped); a local endpoint back, it is answered again', async (t) => {
  const [a0] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  const np = 31120;
  await put(SVC, service('udp-local', cluster('10.96.70.120', [udp({ nodePort: np })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32120 })));
  await put(EPS, slice('udp-local-1', 'udp-local', PORTS.slice(1), [on(a0), on(b0)]));
  const viaB = async () => (await ask(two.ns.out, NODES.b.ip, np, 24610))?.pod ?? null;
  t.is(await until(b0.name, viaB), b0.name, 'node-b\'s local endpoint');
  await put(EPS, slice('udp-local-1', 'udp-local', PORTS.slice(1), [on(a0)]));
  t.deepEqual(await until([503, 0], () => health(two.ns.out, NODES.b.ip, 32120)), [503, 0], 'node-b has no local endpoint');
  const after = [];
  for (let i = 0; i < 4; i++) after.push(await viaB());
  t.deepEqual(after, [null, null, null, null], 'the same 5-tuple is dropped by node-b, never sent to node-a\'s endpoint');
  await put(EPS, slice('udp-local-1', 'udp-local', PORTS.slice(1), [on(a0), on(b1)]));
  t.is(await until(b1.name, viaB), b1.name, 'a new local endpoint on node-b answers the same 5-tuple');
  await del(EPS, 'udp-local-1');
  await del(SVC, 'udp-local');
});

// ---- restart of either node's proxy under cross-node connections ----------------------------------

// service.go "should work after restarting kube-proxy" with the endpoints on the other node: a
// pod's connection through a ClusterIP to node-b's pod (translated by node-a, routed by node-b)
// and an outside client's through node-b's NodePort to node-a's pod (masqueraded by node-b, routed
// by node-a), TCP and UDP, keep exchanging data while node-b's wdp restarts, then node-a's.
serial('restarting either node\'s wdp keeps the cross-node connections: ClusterIP from a pod on node-a to node-b\'s pod, and node-b\'s masqueraded NodePort to node-a\'s pod (TCP and UDP)', async (t) => {
  const { a, b } = two.nodes;
  const [, a1] = a.pods;
  const [, b1] = b.pods;
  for (const pod of [a1, b1]) {
    const s = spawnNode(two, pod.ns, ECHO_SERVER, [pod.name]);
    t.teardown(() => { if (s.exitCode === null) s.kill(); });
    await waitFor(`${pod.name} echo server`, () => s.out.includes('ready'));
  }
  const echoPorts = [{ name: 'echo', port: ECHO_PORT }, { name: 'udp', port: 5353, protocol: 'UDP' }];
  const svcPorts = (np) => [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, nodePort: np }, udp({ nodePort: np })];
  await put(SVC, service('to-b', cluster('10.96.70.130', svcPorts(31130), { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('to-b-1', 'to-b', echoPorts, [on(b1)]));
  await put(SVC, service('to-a', cluster('10.96.70.131', svcPorts(31131), { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('to-a-1', 'to-a', echoPorts, [on(a1)]));
  t.is(await until(b1.name, async () => (await ask(a1.ns, '10.96.70.130', 53))?.pod ?? null), b1.name, 'to-b programmed');
  t.is(await until(a1.name, async () => (await ask(two.ns.out, NODES.b.ip, 31131))?.pod ?? null), a1.name, 'to-a programmed');

  const kinds = {
    'ClusterIP TCP (a pod on node-a to node-b\'s pod)': spawnNode(two, a1.ns, ECHO_CLIENT, ['10.96.70.130', String(ECHO_PORT), '3']),
    'ClusterIP UDP': spawnNode(two, a1.ns, ECHO_CLIENT, ['10.96.70.130', '53', '3', 'udp']),
    'node-b\'s NodePort TCP (outside to node-a\'s pod)': spawnNode(two, two.ns.out, ECHO_CLIENT, [NODES.b.ip, '31131', '3']),
    'node-b\'s NodePort UDP': spawnNode(two, two.ns.out, ECHO_CLIENT, [NODES.b.ip, '31131', '3', 'udp']),
  };
  t.teardown(() => { for (const c of Object.values(kinds)) if (c.exitCode === null) c.kill('SIGKILL'); });
  const last = {};
  for (const [k, c] of Object.entries(kinds)) {
    last[k] = await waitFor(`${k} flowing`, async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
    t.true(last[k].every((x) => x.pods.length === 1 && !x.closed && !x.errors.length), `${k}: ${JSON.stringify(last[k])}`);
  }
  for (const node of [b, a]) {
    t.is(await stopNode(node), 0, `${node.name} stopped cleanly`);
    await sleep(500); // the clients keep sending into the gap
    await startDaemon(node);
    for (const [k, c] of Object.entries(kinds)) {
      const after = await waitFor(`${k} flowing after ${node.name}'s restart`, async () => {
        const s = await report(c);
        return s.every((x, i) => x.closed || x.errors.length || x.recv >= last[k][i].recv + 5) && s;
      }, 30000).catch(async () => report(c));
      after.forEach((x, i) => {
        t.false(x.closed, `${k} #${i} after ${node.name}'s restart: ${JSON.stringify(x)}`);
        t.deepEqual(x.errors, [], `${k} #${i} after ${node.name}'s restart`);
        t.deepEqual(x.pods, last[k][i].pods, `${k} #${i} stays on its pod`);
        t.true(x.recv >= last[k][i].recv + 5, `${k} #${i} answered after ${node.name}'s restart: ${JSON.stringify(x)}`);
      });
      last[k] = after;
    }
  }
  for (const c of Object.values(kinds)) c.stdin.write('stop\n');
  await del(EPS, 'to-a-1');
  await del(SVC, 'to-a');
  await del(EPS, 'to-b-1');
  await del(SVC, 'to-b');
});

// ---- dual stack across nodes ----------------------------------------------------------------------

serial('dual_stack.go across nodes: IPv6 pod to pod without SNAT, a dual-stack ClusterIP from node-a\'s pod to node-b\'s pod per family (TCP, UDP), and node-a\'s IPv6 NodePort from outside to it (masqueraded to node-a\'s IPv6 address)', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  for (const [from, to] of [[a1, b1], [b0, a0]]) {
    t.deepEqual(await until({ pod: to.name, peer: from.ip6 }, () => get(from.ns, `http://[${to.ip6}]:8080/`), 12), { pod: to.name, peer: from.ip6 }, `${from.name} → ${to.name} over IPv6`);
  }
  const vip6 = 'fd00:96::70:140', np = 31140;
  await put(SVC, service('ds-remote', {
    type: 'NodePort', clusterIP: '10.96.70.140', clusterIPs: ['10.96.70.140', vip6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', ports: [tcp({ nodePort: np, protocol: 'TCP' }), udp({ nodePort: np })],
  }));
  await put(EPS, slice('ds-remote-v4', 'ds-remote', PORTS, [on(b0)]));
  await put(EPS, { ...slice('ds-remote-v6', 'ds-remote', PORTS, [[b0.ip6, READY, 'node-b']]), addressType: 'IPv6' });
  t.deepEqual(await until({ pod: b0.name, peer: a0.ip }, () => get(a0.ns, 'http://10.96.70.140/')), { pod: b0.name, peer: a0.ip }, 'IPv4 ClusterIP');
  t.deepEqual(await until({ pod: b0.name, peer: a0.ip6 }, () => get(a0.ns, `http://[${vip6}]/`)), { pod: b0.name, peer: a0.ip6 }, 'IPv6 ClusterIP: node-b\'s pod sees the client pod\'s IPv6 address');
  t.deepEqual(await until({ pod: b0.name, from: vip6 }, () => ask(a1.ns, vip6, 53)), { pod: b0.name, from: vip6 }, 'IPv6 UDP answered from the ClusterIP');
  t.deepEqual(await until({ pod: b0.name, peer: NODES.a.ip6 }, () => get(two.ns.out, `http://[${NODES.a.ip6}]:${np}/`)), { pod: b0.name, peer: NODES.a.ip6 }, 'node-a\'s IPv6 NodePort from outside: masqueraded to node-a\'s IPv6 address');
  t.deepEqual(await until({ pod: b0.name, from: NODES.b.ip6 }, () => ask(two.ns.out, NODES.b.ip6, np)), { pod: b0.name, from: NODES.b.ip6 }, 'node-b\'s IPv6 NodePort, UDP');
  await del(EPS, 'ds-remote-v6');
  await del(EPS, 'ds-remote-v4');
  await del(SVC, 'ds-remote');
});

// ---- topology-aware routing: each node picks by its own zone and name -------------------------

serial('topology_hints.go / traffic_distribution.go across nodes: node-a in zone-a and node-b in zone-b each send their pods to the endpoints hinted for their zone (PreferClose) and for their node (PreferSameNode)', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  await two.double('PUT', '/api/v1/nodes/node-a', nodeObject(NODES.a, { 'topology.kubernetes.io/zone': 'zone-a' }));
  await two.double('PUT', '/api/v1/nodes/node-b', nodeObject(NODES.b, { 'topology.kubernetes.io/zone': 'zone-b' }));
  try {
    const vip = '10.96.70.150';
    // a0 is in zone-a but hinted for zone-b (the controller's balancing moves hints across zones)
    const hinted = (pod, zone, forZone, forNode) => ({ addresses: [pod.ip], conditions: READY, nodeName: pod.node, zone, targetRef: { kind: 'Pod', namespace: 'default', name: pod.name }, hints: { forZones: [{ name: forZone }], ...(forNode ? { forNodes: [{ name: forNode }] } : {}) } });
    await put(SVC, service('topo', cluster(vip, [tcp()], { trafficDistribution: 'PreferClose' })));
    await put(EPS, { ...slice('topo-1', 'topo', PORTS.slice(0, 1), []), endpoints: [hinted(a0, 'zone-a', 'zone-b'), hinted(a1, 'zone-a', 'zone-a'), hinted(b0, 'zone-b', 'zone-b')] });
    t.deepEqual(await until([a1.name], () => pods(a0.ns, `http://${vip}/`)), [a1.name], 'node-a (zone-a): the endpoint hinted for zone-a');
    t.deepEqual(await until([a0.name, b0.name], () => pods(b1.ns, `http://${vip}/`)), [a0.name, b0.name], 'node-b (zone-b): those hinted for zone-b, one of them on node-a');
    await put(SVC, service('topo', cluster(vip, [tcp()], { trafficDistribution: 'PreferSameNode' })));
    await put(EPS, { ...slice('topo-1', 'topo', PORTS.slice(0, 1), []), endpoints: [hinted(a0, 'zone-a', 'zone-a', 'node-a'), hinted(b0, 'zone-b', 'zone-b', 'node-b'), hinted(b1, 'zone-b', 'zone-b', 'node-b')] });
    t.deepEqual(await until([a0.name], () => pods(a1.ns, `http://${vip}/`)), [a0.name], 'PreferSameNode on node-a: node-a\'s endpoint');
    t.deepEqual(await until([b0.name, b1.name], () => pods(b0.ns, `http://${vip}/`)), [b0.name, b1.name], 'on node-b: node-b\'s');
    await del(EPS, 'topo-1');
    await del(SVC, 'topo');
  } finally {
    await two.double('PUT', '/api/v1/nodes/node-a', nodeObject(NODES.a));
    await two.double('PUT', '/api/v1/nodes/node-b', nodeObject(NODES.b));
  }
});

// ---- path MTU discovery across nodes ----------------------------------------------------------

// node-b's pod link is narrower (1280) than the path to it: a DF datagram from node-a's pod through
// the ClusterIP crosses node-a (DNAT) and the bridge and is too big for node-b's pod port; node-b
// answers fragmentation needed quoting the translated packet, node-a turns the quote back into the
// client's own packet (to the ClusterIP), and the client learns the path MTU.
serial('path MTU discovery across nodes: a DF datagram through the ClusterIP too big for node-b\'s pod link gets fragmentation needed back at the client on node-a, IPv4 and IPv6; the client learns 1280 and a datagram that fits is answered', async (t) => {
  const { b } = two.nodes;
  const [a0] = two.nodes.a.pods;
  const [, b1] = b.pods;
  const setMtu = (mtu) => {
    two.lab.exec(b.ns.dp, 'ip', ['link', 'set', 'dev', b1.port, 'mtu', String(mtu)]);
    two.lab.exec(b1.ns, 'ip', ['link', 'set', 'dev', b1.ifname, 'mtu', String(mtu)]);
  };
  setMtu(1280);
  t.teardown(() => setMtu(1500));
  t.is(await until(1280, async () => (await api(b, 'GET', `/api/v1/ports/${b1.name}`)).json?.mtu), 1280, 'node-b\'s wdp took the pod link\'s MTU');
  const vip6 = 'fd00:96::70:160';
  await put(SVC, service('pmtu', { ...cluster('10.96.70.160', [udp()]), clusterIPs: ['10.96.70.160', vip6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }));
  await put(EPS, slice('pmtu-v4', 'pmtu', PORTS.slice(1), [on(b1)]));
  await put(EPS, { ...slice('pmtu-v6', 'pmtu', PORTS.slice(1), [[b1.ip6, READY, 'node-b']]), addressType: 'IPv6' });
  for (const [fam, vip] of [[4, '10.96.70.160'], [6, vip6]]) {
    t.is(await until(b1.name, async () => (await ask(a0.ns, vip, 53))?.pod ?? null), b1.name, `IPv${fam}: programmed`);
    const r = await pmtuProbe(two.lab, a0.ns, vip, 53);
    t.log(`IPv${fam}`, JSON.stringify(r));
    t.like(r, fam === 4 ? { origin: 2, type: 3, code: 4, info: 1280, errno: EMSGSIZE } : { origin: 3, type: 2, code: 0, info: 1280, errno: EMSGSIZE }, `IPv${fam}: the ICMP error reached the client`);
    t.is(r.pmtu, 1280, `IPv${fam}: the client learnt the path MTU`);
    t.is(r.secondBig, EMSGSIZE, `IPv${fam}: a second big datagram is refused by the client's kernel`);
    t.is(r.smallReply, 1200 - (fam === 4 ? 28 : 48) + `${b1.name}:`.length, `IPv${fam}: a datagram that fits is echoed`);
  }
  await del(EPS, 'pmtu-v6');
  await del(EPS, 'pmtu-v4');
  await del(SVC, 'pmtu');
});

// ---- terminating endpoints per node -------------------------------------------------------------

// service.go "should fallback to local terminating endpoints when there are no ready endpoints with
// externalTrafficPolicy=Local" / "... internalTrafficPolicy=Local": each node falls back to its own
// serving-terminating endpoints only, whatever is ready on the other node; its healthCheckNodePort
// says 503 (no ready local endpoint) while the node port still serves.
serial('service.go "should fallback to local terminating endpoints when there are no ready endpoints with externalTrafficPolicy=Local / internalTrafficPolicy=Local" across nodes: node-b\'s only local endpoint terminating is still used by node-b (outside clients and its pods), not node-a\'s ready one; node-b\'s health check 503', async (t) => {
  const [a0] = two.nodes.a.pods;
  const [b0, b1] = two.nodes.b.pods;
  const np = 31170, hc = 32170;
  await put(SVC, service('fallback-local', cluster('10.96.70.170', [tcp({ nodePort: np })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local', healthCheckNodePort: hc })));
  await put(EPS, slice('fallback-local-1', 'fallback-local', PORTS.slice(0, 1), [on(a0), on(b0, TERMINATING)]));
  t.deepEqual(await until([b0.name], () => pods(two.ns.out, `http://${NODES.b.ip}:${np}/`, 8)), [b0.name], 'eTP Local via node-b: its terminating endpoint');
  t.is((await get(two.ns.out, `http://${NODES.b.ip}:${np}/`)).peer, OUTSIDE, 'the client address kept');
  t.deepEqual(await pods(two.ns.out, `http://${NODES.a.ip}:${np}/`, 8), [a0.name], 'via node-a: its ready endpoint');
  t.deepEqual(await until([503, 0], () => health(two.ns.out, NODES.b.ip, hc)), [503, 0], 'node-b\'s health check: no ready local endpoint');
  t.deepEqual(await health(two.ns.out, NODES.a.ip, hc), [200, 1], 'node-a\'s: one');
  t.deepEqual(await until([b0.name], () => pods(b1.ns, 'http://10.96.70.170/', 8)), [b0.name], 'iTP Local, a pod on node-b: the local terminating endpoint');
  t.deepEqual(await pods(two.nodes.a.pods[1].ns, 'http://10.96.70.170/', 8), [a0.name], 'a pod on node-a: node-a\'s ready one');
  // no longer serving: node-b has nothing left
  await put(EPS, slice('fallback-local-1', 'fallback-local', PORTS.slice(0, 1), [on(a0), on(b0, { ready: false, serving: false, terminating: true })]));
  t.deepEqual(await until({ error: 'timeout' }, () => get(two.ns.out, `http://${NODES.b.ip}:${np}/`), 10), { error: 'timeout' }, 'node-b\'s node port drops once its endpoint stops serving');
  t.deepEqual(await get(b1.ns, 'http://10.96.70.170/'), { error: 'timeout' }, 'and its pods get nothing (iTP Local)');
  await del(EPS, 'fallback-local-1');
  await del(SVC, 'fallback-local');
});

// ---- fragmented UDP across nodes -------------------------------------------------------------

// networking.go "should be able to handle large requests: udp" across nodes: the client's kernel
// fragments a 3000-byte datagram; the translating node sends every fragment (the later ones by the
// first fragment's flow) to the other node, which routes them to its pod untouched; the pod's
// fragmented answer comes back through both nodes and is translated back fragment by fragment.
serial('networking.go "should be able to handle large requests: udp" across nodes: a 3000-byte datagram, fragmented, through the ClusterIP to node-b\'s pod (IPv4 and IPv6) and through node-b\'s NodePort to node-a\'s pod (masqueraded), answered whole', async (t) => {
  const [a0, a1] = two.nodes.a.pods;
  const [b0] = two.nodes.b.pods;
  const vip6 = 'fd00:96::70:190', np = 31190;
  const big = 'x'.repeat(3000);
  await put(SVC, service('frag', { ...cluster('10.96.70.190', [udp({ nodePort: np })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' }), clusterIPs: ['10.96.70.190', vip6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }));
  await put(EPS, slice('frag-v4', 'frag', PORTS.slice(1), [on(b0)]));
  await put(EPS, { ...slice('frag-v6', 'frag', PORTS.slice(1), [[b0.ip6, READY, 'node-b']]), addressType: 'IPv6' });
  const bigAsk = async (ns, host, port) => {
    const r = await udpAsk(two, ns, host, port, big, { timeoutMs: 1500 });
    return r.reply ? `${r.reply.split(':')[0]} ${r.reply.length} from ${r.from}` : JSON.stringify(r);
  };
  t.is(await until(`${b0.name} 3007 from 10.96.70.190`, () => bigAsk(a1.ns, '10.96.70.190', 53), 12), `${b0.name} 3007 from 10.96.70.190`, 'IPv4 ClusterIP, node-a\'s pod to node-b\'s');
  t.is(await until(`${b0.name} 3007 from ${vip6}`, () => bigAsk(a1.ns, vip6, 53), 12), `${b0.name} 3007 from ${vip6}`, 'IPv6 ClusterIP');
  await put(EPS, slice('frag-v4', 'frag', PORTS.slice(1), [on(a0)]));
  t.is(await until(`${a0.name} 3007 from ${NODES.b.ip}`, () => bigAsk(two.ns.out, NODES.b.ip, np), 12), `${a0.name} 3007 from ${NODES.b.ip}`, 'node-b\'s NodePort from outside to node-a\'s pod, masqueraded by node-b');
  await del(EPS, 'frag-v6');
  await del(EPS, 'frag-v4');
  await del(SVC, 'frag');
});

// ---- a shared segment that floods unicast frames ------------------------------------------------

// A switch floods a unicast frame whose destination it has not learnt (or has aged out) to every
// port, so a node's uplink also receives frames addressed to the other node's MAC. The kernel's
// IP stack ignores them (PACKET_OTHERHOST); neither may a node's wdp translate or route them:
// node-a would masquerade the LB IP traffic routed to node-b as well, the endpoint would answer
// both copies and the client see two answers (a duplicate UDP reply; a second SYN-ACK that
// resets the connection). The bridge in hub mode (ageing_time 0: nothing learnt, every frame
// flooded) makes that the rule.
/** The flood scenario on topology T (its kit k): see above. */
async function floodScenario(t, T, k) {
  const { a, b } = T.nodes;
  const [a0] = a.pods;
  const [b0] = b.pods;
  const lb = '203.0.113.180';
  await k.put(SVC, service('flood', { ...cluster('10.96.70.180', [tcp({ nodePort: 31180 }), udp({ nodePort: 31180 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), lbIP: lb }));
  await k.put(EPS, slice('flood-1', 'flood', PORTS, [on(a0)]));
  routeVia(T, T.ns.out, `${lb}/32`, NODES.b.ip);
  t.deepEqual(await k.until({ pod: a0.name, peer: NODES.b.ip }, () => get(T.ns.out, `http://${lb}/`)), { pod: a0.name, peer: NODES.b.ip }, 'programmed (the bridge still learning)');
  must('ip', ['-n', T.ns.lan, 'link', 'set', 'br0', 'type', 'bridge', 'ageing_time', '0']);
  t.teardown(() => { run('ip', ['-n', T.ns.lan, 'link', 'set', 'br0', 'type', 'bridge', 'ageing_time', '30000']); });
  await sleep(300);
  const r = await httpMany(T, T.ns.out, `http://${lb}/`, 12, { timeoutMs: 2000 });
  t.deepEqual(r.map((x) => x.error ?? `${x.pod} via ${x.peer}`), Array(12).fill(`${a0.name} via ${NODES.b.ip}`), 'every GET answered once, through node-b');
  // every answer that comes within 1.5 s of the first (a duplicate from the other node would), the
  // first waited for up to 10 s (a loaded machine can take longer than 1.5 s to answer at all)
  const udpReplies = await T.lab.execAsync(T.ns.out, process.execPath, ['-e', `
    const s = require('dgram').createSocket('udp4'); const got = [];
    const done = () => { console.log(JSON.stringify(got)); process.exit(0); };
    s.on('message', (m, r) => { got.push(String(m).split(':')[0] + ' from ' + r.address); if (got.length === 1) setTimeout(done, 1500); });
    s.send('hostname', 53, ${JSON.stringify(lb)}); setTimeout(done, 10000);`], { timeoutMs: 20000 });
  t.deepEqual(JSON.parse(udpReplies.stdout.trim() || '[]'), [`${a0.name} from ${lb}`], 'one UDP datagram, one answer');
  t.deepEqual(await flows(a, 'flood'), [], 'node-a translated none of the frames addressed to node-b');
  t.deepEqual(await get(a0.ns, `http://${b0.ip}:8080/`), { pod: b0.name, peer: a0.ip }, 'pod to pod across nodes, untouched');
  await k.del(EPS, 'flood-1');
  await k.del(SVC, 'flood');
}

serial('a segment that floods unicast frames (a bridge learning nothing): each node\'s wdp takes only the frames addressed to its MAC — the LB IP routed to node-b is translated by node-b alone (one answer per request, TCP and UDP), pod to pod across nodes still untouched', async (t) => {
  await floodScenario(t, two, { put, del, until });
});

serial('the same with AF_XDP uplinks (their XDP program leaves frames for other MACs to the kernel)', async (t) => {
  const T = await buildTwoNodes({ kind: 'tnx', uplink: 'afxdp' });
  t.teardown(() => destroyTwoNodes(T));
  for (const n of Object.values(T.nodes)) {
    const ports = (await api(n, 'GET', '/api/v1/ports')).json?.items ?? [];
    t.is(ports.find((p) => p.name === 'uplink')?.kind, 'native-afxdp', `${n.name}'s uplink is AF_XDP: ${JSON.stringify(ports.find((p) => p.name === 'uplink'))}`);
  }
  await floodScenario(t, T, kit(() => T, () => T.double));
});
