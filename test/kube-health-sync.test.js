// kube-proxy's proxy health as the sync loop drives it (src/kube/sync.ts → src/kube/healthz.ts):
// ProxierHealthServer.Updated() after every successful sync, whatever arrived meanwhile.
import test from 'ava';
import { KubeSync } from '../dist/src/kube/sync.js';
import { ProxyHealth } from '../dist/src/kube/healthz.js';

const svc = (name) => ({ metadata: { name, namespace: 'ns', resourceVersion: name }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } });
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

test('under steady churn (a change arrives during every sync) healthz stays healthy while syncs succeed, and turns unhealthy once they stop', async (t) => {
  let now = 1_000;
  const health = new ProxyHealth(60_000, () => now);
  const services = [svc('a')];
  let during = null; // what the next apply does while it runs
  let applies = 0;
  const target = {
    compiler: { listServices: () => [], listSlices: () => [] },
    async applyEach() { applies++; if (during) during(); return { skipped: [], generation: applies }; },
  };
  const sync = new KubeSync(target, { services: () => services, slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet, health });
  t.teardown(() => sync.stop());
  const settle = async (n) => { for (let i = 0; i < 200 && applies < n; i++) await new Promise((r) => setTimeout(r, 5)); await new Promise((r) => setTimeout(r, 20)); };
  sync.queue('Service', services[0]);
  sync.start();
  await settle(1);
  t.true(health.healthy());
  // every sync takes 40 s of the clock, and a change arrives during it
  let k = 0;
  during = () => { now += 40_000; const s = svc(`c${k++}`); services.push(s); sync.queue('Service', s); };
  sync.queue('Service', svc('b'));
  await settle(5);
  t.true(applies >= 5, `${applies} syncs`);
  t.true(health.healthy(), 'each sync succeeded: the changes waiting are younger than the timeout (kube-proxy: Updated() after every sync)');
  // the loop stops taking changes: what waits is judged from the last sync's end
  await sync.stop();
  now += 59_000;
  t.true(health.healthy(), 'younger than the timeout');
  now += 2_000;
  t.false(health.healthy(), 'a change has waited longer than the timeout');
});

test('a first sync that never succeeds turns healthz unhealthy once the listed changes waited longer than the timeout (kube-proxy marks the health updated as its sync loop starts)', async (t) => {
  let now = 1_000;
  const health = new ProxyHealth(60_000, () => now);
  let applies = 0;
  const target = {
    compiler: { listServices: () => [], listSlices: () => [] },
    async applyEach() { applies++; throw new Error('the dataplane refused it'); },
  };
  const services = [svc('a')];
  const sync = new KubeSync(target, { services: () => services, slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet, health });
  t.teardown(() => sync.stop());
  sync.queue('Service', services[0]);
  t.true(health.healthy(), 'still listing: not judged');
  sync.start();
  for (let i = 0; i < 200 && applies < 1; i++) await new Promise((r) => setTimeout(r, 5));
  t.true(applies >= 1);
  t.true(health.healthy(), 'younger than the timeout');
  now += 61_000;
  t.false(health.healthy(), 'the listed change has waited 61 s: before, a loop that never synced stayed healthy');
});

test('sync durations are observed per IP family, as kube-proxy\'s family proxiers each observe theirs (kubeproxy_sync_{full,partial}_proxy_rules_duration_seconds{ip_family})', async (t) => {
  const { Registry } = await import('../dist/src/util/prom-client.js');
  const { KubeMetrics } = await import('../dist/src/kube/metrics.js');
  const registry = new Registry();
  const metrics = new KubeMetrics(registry);
  let applies = 0, families = ['IPv4', 'IPv6'];
  const target = { compiler: { listServices: () => [], listSlices: () => [] }, async applyEach() { applies++; return { skipped: [], generation: applies }; } };
  const services = [svc('a')];
  const sync = new KubeSync(target, { services: () => services, slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet, metrics, families: () => families });
  t.teardown(() => sync.stop());
  const settle = async (n) => { for (let i = 0; i < 400 && applies < n; i++) await new Promise((r) => setTimeout(r, 5)); await new Promise((r) => setTimeout(r, 20)); };
  sync.start();
  await settle(1);
  let m = await registry.metrics();
  t.regex(m, /^kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1$/m);
  t.regex(m, /^kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv6"\} 1$/m);
  families = ['IPv4'];
  sync.queue('Service', svc('b'));
  await settle(2);
  m = await registry.metrics();
  t.regex(m, /^kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 1$/m);
  t.notRegex(m, /^kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv6"\}/m, 'a single-stack node has no IPv6 proxier');
});

test('the last-queued timestamp is set per family as kube-proxy\'s family proxiers queue theirs: an EndpointSlice\'s for its own family, a Service\'s for every family; a sync sets the last-sync time (ControlPlaneMetrics)', async (t) => {
  const { ControlPlaneMetrics } = await import('../dist/src/api/metrics.js');
  const metrics = new ControlPlaneMetrics({ getNode: () => null }, () => 0);
  let families = ['IPv4', 'IPv6'];
  metrics.ipFamilies = () => families;
  let applies = 0;
  const target = { compiler: { listServices: () => [], listSlices: () => [] }, async applyEach() { applies++; return { skipped: [], generation: applies }; } };
  const sync = new KubeSync(target, { services: () => [], slices: () => [] }, { minSyncPeriodMs: 3_600_000, syncPeriodMs: 3_600_000, log: quiet, timestamps: metrics, families: () => families });
  t.teardown(() => sync.stop());
  const gauge = async (name) => {
    const out = {};
    for (const m of (await metrics.registry.getSingleMetricAsString(name)).matchAll(new RegExp(`^${name}\\{ip_family="(IPv[46])"\\} (\\S+)$`, 'gm'))) out[m[1]] = Number(m[2]);
    return out;
  };
  const slice = (name, addressType) => ({ metadata: { name, namespace: 'ns' }, addressType, endpoints: [] });
  sync.queue('EndpointSlice', slice('v6', 'IPv6'));
  let q = await gauge('kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds');
  t.deepEqual(Object.keys(q), ['IPv6'], 'only the IPv6 proxier has a change waiting');
  sync.queue('Service', svc('a'));
  q = await gauge('kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds');
  t.deepEqual(Object.keys(q).sort(), ['IPv4', 'IPv6'], 'a Service concerns both');
  families = ['IPv4'];
  metrics.lastQueued.reset();
  sync.queue('EndpointSlice', slice('v6b', 'IPv6'));
  t.deepEqual(Object.keys(await gauge('kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds')), ['IPv4'],
    'no IPv6 proxier: the change waits for the one sync there is (no queued time without a last-sync time of that family)');
  sync.start();
  for (let i = 0; i < 400 && applies < 1; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  t.true((await gauge('kubeproxy_sync_proxy_rules_last_timestamp_seconds')).IPv4 > 1.7e9);
});

test('a change that may sync at once (minSyncPeriod passed) is synced after the events read with it, before any timer: no 1 ms timer floor on its way to the packets', async (t) => {
  const { readFile } = await import('node:fs');
  const batches = [];
  let timerFired = false, timerAtApply = null;
  const target = {
    compiler: { listServices: () => [], listSlices: () => [] },
    async applyEach(raws) { batches.push(raws.length); if (timerAtApply === null && batches.length > 1) timerAtApply = timerFired; return { skipped: [], generation: batches.length }; },
  };
  const services = [];
  const sync = new KubeSync(target, { services: () => services, slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet });
  t.teardown(() => sync.stop());
  sync.start();
  for (let i = 0; i < 200 && !batches.length; i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 20));
  // in an I/O callback (as a watch chunk's events are delivered) a zero timer set first fires
  // only after the check phase: a sync behind setTimeout(0) would come after it
  await new Promise((resolve) => readFile(new URL(import.meta.url), () => {
    setTimeout(() => { timerFired = true; resolve(); }, 0);
    const a = svc('a'), b = svc('b');
    services.push(a, b);
    sync.queue('Service', a);
    sync.queue('Service', b);
  }));
  for (let i = 0; i < 200 && batches.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  t.deepEqual(batches.slice(1), [2], 'the two events read together are one sync');
  t.false(timerAtApply, 'the sync ran before a zero timer set before the events');
});
