// The validation fast path (hand-written checks for common well-formed objects) must never differ
// from zod: same acceptance, same normalised object, and invalid objects always reach zod's errors.
import test from 'ava';
import fc from 'fast-check';
import { validateObject, validateObjectZod, fastPathData } from '../dist/src/model/schema.js';

const service = () => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' },
  spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'],
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns' }] },
});
const slice = () => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name: 'web-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.1.11'], conditions: { ready: true }, nodeName: 'n1' },
    { addresses: ['10.244.1.12'], conditions: { ready: false, serving: true, terminating: true } }],
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

// paths that exist in the base objects, and values that are valid somewhere or invalid everywhere
const servicePaths = [['spec', 'type'], ['spec', 'clusterIP'], ['spec', 'clusterIPs'], ['spec', 'ports', 0, 'port'],
  ['spec', 'ports', 0, 'protocol'], ['spec', 'ports', 1, 'targetPort'], ['spec', 'ports', 0, 'name'], ['metadata', 'name'],
  ['metadata', 'namespace'], ['spec', 'ipFamilies'], ['spec', 'ports'], ['spec', 'sessionAffinity'], ['spec', 'unknownField'], ['spec'],
  // fields the schema does not know, at every level: pruned the same way on both paths
  ['spec', 'ports', 0, 'appProtocol'], ['metadata', 'managedFields'], ['metadata', 'uid'], ['selector'], ['spec', 'selector']];
const slicePaths = [['addressType'], ['endpoints', 0, 'addresses'], ['endpoints', 0, 'addresses', 0], ['endpoints', 0, 'conditions'],
  ['endpoints', 1, 'conditions', 'ready'], ['ports', 0, 'port'], ['ports', 0, 'protocol'], ['ports', 0, 'name'], ['metadata', 'labels'],
  ['endpoints', 0, 'nodeName'], ['endpoints'], ['ports'], ['extra'],
  ['endpoints', 0, 'hints'], ['endpoints', 1, 'conditions', 'future'], ['ports', 0, 'appProtocol'], ['metadata', 'ownerReferences']];
const values = fc.constantFrom(undefined, null, 0, -1, 65536, 80, 1.5, '', 'x', 'TCP', 'udp', 'SCTP', 'None', 'NodePort', 'ClientIP',
  '10.96.0.11', '10.96.0.300', 'fd00::10', [], ['10.96.0.10', 'fd00::10'], ['IPv4', 'IPv6'], {}, true, 'IPv6', 'FQDN', [{}]);

function mutate(obj, path, value) {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) { if (o == null || typeof o !== 'object') return obj; o = o[path[i]]; }
  if (o == null || typeof o !== 'object') return obj;
  if (value === undefined) delete o[path[path.length - 1]]; else o[path[path.length - 1]] = value;
  return obj;
}

for (const [name, base, paths] of [['Service', service, servicePaths], ['EndpointSlice', slice, slicePaths]]) {
  test(`${name}: fast path and zod agree on every mutation`, (t) => {
    let fast = 0;
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...paths), values), { maxLength: 3 }), (muts) => {
      const raw = base();
      for (const [p, v] of muts) mutate(raw, p, structuredClone(v));
      if (fastPathData(structuredClone(raw))) fast++;
      const a = validateObject(structuredClone(raw));
      const b = validateObjectZod(structuredClone(raw));
      t.deepEqual(a, b, JSON.stringify(raw));
    }), { numRuns: 1500 });
    t.true(fast > 50, `the fast path was exercised (${fast} times)`);
  });
}
