// Several workers on one AF_XDP interface: `workers: 2`, every port `type: afxdp, fanout: true`
// on veths with two queues each. Worker 0 attaches the XDP program and binds queue 0 of each
// interface, worker 1 joins its XSKMAP with queue 1; which queue a frame arrives on is the
// sender's transmit hash, so frames reach either worker and are steered to the one owning their
// flow. Many TCP connections from several clients through a ClusterIP (DNAT) and through a
// NodePort with masquerade (DNAT + SNAT) must all complete, with both workers receiving frames and
// creating flows, and every reply finding its flow.
import test from 'ava';
import { e2eSuite, api, waitFor, NODE_V4 } from './lib/topology.js';
import { CLIENTS, REMOTES, delta, fanoutServices, manyConnections } from './lib/fanout-checks.js';

const suite = e2eSuite(test, {
  kind: 'ox',
  queues: 2,
  pods: [{ name: 'pod-a', attach: 'afxdp' }, { name: 'pod-b', attach: 'afxdp' }, { name: 'pod-c', attach: 'afxdp' }],
  configure(config) {
    config.workers = 2;
    for (const p of config.ports) { p.type = 'afxdp'; p.fanout = true; }
  },
});
const serial = suite.serial;

test.before(async () => {
  await suite.ready;
  const topo = suite.topo;
  if (!topo) return;
  await fanoutServices(suite, { name: 'fx', clusterIP: '10.96.8.10', npClusterIP: '10.96.8.11', nodePort: 30710 });
});

serial('every port is AF_XDP in both workers, worker 0 on queue 0 and worker 1 on queue 1 of each interface', async (t) => {
  const items = (await api(suite.topo, 'GET', '/api/v1/ports')).json.items;
  t.is(items.length, 5);
  t.true(items.every((p) => p.kind === 'native-afxdp'), JSON.stringify(items.map((p) => p.kind)));
  const opened = ['client', 'remote', 'pod-a', 'pod-b', 'pod-c'].flatMap((name) => [[0, 0], [1, 1]].map(([w, q]) =>
    [new RegExp(`"worker":${w},"port":"${name}","mode":"copy","queues":\\[${q}\\],"msg":"AF_XDP port open"`), `${name} queue ${q}`]));
  // (the start's lines can reach the pipe after its API answers: every "AF_XDP port open" waited
  // for, or as many as came in 20 s, each asserted below)
  const log = await waitFor('every "AF_XDP port open" logged', () => opened.every(([re]) => re.test(suite.topo.daemonLog)) && suite.topo.daemonLog).catch(() => suite.topo.daemonLog);
  for (const [re, what] of opened) t.regex(log, re, what);
});

serial('ClusterIP (DNAT): many connections from several clients all complete on both workers, every reply finds its flow', async (t) => {
  const topo = suite.topo;
  const { before, after } = await manyConnections(t, topo, topo.ns.client, 'http://10.96.8.10/', CLIENTS, 20);
  const rxPerWorker = after.workers.map((w, i) => (w.global.rx_packets ?? 0) - (before.workers[i].global.rx_packets ?? 0));
  t.true(rxPerWorker.every((n) => n > 0), `frames received per worker ${rxPerWorker}`);
  t.is(after.global.steer_handed_off, after.global.steer_received);
});

serial('NodePort with masquerade (DNAT + SNAT): many connections all complete, replies reach the worker owning the SNAT port', async (t) => {
  const topo = suite.topo;
  const { before, after } = await manyConnections(t, topo, topo.ns.remote, `http://${NODE_V4}:30710/`, REMOTES, 25);
  t.true(delta(after, before, 'steer_handed_off') > 0);
});
