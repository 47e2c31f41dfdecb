// The IP families kube-proxy's nftables mode runs a proxier for, which label wdp's kube-proxy
// metrics and healthz status: both whenever the host has IPv6 (cmd/kube-proxy's
// platformCheckSupported: only a missing /proc/net/if_inet6 makes it single-stack), whatever the
// Node's IPs — an IPv4-only Node included — else the family of the Node's primary IP.
import test from 'ava';
import { proxierFamilies } from '../dist/src/kube/node.js';
import { apiService, apiSlice, apiNode, startKube, until, traceTo } from './lib/kube-fixture.js';

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

// kube-proxy's single proxier (pkg/proxy ServiceChangeTracker, EndpointSliceCache, built for one
// family) keeps of a Service its cluster IP, external IPs, ingress IPs and source ranges of that
// family, and nothing of a Service with no cluster IP of it; of the slices, those of its address
// type. What the dataplane forwards (the model, its frontends) is the same.
const v6 = (ip) => ({ src: 'fd00::2', dst: ip, proto: 'TCP', sport: 40000, dport: 80 });
const dualStack = (name, v4, v6addr, extra = {}) => {
  const s = apiService(name, v4, { type: 'LoadBalancer', extra: { clusterIPs: [v4, v6addr], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack', ...extra } });
  s.spec.ports[0].nodePort = 30080;
  s.status = { loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'VIP' }, { ip: '2001:db8::10', ipMode: 'VIP' }] } };
  return s;
};

test('a host without IPv6 and an IPv4 Node: only the IPv4 side of Services and slices is programmed; IPv6-only Services and IPv6 slices not at all', async (t) => {
  const cidrObject = (name, cidrs) => ({ metadata: { name }, spec: { cidrs } });
  const k = await startKube(t, {
    hostIPv6: false,
    seed: (d) => {
      d.create('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, { type: 'InternalIP', address: 'fd00:100::2' }] }));
      d.create('services', dualStack('ds', '10.96.20.1', 'fd00:96::20', { externalIPs: ['192.0.2.20', '2001:db8::20'], loadBalancerSourceRanges: ['10.0.0.0/8', 'fd00::/8'] }));
      d.create('services', apiService('six', 'fd00:96::21'));
      d.create('endpointslices', apiSlice('ds-v4', 'ds', ['10.244.1.20']));
      d.create('endpointslices', { ...apiSlice('ds-v6', 'ds', ['fd00:244::20']), addressType: 'IPv6' });
      d.create('endpointslices', { ...apiSlice('six-1', 'six', ['fd00:244::21']), addressType: 'IPv6' });
      d.create('servicecidrs', cidrObject('kubernetes', ['10.96.0.0/12', 'fd00:96::/112']));
    },
  });
  await until(() => k.compiler.getService('default', 'ds') && k.compiler.getSlice('default', 'ds-v4'), { what: 'the first sync' });
  const spec = k.compiler.getService('default', 'ds').raw.spec;
  t.deepEqual(spec.clusterIPs, ['10.96.20.1']);
  t.deepEqual(spec.externalIPs, ['192.0.2.20']);
  t.deepEqual(spec.loadBalancerSourceRanges, ['10.0.0.0/8']);
  t.deepEqual(k.compiler.getService('default', 'ds').raw.status.loadBalancer.ingress.map((i) => i.ip), ['192.0.2.10']);
  t.falsy(k.compiler.getService('default', 'six'), 'an IPv6-only Service is no proxier\'s');
  t.falsy(k.compiler.getSlice('default', 'ds-v6'));
  t.falsy(k.compiler.getSlice('default', 'six-1'));
  // the dataplane: IPv4 forwarded, no IPv6 frontend at all
  t.is((await traceTo(k.dp, '10.96.20.1', 80)).backend?.addr, '10.244.1.20');
  t.is((await traceTo(k.dp, '192.0.2.20', 80)).backend?.addr, '10.244.1.20');
  for (const ip of ['fd00:96::20', 'fd00:96::21', '2001:db8::20', '2001:db8::10']) t.falsy((await k.dp.trace(v6(ip))).frontend, ip);
  // NodePorts: on the IPv4 node IP only
  await until(() => k.nodeUpdates.length, { what: 'the Node' });
  t.deepEqual(k.nodeUpdates.at(-1).nodePortAddresses, ['192.168.100.2']);
  // the service CIDRs: the IPv4 proxier's
  await until(() => k.serviceCIDRUpdates.length, { what: 'the service CIDRs' });
  t.deepEqual(k.serviceCIDRUpdates.at(-1), ['10.96.0.0/12']);
  // a change keeps it so; the next full sync too (the model's copy is what the family keeps)
  k.double.update('services', dualStack('ds', '10.96.20.1', 'fd00:96::20', { externalIPs: ['192.0.2.21', '2001:db8::21'] }));
  await until(() => k.compiler.getService('default', 'ds').raw.spec.externalIPs?.[0] === '192.0.2.21', { what: 'the update' });
  t.deepEqual(k.compiler.getService('default', 'ds').raw.spec.externalIPs, ['192.0.2.21']);
  const fulls = k.watcher.sync.stats.full;
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > fulls, { what: 'a full sync' });
  t.deepEqual(k.compiler.getService('default', 'ds').raw.spec.clusterIPs, ['10.96.20.1']);
  t.falsy(k.compiler.getService('default', 'six'));
  // metrics: the IPv4 proxier's series only
  const m = await (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
  t.regex(m, /kubeproxy_sync_proxy_rules_no_local_endpoints_total\{traffic_policy="internal",ip_family="IPv4"\}/);
  t.notRegex(m, /kubeproxy_sync_proxy_rules_no_local_endpoints_total\{[^}]*ip_family="IPv6"\}/);
});

test('a host without IPv6: the config file\'s service CIDRs of the other family are left alone too (no drop for IPv6 a proxier does not run)', async (t) => {
  const k = await startKube(t, {
    hostIPv6: false, configuredServiceCIDRs: ['10.96.0.0/16', 'fd00:96::/112'],
    seed: (d) => { d.create('nodes', apiNode('node-a', { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }] })); d.create('services', apiService('p', '10.96.0.5')); },
  });
  await until(() => k.serviceCIDRUpdates.length, { what: 'the service CIDRs' });
  t.deepEqual(k.serviceCIDRUpdates.at(-1), ['10.96.0.0/16']);
});

test('a host with IPv6: both sides programmed, as kube-proxy\'s dual-stack proxiers', async (t) => {
  const k = await startKube(t, {
    hostIPv6: true,
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', dualStack('ds', '10.96.20.1', 'fd00:96::20', { externalIPs: ['192.0.2.20', '2001:db8::20'] }));
      d.create('services', apiService('six', 'fd00:96::21'));
      d.create('endpointslices', { ...apiSlice('ds-v6', 'ds', ['fd00:244::20']), addressType: 'IPv6' });
    },
  });
  await until(() => k.compiler.getService('default', 'six') && k.compiler.getSlice('default', 'ds-v6'), { what: 'the first sync' });
  t.deepEqual(k.compiler.getService('default', 'ds').raw.spec.clusterIPs, ['10.96.20.1', 'fd00:96::20']);
  t.deepEqual(k.compiler.getService('default', 'ds').raw.spec.externalIPs, ['192.0.2.20', '2001:db8::20']);
  t.truthy((await k.dp.trace(v6('fd00:96::20'))).frontend);
});

test('a model programmed for both families (a restart onto a host without IPv6): the first full sync cuts it to the proxier\'s family', async (t) => {
  const { ApiServerDouble } = await import('./lib/apiserver-double.js');
  const double = new ApiServerDouble();
  await double.listen();
  t.teardown(() => double.close());
  double.create('nodes', apiNode('node-a'));
  double.create('services', dualStack('ds', '10.96.20.1', 'fd00:96::20'));
  double.create('services', apiService('six', 'fd00:96::21'));
  double.create('endpointslices', { ...apiSlice('ds-v6', 'ds', ['fd00:244::20']), addressType: 'IPv6' });
  const stateDir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/wdp-fam-`);
  t.teardown(() => (async () => (await import('node:fs')).rmSync(stateDir, { recursive: true, force: true }))());
  const both = await startKube(t, { existing: double, hostIPv6: true, stateDir });
  await until(() => both.compiler.getService('default', 'six') && both.compiler.getSlice('default', 'ds-v6'), { what: 'the dual-stack sync' });
  await both.stop();
  const one = await startKube(t, { existing: double, hostIPv6: false, stateDir });
  t.truthy(one.compiler.getService('default', 'six'), 'restored as saved');
  await until(() => !one.compiler.getService('default', 'six') && !one.compiler.getSlice('default', 'ds-v6'), { what: 'the IPv6 objects gone' });
  t.deepEqual(one.compiler.getService('default', 'ds').raw.spec.clusterIPs, ['10.96.20.1']);
  t.falsy((await one.dp.trace(v6('fd00:96::20'))).frontend);
});
