// Three workers on AF_XDP interfaces (`workers: 3`, every port `type: afxdp, fanout: true`) on
// veths with three queues each: worker w binds queue w of every interface (worker 0 attaches the
// XDP program), and which queue a frame arrives on is the sender's transmit hash — so a frame may
// land on any worker, often on neither its client's nor its address's (AF_XDP queues are placed by
// the sender, not by owner: docs/performance.md "What limits it"). Many connections through a
// ClusterIP (DNAT) and a masqueraded NodePort must complete with every worker receiving frames;
// every hand-over is received (steer_handed_off + steer_handed_on = steer_received); and a pod's
// IPv6 upload to a LoadBalancer IP goes on after its Service is deleted. Its connection's frames
// all take the transmit queue the pod's kernel hashed the socket to: on the worker of neither the
// pod nor the address (a second look: steer_handed_on) in about one run of three — the unit tests
// (steer-deleted-address, placed at random) cover that case every time. Last, more external IPs
// change than a sweep of the retired filter waits for: every worker sweeps (the shared block
// reaches the workers' cores) and clears the bits of addresses no flow needs.
import test from 'ava';
import { e2eSuite, api, serviceYaml, sliceYaml, waitFor, NODE_V4 } from './lib/topology.js';
import { STEER_RETIRED_SWEEP_EVERY } from '../dist/src/core/retired-fronts.js';
import { CLIENTS, REMOTES, delta, fanoutServices, manyConnections, uploadThroughDeletion } from './lib/fanout-checks.js';

const WORKERS = 3;
const suite = e2eSuite(test, {
  kind: 'oxw',
  queues: WORKERS,
  pods: [{ name: 'pod-a', attach: 'afxdp' }, { name: 'pod-b', attach: 'afxdp' }, { name: 'pod-c', attach: 'afxdp' }],
  node: { clusterCIDRs: ['10.244.0.0/16'], serviceCIDRs: ['10.96.0.0/16', 'fd00:96::/64'] },
  configure(config) {
    config.workers = WORKERS;
    for (const p of config.ports) { p.type = 'afxdp'; p.fanout = true; }
  },
});
const serial = suite.serial;

test.before(async () => {
  await suite.ready;
  if (!suite.topo) return;
  await fanoutServices(suite, { name: 'fx3', clusterIP: '10.96.8.20', npClusterIP: '10.96.8.21', nodePort: 30720 });
});

const handOversReceived = (t, g) => t.is((g.steer_handed_off ?? 0) + (g.steer_handed_on ?? 0), g.steer_received ?? 0, 'every hand-over received');

serial('every port is AF_XDP in the three workers, worker w on queue w of each interface', async (t) => {
  const items = (await api(suite.topo, 'GET', '/api/v1/ports')).json.items;
  t.is(items.length, 5);
  t.true(items.every((p) => p.kind === 'native-afxdp'), JSON.stringify(items.map((p) => p.kind)));
  for (const name of ['client', 'remote', 'pod-a', 'pod-b', 'pod-c']) {
    for (let w = 0; w < WORKERS; w++) t.regex(suite.topo.daemonLog, new RegExp(`"worker":${w},"port":"${name}","mode":"copy","queues":\\[${w}\\],"msg":"AF_XDP port open"`), `${name} queue ${w}`);
  }
});

serial('ClusterIP (DNAT): many connections from several clients all complete, every worker receives frames, every reply finds its flow', async (t) => {
  const topo = suite.topo;
  const { before, after } = await manyConnections(t, topo, topo.ns.client, 'http://10.96.8.20/', CLIENTS, 20, WORKERS);
  const rxPerWorker = after.workers.map((w, i) => (w.global.rx_packets ?? 0) - (before.workers[i].global.rx_packets ?? 0));
  t.log(`frames received per worker ${rxPerWorker}`);
  t.true(rxPerWorker.every((n) => n > 0), `frames received per worker ${rxPerWorker}`);
  handOversReceived(t, after.global);
});

serial('NodePort with masquerade (DNAT + SNAT): many connections all complete, replies reach the worker owning the SNAT port', async (t) => {
  const topo = suite.topo;
  const { before, after } = await manyConnections(t, topo, topo.ns.remote, `http://${NODE_V4}:30720/`, REMOTES, 25, WORKERS);
  t.true(delta(after, before, 'steer_handed_off') > 0);
  handOversReceived(t, after.global);
});

serial('a pod\'s long IPv6 upload to a LoadBalancer IP goes on after its Service is deleted, its frames landing on any worker', async (t) => {
  const topo = suite.topo;
  const pod = topo.pods[0];
  const name = 'lb6-gone-x3', dst = 'fd00:9::14';
  const endpoints = topo.pods.slice(1, 3).map((p) => ({ addresses: [p.ip6], conditions: { ready: true }, nodeName: 'node-a' }));
  await suite.apply([serviceYaml({ name, type: 'LoadBalancer', clusterIP: 'fd00:96::9:14', lbIngress: [dst], extra: { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30722 }] }),
    sliceYaml({ name: `${name}-1`, service: name, addressType: 'IPv6', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints })]);
  await uploadThroughDeletion(t, topo, pod.ns, `http://[${dst}]/`, name);
  const g = (await api(topo, 'GET', '/api/v1/counters')).json;
  t.log(`handed off ${g.global.steer_handed_off}, handed on ${g.global.steer_handed_on}, received ${g.global.steer_received}`);
  handOversReceived(t, g.global);
});

serial('more removed addresses than a sweep waits for: every worker sweeps the retired filter', async (t) => {
  const topo = suite.topo;
  const n = STEER_RETIRED_SWEEP_EVERY + 100;
  const svcs = (third) => Array.from({ length: n }, (_, i) => serviceYaml({ name: `churn-${i}`, clusterIP: `10.96.${40 + (i >> 8)}.${i & 255}`,
    extra: { externalIPs: [`198.${third}.${i >> 8}.${i & 255}`] }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }));
  const swept = (k, cleared) => waitFor(`every worker swept ${k} times`, async () => {
    const r = (await api(topo, 'GET', '/api/v1/counters')).json;
    return r.workers.every((w) => (w.global.steer_retired_filter_sweeps ?? 0) >= k && (!cleared || w.global.steer_retired_filter_cleared > 0)) && r;
  }, 30000).catch(() => undefined);
  await suite.apply(svcs(18));
  // every external IP changed: n addresses retired in one apply, a sweep begun before its
  // additions to the filter (kept); the next such apply's sweep clears them (no flow to them)
  await suite.apply(svcs(19));
  t.truthy(await swept(1, false), 'every worker swept');
  await suite.apply(svcs(20));
  const c = await swept(2, true);
  const got = c ?? (await api(topo, 'GET', '/api/v1/counters')).json;
  t.log(got.workers.map((w) => ({ filtered: w.global.steer_retired_filtered, bits: w.global.steer_retired_filter_bits, sweeps: w.global.steer_retired_filter_sweeps, cleared: w.global.steer_retired_filter_cleared })));
  t.truthy(c, 'every worker swept again, clearing the bits of the addresses no flow needs');
  t.true(got.workers.every((w) => w.global.steer_retired_filtered > 0));
});
