// An EndpointSlice endpoint hinted for the zone "" (hints.forZones[].name: ""): the API server
// accepts it (a zone name is a label value: validateHints' IsValidLabelValue, which allows the
// empty value), so the model does too, with kube-proxy's meaning (topologyModeFromHints): the
// endpoint has zone hints, and "" is no node's zone, so it is hinted for none. An empty node
// hint stays refused (a node name may not be empty).
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';

const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'], zone: 'zone-a' } };
const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
const ep = (addr, hints, extra = {}) => ({ addresses: [addr], conditions: { ready: true, ...extra }, nodeName: 'node-b', hints });
const slice = (endpoints) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints,
});
const zones = (...names) => ({ forZones: names.map((name) => ({ name })) });
/** The ClusterIP frontend's backend addresses the compiler picks on `nodeConfig` for a slice of `endpoints`. */
const clusterBackends = (nodeConfig, endpoints) => {
  const c = new Compiler();
  c.change({ upsert: validateAll([nodeConfig, svc, slice(endpoints)]) });
  const f = [...c.ir.frontends.values()].find((x) => x.kind === 'ClusterIP');
  return f.backends.map((id) => c.ir.backends.get(id).addr).sort();
};

test('an empty zone hint name is accepted (fast path and full validation) and kept as the zone ""', (t) => {
  const [plain] = validateAll([slice([ep('10.244.1.7', zones(''))])]);
  t.deepEqual(plain.endpoints[0].zoneHints, ['']);
  // a field the fast path does not know sends the slice through the full validation
  const [full] = validateAll([slice([ep('10.244.1.7', zones('', 'zone-b'), { future: true })])]);
  t.deepEqual(full.endpoints[0].zoneHints, ['', 'zone-b']);
});

test('an empty node hint name is still refused', (t) => {
  const e = t.throws(() => validateAll([slice([ep('10.244.1.7', { forNodes: [{ name: '' }] })])]));
  t.regex(e.message, /hints\.forNodes\[0\]\.name/);
});

test('kube-proxy\'s meaning: an endpoint hinted "" has zone hints and is hinted for no zone', (t) => {
  const backendsOf = (endpoints) => clusterBackends(node, endpoints);
  // every ready endpoint has zone hints, one is for the node's zone: that one only
  t.deepEqual(backendsOf([ep('10.244.1.7', zones('')), ep('10.244.2.8', zones('zone-a'))]), ['10.244.2.8']);
  // none for the node's zone: every endpoint
  t.deepEqual(backendsOf([ep('10.244.1.7', zones('')), ep('10.244.2.8', zones('zone-b'))]), ['10.244.1.7', '10.244.2.8']);
});

test('a node without a zone is in the zone "" (kube-proxy\'s topologyModeFromHints reads the absent label as ""): endpoints hinted "" only, when every ready endpoint has zone hints', (t) => {
  const zoneless = { ...node, spec: { nodeAddresses: ['192.168.0.1'] } };
  const backendsOf = (endpoints) => clusterBackends(zoneless, endpoints);
  t.deepEqual(backendsOf([ep('10.244.1.7', zones('')), ep('10.244.2.8', zones('zone-a'))]), ['10.244.1.7']);
  // none hinted "": every endpoint
  t.deepEqual(backendsOf([ep('10.244.1.7', zones('zone-b')), ep('10.244.2.8', zones('zone-a'))]), ['10.244.1.7', '10.244.2.8']);
  // one without hints: every endpoint
  t.deepEqual(backendsOf([ep('10.244.1.7', zones('')), ep('10.244.2.8', undefined)]), ['10.244.1.7', '10.244.2.8']);
});
