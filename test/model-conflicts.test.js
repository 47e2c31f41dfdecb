// Cross-object address rules (src/model/conflicts.ts), on the index alone: IPv4 by value, IPv6 and
// other text by text, every address of an endpoint, and the state's objects the batch replaces.
import test from 'ava';
import { AddressIndex, refKey } from '../dist/src/model/conflicts.js';
import { validateAll } from '../dist/src/model/schema.js';

const svc = (name, ips) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'ns', name }, spec: { clusterIPs: ips, ipFamilies: ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')), ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] } });
const slice = (name, type, addrs) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { namespace: 'ns', name, labels: { 'kubernetes.io/service-name': 'x' } }, addressType: type, endpoints: addrs.map((a) => ({ addresses: Array.isArray(a) ? a : [a] })) });

function index(state) {
  const objs = validateAll(state);
  const idx = new AddressIndex({
    node: () => null, services: () => objs.filter((o) => o.kind === 'Service'),
    slices: () => objs.filter((o) => o.kind === 'EndpointSlice'),
    // (any order: the counts do not depend on it; an error names a slice in key order, from slices())
    eachSlice: () => objs.filter((o) => o.kind === 'EndpointSlice').reverse(), sliceCount: () => objs.filter((o) => o.kind === 'EndpointSlice').length,
  });
  idx.reset();
  return { idx, objs };
}
const fields = (errs) => errs.map((e) => e.message);

test('an endpoint address that is a cluster IP is refused, whichever of its addresses and family, in the batch or the state', (t) => {
  const { idx } = index([svc('a', ['10.96.0.1', 'fd00::1'])]);
  const batch = validateAll([svc('b', ['10.96.0.2']), slice('s4', 'IPv4', ['10.0.0.1', ['10.0.0.2', '10.96.0.1'], '10.96.0.2']), slice('s6', 'IPv6', ['fd00::2', 'FD00:0::1'])]);
  t.deepEqual(fields(idx.check(batch, new Map(), new Set(), null)), [
    'EndpointSlice ns/s4: endpoints[1].addresses[1]: Invalid value: "10.96.0.1": is the cluster IP of Service ns/a',
    'EndpointSlice ns/s4: endpoints[2].addresses[0]: Invalid value: "10.96.0.2": is the cluster IP of Service ns/b',
    'EndpointSlice ns/s6: endpoints[1].addresses[0]: Invalid value: "fd00::1": is the cluster IP of Service ns/a',
  ]);
});

test('a cluster IP the batch takes from a Service it replaces or removes is free, and the index follows applied changes', (t) => {
  const { idx, objs } = index([svc('a', ['10.96.0.1'])]);
  const moved = validateAll([svc('a', ['10.96.0.9']), slice('s', 'IPv4', ['10.96.0.1'])]);
  t.deepEqual(idx.check(moved, new Map([[refKey('Service', 'ns/a'), objs[0]]]), new Set(), null), []);
  t.deepEqual(idx.check(validateAll([slice('s', 'IPv4', ['10.96.0.1'])]), new Map(), new Set([refKey('Service', 'ns/a')]), null), []);
  idx.update([objs[0]], [moved[0]]);
  t.deepEqual(idx.check(validateAll([slice('s', 'IPv4', ['10.96.0.1'])]), new Map(), new Set(), null), []);
  t.is(idx.check(validateAll([slice('s', 'IPv4', ['10.96.0.9'])]), new Map(), new Set(), null).length, 1);
});

test('a cluster IP that is an endpoint address in the state is refused unless the batch replaces that slice', (t) => {
  const { idx, objs } = index([slice('s', 'IPv4', ['10.0.0.5', ['10.0.0.6', '10.0.0.7']])]);
  t.deepEqual(fields(idx.check(validateAll([svc('b', ['10.0.0.7'])]), new Map(), new Set(), null)),
    ['Service ns/b: spec.clusterIPs[0]: Invalid value: "10.0.0.7": is the address of an endpoint (pod) in EndpointSlice ns/s']);
  const emptied = validateAll([slice('s', 'IPv4', ['10.0.0.5'])]);
  t.deepEqual(idx.check([...validateAll([svc('b', ['10.0.0.7'])]), ...emptied], new Map([[refKey('EndpointSlice', 'ns/s'), objs[0]]]), new Set(), null), []);
});

test('a slice is skipped only when its address range holds no cluster IP; the range covers every address', (t) => {
  const [s] = validateAll([slice('r', 'IPv4', [['10.0.0.9', '10.200.0.1'], '10.0.0.1', '010.0.0.2'])]);
  t.is(s.v4Low, 0x0a000001);
  t.is(s.v4High, 0x0ac80001);
  t.is(validateAll([slice('r6', 'IPv6', ['fd00::1'])])[0].v4Low, -1);
  const { idx } = index([svc('a', ['10.96.0.5'])]);
  t.deepEqual(idx.check([s], new Map(), new Set(), null), []); // straddles 10.96.0.5, holds no cluster IP
  const hit = validateAll([slice('h', 'IPv4', ['10.0.0.1', ['10.0.0.2', '10.200.0.1'], '10.96.0.5'])]);
  t.deepEqual(fields(idx.check(hit, new Map(), new Set(), null)), ['EndpointSlice ns/h: endpoints[2].addresses[0]: Invalid value: "10.96.0.5": is the cluster IP of Service ns/a']);
  // a cluster IP the state no longer has still widens the range (it only ever grows): never too narrow
  const { idx: idx2, objs } = index([svc('b', ['10.96.0.7'])]);
  idx2.update(objs, validateAll([svc('b', ['10.0.0.1'])]));
  t.is(idx2.check(validateAll([slice('x', 'IPv4', ['10.0.0.1'])]), new Map(), new Set(), null).length, 1);
});

test('after a first sync the index holds the batch it checked, and later changes update it', (t) => {
  const { idx } = index([]);
  const batch = validateAll([svc('a', ['10.96.0.1', 'fd00::1']), svc('b', ['10.96.0.2'])]);
  t.deepEqual(idx.check(batch, new Map(), new Set(), null), []);
  idx.update([], batch);
  const probe = (a) => fields(idx.check(validateAll([slice('p', a.includes(':') ? 'IPv6' : 'IPv4', [a])]), new Map(), new Set(), null));
  t.deepEqual(probe('10.96.0.2'), ['EndpointSlice ns/p: endpoints[0].addresses[0]: Invalid value: "10.96.0.2": is the cluster IP of Service ns/b']);
  t.is(probe('fd00::1').length, 1);
  t.deepEqual(probe('10.96.0.3'), []);
  const moved = validateAll([svc('b', ['10.96.0.3'])]);
  idx.update([batch[1]], moved);
  t.deepEqual(probe('10.96.0.2'), []);
  t.is(probe('10.96.0.3').length, 1);
  t.is(probe('10.96.0.1').length, 1);
});
