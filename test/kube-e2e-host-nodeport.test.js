// kubernetes.nodePortAddresses CIDRs select NodePort addresses from the host's interface
// addresses, as kube-proxy's GetNodeIPs does (docs/core.md Known differences (12)): `wdp start`
// in its namespace (the "host") watching the API-server double; the Node lists one address only.
// An address added, inside the CIDR, to an interface of the daemon's namespace that is not a wdp
// port (a veth, both ends in that namespace) is served as a NodePort from outside once added, and
// no longer once removed; one outside the CIDR never is. The host port's TAP (a wdp port) carries
// the node addresses, the one selected from the veth among them while it is there: it is not read
// back as a host address (else the address would stay selected after it left its interface).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { startDoubleInNs, seedWebAndStart } from './lib/apiserver-double-ns.js';
import { rootGate, buildTopology, destroyTopology, curl, sleep, api } from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

const VIP = '10.96.51.10';
const INSIDE = '192.168.100.50';   // in nodePortAddresses' 192.168.100.0/24, not in the Node
const OUTSIDE = '198.51.100.50';   // outside it
const DEV = 'hst0';
const HC_PORT = 32002;
let topo;

/** `ip ...` in the daemon's namespace; throws when it fails. */
function ipDp(...args) {
  const r = topo.lab.exec(topo.ns.dp, 'ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

const service = {
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    // externalTrafficPolicy Local: its healthCheckNodePort listens where kube-proxy's would (the
    // NodePort addresses of a restricted family)
    type: 'LoadBalancer', clusterIP: VIP, clusterIPs: [VIP], ipFamilies: ['IPv4'], internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Local', healthCheckNodePort: HC_PORT,
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }], sessionAffinity: 'None',
  },
  status: { loadBalancer: {} },
};

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }], kind: 'hn' });
  try {
    // an interface of the daemon's namespace that is not a wdp port (the host's own, as a
    // second NIC on a node; a veth: this kernel may have no dummy driver), without addresses yet
    ipDp('link', 'add', DEV, 'type', 'veth', 'peer', 'name', `${DEV}p`);
    ipDp('link', 'set', DEV, 'up');
    ipDp('link', 'set', `${DEV}p`, 'up');
    const { kubeconfig, double } = await startDoubleInNs(topo);
    topo.config.node = { name: 'node-a' };
    topo.config.kubernetes = {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: '127.0.0.1:10249', nodeWaitSeconds: 20,
      nodePortAddresses: ['192.168.100.0/24'],
    };
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
      service,
    });
  } catch (e) {
    await destroyTopology(topo);
    topo = undefined;
    throw e;
  }
});
test.after.always(async () => { await destroyTopology(topo); });

const nodeConfig = async () => (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;
/** The pod that answered one GET from the remote client, or null (refused, timed out). */
const healthCheck = async (addr) => {
  const r = await curl(topo, topo.ns.remote, `http://${addr}:${HC_PORT}/`, { timeout: 2 });
  return r.code === 0 ? JSON.parse(r.body).localEndpoints : null;
};
const who = async (addr) => {
  const r = await curl(topo, topo.ns.remote, `http://${addr}:30080/`, { timeout: 2 });
  return r.code === 0 && r.body.trim() ? r.body.trim() : null;
};
/** Polls (bounded: 60 x ~0.25 s plus the requests) until `fn()` is `want`; returns the last value. */
async function until(want, fn) {
  let last;
  for (let i = 0; i < 60; i++) {
    last = await fn();
    if (last === want) return last;
    await sleep(250);
  }
  return last;
}

serial('a host address inside the nodePortAddresses CIDR (not in the Node) is a NodePort address, with the health check, while the host has it; one outside never is', async (t) => {
  let pod = await until('pod-a', () => who('192.168.100.2'));
  t.is(pod, 'pod-a', `the Node's address serves the NodePort\n${topo.daemonLog.slice(-2000)}`);
  t.is(await who(INSIDE), null, 'not a host address yet: no NodePort');
  t.is(await until(1, () => healthCheck('192.168.100.2')), 1, 'the health check on the Node\'s address');
  t.is(await healthCheck(INSIDE), null);
  t.deepEqual((await nodeConfig()).nodePortAddresses, ['192.168.100.2']);

  ipDp('addr', 'add', `${INSIDE}/32`, 'dev', DEV);
  ipDp('addr', 'add', `${OUTSIDE}/32`, 'dev', DEV);
  const has = async () => ((await nodeConfig()).nodePortAddresses ?? []).includes(INSIDE);
  t.true(await until(true, has), `the host's new address in the CIDR is a NodePort address\n${topo.daemonLog.slice(-2000)}`);
  const spec = await nodeConfig();
  t.deepEqual(spec.nodePortAddresses, ['192.168.100.2', INSIDE], 'the address outside the CIDR is not');
  t.true(spec.nodeAddresses.includes(INSIDE), 'a NodePort address is a node address (answered by ARP on the uplinks)');
  t.false(spec.nodeAddresses.includes(OUTSIDE));
  pod = await until('pod-a', () => who(INSIDE));
  t.is(pod, 'pod-a', `the NodePort is served on the host's new address from outside\n${topo.daemonLog.slice(-2000)}`);
  t.is(await who(OUTSIDE), null, 'no NodePort on the host address outside the CIDR');
  t.is(await until(1, () => healthCheck(INSIDE)), 1, `the healthCheckNodePort listens on the host's new address too, as kube-proxy's\n${topo.daemonLog.slice(-2000)}`);
  t.is(await healthCheck(OUTSIDE), null);

  ipDp('addr', 'del', `${INSIDE}/32`, 'dev', DEV);
  t.false(await until(false, has), `the removed address is no NodePort address (the host port's TAP, which carried it, is not read back)\n${topo.daemonLog.slice(-2000)}`);
  t.deepEqual((await nodeConfig()).nodePortAddresses, ['192.168.100.2']);
  t.false((await nodeConfig()).nodeAddresses.includes(INSIDE), 'nor a node address');
  t.is(await until(null, () => who(INSIDE)), null, 'the NodePort stops on the removed address');
  t.is(await who('192.168.100.2'), 'pod-a', 'and stays on the Node\'s');
  t.is(await who(OUTSIDE), null);
  t.is(await until(null, () => healthCheck(INSIDE)), null, 'nor its health check');
  t.is(await healthCheck('192.168.100.2'), 1);
});
