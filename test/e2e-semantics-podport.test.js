// End to end, kube-proxy's local-traffic detector in wdp's interface-based form: with
// `node.detectLocalMode: PodPort` (no cluster CIDR given) whatever arrives on a port of role pod is
// a pod's, so externalTrafficPolicy Local does not hold for it; the daemon fills the NodeConfig's
// podPorts from its ports. pod-a is on this node, pod-b is said to be on node-b.
import test from 'ava';
import { curl, curlOk, e2eSuite, api, serviceYaml, sliceYaml, NODE_V4 } from './lib/topology.js';

const suite = e2eSuite(test, {
  kind: 'epp',
  node: { detectLocalMode: 'PodPort' },
  pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }],
});
let topo;
test.before(() => { topo = suite.topo; });

suite.serial('detectLocalMode PodPort: a pod reaches the remote endpoint of an eTP=Local NodePort, the outside client is dropped', async (t) => {
  const cfg = (await api(topo, 'GET', '/api/v1/nodeconfig')).json;
  const podPorts = (cfg.spec ?? cfg).podPorts;
  t.is(podPorts?.length, 2, `the daemon lists its two pod ports: ${JSON.stringify(cfg).slice(0, 400)}`);
  const [podA, podB] = topo.pods;
  await suite.apply([
    serviceYaml({ name: 'pp', type: 'NodePort', clusterIP: '10.96.10.10', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 31010, protocol: 'TCP' }], extra: { externalTrafficPolicy: 'Local' } }),
    sliceYaml({ name: 'pp-1', service: 'pp', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [podB.ip], conditions: { ready: true }, nodeName: 'node-b' }] }),
  ]);
  const url = `http://${NODE_V4}:31010/`;
  const fromPod = await curlOk(topo, podA.ns, url);
  t.is(fromPod.code, 0, `from pod-a (a pod port): ${fromPod.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(fromPod.body.trim(), 'pod-b');
  t.is(fromPod.headers['x-peer'].replace('::ffff:', ''), podA.ip, 'not masqueraded');
  const fromClient = await curl(topo, topo.ns.client, url, { timeout: 2 });
  t.is(fromClient.code, 28, `from the client (an uplink): dropped, got ${fromClient.code}: ${fromClient.stderr}`);
});
