// The IP families kube-proxy's nftables mode runs a proxier for, which label wdp's kube-proxy
// metrics and healthz status: both whenever the host has IPv6 (cmd/kube-proxy's
// platformCheckSupported: only a missing /proc/net/if_inet6 makes it single-stack), whatever the
// Node's IPs — an IPv4-only Node included — else the family of the Node's primary IP.
import test from 'ava';
import { proxierFamilies } from '../dist/src/kube/node.js';
import { apiService, apiSlice, apiNode, startKube, until } from './lib/kube-fixture.js';

test('proxierFamilies: both on a host with IPv6 whatever the node IPs; without IPv6 the primary IP\'s family (IPv4 when none)', (t) => {
  t.deepEqual(proxierFamilies(['192.168.1.2'], true), ['IPv4', 'IPv6']);
  t.deepEqual(proxierFamilies([], true), ['IPv4', 'IPv6']);
  t.deepEqual(proxierFamilies(['fd00::2'], true), ['IPv4', 'IPv6']);
  t.deepEqual(proxierFamilies(['192.168.1.2', 'fd00::2'], false), ['IPv4']);
  t.deepEqual(proxierFamilies(['fd00::2', '192.168.1.2'], false), ['IPv6']);
  t.deepEqual(proxierFamilies([], false), ['IPv4']);
});

test('an IPv4-only Node on a host with IPv6: sync metrics and the healthz status carry IPv6 too, as kube-proxy\'s dual-stack proxiers', async (t) => {
  const k = await startKube(t, { hostIPv6: true, seed: (d) => { d.create('nodes', apiNode('node-a')); d.create('services', apiService('p', '10.96.12.1')); } });
  await until(() => k.compiler.getService('default', 'p') && k.watcher.nodeState(), { what: 'first sync and the Node' });
  k.double.create('services', apiService('q', '10.96.12.2'));
  await until(() => k.compiler.getService('default', 'q'), { what: 'a partial sync' });
  const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  for (const f of ['IPv4', 'IPv6']) {
    t.regex(m, new RegExp(`kubeproxy_sync_proxy_rules_duration_seconds_count\\{ip_family="${f}"\\} [1-9]`), f);
    t.regex(m, new RegExp(`kubeproxy_sync_proxy_rules_last_timestamp_seconds\\{ip_family="${f}"\\} [1-9]`), f);
    t.regex(m, new RegExp(`kubeproxy_sync_partial_proxy_rules_duration_seconds_count\\{ip_family="${f}"\\} [1-9]`), f);
  }
  const body = await (await fetch(`${k.watcher.healthzUrl}/healthz`)).json();
  t.deepEqual(Object.keys(body.status ?? {}), ['IPv4', 'IPv6'], JSON.stringify(body));
  // each family's change tracker counts a Service event; an IPv6 slice is the IPv6 proxier's
  const total = async (what) => Number(new RegExp(`^kubeproxy_sync_proxy_rules_${what}_changes_total (\\S+)$`, 'm').exec(await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text())?.[1]);
  t.is(await total('service'), 4, 'two Service events, counted by both proxiers');
  k.double.create('endpointslices', { ...apiSlice('q-v6', 'q', ['fd00::12']), addressType: 'IPv6' });
  await until(() => k.compiler.getSlice('default', 'q-v6'), { what: 'the IPv6 slice' });
  t.is(await total('endpoint'), 1, 'the IPv6 slice counted');
});

test('a host without IPv6: one proxier, of the Node\'s primary IP\'s family', async (t) => {
  const k = await startKube(t, {
    hostIPv6: false,
    seed: (d) => { d.create('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: 'fd00::2' }] })); d.create('services', apiService('p', 'fd00:96::1')); },
  });
  await until(() => k.compiler.getService('default', 'p') && k.watcher.nodeState(), { what: 'first sync and the Node' });
  k.double.create('services', apiService('q', 'fd00:96::2'));
  await until(() => k.compiler.getService('default', 'q'), { what: 'a partial sync' });
  const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  t.regex(m, /kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv6"\} [1-9]/);
  t.notRegex(m, /kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv4"\}/);
  const body = await (await fetch(`${k.watcher.healthzUrl}/healthz`)).json();
  t.deepEqual(Object.keys(body.status ?? {}), ['IPv6'], JSON.stringify(body));
});
