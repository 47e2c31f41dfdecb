// A list's items reach the sync in one synchronous loop, and their per-event metric updates are
// summed meanwhile (KubeSync.hold / release, the informer's onDelivery): what the metrics show
// after a list is what one update per event showed — every Service event counted per proxier
// family, an EndpointSlice's for its own family, the last-queued time of each family — but the
// control plane's metrics are updated once per family and kind, not once per listed object.
import test from 'ava';
import { startKube, until, apiService, apiSlice } from './lib/kube-fixture.js';
import { ControlPlaneMetrics } from '../dist/src/api/metrics.js';
import { KubeSync } from '../dist/src/kube/sync.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('a first list: change counters and last-queued times as per event, updated once per family and kind', async (t) => {
  const calls = { queued: 0, changeEvent: 0 };
  const { queued, changeEvent } = ControlPlaneMetrics.prototype;
  ControlPlaneMetrics.prototype.queued = function (...a) { calls.queued++; return queued.apply(this, a); };
  ControlPlaneMetrics.prototype.changeEvent = function (...a) { calls.changeEvent++; return changeEvent.apply(this, a); };
  t.teardown(() => { ControlPlaneMetrics.prototype.queued = queued; ControlPlaneMetrics.prototype.changeEvent = changeEvent; });
  const before = Date.now();
  // a dual-stack host: both proxiers
  const k = await startKube(t, {
    hostIPv6: true,
    seed: (d) => {
      for (let i = 0; i < 30; i++) d.create('services', apiService(`s${i}`, `10.96.13.${i + 1}`));
      for (let i = 0; i < 20; i++) d.create('endpointslices', apiSlice(`s${i}-a`, `s${i}`, [`10.244.13.${i + 1}`]));
      for (let i = 0; i < 5; i++) d.create('endpointslices', { ...apiSlice(`s${i}-v6`, `s${i}`, [`fd00::13:${i + 1}`]), addressType: 'IPv6' });
      for (let i = 0; i < 2; i++) d.create('endpointslices', { ...apiSlice(`s${i}-fqdn`, `s${i}`, ['pod.example']), addressType: 'FQDN' });
    },
  });
  await until(() => k.compiler.getSlice('default', 's19-a') && k.compiler.getService('default', 's29'), { what: 'first sync' });
  const text = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  const value = (re) => Number(re.exec(text)?.[1]);
  t.is(value(/^kubeproxy_sync_proxy_rules_service_changes_total (\S+)$/m), 60, 'each listed Service once per proxier family');
  t.is(value(/^kubeproxy_sync_proxy_rules_endpoint_changes_total (\S+)$/m), 25, 'each IPv4 and IPv6 slice; no FQDN one');
  for (const f of ['IPv4', 'IPv6']) {
    const at = value(new RegExp(`^kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds\\{ip_family="${f}"\\} (\\S+)$`, 'm'));
    t.true(at * 1000 >= before - 1000 && at * 1000 <= Date.now() + 1000, `${f}: queued during the list (${at})`);
  }
  t.true(calls.queued <= 6 && calls.changeEvent <= 8, `updated per family and kind, not per object (queued ${calls.queued}, changeEvent ${calls.changeEvent} calls for 57 objects)`);
});

test('held events are released as their own updates would have left the metrics: each family\'s last event\'s time, in order, and the counts', async (t) => {
  const run = (hold) => {
    const log = [];
    const timestamps = { markSynced() {}, queued: (f, at) => log.push(['queued', f ?? 'all', at ?? 'now']), changeEvent: (k, f, n = 1) => log.push(['changes', k, f ?? '-', n]) };
    const sync = new KubeSync({ compiler: { listServices: () => [], listSlices: () => [] }, async applyEach() { return { skipped: [] }; } },
      { services: () => [], slices: () => [] }, { minSyncPeriodMs: 0, syncPeriodMs: 3_600_000, log: quiet, timestamps });
    const realNow = Date.now;
    let clock = 1000;
    Date.now = () => clock;
    try {
      if (hold) sync.hold();
      const ev = (kind, name, addressType) => { clock += 10; sync.queue(kind, { metadata: { name, namespace: 'ns' }, ...(addressType ? { addressType } : {}) }); };
      ev('EndpointSlice', 'a', 'IPv6'); ev('Service', 'b'); ev('EndpointSlice', 'c', 'IPv4'); ev('EndpointSlice', 'd', 'IPv6'); ev('EndpointSlice', 'e', 'FQDN'); ev('Service', 'f');
      if (hold) { t.deepEqual(log, [], 'nothing while held'); sync.release(); }
    } finally { Date.now = realNow; }
    return log;
  };
  const held = run(true), each = run(false);
  // the last value each family's gauge got: per event, and released
  const lastQueued = (log) => {
    const g = {};
    for (const [op, f, at] of log) if (op === 'queued') { if (f === 'all') { g.IPv4 = at; g.IPv6 = at; } else g[f] = at; }
    return g;
  };
  const perEvent = each.filter(([op]) => op === 'queued').map(([, f]) => f);
  t.deepEqual(perEvent, ['IPv6', 'all', 'IPv4', 'IPv6', 'all', 'all']);
  t.deepEqual(held.filter(([op]) => op === 'queued'), [['queued', 'IPv4', 1030], ['queued', 'IPv6', 1040], ['queued', 'all', 1060]]);
  // (the per-event calls take Date.now() themselves: compare what the gauges end with)
  t.deepEqual(lastQueued(held), { IPv4: 1060, IPv6: 1060 });
  const counts = (log) => {
    const c = {};
    for (const [op, k, f, n] of log) if (op === 'changes') c[`${k}/${f}`] = (c[`${k}/${f}`] ?? 0) + n;
    return c;
  };
  t.deepEqual(counts(held), counts(each));
  t.deepEqual(counts(held), { 'Service/-': 2, 'EndpointSlice/IPv4': 1, 'EndpointSlice/IPv6': 2, 'EndpointSlice/-': 1 });
});
