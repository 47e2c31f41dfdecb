// Service semantics kube-proxy changed or settled in 1.33–1.35, through the watcher (src/kube/) and
// the API-server double into an in-thread core (no root, no namespaces): what the compiled
// frontends spread over. Reference: pkg/proxy/topology.go (topologyModeFromHints, CategorizeEndpoints)
// and pkg/proxy/serviceport.go (ingress IPs by ipMode).
// * trafficDistribution (PreferClose, its 1.33 name PreferSameZone, PreferSameNode — GA in 1.35)
//   and the service.kubernetes.io/topology-mode annotation are read by the EndpointSlice
//   controller, which writes hints; kube-proxy reads only the hints: every ready endpoint hinted
//   for nodes and one for this node → those; else every ready endpoint hinted for zones and one for
//   this node's zone → those; else all. So a Service asking for PreferSameZone whose slice has no
//   hints yet spreads over every endpoint, and a slice with hints is followed whatever the Service
//   says (`topology-mode: Disabled` included: the controller removes the hints, the proxy does not
//   look at the annotation).
// * status.loadBalancer.ingress[].ipMode Proxy (GA in 1.32): the load balancer proxies, kube-proxy
//   does not capture that address; VIP or unset: captured.
import test from 'ava';
import { startKube, until, apiService, apiSlice, apiNode, traceTo } from './lib/kube-fixture.js';

const zoneNode = (name, zone) => { const n = apiNode(name); n.metadata.labels = { 'kubernetes.io/hostname': name, 'topology.kubernetes.io/zone': zone }; return n; };

/** A slice of `eps` = [[address, nodeName, {zones, nodes}]] for Service `svc`, as the controller writes it. */
function hintedSlice(name, svc, eps) {
  const s = apiSlice(name, svc, eps.map(([a]) => a));
  s.endpoints = s.endpoints.map((e, i) => {
    const [, nodeName, h] = eps[i];
    const hints = {};
    if (h?.zones) hints.forZones = h.zones.map((z) => ({ name: z }));
    if (h?.nodes) hints.forNodes = h.nodes.map((n) => ({ name: n }));
    return { ...e, nodeName, zone: h?.zone ?? 'zone-x', ...(Object.keys(hints).length ? { hints } : {}) };
  });
  return s;
}

/** The backend addresses the compiled frontend of `kind` at `addr` spreads over (sorted); null when there is no such frontend. */
function spread(compiler, addr, kind = 'ClusterIP') {
  const f = [...compiler.ir.frontends.values()].find((x) => x.kind === kind && x.addr === addr);
  return f ? f.backends.map((id) => compiler.ir.backends.get(id).addr).sort() : null;
}

test('topology: the hints decide, not the Service\'s trafficDistribution or topology-mode annotation; PreferSameNode falls back to the zone hints, then to every endpoint', async (t) => {
  const svc = (name, ip, { td, ann } = {}) => {
    const s = apiService(name, ip, { extra: td ? { trafficDistribution: td } : {} });
    if (ann) s.metadata.annotations['service.kubernetes.io/topology-mode'] = ann;
    return s;
  };
  const zoneHinted = (name, svcName) => hintedSlice(name, svcName, [
    ['10.244.1.1', 'node-b', { zones: ['zone-a'], zone: 'zone-a' }],
    ['10.244.2.1', 'node-c', { zones: ['zone-b'], zone: 'zone-b' }],
  ]);
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', zoneNode('node-a', 'zone-a'));
      // asks for same-zone routing, the controller has written no hints (yet): every endpoint
      d.create('services', svc('ask', '10.96.60.1', { td: 'PreferSameZone' }));
      d.create('endpointslices', hintedSlice('ask-1', 'ask', [['10.244.1.1', 'node-b'], ['10.244.2.1', 'node-c']]));
      // the annotation says Disabled, the slice has hints: the hints
      d.create('services', svc('ann', '10.96.60.2', { ann: 'Disabled' }));
      d.create('endpointslices', zoneHinted('ann-1', 'ann'));
      // the deprecated alias and its new name: the same (the hints)
      d.create('services', svc('close', '10.96.60.3', { td: 'PreferClose' }));
      d.create('endpointslices', zoneHinted('close-1', 'close'));
      d.create('services', svc('zone', '10.96.60.4', { td: 'PreferSameZone', ann: 'Auto' }));
      d.create('endpointslices', zoneHinted('zone-1', 'zone'));
      // PreferSameNode: node hints on every endpoint, none for node-a → the zone hints
      d.create('services', svc('node', '10.96.60.5', { td: 'PreferSameNode' }));
      d.create('endpointslices', hintedSlice('node-1', 'node', [
        ['10.244.1.2', 'node-b', { nodes: ['node-b'], zones: ['zone-a'], zone: 'zone-a' }],
        ['10.244.2.2', 'node-c', { nodes: ['node-c'], zones: ['zone-b'], zone: 'zone-b' }],
      ]));
      // PreferSameNode with one endpoint hinted for node-a: that one
      d.create('services', svc('here', '10.96.60.6', { td: 'PreferSameNode' }));
      d.create('endpointslices', hintedSlice('here-1', 'here', [
        ['10.244.1.3', 'node-a', { nodes: ['node-a'], zones: ['zone-a'], zone: 'zone-a' }],
        ['10.244.1.4', 'node-b', { nodes: ['node-b'], zones: ['zone-a'], zone: 'zone-a' }],
        ['10.244.2.3', 'node-c', { nodes: ['node-c'], zones: ['zone-b'], zone: 'zone-b' }],
      ]));
    },
  });
  // the Node's zone reaches the node config as the daemon programs it (its onNode: a NodeConfig
  // with the Node's zone; the fixture leaves that to the test)
  const u = await until(() => k.nodeUpdates.find((x) => x.zone === 'zone-a'), { what: 'the Node read with its zone' });
  await k.cp.core.apply([{ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: u.addresses, zone: u.zone } }]);
  await until(() => k.compiler.sliceCount() === 6 && k.watcher.sync.stats.full >= 1 && spread(k.compiler, '10.96.60.6')?.length === 1, { what: 'programmed with the Node\'s zone' });
  t.deepEqual(spread(k.compiler, '10.96.60.1'), ['10.244.1.1', '10.244.2.1'], 'PreferSameZone without hints: every endpoint');
  t.deepEqual(spread(k.compiler, '10.96.60.2'), ['10.244.1.1'], 'topology-mode Disabled with hints: the zone\'s (the proxy reads hints, not the annotation)');
  t.deepEqual(spread(k.compiler, '10.96.60.3'), ['10.244.1.1'], 'PreferClose: the zone\'s');
  t.deepEqual(spread(k.compiler, '10.96.60.4'), ['10.244.1.1'], 'PreferSameZone: the zone\'s');
  t.deepEqual(spread(k.compiler, '10.96.60.5'), ['10.244.1.2'], 'PreferSameNode, no endpoint for this node: the zone hints');
  t.deepEqual(spread(k.compiler, '10.96.60.6'), ['10.244.1.3'], 'PreferSameNode: the endpoint hinted for this node');

  // the controller removes the hints (the Service's trafficDistribution unset): every endpoint
  k.double.apply('endpointslices', hintedSlice('close-1', 'close', [['10.244.1.1', 'node-b'], ['10.244.2.1', 'node-c']]));
  await until(() => spread(k.compiler, '10.96.60.3')?.length === 2, { what: 'the unhinted slice programmed' });
  // this node's endpoint turns unready: the node hints of the ready ones name no node-a → zone
  const here = hintedSlice('here-1', 'here', [
    ['10.244.1.3', 'node-a', { nodes: ['node-a'], zones: ['zone-a'], zone: 'zone-a' }],
    ['10.244.1.4', 'node-b', { nodes: ['node-b'], zones: ['zone-a'], zone: 'zone-a' }],
    ['10.244.2.3', 'node-c', { nodes: ['node-c'], zones: ['zone-b'], zone: 'zone-b' }],
  ]);
  here.endpoints[0].conditions = { ready: false, serving: false, terminating: false };
  k.double.apply('endpointslices', here);
  await until(() => JSON.stringify(spread(k.compiler, '10.96.60.6')) === '["10.244.1.4"]', { what: 'PreferSameNode falling back to the zone', timeoutMs: 15000 });
  t.pass();
});

test('LoadBalancer ingress ipMode: VIP and unset are captured, Proxy is not (the load balancer proxies to the node)', async (t) => {
  const lb = (name, ip, ingress) => apiService(name, ip, {
    type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30000 + Number(ip.split('.').pop()) }],
    extra: { externalTrafficPolicy: 'Cluster' }, status: { loadBalancer: { ingress } },
  });
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', lb('mixed', '10.96.61.1', [{ ip: '192.0.2.61', ipMode: 'VIP' }, { ip: '192.0.2.62', ipMode: 'Proxy' }, { ip: '192.0.2.63' }]));
      d.create('endpointslices', apiSlice('mixed-1', 'mixed', ['10.244.1.61']));
    },
  });
  await until(() => spread(k.compiler, '10.96.61.1')?.length === 1, { what: 'programmed' });
  t.deepEqual(spread(k.compiler, '192.0.2.61', 'LoadBalancer'), ['10.244.1.61'], 'ipMode VIP');
  t.deepEqual(spread(k.compiler, '192.0.2.63', 'LoadBalancer'), ['10.244.1.61'], 'ipMode unset (VIP)');
  t.is(spread(k.compiler, '192.0.2.62', 'LoadBalancer'), null, 'ipMode Proxy: not captured');
  // the load balancer switches the address to Proxy: no longer captured
  k.double.apply('services', lb('mixed', '10.96.61.1', [{ ip: '192.0.2.61', ipMode: 'Proxy' }, { ip: '192.0.2.62', ipMode: 'Proxy' }, { ip: '192.0.2.63' }]));
  await until(() => spread(k.compiler, '192.0.2.61', 'LoadBalancer') === null, { what: 'the switch to Proxy programmed' });
  t.deepEqual(spread(k.compiler, '192.0.2.63', 'LoadBalancer'), ['10.244.1.61']);
});

// The nftables proxier's verdicts (syncProxyRules, setupNFTables): no usable endpoint anywhere →
// `reject` (goto reject-chain) at every address of the port, whatever the traffic policies; a
// Local policy without a local endpoint while endpoints exist elsewhere → `drop` for that traffic;
// endpoints serving but neither ready nor terminating, and serving-terminating ones under Local
// elsewhere, decide like that; a ClusterIP's undefined port → reject (cluster-ips-check); an address of the service CIDRs no
// Service of kube-proxy's holds — unallocated, or the cluster IP of a Service labelled for another
// proxy or headless, which its informers never see → drop.
test('reject or drop, as the nftables proxier decides them: no endpoints anywhere, a Local policy without a local endpoint, an undefined port, an address no Service of this proxy holds', async (t) => {
  const lb = (name, ip, n) => apiService(name, ip, {
    type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30100 + n }],
    extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: 32100 + n }, status: { loadBalancer: { ingress: [{ ip: `192.0.2.${n}` }] } },
  });
  const cond = (slice, c) => { slice.endpoints[0].conditions = c; return slice; };
  const other = apiService('other', '10.96.80.1'); other.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'another-proxy';
  const headless = apiService('hl', '10.96.80.2'); headless.metadata.labels['service.kubernetes.io/headless'] = '';
  const k = await startKube(t, {
    seed: (d) => {
      d.create('nodes', apiNode('node-a'));
      d.create('services', lb('none', '10.96.70.1', 1)); d.create('endpointslices', apiSlice('none-1', 'none', []));
      d.create('services', lb('remote', '10.96.70.2', 2)); d.create('endpointslices', apiSlice('remote-1', 'remote', ['10.244.2.2'], { nodeName: 'node-b' }));
      d.create('services', lb('unready', '10.96.70.3', 3)); d.create('endpointslices', apiSlice('unready-1', 'unready', ['10.244.2.3'], { nodeName: 'node-b', ready: false }));
      d.create('services', lb('term', '10.96.70.4', 4));
      d.create('endpointslices', cond(apiSlice('term-1', 'term', ['10.244.2.4'], { nodeName: 'node-b' }), { ready: false, serving: true, terminating: true }));
      d.create('services', apiService('itp', '10.96.70.5', { extra: { internalTrafficPolicy: 'Local' } })); d.create('endpointslices', apiSlice('itp-1', 'itp', []));
      d.create('services', apiService('itp2', '10.96.70.6', { extra: { internalTrafficPolicy: 'Local' } }));
      d.create('endpointslices', apiSlice('itp2-1', 'itp2', ['10.244.2.6'], { nodeName: 'node-b' }));
      d.create('services', apiService('ns', '10.96.70.7'));
      d.create('endpointslices', cond(apiSlice('ns-1', 'ns', ['10.244.2.7'], { nodeName: 'node-b' }), { ready: false, serving: true, terminating: false }));
      d.create('services', other); d.create('endpointslices', apiSlice('other-1', 'other', ['10.244.1.1']));
      d.create('services', headless); d.create('endpointslices', apiSlice('hl-1', 'hl', ['10.244.1.2']));
    },
  });
  await until(() => k.watcher.sync.stats.full >= 1 && k.compiler.serviceCount() === 7 && k.compiler.sliceCount() >= 5, { what: 'programmed' });
  // the service CIDR as the daemon programs it from the ServiceCIDRs (the fixture leaves that to the test)
  await k.cp.core.apply([{ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.100.2'], serviceCIDRs: ['10.96.0.0/16'] } }]);
  const verdict = async (addr, port) => { const r = await traceTo(k.dp, addr, port); return `${r.verdict} ${r.reason}`; };
  const want = {
    'no endpoints, eTP Local: LB IP': ['192.0.2.1', 80, 'reject reject_no_endpoints'],
    'no endpoints, eTP Local: cluster IP': ['10.96.70.1', 80, 'reject reject_no_endpoints'],
    'eTP Local, the endpoint on another node: LB IP': ['192.0.2.2', 80, 'drop drop_etp_no_local'],
    'eTP Local, the only endpoint not ready: LB IP': ['192.0.2.3', 80, 'reject reject_no_endpoints'],
    'eTP Local, the only endpoint terminating on another node: LB IP': ['192.0.2.4', 80, 'drop drop_etp_no_local'],
    'iTP Local, no endpoints': ['10.96.70.5', 80, 'reject reject_no_endpoints'],
    'iTP Local, the endpoint on another node': ['10.96.70.6', 80, 'drop drop_itp_no_local'],
    'serving, not ready, not terminating: nothing': ['10.96.70.7', 80, 'reject reject_no_endpoints'],
    'an undefined port of a cluster IP': ['10.96.70.6', 81, 'reject reject_invalid_port'],
    'another proxy\'s Service': ['10.96.80.1', 80, 'drop drop_no_service_ip'],
    'a Service labelled headless': ['10.96.80.2', 80, 'drop drop_no_service_ip'],
    'an unallocated address': ['10.96.80.3', 80, 'drop drop_no_service_ip'],
  };
  for (const [what, [addr, port, v]] of Object.entries(want)) t.is(await verdict(addr, port), v, what);
});

// kube-proxy's NodeEligibleHandler.OnNodeDelete calls SyncNode with the deleted Node's last state:
// eligible unless it has a deletionTimestamp or the ToBeDeletedByClusterAutoscaler taint. A Node
// deleted outright (`kubectl delete node`: no finalizer, no graceful deletion, so the DELETED
// event's object has no deletionTimestamp) leaves /healthz 200; wdp's watcher turned it 503 on any
// delete — the watcher's Node informer now takes the deleted object's last state (onDelete).
test('a Node deleted outright, without deletionTimestamp or ToBeDeleted taint in its last state, leaves /healthz 200 (kube-proxy: SyncNode on the final state)', async (t) => {
  const k = await startKube(t, { seed: (d) => { d.create('nodes', apiNode('node-a')); } });
  await until(() => k.watcher.sync.stats.full >= 1 && k.nodeUpdates.length >= 1, { what: 'synced, the Node read' });
  const healthz = async () => { const r = await fetch(`${k.watcher.healthzUrl}/healthz`); return [r.status, (await r.json()).nodeEligible]; };
  t.deepEqual(await healthz(), [200, true]);
  k.double.delete('nodes', '', 'node-a');
  await until(() => k.lines.some((l) => l.msg === 'the Node object was deleted'), { what: 'the delete seen' });
  t.deepEqual(await healthz(), [200, true], 'still eligible: the last state was neither being deleted nor tainted');
});
