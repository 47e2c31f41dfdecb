// The watcher against what a real kube-apiserver does that the other kube-* tests do not cover:
// an ERROR event carrying a Status that ends a watch, 429 / 5xx with Retry-After, a ClusterRole
// without EndpointSlices, watches ended at their timeoutSeconds (with the watch cache's
// pre-timeout bookmark), event lines cut across reads and large objects, half an event then a
// reset, and HTTP/1.1 keep-alive between requests. The double is test/lib/apiserver-double.js.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKube, until, apiService, apiSlice, apiNode, watchOpen } from './lib/kube-fixture.js';
import { loadKubeConfig, requestOptions } from '../dist/src/kube/client.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const failures = (k, resource) => k.lines.filter((l) => l.msg === 'list/watch failed; restarting' && l.resource === resource);

test('a watch the server ends with an ERROR event carrying a Status (500) is retried with backoff from its resourceVersion: logged with the Status message, no busy loop, no re-list', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('a', '10.96.40.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const lists = k.double.stats.byResource.services;
  k.double.watchErrors = { status: 500, count: 1e9, resource: 'services' };
  const before = k.double.stats.watchFrom.services.length;
  k.double.errorWatches(500);
  await sleep(2000);
  const n = k.double.stats.watchFrom.services.length - before;
  // backoff from 50 ms doubling to 400 ms (jittered up to twice): a handful in 2 s (unpaced: thousands)
  t.true(n <= 30, `${n} services watch requests in 2 s`);
  t.true(n >= 2, 'retried');
  t.true(failures(k, 'services').some((l) => /500 injected watch error/.test(l.error)), 'the Status message logged');
  k.double.watchErrors = undefined;
  k.double.create('services', apiService('b', '10.96.40.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'watching again' });
  t.is(k.double.stats.byResource.services, lists, 'resumed from the resourceVersion, not re-listed');
  t.true(k.double.stats.watchFrom.services.slice(before).every((rv) => rv !== '' && rv !== '0'));
});

test('a 410 ERROR event answered to every watch at once re-lists, but paced, not in a loop of lists and watches', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('a', '10.96.41.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  k.double.watchErrors = { status: 410, count: 1e9, resource: 'services' };
  const lists = k.double.stats.byResource.services;
  k.double.errorWatches(410);
  await sleep(2000);
  const n = k.double.stats.byResource.services - lists;
  t.true(n >= 1, 're-listed');
  t.true(n <= 30, `${n} services lists in 2 s`);
  k.double.watchErrors = undefined;
  k.double.create('services', apiService('b', '10.96.41.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'watching again', timeoutMs: 40000 });
});

test('429 and 503 with Retry-After: the retry waits at least what the server asked (at most 60 s), then the list and the watch go on', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('services', apiService('a', '10.96.42.1'));
      d.failRequests(1, 429, 'list', { details: { retryAfterSeconds: 2 } }, 'services');
    },
  });
  await until(() => k.compiler.serviceCount() === 1, { what: 'listed after the 429' });
  const first = failures(k, 'services')[0];
  t.regex(first.error, /429 Too many requests/);
  t.true(first.retryInMs >= 2000, `waited ${first.retryInMs} ms after Retry-After: 2`);
  // a watch refused with 503 and Retry-After: resumed from its resourceVersion after the wait
  const lists = k.double.stats.byResource.services;
  await watchOpen(k.double, 'services'); // the watch to drop, not one still on its way
  k.double.failRequests(1, 503, 'watch', { details: { retryAfterSeconds: 2 } }, 'services');
  k.double.dropWatches();
  k.double.create('services', apiService('b', '10.96.42.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'watching again after the 503' });
  const second = failures(k, 'services').find((l) => /: 503 /.test(l.error));
  t.truthy(second, 'the 503 logged');
  t.true(second.retryInMs >= 2000, `waited ${second.retryInMs} ms after Retry-After: 2`);
  t.is(k.double.stats.byResource.services, lists, 'no re-list');
  // a Retry-After past any reason is bounded
  k.double.failRequests(1, 429, 'watch', { details: { retryAfterSeconds: 1e9 } }, 'services');
  k.double.dropWatches();
  const third = await until(() => failures(k, 'services').find((l) => /: 429 /.test(l.error) && l !== first), { what: 'the second 429' });
  t.is(third.retryInMs, 60_000, 'Retry-After: 1e9 waits 60 s');
});

test('a ClusterRole without EndpointSlices (403): logged with what to grant, retried with backoff, nothing programmed and healthz 200 as kube-proxy (not initialized); the other informers go on; granted, everything follows', async (t) => {
  const all = [{ apiGroups: ['', 'discovery.k8s.io', 'networking.k8s.io'], resources: ['services', 'nodes', 'servicecidrs'], verbs: ['get', 'list', 'watch'] }];
  const k = await startKube(t, {
    double: { rbac: all },
    seed: (d) => {
      d.create('services', apiService('a', '10.96.43.1'));
      d.create('endpointslices', apiSlice('a-1', 'a', ['10.244.43.1']));
      d.create('nodes', apiNode('node-a'));
    },
  });
  await until(() => failures(k, 'endpointslices').length >= 3, { what: 'three refused lists of EndpointSlices' });
  const f = failures(k, 'endpointslices');
  t.regex(f[0].error, /403 endpointslices.discovery.k8s.io is forbidden: User .* cannot list resource "endpointslices"/);
  t.regex(f[0].hint, /grant list and watch on endpointslices \(discovery\.k8s\.io\)/);
  t.true(f[1].retryInMs > 0 && f[2].retryInMs > 0, 'backoff');
  t.true(k.watcher.informers.services.synced && k.watcher.informers.node.synced, 'Services and the Node listed');
  t.true(k.nodeUpdates.length >= 1, 'the Node read');
  t.is(k.compiler.serviceCount(), 0, 'nothing programmed until EndpointSlices are listed too (kube-proxy\'s isInitialized)');
  const hz = await fetch(`${k.watcher.healthzUrl}/healthz`);
  t.is(hz.status, 200, 'healthz: nothing waits for a sync');
  k.double.rbac = [{ apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] }];
  await until(() => k.compiler.serviceCount() === 1 && k.compiler.sliceCount() === 1, { what: 'programmed once granted', timeoutMs: 30000 });
});

test('watches the server ends at timeoutSeconds resume from the pre-timeout bookmark: no re-list, and a quiet watch stays current past a compaction', async (t) => {
  const k = await startKube(t, { informer: { watchTimeoutSeconds: [3, 3] }, seed: (d) => { d.create('services', apiService('quiet', '10.96.44.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const lists = k.double.stats.lists;
  const before = k.double.stats.watchFrom.services.length;
  // other resources move the resourceVersion; the services watch sees only its bookmark
  for (let i = 0; i < 3; i++) k.double.create('endpointslices', apiSlice(`other-${i}`, 'other', ['10.244.44.1']));
  const rv = String(k.double.rv);
  await until(() => k.double.stats.watchFrom.services.length >= before + 1, { what: 'the services watch ended at its timeout and resumed', timeoutMs: 20000 });
  t.is(k.double.stats.watchFrom.services[before], rv, 'resumed from the bookmark sent before the timeout');
  k.double.compact();
  k.double.create('services', apiService('later', '10.96.44.2'));
  await until(() => k.compiler.getService('default', 'later'), { what: 'a change after the resume' });
  await until(() => k.double.stats.watchFrom.services.length >= before + 2, { what: 'another timeout', timeoutMs: 20000 });
  t.is(k.double.stats.lists, lists, 'no re-list');
  t.is(k.watcher.informers.services.stats.errors, 0, 'a timeout is no error');
});

test('event lines cut anywhere across reads (inside UTF-8 characters too) and a 1.5 MB object (a 250 KB annotation, managedFields) arrive whole; the cache drops managedFields', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('a', '10.96.45.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  k.double.splitEventsBytes = 997;
  const big = 'é✓'.repeat(50_000); // 250 KB of UTF-8 (the API server allows 256 KiB of annotations)
  const managedFields = Array.from({ length: 8000 }, (_, i) => ({ manager: `manager-${i}`, operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { [`f:label-${i}`]: {} } } } }));
  const svc = apiService('big', '10.96.45.2');
  svc.metadata.annotations = { 'example.com/blob': big };
  svc.metadata.managedFields = managedFields;
  k.double.create('services', svc);
  for (let i = 0; i < 20; i++) k.double.create('endpointslices', apiSlice(`s-${i}`, 'big', [`10.244.45.${i + 1}`]));
  await until(() => k.compiler.getService('default', 'big') && k.compiler.sliceCount() === 20, { what: 'the split events', timeoutMs: 30000 });
  const cached = k.watcher.informers.services.list().find((o) => o.metadata.name === 'big');
  t.is(cached.metadata.annotations['example.com/blob'], big, 'every character whole');
  t.is(cached.metadata.managedFields, undefined);
  t.is(k.watcher.informers.services.stats.errors + k.watcher.informers.slices.stats.errors, 0);
});

test('half an event and then a reset: the half line is not read as an event; the watch resumes from the last whole one and the event comes once', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('services', apiService('a', '10.96.46.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const lists = k.double.stats.lists;
  const adds = [];
  const orig = k.cp.core.applyEach.bind(k.cp.core);
  k.cp.core.applyEach = (raws, removes) => { for (const x of raws) if (x.kind === 'Service') adds.push(x.metadata.name); return orig(raws, removes); };
  k.double.cutNextEvent = true;
  k.double.create('services', apiService('b', '10.96.46.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'the cut event delivered again' });
  t.deepEqual(adds, ['b']);
  t.is(k.double.stats.lists, lists, 'resumed, not re-listed');
  t.false(k.lines.some((l) => /not JSON/.test(l.error ?? '')), 'the half line was never parsed');
});

test('HTTP/1.1 keep-alive: a watch that ended cleanly hands its connection to the next request (the library opened one per request)', async (t) => {
  let connections = 0;
  const k = await startKube(t, { informer: { watchTimeoutSeconds: [1, 1] }, seed: (d) => { d.server.on('connection', () => connections++); d.create('services', apiService('a', '10.96.47.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const c0 = connections, w0 = k.double.stats.watches;
  await until(() => k.double.stats.watches >= w0 + 12, { what: 'a dozen watches ended at their timeout', timeoutMs: 30000 });
  const watches = k.double.stats.watches - w0, opened = connections - c0;
  t.true(opened < watches / 2, `${opened} connections for ${watches} watches`);
  k.double.create('services', apiService('b', '10.96.47.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'still watching' });
});

test('a list the server accepts and never answers is given up and retried; meanwhile the sync goes on with the other informers\' changes', async (t) => {
  const k = await startKube(t, { informer: { listTimeoutSeconds: 1 }, seed: (d) => { d.create('services', apiService('a', '10.96.48.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  // the services watch expires: its re-list is held
  k.double.holdLists = true;
  for (const w of k.double.watchers) if (w.resource === 'services') k.double.endWithGone(w.res, w.since);
  await until(() => k.double.stats.heldLists >= 1, { what: 'the re-list held' });
  k.double.create('endpointslices', apiSlice('a-1', 'a', ['10.244.48.1']));
  await until(() => k.compiler.getSlice('default', 'a-1'), { what: 'a slice programmed while the services list hangs' });
  await until(() => failures(k, 'services').some((l) => /no answer in 1000 ms/.test(l.error)), { what: 'the held list given up' });
  await until(() => k.double.stats.heldLists >= 2, { what: 'and retried' });
  k.double.holdLists = false;
  k.double.create('services', apiService('b', '10.96.48.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'listed once the server answers' });
  t.is(k.compiler.serviceCount(), 2);
});

test('the keep-alive agent is shared while the TLS material stays the same, and replaced when the CA file (read per request) changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kube-agent-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ca.pem'), 'first CA');
  writeFileSync(join(dir, 'kubeconfig'), JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'certificate-authority': 'ca.pem' } }],
    users: [{ name: 'u', user: { token: 'x' } }], contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
  }));
  const kc = loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig') });
  const a = (await requestOptions(kc, {})).opts.agent;
  const b = (await requestOptions(kc, {})).opts.agent;
  t.is(a, b, 'one agent');
  t.true(a.keepAlive);
  writeFileSync(join(dir, 'ca.pem'), 'second CA');
  const c = (await requestOptions(kc, {})).opts.agent;
  t.not(c, a, 'a new agent for the new CA');
  t.is(String(c.options.ca), 'second CA');
});

test('a request on a kept-alive connection that the server resets unanswered (it closed the idle connection) is sent again once on a new one: no failure, no backoff', async (t) => {
  const k = await startKube(t, { informer: { watchTimeoutSeconds: [1, 1] }, seed: (d) => { d.create('services', apiService('a', '10.96.49.1')); } });
  await until(() => k.compiler.serviceCount() === 1 && k.double.watchers.size === 4, { what: 'first sync, watching' });
  const errors = () => Object.values(k.watcher.informers).reduce((n, i) => n + i.stats.errors, 0);
  const before = errors();
  k.double.resetReusedRequests = 4;
  await until(() => k.double.stats.resetReused === 4, { what: 'four watches reset on reused connections', timeoutMs: 20000 });
  k.double.create('services', apiService('b', '10.96.49.2'));
  await until(() => k.compiler.getService('default', 'b'), { what: 'still watching' });
  t.is(errors(), before, 'no list/watch failed');
  t.false(k.lines.some((l) => l.msg === 'list/watch failed; restarting'));
});
