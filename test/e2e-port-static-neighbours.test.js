// A port's configured pods with a MAC are static neighbours for as long as the port exists
// (src/daemon/daemon.ts staticPods): a port added while the daemon runs (POST /api/v1/ports, what
// a CNI ADD does) programs them, and a config-file port reopened on its re-created interface
// (PortManager.checkLinks) keeps them. The static pods here have addresses nothing answers for,
// so a neighbour of theirs in the NodeConfig can only be the static one (none is ever learned).
import test from 'ava';
import { e2eSuite, api, waitFor } from './lib/topology.js';

const SILENT_CONFIG = { ip: '10.244.1.250', mac: '02:00:5e:00:01:fa' };
const SILENT_RUNTIME = { ip: '10.244.3.250', mac: '02:00:5e:00:03:fa' };

const suite = e2eSuite(test, {
  kind: 'sn',
  pods: [{ name: 'pod-a', attach: 'afpacket' }],
  configure(config) { const p = config.ports.find((q) => q.name === 'pod-a'); p.pods = [...(p.pods ?? []), SILENT_CONFIG]; },
});
const serial = suite.serial;

/** The NodeConfig's neighbour of `ip`, once it is there (undefined after `ms`). */
async function neighbourOf(ip, ms = 8000) {
  try {
    return await waitFor(`neighbour ${ip}`, async () => (await api(suite.topo, 'GET', '/api/v1/nodeconfig')).json.spec.neighbours.find((n) => n.address === ip), ms);
  } catch { return undefined; }
}

serial('a port added at runtime programs its static pods as neighbours', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const ns = topo.lab.namespace('snr');
  const r = await api(topo, 'POST', '/api/v1/ports', { name: 'pod-rt', type: 'tap', ifname: 'tapsn', netns: ns, role: 'pod', gateways: ['10.244.0.1'], pods: [SILENT_RUNTIME] });
  t.is(r.status, 201, r.text);
  const n = await neighbourOf(SILENT_RUNTIME.ip);
  t.like(n, { port: r.json.index, mac: SILENT_RUNTIME.mac });
  t.is((await api(topo, 'DELETE', '/api/v1/ports/pod-rt')).status, 200);
  await waitFor('the static neighbour gone with its port', async () => !(await api(topo, 'GET', '/api/v1/nodeconfig')).json.spec.neighbours.some((x) => x.address === SILENT_RUNTIME.ip), 10000);
});

serial('a config-file port reopened on its re-created interface keeps its static pods as neighbours', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = topo.pods[0];
  const before = await neighbourOf(SILENT_CONFIG.ip);
  t.like(before, { mac: SILENT_CONFIG.mac });
  topo.lab.exec(pod.ns, 'ip', ['link', 'del', 'eth0']);
  await waitFor('pod-a absent', async () => (await api(topo, 'GET', '/api/v1/ports/pod-a')).json?.state === 'absent', 20000);
  topo.lab.veth(pod.ns, 'eth0', topo.ns.dp, 'v0');
  await waitFor('pod-a reopened', async () => (await api(topo, 'GET', '/api/v1/ports/pod-a')).json?.state === 'up', 20000);
  const after = await neighbourOf(SILENT_CONFIG.ip);
  t.like(after, { port: before.port, mac: SILENT_CONFIG.mac }, 'the static neighbour is there after the reopen');
});
