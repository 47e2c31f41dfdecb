// Random batches of Services, EndpointSlices and a NodeConfig (test helper) whose Services clash:
// cluster IPs, node ports, external IPs and LB ingress addresses come from small pools, names
// repeat (an object listed twice), slices may be unlabelled or name a Service never generated
// (s5), Services may have no slice. `model` validates raw objects into model objects.
import fc from 'fast-check';
import { validateObject } from '../../dist/src/model/schema.js';

const CIPS4 = ['10.96.0.1', '10.96.0.2', '10.96.0.3'];
const CIPS6 = ['fd00:96::1', 'fd00:96::2'];
// (index 2: the Service's own cluster IP, which claims no external tuple of its own)
const EXT = ['198.51.100.1', '198.51.100.2'];
const LB = ['192.0.2.1', '192.0.2.2'];
const PORTS = [
  { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
  { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 },
];

export const svcArb = fc.record({
  i: fc.integer({ min: 0, max: 4 }),
  type: fc.constantFrom('ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer', 'Headless'),
  cip: fc.integer({ min: 0, max: CIPS4.length - 1 }),
  v6: fc.option(fc.integer({ min: 0, max: CIPS6.length - 1 }), { freq: 3 }),
  ports: fc.subarray([0, 1], { minLength: 1 }),
  nodePorts: fc.array(fc.constantFrom(30001, 30002), { minLength: 2, maxLength: 2 }),
  ext: fc.subarray([0, 1, 2]),
  lb: fc.subarray([0, 1]),
  // the http port's number: a change keeps the frontend's id under another service-map key
  httpPort: fc.constantFrom(80, 81),
  // both Local: a ClusterPolicy frontend (outside the service map) per cluster IP and port
  local: fc.boolean(),
  ranges: fc.subarray(['203.0.113.0/24', '2001:db8:1::/48']),
});
function serviceRaw(g) {
  const metadata = { name: `s${g.i}`, namespace: 'default' };
  const ports = g.ports.map((k, n) => ({ ...PORTS[k], ...(k === 0 ? { port: g.httpPort } : {}), ...(g.type === 'NodePort' || g.type === 'LoadBalancer' ? { nodePort: g.nodePorts[n] } : {}) }));
  if (g.type === 'Headless') return { apiVersion: 'v1', kind: 'Service', metadata, spec: { clusterIP: 'None', ports } };
  const ips = [CIPS4[g.cip], ...(g.v6 !== null ? [CIPS6[g.v6]] : [])];
  const external = g.type === 'NodePort' || g.type === 'LoadBalancer' || g.ext.length > 0;
  const spec = {
    type: g.type, clusterIP: ips[0], clusterIPs: ips, ports, ...(g.ext.length ? { externalIPs: g.ext.map((k) => (k === 2 ? ips[0] : EXT[k])) } : {}),
    ...(g.local ? { internalTrafficPolicy: 'Local', ...(external ? { externalTrafficPolicy: 'Local' } : {}) } : {}),
    ...(g.type === 'LoadBalancer' && g.ranges.length ? { loadBalancerSourceRanges: g.ranges } : {}),
  };
  const status = g.type === 'LoadBalancer' && g.lb.length ? { loadBalancer: { ingress: g.lb.map((k) => ({ ip: LB[k] })) } } : undefined;
  return { apiVersion: 'v1', kind: 'Service', metadata, spec, ...(status ? { status } : {}) };
}
export const sliceArb = fc.record({
  j: fc.integer({ min: 0, max: 4 }),
  // s5 is never generated: its slices name a Service the batch does not hold; null: unlabelled
  svc: fc.option(fc.integer({ min: 0, max: 5 }), { freq: 5 }),
  v6: fc.boolean(),
  endpoints: fc.array(fc.record({ a: fc.integer({ min: 1, max: 4 }), ready: fc.boolean(), terminating: fc.boolean(), node: fc.constantFrom('node-a', 'node-b', undefined) }), { maxLength: 4 }),
  ports: fc.subarray([0, 1]),
});
function sliceRaw(g) {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `es${g.j}`, namespace: 'default', ...(g.svc !== null ? { labels: { 'kubernetes.io/service-name': `s${g.svc}` } } : {}) },
    addressType: g.v6 ? 'IPv6' : 'IPv4',
    endpoints: g.endpoints.map((e) => ({ addresses: [g.v6 ? `fd00:244::${e.a}` : `10.244.0.${e.a}`], conditions: { ready: e.ready, serving: true, terminating: e.terminating }, ...(e.node ? { nodeName: e.node } : {}) })),
    ports: g.ports.map((k) => [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53 }][k]),
  };
}
const nodeRaw = (addrs) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeName: 'node-a', nodeAddresses: addrs } });
export const objectArb = fc.oneof(
  { weight: 4, arbitrary: svcArb.map(serviceRaw) },
  { weight: 4, arbitrary: sliceArb.map(sliceRaw) },
  { weight: 1, arbitrary: fc.subarray(['192.168.0.1', 'fd00:1::1']).map(nodeRaw) },
);
export const removeArb = fc.oneof(
  fc.integer({ min: 0, max: 4 }).map((i) => ({ kind: 'Service', namespace: 'default', name: `s${i}` })),
  fc.integer({ min: 0, max: 4 }).map((j) => ({ kind: 'EndpointSlice', namespace: 'default', name: `es${j}` })),
);
export const stepArb = fc.record({ upsert: fc.array(objectArb, { maxLength: 3 }), remove: fc.array(removeArb, { maxLength: 2 }) });

export function model(raws) {
  return raws.map((raw) => {
    const r = validateObject(structuredClone(raw));
    if (!r.ok) throw new Error(`generator produced an invalid object: ${JSON.stringify(r.errors)}`);
    return r.obj;
  });
}
