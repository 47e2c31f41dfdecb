// An external or LoadBalancer IP and port equal to another Service's cluster IP and port
// (CVE-2020-8554's interception case; docs/core.md Known differences (11)): the cluster IP's
// frontend keeps the tuple whichever came first and whichever is older (the API server allocates
// cluster IPs one Service each; externalIPs are anyone's to write), the external frontend of that
// exact tuple is withheld from its Service, the rest of that Service is served. Through the
// watcher and the API-server double, through applyEach, and `wdp apply` (422 naming the other).
// Also: wdp_frontends_withheld{reason} counts withheld frontends and falls back to 0; a NodeConfig
// change of serviceProxyName decides withheld tuples again in the same apply. A cluster IP that is
// a node address (no ClusterIP frontend) holds no tuple: the external frontend is served, and a
// change of the node's addresses decides it again.
import test from 'ava';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { startKube, until, apiService, apiSlice, traceTo } from './lib/kube-fixture.js';

const NODE_IP = '192.168.100.2';
const VIP = '10.96.50.1';        // the victim's cluster IP
const EXT = '198.51.100.8';      // the squatter's own external IP
const nodeConfig = (spec = {}) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: [NODE_IP], routes: [{ prefix: '0.0.0.0/0', port: 0, nextHopMac: '02:00:00:00:00:fe', localMac: '02:00:00:00:00:01' }], ...spec },
});
// the victim: a ClusterIP Service, port 80 only
const victim = () => apiService('web', VIP, { ns: 'victim' });
const victimSlice = () => apiSlice('web-1', 'web', ['10.244.50.1'], { ns: 'victim' });
// the squatter: older (dated 2020), in another namespace, with the victim's cluster IP as an
// external IP on ports 80 (the victim's: clashes) and 81 (not the victim's), and an IP of its own
const squatter = () => {
  const s = apiService('squat', '10.96.51.2', {
    ns: 'other', type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30951 }, { name: 'alt', port: 81, targetPort: 8080, nodePort: 30952 }],
    extra: { externalIPs: [VIP, EXT] },
  });
  s.metadata.creationTimestamp = '2020-01-01T00:00:00Z';
  return s;
};
const squatterSlice = () => ({ ...apiSlice('squat-1', 'squat', ['10.244.51.2'], { ns: 'other' }), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 8080, protocol: 'TCP' }] });
const asModel = (o, kind) => ({ apiVersion: kind === 'Service' ? 'v1' : 'discovery.k8s.io/v1', kind, ...o });

/** wdp_frontends_withheld by reason, from the control plane's /metrics text. */
async function withheldGauge(metrics) {
  const text = await metrics.render(null);
  const out = {};
  for (const m of text.matchAll(/^wdp_frontends_withheld\{reason="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function clusterIPKeeps(t, dp, what = '') {
  t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', `${what}the victim's cluster IP and port: the victim`);
  t.is((await traceTo(dp, VIP, 81)).backend?.addr, '10.244.51.2', `${what}VIP:81, not the victim's port: the squatter's external frontend`);
  t.is((await traceTo(dp, '10.96.51.2', 80)).backend?.addr, '10.244.51.2', `${what}the squatter's cluster IP`);
  t.is((await traceTo(dp, NODE_IP, 30951)).backend?.addr, '10.244.51.2', `${what}the squatter's node port`);
  t.is((await traceTo(dp, EXT, 80)).backend?.addr, '10.244.51.2', `${what}the squatter's own external IP`);
}

const clusterWarnings = (k) => k.lines.filter((l) => l.level === 40 && l.object === 'Service/other/squat' && /external frontends not served/.test(l.msg));

for (const [order, together] of [['both listed at once', true], ['the cluster IP allocated after the external IP was served', false]]) {
  test(`watcher, ${order}: the cluster IP keeps its tuple against an older Service's external IP; one warning; counted; the victim deleted, the external IP serves it`, async (t) => {
    const k = await startKube(t, {
      configuredAddresses: [NODE_IP],
      seed: (d) => { d.create('services', squatter()); d.create('endpointslices', squatterSlice()); if (together) { d.create('services', victim()); d.create('endpointslices', victimSlice()); } },
    });
    await k.cp.core.apply([nodeConfig()]);
    await until(() => k.compiler.getSlice('other', 'squat-1'), { what: 'the first sync' });
    if (!together) {
      await until(async () => (await traceTo(k.dp, VIP, 80)).backend?.addr === '10.244.51.2', { what: 'the squatter serving VIP:80 alone' });
      t.is((await withheldGauge(k.cp.metrics)).cluster_ip_clash, 0);
      k.double.create('services', victim()); k.double.create('endpointslices', victimSlice());
    }
    await until(async () => (await traceTo(k.dp, VIP, 80)).backend?.addr === '10.244.50.1', { what: 'VIP:80 to the victim' });
    await clusterIPKeeps(t, k.dp);
    t.deepEqual(k.watcher.sync.skippedObjects(), [], 'nothing skipped');
    const warned = clusterWarnings(k);
    t.is(warned.length, 1, 'one warning');
    t.regex(warned[0]?.msg ?? '', /10\.96\.50\.1:80\/TCP \(the cluster IP and port of Service victim\/web\)/);
    t.deepEqual(warned[0]?.frontends, [{ frontend: `${VIP}:80/TCP`, heldBy: 'victim/web', heldAs: 'clusterIP' }]);
    t.deepEqual(await withheldGauge(k.cp.metrics), { external_clash: 0, cluster_ip_clash: 1, node_address: 0 });

    // a full sync decides the same, and warns no more
    const full = k.watcher.sync.stats.full;
    k.watcher.sync.requestFull();
    await until(() => k.watcher.sync.stats.full > full, { what: 'a full sync' });
    await clusterIPKeeps(t, k.dp, 'after a full sync: ');
    t.is(clusterWarnings(k).length, 1, 'no second warning for the same version');

    // the cluster IP's Service goes: the tuple is the external IP's, without a re-list
    k.double.delete('services', 'victim', 'web');
    await until(async () => (await traceTo(k.dp, VIP, 80)).backend?.addr === '10.244.51.2', { what: 'VIP:80 to the squatter' });
    t.true(k.lines.some((l) => l.object === 'Service/other/squat' && /served again/.test(l.msg)), 'said so');
    t.deepEqual(await withheldGauge(k.cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
  });
}

async function controlPlane(t, node = nodeConfig()) {
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false });
  t.teardown(() => cp.close());
  await cp.core.apply([node]);
  return { dp, cp, core: cp.core };
}

const victims = () => [asModel(victim(), 'Service'), asModel(victimSlice(), 'EndpointSlice')];
const squatters = () => [asModel(squatter(), 'Service'), asModel(squatterSlice(), 'EndpointSlice')];

test('applyEach: the cluster IP keeps its tuple in either order; the answer lists the withheld frontend', async (t) => {
  for (const [first, second] of [[victims, squatters], [squatters, victims]]) {
    const { dp, core } = await controlPlane(t);
    const a = await core.applyEach(first()), b = await core.applyEach(second());
    t.deepEqual([...a.skipped, ...b.skipped], []);
    t.deepEqual([...a.withheld, ...b.withheld].flatMap((w) => w.frontends), [{ frontend: `${VIP}:80/TCP`, heldBy: 'victim/web', heldAs: 'clusterIP' }]);
    await clusterIPKeeps(t, dp, first === victims ? 'victim first: ' : 'squatter first: ');
    // the squatter drops the victim's address: nothing withheld any more
    const moved = squatter(); moved.spec.externalIPs = [EXT];
    const r = await core.applyEach([asModel(moved, 'Service')]);
    t.deepEqual(r.withheld.map((w) => [w.name, w.frontends.length]), [['squat', 0]], 'serves all of its own again');
    t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1');
  }
});

test('wdp apply: an external IP on another Service\'s cluster IP and port is refused naming it, from either side; no port in common is accepted', async (t) => {
  {
    const { core } = await controlPlane(t);
    await core.apply(victims());
    const e = await t.throwsAsync(core.apply(squatters()));
    t.is(e.errors?.length, 1, JSON.stringify(e.errors));
    t.is(e.errors?.[0].field, 'spec.externalIPs');
    t.regex(e.errors?.[0].message ?? '', /10\.96\.50\.1:80\/TCP: already allocated to Service victim\/web as its cluster IP and port/);
  }
  {
    const { core } = await controlPlane(t);
    await core.apply(squatters());
    const e = await t.throwsAsync(core.apply(victims()));
    t.is(e.errors?.[0].field, 'spec.clusterIPs[0]');
    t.regex(e.errors?.[0].message ?? '', /Service victim\/web: .*10\.96\.50\.1:80\/TCP: already allocated to Service other\/squat as an external address/);
  }
  {
    // only port 81 on the cluster IP: no ClusterIP frontend has that tuple
    const { dp, core } = await controlPlane(t);
    await core.apply(victims());
    const s = squatter(); s.spec.ports = [s.spec.ports[1]]; s.spec.ports[0].name = '';
    const slice = squatterSlice(); slice.ports = [{ name: '', port: 8080, protocol: 'TCP' }];
    await core.apply([asModel(s, 'Service'), asModel(slice, 'EndpointSlice')]);
    t.is((await traceTo(dp, VIP, 81)).backend?.addr, '10.244.51.2');
    t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1');
  }
});

test('wdp_frontends_withheld: an external clash and a cluster IP on a node address are counted, and fall back to 0 when they end', async (t) => {
  const { cp, core } = await controlPlane(t);
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
  // two Services on one LoadBalancer IP and port (Known difference (21)): the younger yields it
  const lb = (name, ip, created) => {
    const s = apiService(name, ip, { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: name === 'a' ? 30001 : 30002 }], status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } });
    s.metadata.creationTimestamp = created;
    return asModel(s, 'Service');
  };
  await core.applyEach([lb('a', '10.96.60.1', '2020-01-01T00:00:00Z'), lb('b', '10.96.60.2', '2021-01-01T00:00:00Z')]);
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 1, cluster_ip_clash: 0, node_address: 0 });
  // a Service whose cluster IP is a node address, two ports: two ClusterIP frontends not served
  const onNode = apiService('on-node', '10.96.60.9', { ports: [{ name: 'a', port: 80, targetPort: 8080 }, { name: 'b', port: 81, targetPort: 8080 }] });
  await core.applyEach([asModel(onNode, 'Service')]);
  await core.apply([nodeConfig({ nodeAddresses: [NODE_IP, '10.96.60.9'] })]);
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 1, cluster_ip_clash: 0, node_address: 2 });
  // the clashes end: the older LoadBalancer deleted, the node address gone
  await core.removeRefs([{ kind: 'Service', namespace: 'default', name: 'a' }]);
  await core.apply([nodeConfig()]);
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
});

test('a NodeConfig change of serviceProxyName decides the withheld tuples again in the same apply', async (t) => {
  const { dp, cp, core } = await controlPlane(t);
  const LBIP = '203.0.113.9';
  // the older Service is labelled for the proxy "wdp": programmed only once the node config names it
  const older = apiService('older', '10.96.70.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30071 }], status: { loadBalancer: { ingress: [{ ip: LBIP }] } } });
  older.metadata.creationTimestamp = '2020-01-01T00:00:00Z';
  older.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'wdp';
  const olderSlice = apiSlice('older-1', 'older', ['10.244.70.1']);
  olderSlice.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'wdp';
  const younger = apiService('younger', '10.96.70.2', { extra: { externalIPs: [LBIP] } });
  younger.metadata.creationTimestamp = '2021-01-01T00:00:00Z';
  await core.applyEach([asModel(older, 'Service'), asModel(olderSlice, 'EndpointSlice'), asModel(younger, 'Service'), asModel(apiSlice('younger-1', 'younger', ['10.244.70.2']), 'EndpointSlice')]);
  // no proxy name: the older Service is another proxy's, so the younger one holds the tuple
  t.is((await traceTo(dp, LBIP, 80)).backend?.addr, '10.244.70.2', 'the programmed Service serves the tuple');
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 }, 'the older one is not programmed here: nothing counted');
  // the node config names the proxy: the older Service is programmed and ranks first
  const r = await core.apply([nodeConfig({ serviceProxyName: 'wdp' })]);
  t.true(r.objects.some((o) => o.kind === 'Service' && o.name === 'younger' && o.action === 'configured'), JSON.stringify(r.objects));
  t.is((await traceTo(dp, LBIP, 80)).backend?.addr, '10.244.70.1', 'the older Service serves the tuple');
  t.is((await traceTo(dp, '10.96.70.2', 80)).backend?.addr, '10.244.70.2', 'the younger keeps its cluster IP');
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 1, cluster_ip_clash: 0, node_address: 0 });
  // and back
  await core.apply([nodeConfig()]);
  t.is((await traceTo(dp, LBIP, 80)).backend?.addr, '10.244.70.2', 'the younger serves it again');
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
  // the node config removed takes its serviceProxyName along: decided again too
  await core.apply([nodeConfig({ serviceProxyName: 'wdp' })]);
  t.is((await traceTo(dp, LBIP, 80)).frontend?.service, 'default/older');
  await core.removeRefs([{ kind: 'NodeConfig', name: 'node-a' }]);
  t.is((await traceTo(dp, LBIP, 80)).frontend?.service, 'default/younger', 'no node config: no proxy name, the younger holds the tuple');
});

test('a restart decides as before: the saved node config\'s serviceProxyName ranks the saved Services, and a cluster IP keeps its tuple', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const stateDir = mkdtempSync(join(tmpdir(), 'wdp-cluster-claims-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const LBIP = '203.0.113.9';
  const older = apiService('older', '10.96.70.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30071 }], status: { loadBalancer: { ingress: [{ ip: LBIP }] } } });
  older.metadata.creationTimestamp = '2020-01-01T00:00:00Z';
  older.metadata.labels['service.kubernetes.io/service-proxy-name'] = 'wdp';
  const younger = apiService('younger', '10.96.70.2', { extra: { externalIPs: [LBIP] } });
  younger.metadata.creationTimestamp = '2021-01-01T00:00:00Z';
  const objs = [asModel(older, 'Service'), asModel(apiSlice('older-1', 'older', ['10.244.70.1']), 'EndpointSlice'),
    asModel(younger, 'Service'), asModel(apiSlice('younger-1', 'younger', ['10.244.70.2']), 'EndpointSlice'), ...victims(), ...squatters()];
  const check = async (dp, what) => {
    t.is((await traceTo(dp, LBIP, 80)).backend?.addr, '10.244.70.1', `${what}: the older Service, programmed under the proxy name, serves the LB tuple`);
    await clusterIPKeeps(t, dp, `${what}: `);
  };
  for (const run of ['first run', 'restored']) {
    const dp = new LocalDataplane();
    const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, stateDir });
    try {
      if (run === 'first run') { await cp.core.apply([nodeConfig({ serviceProxyName: 'wdp' })]); t.deepEqual((await cp.core.applyEach(objs)).skipped, []); }
      await check(dp, run);
      t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 1, cluster_ip_clash: 1, node_address: 0 }, run);
    } finally { await cp.close(); }
  }
});

test('GET /api/v1/generation and `wdp status` show the withheld frontends by reason, none once the clash ends', async (t) => {
  const { runWdp } = await import('./lib/wdp-cli.js');
  const { cp, core } = await controlPlane(t);
  const gen = async () => (await (await fetch(`${cp.url}/api/v1/generation`)).json()).withheldFrontends;
  t.deepEqual(await gen(), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
  let r = await runWdp(['status'], cp.url);
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stdout, /withheld/);
  await core.applyEach([...victims(), ...squatters()]);
  t.deepEqual(await gen(), { external_clash: 0, cluster_ip_clash: 1, node_address: 0 });
  r = await runWdp(['status'], cp.url);
  t.regex(r.stdout, /^frontends withheld: cluster_ip_clash 1 \(docs\/core\.md Known differences \(11\), \(21\)\)$/m);
  await core.removeRefs([{ kind: 'Service', namespace: 'victim', name: 'web' }]);
  t.deepEqual(await gen(), { external_clash: 0, cluster_ip_clash: 0, node_address: 0 });
  t.notRegex((await runWdp(['status'], cp.url)).stdout, /withheld/);
});

// The cluster IP is also a node address: its ClusterIP frontend is not served (docs/core.md
// Known differences (21), last sentences), so it holds no tuple — the external frontend of the
// same address:port/protocol is served, as an external IP on a node address is (kube-proxy's
// nftables proxier fails the sync on the two service-ips elements; (11)). Decided again when the
// node's addresses change, in the same apply: not a node address, the cluster IP's again.
const onNode = (spec = {}) => nodeConfig({ nodeAddresses: [NODE_IP, VIP], ...spec });
async function externalServes(t, dp, cp, what) {
  t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.51.2', `${what}VIP:80 (a node address, the victim's cluster IP and port): the squatter's external frontend`);
  t.is((await traceTo(dp, VIP, 81)).backend?.addr, '10.244.51.2', `${what}VIP:81`);
  t.is((await traceTo(dp, EXT, 80)).backend?.addr, '10.244.51.2', `${what}the squatter's own external IP`);
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 0, node_address: 1 }, `${what}only the ClusterIP frontend withheld`);
}

test('a cluster IP that is a node address holds no tuple: another Service\'s external IP on it is served, in either order; the node address gone, the cluster IP takes it back and back again', async (t) => {
  for (const [first, second] of [[victims, squatters], [squatters, victims]]) {
    const what = first === victims ? 'victim first: ' : 'squatter first: ';
    const { dp, cp, core } = await controlPlane(t, onNode());
    const a = await core.applyEach(first()), b = await core.applyEach(second());
    t.deepEqual([...a.skipped, ...b.skipped], []);
    t.deepEqual([...a.withheld, ...b.withheld].flatMap((w) => w.frontends), [], `${what}nothing withheld from the squatter`);
    await externalServes(t, dp, cp, what);
    // the address is no longer the node's: the victim's ClusterIP frontend is served and keeps its tuple
    const r = await core.apply([nodeConfig()]);
    t.true(r.objects.some((o) => o.kind === 'Service' && o.name === 'squat' && o.action === 'configured'), JSON.stringify(r.objects));
    await clusterIPKeeps(t, dp, `${what}not a node address: `);
    t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 1, node_address: 0 });
    await core.apply([onNode()]);
    await externalServes(t, dp, cp, `${what}a node address again: `);
  }
});

test('wdp apply: an external IP on a cluster IP that is a node address is accepted and served; the address no longer the node\'s, the external IP yields', async (t) => {
  // (`wdp apply` refuses a Service whose cluster IP is a node address: the node config comes after)
  const { dp, cp, core } = await controlPlane(t);
  await core.apply(victims());
  await core.apply([onNode()]);
  await core.apply(squatters());
  await externalServes(t, dp, cp, 'wdp apply: ');
  await core.apply([nodeConfig()]);
  await clusterIPKeeps(t, dp, 'wdp apply, not a node address: ');
  t.deepEqual(await withheldGauge(cp.metrics), { external_clash: 0, cluster_ip_clash: 1, node_address: 0 });
});

test('the watcher: a cluster IP on a node address (node.addresses) and another Service\'s external IP on it: the external frontend serves, no warning', async (t) => {
  const k = await startKube(t, {
    configuredAddresses: [NODE_IP, VIP],
    seed: (d) => { d.create('services', squatter()); d.create('endpointslices', squatterSlice()); d.create('services', victim()); d.create('endpointslices', victimSlice()); },
  });
  await k.cp.core.apply([onNode()]);
  await until(() => k.compiler.getSlice('victim', 'web-1') && k.compiler.getSlice('other', 'squat-1'), { what: 'the first sync' });
  await until(async () => (await traceTo(k.dp, VIP, 80)).backend?.addr === '10.244.51.2', { what: 'VIP:80 to the squatter' });
  await externalServes(t, k.dp, k.cp, 'watcher: ');
  t.deepEqual(clusterWarnings(k), []);
});

test('a restart decides as before: the saved node config\'s addresses leave the cluster IP on a node address without the tuple', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const stateDir = mkdtempSync(join(tmpdir(), 'wdp-cluster-claims-node-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  for (const run of ['first run', 'restored']) {
    const dp = new LocalDataplane();
    const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, stateDir });
    try {
      if (run === 'first run') { await cp.core.apply([onNode()]); t.deepEqual((await cp.core.applyEach([...victims(), ...squatters()])).skipped, []); }
      await externalServes(t, dp, cp, `${run}: `);
    } finally { await cp.close(); }
  }
});
