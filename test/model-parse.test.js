// Manifest parsing and normalisation: formats, Lists, defaults, canonical addresses.
import test from 'ava';
import { parseManifests } from '../dist/src/model/load.js';
import { validateObject, validateAll } from '../dist/src/model/schema.js';

test('YAML multi-document with Lists and empty documents flattens to objects', (t) => {
  const objs = parseManifests(`
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: a}}
- apiVersion: v1
  kind: ServiceList
  items: [{apiVersion: v1, kind: Service, metadata: {name: b}}]
---
# just a comment
---
{apiVersion: v1, kind: Service, metadata: {name: c}}
`);
  t.deepEqual(objs.map((o) => o.metadata.name), ['a', 'b', 'c']);
});

test('JSON object, array and List', (t) => {
  t.is(parseManifests('{"kind":"Service","metadata":{"name":"a"}}').length, 1);
  t.is(parseManifests('[{"kind":"Service"},{"kind":"Service"}]').length, 2);
  t.is(parseManifests('{"kind":"List","items":[{"kind":"Service"},{"kind":"EndpointSlice"}]}').length, 2);
});

test('a large JSON body: every object over the size limit is refused wherever it is, small ones pass unwalked or not', (t) => {
  const small = Array.from({ length: 12_000 }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'shop' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } }));
  // 320k numbers: 640 KB of text, counted 5 bytes each (1.6 MB) by the object size check
  const numbers = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'numbers', namespace: 'shop' }, spec: { pad: new Array(320_000).fill(0) } };
  const huge = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'huge', namespace: 'shop' }, spec: { pad: 'x'.repeat(1_600_000) } };
  const body = (x) => JSON.stringify(x);
  t.true(body(small).length > 1536 * 1024, 'the body is over one object\'s limit');
  t.is(parseManifests(body(small)).length, 12_000);
  t.is(parseManifests(body({ kind: 'List', items: [small, { kind: 'ServiceList', items: small }] })).length, 24_000);
  for (const [what, doc] of [['in an array', [...small, numbers]], ['in a List', { kind: 'List', items: [numbers, ...small] }],
    ['in a nested List', [small, { kind: 'ServiceList', items: [...small, huge] }]], ['alone', huge]]) {
    const e = t.throws(() => parseManifests(body(doc)), undefined, what);
    t.is(e.name, 'BodyLimitError', what);
    t.is(e.status, 413, what);
    t.regex(e.errors[0].message, /larger than 1572864 bytes/, what);
  }
});

test('syntax errors name the source, document and position', (t) => {
  const e = t.throws(() => parseManifests('a: 1\n---\nb: [1, 2\n', 'file.yaml'));
  t.is(e.name, 'ValidationError');
  t.regex(e.message, /^file\.yaml: document 2: cannot parse \(line \d+, column \d+\)/);
});

test('service defaults and canonical addresses', (t) => {
  const r = validateObject({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: { clusterIPs: ['FD00:0:0::0001', '10.96.0.1'], ports: [{ port: 80 }], sessionAffinity: 'ClientIP', externalIPs: ['2001:DB8::1'], loadBalancerSourceRanges: ['10.0.0.0/8', 'FD00:1::/64'] },
  });
  t.true(r.ok, JSON.stringify(r.errors));
  const s = r.obj;
  t.is(s.key, 'default/web');
  t.deepEqual(s.clusterIPs, ['fd00::1', '10.96.0.1']);
  t.deepEqual(s.families, [6, 4]);
  t.deepEqual(s.ports, [{ name: '', protocol: 'TCP', port: 80, targetPort: 80 }]);
  t.is(s.affinityTimeoutMs, 10800 * 1000);
  t.deepEqual(s.externalIPs, ['2001:db8::1']);
  t.deepEqual(s.sourceRanges, ['10.0.0.0/8', 'fd00:1::/64']);
  t.is(s.type, 'ClusterIP');
  t.false(s.externalLocal);
});

test('endpoint condition defaults follow kube-proxy (unset ready and serving = true, unset terminating = false)', (t) => {
  const r = validateObject({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'e', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'], conditions: { ready: false } }, { addresses: ['10.0.0.3'], conditions: { ready: false, serving: true, terminating: true } }],
  });
  t.true(r.ok);
  t.is(r.obj.service, 'ns/web');
  t.deepEqual(r.obj.endpoints.map((e) => [e.ready, e.serving, e.terminating]), [[true, true, false], [false, true, false], [false, true, true]]);
  t.deepEqual(r.obj.ports, []);
});

test('node config: routes sorted longest prefix first, masquerade defaults to node addresses', (t) => {
  const [n] = validateAll([{
    apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
    spec: {
      nodeAddresses: ['192.168.0.1', 'fd00::1'],
      routes: [
        { prefix: '10.0.0.0/8', port: 1, nextHopMac: '02-00-00-00-00-01', localMac: '02:00:00:00:00:AA' },
        { prefix: '10.1.0.0/16', port: 2, nextHopMac: '02:00:00:00:00:02', localMac: '02:00:00:00:00:aa' },
      ],
    },
  }]);
  t.is(n.name, 'node-a');
  t.deepEqual(n.routes.map((r) => r.prefix), ['10.1.0.0/16', '10.0.0.0/8']);
  t.is(n.routes[1].nextHopMac, '02:00:00:00:00:01');
  t.is(n.routes[1].localMac, '02:00:00:00:00:aa');
  t.is(n.snatV4, '192.168.0.1');
  t.is(n.snatV6, 'fd00::1');
  t.is(n.hairpinV4, undefined, 'no hairpin address unless given');
});

test('node config: nodePortAddresses are canonical node addresses, each one of nodeAddresses; unset is every node address', (t) => {
  const node = (spec) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1', '192.168.0.2', 'fd00::1'], ...spec } });
  const [all] = validateAll([node({})]);
  t.deepEqual(all.addresses, ['192.168.0.1', '192.168.0.2', 'fd00::1']);
  t.deepEqual(all.nodePortAddresses, all.addresses, 'absent: NodePorts on every node address (what every NodeConfig before the field meant)');
  const [some] = validateAll([node({ nodePortAddresses: ['192.168.0.1', 'FD00:0::1'] })]);
  t.deepEqual(some.nodePortAddresses, ['192.168.0.1', 'fd00::1'], 'canonical');
  t.deepEqual(some.addresses, ['192.168.0.1', '192.168.0.2', 'fd00::1'], 'the node addresses stay all of them');
  const [none] = validateAll([node({ nodePortAddresses: [] })]);
  t.deepEqual(none.nodePortAddresses, [], 'an empty list: no NodePort address');
  const msg = (spec) => t.throws(() => validateAll([node(spec)])).message;
  t.regex(msg({ nodePortAddresses: ['192.168.0.1', '192.168.0.9'] }), /spec\.nodePortAddresses\[1\]: Invalid value: "192\.168\.0\.9": must be one of spec\.nodeAddresses/);
  t.regex(msg({ nodePortAddresses: ['10.0.0.0/8'] }), /spec\.nodePortAddresses\[0\]/);
  t.regex(msg({ nodeAddresses: undefined, nodePortAddresses: ['192.168.0.1'] }), /spec\.nodePortAddresses\[0\]: .*must be one of spec\.nodeAddresses/);
});

test('node config: hairpin addresses of their family, never a node or masquerade address', (t) => {
  const node = (hairpin, masquerade) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
    spec: { nodeAddresses: ['192.168.0.1', 'fd00::1'], hairpin, ...(masquerade ? { masquerade } : {}) } });
  const [n] = validateAll([node({ ipv4: '169.254.42.1', ipv6: 'FD00:FF::42' })]);
  t.is(n.hairpinV4, '169.254.42.1');
  t.is(n.hairpinV6, 'fd00:ff::42');
  const msg = (h, m) => t.throws(() => validateAll([node(h, m)])).message;
  t.regex(msg({ ipv4: 'fd00::5' }), /spec\.hairpin\.ipv4: Invalid value: "fd00::5": must be an IPv4 address/);
  t.regex(msg({ ipv6: 'fd00:0::1' }), /spec\.hairpin\.ipv6: .*must not be a node or masquerade address/);
  t.regex(msg({ ipv4: '10.9.9.9' }, { ipv4: '10.9.9.9' }), /spec\.hairpin\.ipv4: .*must not be a node or masquerade address/);
});

test('validateAll reports the errors of every object, not just the first', (t) => {
  const e = t.throws(() => validateAll([
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' }, spec: { clusterIP: 'x', ports: [{ port: 1 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'b' }, spec: { clusterIP: '10.0.0.1', ports: [{ port: -1 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ok' }, spec: { clusterIP: '10.0.0.2', ports: [{ port: 1 }] } },
  ]));
  t.deepEqual(e.errors.map((x) => `${x.name} ${x.field}`), ['a spec.clusterIP', 'b spec.ports[0].port']);
});
