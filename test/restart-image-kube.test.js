// Table images in a cluster with node.addresses configured (`wdp start` in network namespaces,
// watching the API-server double): the start does not wait for the API, so the Node's pod CIDRs
// and zone are unknown when the workers start: until the watcher reads the Node the last seen facts
// (the saved NodeConfig, which the image's tables were compiled with) stand in, the image is keyed
// with them as the stop keyed it and used, and the catch-up is byte-identical; a Node changed while wdp was down is
// reprogrammed once it is read — in the control plane's first program when the read started with
// the daemon has arrived by then.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDoubleInNs, seedWebAndStart } from './lib/apiserver-double-ns.js';
import { rootGate, buildTopology, startDaemon, destroyTopology, curlOk, api, WDP, waitFor } from './lib/topology.js';

const { ok: root, serial } = rootGate(test, { tools: ['curl'] });

const VIP = '10.96.51.10';
let topo;
let double;


const nodeObject = (podCIDR, zone) => ({
  metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': zone } }, spec: { podCIDRs: [podCIDR] },
  status: { addresses: [{ type: 'InternalIP', address: '192.168.100.2' }, { type: 'Hostname', address: 'node-a' }] },
});
const status = () => {
  const r = spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};
const stop = async () => {
  const exited = new Promise((res) => topo.daemon.once('exit', (code, sig) => res(code ?? sig)));
  topo.daemon.kill('SIGTERM');
  return exited;
};
const nodeSpec = async () => (await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec;

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }], kind: 'k' });
  try {
    let kubeconfig;
    ({ kubeconfig, double } = await startDoubleInNs(topo));
    // node.addresses configured: the start does not wait for the Node
    topo.config.node = { name: 'node-a', addresses: ['192.168.100.2'] };
    topo.config.kubernetes = {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: 'off', metricsBindAddress: 'off',
      clusterCIDRs: ['10.244.0.0/16'], detectLocalMode: 'NodeCIDR',
    };
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await seedWebAndStart(topo, double, {
      node: nodeObject('10.244.1.0/24', 'zone-a'),
      service: {
        metadata: { name: 'web', namespace: 'default' },
        spec: { type: 'ClusterIP', clusterIP: VIP, clusterIPs: [VIP], ipFamilies: ['IPv4'], internalTrafficPolicy: 'Cluster', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], sessionAffinity: 'None' },
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

serial('with node.addresses configured a restart forwards from its table image; a Node changed while wdp was down is reprogrammed once read', async (t) => {
  await waitFor('the Node\'s pod CIDRs and zone in the node config', async () => { const s = await nodeSpec(); return s.podCIDRs?.[0] === '10.244.1.0/24' && s.zone === 'zone-a'; });
  t.is((await curlOk(topo, topo.ns.client, `http://${VIP}/`, 50)).code, 0);

  // a restart with the Node unchanged: the image is used and the catch-up is byte-identical
  t.is(await stop(), 0);
  t.regex(topo.daemonLog, /table images written/);
  await startDaemon(topo);
  let st = status();
  t.like(st.restore.images[0], { worker: 0, used: true }, JSON.stringify(st.restore.images));
  await waitFor('the catch-up reported', () => status().restore.images[0].catchUp);
  t.like(status().restore.images[0].catchUp, { equal: true, remapped: 0, unmatched: 0 });
  t.is((await curlOk(topo, topo.ns.client, `http://${VIP}/`, 50)).code, 0);

  // the Node's pod CIDR and zone change while wdp is down
  t.is(await stop(), 0);
  t.true(existsSync(join(topo.config.stateDir, 'tables.0.img')));
  await double('PUT', '/api/v1/nodes/node-a', nodeObject('10.244.9.0/24', 'zone-b'));
  // the control plane held back (WDP_TEST_RESTORE_HOLD_FILE) until the daemon has the answer to
  // the Node read started with it (its log says so): it has arrived by the first program, which
  // carries it already (before the API listens, before the watcher)
  const hold = join(topo.config.stateDir, '..', `restore-hold-${process.pid}`);
  writeFileSync(hold, '');
  process.env.WDP_TEST_RESTORE_HOLD_FILE = hold;
  const started = startDaemon(topo);
  delete process.env.WDP_TEST_RESTORE_HOLD_FILE;
  try {
    await waitFor('the Node read at start answered', () => /the Node read at start/.test(topo.daemonLog), 30000);
  } finally { rmSync(hold, { force: true }); }
  await started;
  // the API answers before the start's last log line is written (and read through its pipe)
  await waitFor('the start logged to its end', () => /control API listening/.test(topo.daemonLog));
  st = status();
  t.like(st.restore.images[0], { worker: 0, used: true }, JSON.stringify(st.restore.images));
  const log = topo.daemonLog;
  const differs = log.search(/the Node differs from the one last seen/);
  t.true(differs >= 0 && differs < log.search(/control API listening/), `reprogrammed in the control plane's first program:\n${log}`);
  t.like(await nodeSpec(), { podCIDRs: ['10.244.9.0/24'], zone: 'zone-b' });
  t.is((await curlOk(topo, topo.ns.client, `http://${VIP}/`, 50)).code, 0);
});
