// The watcher follows the cluster's ServiceCIDR objects (networking.k8s.io/v1), as kube-proxy's
// nftables proxier does for its "drop traffic to unallocated ClusterIPs" rule: listed and watched
// through the same informer as Services (resourceVersion, 410 Gone and re-list), every CIDR of
// both families given to the daemon's node config with node.serviceCIDRs, on every change; an
// API server that does not serve them (404) leaves node.serviceCIDRs alone, logged once, and
// everything else works. (The packets: kube-e2e-servicecidrs.)
import test from 'ava';
import { combineServiceCIDRs, serviceCIDRsOf } from '../dist/src/kube/service-cidrs.js';
import { apiService, apiSlice, apiNode, startKube, until } from './lib/kube-fixture.js';

const cidrObject = (name, cidrs) => ({ metadata: { name }, spec: { cidrs } });
const last = (k) => k.serviceCIDRUpdates.at(-1);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

test('ServiceCIDRs: every CIDR (both families) beside node.serviceCIDRs, after the first list and on every change; a re-list after 410 Gone drops one deleted meanwhile', async (t) => {
  const k = await startKube(t, {
    configuredServiceCIDRs: ['10.96.0.0/16'],
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('servicecidrs', cidrObject('kubernetes', ['10.96.0.0/12', 'fd00:96::/112']));
    },
  });
  await until(() => same(last(k), ['10.96.0.0/12', 'fd00:96::/112']), { what: 'the listed ServiceCIDR (the configured /16 is inside it)' });
  k.double.create('servicecidrs', cidrObject('extra', ['10.200.0.0/24']));
  await until(() => same(last(k), ['10.200.0.0/24', '10.96.0.0/12', 'fd00:96::/112']), { what: 'a ServiceCIDR created at runtime (the objects by name)' });
  k.double.update('servicecidrs', cidrObject('extra', ['10.200.0.0/24', 'fd00:200::/120']));
  await until(() => same(last(k), ['10.200.0.0/24', 'fd00:200::/120', '10.96.0.0/12', 'fd00:96::/112']), { what: 'its IPv6 CIDR added' });
  k.double.delete('servicecidrs', null, 'kubernetes');
  await until(() => same(last(k), ['10.96.0.0/16', '10.200.0.0/24', 'fd00:200::/120']), { what: 'one deleted: the configured CIDR stays' });
  t.deepEqual(k.watcher.serviceCIDRs(), ['10.96.0.0/16', '10.200.0.0/24', 'fd00:200::/120']);
  // the history is gone and the watches expire while "extra" is deleted: a re-list sees it gone
  const lists = k.double.stats.byResource.servicecidrs;
  k.double.freezeWatches();
  k.double.delete('servicecidrs', null, 'extra');
  k.double.compact();
  k.double.expireWatches();
  await until(() => same(last(k), ['10.96.0.0/16']), { what: 'the deletion seen by the re-list' });
  t.true(k.double.stats.byResource.servicecidrs > lists, 're-listed');
  t.true(k.double.stats.watchFrom.servicecidrs.some((rv) => rv !== '' && rv !== '0'), 'watches resume from a resourceVersion');
  const n = k.serviceCIDRUpdates.length;
  k.double.create('services', apiService('web', '10.96.1.1'));
  await until(() => k.compiler.getService('default', 'web'), { what: 'a Service synced' });
  t.is(k.serviceCIDRUpdates.length, n, 'other objects do not call it again');
});

test('an API server without ServiceCIDRs (404): node.serviceCIDRs alone, logged once while the informer keeps retrying; Services and slices are programmed as ever', async (t) => {
  const k = await startKube(t, {
    configuredServiceCIDRs: ['10.96.0.0/12'],
    double: { serviceCIDRs: false },
    informer: { backoffInitialMs: 20, backoffMaxMs: 40 },
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', apiService('web', '10.96.1.1'));
      d.create('endpointslices', apiSlice('web-1', 'web', ['10.244.1.10']));
    },
  });
  await until(() => same(last(k), ['10.96.0.0/12']), { what: 'the configured service CIDRs' });
  await until(() => k.compiler.getSlice('default', 'web-1'), { what: 'the slice programmed' });
  await until(() => k.watcher.informers.serviceCIDRs.stats.errors >= 4, { what: 'a few retries' });
  const said = k.lines.filter((l) => /does not serve ServiceCIDRs/.test(l.msg));
  t.is(said.length, 1, 'logged once');
  t.is(k.lines.filter((l) => l.msg === 'list/watch failed; restarting').length, 0, 'not logged as a failure');
  t.is(k.serviceCIDRUpdates.length, 1);
  t.is(k.watcher.health.healthy(), true);
});

test('combining: node.serviceCIDRs first, then the cluster\'s, a CIDR another one holds left out, at most 16 (the rest reported); invalid entries ignored', (t) => {
  t.deepEqual(combineServiceCIDRs(['10.96.0.0/16', '10.97.0.0/16'], ['10.96.0.0/12', '10.97.0.0/16', 'fd00::/64', 'fd00::/112']).cidrs, ['10.96.0.0/12', 'fd00::/64']);
  t.deepEqual(combineServiceCIDRs(['10.96.0.0/12'], ['10.96.0.0/12']).cidrs, ['10.96.0.0/12']);
  const many = Array.from({ length: 20 }, (_, i) => `10.${200 + i}.0.0/16`);
  const r = combineServiceCIDRs(['10.96.0.0/12'], many);
  t.is(r.cidrs.length, 16);
  t.is(r.cidrs[0], '10.96.0.0/12');
  t.deepEqual(r.left, many.slice(15));
  const of = serviceCIDRsOf([cidrObject('b', ['10.2.0.0/16', 'nonsense']), cidrObject('a', ['10.1.0.0/16', 'FD00:0::/64', '10.2.0.0/16'])]);
  t.deepEqual(of.cidrs, ['10.1.0.0/16', 'fd00::/64', '10.2.0.0/16'], 'by object name, canonical, each once');
  t.deepEqual(of.invalid, ['b: "nonsense"']);
});
