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
// a LoadBalancer with externalTrafficPolicy Local as the API server writes it: node ports, a
// healthCheckNodePort, the traffic policies, the load balancer's status
const lbService = () => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb', namespace: 'default' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], ipFamilyPolicy: 'SingleStack',
    externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Cluster', healthCheckNodePort: 32100, sessionAffinity: 'None',
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }, { name: 'dns', protocol: 'TCP', port: 53, targetPort: 53, nodePort: 30053 }] },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.20', ipMode: 'VIP' }] } },
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
  ['metadata', 'namespace'], ['spec', 'ipFamilies'], ['spec', 'ipFamilyPolicy'], ['spec', 'ports'], ['spec', 'sessionAffinity'], ['spec', 'unknownField'], ['spec'],
  // healthCheckNodePort: kept by the model, valid only on a LoadBalancer with externalTrafficPolicy Local
  ['spec', 'healthCheckNodePort'], ['spec', 'healthCheckNodePort'], ['spec', 'externalTrafficPolicy'],
  // fields the schema does not know, at every level: pruned the same way on both paths
  ['spec', 'ports', 0, 'appProtocol'], ['metadata', 'managedFields'], ['metadata', 'uid'], ['selector'], ['spec', 'selector']];
const lbPaths = [['spec', 'type'], ['spec', 'healthCheckNodePort'], ['spec', 'healthCheckNodePort'], ['spec', 'externalTrafficPolicy'],
  ['spec', 'externalTrafficPolicy'], ['spec', 'internalTrafficPolicy'], ['spec', 'ports', 0, 'nodePort'], ['spec', 'ports', 1, 'nodePort'],
  ['spec', 'ports', 1, 'protocol'], ['spec', 'ports', 1, 'port'], ['status'], ['status', 'loadBalancer'], ['status', 'loadBalancer', 'ingress'],
  ['status', 'loadBalancer', 'ingress', 0, 'ip'], ['status', 'loadBalancer', 'ingress', 0, 'ipMode'], ['status', 'loadBalancer', 'ingress', 0, 'hostname'],
  ['status', 'conditions'], ['spec', 'externalIPs'], ['spec', 'allocateLoadBalancerNodePorts']];
const slicePaths = [['addressType'], ['endpoints', 0, 'addresses'], ['endpoints', 0, 'addresses', 0], ['endpoints', 0, 'conditions'],
  ['endpoints', 1, 'conditions', 'ready'], ['ports', 0, 'port'], ['ports', 0, 'protocol'], ['ports', 0, 'name'], ['metadata', 'labels'],
  ['endpoints', 0, 'nodeName'], ['endpoints'], ['ports'], ['extra'],
  ['endpoints', 0, 'hints'], ['endpoints', 1, 'conditions', 'future'], ['ports', 0, 'appProtocol'], ['metadata', 'ownerReferences']];
const values = fc.constantFrom(undefined, null, 0, -1, 65536, 80, 1.5, '', 'x', 'TCP', 'udp', 'SCTP', 'None', 'NodePort', 'ClientIP',
  '10.96.0.11', '10.96.0.300', 'fd00::10', [], ['10.96.0.10', 'fd00::10'], ['IPv4', 'IPv6'], {}, true, 'IPv6', 'FQDN', [{}],
  'SingleStack', 'PreferDualStack', 'RequireDualStack', 'LoadBalancer', 'Local', 'Cluster', 32000,
  30080, 32100, 'VIP', 'Proxy', '127.0.0.1', '203.0.113.21', [{ ip: '203.0.113.22' }], [{ hostname: 'lb.example' }, { ip: 'fd00::20', ipMode: 'Proxy' }], [{ ip: '10.0.0.1', x: 1 }]);

function mutate(obj, path, value) {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) { if (o == null || typeof o !== 'object') return obj; o = o[path[i]]; }
  if (o == null || typeof o !== 'object') return obj;
  if (value === undefined) delete o[path[path.length - 1]]; else o[path[path.length - 1]] = value;
  return obj;
}

for (const [name, base, paths] of [['Service', service, servicePaths], ['LoadBalancer Service', lbService, lbPaths], ['EndpointSlice', slice, slicePaths]]) {
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

// Addresses in every form the API server stores (leading-zero IPv4, upper-case and long IPv6,
// IPv4-mapped, several per endpoint, duplicates), hints and node names: the fast path — which
// shares canonical address lists with the object and builds a slice's endpoints while it checks
// them — and zod give the same model; validation never changes the object it was given; and the
// object kept (what GET returns) validates to the same model again.
const v4Forms = ['10.244.1.11', '10.244.1.011', '010.244.001.011', '10.96.0.10', '10.096.0.010', '0.0.0.0', '255.255.255.255', '10.244.1.256'];
const v6Forms = ['fd00::11', 'FD00::0011', 'fd00:0:0:0:0:0:0:11', '::ffff:10.0.0.1', 'fe80::1%eth0', 'fd00::96:10', 'FD00::96:A'];
const addrList = fc.array(fc.constantFrom(...v4Forms, ...v6Forms), { minLength: 1, maxLength: 3 });
const addrPaths = [
  [['endpoints', 0, 'addresses'], addrList], [['endpoints', 1, 'addresses'], addrList],
  [['endpoints', 0, 'addresses', 0], fc.constantFrom(...v4Forms, ...v6Forms)],
  [['addressType'], fc.constantFrom('IPv4', 'IPv6')],
  [['endpoints', 0, 'hints'], fc.constantFrom({ forZones: [{ name: 'z1' }] }, { forNodes: [{ name: 'n1' }, { name: 'n2' }] }, { forZones: [{ name: '' }] }, { forZones: [{ name: 'z1', x: 1 }] })],
  [['endpoints', 1, 'nodeName'], fc.constantFrom('n1', '', null)],
  [['endpoints', 0, 'conditions'], fc.constantFrom(null, {}, { ready: null, serving: false, terminating: true })],
];
const cipPaths = [
  [['spec', 'clusterIP'], fc.constantFrom(...v4Forms, ...v6Forms)],
  [['spec', 'clusterIPs'], fc.array(fc.constantFrom(...v4Forms, ...v6Forms), { minLength: 1, maxLength: 2 })],
];
for (const [name, base, paths] of [['EndpointSlice', slice, addrPaths], ['Service', service, cipPaths]]) {
  test(`${name}: address forms give one model on both paths, the object given is not changed and the one kept validates to it again`, (t) => {
    let fast = 0;
    fc.assert(fc.property(fc.array(fc.oneof(...paths.map(([p, v]) => v.map((x) => [p, x]))), { minLength: 1, maxLength: 3 }), (muts) => {
      const raw = base();
      for (const [p, v] of muts) mutate(raw, p, structuredClone(v));
      if (name === 'Service' && Array.isArray(raw.spec.clusterIPs) && muts.some(([p]) => p[1] === 'clusterIPs')) raw.spec.clusterIP = raw.spec.clusterIPs[0];
      const given = structuredClone(raw);
      if (fastPathData(structuredClone(raw))) fast++;
      const a = validateObject(given);
      t.deepEqual(given, raw, 'validation leaves the object it was given as it was');
      t.deepEqual(a, validateObjectZod(structuredClone(raw)), JSON.stringify(raw));
      if (a.ok) {
        const again = validateObject(JSON.parse(JSON.stringify(a.obj.raw)));
        t.deepEqual(again, a, 'the object kept validates to the same model');
      }
    }), { numRuns: 1500 });
    t.true(fast > 200, `the fast path was exercised (${fast} times)`);
  });
}

// The LoadBalancer / NodePort rules one by one (the fuzz above may miss a pair of mutations): each
// case gives the same answer on both paths, and the valid ones are taken by the fast path.
test('LoadBalancer and NodePort Services: node ports, traffic policies, healthCheckNodePort and status give the same answer on both paths', (t) => {
  const lb = (f) => { const o = lbService(); f(o.spec, o); return o; };
  const cases = [
    ['as written', lb(() => {}), true],
    ['healthCheckNodePort 0 (unset, not kept)', lb((s) => { s.healthCheckNodePort = 0; }), true],
    ['healthCheckNodePort null', lb((s) => { s.healthCheckNodePort = null; }), true],
    ['healthCheckNodePort 65535', lb((s) => { s.healthCheckNodePort = 65535; }), true],
    ['healthCheckNodePort 65536', lb((s) => { s.healthCheckNodePort = 65536; }), false],
    ['healthCheckNodePort -1', lb((s) => { s.healthCheckNodePort = -1; }), false],
    ['healthCheckNodePort "32100"', lb((s) => { s.healthCheckNodePort = '32100'; }), false],
    ['healthCheckNodePort with externalTrafficPolicy Cluster', lb((s) => { s.externalTrafficPolicy = 'Cluster'; }), false],
    ['healthCheckNodePort without externalTrafficPolicy', lb((s) => { delete s.externalTrafficPolicy; }), false],
    ['healthCheckNodePort on a NodePort', lb((s) => { s.type = 'NodePort'; }), false],
    ['a NodePort, Local, without healthCheckNodePort', lb((s) => { s.type = 'NodePort'; delete s.healthCheckNodePort; }), true],
    ['a NodePort without a nodePort', lb((s) => { s.type = 'NodePort'; delete s.healthCheckNodePort; delete s.ports[1].nodePort; }), false],
    ['a LoadBalancer without nodePorts (allocateLoadBalancerNodePorts false)', lb((s) => { delete s.ports[0].nodePort; delete s.ports[1].nodePort; }), true],
    ['a duplicate nodePort', lb((s) => { s.ports[1].nodePort = 30080; }), false],
    ['the same nodePort, another protocol', lb((s) => { s.ports[1].nodePort = 30080; s.ports[1].protocol = 'UDP'; }), true],
    ['nodePort on a ClusterIP', lb((s) => { s.type = 'ClusterIP'; delete s.healthCheckNodePort; delete s.externalTrafficPolicy; }), false],
    ['externalTrafficPolicy on a ClusterIP', lb((s) => { s.type = 'ClusterIP'; delete s.healthCheckNodePort; s.ports.forEach((p) => delete p.nodePort); }), false],
    ['internalTrafficPolicy Local', lb((s) => { s.internalTrafficPolicy = 'Local'; }), true],
    ['internalTrafficPolicy local', lb((s) => { s.internalTrafficPolicy = 'local'; }), false],
    ['ingress: a loopback address', lb((s, o) => { o.status.loadBalancer.ingress[0].ip = '127.0.0.1'; }), false],
    ['ingress: ipMode Proxy and a hostname', lb((s, o) => { o.status.loadBalancer.ingress.push({ hostname: 'lb.example', ipMode: 'Proxy' }); }), true],
    ['ingress: a field the schema does not know (pruned by zod)', lb((s, o) => { o.status.loadBalancer.ingress[0].ports = [{ port: 80 }]; }), true],
    ['status: conditions (pruned by zod)', lb((s, o) => { o.status.conditions = []; }), true],
    ['status: loadBalancer empty', lb((s, o) => { o.status = { loadBalancer: {} }; }), true],
  ];
  for (const [what, raw, valid] of cases) {
    const a = validateObject(structuredClone(raw));
    t.deepEqual(a, validateObjectZod(structuredClone(raw)), what);
    t.is(a.ok, valid, `${what}: ${JSON.stringify(a.errors ?? [])}`);
    // the common shapes take the fast path (status with unknown fields: zod prunes them)
    if (valid && !/pruned/.test(what)) t.truthy(fastPathData(structuredClone(raw)), `${what}: the fast path`);
  }
  const kept = validateObject(lbService()).obj;
  t.is(kept.healthCheckNodePort, 32100);
  t.false('healthCheckNodePort' in validateObject(lb((s) => { s.healthCheckNodePort = 0; })).obj, '0 is not kept');
});
