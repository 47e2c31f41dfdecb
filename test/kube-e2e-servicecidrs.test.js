// The cluster's ServiceCIDRs in the packets: `wdp start` in its network namespace, fed by the
// API-server double, its node config without node.serviceCIDRs. As kube-proxy's nftables proxier
// ("drop traffic to unallocated ClusterIPs" over the ServiceCIDRs, "reject traffic to invalid
// ports of ClusterIPs"): an address of a ServiceCIDR created at runtime that no Service has is
// dropped (drop_no_service_ip) from the moment it is listed, and routed again once the ServiceCIDR
// is deleted; the allocated ClusterIP inside it is served, and refused on a port it does not define.
// A restart while the API server is away keeps dropping them (the service CIDRs last programmed
// stand in until the ServiceCIDRs are listed) and forwards from the table image the stop wrote.
import test from 'ava';
import { READY, SVC, EPS, service, cluster, slice, kit, kubeNode, stopWithApiAway } from './lib/kube-e2e-kit.js';
import { rootGate, destroyTopology, api, curl, startDaemon, waitFor } from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });
const CIDRS = '/apis/networking.k8s.io/v1/servicecidrs';
let topo;
let double;
const { put, del, who, until } = kit(() => topo, () => double);
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons;
const serviceCIDRs = async () => (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec?.serviceCIDRs ?? [];

test.before(async () => {
  if (!root) return;
  ({ topo, double } = await kubeNode('kc'));
});
test.after.always(async () => { await destroyTopology(topo); });

/** One GET of `url` from the client: curl's exit code, and how much the counter `reason` grew —
 * with `counts`, once it has (a dropped frame is counted when the worker gets to it, which a
 * loaded machine delays past curl's timeout), or as it is after 10 s. */
async function attempt(url, reason, counts = false) {
  const before = (await reasons())[reason] ?? 0;
  const r = await curl(topo, topo.ns.client, url, { timeout: 2 });
  const grown = async () => ((await reasons())[reason] ?? 0) - before;
  const counted = counts ? await waitFor(`${reason} counted`, async () => { const n = await grown(); return n > 0 && n; }, 10000).catch(grown) : await grown();
  return { code: r.code, counted };
}

serial('a ServiceCIDR created at runtime: its unallocated addresses are dropped (drop_no_service_ip), its allocated ClusterIP served and refused on an undefined port; deleted, its addresses are routed again', async (t) => {
  const [a] = topo.pods;
  await put(SVC, service('incidr', cluster('10.99.61.10', [{ name: 'http', port: 80, targetPort: 8080 }])));
  await put(EPS, slice('incidr-1', 'incidr', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.99.61.10/')), 'pod-a');
  t.deepEqual(await serviceCIDRs(), [], 'no service CIDRs yet (none configured, no ServiceCIDR)');
  t.is((await attempt('http://10.99.61.99/', 'drop_no_service_ip')).counted, 0, 'without the ServiceCIDR: routed, not dropped as unallocated');

  await double('POST', CIDRS, { metadata: { name: 'extra' }, spec: { cidrs: ['10.99.61.0/24', 'fd00:99:61::/112'] } });
  t.deepEqual(await until(['10.99.61.0/24', 'fd00:99:61::/112'], serviceCIDRs), ['10.99.61.0/24', 'fd00:99:61::/112'], 'the node config has both families');
  const dropped = await attempt('http://10.99.61.99/', 'drop_no_service_ip', true);
  t.is(dropped.code, 28, 'an unallocated address: dropped (the client times out)');
  t.true(dropped.counted > 0, 'counted drop_no_service_ip');
  t.is(await who(topo.ns.client, 'http://10.99.61.10/'), 'pod-a', 'the allocated ClusterIP is served');
  const refused = await attempt('http://10.99.61.10:81/', 'reject_invalid_port', true);
  t.is(refused.code, 7, 'a port the Service does not define: refused');
  t.true(refused.counted > 0, 'counted reject_invalid_port');

  await del(CIDRS, 'extra');
  t.deepEqual(await until([], serviceCIDRs), [], 'deleted: gone from the node config');
  t.is((await attempt('http://10.99.61.99/', 'drop_no_service_ip')).counted, 0, 'routed again, not dropped');
  t.is(await who(topo.ns.client, 'http://10.99.61.10/'), 'pod-a', 'the Service is served either way');
  await del(EPS, 'incidr-1');
  await del(SVC, 'incidr');
});

serial('a restart while the API server is away keeps the ServiceCIDRs last seen: their unallocated addresses still dropped, forwarding from the table image written at the stop', async (t) => {
  const [a] = topo.pods;
  await put(SVC, service('kept', cluster('10.99.62.10', [{ name: 'http', port: 80, targetPort: 8080 }])));
  await put(EPS, slice('kept-1', 'kept', [{ name: 'http', port: 8080 }], [[a, READY]]));
  await double('POST', CIDRS, { metadata: { name: 'kept' }, spec: { cidrs: ['10.99.62.0/24'] } });
  t.deepEqual(await until(['10.99.62.0/24'], serviceCIDRs), ['10.99.62.0/24']);
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.99.62.10/')), 'pod-a');
  t.is(await stopWithApiAway(topo), 0);
  await startDaemon(topo);
  t.deepEqual(await serviceCIDRs(), ['10.99.62.0/24'], 'the service CIDRs last programmed');
  const restore = (await api(topo, 'GET', '/api/v1/generation')).json.restore;
  t.like(restore.images?.[0], { worker: 0, used: true }, JSON.stringify(restore.images));
  await waitFor('the ClusterIP', async () => (await who(topo.ns.client, 'http://10.99.62.10/')) === 'pod-a');
  const dropped = await attempt('http://10.99.62.99/', 'drop_no_service_ip', true);
  t.is(dropped.code, 28);
  t.true(dropped.counted > 0, 'still dropped as unallocated');
});
