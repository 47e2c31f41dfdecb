// Kubernetes' own Service e2e scenarios (test/e2e/network/service.go, loadbalancer.go,
// networking.go, dual_stack.go, topology hints) that no other wdp test ran end to end or only
// through the control API, each as close to the upstream test as one node allows: `wdp start` in its network namespace, fed by the API-server double (Services,
// EndpointSlices and the Node written to it as the API server and the EndpointSlice controller
// would), real curl / UDP clients in the client, remote and pod namespaces, and the node's own
// stack (healthCheckNodePort servers, hostNetwork clients and endpoints) behind wdp's host port.
// pod-a and pod-b are on this node (node-a), pod-c is said to be on node-b, pod-d is the exec pod
// (a client pod that is no endpoint). Tests run in order on one daemon (one restarts it) and each
// deletes what it created. The map from upstream test names to wdp tests is docs/e2e-coverage.md.
import test from 'ava';
import { READY, TERMINATING, SVC, EPS, service, cluster, slice, kit, kubeNode } from './lib/kube-e2e-kit.js';
import {
  rootGate, buildTopology, startDaemon, startPods, destroyTopology, api, arpAnswered, curl, httpMany, udpAsk, sleep, waitFor, NODE_V4, POD_SERVER,
} from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl', 'ss'] });

const REMOTE = '192.168.100.10';
const HOST_HTTP = 10180; // a hostNetwork pod's port (service.go picks an uncommon one too)
let topo;
let double;
/** The exec pod. */
const d = () => topo.pods[3];

// ---- objects as the API server and the EndpointSlice controller write them ---------------------

const http = (extra = {}) => ({ name: 'http', port: 80, targetPort: 8080, ...extra });

const { put, del, who, until, pods } = kit(() => topo, () => double);

// ---- clients -------------------------------------------------------------------------------------

/** One UDP datagram from `ns`: the answering pod, 'refused' (ICMP port unreachable) or null. */
async function udpWho(ns, host, port) {
  // a connected socket (as the upstream tests' net.Dial("udp")): an ICMP port unreachable is ECONNREFUSED
  const script = `
    const s = require('dgram').createSocket('udp4');
    const t = setTimeout(() => { console.log('null'); process.exit(0); }, 1500);
    s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify(e.code === 'ECONNREFUSED' ? 'refused' : e.code)); process.exit(0); });
    s.on('message', (m) => { clearTimeout(t); console.log(JSON.stringify(String(m).split(':')[0])); process.exit(0); });
    s.connect(${port}, ${JSON.stringify(host)}, () => { s.send('hostname'); setTimeout(() => s.send('hostname'), 300); });`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 8000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return `no output: ${r.stderr}`; }
}
/** The HTTP status of a healthCheckNodePort (or of any URL) from `ns`; 0 when nothing answers. */
async function status(ns, url) {
  const r = await topo.lab.execAsync(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', url], { timeoutMs: 8000 });
  return Number(r.stdout.trim()) || 0;
}

test.before(async () => {
  if (!root) return;
  // pod-d is the exec pod of the tests that need a client pod that is no endpoint
  ({ topo, double } = await kubeNode('ks', {
    async started(topo) {
      // a hostNetwork pod's server, on the node (the dataplane namespace), answering "node-a"
      const host = topo.lab.spawn(topo.ns.dp, process.execPath, [POD_SERVER, 'node-a', '--http', String(HOST_HTTP), '--udp', String(HOST_HTTP)]);
      topo.podProcs.push(host);
      let out = '';
      host.stdout.on('data', (d) => { out += d; });
      await waitFor('the hostNetwork server', () => out.includes('ready'), 10000);
    },
  }));
});
test.after.always(async () => { await destroyTopology(topo); });

serial('service.go "should be able to change the type from ExternalName to ClusterIP / NodePort" and back "from ClusterIP / NodePort to ExternalName"', async (t) => {
  const [a, b] = topo.pods;
  const ext = { type: 'ExternalName', externalName: 'externalsvc.default.svc.cluster.local', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] };
  await put(SVC, service('extname', ext));
  await put(SVC, service('extname', cluster('10.96.53.10', [http()])));
  await put(EPS, slice('extname-x1', 'extname', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, 'http://10.96.53.10/')), ['pod-a', 'pod-b'], 'ExternalName → ClusterIP: the cluster IP reaches both pods');
  await put(SVC, service('extname', ext)); // the API server clears the cluster IP
  t.is(await until(null, () => who(topo.ns.client, 'http://10.96.53.10/')), null, 'ClusterIP → ExternalName: the old cluster IP is no longer served');

  await put(SVC, service('extname', cluster('10.96.53.11', [http({ nodePort: 30531 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.remote, `http://${NODE_V4}:30531/`)), ['pod-a', 'pod-b'], 'ExternalName → NodePort: the node port');
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, 'http://10.96.53.11/'), 4), ['pod-a', 'pod-b'], 'and its cluster IP');
  await put(SVC, service('extname', ext));
  t.is(await until(null, () => who(topo.ns.remote, `http://${NODE_V4}:30531/`)), null, 'NodePort → ExternalName: the node port is released');
  t.is(await who(topo.ns.client, 'http://10.96.53.11/'), null, 'and the cluster IP');
  await del(EPS, 'extname-x1');
  await del(SVC, 'extname');
});

serial('service.go "should be updated after adding or deleting ports" (named target ports, one pod per port)', async (t) => {
  const [a, b] = topo.pods;
  const p1 = { name: 'portname1', port: 80, targetPort: 'svc1' };
  const p2 = { name: 'portname2', port: 81, targetPort: 'svc2' };
  await put(SVC, service('editport', cluster('10.96.53.20', [p1])));
  // the EndpointSlice controller: one slice per distinct port set (pod1 serves svc1 on 8080)
  await put(EPS, slice('editport-p1', 'editport', [{ name: 'portname1', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.96.53.20/')), 'pod-a');
  await put(SVC, service('editport', cluster('10.96.53.20', [p1, p2])));
  await put(EPS, slice('editport-p2', 'editport', [{ name: 'portname2', port: 9090 }], [[b, READY]]));
  t.is(await until('pod-b', () => who(topo.ns.client, 'http://10.96.53.20:81/')), 'pod-b', 'the added port reaches pod2');
  t.deepEqual(await pods(topo.ns.client, 'http://10.96.53.20/'), ['pod-a'], 'the first port still only pod1');
  // the port is deleted from the Service; pod2's slice is still there (the controller lags)
  await put(SVC, service('editport', cluster('10.96.53.20', [p1])));
  t.is(await until(null, () => who(topo.ns.client, 'http://10.96.53.20:81/')), null, 'the deleted port no longer forwards');
  t.deepEqual(await pods(topo.ns.client, 'http://10.96.53.20/'), ['pod-a']);
  await del(EPS, 'editport-p2');
  await del(EPS, 'editport-p1');
  await del(SVC, 'editport');
});

serial('service.go "should serve endpoints on same port and different protocols": TCP+UDP, then TCP only, then UDP only', async (t) => {
  const [a] = topo.pods;
  const tcp = { name: 'tcp-port', port: 80, targetPort: 8080, protocol: 'TCP' };
  const udp = { name: 'udp-port', port: 80, targetPort: 5353, protocol: 'UDP' };
  const vip = '10.96.53.30';
  await put(SVC, service('multiproto', cluster(vip, [tcp, udp])));
  await put(EPS, slice('multiproto-1', 'multiproto', [{ name: 'tcp-port', port: 8080, protocol: 'TCP' }, { name: 'udp-port', port: 5353, protocol: 'UDP' }], [[a, READY]]));
  t.is(await until('pod-a', () => who(topo.ns.client, `http://${vip}/`)), 'pod-a', 'TCP');
  t.is(await until('pod-a', () => udpWho(topo.ns.client, vip, 80)), 'pod-a', 'UDP');
  await put(SVC, service('multiproto', cluster(vip, [tcp])));
  t.is(await until('refused', () => udpWho(topo.ns.client, vip, 80)), 'refused', 'TCP only: UDP refused (ICMP port unreachable: a port the Service does not define)');
  t.is(await who(topo.ns.client, `http://${vip}/`), 'pod-a', 'TCP only: TCP still served');
  await put(SVC, service('multiproto', cluster(vip, [udp])));
  t.is(await until(7, async () => (await curl(topo, topo.ns.client, `http://${vip}/`, { timeout: 2 })).code), 7, 'UDP only: TCP refused');
  t.is(await until('pod-a', () => udpWho(topo.ns.client, vip, 80)), 'pod-a', 'UDP only: UDP served');
  await del(EPS, 'multiproto-1');
  await del(SVC, 'multiproto');
});

serial('service.go "should work after the service has been recreated" and "should be able to up and down services"', async (t) => {
  const [a, b, c] = topo.pods;
  const up = async (name, ip, eps) => {
    await put(SVC, service(name, cluster(ip, [http()])));
    await put(EPS, slice(`${name}-1`, name, [{ name: 'http', port: 8080 }], eps));
  };
  await up('updown-1', '10.96.53.41', [[a, READY]]);
  await up('updown-2', '10.96.53.42', [[b, READY], [c, READY, 'node-b']]);
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.96.53.41/')), 'pod-a');
  t.deepEqual(await until(['pod-b', 'pod-c'], () => pods(topo.ns.client, 'http://10.96.53.42/')), ['pod-b', 'pod-c']);
  // the Service is deleted (its slices go with it, garbage-collected by their owner reference)
  await del(SVC, 'updown-1');
  await del(EPS, 'updown-1-1');
  t.is(await until(null, () => who(topo.ns.client, 'http://10.96.53.41/')), null, 'a deleted Service is down');
  t.deepEqual(await until(['pod-b', 'pod-c'], () => pods(topo.ns.client, 'http://10.96.53.42/'), 4), ['pod-b', 'pod-c'], 'the other one still up');
  // recreated (the API server gives it a new cluster IP), and a third one
  await up('updown-1', '10.96.53.43', [[a, READY]]);
  await up('updown-3', '10.96.53.44', [[c, READY, 'node-b']]);
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.96.53.43/')), 'pod-a', 'the recreated Service is up on its new cluster IP');
  t.is(await until('pod-c', () => who(topo.ns.client, 'http://10.96.53.44/')), 'pod-c');
  t.deepEqual(await until(['pod-b', 'pod-c'], () => pods(topo.ns.client, 'http://10.96.53.42/'), 4), ['pod-b', 'pod-c']);
  t.is(await who(topo.ns.client, 'http://10.96.53.41/'), null, 'the old cluster IP stays down');
  for (const n of ['updown-1', 'updown-2', 'updown-3']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

for (const [label, value, what] of [['service.kubernetes.io/service-proxy-name', 'foo-bar', 'service-proxy-name'], ['service.kubernetes.io/headless', '', 'headless']]) {
  serial(`service.go "should implement service.kubernetes.io/${what}": labelled never served, the label toggled on a live Service`, async (t) => {
    const [a, b] = topo.pods;
    const lab = { [label]: value };
    const vipOff = what === 'headless' ? '10.96.53.52' : '10.96.53.50', vipOn = what === 'headless' ? '10.96.53.53' : '10.96.53.51';
    const eps = [[a, READY], [b, READY]];
    // the EndpointSlice controller copies the Service's labels to its slices
    await put(SVC, service(`${what}-disabled`, cluster(vipOff, [http()]), lab));
    await put(EPS, slice(`${what}-disabled-1`, `${what}-disabled`, [{ name: 'http', port: 8080 }], eps, lab));
    await put(SVC, service(`${what}-toggled`, cluster(vipOn, [http()])));
    await put(EPS, slice(`${what}-toggled-1`, `${what}-toggled`, [{ name: 'http', port: 8080 }], eps));
    t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, `http://${vipOn}/`)), ['pod-a', 'pod-b'], 'the unlabelled Service is up');
    t.is(await who(topo.ns.client, `http://${vipOff}/`), null, 'the labelled one is not');
    await put(SVC, service(`${what}-toggled`, cluster(vipOn, [http()]), lab));
    await put(EPS, slice(`${what}-toggled-1`, `${what}-toggled`, [{ name: 'http', port: 8080 }], eps, lab));
    t.is(await until(null, () => who(topo.ns.client, `http://${vipOn}/`)), null, 'labelled: down');
    await put(SVC, service(`${what}-toggled`, cluster(vipOn, [http()])));
    await put(EPS, slice(`${what}-toggled-1`, `${what}-toggled`, [{ name: 'http', port: 8080 }], eps));
    t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, `http://${vipOn}/`)), ['pod-a', 'pod-b'], 'the label removed: up again');
    t.is(await who(topo.ns.client, `http://${vipOff}/`), null, 'the labelled one is still not');
    for (const n of [`${what}-disabled`, `${what}-toggled`]) { await del(EPS, `${n}-1`); await del(SVC, n); }
  });
}

serial('externalTrafficPolicy Local with a healthCheckNodePort: 200 with a ready local endpoint; only terminating ones: 503 while the node port still serves them; switched to Cluster the port closes, back to Local it opens (service.go, loadbalancer.go ESIPP)', async (t) => {
  const [a, , c] = topo.pods;
  const lbSpec = (etp, hc) => ({
    ...cluster('10.96.53.60', [http({ nodePort: 30560 })], { type: 'LoadBalancer', externalTrafficPolicy: etp, ...(hc ? { healthCheckNodePort: hc } : {}) }), lbIP: '203.0.113.60',
  });
  const np = `http://${NODE_V4}:30560/`;
  await put(SVC, service('esipp', lbSpec('Local', 32560)));
  await put(EPS, slice('esipp-1', 'esipp', [{ name: 'http', port: 8080 }], [[a, READY], [c, READY, 'node-b']]));
  t.is(await until(200, () => status(topo.ns.remote, `http://${NODE_V4}:32560/healthz`)), 200, 'a ready local endpoint: 200');
  const body = (await curl(topo, topo.ns.remote, `http://${NODE_V4}:32560/healthz`)).body;
  t.is(JSON.parse(body).localEndpoints, 1, body);
  const local = await httpMany(topo, topo.ns.remote, np, 8);
  t.deepEqual([...new Set(local.map((x) => x.pod || x.error))], ['pod-a'], 'Local: only the local endpoint');
  t.deepEqual([...new Set(local.map((x) => x.peer))], [REMOTE], 'and the client address is kept');

  // the local pod is deleted (still serving through its grace period); pod-c on node-b stays ready
  await put(EPS, slice('esipp-1', 'esipp', [{ name: 'http', port: 8080 }], [[a, TERMINATING], [c, READY, 'node-b']]));
  t.is(await until(503, () => status(topo.ns.remote, `http://${NODE_V4}:32560/healthz`)), 503, 'only a terminating local endpoint: 503');
  t.deepEqual(await pods(topo.ns.remote, np), ['pod-a'], 'while the node port still reaches the local terminating endpoint (fallback)');

  // externalTrafficPolicy Cluster: the API server drops the healthCheckNodePort
  await put(SVC, service('esipp', lbSpec('Cluster')));
  t.is(await until(0, () => status(topo.ns.remote, `http://${NODE_V4}:32560/healthz`)), 0, 'Cluster: the health check port is closed');
  t.is((await topo.lab.execAsync(topo.ns.dp, 'ss', ['-Hltn', 'sport = :32560'])).stdout.trim(), '', 'nothing listens on it');
  const clusterRes = await httpMany(topo, topo.ns.remote, np, 8);
  t.deepEqual([...new Set(clusterRes.map((x) => x.pod || x.error))], ['pod-c'], 'Cluster: the ready endpoint elsewhere');
  t.notDeepEqual([...new Set(clusterRes.map((x) => x.peer))], [REMOTE], 'masqueraded');

  // back to Local, with a new healthCheckNodePort; the local pod ready again (a new one)
  await put(SVC, service('esipp', lbSpec('Local', 32561)));
  t.is(await until(503, () => status(topo.ns.remote, `http://${NODE_V4}:32561/healthz`)), 503, 'Local again: the new port answers, 503 with no ready local endpoint');
  await put(EPS, slice('esipp-1', 'esipp', [{ name: 'http', port: 8080 }], [[a, READY], [c, READY, 'node-b']]));
  t.is(await until(200, () => status(topo.ns.remote, `http://${NODE_V4}:32561/healthz`)), 200);
  t.deepEqual(await until([REMOTE], async () => [...new Set((await httpMany(topo, topo.ns.remote, `http://203.0.113.60/`, 6)).map((x) => x.peer || x.error))]), [REMOTE], 'the LB IP keeps the client address again');
  await del(EPS, 'esipp-1');
  await del(SVC, 'esipp');
  t.is(await until(0, () => status(topo.ns.remote, `http://${NODE_V4}:32561/healthz`)), 0, 'the Service deleted: its health check port closes');
});

serial('service.go "should release NodePorts on delete": nothing listens on the node port, and a new Service takes the same one', async (t) => {
  const [a, b] = topo.pods;
  await put(SVC, service('np-reuse', cluster('10.96.53.70', [http({ nodePort: 30570 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('np-reuse-1', 'np-reuse', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(topo.ns.remote, `http://${NODE_V4}:30570/`)), 'pod-a');
  await del(SVC, 'np-reuse');
  await del(EPS, 'np-reuse-1');
  t.is(await until(null, () => who(topo.ns.remote, `http://${NODE_V4}:30570/`)), null, 'deleted: the node port is not served');
  const ss = await topo.lab.execAsync(topo.ns.dp, 'ss', ['-Hltun', 'sport = :30570']);
  t.is(ss.stdout.trim(), '', `nothing listens on the node port on the node: ${ss.stdout}`);
  await put(SVC, service('np-reuse2', cluster('10.96.53.71', [http({ nodePort: 30570 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('np-reuse2-1', 'np-reuse2', [{ name: 'http', port: 8080 }], [[b, READY]]));
  t.is(await until('pod-b', () => who(topo.ns.remote, `http://${NODE_V4}:30570/`)), 'pod-b', 'a new Service with the same node port is served');
  await del(EPS, 'np-reuse2-1');
  await del(SVC, 'np-reuse2');
});

serial('service.go "should respect internalTrafficPolicy=Local Pod (hostNetwork: true) to Pod" and "Pod and Node, to Pod (hostNetwork: true)"', async (t) => {
  const [a, b, c] = topo.pods;
  const itp = { internalTrafficPolicy: 'Local' };
  // a pod endpoint on this node: the node itself (a hostNetwork client) and a pod reach it
  await put(SVC, service('itp-pod', cluster('10.96.53.80', [http()], itp)));
  await put(EPS, slice('itp-pod-1', 'itp-pod', [{ name: 'http', port: 8080 }], [[a, READY], [c, READY, 'node-b']]));
  t.deepEqual(await until(['pod-a'], () => pods(topo.ns.dp, 'http://10.96.53.80/', 6)), ['pod-a'], 'hostNetwork client → the local endpoint only');
  t.deepEqual(await pods(b.ns, 'http://10.96.53.80/', 6), ['pod-a'], 'pod client → the local endpoint only');
  // only an endpoint on another node: the node's own connection fails, as a pod's
  await put(EPS, slice('itp-pod-1', 'itp-pod', [{ name: 'http', port: 8080 }], [[c, READY, 'node-b']]));
  t.is(await until(null, () => who(topo.ns.dp, 'http://10.96.53.80/')), null, 'hostNetwork client, no local endpoint: fails');
  t.is(await who(b.ns, 'http://10.96.53.80/'), null, 'pod client, no local endpoint: fails');

  // a hostNetwork endpoint (the node's address, an uncommon port) with internalTrafficPolicy Local
  await put(SVC, service('itp-host', cluster('10.96.53.81', [http({ targetPort: HOST_HTTP })], itp)));
  await put(EPS, slice('itp-host-1', 'itp-host', [{ name: 'http', port: HOST_HTTP }], [[NODE_V4, READY]]));
  t.is(await until('node-a', () => who(b.ns, 'http://10.96.53.81/')), 'node-a', 'pod → the hostNetwork endpoint on its node');
  t.is(await until('node-a', () => who(topo.ns.dp, 'http://10.96.53.81/')), 'node-a', 'node → the hostNetwork endpoint on itself');
  for (const n of ['itp-pod', 'itp-host']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

serial('service.go "should work after restarting apiserver": while the API server is away forwarding goes on; back (watch cache rebuilt: 410 on resume) the Services stay up and a new one is served', async (t) => {
  const [a, b] = topo.pods;
  await put(SVC, service('restart-apiserver-1', cluster('10.96.53.90', [http()])));
  await put(EPS, slice('restart-apiserver-1-1', 'restart-apiserver-1', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, 'http://10.96.53.90/')), ['pod-a', 'pod-b']);
  // the API server goes away: watches cut, the next lists and watches refused; its restarted
  // watch cache starts at the current revision, so resuming from an older one gets 410 Gone
  await double('POST', '/__double/fail-requests?count=4&code=503');
  await double('POST', '/__double/compact');
  await double('POST', '/__double/drop-watches');
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, 'http://10.96.53.90/'), 4), ['pod-a', 'pod-b'], 'forwarding goes on while the API server is away');
  await put(SVC, service('restart-apiserver-2', cluster('10.96.53.91', [http()])));
  await put(EPS, slice('restart-apiserver-2-1', 'restart-apiserver-2', [{ name: 'http', port: 8080 }], [[b, READY]]));
  t.is(await until('pod-b', () => who(topo.ns.client, 'http://10.96.53.91/'), 160), 'pod-b', `a Service created after the restart is served\n${topo.daemonLog.slice(-2000)}`);
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(topo.ns.client, 'http://10.96.53.90/'), 4), ['pod-a', 'pod-b'], 'the first one is still up');
  const h = await curl(topo, topo.ns.dp, 'http://127.0.0.1:10256/healthz');
  t.is(h.code, 0);
  t.true(JSON.parse(h.body).lastUpdated !== undefined);
  for (const n of ['restart-apiserver-1', 'restart-apiserver-2']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

/** Which pods answer `n` GETs of `url` from `ns`, in order (errors as their code). */
async function trace(ns, url, n) {
  return (await httpMany(topo, ns, url, n, { timeoutMs: 2000 })).map((x) => x.pod || x.error);
}

serial('service.go "should have session affinity (timeout) work for NodePort service" and "should be able to switch session affinity for NodePort service", from an exec pod', async (t) => {
  const [a, b, c, d] = topo.pods;
  const np = `http://${NODE_V4}:30580/`;
  const spec = (affinity) => cluster('10.96.53.100', [http({ nodePort: 30580 })], {
    type: 'NodePort', externalTrafficPolicy: 'Cluster', sessionAffinity: affinity,
    ...(affinity === 'ClientIP' ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 2 } } } : {}),
  });
  await put(SVC, service('affinity-nodeport', spec('ClientIP')));
  await put(EPS, slice('affinity-nodeport-1', 'affinity-nodeport', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY], [c, READY, 'node-b']]));
  t.is((await until(1, async () => new Set(await trace(d.ns, np, 3)).size)), 1);
  const sticky = await trace(d.ns, np, 15);
  t.is(new Set(sticky).size, 1, `sticky until the timeout: ${sticky}`);
  // after the timeout a fresh pick: across several expiries, more than one pod
  const picks = new Set();
  for (let i = 0; i < 12 && picks.size < 2; i++) { await sleep(2600); picks.add((await trace(d.ns, np, 1))[0]); }
  t.true(picks.size > 1, `a fresh pick after each expiry: ${[...picks]}`);
  // switched off and on again (the Service object itself, as UpdateService does)
  await put(SVC, service('affinity-nodeport', spec('None')));
  t.true((await until(3, async () => new Set(await trace(d.ns, np, 15)).size)) > 1, 'None: spread');
  await put(SVC, service('affinity-nodeport', spec('ClientIP')));
  t.is(await until(1, async () => new Set(await trace(d.ns, np, 15)).size), 1, 'ClientIP again: one pod');
  await del(EPS, 'affinity-nodeport-1');
  await del(SVC, 'affinity-nodeport');
});

for (const etp of ['Cluster', 'Local']) {
  serial(`loadbalancer.go "should have session affinity work for LoadBalancer service with ESIPP ${etp === 'Local' ? 'on' : 'off'}" and switched off and on, from outside`, async (t) => {
    const [a, b, c] = topo.pods;
    const lbIP = etp === 'Local' ? '203.0.113.71' : '203.0.113.70';
    const vip = etp === 'Local' ? '10.96.53.111' : '10.96.53.110';
    const spec = (affinity) => ({
      ...cluster(vip, [http({ nodePort: etp === 'Local' ? 30591 : 30590 })], {
        type: 'LoadBalancer', externalTrafficPolicy: etp, sessionAffinity: affinity, ...(etp === 'Local' ? { healthCheckNodePort: 32591 } : {}),
      }),
      lbIP,
    });
    // Local: the two endpoints on this node are the candidates (pod-c is elsewhere)
    await put(SVC, service(`affinity-lb-${etp.toLowerCase()}`, spec('ClientIP')));
    await put(EPS, slice(`affinity-lb-${etp.toLowerCase()}-1`, `affinity-lb-${etp.toLowerCase()}`, [{ name: 'http', port: 8080 }], [[a, READY], [b, READY], [c, READY, 'node-b']]));
    t.is(await until(1, async () => new Set(await trace(topo.ns.remote, `http://${lbIP}/`, 15)).size, 10), 1, 'ClientIP: one pod');
    await put(SVC, service(`affinity-lb-${etp.toLowerCase()}`, spec('None')));
    const spread = await until(etp === 'Local' ? ['pod-a', 'pod-b'] : ['pod-a', 'pod-b', 'pod-c'], async () => [...new Set(await trace(topo.ns.remote, `http://${lbIP}/`, 20))].sort(), 10);
    t.deepEqual(spread, etp === 'Local' ? ['pod-a', 'pod-b'] : ['pod-a', 'pod-b', 'pod-c'], 'None: spread (Local: over the local endpoints)');
    await put(SVC, service(`affinity-lb-${etp.toLowerCase()}`, spec('ClientIP')));
    t.is(await until(1, async () => new Set(await trace(topo.ns.remote, `http://${lbIP}/`, 15)).size, 10), 1, 'ClientIP again: one pod');
    await del(EPS, `affinity-lb-${etp.toLowerCase()}-1`);
    await del(SVC, `affinity-lb-${etp.toLowerCase()}`);
  });
}

serial('service.go "should be rejected for evicted pods (no endpoints exist)": publishNotReadyAddresses, a slice without endpoints or ports (null, as the API server serializes them): refused', async (t) => {
  const [a] = topo.pods;
  await put(SVC, service('evicted-pods', cluster('10.96.53.120', [http()], { publishNotReadyAddresses: true })));
  await put(EPS, slice('evicted-pods-1', 'evicted-pods', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(d().ns, 'http://10.96.53.120/')), 'pod-a');
  // the pod evicted: the controller's placeholder slice, its empty lists read back from etcd as null
  await put(EPS, { ...slice('evicted-pods-1', 'evicted-pods', [], []), ports: null, endpoints: null });
  t.is(await until(7, async () => (await curl(topo, d().ns, 'http://10.96.53.120/', { timeout: 3 })).code), 7, 'connection refused (REFUSED), not a timeout');
  await del(EPS, 'evicted-pods-1');
  await del(SVC, 'evicted-pods');
});

serial('service.go "should be possible to connect to a service via ExternalIP when the external IP is not assigned to a node", and loadbalancer.go ESIPP "should work from pods": from an exec pod, its address kept', async (t) => {
  const [a, b] = topo.pods;
  await put(SVC, service('externalip-test', cluster('10.96.53.130', [http()], { externalIPs: ['203.0.113.250'] })));
  await put(SVC, service('esipp-pods', { ...cluster('10.96.53.131', [http({ nodePort: 30631 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32631 }), lbIP: '203.0.113.131' }));
  await put(EPS, slice('externalip-test-1', 'externalip-test', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  await put(EPS, slice('esipp-pods-1', 'esipp-pods', [{ name: 'http', port: 8080 }], [[a, READY]]));
  const ext = await until(['pod-a', 'pod-b'], async () => [...new Set(await trace(d().ns, 'http://203.0.113.250/', 10))].sort());
  t.deepEqual(ext, ['pod-a', 'pod-b'], 'the external IP from a pod');
  const peers = await httpMany(topo, d().ns, 'http://203.0.113.131/', 4);
  t.deepEqual([...new Set(peers.map((x) => x.pod || x.error))], ['pod-a']);
  t.deepEqual([...new Set(peers.map((x) => x.peer))], [d().ip], 'the LB IP from a pod: the pod\'s address is what the endpoint sees');
  for (const n of ['externalip-test', 'esipp-pods']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

serial('hairpin through every address of a Service: a pod reaching itself through the ClusterIP, its node\'s NodePort, an external IP and the LB IP (service.go "should allow pods to hairpin back to themselves through services")', async (t) => {
  const [a] = topo.pods;
  await put(SVC, service('hairpin-test', { ...cluster('10.96.53.140', [http({ nodePort: 30640 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', externalIPs: ['203.0.113.141'] }), lbIP: '203.0.113.140' }));
  await put(EPS, slice('hairpin-test-1', 'hairpin-test', [{ name: 'http', port: 8080 }], [[a, READY]]));
  for (const url of ['http://10.96.53.140/', `http://${NODE_V4}:30640/`, 'http://203.0.113.141/', 'http://203.0.113.140/']) {
    t.is(await until('pod-a', () => who(a.ns, url)), 'pod-a', `${url}: the pod reaches itself`);
    const r = await httpMany(topo, a.ns, url, 2);
    t.notDeepEqual(r.map((x) => x.peer), [a.ip, a.ip], `${url}: masqueraded (the pod would answer itself directly)`);
  }
  await del(EPS, 'hairpin-test-1');
  await del(SVC, 'hairpin-test');
});

serial('service.go "should fallback to (local) terminating endpoints when there are no ready endpoints" with internalTrafficPolicy Cluster and Local and externalTrafficPolicy Cluster', async (t) => {
  const [a, , c] = topo.pods;
  // internalTrafficPolicy Cluster: the only endpoint terminating (on the other node), still serving
  await put(SVC, service('term-itp-cluster', cluster('10.96.53.150', [http({ nodePort: 30650 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('term-itp-cluster-1', 'term-itp-cluster', [{ name: 'http', port: 8080 }], [[c, READY, 'node-b']]));
  t.is(await until('pod-c', () => who(d().ns, 'http://10.96.53.150/')), 'pod-c');
  await put(EPS, slice('term-itp-cluster-1', 'term-itp-cluster', [{ name: 'http', port: 8080 }], [[c, TERMINATING, 'node-b']]));
  await sleep(1000);
  for (let i = 0; i < 3; i++) {
    t.is(await who(d().ns, 'http://10.96.53.150/'), 'pod-c', 'iTP Cluster: a pod reaches the terminating endpoint');
    t.is(await who(topo.ns.remote, `http://${NODE_V4}:30650/`), 'pod-c', 'eTP Cluster: the node port reaches it from outside');
  }
  // internalTrafficPolicy Local: the local terminating endpoint serves the pods of its node
  await put(SVC, service('term-itp-local', cluster('10.96.53.151', [http()], { internalTrafficPolicy: 'Local' })));
  await put(EPS, slice('term-itp-local-1', 'term-itp-local', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(d().ns, 'http://10.96.53.151/')), 'pod-a');
  await put(EPS, slice('term-itp-local-1', 'term-itp-local', [{ name: 'http', port: 8080 }], [[a, TERMINATING]]));
  await sleep(1000);
  for (let i = 0; i < 3; i++) t.is(await who(d().ns, 'http://10.96.53.151/'), 'pod-a', 'iTP Local: the local terminating endpoint');
  // ... but not a terminating endpoint on another node
  await put(EPS, slice('term-itp-local-1', 'term-itp-local', [{ name: 'http', port: 8080 }], [[c, TERMINATING, 'node-b']]));
  t.is(await until(28, async () => (await curl(topo, d().ns, 'http://10.96.53.151/', { timeout: 2 })).code), 28, 'iTP Local, terminating only elsewhere: dropped (a timeout)');
  for (const n of ['term-itp-cluster', 'term-itp-local']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

serial('loadbalancer.go "should only allow access from service loadbalancer source ranges": pods as clients, the ranges changed on the live Service, then removed', async (t) => {
  const [a, b] = topo.pods;
  const lb = (ranges) => service('lb-sourcerange', {
    ...cluster('10.96.53.160', [http({ nodePort: 30660 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', ...(ranges ? { loadBalancerSourceRanges: ranges } : {}) }), lbIP: '203.0.113.160',
  });
  const url = 'http://203.0.113.160/';
  await put(SVC, lb([`${d().ip}/32`]));
  await put(EPS, slice('lb-sourcerange-1', 'lb-sourcerange', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(d().ns, url)), 'pod-a', 'the accepted pod reaches the LB IP');
  t.is(await who(b.ns, url), null, 'the other pod does not');
  await put(SVC, lb([`${b.ip}/32`]));
  t.is(await until('pod-a', () => who(b.ns, url)), 'pod-a', 'ranges swapped: the other pod now reaches it');
  t.is(await until(null, () => who(d().ns, url)), null, 'and the first one no longer');
  await put(SVC, lb(null));
  t.is(await until('pod-a', () => who(d().ns, url)), 'pod-a', 'ranges removed: every client');
  t.is(await until('pod-a', () => who(b.ns, url)), 'pod-a');
  t.is(await who(topo.ns.remote, url), 'pod-a', 'from outside too');
  await del(EPS, 'lb-sourcerange-1');
  await del(SVC, 'lb-sourcerange');
});

serial('dual_stack.go through the API: a PreferDualStack Service (IPv6 primary) reaches each family\'s EndpointSlice; turned SingleStack the second cluster IP stops', async (t) => {
  const [a, b] = topo.pods;
  const ds = (ips, policy) => service('dualstack', {
    type: 'ClusterIP', clusterIP: ips[0], clusterIPs: ips, ipFamilies: ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4')), ipFamilyPolicy: policy,
    internalTrafficPolicy: 'Cluster', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
  });
  await put(SVC, ds(['fd00:96::53:170', '10.96.53.170'], 'PreferDualStack'));
  // the EndpointSlice controller: one slice per address family
  await put(EPS, slice('dualstack-v4', 'dualstack', [{ name: 'http', port: 8080 }], [[a, READY]]));
  await put(EPS, { ...slice('dualstack-v6', 'dualstack', [{ name: 'http', port: 8080 }], [[b.ip6, READY]]), addressType: 'IPv6' });
  t.is(await until('pod-b', () => who(topo.ns.client, 'http://[fd00:96::53:170]/')), 'pod-b', 'the IPv6 cluster IP: the IPv6 endpoint');
  t.is(await until('pod-a', () => who(topo.ns.client, 'http://10.96.53.170/')), 'pod-a', 'the IPv4 cluster IP: the IPv4 endpoint');
  await put(SVC, ds(['fd00:96::53:170'], 'SingleStack'));
  t.is(await until(null, () => who(topo.ns.client, 'http://10.96.53.170/')), null, 'single stack again: the IPv4 cluster IP is gone');
  t.is(await who(topo.ns.client, 'http://[fd00:96::53:170]/'), 'pod-b');
  await del(EPS, 'dualstack-v4');
  await del(EPS, 'dualstack-v6');
  await del(SVC, 'dualstack');
});

serial('a named targetPort that is a different number on each pod: one slice per port number, each pod reached on its own port (service.go "should serve multiport endpoints from pods")', async (t) => {
  const [a, b] = topo.pods;
  await put(SVC, service('namedport', cluster('10.96.53.180', [http({ targetPort: 'web' })])));
  await put(EPS, slice('namedport-8080', 'namedport', [{ name: 'http', port: 8080 }], [[a, READY]]));
  await put(EPS, slice('namedport-9090', 'namedport', [{ name: 'http', port: 9090 }], [[b, READY]]));
  const seen = await until(['pod-a:8080', 'pod-b:9090'], async () => [...new Set((await httpMany(topo, d().ns, 'http://10.96.53.180/', 12)).map((x) => (x.pod ? `${x.pod}:${x.localPort}` : x.error)))].sort());
  t.deepEqual(seen, ['pod-a:8080', 'pod-b:9090']);
  await del(EPS, 'namedport-8080');
  await del(EPS, 'namedport-9090');
  await del(SVC, 'namedport');
});

serial('events in either order: a slice seen before its Service, and a Service deleted and recreated over the slice that stayed (the two informers are independent)', async (t) => {
  const [a, b] = topo.pods;
  await put(EPS, slice('order-1', 'order', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  await sleep(500);
  await put(SVC, service('order', cluster('10.96.53.190', [http()])));
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(d().ns, 'http://10.96.53.190/')), ['pod-a', 'pod-b'], 'the slice that came first is programmed with its Service');
  await del(SVC, 'order');
  t.is(await until(null, () => who(d().ns, 'http://10.96.53.190/')), null);
  await put(SVC, service('order', cluster('10.96.53.191', [http()])));
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(d().ns, 'http://10.96.53.191/')), ['pod-a', 'pod-b'], 'recreated over the remaining slice');
  await del(EPS, 'order-1');
  t.is(await until(7, async () => (await curl(topo, d().ns, 'http://10.96.53.191/', { timeout: 2 })).code), 7, 'its slice deleted: no endpoints, refused');
  await del(SVC, 'order');
});

serial('service.go "should work after restarting kube-proxy": wdp restarted, both Services up from the first requests, a healthCheckNodePort served again', async (t) => {
  const [a, b, c] = topo.pods;
  await put(SVC, service('restart-proxy-1', cluster('10.96.53.200', [http()])));
  await put(EPS, slice('restart-proxy-1-1', 'restart-proxy-1', [{ name: 'http', port: 8080 }], [[a, READY], [b, READY], [c, READY, 'node-b']]));
  await put(SVC, service('restart-proxy-2', { ...cluster('10.96.53.201', [http({ nodePort: 30701 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32701 }), lbIP: '203.0.113.201' }));
  await put(EPS, slice('restart-proxy-2-1', 'restart-proxy-2', [{ name: 'http', port: 8080 }], [[a, READY], [c, READY, 'node-b']]));
  t.deepEqual(await until(['pod-a', 'pod-b', 'pod-c'], () => pods(d().ns, 'http://10.96.53.200/', 15)), ['pod-a', 'pod-b', 'pod-c']);
  t.is(await until(200, () => status(topo.ns.remote, `http://${NODE_V4}:32701/healthz`)), 200);
  const exited = new Promise((res) => topo.daemon.once('exit', (code) => res(code)));
  topo.daemon.kill('SIGTERM');
  t.is(await exited, 0);
  await startDaemon(topo);
  t.deepEqual(await until(['pod-a', 'pod-b', 'pod-c'], () => pods(d().ns, 'http://10.96.53.200/', 15)), ['pod-a', 'pod-b', 'pod-c'], 'the first Service after the restart');
  t.deepEqual(await until(['pod-a'], () => pods(topo.ns.remote, `http://${NODE_V4}:30701/`, 6)), ['pod-a'], 'the second one\'s node port, Local');
  t.is(await until(200, () => status(topo.ns.remote, `http://${NODE_V4}:32701/healthz`)), 200, `its healthCheckNodePort again\n${topo.daemonLog.slice(-1500)}`);
  for (const n of ['restart-proxy-1', 'restart-proxy-2']) { await del(EPS, `${n}-1`); await del(SVC, n); }
});

serial('networking.go "Granular Checks: Services should function for pod-Service, node-Service and endpoint-Service: udp" (ClusterIP and NodePort)', async (t) => {
  const [a, b] = topo.pods;
  await put(SVC, service('netudp', cluster('10.96.53.210', [{ name: 'udp', port: 90, targetPort: 5353, protocol: 'UDP', nodePort: 30710 }], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
  await put(EPS, slice('netudp-1', 'netudp', [{ name: 'udp', port: 5353, protocol: 'UDP' }], [[a, READY], [b, READY]]));
  /** the endpoints that answer UDP datagrams from `ns` (fresh sockets) to host:port */
  const reached = async (ns, host, port) => {
    const seen = new Set();
    for (let i = 0; i < 16 && seen.size < 2; i++) { const w = await udpWho(ns, host, port); if (w) seen.add(w); }
    return [...seen].sort();
  };
  for (const [who_, ns] of [['pod', d().ns], ['node', topo.ns.dp], ['endpoint', a.ns]]) {
    t.deepEqual(await until(['pod-a', 'pod-b'], () => reached(ns, '10.96.53.210', 90), 10), ['pod-a', 'pod-b'], `${who_} → ClusterIP`);
    t.deepEqual(await until(['pod-a', 'pod-b'], () => reached(ns, NODE_V4, 30710), 10), ['pod-a', 'pod-b'], `${who_} → NodePort on its node's address`);
  }
  await del(EPS, 'netudp-1');
  await del(SVC, 'netudp');
});

serial('loadbalancer.go "should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service": a client outside keeping its source port follows the replaced pod through the LB IP', async (t) => {
  const [a, b] = topo.pods;
  const lbIP = '203.0.113.220';
  await put(SVC, service('lb-udp-cycle', { ...cluster('10.96.53.220', [{ name: 'udp', port: 80, targetPort: 5353, protocol: 'UDP', nodePort: 30720 }], { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), lbIP }));
  await put(EPS, slice('lb-udp-cycle-1', 'lb-udp-cycle', [{ name: 'udp', port: 5353, protocol: 'UDP' }], [[a, READY]]));
  const ask = async () => { const r = await udpAsk(topo, topo.ns.remote, lbIP, 80, 'hostname', { bindPort: 12346, timeoutMs: 1000 }); return r.reply ? r.reply.split(':')[0] : null; };
  t.is(await until('pod-a', ask), 'pod-a', 'the first server pod');
  // a second server pod ready, the first one deleted (terminating, its server gone), then removed
  await put(EPS, slice('lb-udp-cycle-1', 'lb-udp-cycle', [{ name: 'udp', port: 5353, protocol: 'UDP' }], [[a, { ready: false, serving: false, terminating: true }], [b, READY]]));
  t.is(await until('pod-b', ask, 20), 'pod-b', 'the same source port reaches the new pod');
  await put(EPS, slice('lb-udp-cycle-1', 'lb-udp-cycle', [{ name: 'udp', port: 5353, protocol: 'UDP' }], [[b, READY]]));
  t.is(await ask(), 'pod-b');
  await del(EPS, 'lb-udp-cycle-1');
  await del(SVC, 'lb-udp-cycle');
});

serial('the same Service and slice names in two namespaces (as parallel e2e tests create them) are two Services', async (t) => {
  const [a, b] = topo.pods;
  const inNs = (o, ns) => ({ ...o, metadata: { ...o.metadata, namespace: ns } });
  const nsPaths = (ns) => [`/api/v1/namespaces/${ns}/services`, `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`];
  const [svc1, eps1] = nsPaths('services-1111'), [svc2, eps2] = nsPaths('services-2222');
  await double('POST', svc1, inNs(service('hairpin-test', cluster('10.96.53.230', [http()])), 'services-1111'));
  await double('POST', eps1, inNs(slice('hairpin-test-abcde', 'hairpin-test', [{ name: 'http', port: 8080 }], [[a, READY]]), 'services-1111'));
  await double('POST', svc2, inNs(service('hairpin-test', cluster('10.96.53.231', [http()])), 'services-2222'));
  await double('POST', eps2, inNs(slice('hairpin-test-abcde', 'hairpin-test', [{ name: 'http', port: 8080 }], [[b, READY]]), 'services-2222'));
  t.is(await until('pod-a', () => who(d().ns, 'http://10.96.53.230/')), 'pod-a');
  t.is(await until('pod-b', () => who(d().ns, 'http://10.96.53.231/')), 'pod-b');
  await double('DELETE', `${svc1}/hairpin-test`);
  await double('DELETE', `${eps1}/hairpin-test-abcde`);
  t.is(await until(null, () => who(d().ns, 'http://10.96.53.230/')), null, 'one namespace\'s Service deleted');
  t.deepEqual(await until(['pod-b'], () => pods(d().ns, 'http://10.96.53.231/', 6)), ['pod-b'], 'the other namespace\'s still served');
  await double('DELETE', `${svc2}/hairpin-test`);
  await double('DELETE', `${eps2}/hairpin-test-abcde`);
});

serial('a Service deleted and another created at once with its node port and cluster IP (one sync sees both): the new one is served', async (t) => {
  const [a, b] = topo.pods;
  const np = (name) => service(name, cluster('10.96.53.240', [http({ nodePort: 30740 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' }));
  await put(SVC, np('nodeport-collision-1'));
  await put(EPS, slice('nodeport-collision-1-1', 'nodeport-collision-1', [{ name: 'http', port: 8080 }], [[a, READY]]));
  t.is(await until('pod-a', () => who(topo.ns.remote, `http://${NODE_V4}:30740/`)), 'pod-a');
  // the create reaches wdp in the same sync as the delete, possibly before it (two informers)
  await Promise.all([
    put(SVC, np('nodeport-collision-2')).then(() => put(EPS, slice('nodeport-collision-2-1', 'nodeport-collision-2', [{ name: 'http', port: 8080 }], [[b, READY]]))),
    del(EPS, 'nodeport-collision-1-1').then(() => del(SVC, 'nodeport-collision-1')),
  ]);
  t.is(await until('pod-b', () => who(topo.ns.remote, `http://${NODE_V4}:30740/`), 40), 'pod-b', `the node port\n${topo.daemonLog.slice(-1500)}`);
  t.is(await until('pod-b', () => who(d().ns, 'http://10.96.53.240/')), 'pod-b', 'the cluster IP');
  await del(EPS, 'nodeport-collision-2-1');
  await del(SVC, 'nodeport-collision-2');
});

serial('topology_hints.go / traffic_distribution.go through the API: the Node\'s zone label picks the endpoints hinted for it; relabelled, the other zone\'s', async (t) => {
  const [a, b, c] = topo.pods;
  const node = (zone) => ({
    metadata: { name: 'node-a', labels: zone ? { 'topology.kubernetes.io/zone': zone } : {} }, spec: { podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: NODE_V4 }, { type: 'Hostname', address: 'node-a' }] },
  });
  const hinted = (pod, zone, nodeName) => ({ addresses: [pod.ip], conditions: READY, nodeName, zone, hints: { forZones: [{ name: zone }] } });
  await double('PUT', '/api/v1/nodes/node-a', node('zone-a'));
  await put(SVC, service('topo', cluster('10.96.53.250', [http()], { trafficDistribution: 'PreferClose' })));
  await put(EPS, { ...slice('topo-1', 'topo', [{ name: 'http', port: 8080 }], []), endpoints: [hinted(a, 'zone-a', 'node-a'), hinted(b, 'zone-b', 'node-a'), hinted(c, 'zone-b', 'node-b')] });
  t.deepEqual(await until(['pod-a'], () => pods(d().ns, 'http://10.96.53.250/')), ['pod-a'], 'zone-a: the endpoint hinted for zone-a');
  await double('PUT', '/api/v1/nodes/node-a', node('zone-b'));
  t.deepEqual(await until(['pod-b', 'pod-c'], () => pods(d().ns, 'http://10.96.53.250/')), ['pod-b', 'pod-c'], 'the node relabelled zone-b: zone-b\'s endpoints');
  await double('PUT', '/api/v1/nodes/node-a', node(null));
  t.deepEqual(await until(['pod-a', 'pod-b', 'pod-c'], () => pods(d().ns, 'http://10.96.53.250/')), ['pod-a', 'pod-b', 'pod-c'], 'no zone label: hints ignored');
  // PreferSameNode: the controller adds node hints; every endpoint has one, one names this node
  await double('PUT', '/api/v1/nodes/node-a', node('zone-b'));
  const sameNode = (pod, zone, nodeName) => ({ ...hinted(pod, zone, nodeName), hints: { forZones: [{ name: zone }], forNodes: [{ name: nodeName }] } });
  await put(SVC, service('topo', cluster('10.96.53.250', [http()], { trafficDistribution: 'PreferSameNode' })));
  await put(EPS, { ...slice('topo-1', 'topo', [{ name: 'http', port: 8080 }], []), endpoints: [sameNode(a, 'zone-a', 'node-c'), sameNode(b, 'zone-b', 'node-a'), sameNode(c, 'zone-b', 'node-b')] });
  t.deepEqual(await until(['pod-b'], () => pods(d().ns, 'http://10.96.53.250/')), ['pod-b'], 'PreferSameNode: the endpoint hinted for this node');
  await del(EPS, 'topo-1');
  await del(SVC, 'topo');
  await double('PUT', '/api/v1/nodes/node-a', node(null));
});

serial('dual_stack.go "should be able to reach pod on ipv4 and ipv6 ip" through a dual-stack NodePort: the Node\'s IPv6 InternalIP serves the IPv6 endpoints', async (t) => {
  const [a, b] = topo.pods;
  const NODE6 = 'fd00:100::2';
  const node = (addrs) => ({
    metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:244::/64'] },
    status: { addresses: [...addrs.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: 'node-a' }] },
  });
  await double('PUT', '/api/v1/nodes/node-a', node([NODE_V4, NODE6]));
  await put(SVC, service('ds-nodeport', {
    type: 'NodePort', clusterIP: '10.96.53.251', clusterIPs: ['10.96.53.251', 'fd00:96::53:251'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30751, protocol: 'TCP' }],
  }));
  await put(EPS, slice('ds-nodeport-v4', 'ds-nodeport', [{ name: 'http', port: 8080 }], [[a, READY]]));
  await put(EPS, { ...slice('ds-nodeport-v6', 'ds-nodeport', [{ name: 'http', port: 8080 }], [[b.ip6, READY]]), addressType: 'IPv6' });
  t.is(await until('pod-a', () => who(topo.ns.remote, `http://${NODE_V4}:30751/`)), 'pod-a', 'IPv4 node address: the IPv4 endpoint');
  t.is(await until('pod-b', () => who(topo.ns.remote, `http://[${NODE6}]:30751/`)), 'pod-b', `IPv6 node address: the IPv6 endpoint\n${topo.daemonLog.slice(-1500)}`);
  await del(EPS, 'ds-nodeport-v4');
  await del(EPS, 'ds-nodeport-v6');
  await del(SVC, 'ds-nodeport');
  await double('PUT', '/api/v1/nodes/node-a', node([NODE_V4]));
});

// not an upstream test: kube-proxy's nftables mode defaults --nodeport-addresses to "primary", and so
// does wdp with nodePortAddresses unset (this file's config sets none)
serial('nodePortAddresses unset is kube-proxy nftables\' "primary": a NodePort is served on the Node\'s primary IP, not on its other InternalIP, which stays a node address (answered by ARP, on the host port\'s TAP: a host listener answers on it from outside)', async (t) => {
  const [a] = topo.pods;
  const SECOND = '192.168.100.22';
  const node = (addresses, zone) => ({
    metadata: { name: 'node-a', labels: zone ? { 'topology.kubernetes.io/zone': zone } : {} }, spec: { podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [...addresses.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: 'node-a' }] },
  });
  const url = (host) => `http://${host}:30745/`;
  await double('PUT', '/api/v1/nodes/node-a', node([NODE_V4, SECOND], 'zone-np'));
  try {
    // the zone label says the Node update is programmed: its addresses come in the same program
    let spec;
    for (let i = 0; i < 60; i++) {
      spec = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
      if (spec.zone === 'zone-np') break;
      await sleep(250);
    }
    t.is(spec.zone, 'zone-np', `the Node update was programmed\n${topo.daemonLog.slice(-1500)}`);
    t.deepEqual(spec.nodePortAddresses, [NODE_V4], 'the primary IP (the first InternalIP) is the one NodePort address');
    t.deepEqual(spec.nodeAddresses, [NODE_V4, SECOND], 'the other InternalIP is still a node address');
    await put(SVC, service('np-primary', cluster('10.96.53.245', [http({ nodePort: 30745 })], { type: 'NodePort', externalTrafficPolicy: 'Cluster' })));
    await put(EPS, slice('np-primary-1', 'np-primary', [{ name: 'http', port: 8080 }], [[a, READY]]));
    t.is(await until('pod-a', () => who(topo.ns.remote, url(NODE_V4))), 'pod-a', 'served on the primary IP');
    // the other InternalIP is the node's as kube-proxy leaves it: the uplink answers ARP for it
    // and the host port's TAP carries it, so the host (a hostNetwork server) answers on it from outside
    let answered = false;
    for (let i = 0; i < 5 && !answered; i++) answered = await arpAnswered(topo, topo.ns.remote, 'eth0', SECOND);
    t.true(answered, `the uplink answers ARP for the other InternalIP\n${topo.daemonLog.slice(-1500)}`);
    let tap = '';
    for (let i = 0; i < 50 && !tap.includes(`inet ${SECOND}/`); i++) { tap = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host'])).stdout; await sleep(100); }
    t.true(tap.includes(`inet ${SECOND}/`), `the host port's TAP carries it: ${tap}`);
    const rules = (await topo.lab.execAsync(topo.ns.dp, 'ip', ['rule', 'show'])).stdout;
    t.true(rules.includes(`to ${NODE_V4} iif lo`), `the host's own NodePort connections to the primary IP go through wdp: ${rules}`);
    t.false(rules.includes(`to ${SECOND} `), `...to the other InternalIP they stay local (no NodePort there): ${rules}`);
    t.is(await until('node-a', () => who(topo.ns.remote, `http://${SECOND}:${HOST_HTTP}/`)), 'node-a', 'a host listener answers on it from outside through the host port');
    // ...but it is no NodePort address: the node port on it reaches the host, where nothing listens
    for (let i = 0; i < 3; i++) t.is(await who(topo.ns.remote, url(SECOND)), null, 'not served on the other InternalIP');
    t.is(await who(topo.ns.remote, url(NODE_V4)), 'pod-a', 'still on the primary IP');
  } finally {
    await del(EPS, 'np-primary-1').catch(() => undefined);
    await del(SVC, 'np-primary').catch(() => undefined);
    await double('PUT', '/api/v1/nodes/node-a', node([NODE_V4]));
  }
});

serial('externalTrafficPolicy Local whose only local endpoint is a hostNetwork pod: the node port and LB IP reach it from outside with the client address, its healthCheckNodePort 200', async (t) => {
  await put(SVC, service('esipp-host', { ...cluster('10.96.53.252', [http({ targetPort: HOST_HTTP, nodePort: 30752 })], { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32752 }), lbIP: '203.0.113.252' }));
  await put(EPS, slice('esipp-host-1', 'esipp-host', [{ name: 'http', port: HOST_HTTP }], [[NODE_V4, READY]]));
  t.is(await until(200, () => status(topo.ns.remote, `http://${NODE_V4}:32752/healthz`)), 200);
  for (const url of [`http://${NODE_V4}:30752/`, 'http://203.0.113.252/']) {
    t.is(await until('node-a', () => who(topo.ns.remote, url)), 'node-a', url);
    const r = await httpMany(topo, topo.ns.remote, url, 2);
    t.deepEqual(r.map((x) => x.peer), [REMOTE, REMOTE], `${url}: the client address kept`);
  }
  await del(EPS, 'esipp-host-1');
  await del(SVC, 'esipp-host');
});

serial('networking.go "should function for multiple endpoint-Services with same selector": two Services over the same pods, one deleted, the other unchanged', async (t) => {
  const [a, b] = topo.pods;
  for (const [n, ip] of [['same-sel-1', '10.96.53.253'], ['same-sel-2', '10.96.53.254']]) {
    await put(SVC, service(n, cluster(ip, [http()])));
    await put(EPS, slice(`${n}-1`, n, [{ name: 'http', port: 8080 }], [[a, READY], [b, READY]]));
  }
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(d().ns, 'http://10.96.53.253/')), ['pod-a', 'pod-b']);
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(d().ns, 'http://10.96.53.254/')), ['pod-a', 'pod-b']);
  await del(EPS, 'same-sel-1-1');
  await del(SVC, 'same-sel-1');
  t.is(await until(null, () => who(d().ns, 'http://10.96.53.253/')), null, 'the deleted one is down');
  t.deepEqual(await until(['pod-a', 'pod-b'], () => pods(d().ns, 'http://10.96.53.254/'), 4), ['pod-a', 'pod-b'], 'the other still reaches both pods');
  await del(EPS, 'same-sel-2-1');
  await del(SVC, 'same-sel-2');
});
