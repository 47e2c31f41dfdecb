// Two Services claiming one external or LoadBalancer address:port/protocol, through the watcher
// (src/kube/) and the API-server double into an in-thread core. externalIPs are user-set in any
// namespace and the API server does not check them against each other; kube-proxy keeps both
// Services (kubernetes#69599). wdp serves the tuple for the older Service (creationTimestamp, then
// namespace/name: src/compiler/external-claims.ts) and everything else of both: the younger one's
// cluster IP, node ports and other external frontends, with one warning per version naming both.
// The winner does not depend on arrival order, a re-list or a restart; when the holder goes the
// other serves the tuple at once.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { startKube, until, apiService, apiSlice, traceTo, watchOpen } from './lib/kube-fixture.js';

const NODE_IP = '192.168.100.2';
const LB = '203.0.113.9';
const nodeConfig = {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: [NODE_IP], routes: [{ prefix: '0.0.0.0/0', port: 0, nextHopMac: '02:00:00:00:00:fe', localMac: '02:00:00:00:00:01' }] },
};
// the holder: a LoadBalancer in namespace "victim"; the other: a NodePort in "other" whose
// externalIPs repeat the LB IP (port 80 clashes, port 81 does not) and add one of its own
const victim = () => apiService('web', '10.96.50.1', {
  ns: 'victim', type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30950 }],
  status: { loadBalancer: { ingress: [{ ip: LB }] } },
});
const victimSlice = () => apiSlice('web-1', 'web', ['10.244.50.1'], { ns: 'victim' });
const squatter = () => apiService('squat', '10.96.51.2', {
  ns: 'other', type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30951 }, { name: 'alt', port: 81, targetPort: 8080, nodePort: 30952 }],
  extra: { externalIPs: [LB, '198.51.100.8'] },
});
const squatterSlice = () => ({ ...apiSlice('squat-1', 'squat', ['10.244.51.2'], { ns: 'other' }), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 8080, protocol: 'TCP' }] });

/** Creates both in the double, the squatter first (so arrival order would favour it), and dates
 * the victim a year earlier: the victim ranks first. */
function seedBoth(d, { victimToo = true } = {}) {
  d.create('services', squatter()); d.create('endpointslices', squatterSlice());
  if (victimToo) seedVictim(d);
}
function seedVictim(d) {
  d.create('services', victim()); d.create('endpointslices', victimSlice());
  d.state.services.get('victim/web').metadata.creationTimestamp = '2020-01-01T00:00:00Z';
}

async function servedApart(t, dp, lbTo, what = '') {
  t.is((await traceTo(dp, LB, 80)).backend?.addr, lbTo, `${what}LB:80, the tuple both claim`);
  t.is((await traceTo(dp, '10.96.50.1', 80)).backend?.addr, '10.244.50.1', `${what}the victim cluster IP`);
  t.is((await traceTo(dp, '10.96.51.2', 80)).backend?.addr, '10.244.51.2', `${what}the other Service cluster IP`);
  t.is((await traceTo(dp, NODE_IP, 30951)).backend?.addr, '10.244.51.2', `${what}the other Service node port`);
  t.is((await traceTo(dp, LB, 81)).backend?.addr, '10.244.51.2', `${what}LB:81, a port only the other Service has`);
  t.is((await traceTo(dp, '198.51.100.8', 80)).backend?.addr, '10.244.51.2', `${what}the other Service's own external IP`);
}

const withheldWarnings = (k) => k.lines.filter((l) => l.level === 40 && l.object === 'Service/other/squat' && /external frontends not served/.test(l.msg));

for (const [order, together] of [['both listed at once', true], ['the holder arriving over the watch after the other', false]]) {
  test(`${order}: the older Service serves LB:80, the other everything else; one warning naming both; a re-list keeps the winner; the holder deleted, the other serves it`, async (t) => {
    const k = await startKube(t, { configuredAddresses: [NODE_IP], seed: (d) => seedBoth(d, { victimToo: together }) });
    await k.cp.core.apply([nodeConfig]);
    await until(() => k.compiler.getService('other', 'squat'), { what: 'the first sync' });
    if (!together) {
      await until(async () => (await traceTo(k.dp, LB, 80)).backend?.addr === '10.244.51.2', { what: 'the other Service serving LB:80 alone' });
      seedVictim(k.double);
      // (the watch delivered the victim with the double's own creationTimestamp, before the patch:
      // an update carries the patched one, as the API would have it from the start)
      k.double.apply('services', { ...victim(), metadata: { ...victim().metadata, labels: { app: 'web', v: '2' } } });
    }
    await until(() => k.compiler.getSlice('victim', 'web-1') && k.compiler.getService('victim', 'web')?.raw.metadata.creationTimestamp === '2020-01-01T00:00:00Z', { what: 'the holder programmed' });
    await until(async () => (await traceTo(k.dp, LB, 80)).backend?.addr === '10.244.50.1', { what: 'LB:80 to the holder' });
    await servedApart(t, k.dp, '10.244.50.1');
    t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
    const warned = withheldWarnings(k);
    t.is(warned.length, 1, 'one warning');
    t.regex(warned[0]?.msg ?? '', /203\.0\.113\.9:80\/TCP \(held by Service victim\/web\)/);
    t.deepEqual(warned[0]?.frontends, [{ frontend: `${LB}:80/TCP`, heldBy: 'victim/web' }]);

    // a re-list: the watches expire (410), the informers list again, then a full sync
    const lists = k.double.stats.byResource.services;
    await watchOpen(k.double, 'services');
    k.double.compact();
    k.double.expireWatches();
    await until(() => k.double.stats.byResource.services > lists, { what: 'a re-list' });
    const full = k.watcher.sync.stats.full;
    k.watcher.sync.requestFull();
    await until(() => k.watcher.sync.stats.full > full, { what: 'a full sync after the re-list' });
    await servedApart(t, k.dp, '10.244.50.1', 'after the re-list: ');
    t.is(withheldWarnings(k).length, 1, 'no second warning for the same version');

    // the holder goes: the other Service serves the tuple, without a re-list
    k.double.delete('services', 'victim', 'web');
    await until(async () => (await traceTo(k.dp, LB, 80)).backend?.addr === '10.244.51.2', { what: 'LB:80 to the other Service' });
    t.is((await traceTo(k.dp, '10.96.51.2', 80)).backend?.addr, '10.244.51.2');
    t.true(k.lines.some((l) => l.object === 'Service/other/squat' && /served again/.test(l.msg)), 'said so');
  });
}

test('a restart keeps the winner: the saved state decides as the API does, before and after the first sync', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'wdp-claims-state-'));
  const double = new ApiServerDouble();
  await double.listen();
  t.teardown(async () => { await double.close(); rmSync(stateDir, { recursive: true, force: true }); });
  seedBoth(double);
  const first = await startKube(t, { existing: double, stateDir, configuredAddresses: [NODE_IP] });
  await first.cp.core.apply([nodeConfig]);
  await until(() => first.compiler.getService('victim', 'web') && first.compiler.getSlice('other', 'squat-1') && first.compiler.getSlice('victim', 'web-1'), { what: 'first run programmed' });
  await servedApart(t, first.dp, '10.244.50.1', 'first run: ');
  await first.stop();
  double.failRequests(1000, 503, 'list'); // the API is unreachable at first: the saved state alone
  const second = await startKube(t, { existing: double, stateDir, configuredAddresses: [NODE_IP] });
  t.truthy(second.compiler.getService('other', 'squat'), 'restored before any list');
  await servedApart(t, second.dp, '10.244.50.1', 'restored: ');
  double.failures = [];
  await until(() => second.watcher.sync.stats.full >= 1, { what: 'the first sync after the restart' });
  await servedApart(t, second.dp, '10.244.50.1', 'after the first sync: ');
  t.deepEqual(second.watcher.sync.skippedObjects(), []);
});

test('a Service saved without its creationTimestamp (by an older wdp) is programmed again at the next full sync: its age ranks it', async (t) => {
  const { serviceForModel } = await import('../dist/src/kube/objects.js');
  const k = await startKube(t, { seed: (d) => { d.create('services', victim()); } });
  await until(() => k.compiler.getService('victim', 'web')?.raw.metadata.creationTimestamp, { what: 'the first sync' });
  // what an older wdp stored: the same resourceVersion, no creationTimestamp
  const raw = serviceForModel(k.double.get('services', 'victim', 'web'));
  delete raw.metadata.creationTimestamp;
  await k.cp.core.applyEach([raw]);
  t.is(k.compiler.getService('victim', 'web').raw.metadata.creationTimestamp, undefined);
  const full = k.watcher.sync.stats.full;
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > full, { what: 'a full sync' });
  t.is(k.compiler.getService('victim', 'web').raw.metadata.creationTimestamp, k.double.get('services', 'victim', 'web').metadata.creationTimestamp);
});
