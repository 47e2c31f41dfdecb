// After each sync the watcher reads the Services with a Local traffic policy (health-check ports,
// the no-local-endpoints gauge). It passes over every Service only when a Service changed since
// its last pass (ControlPlaneCore.serviceChanges): a sync of EndpointSlices alone does not walk
// all Services again, and a Service changed by another writer (`wdp apply` through the API) is
// still seen at the next sync, as before.
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode } from './lib/kube-fixture.js';

const metricsText = async (k) => (await fetch(`${k.watcher.metricsUrl}/metrics`)).text();
const gauge = (text, policy) => Number(new RegExp(`^kubeproxy_sync_proxy_rules_no_local_endpoints_total\\{traffic_policy="${policy}",ip_family="IPv4"\\} (\\S+)$`, 'm').exec(text)?.[1]);

test('slice-only syncs do not pass over every Service; Local Services changed by the watcher or by an apply are counted at the next sync', async (t) => {
  const k = await startKube(t, {
    hostIPv6: false,
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', apiService('loc', '10.96.14.1', { extra: { internalTrafficPolicy: 'Local' } }));
      for (let i = 0; i < 5; i++) d.create('services', apiService(`c${i}`, `10.96.14.${i + 10}`));
      // an endpoint elsewhere only: the Local Service's port has no local endpoint
      d.create('endpointslices', apiSlice('loc-1', 'loc', ['10.244.14.1'], { nodeName: 'node-b' }));
    },
  });
  await until(() => k.compiler.getSlice('default', 'loc-1'), { what: 'first sync' });
  // this node, as the daemon programs it (no Service changes)
  await k.cp.core.apply([{ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.100.2'] } }]);
  const each = k.compiler.eachService.bind(k.compiler);
  let passes = 0;
  k.compiler.eachService = () => { passes++; return each(); };
  t.teardown(() => { k.compiler.eachService = each; });
  const syncs = () => k.watcher.sync.stats.partial + k.watcher.sync.stats.full;
  // slices only: no pass over the Services
  for (let i = 0; i < 3; i++) {
    const before = syncs();
    k.double.create('endpointslices', apiSlice(`c${i}-1`, `c${i}`, [`10.244.14.${i + 20}`]));
    await until(() => k.compiler.getSlice('default', `c${i}-1`) && syncs() > before, { what: `slice c${i}-1 synced` });
  }
  await until(async () => gauge(await metricsText(k), 'internal') === 1, { what: 'the gauge: loc has no local endpoint' });
  t.is(passes, 0, 'no pass over the Services for slice-only syncs');
  // a local endpoint appears: the gauge follows without a pass
  const s = k.double.get('endpointslices', 'default', 'loc-1');
  k.double.update('endpointslices', { ...s, endpoints: [...s.endpoints, { addresses: ['10.244.14.2'], conditions: { ready: true }, nodeName: 'node-a' }] });
  await until(async () => gauge(await metricsText(k), 'internal') === 0, { what: 'the gauge with a local endpoint' });
  t.is(passes, 0);
  // a Service turned Local by the watcher: one pass, counted
  const c0 = k.double.get('services', 'default', 'c0');
  k.double.update('services', { ...c0, spec: { ...c0.spec, internalTrafficPolicy: 'Local' } });
  await until(() => k.compiler.getService('default', 'c0')?.internalLocal, { what: 'c0 Local in the model' });
  await until(() => passes >= 1, { what: 'a pass after a Service change' });
  t.is(gauge(await metricsText(k), 'internal'), 0, 'c0\'s endpoint is on this node');
  // a Service turned Local by another writer (the control API): seen at the next slice-only sync
  const c1 = k.compiler.getService('default', 'c1').raw;
  await k.cp.core.apply([{ ...c1, spec: { ...c1.spec, internalTrafficPolicy: 'Local' } }]);
  const c1Slice = k.double.get('endpointslices', 'default', 'c1-1');
  const before = syncs();
  k.double.update('endpointslices', { ...c1Slice, endpoints: c1Slice.endpoints.map((e) => ({ ...e, nodeName: 'node-b' })) });
  await until(() => k.compiler.getSlice('default', 'c1-1')?.endpoints[0].nodeName === 'node-b' && syncs() > before, { what: 'the c1 slice moved to node-b' });
  // loc has a local endpoint, c0's is on node-a, c1's now on node-b: only c1 has none
  await until(async () => gauge(await metricsText(k), 'internal') === 1, { what: 'c1 (Local through the API, no local endpoint) counted' });
});
