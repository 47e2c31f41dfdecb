// A restart while the API server is away (`wdp start` in network namespaces, watching the API-server
// double; node addresses from the Node, not configured). kube-proxy's rules outlive a restart of
// kube-proxy, so a node's service traffic does not depend on the API server answering at that
// moment: wdp with a saved state does not wait for the Node either — one read, then the node
// addresses last seen (the saved NodeConfig) stand in until the watcher reads the Node: the
// NodePort on the Node's address is served, and its ARP answered, at once. The per-worker table
// image written at the stop is used (forwarding resumes before the store's restore compiles): the
// start keys it with the node facts last seen, as the stop did; a changed config still refuses it.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { startDoubleInNs, seedWebAndStart } from './lib/apiserver-double-ns.js';
import { stopWithApiAway } from './lib/kube-e2e-kit.js';
import { rootGate, buildTopology, startDaemon, destroyTopology, curlOk, api, arpAnswered, waitFor, logged } from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

const VIP = '10.96.52.10';
const NODE_IP = '192.168.100.2';
const SECOND = '192.168.100.22'; // a second InternalIP: a node address, no NodePort address (the "primary" default)
let topo;

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }], kind: 'd' });
  try {
    const { kubeconfig, double } = await startDoubleInNs(topo);
    topo.config.node = { name: 'node-a' }; // addresses: the Node's
    topo.config.kubernetes = {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: 'off', metricsBindAddress: 'off', nodeWaitSeconds: 60,
    };
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await seedWebAndStart(topo, double, {
      node: {
        metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
        status: { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'InternalIP', address: SECOND }, { type: 'Hostname', address: 'node-a' }] },
      },
      service: {
        metadata: { name: 'web', namespace: 'default' },
        spec: { type: 'NodePort', clusterIP: VIP, clusterIPs: [VIP], ipFamilies: ['IPv4'], internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }], sessionAffinity: 'None' },
        status: { loadBalancer: {} },
      },
    });
  } catch (e) {
    await destroyTopology(topo);
    topo = undefined;
    throw e;
  }
});
test.after.always(async () => { await destroyTopology(topo); });

const restore = async () => (await api(topo, 'GET', '/api/v1/generation')).json.restore;
const stop = async () => {
  const exited = new Promise((res) => topo.daemon.once('exit', (code, sig) => res(code ?? sig)));
  topo.daemon.kill('SIGTERM');
  return exited;
};
/** The image of worker 0 was used at this start, and the control plane's catch-up over it was
 * byte-identical (the image forwarded with the tables the restore compiled). */
const imageUsedAndEqual = async (t, what) => {
  const r = await restore();
  t.like(r.images?.[0], { worker: 0, used: true }, `${what}: ${JSON.stringify(r.images)}`);
  await waitFor('the catch-up reported', async () => (await restore()).images?.[0]?.catchUp);
  t.like((await restore()).images[0].catchUp, { equal: true, remapped: 0, unmatched: 0 }, what);
};

serial('a restart with the API server away serves the NodePort on the Node\'s address at once, from the node config last seen (its node addresses answered, NodePorts on its NodePort addresses)', async (t) => {
  t.is((await curlOk(topo, topo.ns.remote, `http://${NODE_IP}:30080/`, 50)).code, 0, 'the NodePort before the restart');
  t.is(await stopWithApiAway(topo), 0); // the API server is away from the next start
  // the remote forgets the node's MAC: the uplink must answer ARP for the node address again
  topo.lab.exec(topo.ns.remote, 'ip', ['neigh', 'flush', 'all']);
  await startDaemon(topo);
  // one read of the Node, then the saved node addresses: not the wait of a start without a saved
  // state (nodeWaitSeconds = 60 s, which startDaemon's 60 s would not outlast either)
  await logged(topo, /starting with the node addresses last seen/);
  t.notRegex(topo.daemonLog, /waiting for the Node object/, 'the start did not wait for the Node');
  const spec = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
  t.deepEqual(spec.nodeAddresses, [NODE_IP, SECOND], 'every Node address as last seen');
  t.deepEqual(spec.nodePortAddresses, [NODE_IP], 'NodePorts on the primary IP as last seen');
  let answered = false;
  for (let i = 0; i < 5 && !answered; i++) answered = await arpAnswered(topo, topo.ns.remote, 'eth0', SECOND);
  t.true(answered, `the uplink answers ARP for the second InternalIP as last seen\n${topo.daemonLog.slice(-1500)}`);
  const r = await curlOk(topo, topo.ns.remote, `http://${NODE_IP}:30080/`, 50);
  t.is(r.code, 0, `the NodePort after the restart: ${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is((await curlOk(topo, topo.ns.client, `http://${VIP}/`, 50)).code, 0, 'and the ClusterIP');
  await imageUsedAndEqual(t, 'the image written while the API answered');
});

serial('a second restart with the API server still away forwards from the image the first one wrote', async (t) => {
  t.is(await stop(), 0);
  t.regex(topo.daemonLog, /table images written/);
  await startDaemon(topo);
  await logged(topo, /starting with the node addresses last seen/);
  await imageUsedAndEqual(t, 'the image written by a daemon that never read the Node');
  t.is((await curlOk(topo, topo.ns.remote, `http://${NODE_IP}:30080/`, 50)).code, 0, 'the NodePort');
});

serial('with the API server away, an image written for another node config is refused (the store restores)', async (t) => {
  t.is(await stop(), 0);
  t.regex(topo.daemonLog, /table images written/);
  // the config changes while wdp is down: the node config compiled at start is another one
  topo.config.node.masqueradeAll = true;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  try {
    await startDaemon(topo);
    const r = await restore();
    t.like(r.images?.[0], { worker: 0, used: false }, JSON.stringify(r.images));
    t.regex(r.images[0].problem, /node configuration changed/);
    t.true((await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec.masqueradeAll);
    t.is((await curlOk(topo, topo.ns.remote, `http://${NODE_IP}:30080/`, 50)).code, 0, 'the NodePort, from the store\'s restore');
  } finally {
    delete topo.config.node.masqueradeAll;
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
  }
});

serial('with the API server away, a nodePortAddresses changed meanwhile selects among the node addresses last seen (the image is refused)', async (t) => {
  t.is(await stop(), 0);
  t.regex(topo.daemonLog, /table images written/);
  // the operator widens the NodePort addresses while wdp is down (kube-proxy's
  // --nodeport-addresses): the second InternalIP, a node address last seen, is one now, though the
  // Node cannot be read to say so
  topo.config.kubernetes.nodePortAddresses = ['0.0.0.0/0'];
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  try {
    await startDaemon(topo);
    await logged(topo, /starting with the node addresses last seen/);
    const spec = (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
    t.deepEqual(spec.nodeAddresses, [NODE_IP, SECOND], 'every Node address as last seen');
    t.deepEqual(spec.nodePortAddresses, [NODE_IP, SECOND], 'the NodePort addresses selected as configured now');
    const r = await restore();
    t.like(r.images?.[0], { worker: 0, used: false }, JSON.stringify(r.images));
    t.is((await curlOk(topo, topo.ns.remote, `http://${SECOND}:30080/`, 50)).code, 0, 'the NodePort on the second address');
  } finally {
    delete topo.config.kubernetes.nodePortAddresses;
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
  }
});
