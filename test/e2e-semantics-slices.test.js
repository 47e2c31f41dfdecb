// End to end, which endpoints and addresses get programmed, as kube-proxy's nftables proxier
// does (pkg/proxy/topology.go, endpointslicecache.go, serviceport.go), with real clients through
// `wdp start` in namespaces: topology-aware routing by zone and node hints, an unset serving condition
// read as true, slice ports matched by name only, LoadBalancer ingress IPs with ipMode Proxy left
// alone, loadBalancerSourceRanges on LB IPs only. The node (node-a) is in
// zone-a; pod-a is on node-a, pod-b and pod-c on node-b.
import test from 'ava';
import { curl, curlOk, e2eSuite, httpMany, serviceYaml, sliceYaml, api, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, { kind: 'sls', node: { zone: 'zone-a' }, pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

const PORTS = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];
/** A slice of `eps`: [pod, extra endpoint fields] pairs. */
const slice = (name, service, eps) => sliceYaml({
  name, service, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: eps.map(([p, extra]) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: p === topo.pods[0] ? 'node-a' : 'node-b', ...extra })),
});
const zones = (...names) => ({ hints: { forZones: names.map((name) => ({ name })) } });
/** The pods that answer `n` requests to `url` from `ns` (sorted, unique); every request must succeed. */
async function podsReached(t, ns, url, n = 24) {
  const rs = await httpMany(topo, ns, url, n);
  const failed = rs.filter((r) => r.error);
  t.deepEqual(failed, [], `${url}: every request answered`);
  return [...new Set(rs.map((r) => r.pod))].sort();
}

serial('topology hints: with every ready endpoint hinted, the ClusterIP and NodePort reach only the endpoints hinted for the node zone', async (t) => {
  const [a, b, c] = topo.pods;
  await apply([
    serviceYaml({ name: 'topo', type: 'NodePort', clusterIP: '10.96.8.10', ports: [{ ...PORTS[0], nodePort: 30810 }], extra: { trafficDistribution: 'PreferClose' } }),
    slice('topo-1', 'topo', [[a, zones('zone-b')], [b, zones('zone-a')], [c, zones('zone-b')]]),
  ]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.8.10/')).code, 0);
  t.deepEqual(await podsReached(t, topo.ns.client, 'http://10.96.8.10/'), ['pod-b'], 'zone-a is pod-b (on node-b: hints, not nodes)');
  t.deepEqual(await podsReached(t, topo.ns.remote, `http://${NODE_V4}:30810/`), ['pod-b'], 'external traffic, policy Cluster: the same set');
  // one ready endpoint without hints: hints are ignored, every endpoint serves
  await apply([slice('topo-1', 'topo', [[a, zones('zone-b')], [b, zones('zone-a')], [c, {}]])]);
  t.deepEqual(await podsReached(t, topo.ns.client, 'http://10.96.8.10/', 40), ['pod-a', 'pod-b', 'pod-c']);
  // hints for other zones only: ignored too
  await apply([slice('topo-1', 'topo', [[a, zones('zone-b')], [b, zones('zone-c')], [c, zones('zone-b')]])]);
  t.deepEqual(await podsReached(t, topo.ns.client, 'http://10.96.8.10/', 40), ['pod-a', 'pod-b', 'pod-c']);
  // node hints (PreferSameNode) come before zones: every ready endpoint has one, pod-c's names node-a
  const nodes = (n, z) => ({ hints: { forNodes: [{ name: n }], forZones: [{ name: z }] } });
  await apply([slice('topo-1', 'topo', [[a, nodes('node-b', 'zone-a')], [b, nodes('node-b', 'zone-a')], [c, nodes('node-a', 'zone-b')]])]);
  t.deepEqual(await podsReached(t, topo.ns.client, 'http://10.96.8.10/'), ['pod-c'], 'the endpoint hinted for node-a');
});

serial('an endpoint with ready false, terminating true and no serving condition carries the service (serving unset = true)', async (t) => {
  const [, b] = topo.pods;
  await apply([
    serviceYaml({ name: 'term', clusterIP: '10.96.8.11', ports: PORTS }),
    slice('term-1', 'term', [[b, { conditions: { ready: false, terminating: true } }]]),
  ]);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.8.11/');
  t.is(ok.code, 0, `kube-proxy uses it as a serving-terminating fallback; got ${ok.code}: ${ok.stderr}`);
  t.is(ok.body.trim(), 'pod-b');
  // serving false: not usable, the service has no endpoints: refused
  await apply([slice('term-1', 'term', [[b, { conditions: { ready: false, serving: false, terminating: true } }]])]);
  const r = await curl(topo, topo.ns.client, 'http://10.96.8.11/', { timeout: 2 });
  t.is(r.code, 7, `connection refused, got ${r.code}: ${r.stderr}`);
});

// The EndpointSlice controller publishes a terminating pod of a Service with
// publishNotReadyAddresses as ready: true, serving: false, terminating: true; kube-proxy takes
// ready as ready whatever the other two say (service.go "should be able to connect to
// terminating and unready endpoints if PublishNotReadyAddresses is true"), and without
// publishNotReadyAddresses (ready false) the same pod is refused ("should not be able to ...").
serial('a terminating, not serving endpoint published ready (publishNotReadyAddresses) gets new connections; published not ready it is refused', async (t) => {
  const [, b] = topo.pods;
  await apply([
    serviceYaml({ name: 'pnra', clusterIP: '10.96.8.15', ports: PORTS, extra: { publishNotReadyAddresses: true } }),
    slice('pnra-1', 'pnra', [[b, { conditions: { ready: true, serving: false, terminating: true } }]]),
  ]);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.8.15/');
  t.is(ok.code, 0, `ready wins over serving and terminating; got ${ok.code}: ${ok.stderr}`);
  t.is(ok.body.trim(), 'pod-b');
  await apply([
    serviceYaml({ name: 'pnra', clusterIP: '10.96.8.15', ports: PORTS }),
    slice('pnra-1', 'pnra', [[b, { conditions: { ready: false, serving: false, terminating: true } }]]),
  ]);
  const r = await curl(topo, topo.ns.client, 'http://10.96.8.15/', { timeout: 2 });
  t.is(r.code, 7, `connection refused, got ${r.code}: ${r.stderr}`);
});

serial('a LoadBalancer ingress IP with ipMode Proxy is not programmed; the VIP-mode one is served', async (t) => {
  const [a] = topo.pods;
  const svc = serviceYaml({ name: 'lbp', type: 'LoadBalancer', clusterIP: '10.96.8.12', ports: [{ ...PORTS[0], nodePort: 30812 }] });
  svc.status = { loadBalancer: { ingress: [{ ip: '203.0.113.40', ipMode: 'Proxy' }, { ip: '203.0.113.41', ipMode: 'VIP' }] } };
  await apply([svc, slice('lbp-1', 'lbp', [[a, {}]])]);
  const fronts = (await api(topo, 'GET', '/api/v1/frontends?service=default/lbp')).json.items;
  t.deepEqual(fronts.filter((f) => f.kind === 'LoadBalancer').map((f) => f.addr), ['203.0.113.41']);
  const ok = await curlOk(topo, topo.ns.remote, 'http://203.0.113.41/');
  t.is(ok.code, 0, ok.stderr);
  const r = await curl(topo, topo.ns.remote, 'http://203.0.113.40/', { timeout: 2 });
  t.not(r.code, 0, 'the Proxy-mode address is the load balancer\'s, not captured by the node');
});

serial('a slice port named after the targetPort rather than the Service port serves nothing: refused until the name matches', async (t) => {
  const [a] = topo.pods;
  const named = (portName) => ({ ...slice('np-1', 'np', [[a, {}]]), ports: [{ name: portName, port: 8080, protocol: 'TCP' }] });
  await apply([serviceYaml({ name: 'np', clusterIP: '10.96.8.13', ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }] }), named('web')]);
  const r = await curl(topo, topo.ns.client, 'http://10.96.8.13/', { timeout: 2 });
  t.is(r.code, 7, `no endpoints for port "http": connection refused, got ${r.code}: ${r.stderr}`);
  await apply([named('http')]);
  const ok = await curlOk(topo, topo.ns.client, 'http://10.96.8.13/');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.body.trim(), 'pod-a');
});

serial('loadBalancerSourceRanges guard the LoadBalancer IP only: a client outside them reaches the same service on its externalIP', async (t) => {
  const [a] = topo.pods;
  await apply([
    serviceYaml({
      name: 'lbx', type: 'LoadBalancer', clusterIP: '10.96.8.14', lbIngress: ['203.0.113.44'],
      extra: { loadBalancerSourceRanges: ['10.0.0.0/24'], externalIPs: ['198.51.100.44'] },
      ports: [{ ...PORTS[0], nodePort: 30814 }],
    }),
    slice('lbx-1', 'lbx', [[a, {}]]),
  ]);
  const ext = await curlOk(topo, topo.ns.remote, 'http://198.51.100.44/');
  t.is(ext.code, 0, `the externalIP is not guarded (nftables proxier), got ${ext.code}: ${ext.stderr}`);
  const lb = await curl(topo, topo.ns.remote, 'http://203.0.113.44/', { timeout: 2 });
  t.is(lb.code, 28, `the LB IP drops a client outside the ranges, got ${lb.code}`);
});
