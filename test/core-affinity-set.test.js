// sessionAffinity pins hold only while their backend is in the set the frontend selects from now
// (docs/core.md "Affinity table"). kube-proxy's service chain has one `ip saddr @affinity-<ep>`
// rule per endpoint of that chain's list (pkg/proxy/nftables/proxier.go
// writeServiceToEndpointRules): when internalTrafficPolicy or externalTrafficPolicy turns Local,
// the chain lists the local endpoints only, so a client pinned to a remote endpoint is not sent
// there again. Backend ids are shared by the frontends of a Service port whose sets differ, so the
// backend's own state cannot tell. Driven through the compiler (the real policy switch), the core
// and the reference model side by side (core = model, frame for frame).
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { runBoth, firstMismatch, MAC, L } from './lib/packets.js';

const T0 = 1_000_000;
const OPTS = { flows: 4096, batchMax: 64, affinitySlots: 1024 };
const LOCAL = '10.244.1.5', REMOTE = '10.244.2.5';
const node = () => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: ['192.168.0.1'], routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }] },
});
const svc = (spec) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' },
  spec: { type: 'NodePort', clusterIP: '10.96.0.1', sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }], ...spec },
});
const slice = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ port: 8080 }],
  endpoints: [{ addresses: [LOCAL], nodeName: 'node-a' }, { addresses: [REMOTE], nodeName: 'node-b' }],
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
};

/** The compiler, core and model over one Service; `change(spec)` re-applies the Service. */
function setup(spec, moreEndpoints = []) {
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), svc(spec), { ...slice, endpoints: [...slice.endpoints, ...moreEndpoints] }]) });
  const core = Core.create(OPTS);
  core.applyIr(c.ir);
  const model = new ReferenceModel(c.ir, OPTS);
  const change = (next) => {
    const ch = c.change({ upsert: validateAll([svc(next)]) });
    core.applyDiff(ch.diff, c.ir);
    model.setIr(c.ir);
  };
  return { c, core, model, change };
}

/** One SYN from each client to (dst, dport): core = model; the destinations and selections. */
function connect(t, s, clients, dst, dport, sport, now) {
  const frames = clients.map((src) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'TCP', src, dst, sport, dport, flags: 'S' }));
  const pairs = runBoth(s.core, s.model, frames, now, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined, 'core = model');
  return pairs.map((p) => ({ dst: p.core.verdict === 'forward' ? parseFrame(B.fromHex(p.core.hex)).dst : p.core.verdict, select: p.core.trace.select }));
}

const CLIENTS = Array.from({ length: 24 }, (_, i) => `172.20.0.${i + 1}`);

/** Pins every client through (dst, dport) under `before`, switches to `after`: the clients pinned
 * to the remote endpoint get the local one (a fresh pick), those pinned locally keep their pin
 * (unless `ownEntries`: the frontend's entries were keyed by its ClusterIP's before, see below). */
function switchCase(t, before, after, dst, dport, ownEntries = false) {
  const s = setup(before);
  const first = connect(t, s, CLIENTS, dst, dport, 40000, T0);
  const remote = CLIENTS.filter((_, i) => first[i].dst === REMOTE);
  const local = CLIENTS.filter((_, i) => first[i].dst === LOCAL);
  t.true(remote.length > 0 && local.length > 0, `both endpoints picked (${remote.length} remote, ${local.length} local)`);
  t.deepEqual(connect(t, s, remote, dst, dport, 40001, T0 + 1).map((r) => r.select), remote.map(() => L.TRSEL_AFFINITY), 'pinned before the switch');
  s.change(after);
  const moved = connect(t, s, remote, dst, dport, 40002, T0 + 2);
  t.deepEqual(moved.map((r) => r.dst), remote.map(() => LOCAL), 'a pin on an endpoint the frontend no longer selects from does not hold');
  t.deepEqual(moved.map((r) => r.select), remote.map(() => L.TRSEL_MAGLEV), 'a fresh pick');
  t.deepEqual(connect(t, s, remote, dst, dport, 40003, T0 + 3).map((r) => r.select), remote.map(() => L.TRSEL_AFFINITY), 'and the new pin holds');
  const kept = connect(t, s, local, dst, dport, 40004, T0 + 4);
  t.deepEqual(kept.map((r) => `${r.dst} ${r.select}`), local.map(() => `${LOCAL} ${ownEntries ? L.TRSEL_MAGLEV : L.TRSEL_AFFINITY}`), 'a pin on a local endpoint holds');
  return s;
}

test('internalTrafficPolicy Cluster -> Local: ClusterIP pins on a remote endpoint stop holding', (t) => {
  const s = switchCase(t, {}, { internalTrafficPolicy: 'Local' }, '10.96.0.1', 80);
  // and back to Cluster: both endpoints are selected from again (no pin is lost that still holds)
  s.change({});
  const again = connect(t, s, CLIENTS, '10.96.0.1', 80, 40005, T0 + 5);
  t.true(again.every((r) => r.dst === LOCAL && r.select === L.TRSEL_AFFINITY), 'the pins taken under Local hold under Cluster (their endpoint is in the set)');
});

test('externalTrafficPolicy Cluster -> Local (internalTrafficPolicy Local): NodePort pins on a remote endpoint stop holding', (t) => {
  switchCase(t, { internalTrafficPolicy: 'Local' }, { internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local' }, '192.168.0.1', 30080);
});

test('externalTrafficPolicy Cluster -> Local (internalTrafficPolicy Cluster): NodePort pins, shared with the ClusterIP, do not move a client to a remote endpoint; local ones hold', (t) => {
  // the NodePort's and the ClusterIP's entries are the port's (keyed by the ClusterIP frontend)
  // under either policy: under Local the NodePort follows a pin into its set (the local endpoint)
  // only, a client pinned to the remote one picks a local one and is pinned to it
  const s = switchCase(t, {}, { externalTrafficPolicy: 'Local' }, '192.168.0.1', 30080);
  // the ClusterIP spreads over both: every pin holds there, the moved clients' on the local
  // endpoint (one entry per client: the latest pick; docs/core.md "sessionAffinity per service port")
  const cip = connect(t, s, CLIENTS, '10.96.0.1', 80, 40006, T0 + 6);
  t.deepEqual(cip.map((r) => `${r.dst} ${r.select}`), CLIENTS.map(() => `${LOCAL} ${L.TRSEL_AFFINITY}`), 'ClusterIP pins hold');
});

// kube-proxy's chains of a port all consult the same per-endpoint affinity sets
// (writeServiceToEndpointRules): with externalTrafficPolicy Local a client pinned through the
// ClusterIP to an endpoint of this node stays on it through the NodePort; pinned to a remote one,
// the NodePort's local chain does not consult that endpoint's set and picks among its own
// (docs/core.md known differences (6), closed).
test('externalTrafficPolicy Local: a pin taken through the ClusterIP holds through the NodePort when its endpoint is local, and never sends the NodePort to a remote endpoint', (t) => {
  const s = setup({ externalTrafficPolicy: 'Local' });
  const first = connect(t, s, CLIENTS, '10.96.0.1', 80, 44000, T0);
  const remote = CLIENTS.filter((_, i) => first[i].dst === REMOTE), local = CLIENTS.filter((_, i) => first[i].dst === LOCAL);
  t.true(remote.length > 0 && local.length > 0, `both endpoints picked (${remote.length} remote, ${local.length} local)`);
  t.deepEqual(connect(t, s, local, '192.168.0.1', 30080, 44001, T0 + 1).map((r) => `${r.dst} ${r.select}`), local.map(() => `${LOCAL} ${L.TRSEL_AFFINITY}`),
    'pinned to the local endpoint through the ClusterIP: the same endpoint through the NodePort');
  t.deepEqual(connect(t, s, remote, '192.168.0.1', 30080, 44002, T0 + 2).map((r) => `${r.dst} ${r.select}`), remote.map(() => `${LOCAL} ${L.TRSEL_MAGLEV}`),
    'pinned to the remote endpoint: the NodePort picks among its local endpoints');
  t.deepEqual(connect(t, s, CLIENTS, '10.96.0.1', 80, 44003, T0 + 3).map((r) => `${r.dst} ${r.select}`), CLIENTS.map(() => `${LOCAL} ${L.TRSEL_AFFINITY}`),
    'and the ClusterIP follows the latest pin');
});

test('both traffic policies Local: the NodePort and the ClusterIP share the pins (keyed through the ClusterPolicy frontend)', (t) => {
  const s = setup({ externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local' });
  const fronts = [...s.c.ir.frontends.values()];
  const cip = fronts.find((f) => f.kind === 'ClusterIP'), policy = fronts.find((f) => f.kind === 'ClusterPolicy');
  t.is(policy.clusterFront, cip.id);
  t.truthy(policy.flags & L.FEF_AFFINITY_SHARED);
  // a third, local endpoint: the pins spread over two
  const s2 = setup({ externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local' }, [{ addresses: ['10.244.1.6'], nodeName: 'node-a' }]);
  const first = connect(t, s2, CLIENTS, '10.96.0.1', 80, 45000, T0);
  t.true(new Set(first.map((r) => r.dst)).size === 2, 'both local endpoints picked');
  const np = connect(t, s2, CLIENTS, '192.168.0.1', 30080, 45001, T0 + 1);
  t.deepEqual(np.map((r) => `${r.dst} ${r.select}`), first.map((r) => `${r.dst} ${L.TRSEL_AFFINITY}`), 'the same endpoint through the NodePort');
});

// kube-proxy keeps an endpoint's affinity set while some chain of the port lists the endpoint
// (allLocallyReachableEndpoints): a client pinned to a remote endpoint through the ClusterIP while
// internalTrafficPolicy is Local a while (the NodePort, policy Cluster, still lists it) goes back
// to it once the ClusterIP lists it again (docs/core.md known differences (9), closed).
test('internalTrafficPolicy Cluster -> Local -> Cluster with a NodePort (policy Cluster): a pin on a remote endpoint comes back', (t) => {
  const s = setup({});
  const first = connect(t, s, CLIENTS, '10.96.0.1', 80, 46000, T0);
  const remote = CLIENTS.filter((_, i) => first[i].dst === REMOTE);
  t.true(remote.length > 0);
  s.change({ internalTrafficPolicy: 'Local' });
  // through the NodePort (its set: both endpoints) the pin holds meanwhile
  t.deepEqual(connect(t, s, remote, '192.168.0.1', 30080, 46001, T0 + 1).map((r) => `${r.dst} ${r.select}`), remote.map(() => `${REMOTE} ${L.TRSEL_AFFINITY}`), 'the NodePort follows the pin');
  s.change({});
  t.deepEqual(connect(t, s, remote, '10.96.0.1', 80, 46002, T0 + 2).map((r) => `${r.dst} ${r.select}`), remote.map(() => `${REMOTE} ${L.TRSEL_AFFINITY}`), 'the ClusterIP too, once it lists the endpoint again');
});

test('internalTrafficPolicy Cluster -> Local -> Cluster without external IPs: no chain lists the remote endpoint meanwhile, its pins are gone', (t) => {
  const s = setup({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 8080 }] });
  const first = connect(t, s, CLIENTS, '10.96.0.1', 80, 47000, T0);
  const remote = CLIENTS.filter((_, i) => first[i].dst === REMOTE);
  t.true(remote.length > 0);
  s.change({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 8080 }], internalTrafficPolicy: 'Local' });
  s.change({ type: 'ClusterIP', ports: [{ port: 80, targetPort: 8080 }] });
  t.deepEqual(connect(t, s, remote, '10.96.0.1', 80, 47001, T0 + 1).map((r) => r.select), remote.map(() => L.TRSEL_MAGLEV), 'a fresh pick (kube-proxy deleted the set)');
});

test('frontends rewritten with their set unchanged (a new affinity timeout) keep every pin', (t) => {
  const s = setup({});
  const first = connect(t, s, CLIENTS, '10.96.0.1', 80, 41000, T0);
  s.change({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
  const again = connect(t, s, CLIENTS, '10.96.0.1', 80, 41001, T0 + 1);
  t.deepEqual(again.map((r) => r.dst), first.map((r) => r.dst), 'frontends upserted, sets unchanged: every pin holds');
  t.true(again.every((r) => r.select === L.TRSEL_AFFINITY));
});

// kube-proxy deletes the affinity sets of a Service port without ClientIP affinity at once
// (syncProxyRules: sets outside activeAffinitySets), so affinity turned off and on again, or a
// Service deleted and created again, starts without pins. The compiler hands freed ids out again
// (first in, first out): a re-created Service gets its old frontend and backend ids back, and the
// entries keyed by them would otherwise hold again for the rest of their timeout.
test('sessionAffinity turned off and on again: no pin of before holds', (t) => {
  const s = setup({});
  connect(t, s, CLIENTS, '10.96.0.1', 80, 42000, T0);
  t.true(connect(t, s, CLIENTS, '10.96.0.1', 80, 42001, T0 + 1).every((r) => r.select === L.TRSEL_AFFINITY), 'pinned');
  s.change({ sessionAffinity: 'None' });
  connect(t, s, CLIENTS, '10.96.0.1', 80, 42002, T0 + 2);
  s.change({});
  const again = connect(t, s, CLIENTS, '10.96.0.1', 80, 42003, T0 + 3);
  t.deepEqual(again.map((r) => r.select), CLIENTS.map(() => L.TRSEL_MAGLEV), 'every client picks afresh');
  t.true(connect(t, s, CLIENTS, '10.96.0.1', 80, 42004, T0 + 4).every((r) => r.select === L.TRSEL_AFFINITY), 'and is pinned again');
});

test('a Service deleted and created again (its ids handed out again): no pin of before holds', (t) => {
  const s = setup({});
  const before = new Map([...s.c.ir.frontends].map(([id, f]) => [id, f.kind]));
  connect(t, s, CLIENTS, '10.96.0.1', 80, 43000, T0);
  t.true(connect(t, s, CLIENTS, '10.96.0.1', 80, 43001, T0 + 1).every((r) => r.select === L.TRSEL_AFFINITY), 'pinned');
  const apply = (ch) => { s.core.applyDiff(ch.diff, s.c.ir); s.model.setIr(s.c.ir); };
  apply(s.c.change({ remove: [{ kind: 'Service', namespace: 'shop', name: 'web' }] }));
  t.is(s.c.ir.frontends.size, 0);
  apply(s.c.change({ upsert: validateAll([svc({})]) }));
  t.deepEqual(new Map([...s.c.ir.frontends].map(([id, f]) => [id, f.kind])), before, 'the same frontend ids again');
  const again = connect(t, s, CLIENTS, '10.96.0.1', 80, 43002, T0 + 2);
  t.deepEqual(again.map((r) => r.select), CLIENTS.map(() => L.TRSEL_MAGLEV), 'every client picks afresh');
});
