// Objects a watch can carry that wdp cannot program (null where an object is expected, lists that
// are not lists, shapes the API server's types would not produce through a broken proxy or an
// aggregated API): the watcher keeps running, the rest of the cluster keeps being programmed, and
// each such object is skipped as invalid — counted and logged once per version — never a sync
// that throws and is retried whole, programming nothing, until the object changes.
import test from 'ava';
import pino from 'pino';
import { startKube, until, apiService, apiSlice, traceTo, watchOpen } from './lib/kube-fixture.js';
import { KubeSync } from '../dist/src/kube/sync.js';
import { nodeInfo } from '../dist/src/kube/node.js';

const quiet = pino({ level: 'silent' });

test('odd Services and EndpointSlices from the list and the watch are skipped (counted, logged once) while the good ones are programmed', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('services', apiService('good', '10.96.7.1'));
      d.create('endpointslices', apiSlice('good-1', 'good', ['10.244.7.1']));
      // a null among the load balancer's ingress entries (the conversion read i.ip of it)
      d.create('services', { metadata: { name: 'lbnull', namespace: 'default' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.7.4', clusterIPs: ['10.96.7.4'], ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] }, status: { loadBalancer: { ingress: [null, { ip: '192.0.2.10' }] } } });
      // ipFamilyPolicy asking for two families with one cluster IP
      d.create('services', { metadata: { name: 'nofam', namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: '10.96.7.2', ipFamilyPolicy: 'RequireDualStack', ports: [{ port: 80, protocol: 'TCP' }] } });
      // an FQDN slice (ignored, as kube-proxy ignores it), endpoints without conditions, null entries
      d.create('endpointslices', { metadata: { name: 'fq-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'good' } }, addressType: 'FQDN', endpoints: [{ addresses: ['example.com'] }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] });
      d.create('services', apiService('nulls', '10.96.7.3'));
      d.create('endpointslices', { metadata: { name: 'nulls-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'nulls' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.7.3'] }, null, { addresses: null }], ports: [{ name: null, port: null, protocol: null }, null] });
      d.create('services', { metadata: { name: 'specnull', namespace: 'default', labels: null, annotations: null }, spec: null });
      d.create('endpointslices', { metadata: { name: 'epsstr', namespace: 'default', labels: { 'kubernetes.io/service-name': 'good' } }, addressType: 'IPv4', endpoints: 'x', ports: 5 });
    },
  });
  await until(() => k.compiler.getService('default', 'good') && k.watcher.sync.skippedObjects().length >= 5, { what: 'the first sync, with its skips' });
  // later changes arrive over the watch, an unreadable one among them
  k.double.create('services', { metadata: { name: 'lbnull2', namespace: 'default' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.7.8', clusterIPs: ['10.96.7.8'], ports: [{ port: 80, nodePort: 30081, protocol: 'TCP' }] }, status: { loadBalancer: { ingress: [null] } } });
  k.double.create('services', apiService('later', '10.96.7.9'));
  await until(() => k.compiler.getService('default', 'later') && k.watcher.sync.skippedObjects().some((s) => s.key === 'Service/default/lbnull2'), { what: 'the watched changes' });
  t.is((await traceTo(k.dp, '10.96.7.1', 80)).backend?.addr, '10.244.7.1');
  t.is(k.watcher.sync.stats.failures, 0, 'no sync failed');
  t.false(k.lines.some((l) => /sync crashed/.test(l.msg)), 'no sync crashed');
  const skipped = Object.fromEntries(k.watcher.sync.skippedObjects().map((s) => [s.key, s]));
  for (const key of ['Service/default/lbnull', 'Service/default/lbnull2', 'Service/default/nofam', 'Service/default/specnull', 'EndpointSlice/default/nulls-1', 'EndpointSlice/default/epsstr']) {
    t.is(skipped[key]?.stage, 'invalid', key);
  }
  t.regex(skipped['Service/default/lbnull'].message, /status\.loadBalancer\.ingress\[0\]/);
  t.regex(skipped['Service/default/nofam'].message, /ipFamilyPolicy/);
  // logged once per object version, however many syncs ran meanwhile
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full >= 2, { what: 'a second full sync' });
  t.is(k.lines.filter((l) => l.object === 'Service/default/lbnull').length, 1);
  const m = await k.cp.metrics.registry.metrics();
  t.regex(m, /wdp_kube_objects_skipped\{kind="Service"\} 4/);
});

test('an object whose conversion throws is skipped with its reason; the other objects of the sync are applied', async (t) => {
  const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', resourceVersion: '1' }, spec: { clusterIP: ip, ports: [{ port: 80 }] } });
  // a shape no conversion expects: reading its spec throws
  const hostile = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hostile', namespace: 'default', resourceVersion: '2' }, get spec() { throw new TypeError('spec cannot be read'); } };
  const applied = [];
  const target = { compiler: { listServices: () => [], listSlices: () => [] }, async applyEach(raws) { applied.push(raws.map((r) => r.metadata.name)); return { skipped: [], generation: applied.length }; } };
  const services = [svc('a', '10.96.8.1'), hostile, svc('b', '10.96.8.2')];
  const sync = new KubeSync(target, { services: () => services, slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet });
  t.teardown(() => sync.stop());
  sync.start();
  for (let i = 0; i < 400 && !applied.length; i++) await new Promise((r) => setTimeout(r, 5));
  t.deepEqual(applied[0], ['a', 'b']);
  t.is(sync.stats.failures, 0);
  t.deepEqual(sync.skippedObjects(), [{ key: 'Service/default/hostile', stage: 'invalid', message: 'Service default/hostile: cannot be read: spec cannot be read' }]);
});

test('watch events of an unknown type, a BOOKMARK without a resourceVersion and an ERROR that is no Status change nothing: no re-list, later changes programmed', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('first', '10.96.9.1')); } });
  await until(() => k.compiler.getService('default', 'first'), { what: 'first sync' });
  await watchOpen(k.double, 'services');
  const rv = k.watcher.informers.services.resourceVersion;
  t.truthy(rv);
  const lists = k.double.stats.byResource.services;
  const inject = (ev) => { for (const w of k.double.watchers) if (w.resource === 'services' && w.live) k.double.write(w, ev); };
  inject({ type: 'SOMETHING', object: { kind: 'Service', metadata: { name: 'ghost', namespace: 'default', resourceVersion: '' } } });
  k.double.create('services', apiService('second', '10.96.9.2'));
  await until(() => k.compiler.getService('default', 'second'), { what: 'a later change' });
  t.falsy(k.compiler.getService('default', 'ghost'), 'an event of an unknown type added nothing');
  // the last events before the connection drops say no resourceVersion (or no usable one)
  inject({ type: 'SOMETHING', object: { kind: 'Service', metadata: { name: 'ghost', namespace: 'default' } } });
  inject({ type: 'BOOKMARK', object: { kind: 'Service', metadata: { resourceVersion: 17 } } });
  inject({ type: 'ERROR', object: { metadata: {}, message: 'not a Status' } });
  inject({ type: 'BOOKMARK', object: { kind: 'Service', metadata: {} } });
  await new Promise((r) => setTimeout(r, 300));
  t.is(k.watcher.informers.services.resourceVersion, String(k.double.rv), 'the resourceVersion of the last real event kept');
  // the watch resumes from it: no re-list
  k.double.dropWatches();
  k.double.create('services', apiService('third', '10.96.9.3'));
  await until(() => k.compiler.getService('default', 'third'), { what: 'a change after the watch resumed' });
  t.is(k.double.stats.byResource.services, lists, 'no re-list of services');
  t.not(k.double.stats.watchFrom.services.at(-1), '', 'resumed from a resourceVersion');
  // counted, and logged once per kind of problem
  t.is(k.watcher.informers.services.stats.ignoredEvents, 4);
  const ignored = k.lines.filter((l) => /a watch event was ignored/.test(l.msg)).map((l) => l.event).sort();
  t.deepEqual(ignored, ['a BOOKMARK without a resourceVersion', 'an event of unknown type "SOMETHING"']);
});

test('the Node read whatever its shape: null entries, lists that are none, are absent — the valid addresses and CIDRs still count', (t) => {
  const n = nodeInfo({
    metadata: { name: 'node-a', labels: null },
    spec: { podCIDRs: 'x', podCIDR: '10.244.1.0/24', taints: 'none' },
    status: { addresses: [null, 5, { type: 'InternalIP', address: '0.0.0.0' }, { type: 'InternalIP', address: '192.168.1.2' }, { type: 'InternalIP', address: null }, { type: 'ExternalIP', address: 'nope' }, { type: 'ExternalIP', address: 'ff02::1' }] },
  });
  t.deepEqual(n, { name: 'node-a', addresses: ['192.168.1.2'], primary: ['192.168.1.2'], podCIDRs: ['10.244.1.0/24'], zone: '', eligible: true });
  t.deepEqual(nodeInfo({ metadata: null, spec: [], status: 'x' }), { name: '', addresses: [], primary: [], podCIDRs: [], zone: '', eligible: true });
  t.deepEqual(nodeInfo(null).addresses, []);
  t.is(nodeInfo({ metadata: { name: 'n' }, spec: { podCIDRs: [null, '10.1.2.0/24'], taints: [null, { key: 'ToBeDeletedByClusterAutoscaler' }] } }).eligible, false);
});
