// A full compile (the first batch, from empty) refuses what the incremental path refuses, with the
// same errors in the same order, and leaves nothing behind: it checks for duplicates and clashes
// after compiling (src/compiler/compiler.ts fullCompile), a path of its own.
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';

const node = (name = 'node-a') => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name }, spec: { nodeAddresses: ['192.168.0.1'] } });
const svc = (name, ip, extra = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' },
  spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...extra } });
const slice = (name, service, addr) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { name, namespace: 'shop', ...(service ? { labels: { 'kubernetes.io/service-name': service } } : {}) },
  endpoints: [{ addresses: [addr] }], ports: [{ name: 'http', port: 8080 }] });
const good = () => [svc('a', '10.96.0.1'), slice('a-1', 'a', '10.244.0.1'), svc('b', '10.96.0.2'), slice('b-1', 'b', '10.244.0.2')];
// an unrelated service applied first: the same batch then takes the incremental path
const bystander = () => [svc('zz-other', '10.96.9.9')];

function errorsOf(c, raws) {
  try { c.change({ upsert: validateAll(raws) }); } catch (e) { return e.errors; }
  return null;
}

const cases = {
  'a Service twice': [...good(), svc('a', '10.96.0.1')],
  'a Service twice, apart in key order': [svc('m', '10.96.0.5'), ...good(), svc('m', '10.96.0.6')],
  'a slice twice in a row': [...good(), slice('a-1', 'a', '10.244.0.9'), slice('a-1', 'a', '10.244.0.9')],
  'a slice twice under two services': [...good(), slice('x-1', 'a', '10.244.0.7'), slice('x-1', 'b', '10.244.0.8')],
  'an unlabelled slice twice': [...good(), slice('u', null, '10.244.0.5'), slice('u', null, '10.244.0.6')],
  'a labelled and an unlabelled slice of one name': [...good(), slice('u', 'a', '10.244.0.5'), slice('u', null, '10.244.0.6')],
  'two NodeConfigs': [node(), ...good(), node('node-b')],
  'a cluster IP clash': [...good(), svc('c', '10.96.0.1')],
  'a node port clash, listed before its owner': [svc('n2', '10.96.0.8', { type: 'NodePort', ports: [{ name: 'http', port: 81, nodePort: 30080 }] }), ...good(),
    svc('n1', '10.96.0.7', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })],
  'a duplicate and a clash': [...good(), svc('a', '10.96.0.1'), svc('c', '10.96.0.2')],
  'slices of a service the batch does not hold, twice': [...good(), slice('o-1', 'orphan', '10.244.0.3'), slice('o-1', 'orphan', '10.244.0.4')],
};

for (const [name, raws] of Object.entries(cases)) {
  test(`from empty, ${name}: refused with the incremental path's errors, nothing kept`, (t) => {
    const inc = new Compiler({ maglevWorker: 'never' });
    inc.change({ upsert: validateAll(bystander()) });
    const want = errorsOf(inc, [...raws]);
    t.truthy(want && want.length, 'the incremental path refuses it');
    const c = new Compiler({ maglevWorker: 'never' });
    const got = errorsOf(c, raws);
    t.deepEqual(got, want);
    t.is(c.serviceCount(), 0); t.is(c.sliceCount(), 0); t.is(c.ir.frontends.size, 0); t.is(c.ir.backends.size, 0);
    // and then compiles a good batch from ids 1, 2, ... with its claims in place
    c.change({ upsert: validateAll(good()) });
    t.deepEqual(c.frontendIdsOf('shop/a'), [1]);
    t.deepEqual(c.backendIdsOf('shop/a'), [1]);
    t.truthy(errorsOf(c, [svc('c', '10.96.0.2')]), 'the claims of the full compile are kept');
  });
}

test('a clean batch from empty: model maps and claims as an incremental build leaves them', (t) => {
  const raws = [node(), ...good(), slice('u', null, '10.244.0.5'), slice('o-1', 'orphan', '10.244.0.3'), svc('np', '10.96.0.3', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })];
  const c = new Compiler({ maglevWorker: 'never' });
  c.change({ upsert: validateAll(raws) });
  t.is(c.serviceCount(), 3);
  t.is(c.sliceCount(), 4);
  t.deepEqual(c.listSlices().map((s) => s.key), ['shop/a-1', 'shop/b-1', 'shop/o-1', 'shop/u']);
  t.truthy(c.getSlice('shop', 'u'));
  t.truthy(errorsOf(c, [svc('d', '10.96.0.9', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })]), 'node port claimed');
  // the orphan slice's service arrives later and uses it
  c.change({ upsert: validateAll([svc('orphan', '10.96.0.4')]) });
  t.is(c.backendIdsOf('shop/orphan').length, 1);
});
