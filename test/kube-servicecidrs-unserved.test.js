// ServiceCIDRs the watcher has listed stay in force while a later list of them is refused (404:
// an API server that no longer serves the resource, as one of an HA pair mid-upgrade; 403: a
// ClusterRole changed): the informer's cache still holds them, as client-go's reflector keeps its
// store across list errors in kube-proxy. Before any list has succeeded, node.serviceCIDRs alone
// (kube-servicecidrs).
import test from 'ava';
import { apiNode, startKube, until, watchOpen } from './lib/kube-fixture.js';

const cidrObject = (name, cidrs) => ({ metadata: { name }, spec: { cidrs } });
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
/** The watcher with node.serviceCIDRs 10.96.0.0/16 and fast retries over a double holding `cidrs`
 * (name -> CIDRs); `seed` prepares the double further. */
const start = (t, cidrs, seed = () => {}) => startKube(t, {
  configuredServiceCIDRs: ['10.96.0.0/16'],
  informer: { backoffInitialMs: 20, backoffMaxMs: 40 },
  seed: (d) => {
    d.create('nodes', apiNode('node-a'));
    for (const [name, list] of Object.entries(cidrs)) d.create('servicecidrs', cidrObject(name, list));
    seed(d);
  },
});

test('a 404 on the ServiceCIDRs after they were listed keeps the CIDRs last listed (not node.serviceCIDRs alone); served again, they follow the API', async (t) => {
  const k = await start(t, { kubernetes: ['10.96.0.0/12'], extra: ['10.200.0.0/24'] });
  const listed = ['10.200.0.0/24', '10.96.0.0/12'];
  await until(() => same(k.serviceCIDRUpdates.at(-1), listed), { what: 'the listed ServiceCIDRs' });
  await watchOpen(k.double, 'servicecidrs');
  const errors = k.watcher.informers.serviceCIDRs.stats.errors;
  k.double.serveServiceCIDRs = false;
  k.double.expireWatches();
  await until(() => k.watcher.informers.serviceCIDRs.stats.errors >= errors + 3, { what: 'the re-lists refused (404)' });
  t.deepEqual(k.serviceCIDRUpdates.at(-1), listed, 'the CIDRs last listed stay');
  t.deepEqual(k.watcher.serviceCIDRs(), listed);
  t.true(k.lines.some((l) => /the service CIDRs stay those last listed/.test(l.msg)), 'logged');
  k.double.serveServiceCIDRs = true;
  k.double.delete('servicecidrs', null, 'extra');
  await until(() => same(k.serviceCIDRUpdates.at(-1), ['10.96.0.0/12']), { what: 'served again: the API\'s CIDRs' });
});

test('a 403 on the ServiceCIDRs (a ClusterRole without them): before the first list node.serviceCIDRs alone, logged once and counted; after a list, the CIDRs last listed stay', async (t) => {
  const k = await start(t, { kubernetes: ['10.96.0.0/12'] }, (d) => d.failRequests(4, 403, 'list', { reason: 'Forbidden' }, 'servicecidrs'));
  await until(() => same(k.serviceCIDRUpdates[0], ['10.96.0.0/16']), { what: 'node.serviceCIDRs alone while forbidden' });
  await until(() => same(k.serviceCIDRUpdates.at(-1), ['10.96.0.0/12']), { what: 'the list allowed again: the cluster\'s' });
  t.is(k.lines.filter((l) => /is forbidden/.test(l.msg)).length, 1, 'logged once');
  t.true((await k.cp.metrics.registry.getSingleMetricAsString('wdp_kube_watch_errors_total')).includes('resource="servicecidrs"'), 'counted');
  const n = k.serviceCIDRUpdates.length;
  await watchOpen(k.double, 'servicecidrs'); // else the watch it sends next is not expired, and no list follows
  k.double.failRequests(3, 403, 'list', { reason: 'Forbidden' }, 'servicecidrs');
  k.double.expireWatches();
  const errors = k.watcher.informers.serviceCIDRs.stats.errors;
  await until(() => k.watcher.informers.serviceCIDRs.stats.errors >= errors + 3, { what: 'the re-lists forbidden' });
  t.deepEqual(k.serviceCIDRUpdates.at(-1), ['10.96.0.0/12'], 'kept');
  t.is(k.serviceCIDRUpdates.length, n, 'not given again');
});
