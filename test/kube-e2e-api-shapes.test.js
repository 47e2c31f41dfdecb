// Objects the API server accepts in shapes the model alone would refuse, through the watcher
// (src/kube/) and the API-server double into an in-thread core: kube-proxy serves them (its
// informers apply no validation of their own), so wdp must too, not skip the whole object — a
// skipped update leaves the object's previous version forwarding. Upstream scenarios: a Service
// whose spec.externalIPs lists an address twice (the API server's ValidateService has no duplicate
// check for externalIPs, kubernetes#69599), and a manually managed EndpointSlice with a port entry
// whose port is 0 (discovery validation does not range-check EndpointSlice ports; kube-proxy's
// EndpointSliceCache logs "Ignoring invalid endpoint port" and serves the slice's other ports).
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode, traceTo } from './lib/kube-fixture.js';

test('a Service with an external IP listed twice is served (cluster IP and external IP), and an update that lists it twice is applied, not skipped', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', apiService('dup', '10.96.5.1', { extra: { externalIPs: ['198.51.100.7', '198.51.100.7'] } }));
      d.create('endpointslices', apiSlice('dup-a', 'dup', ['10.244.1.5']));
      d.create('services', apiService('later', '10.96.5.2', { extra: { externalIPs: ['198.51.100.8'] } }));
      d.create('endpointslices', apiSlice('later-a', 'later', ['10.244.1.6']));
    },
  });
  await until(() => k.compiler.sliceCount() === 2 && k.watcher.sync.stats.full >= 1, { what: 'first sync' });
  t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
  let r = await traceTo(k.dp, '10.96.5.1', 80);
  t.is(r.backend?.addr, '10.244.1.5', 'the cluster IP is served');
  r = await traceTo(k.dp, '198.51.100.7', 80);
  t.is(r.backend?.addr, '10.244.1.5', 'the external IP is served');
  // an update to the other Service: a new port, its external IP listed twice
  k.double.apply('services', apiService('later', '10.96.5.2', {
    ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'alt', port: 81, targetPort: 8080 }],
    extra: { externalIPs: ['198.51.100.8', '198.51.100.9', '198.51.100.8'] },
  }));
  k.double.apply('endpointslices', { ...apiSlice('later-a', 'later', ['10.244.1.6']), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 8080, protocol: 'TCP' }] });
  await until(async () => (await traceTo(k.dp, '198.51.100.9', 81)).backend?.addr === '10.244.1.6', { what: 'the updated Service programmed' });
  r = await traceTo(k.dp, '10.96.5.2', 81);
  t.is(r.backend?.addr, '10.244.1.6', 'the new port is served');
  t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
  // the model's copy (each address once) is what the API's object means: a full sync finds
  // nothing to program again
  const fullSyncs = k.watcher.sync.stats.full;
  const programmed = () => k.lines.filter((l) => l.msg === 'synced' && l.full).length;
  const before = programmed();
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > fullSyncs, { what: 'another full sync' });
  t.is(programmed(), before, 'the full sync programmed nothing again');
});

test('an EndpointSlice with a port entry whose port is 0 serves its other ports (kube-proxy ignores that entry)', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', apiService('manual', '10.96.5.3', { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'admin', port: 90, targetPort: 9090 }], extra: { selector: undefined } }));
      d.create('endpointslices', { ...apiSlice('manual-1', 'manual', ['10.244.1.7']), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'admin', port: 0, protocol: 'TCP' }] });
    },
  });
  await until(() => k.watcher.sync.stats.full >= 1 && k.compiler.serviceCount() === 1, { what: 'first sync' });
  await until(async () => (await traceTo(k.dp, '10.96.5.3', 80)).backend?.addr === '10.244.1.7', { what: 'the slice programmed' });
  t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
  const admin = await traceTo(k.dp, '10.96.5.3', 90);
  t.falsy(admin.backend, 'the port-0 entry gives its Service port no endpoint');
  // the slice's endpoint moves: the update is applied too
  k.double.apply('endpointslices', { ...apiSlice('manual-1', 'manual', ['10.244.1.8']), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'admin', port: 0, protocol: 'TCP' }] });
  await until(async () => (await traceTo(k.dp, '10.96.5.3', 80)).backend?.addr === '10.244.1.8', { what: 'the slice update programmed' });
  t.pass();
});

test('a Service with an external IP or load-balancer IP the API server accepts but no single host owns (multicast, reserved) is served at its other addresses, the address left out with a warning', async (t) => {
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      // ValidateNonSpecialIP refuses only unspecified, loopback and link-local addresses (unicast
      // and link-local multicast); load-balancer ingress IPs are not checked for those at all
      d.create('services', apiService('odd', '10.96.5.4', {
        type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30584 }],
        extra: { externalIPs: ['239.1.2.3', '198.51.100.10'], externalTrafficPolicy: 'Cluster' },
        status: { loadBalancer: { ingress: [{ ip: '240.0.0.7', ipMode: 'VIP' }, { ip: '192.0.2.50', ipMode: 'VIP' }] } },
      }));
      d.create('endpointslices', apiSlice('odd-a', 'odd', ['10.244.1.9']));
    },
  });
  await until(() => k.watcher.sync.stats.full >= 1 && k.compiler.sliceCount() === 1, { what: 'first sync' });
  t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
  for (const [addr, port] of [['10.96.5.4', 80], ['198.51.100.10', 80], ['192.0.2.50', 80]]) {
    t.is((await traceTo(k.dp, addr, port)).backend?.addr, '10.244.1.9', `${addr}:${port} served`);
  }
  for (const addr of ['239.1.2.3', '240.0.0.7']) t.falsy((await traceTo(k.dp, addr, 80)).frontend, `${addr} not captured`);
  const warned = k.lines.filter((l) => l.level === 40 && l.object === 'Service/default/odd' && Array.isArray(l.addresses));
  t.is(warned.length, 1, 'one warning for the version');
  t.deepEqual(warned[0]?.addresses.sort(), ['239.1.2.3', '240.0.0.7']);
  // a full sync neither programs it again nor warns again
  const full = k.watcher.sync.stats.full;
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > full, { what: 'another full sync' });
  t.is(k.lines.filter((l) => l.level === 40 && l.object === 'Service/default/odd' && Array.isArray(l.addresses)).length, 1, 'not warned again');
  t.is(k.lines.filter((l) => l.msg === 'synced' && l.full).length, 1, 'the full sync programmed nothing again');
});
