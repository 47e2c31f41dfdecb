// The daemon config's node and conntrack settings. End to end, `node.masqueradeAll` (kube-proxy's
// --masquerade-all): the daemon's own NodeConfig carries it, and a pod's connection to a ClusterIP reaches the endpoint
// from the node's address, not the pod's. pod-b is the endpoint, pod-a the client.
import test from 'ava';
import { curlOk, e2eSuite, api, serviceYaml, sliceYaml } from './lib/topology.js';
import { coreTimeouts, parseConfig } from '../dist/src/daemon/config.js';

const suite = e2eSuite(test, {
  kind: 'mqa',
  node: { masqueradeAll: true },
  pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'tap' }],
});
let topo;
test.before(() => { topo = suite.topo; });

test('node.masqueradeAll: a boolean, false when not given; anything else names the field', (t) => {
  const base = { node: { name: 'n1' }, ports: [{ name: 'p', type: 'tap', ifname: 'wdpx0', role: 'pod' }] };
  t.false(parseConfig(base).node.masqueradeAll);
  t.true(parseConfig({ ...base, node: { name: 'n1', masqueradeAll: true } }).node.masqueradeAll);
  t.throws(() => parseConfig({ ...base, node: { name: 'n1', masqueradeAll: 'yes' } }), { message: /node\.masqueradeAll/ });
});

suite.serial('node.masqueradeAll: the NodeConfig says so and a pod reaches a ClusterIP endpoint from the node\'s address', async (t) => {
  const cfg = (await api(topo, 'GET', '/api/v1/nodeconfig')).json;
  t.true((cfg.spec ?? cfg).masqueradeAll, `the daemon's NodeConfig: ${JSON.stringify(cfg).slice(0, 400)}`);
  const [podA, podB] = topo.pods;
  await suite.apply([
    serviceYaml({ name: 'mq', clusterIP: '10.96.10.20', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'mq-1', service: 'mq', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [podB.ip], conditions: { ready: true } }] }),
  ]);
  const r = await curlOk(topo, podA.ns, 'http://10.96.10.20/');
  t.is(r.code, 0, `from pod-a: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(r.body.trim(), 'pod-b');
  t.not(r.headers['x-peer'].replace('::ffff:', ''), podA.ip, 'masqueraded: the endpoint does not see the pod\'s address');
});

test('conntrack timeouts over what the core\'s 32-bit ms clock holds are a config error naming the field, not a worker that fails to start', (t) => {
  const base = { node: { name: 'n1' }, ports: [{ name: 'p', type: 'tap', ifname: 'wdpx0', role: 'pod' }] };
  t.is(parseConfig({ ...base, conntrack: { tcpEstablishedSeconds: 4_294_967 } }).conntrack.tcpEstablishedSeconds, 4_294_967);
  for (const k of ['tcpEstablishedSeconds', 'udpSeconds', 'tcpSynSeconds', 'tcpUnconfirmedSeconds', 'tcpHalfClosedSeconds', 'sctpEstablishedSeconds']) {
    t.throws(() => parseConfig({ ...base, conntrack: { [k]: 50 * 86400 } }), { message: new RegExp(`conntrack\\.${k}`) });
  }
});

test('the conntrack section\'s timeouts reach the core as its ms options; unset ones keep the core\'s defaults', (t) => {
  const base = { node: { name: 'n1' }, ports: [{ name: 'p', type: 'tap', ifname: 'wdpx0', role: 'pod' }] };
  t.deepEqual(coreTimeouts(parseConfig(base).conntrack), {});
  const c = parseConfig({ ...base, conntrack: { tcpEstablishedSeconds: 7200, udpSeconds: 40, tcpSynSeconds: 20, tcpUnconfirmedSeconds: 25, tcpHalfClosedSeconds: 600, sctpEstablishedSeconds: 300, fragmentMs: 500 } });
  t.deepEqual(coreTimeouts(c.conntrack), { tcpEstablishedMs: 7_200_000, udpMs: 40_000, tcpSynMs: 20_000, tcpUnconfirmedMs: 25_000, tcpHalfClosedMs: 600_000, sctpMs: 300_000, fragmentMs: 500 });
});
