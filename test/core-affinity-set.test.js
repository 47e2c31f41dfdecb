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
function setup(spec) {
  const c = new Compiler();
  c.change({ upsert: validateAll([node(), svc(spec), slice]) });
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

test('externalTrafficPolicy Cluster -> Local (internalTrafficPolicy Cluster): NodePort pins, shared with the ClusterIP before, do not move a client to a remote endpoint', (t) => {
  // with both policies Cluster the NodePort keyed its entries by the ClusterIP frontend
  // (FEF_AFFINITY_SHARED); under Local it keeps its own (docs/core.md known differences), so every
  // client picks afresh among the local endpoints once
  const s = switchCase(t, {}, { externalTrafficPolicy: 'Local' }, '192.168.0.1', 30080, true);
  // the ClusterIP still spreads over both: its pins (shared with the NodePort before) hold
  const cip = connect(t, s, CLIENTS, '10.96.0.1', 80, 40006, T0 + 6);
  t.true(cip.every((r) => r.select === L.TRSEL_AFFINITY), 'ClusterIP pins hold');
  t.true(cip.some((r) => r.dst === REMOTE));
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
