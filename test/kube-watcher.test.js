// The Kubernetes watcher (src/kube/) with the real client library against the API-server double
// (test/lib/apiserver-double.js) and a control plane over an in-thread core: objects reach the
// dataplane, a broken watch resumes without losing or repeating changes, a 410 re-lists and
// removes what vanished meanwhile, bad objects are skipped while the rest apply.
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode, traceTo } from './lib/kube-fixture.js';

const svcKeys = (c) => c.listServices().map((s) => s.key).sort();
const sliceKeys = (c) => c.listSlices().map((s) => s.key).sort();

test('created, changed and deleted Services and EndpointSlices reach the dataplane', async (t) => {
  const k = await startKube(t, {
    double: { watchCache: false }, // every list is paged (a "0" list too)
    seed: (d) => {
      // 5 services: more than one list page (listPageSize 3)
      for (let i = 1; i <= 5; i++) {
        d.create('services', apiService(`s${i}`, `10.96.0.${i}`));
        d.create('endpointslices', apiSlice(`s${i}-a`, `s${i}`, [`10.244.1.${i}`]));
      }
      d.create('nodes', apiNode('node-a'));
    },
  });
  await until(() => k.compiler.serviceCount() === 5 && k.compiler.sliceCount() === 5, { what: 'initial list programmed' });
  t.true(k.double.stats.listPages > k.double.stats.lists, 'lists came in pages');
  let r = await traceTo(k.dp, '10.96.0.3', 80);
  t.is(r.frontend?.service, 'default/s3');
  t.is(r.backend?.addr, '10.244.1.3');
  t.is(r.backend?.port, 8080);
  // the model keeps a trimmed copy: no kubectl last-applied copy, no targetRef
  const raw = k.compiler.getService('default', 's3').raw;
  t.falsy(raw.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']);
  t.falsy(k.compiler.getSlice('default', 's3-a').raw.endpoints[0].targetRef);

  // change: a new endpoint, a new port; create: a sixth service; delete: s1 and its slice
  k.double.apply('endpointslices', apiSlice('s3-a', 's3', ['10.244.1.3', '10.244.2.33']));
  k.double.apply('services', apiService('s6', '10.96.0.6'));
  k.double.apply('endpointslices', apiSlice('s6-a', 's6', ['10.244.1.66']));
  k.double.delete('services', 'default', 's1');
  k.double.delete('endpointslices', 'default', 's1-a');
  await until(() => k.compiler.getService('default', 's6') && !k.compiler.getService('default', 's1') && k.compiler.getSlice('default', 's3-a')?.endpoints.length === 2, { what: 'changes programmed' });
  t.deepEqual(svcKeys(k.compiler), ['default/s2', 'default/s3', 'default/s4', 'default/s5', 'default/s6']);
  r = await traceTo(k.dp, '10.96.0.1', 80);
  t.falsy(r.frontend, 'deleted service has no frontend');
  r = await traceTo(k.dp, '10.96.0.6', 80);
  t.is(r.backend?.addr, '10.244.1.66');
  const seen = new Set();
  for (let p = 40000; p < 40040; p++) seen.add((await traceTo(k.dp, '10.96.0.3', 80, p)).backend?.addr);
  t.deepEqual([...seen].sort(), ['10.244.1.3', '10.244.2.33']);
  t.is(k.watcher.sync.stats.failures, 0);
  t.true(k.watcher.sync.stats.partial >= 1, 'changes went in partial syncs');
});

test('a watch broken mid-stream resumes from its resourceVersion: nothing lost, nothing repeated, no re-list', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('web', '10.96.1.1')); } });
  await until(() => k.compiler.serviceCount() === 1, { what: 'first sync' });
  const listsBefore = k.double.stats.byResource.endpointslices;
  const applied = [];
  const orig = k.cp.core.applyEach.bind(k.cp.core);
  k.cp.core.applyEach = (raws, removes) => { for (const x of raws) if (x.kind === 'EndpointSlice') applied.push(`${x.metadata.name}@${x.metadata.resourceVersion}`); return orig(raws, removes); };
  // 10 slices arrive over the first watch; then 10 more, and the stream is reset after the 3rd
  // of those is written: the rest are lost with the connection
  for (let i = 0; i < 10; i++) k.double.create('endpointslices', apiSlice(`web-${i}`, 'web', [`10.244.3.${i + 1}`]));
  await until(() => k.compiler.sliceCount() === 10, { what: 'first 10 slices' });
  k.double.breakWatchAfter(3);
  for (let i = 10; i < 20; i++) k.double.create('endpointslices', apiSlice(`web-${i}`, 'web', [`10.244.3.${i + 1}`]));
  await until(() => k.compiler.sliceCount() === 20, { what: 'all 20 slices' });
  t.is(k.double.stats.byResource.endpointslices, listsBefore, 'resumed by watch, not by a re-list');
  t.true(k.watcher.informers.slices.stats.watches >= 2, 'a second watch was opened');
  const from = k.double.stats.watchFrom.endpointslices.map(Number);
  t.true(from.length >= 2);
  t.true(from.at(-1) >= from[0] + 10, `the second watch resumed after the first 10 slices (from ${from})`);
  // each version reached the control plane exactly once
  const names = applied.map((a) => a.split('@')[0]);
  t.is(new Set(names).size, 20);
  t.is(names.length, 20, `duplicates: ${applied}`);
  // and a change after the resume still arrives
  k.double.apply('endpointslices', apiSlice('web-0', 'web', ['10.244.3.200']));
  await until(() => k.compiler.getSlice('default', 'web-0')?.endpoints[0].addresses[0] === '10.244.3.200', { what: 'post-resume change' });
  t.pass();
});

test('410 Gone: the informer re-lists, and objects deleted while it was away are removed', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      for (const n of ['a', 'b', 'c']) { d.create('services', apiService(n, `10.96.2.${n.charCodeAt(0) - 96}`)); d.create('endpointslices', apiSlice(`${n}-1`, n, ['10.244.4.1'])); }
    },
  });
  await until(() => k.compiler.serviceCount() === 3 && k.compiler.sliceCount() === 3, { what: 'first sync' });
  const lists = k.double.stats.lists;
  // the connection goes; meanwhile b is deleted, c changes, d appears, and the history is
  // compacted: resuming from the old resourceVersion is answered with a 410 ERROR event
  k.double.dropWatches();
  k.double.delete('services', 'default', 'b');
  k.double.delete('endpointslices', 'default', 'b-1');
  k.double.apply('endpointslices', apiSlice('c-1', 'c', ['10.244.4.9']));
  k.double.create('services', apiService('d', '10.96.2.4'));
  k.double.compact();
  await until(() => !k.compiler.getService('default', 'b') && k.compiler.getService('default', 'd') && k.compiler.getSlice('default', 'c-1')?.endpoints[0].addresses[0] === '10.244.4.9', { what: 're-listed state' });
  t.true(k.double.stats.gone >= 1, 'the double answered 410');
  t.true(k.double.stats.lists > lists, 're-listed');
  t.deepEqual(svcKeys(k.compiler), ['default/a', 'default/c', 'default/d']);
  t.deepEqual(sliceKeys(k.compiler), ['default/a-1', 'default/c-1']);
  t.falsy((await traceTo(k.dp, '10.96.2.2', 80)).frontend);

  // an ERROR event on open watches (expired) does the same
  k.double.delete('services', 'default', 'a');
  k.double.compact();
  k.double.expireWatches();
  await until(() => !k.compiler.getService('default', 'a'), { what: 'a removed after expiry' });
  t.pass();
});

test('a failing list is retried with backoff (the library alone would stop for good)', async (t) => {
  const k = await startKube(t, {
    seed: (d) => { d.create('services', apiService('x', '10.96.3.1')); d.failRequests(3, 503, 'list'); },
  });
  await until(() => k.compiler.getService('default', 'x'), { what: 'service after list failures' });
  t.true(k.watcher.informers.services.stats.errors + k.watcher.informers.slices.stats.errors + k.watcher.informers.node.stats.errors >= 3);
  t.true(k.lines.some((l) => l.msg === 'list/watch failed; restarting'));
  // and a later reset of every watch, with failing re-watches, recovers too
  k.double.failRequests(2, 500, 'watch');
  k.double.dropWatches();
  k.double.create('services', apiService('y', '10.96.3.2'));
  await until(() => k.compiler.getService('default', 'y'), { what: 'service after watch failures' });
  t.pass();
});

test('one bad object is skipped (logged with the reason, counted) while the rest apply; it is retried when it changes', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('services', apiService('good', '10.96.4.1'));
      d.create('endpointslices', apiSlice('good-1', 'good', ['10.244.5.1']));
      // invalid for wdp: a targetPort out of range
      d.create('services', apiService('bad', '10.96.4.2', { ports: [{ name: 'http', port: 80, targetPort: 70000 }] }));
      // clashes with good: the same cluster IP
      d.create('services', apiService('twin', '10.96.4.1'));
      d.create('endpointslices', apiSlice('twin-1', 'twin', ['10.244.5.2']));
    },
  });
  await until(() => k.compiler.getService('default', 'good') && k.watcher.sync.skippedObjects().length === 2, { what: 'first sync with skips' });
  t.falsy(k.compiler.getService('default', 'bad'));
  t.falsy(k.compiler.getService('default', 'twin'));
  t.is((await traceTo(k.dp, '10.96.4.1', 80)).backend?.addr, '10.244.5.1');
  const skipped = Object.fromEntries(k.watcher.sync.skippedObjects().map((s) => [s.key, s]));
  t.is(skipped['Service/default/bad'].stage, 'invalid');
  t.regex(skipped['Service/default/bad'].message, /targetPort/);
  t.is(skipped['Service/default/twin'].stage, 'conflict');
  t.regex(skipped['Service/default/twin'].message, /already allocated to Service default\/good/);
  t.true(k.lines.some((l) => l.level === 40 && l.object === 'Service/default/bad' && /targetPort/.test(l.reason)));
  const metrics = await k.cp.metrics.registry.metrics();
  t.regex(metrics, /wdp_kube_objects_skipped_total\{kind="Service",stage="invalid"\} 1/);
  t.regex(metrics, /wdp_kube_objects_skipped_total\{kind="Service",stage="conflict"\} 1/);
  t.regex(metrics, /wdp_kube_objects_skipped\{kind="Service"\} 2/);

  // other changes keep flowing while the bad objects stay bad
  k.double.create('services', apiService('more', '10.96.4.3'));
  await until(() => k.compiler.getService('default', 'more'), { what: 'later service' });
  // fixing the bad one: applied
  k.double.apply('services', apiService('bad', '10.96.4.2'));
  await until(() => k.compiler.getService('default', 'bad'), { what: 'fixed service' });
  // the clash goes away when good is deleted: twin gets programmed
  k.double.delete('services', 'default', 'good');
  await until(() => k.compiler.getService('default', 'twin'), { what: 'twin after the clash is gone' });
  t.is((await traceTo(k.dp, '10.96.4.1', 80)).backend?.addr, '10.244.5.2');
  t.deepEqual(k.watcher.sync.skippedObjects(), []);
});

test('the periodic full sync repairs what changed behind the watcher and removes objects the API no longer has', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('keep', '10.96.5.1')); } });
  await until(() => k.compiler.getService('default', 'keep'), { what: 'first sync' });
  // someone applies through the control API directly: a stray service and a changed one
  await k.cp.core.apply([
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'stray', namespace: 'default' }, spec: { clusterIP: '10.96.5.9', ports: [{ port: 80 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'keep', namespace: 'default' }, spec: { clusterIP: '10.96.5.1', ports: [{ port: 81 }] } },
  ]);
  const fulls = k.watcher.sync.stats.full;
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > fulls && !k.compiler.getService('default', 'stray'), { what: 'full sync' });
  t.is(k.compiler.getService('default', 'keep').ports[0].port, 80);
  const m = await k.cp.metrics.registry.metrics();
  t.regex(m, /kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/);
});

test('the Node object: node addresses (every InternalIP and ExternalIP) and NodePort addresses (nodePortAddresses "primary": the primary IP, not the other InternalIP or the ExternalIP), pod CIDRs, healthz eligibility', async (t) => {
  const k = await startKube(t, {
    config: { nodePortAddresses: ['primary'] },
    seed: (d) => d.create('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '192.168.100.2' }, { type: 'ExternalIP', address: '203.0.113.7' }] })),
  });
  await until(() => k.nodeUpdates.length >= 1, { what: 'node update' });
  t.deepEqual(k.nodeUpdates.at(-1), { addresses: ['10.1.1.5', '192.168.100.2', '203.0.113.7'], nodePortAddresses: ['10.1.1.5'], podCIDRs: ['10.244.1.0/24'], zone: '', primary: ['10.1.1.5'] });
  // the zone label (topology-aware routing) arrives as an update too
  const zoned = apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '192.168.100.2' }] });
  zoned.metadata.labels = { 'topology.kubernetes.io/zone': 'zone-a' };
  k.double.apply('nodes', zoned);
  await until(() => k.nodeUpdates.at(-1).zone === 'zone-a', { what: 'zone update' });
  const healthz = async () => { const r = await fetch(`${k.watcher.healthzUrl}/healthz`); return { code: r.status, body: await r.json() }; };
  let h = await healthz();
  t.is(h.code, 200);
  t.true(h.body.nodeEligible);
  // the node is being deleted: /healthz 503, /livez still 200
  k.double.apply('nodes', apiNode('node-a', { deleting: true }));
  h = await until(async () => { const x = await healthz(); return x.code === 503 && x; }, { what: 'healthz 503' });
  t.false(h.body.nodeEligible);
  t.is((await fetch(`${k.watcher.healthzUrl}/livez`)).status, 200);
  const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  t.regex(m, /kubeproxy_proxy_healthz_total\{code="503"\} [1-9]/);
});

test('the Node object: nodePortAddresses with IPv4 CIDRs only keeps every IPv6 node address (kube-proxy\'s IPv6 proxier has no CIDR of its family: all)', async (t) => {
  const k = await startKube(t, {
    config: { nodePortAddresses: ['192.168.100.0/24'] },
    seed: (d) => d.create('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '10.1.1.5' }, { type: 'InternalIP', address: '192.168.100.2' }, { type: 'InternalIP', address: 'fd00:100::2' }, { type: 'ExternalIP', address: '2001:db8::2' }] })),
  });
  await until(() => k.nodeUpdates.length >= 1, { what: 'node update' });
  t.deepEqual(k.nodeUpdates.at(-1).nodePortAddresses, ['192.168.100.2', 'fd00:100::2', '2001:db8::2']);
  t.deepEqual(k.nodeUpdates.at(-1).addresses, ['10.1.1.5', '192.168.100.2', 'fd00:100::2', '2001:db8::2'], 'every Node address stays a node address');
});

test('restart: the saved state is programmed before the API answers; the first sync removes what was deleted meanwhile', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { ApiServerDouble } = await import('./lib/apiserver-double.js');
  const stateDir = mkdtempSync(join(tmpdir(), 'wdp-kube-state-'));
  const double = new ApiServerDouble();
  await double.listen();
  t.teardown(async () => { await double.close(); rmSync(stateDir, { recursive: true, force: true }); });
  for (const n of ['a', 'b']) { double.create('services', apiService(n, `10.96.6.${n === 'a' ? 1 : 2}`)); double.create('endpointslices', apiSlice(`${n}-1`, n, ['10.244.6.1'])); }
  const first = await startKube(t, { existing: double, stateDir });
  await until(() => first.compiler.serviceCount() === 2 && first.compiler.sliceCount() === 2, { what: 'first run programmed' });
  await first.stop();
  // while wdp is down: b goes, a changes
  double.delete('services', 'default', 'b');
  double.delete('endpointslices', 'default', 'b-1');
  double.apply('endpointslices', apiSlice('a-1', 'a', ['10.244.6.7']));
  double.failRequests(1000, 503, 'list'); // the API is unreachable at first
  const second = await startKube(t, { existing: double, stateDir });
  t.is(second.compiler.serviceCount(), 2, 'restored before any list');
  t.is((await traceTo(second.dp, '10.96.6.2', 80)).backend?.addr, '10.244.6.1', 'the saved state carries traffic');
  double.failures = [];
  await until(() => !second.compiler.getService('default', 'b') && second.compiler.getSlice('default', 'a-1')?.endpoints[0].addresses[0] === '10.244.6.7', { what: 'state equal to the API after the first sync' });
  t.deepEqual(svcKeys(second.compiler), ['default/a']);
  t.deepEqual(sliceKeys(second.compiler), ['default/a-1']);
});

test('a sync the dataplane refuses is retried with backoff; healthz turns 503 while changes wait longer than 2 x syncPeriod, 200 once programmed', async (t) => {
  const { LocalDataplane } = await import('../dist/src/core/dataplane.js');
  const dp = new LocalDataplane();
  let refuse = false;
  const apply = dp.apply.bind(dp);
  dp.apply = (...a) => (refuse ? Promise.reject(new Error('injected dataplane failure')) : apply(...a));
  const k = await startKube(t, { dataplane: dp, config: { syncPeriod: '1s', minSyncPeriod: '50ms' }, seed: (d) => d.create('services', apiService('s', '10.96.8.1')) });
  await until(() => k.compiler.getService('default', 's'), { what: 'first sync' });
  const healthz = async () => (await fetch(`${k.watcher.healthzUrl}/healthz`)).status;
  t.is(await healthz(), 200);
  refuse = true;
  k.double.create('services', apiService('t', '10.96.8.2'));
  await until(async () => (await healthz()) === 503, { what: 'healthz 503 while the change waits', timeoutMs: 20000 });
  t.falsy(k.compiler.getService('default', 't'), 'nothing applied');
  t.true(k.watcher.sync.stats.failures >= 1);
  t.true(k.lines.some((l) => l.msg === 'sync failed; retrying' && /injected/.test(l.error)));
  refuse = false;
  await until(() => k.compiler.getService('default', 't'), { what: 'retried sync', timeoutMs: 20000 });
  await until(async () => (await healthz()) === 200, { what: 'healthz 200 again' });
  const m = await k.cp.metrics.registry.metrics();
  t.regex(m, /wdp_kube_sync_failures_total [1-9]/);
});

test('a server that ends every watch at once does not get a busy loop of watch requests', async (t) => {
  const k = await startKube(t, { seed: (d) => d.create('services', apiService('s', '10.96.9.1')) });
  await until(() => k.compiler.getService('default', 's'), { what: 'first sync' });
  k.double.endWatchesAtOnce = true;
  k.double.dropWatches();
  const before = k.double.stats.watches;
  await new Promise((r) => setTimeout(r, 2000));
  const n = k.double.stats.watches - before;
  // four informers; with the pause doubling from 0.2 s, a handful each in 2 s (unpaused: thousands)
  t.true(n <= 50, `${n} watch requests in 2 s`);
  k.double.endWatchesAtOnce = false;
  k.double.create('services', apiService('u', '10.96.9.2'));
  await until(() => k.compiler.getService('default', 'u'), { what: 'watching again', timeoutMs: 40000 });
});

test('bookmarks keep a quiet watch\'s resourceVersion current: after compaction it resumes without a 410 or a re-list', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('quiet', '10.96.10.1')); d.create('nodes', apiNode('node-a')); } });
  await until(() => k.compiler.getService('default', 'quiet'), { what: 'first sync' });
  await until(() => k.double.watchers.size === 4, { what: 'four watches open (Services, EndpointSlices, the Node, ServiceCIDRs)' });
  // other resources move the resourceVersion on; the services watch sees nothing but a bookmark
  for (let i = 0; i < 5; i++) k.double.create('endpointslices', apiSlice(`other-${i}`, 'other', ['10.244.10.1']));
  await until(() => k.compiler.sliceCount() === 5, { what: 'slices' });
  const rv = String(k.double.rv);
  k.double.bookmark();
  await until(() => k.watcher.informers.services.resourceVersion === rv, { what: 'bookmark applied' });
  const lists = k.double.stats.byResource.services;
  const gone = k.double.stats.gone;
  k.double.compact();
  k.double.dropWatches();
  k.double.create('services', apiService('later', '10.96.10.2'));
  await until(() => k.compiler.getService('default', 'later'), { what: 'change after resume' });
  t.is(k.double.stats.watchFrom.services.at(-1), rv, 'resumed from the bookmark');
  t.is(k.double.stats.byResource.services, lists, 'no re-list of services');
  // (the slices watch saw its own events: it is current too; the node watch is the one that may 410)
  t.true(k.double.stats.gone - gone <= 1);
});

test('programming latency from the EndpointSlice trigger-time annotation, pending changes and sync counts are exported', async (t) => {
  const k = await startKube(t, { hostIPv6: false, seed: (d) => d.create('services', apiService('p', '10.96.11.1')) });
  const started = Date.now(); // (a trigger time from before the control plane started is not observed, as kube-proxy's)
  await until(() => k.compiler.getService('default', 'p'), { what: 'first sync' });
  await new Promise((r) => setTimeout(r, Math.max(0, started + 1600 - Date.now())));
  k.double.create('endpointslices', apiSlice('p-1', 'p', ['10.244.11.1'], { trigger: new Date(Date.now() - 1500).toISOString() }));
  await until(() => k.compiler.getSlice('default', 'p-1'), { what: 'slice' });
  const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  t.regex(m, /kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} 1\b/, 'the slice\'s family');
  t.regex(m, /kubeproxy_network_programming_duration_seconds_bucket\{le="1",ip_family="IPv4"\} 0\b/, 'observed as at least 1.5 s');
  t.regex(m, /kubeproxy_sync_proxy_rules_endpoint_changes_pending 0\b/);
  t.regex(m, /kubeproxy_sync_proxy_rules_service_changes_pending 0\b/);
  t.regex(m, /kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/);
  t.regex(m, /kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds\{ip_family="IPv4"\} [1-9]/);
  t.regex(m, /kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/);
  t.notRegex(m, /^kubeproxy_(sync_proxy_rules_(duration|last_)|sync_(full|partial)_|network_programming)\S*\{[^}]*ip_family="IPv6"/m, 'no IPv6 proxier: a host without IPv6 (kube-proxy-families has the host with it)');
  t.regex(m, /wdp_kube_lists_total\{resource="services"\} 1\b/);
  t.is(await (await fetch(`${k.watcher.metricsUrl}/proxyMode`)).text(), 'wdp');
});

test('the overall sync histogram counts every sync of the watcher, full and partial, those that changed nothing too (kube-proxy observes it on every syncProxyRules)', async (t) => {
  const k = await startKube(t, { hostIPv6: false, config: { minSyncPeriod: '0s', syncPeriod: '300ms' }, seed: (d) => d.create('services', apiService('o', '10.96.14.1')) });
  await until(() => k.compiler.getService('default', 'o'), { what: 'first sync' });
  k.double.create('endpointslices', apiSlice('o-1', 'o', ['10.244.14.1']));
  await until(() => k.compiler.getSlice('default', 'o-1'), { what: 'slice' });
  // (a series not observed yet is not exported: 0 — under load every sync may have been full)
  const count = (m, name) => Number(new RegExp(`^${name}_count\\{ip_family="IPv4"\\} (\\d+)$`, 'm').exec(m)?.[1] ?? 0);
  let seen = null;
  // full syncs every 300 ms that change nothing; a scrape between two observations of one sync
  // may lag by one, so it is read until the three agree
  await until(async () => {
    const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
    seen = { overall: count(m, 'kubeproxy_sync_proxy_rules_duration_seconds'), full: count(m, 'kubeproxy_sync_full_proxy_rules_duration_seconds'), partial: count(m, 'kubeproxy_sync_partial_proxy_rules_duration_seconds') };
    return seen.full >= 4 && seen.overall === seen.full + seen.partial;
  }, { what: 'overall = full + partial after several no-op full syncs', timeoutMs: 10_000 }).catch(() => {});
  t.true(seen.full >= 4, `no-op full syncs ran: ${JSON.stringify(seen)}`);
  t.is(seen.overall, seen.full + seen.partial, JSON.stringify(seen));
});

test('changes coalesce: many changes within minSyncPeriod are programmed in one or two syncs, newest state only', async (t) => {
  const k = await startKube(t, { config: { minSyncPeriod: '1s', syncPeriod: '30s' }, seed: (d) => d.create('services', apiService('base', '10.96.13.1')) });
  await until(() => k.compiler.getService('default', 'base'), { what: 'first sync' });
  const partial = k.watcher.sync.stats.partial;
  const batches = [];
  const orig = k.cp.core.applyEach.bind(k.cp.core);
  let sliceVersions = 0;
  k.cp.core.applyEach = (raws, removes) => {
    batches.push(raws.length + removes.length);
    sliceVersions += raws.filter((r) => r.metadata.name === 'c0-1').length;
    return orig(raws, removes);
  };
  for (let i = 0; i < 30; i++) k.double.create('services', apiService(`c${i}`, `10.96.13.${i + 10}`));
  for (let v = 0; v < 5; v++) k.double.apply('endpointslices', apiSlice('c0-1', 'c0', [`10.244.13.${v + 1}`])); // five versions of one object
  await until(() => k.compiler.serviceCount() === 31 && k.compiler.getSlice('default', 'c0-1'), { what: 'all programmed' });
  t.true(k.watcher.sync.stats.partial - partial <= 3, `${k.watcher.sync.stats.partial - partial} partial syncs for 35 changes`);
  // (every write happened at once: a sync may at most split them where the events arrived)
  t.true(sliceVersions <= 2, `the slice's five versions were ${sliceVersions} changes (batches ${batches})`);
  t.is(k.compiler.getSlice('default', 'c0-1').endpoints[0].addresses[0], '10.244.13.5', 'the newest version');
});

test('service-proxy-name: without a configured name labelled Services are not listed; with one, Services labelled with it reach the model (the compiler drops other proxies\' ones)', async (t) => {
  const labelled = (name, ip, labels) => { const s = apiService(name, ip); s.metadata.labels = { ...s.metadata.labels, ...labels }; return s; };
  const seed = (d) => {
    d.create('services', apiService('plain', '10.96.3.1'));
    d.create('services', labelled('mine', '10.96.3.2', { 'service.kubernetes.io/service-proxy-name': 'wdp' }));
    d.create('services', labelled('other', '10.96.3.3', { 'service.kubernetes.io/service-proxy-name': 'cilium' }));
    d.create('services', labelled('headless', '10.96.3.4', { 'service.kubernetes.io/headless': '' }));
  };
  const none = await startKube(t, { seed });
  await until(() => none.compiler.getService('default', 'plain'), { what: 'plain service synced' });
  t.falsy(none.compiler.getService('default', 'mine'));
  t.falsy(none.compiler.getService('default', 'other'));
  t.falsy(none.compiler.getService('default', 'headless'));
  const named = await startKube(t, { seed, serviceProxyName: 'wdp' });
  await until(() => named.compiler.getService('default', 'plain') && named.compiler.getService('default', 'mine'), { what: 'own-name service synced' });
  t.falsy(named.compiler.getService('default', 'headless'), 'headless Services are never listed');
});

test('a watch whose connection goes silent, and a watch the server accepts and never answers, are given up after watchIdleSeconds and resumed from the resourceVersion: the change made meanwhile arrives, no re-list', async (t) => {
  // healthy watches hear a bookmark every 200 ms (the real server: about every minute)
  const k = await startKube(t, { double: { bookmarkIntervalMs: 200 }, informer: { watchIdleSeconds: 1 }, seed: (d) => { d.create('services', apiService('a', '10.96.30.1')); } });
  await until(() => k.compiler.serviceCount() === 1, { what: 'first sync' });
  const listsBefore = k.double.stats.lists;
  k.double.holdWatches = true;
  k.double.freezeWatches();
  k.double.create('services', apiService('b', '10.96.30.2'));
  // 3 informers: more than 3 held requests means a held (never answered) one was given up too
  await until(() => k.double.stats.held > 3, { what: 'silent watches given up, the held ones too' });
  k.double.holdWatches = false;
  await until(() => k.compiler.getService('default', 'b'), { what: 'the change made while the watches were silent' });
  t.is(k.double.stats.lists, listsBefore, 'resumed from the resourceVersion: no re-list');
  t.true(k.lines.some((l) => l.msg === 'list/watch failed; restarting' && /nothing from the API server in 1 s/.test(l.error)));
});

test('lists as client-go\'s reflector: the first at resourceVersion 0 (the watch cache answers), a re-list after a 410 not older than the last resourceVersion seen and unpaged, a consistent paged list only when that version is unavailable', async (t) => {
  const k = await startKube(t, { seed: (d) => { for (let i = 1; i <= 5; i++) d.create('services', apiService(`s${i}`, `10.96.31.${i}`)); } });
  await until(() => k.compiler.serviceCount() === 5, { what: 'first sync' });
  const from = k.double.stats.listFrom;
  for (const r of ['services', 'endpointslices', 'nodes', 'servicecidrs']) t.deepEqual(from[r], [{ resourceVersion: '0', limit: 3 }], `${r}: first list`);
  // an event moves the last resourceVersion seen; then the history goes and the watches expire
  k.double.create('services', apiService('s6', '10.96.31.6'));
  await until(() => k.compiler.getService('default', 's6'), { what: 's6' });
  await until(() => k.double.watchers.size === 4, { what: 'the four watches open' });
  const gone = k.double.delete('services', 'default', 's1'); // the watch delivers it before the 410
  k.double.compact();
  k.double.expireWatches();
  await until(() => from.services.length === 2 && !k.compiler.getService('default', 's1'), { what: 're-listed: s1 gone' });
  t.deepEqual(from.services[1], { resourceVersion: gone.metadata.resourceVersion, limit: 0 }, 'not older than the last seen, unpaged');
  // a lagging API server does not have that version yet: at once a consistent, paged list
  k.double.failRequests(1, 504, 'list', { reason: 'Timeout', message: 'Too large resource version', details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }] } });
  await until(() => k.double.watchers.size === 4, { what: 'the four watches open again' });
  k.double.delete('services', 'default', 's2');
  k.double.compact();
  k.double.expireWatches();
  const consistentLists = () => Object.values(from).flat().filter((l) => l.resourceVersion === '');
  await until(() => consistentLists().length && Object.values(from).every((l) => l.length === 3) && !k.compiler.getService('default', 's2'), { what: 're-listed: s2 gone' });
  const consistent = consistentLists();
  t.deepEqual(consistent, [{ resourceVersion: '', limit: 3 }], 'one consistent paged list, after the 504');
  t.deepEqual(svcKeys(k.compiler), ['default/s3', 'default/s4', 'default/s5', 'default/s6']);
});

test('lists without a watch cache: a first list that came in pages keeps later lists paged (client-go\'s paginatedResult)', async (t) => {
  const k = await startKube(t, { double: { watchCache: false }, seed: (d) => { for (let i = 1; i <= 5; i++) d.create('services', apiService(`s${i}`, `10.96.32.${i}`)); } });
  await until(() => k.compiler.serviceCount() === 5 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const gone = k.double.delete('services', 'default', 's1');
  k.double.expireWatches(); // (no compaction: the version asked for is still there)
  await until(() => k.double.stats.listFrom.services.length === 2 && !k.compiler.getService('default', 's1'), { what: 're-list' });
  t.deepEqual(k.double.stats.listFrom.services, [{ resourceVersion: '0', limit: 3 }, { resourceVersion: gone.metadata.resourceVersion, limit: 3 }]);
});

test('a watch event that is not JSON fails the watch, which resumes from the last resourceVersion: the event comes again (the library skipped it: lost)', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('a', '10.96.33.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const lists = k.double.stats.lists;
  k.double.garbleNextEvent = true;
  k.double.create('services', apiService('b', '10.96.33.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'the garbled event delivered again' });
  t.is(k.double.stats.lists, lists, 'resumed, not re-listed');
  t.true(k.lines.some((l) => l.msg === 'list/watch failed; restarting' && /not JSON/.test(l.error)));
});

test('the change counters count the informers\' events as kube-proxy\'s change trackers do: every Service event (a no-op update too), an EndpointSlice\'s only for a family the node proxies; the watcher\'s own applies are not counted again', async (t) => {
  // (a host without IPv6: one proxier; kube-proxier-families counts on a dual-stack host)
  const k = await startKube(t, { hostIPv6: false, seed: (d) => d.create('services', apiService('c', '10.96.12.1')) });
  await until(() => k.compiler.getService('default', 'c'), { what: 'first sync' });
  const total = async (what) => Number(new RegExp(`^kubeproxy_sync_proxy_rules_${what}_changes_total (\\S+)$`, 'm').exec(await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text())?.[1]);
  t.is(await total('service'), 1, 'the listed Service');
  t.is(await total('endpoint'), 0);
  // an update that changes nothing wdp programs (a label) is still an event
  const c = k.double.get('services', 'default', 'c');
  k.double.update('services', { ...c, metadata: { ...c.metadata, labels: { team: 'x' } } });
  await until(async () => (await total('service')) === 2, { what: 'the no-op update counted' });
  k.double.create('endpointslices', apiSlice('c-1', 'c', ['10.244.12.1']));
  const v6 = apiSlice('c-v6', 'c', ['fd00::12']);
  k.double.create('endpointslices', { ...v6, addressType: 'IPv6' });
  const fqdn = apiSlice('c-fqdn', 'c', ['pod.example']);
  k.double.create('endpointslices', { ...fqdn, addressType: 'FQDN' });
  await until(() => k.compiler.getSlice('default', 'c-1'), { what: 'slice' });
  await new Promise((r) => setTimeout(r, 1500)); // a sync of all three (minSyncPeriod) has run
  t.is(await total('endpoint'), 1, 'the IPv4 slice; no IPv6 proxier on a host without IPv6, no FQDN one');
  t.is(await total('service'), 2, 'the syncs\' applies add nothing');
});
