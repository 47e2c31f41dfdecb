// A crash (SIGKILL) of `wdp start` with a TAP pod: the pod keeps its interface (a persistent TAP,
// re-attached at start), and the long-lived connections older than the last periodic checkpoint
// go on on their pods — to the TAP pod through a ClusterIP (TCP), through a masqueraded NodePort
// from outside (TCP, DNAT + SNAT), and UDP flows — with an endpoint added while the daemon is
// dead (a fresh pick would move about half of them).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, spawnNode, waitFor, WDP, NODE_V4 } from './lib/topology.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { run } from '../dist/src/netns.js';
import { ECHO_PORT, ECHO_CLIENT, report, startEchoServers } from './lib/echo-traffic.js';

const { serial } = rootGate(test);
const CONNS = 6;

let topo;
const clients = [];
test.after.always(async () => {
  for (const c of clients) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  await destroyTopology(topo);
});

const slice = (pods) => sliceYaml({
  name: 'crash-1', service: 'crash', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }],
  endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })),
});
const status = () => JSON.parse(spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 }).stdout);

serial('SIGKILL with a TAP pod: its interface stays, and TCP (direct, masqueraded) and UDP flows go on on their pods', async (t) => {
  topo = buildTopology({ pods: [{ name: 'pod-t', attach: 'tap' }, { name: 'pod-p', attach: 'afpacket' }] });
  topo.config.conntrack.checkpointSeconds = 1;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await startDaemon(topo);
  await startPods(topo);
  await startEchoServers(topo);
  const [tapPod, otherPod] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'crash', type: 'NodePort', clusterIP: '10.96.9.10', ports: [
      { name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, nodePort: 30900, protocol: 'TCP' },
      { name: 'dns', port: 5353, targetPort: 5353, nodePort: 30953, protocol: 'UDP' }] }),
    slice([tapPod]),
  ]);
  t.is(r.status, 200, r.text);
  const ifindex = () => run('ip', ['-n', tapPod.ns, '-o', 'link', 'show', tapPod.ifname]).stdout.split(':')[0];
  const tapBefore = ifindex();
  t.truthy(tapBefore);

  const kinds = {
    direct: spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.9.10', String(ECHO_PORT), String(CONNS)]),
    masq: spawnNode(topo, topo.ns.remote, ECHO_CLIENT, [NODE_V4, '30900', String(CONNS)]),
    udp: spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.9.10', '5353', String(CONNS), 'udp']),
  };
  clients.push(...Object.values(kinds));
  const before = {};
  for (const [k, c] of Object.entries(kinds)) {
    before[k] = await waitFor(`${k} flowing`, async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
    t.true(before[k].every((x) => x.pods.length === 1 && x.pods[0] === 'pod-t'), `${k}: ${JSON.stringify(before[k])}`);
  }
  const opened = Date.now();
  await waitFor('a periodic checkpoint with the connections', async () => {
    const lc = status().restore.lastCheckpoint;
    return lc && lc.reason === 'periodic' && Date.parse(lc.at) > opened + 200 && lc.flows >= 3 * CONNS;
  }, 30000);

  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code, sig) => res(sig)));
  d.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  t.is(ifindex(), tapBefore, 'the TAP outlives the crash');
  const offline = await createControlPlane({
    dataplane: { apply: async () => ({ generation: 1 }), counters: async () => ({ generation: 1, global: {}, reasons: {}, frontends: {}, backends: {} }), conntrack: async () => [], trace: async () => { throw new Error('offline'); }, generation: () => 1, close: async () => {} },
    stateDir: topo.config.stateDir, listen: join(topo.dir, 'offline.sock'), healthz: false,
  });
  try { await offline.core.apply([slice([tapPod, otherPod])]); } finally { await offline.close(); }

  await startDaemon(topo);
  t.is(ifindex(), tapBefore, 'the restarted daemon re-attached to the same TAP');
  const st = status();
  t.log(JSON.stringify({ from: st.restore.from, flows: st.restore.flows, dropped: st.restore.dropped, images: st.restore.images }));
  t.is(st.restore.from, 'checkpoint');
  t.true(st.restore.flows >= 3 * CONNS);
  for (const [k, c] of Object.entries(kinds)) {
    const after = await waitFor(`${k} flowing again`, async () => {
      const s = await report(c);
      return s.every((x, i) => x.closed || x.errors.length || x.recv >= before[k][i].recv + 5) && s;
    }, 45000);
    after.forEach((x, i) => {
      t.false(x.closed, `${k} ${i} closed: ${JSON.stringify(x)}`);
      t.deepEqual(x.errors, [], `${k} ${i}`);
      t.deepEqual(x.pods, ['pod-t'], `${k} ${i} stays on its pod`);
    });
  }
  for (const c of Object.values(kinds)) c.stdin.write('stop\n');
});
