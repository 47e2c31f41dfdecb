// The healthCheckNodePort as the model keeps it: validated as the API server validates it, the
// same on the fast path and zod's, never a dataplane change; and the health check servers follow
// the model (what the syncs programmed), not the informers: a port opens with the sync that
// programs its Service's Local policy and closes with the one that removes it.
import test from 'ava';
import { validateObject, validateObjectZod, validateAll } from '../dist/src/model/schema.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { isEmptyDiff } from '../dist/src/ir/diff.js';
import { apiService, apiSlice, apiNode, startKube, until, freePort } from './lib/kube-fixture.js';

const lbSpec = (extra = {}) => ({
  type: 'LoadBalancer', clusterIP: '10.96.7.5', clusterIPs: ['10.96.7.5'], externalTrafficPolicy: 'Local', healthCheckNodePort: 32005,
  ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30085 }], ...extra,
});
const svc = (spec) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb', namespace: 'default' }, spec });
const both = (raw) => { const a = validateObject(structuredClone(raw)), b = validateObjectZod(structuredClone(raw)); return { a, b }; };

test('the model keeps healthCheckNodePort of a LoadBalancer with externalTrafficPolicy Local; out of range, or on any other Service, it is refused as the API server refuses it (fast path = zod)', (t) => {
  let { a, b } = both(svc(lbSpec()));
  t.deepEqual(a, b);
  t.true(a.ok);
  t.is(a.obj.healthCheckNodePort, 32005);
  t.is(a.obj.raw.spec.healthCheckNodePort, 32005, 'stored with the object');
  for (const bad of [65536, -1]) { // (0 is "not set": model-health-port-zero)
    ({ a, b } = both(svc(lbSpec({ healthCheckNodePort: bad }))));
    t.deepEqual(a, b);
    t.false(a.ok, String(bad));
    t.regex(a.errors[0].message, /spec\.healthCheckNodePort: Invalid value: .*must be between 1 and 65535, inclusive/);
  }
  ({ a, b } = both(svc(lbSpec({ healthCheckNodePort: 1.5 }))));
  t.deepEqual(a, b);
  t.false(a.ok);
  for (const spec of [lbSpec({ externalTrafficPolicy: 'Cluster' }), lbSpec({ type: 'NodePort' }),
    { clusterIP: '10.96.7.5', healthCheckNodePort: 32005, ports: [{ port: 80 }] }]) {
    ({ a, b } = both(svc(spec)));
    t.deepEqual(a, b);
    t.false(a.ok, JSON.stringify(spec));
    t.is(a.errors[0].message, 'Service default/lb: spec.healthCheckNodePort: Invalid value: 32005: may only be set when `type` is \'LoadBalancer\' and `externalTrafficPolicy` is \'Local\'');
  }
  ({ a } = both(svc(lbSpec({ healthCheckNodePort: null }))));
  t.true(a.ok, 'unset (wdp allocates none)');
  t.is(a.obj.healthCheckNodePort, undefined);
});

test('healthCheckNodePort is not a dataplane field: changing it alone compiles to an empty diff', (t) => {
  const c = new Compiler();
  const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'] } };
  const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'lb-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'lb' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.7'], nodeName: 'node-a' }], ports: [{ name: 'http', port: 8080 }] };
  t.false(isEmptyDiff(c.change({ upsert: validateAll([node, svc(lbSpec()), slice]) }).diff));
  const ch = c.change({ upsert: validateAll([svc(lbSpec({ healthCheckNodePort: 32006 }))]) });
  t.true(isEmptyDiff(ch.diff));
  t.is(c.getService('default', 'lb').healthCheckNodePort, 32006);
});

test('a healthCheckNodePort opens with the sync that programs its Service\'s Local policy and closes with the one that removes it, not when the informer sees the change (kube-proxy syncs its health servers from the service map it has just written)', async (t) => {
  const { LocalDataplane } = await import('../dist/src/core/dataplane.js');
  const port = await freePort();
  const lb = (local) => apiService('lb', '10.96.7.6', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30086 }], extra: local ? { externalTrafficPolicy: 'Local', healthCheckNodePort: port } : { externalTrafficPolicy: 'Cluster' },
    // (an ingress IP: the policy changes its frontend, so the sync that carries it reaches the dataplane)
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.6', ipMode: 'VIP' }] } } });
  const dp = new LocalDataplane();
  const apply = dp.apply.bind(dp);
  let hold = null, entered = 0;
  dp.apply = async (...a) => { entered++; if (hold) await hold; return apply(...a); };
  const k = await startKube(t, {
    seed: (d) => { d.create('nodes', apiNode('node-a')); d.create('services', lb(false)); d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10'])); },
    dataplane: dp,
  });
  const get = async () => { try { const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }); return { code: r.status, body: await r.json() }; } catch { return null; } };
  await until(() => k.compiler.getService('default', 'lb'), { what: 'the Service programmed' });
  let release1, release2;
  t.teardown(() => { hold = null; release1?.(); release2?.(); }); // (before the watcher stops: no sync left waiting)
  /** A sync (of another Service) held in the dataplane while `change` reaches the informer; then
   * that sync completes and the next one, which carries the change, is held: returns its release. */
  const heldAcross = async (other, change, seen) => {
    hold = new Promise((r) => { release1 = r; });
    const before = entered;
    k.double.create('services', apiService(other, other === 'other1' ? '10.96.7.7' : '10.96.7.8'));
    await until(() => entered > before, { what: 'the sync in the dataplane' });
    change();
    await until(() => seen(k.watcher.informers.services.list().find((s) => s.metadata.name === 'lb')), { what: 'the change in the informer' });
    hold = new Promise((r) => { release2 = r; });
    release1();
    await until(() => entered > before + 1, { what: 'the next sync in the dataplane' });
    await until(() => k.compiler.getService('default', other), { what: 'the first sync done' });
    return release2;
  };
  // Cluster → Local: the API server allocates the port; the sync that programs it is held
  let release = await heldAcross('other1', () => k.double.apply('services', lb(true)), (s) => s?.spec.healthCheckNodePort === port);
  t.is(await get(), null, 'the port stays closed until the Local policy is programmed');
  hold = null; release();
  const r = await until(async () => { const x = await get(); return x?.code === 200 && x; }, { what: 'the port open once programmed' });
  t.is(r.body.localEndpoints, 1);
  // Local → Cluster: the API server releases the port; it answers until the change is programmed
  release = await heldAcross('other2', () => k.double.apply('services', lb(false)), (s) => s?.spec.externalTrafficPolicy === 'Cluster');
  t.is((await get())?.code, 200, 'the port still answers for the rules as they are');
  hold = null; release();
  await until(async () => (await get()) === null, { what: 'the port closed once programmed' });
  t.pass();
});

test('a Service stored without its healthCheckNodePort at the API\'s resourceVersion (a saved state from a model that pruned it) is programmed again by the full sync: its health check opens', async (t) => {
  const port = await freePort();
  const lb = apiService('lb', '10.96.7.9', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30089 }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: port } });
  const k = await startKube(t, { seed: (d) => { d.create('nodes', apiNode('node-a')); d.create('services', lb); d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10'])); } });
  const get = async () => { try { const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }); return r.status; } catch { return null; } };
  await until(async () => (await get()) === 200, { what: 'the health check open' });
  // the model as an older wdp stored it: the same object and resourceVersion, no healthCheckNodePort
  const cur = k.compiler.getService('default', 'lb').raw;
  const { healthCheckNodePort: _, ...spec } = cur.spec;
  await k.cp.core.apply([{ ...cur, spec }]);
  t.is(k.compiler.getService('default', 'lb').healthCheckNodePort, undefined);
  t.is(k.compiler.getService('default', 'lb').raw.metadata.resourceVersion, k.double.get('services', 'default', 'lb').metadata.resourceVersion);
  const fulls = k.watcher.sync.stats.full;
  k.watcher.sync.requestFull();
  await until(() => k.watcher.sync.stats.full > fulls, { what: 'a full sync' });
  t.is(k.compiler.getService('default', 'lb').healthCheckNodePort, port, 'programmed again with it');
  t.is(await until(async () => (await get()) === 200 && 200, { what: 'the health check answers' }), 200);
});
