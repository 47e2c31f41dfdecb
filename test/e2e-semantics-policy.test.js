// End to end, issue 14's service rules with real clients through `wdp start` in namespaces:
// drop (a Local traffic policy leaves no endpoint) versus reject (no endpoints at all), services
// labelled for another proxy or headless are not programmed until the label goes, and IPv4
// addresses with leading zeros are programmed as their decimal value. pod-a is on this node
// (node-a); pod-b and pod-c are said to be on node-b. The daemon's service CIDR is 10.96.0.0/16.
import test from 'ava';
import { curl, curlOk, e2eSuite, api, serviceYaml, sliceYaml, waitFor, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, { kind: 'sem', node: { serviceCIDRs: ['10.96.0.0/16'] }, pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const PORTS = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];
const slice = (name, service, pods, ip = (p) => p.ip) => sliceYaml({
  name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: pods.map((p) => ({ addresses: [ip(p)], conditions: { ready: true }, nodeName: p === topo.pods[0] ? 'node-a' : 'node-b' })),
});
const reasons = async () => (await api(topo, 'GET', '/api/v1/counters')).json.reasons;
/** The reasons once `reason` has grown past `before` (a dropped frame is counted when the worker
 * gets to it, which a loaded machine delays past curl's timeout), or as they are after 10 s. */
const grownPast = (before, reason) => waitFor(`${reason} counted`, async () => { const r = await reasons(); return (r[reason] ?? 0) > (before[reason] ?? 0) && r; }, 10000).catch(reasons);
const frontendsOf = async (svc) => (await api(topo, 'GET', `/api/v1/frontends?service=default/${svc}`)).json.items;

serial('internalTrafficPolicy Local without a local endpoint: the ClusterIP drops (timeout), counted drop_itp_no_local; no endpoints at all: refused', async (t) => {
  await apply([
    serviceYaml({ name: 'itp', clusterIP: '10.96.7.10', ports: PORTS, extra: { internalTrafficPolicy: 'Local' } }),
    slice('itp-1', 'itp', topo.pods.slice(1)), // endpoints only on node-b
    serviceYaml({ name: 'none', clusterIP: '10.96.7.11', ports: PORTS }),
  ]);
  const before = await reasons();
  const dropped = await curl(topo, topo.ns.client, 'http://10.96.7.10/', { timeout: 2 });
  // kube-proxy drops here (issue 14): a reject would be curl 7 (connection refused)
  t.is(dropped.code, 28, `expected a timeout (dropped), got ${dropped.code}: ${dropped.stderr}`);
  const refused = await curl(topo, topo.ns.client, 'http://10.96.7.11/', { timeout: 2 });
  t.is(refused.code, 7, `no endpoints at all: connection refused, got ${refused.code}: ${refused.stderr}`);
  const after = await reasons();
  t.true((after.drop_itp_no_local ?? 0) > (before.drop_itp_no_local ?? 0), JSON.stringify(after));
  t.true((after.reject_no_endpoints ?? 0) > (before.reject_no_endpoints ?? 0));
  // a local endpoint appears: served
  await apply([slice('itp-1', 'itp', topo.pods)]);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.7.10/');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.body.trim(), 'pod-a');
});

serial('externalTrafficPolicy Local without a local endpoint: the NodePort drops for an external client, counted drop_etp_no_local', async (t) => {
  await apply([
    serviceYaml({ name: 'etp', type: 'NodePort', clusterIP: '10.96.7.12', ports: [{ ...PORTS[0], nodePort: 30712 }], extra: { externalTrafficPolicy: 'Local' } }),
    slice('etp-1', 'etp', topo.pods.slice(1)),
  ]);
  const before = await reasons();
  const r = await curl(topo, topo.ns.remote, `http://${NODE_V4}:30712/`, { timeout: 2 });
  t.is(r.code, 28, `expected a timeout (dropped), got ${r.code}: ${r.stderr}`);
  const after = await grownPast(before, 'drop_etp_no_local');
  t.true((after.drop_etp_no_local ?? 0) > (before.drop_etp_no_local ?? 0), JSON.stringify(after));
  // the ClusterIP (policy Cluster internally) still reaches node-b's endpoints
  const c = await curlOk(topo, topo.ns.client, 'http://10.96.7.12/');
  t.is(c.code, 0, c.stderr);
});

serial('a Service labelled service-proxy-name or headless is not programmed; removing the label programs it', async (t) => {
  const svc = (labels) => ({ ...serviceYaml({ name: 'other', clusterIP: '10.96.7.13', ports: PORTS }), metadata: { name: 'other', namespace: 'default', ...(labels ? { labels } : {}) } });
  await apply([svc({ 'service.kubernetes.io/service-proxy-name': 'some-other-proxy' }), slice('other-1', 'other', topo.pods)]);
  t.deepEqual(await frontendsOf('other'), [], 'labelled for another proxy: no frontends');
  const r = await curl(topo, topo.ns.client, 'http://10.96.7.13/', { timeout: 2 });
  t.not(r.code, 0, 'nothing answers on its ClusterIP');
  await apply([svc(null)]);
  t.is((await frontendsOf('other')).length, 1);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.7.13/');
  t.is(ok.code, 0, ok.stderr);
  await apply([svc({ 'service.kubernetes.io/headless': '' })]);
  t.deepEqual(await frontendsOf('other'), [], 'labelled headless: removed');
  const gone = await curl(topo, topo.ns.client, 'http://10.96.7.13/', { timeout: 2 });
  t.not(gone.code, 0);
});

serial('IPv4 with leading zeros: clusterIP 10.96.7.020 and zero-padded endpoint addresses are programmed as decimal', async (t) => {
  const padded = (p) => p.ip.split('.').map((x) => x.padStart(3, '0')).join('.'); // 010.244.001.011
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'zeros', clusterIP: '10.96.7.020', ports: PORTS }),
    slice('zeros-1', 'zeros', topo.pods, padded),
  ]);
  t.is(r.status, 200, r.text);
  const fronts = await frontendsOf('zeros');
  t.deepEqual(fronts.map((f) => f.addr), ['10.96.7.20'], 'decimal 20, not octal 16');
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.7.20/');
  t.is(ok.code, 0, ok.stderr);
  const octal = await curl(topo, topo.ns.client, 'http://10.96.7.16/', { timeout: 2 });
  t.not(octal.code, 0, 'the octal reading (10.96.7.16) is not served');
});

/** Serves `svcName` on `clusterIP`, checks it answers, then curls `url`: curl exit `code` (7
 * refused, 28 timeout = dropped) and the reason counter `reason` grows. */
async function servedThenRefused(t, svcName, clusterIP, url, code, reason) {
  await apply([serviceYaml({ name: svcName, clusterIP, ports: PORTS }), slice(`${svcName}-1`, svcName, topo.pods)]);
  const ok = await curlOk(topo, topo.ns.client, `http://${clusterIP}/`);
  t.is(ok.code, 0, ok.stderr);
  const before = await reasons();
  const r = await curl(topo, topo.ns.client, url, { timeout: 2 });
  t.is(r.code, code, `${url}: expected curl exit ${code}, got ${r.code}: ${r.stderr}`);
  const after = await grownPast(before, reason);
  t.true((after[reason] ?? 0) > (before[reason] ?? 0), `${reason}: ${JSON.stringify(after)}`);
}

serial('service CIDR: an address no Service owns is dropped (drop_no_service_ip), not routed; a Service inside it is served', async (t) => {
  await servedThenRefused(t, 'in-cidr', '10.96.9.10', 'http://10.96.9.99/', 28, 'drop_no_service_ip');
});

serial('a ClusterIP on a port its Service does not define: connection refused (reject_invalid_port), not routed', async (t) => {
  await servedThenRefused(t, 'ports', '10.96.9.20', 'http://10.96.9.20:81/', 7, 'reject_invalid_port');
});
