// `wdp start` restarted with more workers: `workers: 1` stopped with long-lived TCP connections
// from six client addresses through a ClusterIP, endpoints added while it is down, started again
// with `workers: 2` and every port `fanout: true`. Steering hands each client's frames to the
// worker that owns its address under two workers; a connection whose flow was restored into
// another worker would be picked anew there (two of three pods are new: a reset). Every
// connection must go on, on its pod.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, spawnNode, waitFor, WDP } from './lib/topology.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { ECHO_PORT, ECHO_CLIENT, report, startEchoServers } from './lib/echo-traffic.js';
import { CLIENTS } from './lib/fanout-checks.js';
import { nativeAvailable } from '../dist/src/ports/native.js';

const native = nativeAvailable();
const { serial: rootSerial } = rootGate(test);
const serial = native.ok ? rootSerial : (title, ...rest) => test.skip(`${title} (skipped: fanout needs the native addon: ${native.reason})`, ...rest);

// ECHO_CLIENT, its connections spread over the source addresses given after the protocol
const CLIENT = ECHO_CLIENT
  .replace("const [host, port, n, proto] = process.argv.slice(1);", "const [host, port, n, proto, srcs] = process.argv.slice(1); const src = srcs.split(',');")
  .replace('c.s = net.connect({ host, port: Number(port) });', 'c.s = net.connect({ host, port: Number(port), localAddress: src[i % src.length] });');

let topo;
const clients = [];
test.after.always(async () => {
  for (const c of clients) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  await destroyTopology(topo);
});

const slice = (pods) => sliceYaml({ name: 'wc-1', service: 'wc', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) });

serial('restarted from one worker to two fanout workers, every connection goes on on its pod', async (t) => {
  t.true(CLIENT.includes('localAddress'), 'the client script was adapted');
  topo = buildTopology({ pods: ['pod-a', 'pod-b', 'pod-c'].map((name) => ({ name, attach: 'afpacket' })) });
  await startDaemon(topo);
  await startPods(topo);
  await startEchoServers(topo);
  for (const a of CLIENTS.slice(1)) topo.lab.addr(topo.ns.client, 'eth0', `${a}/24`);
  const [podA, podB, podC] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'wc', clusterIP: '10.96.8.10', ports: [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, protocol: 'TCP' }] }),
    slice([podA]),
  ]);
  t.is(r.status, 200, r.text);
  const c = spawnNode(topo, topo.ns.client, CLIENT, ['10.96.8.10', String(ECHO_PORT), String(2 * CLIENTS.length), 'tcp', CLIENTS.join(',')]);
  clients.push(c);
  const before = await waitFor('connections flowing', async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
  t.true(before.every((x) => x.pods.length === 1 && x.pods[0] === 'pod-a' && !x.closed), JSON.stringify(before));

  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0, topo.daemonLog.slice(-2000));
  // while it is down: pod-b and pod-c join (a flow picked anew lands on one of them 2 times in 3),
  // and the node gets a second worker sharing every port
  const offline = await createControlPlane({
    dataplane: { apply: async () => ({ generation: 1 }), counters: async () => ({ generation: 1, global: {}, reasons: {}, frontends: {}, backends: {} }), conntrack: async () => [], trace: async () => { throw new Error('offline'); }, generation: () => 1, close: async () => {} },
    stateDir: topo.config.stateDir, listen: join(topo.dir, 'offline.sock'), healthz: false,
  });
  try { await offline.core.apply([slice([podA, podB, podC])]); } finally { await offline.close(); }
  topo.config.workers = 2;
  for (const p of topo.config.ports) p.fanout = true;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await startDaemon(topo);

  const st = JSON.parse(spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 }).stdout);
  t.log(JSON.stringify({ flows: st.restore.flows, dropped: st.restore.dropped }));
  t.true(st.restore.flows >= 2 * CLIENTS.length, `flows restored: ${st.restore.flows}`);
  t.is(st.restore.dropped.workerChanged ?? 0, 0, 'no masqueraded flow here: nothing left out');

  const after = await waitFor('connections flowing again', async () => {
    const s = await report(c);
    return s.every((x, i) => x.closed || x.errors.length || x.recv >= before[i].recv + 5) && s;
  }, 45000);
  after.forEach((x, i) => {
    t.false(x.closed, `connection ${i} was closed: ${JSON.stringify(x)}`);
    t.deepEqual(x.errors, [], `connection ${i}`);
    t.deepEqual(x.pods, ['pod-a'], `connection ${i} stays on its pod`);
  });
  const ct = (await api(topo, 'GET', '/api/v1/counters')).json;
  t.log(JSON.stringify(ct.workers.map((w) => w.global.ct_active)));
  t.true(ct.workers.every((w) => (w.global.ct_active ?? 0) > 0), 'both workers hold restored flows');
  c.stdin.write('stop\n');
});
