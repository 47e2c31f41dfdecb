// One address in two slices (or twice in one) with different conditions: kube-proxy's
// endpointslicecache (addEndpoints) lets a copy that is not terminating replace a terminating one —
// "the pod network reuses the IP from a terminating pod before the Pod object is fully deleted ...
// we want to prefer the running pod over the terminating one" — conditions, node and hints
// together. Taking the best state of the copies and the first copy's node instead would send a
// new pod that is not ready yet traffic as the old pod's serving-terminating fallback, and make
// the new pod "local" by the old pod's node.
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import * as L from '../dist/assembly/layout.js';

const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'] } };
const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }], ...spec } });
const slice = (name, endpoints) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, endpoints, ports: [{ name: 'http', port: 8080 }],
});
const OLD_POD = { ready: false, serving: true, terminating: true };      // draining
const NEW_POD = { ready: false, serving: false, terminating: false };    // starting, not ready yet

function compile(...raws) {
  const c = new Compiler();
  c.change({ upsert: validateAll(raws) });
  const fronts = [...c.ir.frontends.values()];
  return { c, fronts, kind: (k) => fronts.find((f) => f.kind === k), backs: [...c.ir.backends.values()] };
}

for (const [order, a, b] of [['terminating copy first', OLD_POD, NEW_POD], ['terminating copy last', NEW_POD, OLD_POD]]) {
  test(`an address reused by a pod that is not ready yet is that pod's (${order}): no endpoint, rejected`, (t) => {
    const { kind, backs } = compile(node, svc({}), slice('web-a', [{ addresses: ['10.244.1.7'], conditions: a }]), slice('web-b', [{ addresses: ['10.244.1.7'], conditions: b }]));
    t.is(backs.length, 1);
    t.is(backs[0].state, L.BES_NOT_SERVING, 'the new pod\'s conditions, not the draining one\'s');
    const cip = kind('ClusterIP');
    t.deepEqual(cip.backends, []);
    t.is(cip.flags & (L.FEF_FALLBACK | L.FEF_POLICY_DROP), 0, 'no endpoint at all: rejected (kube-proxy\'s no-endpoint reject)');
  });
}

test('once the new pod is ready it serves; a terminating copy never takes the address back', (t) => {
  const { kind, backs } = compile(node, svc({}),
    slice('web-a', [{ addresses: ['10.244.1.7'], conditions: { ready: true } }]),
    slice('web-b', [{ addresses: ['10.244.1.7'], conditions: OLD_POD }]));
  t.is(backs[0].state, L.BES_READY);
  t.is(kind('ClusterIP').backends.length, 1);
});

test('the node comes with the copy that wins: a new pod on another node is not local (externalTrafficPolicy Local)', (t) => {
  const { kind } = compile(node,
    svc({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
    slice('web-a', [{ addresses: ['10.244.1.7'], nodeName: 'node-a', conditions: OLD_POD }, { addresses: ['10.244.2.9'], nodeName: 'node-b' }]),
    slice('web-b', [{ addresses: ['10.244.1.7'], nodeName: 'node-b', conditions: { ready: true } }]));
  const np = kind('NodePort');
  t.deepEqual(np.backends, [], 'no endpoint on node-a: the draining pod there was replaced by one on node-b');
  t.true((np.flags & L.FEF_POLICY_DROP) !== 0, 'endpoints elsewhere: outside traffic dropped');
  t.is(kind('ClusterIP').backends.length, 2);
});

test('two copies alike keep the best state (deterministic)', (t) => {
  const { backs } = compile(node, svc({}),
    slice('web-a', [{ addresses: ['10.244.1.7'], conditions: { ready: false } }]),
    slice('web-b', [{ addresses: ['10.244.1.7'], conditions: { ready: true } }]));
  t.is(backs[0].state, L.BES_READY);
});

// kube-proxy keeps one copy whole (addEndpoints replaces the map entry): which of two copies alike
// wins depends on its slice map's order, but its result is always one copy's conditions with that
// copy's node and hints — never one copy's state with another's node
for (const [what, worse, better] of [
  ['neither terminating', { ready: false }, { ready: true }],
  ['both terminating', { ready: false, serving: false, terminating: true }, { ready: false, serving: true, terminating: true }],
]) {
  test(`two copies alike (${what}): the best copy wins whole, its node with its state`, (t) => {
    const { kind, backs } = compile(node,
      svc({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }),
      slice('web-a', [{ addresses: ['10.244.1.7'], nodeName: 'node-b', conditions: worse }]),
      slice('web-b', [{ addresses: ['10.244.1.7'], nodeName: 'node-a', conditions: better }]));
    t.is(backs.length, 1);
    t.deepEqual(kind('NodePort').backends, [backs[0].id], 'the better copy is on node-a: local');
  });
}
