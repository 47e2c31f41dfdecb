// What fieldValidation's duplicate check stands on (src/model/field-validation.ts): the body
// reader counts each element's keys as its text gives them, and validation's fast path counts
// the keys an object it keeps as it is has — equal exactly when no key was given twice, however
// the body came in chunks. And the Kubernetes schema the unknown-field check uses knows every
// field wdp keeps (so an object the fast path kept as it is has no unknown field).
import test from 'ava';
import { JsonArrayReader } from '../dist/src/model/json-array-reader.js';
import { validateObject, fastPathKeys } from '../dist/src/model/schema.js';
import { countKeys, objectFields } from '../dist/src/model/field-validation.js';

const SVC = {
  apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'a', name: 'web', labels: { app: 'web', 'x/y': 'z' }, annotations: { 'wdp.io/maglev-table-size': '509', note: 'a:b' }, uid: 'u', resourceVersion: '1', generation: 2, creationTimestamp: 't' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilyPolicy: 'SingleStack', externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Cluster', healthCheckNodePort: 30999,
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http', nodePort: 30080 }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53, nodePort: 30053 }] },
  status: { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'VIP' }, { hostname: 'lb.example' }] } },
};
const SLICE = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: 'a', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z' } },
  endpoints: [
    { addresses: ['10.244.1.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1', zone: 'z', hostname: 'h', hints: { forZones: [{ name: 'z' }], forNodes: [{ name: 'n1' }] } },
    { addresses: ['10.244.1.6', '10.244.1.7'] },
  ],
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }],
};

test('the fast path counts every key of an object it keeps as it is, nested ones included', (t) => {
  for (const o of [SVC, SLICE]) {
    const raw = structuredClone(o);
    const v = validateObject(raw);
    t.true(v.ok && v.obj.raw === raw, `${o.kind} taken by the fast path as it is`);
    t.is(fastPathKeys(), countKeys(raw), o.kind);
    t.deepEqual(objectFields(raw, false).unknown, [], 'wdp keeps only fields Kubernetes has');
  }
});

test('every field zod keeps is a Kubernetes field (objects the fast path hands to zod)', (t) => {
  const svc = structuredClone(SVC);
  Object.assign(svc.spec, { type: 'LoadBalancer', externalIPs: ['192.0.2.9'], loadBalancerSourceRanges: ['10.0.0.0/8'], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ipFamilies: ['IPv4'] });
  const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeName: 'n', nodeAddresses: ['192.168.1.1'], nodePortAddresses: ['192.168.1.1'], nodeIPs: ['192.168.1.1'], masquerade: { ipv4: '192.168.1.1' }, hairpin: { ipv4: '169.254.1.1' },
    neighbours: [{ address: '10.244.1.5', port: 1, mac: '02:00:00:00:00:01', localMac: '02:00:00:00:00:02' }], routes: [{ prefix: '10.0.0.0/8', port: 0, nextHopMac: '02:00:00:00:00:03', localMac: '02:00:00:00:00:02' }],
    podCIDRs: ['10.244.1.0/24'], clusterCIDRs: ['10.244.0.0/16'], detectLocalMode: 'NodeCIDR', podPorts: [1], serviceProxyName: 'wdp', zone: 'z', serviceCIDRs: ['10.96.0.0/12'], masqueradeAll: true } };
  for (const o of [svc, node]) {
    const v = validateObject(o);
    t.true(v.ok, JSON.stringify(v.errors));
    t.deepEqual(objectFields(v.obj.raw, false).unknown, [], o.kind);
  }
});

test('the reader counts each element\'s keys as written, whatever the chunks: one more for a key given twice', (t) => {
  const dup = JSON.stringify(SLICE).replace('"zone":"z"', '"zone":"z","zone":"y"');
  const esc = JSON.stringify(SVC).replace('"note":"a:b"', '"note":"a:b","n\\u006fte":"c\\"d:"');
  const text = `[${JSON.stringify(SVC)},${dup}, ${esc}]`;
  const want = [countKeys(SVC), countKeys(SLICE) + 1, countKeys(SVC) + 1];
  for (const size of [1, 3, 7, 64, text.length]) {
    const r = new JsonArrayReader(text.length);
    for (let i = 0; i < text.length; i += size) r.push(Buffer.from(text.slice(i, i + size)));
    t.deepEqual([0, 1, 2].map((i) => r.keyCount(i)), want, `chunks of ${size}`);
    t.is(JSON.parse(r.elementText(1)).metadata.name, 'web-1');
    t.true(r.finish().parsed !== null);
  }
  // a List: its own members are no element's
  const list = new JsonArrayReader();
  list.push(Buffer.from(`{"kind":"List","apiVersion":"v1","items":[${JSON.stringify(SLICE)}],"metadata":{"a":1}}`));
  t.is(list.keyCount(0), countKeys(SLICE));
});
