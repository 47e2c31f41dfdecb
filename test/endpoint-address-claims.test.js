// An endpoint address is not a claim for the Kubernetes watcher: an EndpointSlice the API server
// accepted (any namespace, managed by hand) that lists another Service's cluster IP, a node
// address, an external or LoadBalancer IP, or an address in the service CIDR costs neither object,
// whichever arrives first — kube-proxy serves both and does not cross-check endpoint addresses
// against service addresses (checked through applyEach, and through the watcher and the API-server
// double in both orders, across a re-list). `wdp apply`, the operator's own write, still refuses
// a cluster IP that is an endpoint's address, naming the other object (docs/api.md, Address rules).
import test from 'ava';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { startKube, until, apiService, apiSlice, traceTo } from './lib/kube-fixture.js';

const NODE_IP = '192.168.100.2';
const VIP = '10.96.50.1';          // the victim's cluster IP
const EXT = '198.51.100.7';        // the victim's external IP
const LB = '203.0.113.9';          // the victim's LoadBalancer ingress
const IN_CIDR = '10.96.50.200';    // in the service CIDR, nobody's cluster IP

const victim = (ns = 'victim') => apiService('web', VIP, {
  ns, type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30950 }],
  extra: { externalIPs: [EXT] }, status: { loadBalancer: { ingress: [{ ip: LB }] } },
});
const victimSlice = () => apiSlice('web-1', 'web', ['10.244.50.1'], { ns: 'victim' });
// the other namespace's Service, and a slice of it that it manages by hand: one endpoint per
// address that is someone else's, one ordinary pod
const attacker = () => apiService('trap', '10.96.51.1', { ns: 'other' });
const attackerSlice = () => {
  const s = apiSlice('trap-manual', 'trap', [VIP, NODE_IP, EXT, LB, IN_CIDR, '10.244.51.1'], { ns: 'other' });
  s.metadata.labels['endpointslice.kubernetes.io/managed-by'] = 'someone';
  return s;
};
const asModel = (o, kind) => ({ apiVersion: kind === 'Service' ? 'v1' : 'discovery.k8s.io/v1', kind, ...o });
// a default route: every endpoint has a next hop (the service CIDR's own addresses are dropped as
// unallocated when addressed directly, not when they are an endpoint a packet was translated to)
const nodeConfig = {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: [NODE_IP], serviceCIDRs: ['10.96.0.0/16'], routes: [{ prefix: '0.0.0.0/0', port: 0, nextHopMac: '02:00:00:00:00:fe', localMac: '02:00:00:00:00:01' }] },
};

async function bothServed(t, dp) {
  t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', 'the victim cluster IP');
  t.is((await traceTo(dp, EXT, 80)).backend?.addr, '10.244.50.1', 'the victim external IP');
  t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.50.1', 'the victim LoadBalancer IP');
  t.is((await traceTo(dp, NODE_IP, 30950)).backend?.addr, '10.244.50.1', 'the victim node port');
  // the attacker's Service spreads over all its endpoints, those addresses included
  const seen = new Set();
  for (let sport = 40000; sport < 40400 && seen.size < 6; sport++) {
    const r = await traceTo(dp, '10.96.51.1', 80, sport);
    t.is(r.verdict, 'forward', `to ${r.backend?.addr}: ${r.reason}`);
    seen.add(r.backend?.addr);
  }
  t.deepEqual([...seen].sort(), [VIP, NODE_IP, EXT, LB, IN_CIDR, '10.244.51.1'].sort(), 'every endpoint of the manual slice');
}

async function controlPlane(t) {
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false });
  t.teardown(() => cp.close());
  await cp.core.apply([nodeConfig]);
  return { dp, core: cp.core };
}

const victims = () => [asModel(victim(), 'Service'), asModel(victimSlice(), 'EndpointSlice')];
const attackers = () => [asModel(attacker(), 'Service'), asModel(attackerSlice(), 'EndpointSlice')];

for (const [order, first, second, refused] of [['the victim first', victims, attackers, /is the cluster IP of Service victim\/web/], ['the slice first', attackers, victims, /is the address of an endpoint \(pod\) in EndpointSlice other\/trap-manual/]]) {
  test(`applyEach (the watcher's), ${order}: nothing skipped, both served`, async (t) => {
    const { dp, core } = await controlPlane(t);
    t.deepEqual((await core.applyEach(first())).skipped, []);
    t.deepEqual((await core.applyEach(second())).skipped, []);
    await bothServed(t, dp);
  });
  test(`apply (the API's own write), ${order}: the second refused naming the other object, the first served`, async (t) => {
    const { dp, core } = await controlPlane(t);
    await core.apply(first());
    const e = await t.throwsAsync(core.apply(second()));
    t.regex(JSON.stringify(e.errors ?? e.message), refused);
    if (first === victims) t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', 'the victim cluster IP');
  });
}

for (const [order, seedFirst] of [['the victim first', true], ['the slice first', false]]) {
  test(`Kubernetes watcher, ${order} and after a re-list: both served, nothing skipped`, async (t) => {
    const k = await startKube(t, {
      configuredAddresses: [NODE_IP],
      seed: (d) => {
        const objs = seedFirst ? [['services', victim()], ['endpointslices', victimSlice()]] : [['services', attacker()], ['endpointslices', attackerSlice()]];
        for (const [r, o] of objs) d.create(r, o);
      },
    });
    // (the daemon programs the node from its Node object; this fixture has none: given here)
    await k.cp.core.apply([nodeConfig]);
    await until(() => k.compiler.getService(seedFirst ? 'victim' : 'other', seedFirst ? 'web' : 'trap'), { what: 'the first sync' });
    // the other pair arrives over the watch
    if (seedFirst) { k.double.create('services', attacker()); k.double.create('endpointslices', attackerSlice()); }
    else { k.double.create('services', victim()); k.double.create('endpointslices', victimSlice()); }
    await until(() => k.compiler.getSlice('victim', 'web-1') && k.compiler.getSlice('other', 'trap-manual'), { what: 'the watched pair' });
    await bothServed(t, k.dp);
    t.deepEqual(k.watcher.sync.skippedObjects(), []);
    // a full sync (as at a re-list or restart) keeps both
    const full = k.watcher.sync.stats.full;
    k.watcher.sync.requestFull();
    await until(() => k.watcher.sync.stats.full > full, { what: 'a second full sync' });
    await bothServed(t, k.dp);
    t.deepEqual(k.watcher.sync.skippedObjects(), []);
  });
}

// Not an endpoint address, but a claim (src/compiler/claims.ts: an external frontend tuple): a
// Service in another namespace whose externalIPs (user-set) repeat the victim's LoadBalancer IP and
// port. kube-proxy keeps both Services and races only on that one tuple (kubernetes#69599); wdp's
// watcher serves the tuple for the older Service (creationTimestamp, then namespace/name) and
// everything else of both — in either arrival order (src/compiler/external-claims.ts).
const OLD = '2024-01-01T00:00:00Z', NEW = '2024-06-01T00:00:00Z';
const dated = (o, ts) => ({ ...o, metadata: { ...o.metadata, creationTimestamp: ts } });
const squatter = (ts = NEW) => asModel(dated(apiService('squat', '10.96.51.2', {
  ns: 'other', type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30951 }, { name: 'alt', port: 81, targetPort: 8080, nodePort: 30952 }],
  extra: { externalIPs: [LB, '198.51.100.8'] },
}), ts), 'Service');
const squatterSlice = () => asModel({ ...apiSlice('squat-1', 'squat', ['10.244.51.2'], { ns: 'other' }), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'alt', port: 8080, protocol: 'TCP' }] }, 'EndpointSlice');
const datedVictims = (ts = OLD) => [asModel(dated(victim(), ts), 'Service'), asModel(victimSlice(), 'EndpointSlice')];
const squatters = (ts) => [squatter(ts), squatterSlice()];

// where each of the two Services' addresses goes: `lbTo` is the backend LB:80 reaches
async function servedApart(t, dp, lbTo) {
  t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', 'the victim cluster IP');
  t.is((await traceTo(dp, LB, 80)).backend?.addr, lbTo, 'LB:80, the tuple both claim');
  t.is((await traceTo(dp, '10.96.51.2', 80)).backend?.addr, '10.244.51.2', 'the other Service cluster IP');
  t.is((await traceTo(dp, NODE_IP, 30951)).backend?.addr, '10.244.51.2', 'the other Service node port');
  t.is((await traceTo(dp, LB, 81)).backend?.addr, '10.244.51.2', 'the other Service: LB:81 (a port only it has)');
  t.is((await traceTo(dp, '198.51.100.8', 80)).backend?.addr, '10.244.51.2', 'the other Service: its other external IP');
}

for (const [order, victimFirst] of [['the victim first', true], ['the other first', false]]) {
  test(`applyEach, ${order}: an external IP:port repeated by another namespace's Service costs only that frontend, the older Service serves it`, async (t) => {
    const { dp, core } = await controlPlane(t);
    const steps = victimFirst ? [datedVictims(), squatters()] : [squatters(), datedVictims()];
    const rs = [];
    for (const s of steps) rs.push(await core.applyEach(s));
    for (const r of rs) t.deepEqual(r.skipped, []);
    await servedApart(t, dp, '10.244.50.1');
    t.truthy(core.compiler.getService('other', 'squat'), 'the other Service');
    // the change that made the other Service yield says so, naming both (the younger one yields,
    // also when it was there first: an older Service takes the tuple over)
    const said = rs[1].withheld.find((w) => w.name === 'squat');
    t.deepEqual(said?.frontends, [{ frontend: `${LB}:80/TCP`, heldBy: 'victim/web' }]);
  });
}

test('applyEach, both new in one batch with one creationTimestamp: namespace then name decide, whatever the batch order', async (t) => {
  for (const rev of [false, true]) {
    const { dp, core } = await controlPlane(t);
    const batch = [...datedVictims(OLD), ...squatters(OLD)];
    const r = await core.applyEach(rev ? batch.reverse() : batch);
    t.deepEqual(r.skipped, []);
    // "other" < "victim": the other Service serves LB:80
    t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.51.2', `LB:80 (batch ${rev ? 'reversed' : 'in order'})`);
    t.is((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', 'the victim cluster IP');
    t.is((await traceTo(dp, EXT, 80)).backend?.addr, '10.244.50.1', 'the victim external IP');
  }
});

test('applyEach: an older Service this node does not program (another proxy\'s, headless-labelled) does not keep a tuple from a younger one it serves', async (t) => {
  for (const label of [{ 'service.kubernetes.io/service-proxy-name': 'other-proxy' }, { 'service.kubernetes.io/headless': '' }]) {
    for (const victimFirst of [true, false]) {
      const { dp, core } = await controlPlane(t);
      const [vs, vsl] = datedVictims(OLD);
      const unserved = { ...vs, metadata: { ...vs.metadata, labels: { ...vs.metadata.labels, ...label } } };
      const steps = victimFirst ? [[unserved, vsl], squatters(NEW)] : [squatters(NEW), [unserved, vsl]];
      for (const s of steps) t.deepEqual((await core.applyEach(s)).skipped, []);
      const what = `${Object.keys(label)[0]}, ${victimFirst ? 'the unserved first' : 'the served first'}`;
      t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.51.2', `${what}: LB:80 goes to the Service this node serves`);
      t.not((await traceTo(dp, VIP, 80)).backend?.addr, '10.244.50.1', `${what}: the labelled Service is not programmed`);
    }
  }
});

test('applyEach: when the holder is deleted, or drops the address, the other Service serves the tuple (no re-list)', async (t) => {
  for (const how of ['deleted', 'drops it']) {
    const { dp, core } = await controlPlane(t);
    await core.applyEach(datedVictims());
    await core.applyEach(squatters());
    t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.50.1', 'the victim first');
    const r = how === 'deleted'
      ? await core.applyEach([], [{ kind: 'Service', namespace: 'victim', name: 'web' }])
      : await core.applyEach([asModel(dated(apiService('web', VIP, { ns: 'victim', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), OLD), 'Service')]);
    t.deepEqual(r.withheld.find((w) => w.name === 'squat')?.frontends, [], `${how}: the other Service serves all of its own again`);
    t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.51.2', `${how}: LB:80 goes to the other Service`);
    t.is((await traceTo(dp, '10.96.51.2', 80)).backend?.addr, '10.244.51.2');
  }
});

test('apply (the API\'s own write): an external IP:port another Service holds is refused naming it, the first served', async (t) => {
  const { dp, core } = await controlPlane(t);
  await core.apply(datedVictims());
  const e = await t.throwsAsync(core.apply(squatters()));
  t.regex(JSON.stringify(e.errors ?? e.message), /203\.0\.113\.9:80\/TCP: already allocated to Service victim\/web/);
  t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.50.1');
  t.falsy(core.compiler.getService('other', 'squat'));
});

// A cluster IP that is a node address (the API server does not check it): kube-proxy would take the
// node's traffic to that address and port. wdp never does, and the rest of the Service is served,
// whether the node's addresses were known before the Service or after (the watcher's path; the
// node's own NodeConfig is applied as the daemon does, with apply).
for (const nodeFirst of [true, false]) {
  test(`a cluster IP that is a node address, the node ${nodeFirst ? 'first' : 'after the Service'}: that frontend is left out, the rest served, nothing refused`, async (t) => {
    const dp = new LocalDataplane();
    const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false });
    t.teardown(() => cp.close());
    const core = cp.core;
    const svc = asModel(apiService('on-node', NODE_IP, { ns: 'x', type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30960 }], extra: { externalIPs: ['198.51.100.9'] } }), 'Service');
    const sl = asModel(apiSlice('on-node-1', 'on-node', ['10.244.60.1'], { ns: 'x' }), 'EndpointSlice');
    if (nodeFirst) await core.apply([nodeConfig]);
    const r = await core.applyEach([svc, sl]);
    t.deepEqual(r.skipped, []);
    if (!nodeFirst) await core.apply([nodeConfig]);
    t.not((await traceTo(dp, NODE_IP, 80)).backend?.addr, '10.244.60.1', 'the node address is not taken over');
    t.is((await traceTo(dp, NODE_IP, 30960)).backend?.addr, '10.244.60.1', 'its node port');
    t.is((await traceTo(dp, '198.51.100.9', 80)).backend?.addr, '10.244.60.1', 'its external IP');
  });
}

test('applyEach: three Services on one tuple — the oldest serves it; deleted, the next oldest does; one that drops the address is told it serves all of its own', async (t) => {
  const { dp, core } = await controlPlane(t);
  const third = (ts) => [asModel(dated(apiService('late', '10.96.52.1', { ns: 'third', extra: { externalIPs: [LB] } }), ts), 'Service'), asModel(apiSlice('late-1', 'late', ['10.244.52.1'], { ns: 'third' }), 'EndpointSlice')];
  await core.applyEach(third('2025-01-01T00:00:00Z'));
  await core.applyEach(squatters('2024-06-01T00:00:00Z'));
  const r = await core.applyEach(datedVictims('2024-01-01T00:00:00Z'));
  t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.50.1', 'the oldest');
  // the victim's arrival took LB:80 from the squatter: both others now yield it to the victim
  t.deepEqual(r.withheld.find((w) => w.name === 'squat')?.frontends, [{ frontend: `${LB}:80/TCP`, heldBy: 'victim/web' }]);
  t.is((await traceTo(dp, '10.96.52.1', 80)).backend?.addr, '10.244.52.1', 'the youngest cluster IP');
  await core.applyEach([], [{ kind: 'Service', namespace: 'victim', name: 'web' }]);
  t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.51.2', 'the victim gone: the next oldest');
  // the squatter drops LB: the youngest serves it, and the squatter is told it yields nothing now
  const dropped = asModel(dated(apiService('squat', '10.96.51.2', { ns: 'other', extra: { externalIPs: ['198.51.100.8'] } }), '2024-06-01T00:00:00Z'), 'Service');
  const r2 = await core.applyEach([dropped]);
  t.is((await traceTo(dp, LB, 80)).backend?.addr, '10.244.52.1', 'then the youngest');
  t.deepEqual(r2.withheld.map((w) => [w.name, w.frontends.length]).sort(), [['late', 0]]);
  t.deepEqual(r2.skipped, []);
});
