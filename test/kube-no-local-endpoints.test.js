// kubeproxy_sync_proxy_rules_no_local_endpoints_total from the compiled state
// (src/kube/no-local-endpoints.ts): the expected counts are kube-proxy's (syncProxyRules over
// CategorizeEndpoints: a service port and family with a usable endpoint — ready, or serving and
// terminating — none of them local), and every count must agree with the FEF_POLICY_DROP flags
// the compiler put on the port's Local frontends, case by case and on random services.
import test from 'ava';
import fc from 'fast-check';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { addNoLocalEndpointPorts, noLocalCounts } from '../dist/src/kube/no-local-endpoints.js';
import * as L from '../dist/assembly/layout.js';

const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1', 'fd00:1::1'] } };
const PORTS = [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53, nodePort: 30053 }];
const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { type: 'NodePort', clusterIP: '10.96.0.5', ports: PORTS, ...spec } });
const DUAL = { clusterIPs: ['10.96.0.5', 'fd00:96::5'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' };
const slice = (name, endpoints, { family = 'IPv4', ports = [{ name: 'http', port: 8080 }] } = {}) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: family, endpoints, ports,
});
const ep = (addr, nodeName, conditions) => ({ addresses: [addr], ...(nodeName ? { nodeName } : {}), ...(conditions ? { conditions } : {}) });
const TERMINATING_SERVING = { ready: false, serving: true, terminating: true };

function compile(raws) {
  const c = new Compiler();
  c.change({ upsert: validateAll(raws) });
  return c;
}
function gauge(c) {
  const n = noLocalCounts();
  addNoLocalEndpointPorts(c, 'shop', 'web', n);
  return n;
}
/** What the compiled frontends say: per port and family, a dropping ClusterIP (internal) and any
 * dropping external frontend (external). */
function fromFlags(c) {
  const n = noLocalCounts();
  const seen = new Set();
  for (const f of c.ir.frontends.values()) {
    if (!(f.flags & L.FEF_POLICY_DROP)) continue;
    const fam = f.family === 6 ? 'IPv6' : 'IPv4', kind = f.kind === 'ClusterIP' ? 'internal' : f.kind === 'ClusterPolicy' ? null : 'external';
    const key = `${kind}|${fam}|${f.portName}`;
    if (!kind || seen.has(key)) continue;
    seen.add(key);
    n[kind][fam]++;
  }
  return n;
}
const counts = (i4, i6, e4, e6) => ({ internal: { IPv4: i4, IPv6: i6 }, external: { IPv4: e4, IPv6: e6 } });

const cases = [
  ['a local serving-terminating endpoint is the Local fallback: nothing counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a', TERMINATING_SERVING), ep('10.244.2.8', 'node-b')])], counts(0, 0, 0, 0)],
  ['a local terminating endpoint that is not serving is no fallback: counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a', { ready: false, serving: false, terminating: true }), ep('10.244.2.8', 'node-b')])], counts(0, 0, 1, 0)],
  ['a local endpoint serving but neither ready nor terminating is not usable: counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a', { ready: false, serving: true, terminating: false }), ep('10.244.2.8', 'node-b')])], counts(0, 0, 1, 0)],
  ['a local endpoint ready while terminating is ready: nothing counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a', { ready: true, terminating: true }), ep('10.244.2.8', 'node-b')])], counts(0, 0, 0, 0)],
  ['only a remote serving-terminating endpoint: usable elsewhere, counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.2.8', 'node-b', TERMINATING_SERVING)])], counts(0, 0, 1, 0)],
  ['no usable endpoint anywhere: rejected, not counted',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a', { ready: false }), ep('10.244.2.8', 'node-b', { ready: false })])], counts(0, 0, 0, 0)],
  ['internal policy only: the ClusterIP counts, the NodePort does not',
    [svc({ internalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.2.8', 'node-b')])], counts(1, 0, 0, 0)],
  ['both policies: counted as internal and as external',
    [svc({ internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.2.8', 'node-b')])], counts(1, 0, 1, 0)],
  ['per service port: the UDP port\'s endpoints are remote, the TCP port\'s local',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a')]), slice('w2', [ep('10.244.2.8', 'node-b')], { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })], counts(0, 0, 1, 0)],
  ['a slice port of the right name but another protocol serves nothing',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.2.8', 'node-b')]), slice('w2', [ep('10.244.1.7', 'node-a')], { ports: [{ name: 'http', port: 8080, protocol: 'UDP' }] })], counts(0, 0, 1, 0)],
  ['dual-stack: IPv4 has a local endpoint, IPv6 only a remote one',
    [svc({ ...DUAL, internalTrafficPolicy: 'Local', externalTrafficPolicy: 'Local' }), slice('w4', [ep('10.244.1.7', 'node-a'), ep('10.244.2.8', 'node-b')]), slice('w6', [ep('fd00:244:2::8', 'node-b')], { family: 'IPv6' })], counts(0, 1, 0, 1)],
  ['an IPv6 slice of an IPv4-only Service is no family of it (kube-proxy\'s IPv6 proxier does not know the Service)',
    [svc({ externalTrafficPolicy: 'Local' }), slice('w4', [ep('10.244.1.7', 'node-a')]), slice('w6', [ep('fd00:244:2::8', 'node-b')], { family: 'IPv6' })], counts(0, 0, 0, 0)],
];

for (const [name, raws, want] of cases) {
  test(`no-local-endpoints gauge: ${name}`, (t) => {
    const c = compile([node, ...raws]);
    t.deepEqual(gauge(c), want, 'kube-proxy\'s count');
    t.deepEqual(gauge(c), fromFlags(c), 'the compiled FEF_POLICY_DROP flags');
  });
}

test('no-local-endpoints gauge: an address listed twice counts as the copy the compiler keeps (the non-terminating one), not the local terminating copy', (t) => {
  // kube-proxy's endpointslicecache and the compiler: a copy that is not terminating replaces a
  // terminating one, whole — the address is node-b's ready endpoint, so node-a has none
  const raws = [node, svc({ externalTrafficPolicy: 'Local' }),
    slice('w1', [ep('10.244.1.7', 'node-a', TERMINATING_SERVING)]), slice('w2', [ep('10.244.1.7', 'node-b')])];
  const c = compile(raws);
  t.deepEqual(gauge(c), counts(0, 0, 1, 0));
  t.deepEqual(gauge(c), fromFlags(c));
});

test('no-local-endpoints gauge: without a node config nothing is local (the dataplane drops every Local frontend\'s traffic)', (t) => {
  const c = compile([svc({ internalTrafficPolicy: 'Local' }), slice('w1', [ep('10.244.1.7', 'node-a')])]);
  t.deepEqual(gauge(c), counts(1, 0, 0, 0));
  t.deepEqual(gauge(c), fromFlags(c));
});

test('no-local-endpoints gauge: a Service the compiler does not hold counts nothing; a ClusterIP Service is "external" only with externalIPs', (t) => {
  const c = compile([node]);
  t.deepEqual(gauge(c), counts(0, 0, 0, 0));
  const clusterIP = (spec) => svc({ type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080 }], externalTrafficPolicy: 'Local', ...spec });
  // not reachable from outside: the model refuses its externalTrafficPolicy, as the API server does
  // (so no compiled Service has a Local external policy it would not apply)
  t.throws(() => compile([node, clusterIP({}), slice('w1', [ep('10.244.2.8', 'node-b')])]), { message: /externally-accessible/ });
  // with externalIPs it is reachable from outside (kube-proxy's ExternallyAccessible): counted
  const withIPs = compile([node, clusterIP({ externalIPs: ['203.0.113.9'] }), slice('w1', [ep('10.244.2.8', 'node-b')])]);
  t.deepEqual(gauge(withIPs), counts(0, 0, 1, 0));
  t.deepEqual(gauge(withIPs), fromFlags(withIPs));
});

test('no-local-endpoints gauge agrees with the compiled FEF_POLICY_DROP flags on random services', (t) => {
  const cond = fc.constantFrom(undefined, true, false);
  const endpoint = fc.record({
    addr: fc.integer({ min: 1, max: 4 }), node: fc.constantFrom('node-a', 'node-b', undefined),
    ready: cond, serving: cond, terminating: cond,
  });
  const sliceArb = fc.record({ family: fc.constantFrom('IPv4', 'IPv6'), port: fc.constantFrom('http', 'dns'), eps: fc.array(endpoint, { maxLength: 4 }) });
  fc.assert(fc.property(
    fc.record({ internal: fc.boolean(), external: fc.boolean(), dual: fc.boolean(), withNode: fc.boolean(), slices: fc.array(sliceArb, { maxLength: 4 }) }),
    (r) => {
      const spec = { ...(r.dual ? DUAL : {}), ...(r.internal ? { internalTrafficPolicy: 'Local' } : {}), ...(r.external ? { externalTrafficPolicy: 'Local' } : {}) };
      const raws = [...(r.withNode ? [node] : []), svc(spec)];
      r.slices.forEach((s, i) => {
        const eps = s.eps.map((e) => {
          const c = {};
          for (const k of ['ready', 'serving', 'terminating']) if (e[k] !== undefined) c[k] = e[k];
          return ep(s.family === 'IPv6' ? `fd00:244::${e.addr}` : `10.244.0.${e.addr}`, e.node, Object.keys(c).length ? c : undefined);
        });
        raws.push(slice(`w${i}`, eps, { family: s.family, ports: [s.port === 'dns' ? { name: 'dns', port: 53, protocol: 'UDP' } : { name: 'http', port: 8080 }] }));
      });
      const c = compile(raws);
      const g = gauge(c), f = fromFlags(c);
      // without a node config no NodePort frontend exists to carry the external flag
      if (!r.withNode) { g.external = f.external; }
      t.deepEqual(g, f, JSON.stringify(r));
      return true;
    },
  ), { numRuns: 300, seed: 42 });
});
