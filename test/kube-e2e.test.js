// `wdp start` with a kubernetes: section, end to end: the daemon runs in its network namespace and
// watches the API-server double (a child process on that namespace's loopback); Services,
// EndpointSlices and the Node written to the double become real traffic through the dataplane —
// curl from a client namespace to the ClusterIP, and to a NodePort on the address the Node object
// gives (the config names none). Then an endpoint change, a dropped watch and a deletion.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { startDoubleInNs, seedWebAndStart, webSlice } from './lib/apiserver-double-ns.js';
import {
  rootGate, buildTopology, startDaemon, destroyTopology, curl, curlOk, httpMany, sleep, api, arpAnswered,
} from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

const VIP = '10.96.50.10';
let topo;
let double;

const service = (extra = {}) => ({
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    type: 'NodePort', clusterIP: VIP, clusterIPs: [VIP], ipFamilies: ['IPv4'], internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster',
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }], sessionAffinity: 'None', ...extra,
  },
  status: { loadBalancer: {} },
});
const slice = webSlice;

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }], kind: 'k' });
  try {
    let kubeconfig;
    ({ kubeconfig, double } = await startDoubleInNs(topo));
    // the Node object, not the config, names the node address NodePorts answer on
    topo.config.node = { name: 'node-a' };
    topo.config.kubernetes = {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: '127.0.0.1:10249', nodeWaitSeconds: 20,
      clusterCIDRs: ['10.244.0.0/16'], detectLocalMode: 'NodeCIDR',
      // IPv4 restricted to the node subnet: health-check listeners on the Node's addresses there
      nodePortAddresses: ['192.168.100.0/24'],
    };
    // the node's own stack behind a host port: its addresses follow the Node's (docs/running.md)
    topo.config.ports.push({
      name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
      hostAddresses: ['192.168.100.2/24'], hostRoutes: [{ prefix: '10.96.0.0/12', via: '10.244.0.1' }],
    });
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await seedWebAndStart(topo, double, {
      node: {
        metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
        status: { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, { type: 'Hostname', address: 'node-a' }] },
      },
      service: service(),
    });
  } catch (e) {
    await destroyTopology(topo);
    topo = undefined;
    throw e;
  }
});
test.after.always(async () => { await destroyTopology(topo); });

serial('Services and EndpointSlices from the API carry real traffic: ClusterIP and a NodePort on the Node\'s address', async (t) => {
  const r = await curlOk(topo, topo.ns.client, `http://${VIP}/`, 50);
  t.is(r.code, 0, `curl failed: ${r.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.regex(r.body, /^pod-[ab]\n$/);
  const many = await httpMany(topo, topo.ns.client, `http://${VIP}/`, 20);
  t.deepEqual(many.filter((x) => x.error), []);
  t.deepEqual([...new Set(many.map((x) => x.pod))].sort(), ['pod-a', 'pod-b']);
  const np = await curlOk(topo, topo.ns.remote, 'http://192.168.100.2:30080/', 30);
  t.is(np.code, 0, `NodePort on the Node's InternalIP: ${np.stderr}`);
  // the node config carries the Node's address and pod CIDRs, and the configured cluster CIDRs
  const node = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
  t.deepEqual(node.nodeAddresses, ['192.168.100.2']);
  t.deepEqual(node.podCIDRs, ['10.244.1.0/24']);
  t.deepEqual(node.nodeIPs, ['192.168.100.2'], 'kube-proxy\'s node IP (the first InternalIP): loadBalancerSourceRanges holding it admit the LB IPs too');
  t.deepEqual(node.clusterCIDRs, ['10.244.0.0/16']);
  t.is(node.detectLocalMode, 'NodeCIDR');
  const nc = await curl(topo, topo.ns.dp, 'http://127.0.0.1:10256/healthz');
  t.is(nc.code, 0);
  t.true(JSON.parse(nc.body).nodeEligible);
  const m = await curl(topo, topo.ns.dp, 'http://127.0.0.1:10249/metrics');
  t.regex(m.body, /kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} [1-9]/);
  t.regex(m.body, /kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/);
});

serial('an endpoint change reaches the traffic; so does one made while the watch was down', async (t) => {
  const [, podB] = topo.pods;
  await double('PUT', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc', slice([podB]));
  let only;
  for (let i = 0; i < 50; i++) {
    const many = await httpMany(topo, topo.ns.client, `http://${VIP}/`, 6);
    only = [...new Set(many.map((x) => x.pod ?? x.error))];
    if (only.length === 1 && only[0] === 'pod-b') break;
    await sleep(200);
  }
  t.deepEqual(only, ['pod-b']);
  // the watches drop; a change made meanwhile still arrives (resume from resourceVersion)
  await double('POST', '/__double/drop-watches');
  await double('PUT', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-abc', slice(topo.pods));
  let seen;
  for (let i = 0; i < 50; i++) {
    const many = await httpMany(topo, topo.ns.client, `http://${VIP}/`, 12);
    seen = [...new Set(many.map((x) => x.pod ?? x.error))].sort();
    if (seen.length === 2 && seen[0] === 'pod-a') break;
    await sleep(200);
  }
  t.deepEqual(seen, ['pod-a', 'pod-b']);
});

const HC_PORT = 32001;

serial('healthCheckNodePort: answered on the Node\'s address nodePortAddresses selects, from outside through the host port, with the local endpoint count; not on other addresses', async (t) => {
  await double('PUT', '/api/v1/namespaces/default/services/web', service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: HC_PORT }));
  let r;
  for (let i = 0; i < 50; i++) {
    r = await curl(topo, topo.ns.remote, `http://192.168.100.2:${HC_PORT}/`, { timeout: 2 });
    if (r.code === 0) break;
    await sleep(200);
  }
  t.is(r.code, 0, `health check on the Node's address: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.deepEqual(JSON.parse(r.body), { service: { namespace: 'default', name: 'web' }, localEndpoints: 2, serviceProxyHealthy: true });
  t.is(r.headers['x-load-balancing-endpoint-weight'], '2');
  // kube-proxy's rule: IPv4 is restricted to the node subnet, so no IPv4 wildcard listener
  const lo = await curl(topo, topo.ns.dp, `http://127.0.0.1:${HC_PORT}/`, { timeout: 2 });
  t.not(lo.code, 0, 'nothing listens on 127.0.0.1: not a node address in nodePortAddresses');
});

serial('a Node address added while wdp runs gets its NodePort and ARP answers on the uplink, without a restart', async (t) => {
  const added = '192.168.100.21';
  t.false(await arpAnswered(topo, topo.ns.remote, 'eth0', added), 'not a node address yet');
  await double('PUT', '/api/v1/nodes/node-a', {
    metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, { type: 'ExternalIP', address: added }, { type: 'Hostname', address: 'node-a' }] },
  });
  let addrs;
  for (let i = 0; i < 50; i++) {
    addrs = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec.nodeAddresses;
    if (addrs.includes(added)) break;
    await sleep(200);
  }
  t.deepEqual(addrs, ['192.168.100.2', added]);
  let answered = false;
  for (let i = 0; i < 5 && !answered; i++) answered = await arpAnswered(topo, topo.ns.remote, 'eth0', added);
  t.true(answered, `the uplink answers ARP for the Node's new address\n${topo.daemonLog.slice(-2000)}`);
  const np = await curlOk(topo, topo.ns.remote, `http://${added}:30080/`, 30);
  t.is(np.code, 0, `NodePort on the new address: ${np.stderr}`);
  // the host port's TAP carries it too (the subnet's prefix), so the host itself answers on it
  let tap = '';
  for (let i = 0; i < 50 && !tap.includes(`inet ${added}/24 `); i++) { tap = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host'])).stdout; await sleep(100); }
  t.true(tap.includes(`inet ${added}/24 `), tap);
  // a host process listening on every address answers from outside on the new one
  const srv = topo.lab.spawn(topo.ns.dp, process.execPath, ['-e', "require('net').createServer((s) => s.end('host')).listen(2223, '0.0.0.0', () => console.log('ready'))"]);
  topo.podProcs.push(srv);
  await new Promise((resolve) => { srv.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }); setTimeout(resolve, 5000); });
  let got;
  for (let i = 0; i < 10 && got !== 'host'; i++) {
    const r = await topo.lab.execAsync(topo.ns.remote, process.execPath, ['-e', `const s = require('net').connect(2223, '${added}'); let g = ''; s.on('data', (d) => { g += d; }); s.on('end', () => console.log(g)); s.on('error', (e) => console.log(e.code)); setTimeout(() => process.exit(0), 3000);`], { timeoutMs: 8000 });
    got = r.stdout.trim();
    if (got !== 'host') await sleep(300);
  }
  t.is(got, 'host', `the host answers on the Node's new address from outside\n${topo.daemonLog.slice(-2000)}`);
  // the health-check listeners followed the Node's addresses (kube-proxy restarts to re-read them)
  let hc;
  for (let i = 0; i < 50; i++) {
    hc = await curl(topo, topo.ns.remote, `http://${added}:${HC_PORT}/`, { timeout: 2 });
    if (hc.code === 0) break;
    await sleep(200);
  }
  t.is(hc.code, 0, `health check on the Node's new address: ${hc.stderr}`);
  t.is(JSON.parse(hc.body).localEndpoints, 2);
});

serial('nodePortAddresses of one family (IPv4 CIDRs only) leaves the other unrestricted, as kube-proxy\'s IPv6 proxier: a dual-stack NodePort is served on the Node\'s IPv6 address, not on an IPv4 one outside the CIDRs', async (t) => {
  const [a, b] = topo.pods;
  const NODE6 = 'fd00:100::2', OUTSIDE = '198.51.100.2';
  const node = (extra) => ({
    metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:244::/64'] },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, ...extra, { type: 'Hostname', address: 'node-a' }] },
  });
  await double('PUT', '/api/v1/nodes/node-a', node([{ type: 'InternalIP', address: NODE6 }, { type: 'ExternalIP', address: OUTSIDE }]));
  await double('POST', '/api/v1/namespaces/default/services', {
    metadata: { name: 'ds', namespace: 'default' },
    spec: {
      type: 'NodePort', clusterIP: '10.96.50.20', clusterIPs: ['10.96.50.20', 'fd00:96::50:20'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
      internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', sessionAffinity: 'None', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30081 }],
    },
    status: { loadBalancer: {} },
  });
  const dsSlice = (name, addressType, ip) => ({
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'ds' } }, addressType,
    endpoints: [{ addresses: [ip], conditions: { ready: true }, nodeName: 'node-a' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  await double('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', dsSlice('ds-v4', 'IPv4', a.ip));
  await double('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', dsSlice('ds-v6', 'IPv6', b.ip6));
  try {
    let spec;
    for (let i = 0; i < 50; i++) {
      spec = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
      if ((spec.nodePortAddresses ?? []).includes(NODE6)) break;
      await sleep(200);
    }
    t.deepEqual(spec.nodePortAddresses, ['192.168.100.2', NODE6], `the IPv6 InternalIP is a NodePort address, the IPv4 ExternalIP outside 192.168.100.0/24 is not\n${topo.daemonLog.slice(-1500)}`);
    t.deepEqual(spec.nodeAddresses, ['192.168.100.2', NODE6, OUTSIDE], 'every Node address stays a node address');
    const v6 = await curlOk(topo, topo.ns.remote, `http://[${NODE6}]:30081/`, 30);
    t.is(v6.code, 0, `NodePort on the Node's IPv6 address: ${v6.stderr}\n${topo.daemonLog.slice(-1500)}`);
    t.is(v6.body, 'pod-b\n', 'the IPv6 endpoint');
    const v4 = await curlOk(topo, topo.ns.remote, 'http://192.168.100.2:30081/', 30);
    t.is(v4.body, 'pod-a\n', 'the IPv4 endpoint on the address inside the CIDR');
  } finally {
    await double('DELETE', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/ds-v4');
    await double('DELETE', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/ds-v6');
    await double('DELETE', '/api/v1/namespaces/default/services/ds');
    await double('PUT', '/api/v1/nodes/node-a', node([]));
  }
});

serial('an apply of a Service through the wdp API of a daemon that follows the API server is answered with a warning that it will be put back', async (t) => {
  const r = await api(topo, 'POST', '/api/v1/apply?dryRun=true', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'by-hand', namespace: 'default' }, spec: { clusterIP: '10.96.50.99', ports: [{ port: 80 }] } });
  t.is(r.status, 200, r.text);
  t.regex(String(r.headers.warning), /^299 - "this daemon follows the Kubernetes API server: .*next full sync \(kubernetes\.syncPeriod \d+(\.\d+)?s\)/);
  // the NodeConfig too: the daemon builds it from its Node and puts that back
  const n = await api(topo, 'POST', '/api/v1/apply?dryRun=true', { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node' }, spec: {} });
  t.regex(String(n.headers.warning), /^299 - "this daemon follows the Kubernetes API server: it builds its NodeConfig from its Node/, n.text);
});

serial('a deleted Service stops answering', async (t) => {
  await double('DELETE', '/api/v1/namespaces/default/services/web');
  let r;
  for (let i = 0; i < 50; i++) {
    r = await curl(topo, topo.ns.client, `http://${VIP}/`, { timeout: 2 });
    if (r.code !== 0) break;
    await sleep(200);
  }
  t.not(r.code, 0, 'the VIP no longer answers');
});
