// A restart of the real `wdp start` process keeps established connections: long-lived TCP
// connections that keep exchanging data across a SIGTERM + start — direct (ClusterIP from the
// client), masqueraded (NodePort from the remote client) and to a sessionAffinity Service — and
// UDP flows (a socket each, the state kube-proxy flushes on restart), with
// an endpoint added while the daemon is down, so a fresh Maglev pick would move about a third of
// them. None is reset, each keeps its pod; `wdp status` says what was restored. A damaged
// checkpoint is refused with a log line, kept aside, and the daemon starts with empty tables.
// Pods sit behind AF_PACKET veths (their interfaces outlive the daemon; TAP persistence is
// another test's concern).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import {
  buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, sleep, WDP, NODE_V4, spawnNode, waitFor, logged,
} from './lib/topology.js';
import { createControlPlane } from '../dist/src/api/server.js';
import { Core } from '../dist/src/core/host.js';
import { exportFlows } from '../dist/src/core/flow-export.js';
import { writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { frame } from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';
import { ECHO_PORT, ECHO_CLIENT, report, startEchoServers } from './lib/echo-traffic.js';
import { daemonEnv } from '../dist/src/demo/topology.js';

const { ok: root, serial } = rootGate(test);

const CONNS = 8;          // per kind: P(no flow would move on 2 -> 3 endpoints) = (2/3)^8 each






let topo;
const clients = [];
test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: ['pod-a', 'pod-b', 'pod-c'].map((name) => ({ name, attach: 'afpacket' })) });
  topo.config.conntrack.checkpointSeconds = 2;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await startDaemon(topo);
  await startPods(topo);
  await startEchoServers(topo);
});
test.after.always(async () => {
  for (const c of clients) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  await destroyTopology(topo);
});

const slice = (name, service, pods) => sliceYaml({
  name, service, ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }],
  endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })),
});
const services = [
  serviceYaml({ name: 'echo', type: 'NodePort', clusterIP: '10.96.5.10', ports: [
    { name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, nodePort: 30700, protocol: 'TCP' },
    { name: 'dns', port: 5353, targetPort: 5353, nodePort: 30753, protocol: 'UDP' }] }),
  serviceYaml({ name: 'sticky', clusterIP: '10.96.5.11', ports: [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, protocol: 'TCP' }], extra: { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } } }),
];

/** One short connection to the sticky Service: the pod that answers. */
async function stickyPod() {
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', `
    const s = require('net').connect({ host: '10.96.5.11', port: ${ECHO_PORT} }, () => s.write('x\\n'));
    s.on('data', (d) => { console.log(String(d).split(':')[0]); process.exit(0); });
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
    setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);`], { timeoutMs: 10000 });
  return r.stdout.trim();
}

/** A change persisted while the daemon is down, as its control plane does on an apply (the
 * controller's update that a restarted daemon finds in its state). */
async function applyWhileDown(objs) {
  const offline = await createControlPlane({
    dataplane: { apply: async () => ({ generation: 1 }), counters: async () => ({ generation: 1, global: {}, reasons: {}, frontends: {}, backends: {} }), conntrack: async () => [], trace: async () => { throw new Error('offline'); }, generation: () => 1, close: async () => {} },
    stateDir: topo.config.stateDir, listen: join(topo.dir, 'offline.sock'), healthz: false,
  });
  try { await offline.core.apply(objs); } finally { await offline.close(); }
}

const status = () => {
  const r = spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};

serial('long-lived connections (direct, masqueraded, affinity, UDP) keep exchanging data across a restart with an endpoint added while down', async (t) => {
  const [podA, podB, podC] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [...services, slice('echo-1', 'echo', [podA, podB]), slice('sticky-1', 'sticky', [podA, podB])]);
  t.is(r.status, 200, r.text);
  const sticky = await waitFor('the sticky service', async () => { const p = await stickyPod(); return p.startsWith('pod-') && p; });

  const direct = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.5.10', String(ECHO_PORT), String(CONNS)]);
  const masq = spawnNode(topo, topo.ns.remote, ECHO_CLIENT, [NODE_V4, '30700', String(CONNS)]);
  const aff = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.5.11', String(ECHO_PORT), '2']);
  const udp = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.5.10', '5353', String(CONNS), 'udp']);
  clients.push(direct, masq, aff, udp);
  const kinds = { direct, masq, aff, udp };
  const before = {};
  for (const [k, c] of Object.entries(kinds)) {
    before[k] = await waitFor(`${k} connections flowing`, async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
    t.true(before[k].every((x) => x.pods.length === 1 && !x.closed && !x.errors.length), `${k}: ${JSON.stringify(before[k])}`);
  }
  t.true(before.aff.every((x) => x.pods[0] === sticky), `affinity: every connection of the client on one pod (${sticky}): ${JSON.stringify(before.aff)}`);
  const ct = (await api(topo, 'GET', '/api/v1/conntrack')).json;
  const masqFlows = (ct.items ?? ct).filter((f) => f.natSource === NODE_V4);
  t.true(masqFlows.length >= CONNS, `the NodePort connections are masqueraded: ${JSON.stringify(ct).slice(0, 500)}`);

  // graceful stop: the last checkpoint is written
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0, topo.daemonLog.slice(-2000));
  t.regex(topo.daemonLog, /"msg":"flow checkpoint written"[^\n]*"reason":"stop"|"reason":"stop"[^\n]*"msg":"flow checkpoint written"/);

  // while it is down the controller adds pod-c (persisted as the daemon would on an apply)
  await applyWhileDown([slice('echo-1', 'echo', [podA, podB, podC]), slice('sticky-1', 'sticky', [podA, podB, podC])]);
  await sleep(1000);   // the clients keep writing into the gap

  const t0 = Date.now();
  await startDaemon(topo);
  t.log(`restart: healthz 200 after ${Date.now() - t0} ms`);
  // ready means restored: by the time healthz says 200 the flows are back
  const st = status();
  t.log(JSON.stringify(st.restore));
  t.is(st.restore.from, 'checkpoint');
  t.is(st.restore.objects.services, 2);
  t.true(st.restore.flows >= 3 * CONNS + 2, `flows restored: ${st.restore.flows}`);
  t.true(st.restore.affinity >= 1);
  t.true(st.restore.neighbours >= 2, 'learned neighbours restored');
  t.is(st.backends, 9, 'the endpoint added while down is there (3 pods x 3 Service ports)');
  // the table image of the stop describes the state before that change: refused, with the reason
  t.false(st.restore.images[0].used);
  t.regex(st.restore.images[0].problem, /saved state changed since it was written/);
  const text = spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`], { encoding: 'utf8', timeout: 20000 }).stdout;
  t.regex(text, /restored in \d+ ms: 2 services, 2 endpointslices, \d+ neighbours, \d+ flows/);

  for (const [k, c] of Object.entries(kinds)) {
    const after = await waitFor(`${k} connections flowing again`, async () => {
      const s = await report(c);
      return s.every((x, i) => x.closed || x.errors.length || x.recv >= before[k][i].recv + 5) && s;
    }, 45000);
    after.forEach((x, i) => {
      t.false(x.closed, `${k} connection ${i} was closed: ${JSON.stringify(x)}`);
      t.deepEqual(x.errors, [], `${k} connection ${i}`);
      t.deepEqual(x.pods, before[k][i].pods, `${k} connection ${i} stays on its pod`);
    });
  }
  t.is(await stickyPod(), sticky, 'a new connection of the affinity client still goes to its pod');
  // new connections do spread over the new endpoint: the Maglev table did change
  const fresh = new Set();
  for (let i = 0; i < 30 && !fresh.has('pod-c'); i++) {
    const o = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', `
      const s = require('net').connect({ host: '10.96.5.10', port: ${ECHO_PORT} }, () => s.write('x\\n'));
      s.on('data', (d) => { console.log(String(d).split(':')[0]); process.exit(0); }); setTimeout(() => process.exit(0), 5000);`], { timeoutMs: 10000 });
    fresh.add(o.stdout.trim());
  }
  t.true(fresh.has('pod-c'), `new connections reach the endpoint added while down: ${[...fresh]}`);
  for (const c of Object.values(kinds)) c.stdin.write('stop\n');
});

serial('a damaged checkpoint is refused with a log line and kept aside; the daemon starts with empty tables', async (t) => {
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0);
  const file = join(topo.config.stateDir, 'flows.ckpt');
  const buf = readFileSync(file);
  buf[buf.length - 1] ^= 0xff;
  writeFileSync(file, buf);
  await startDaemon(topo);
  await logged(topo, /flow checkpoint refused: starting with empty conntrack and affinity tables/);
  await logged(topo, /payload checksum mismatch/);
  const st = status();
  t.is(st.restore.from, 'rejected');
  t.is(st.restore.flows, 0);
  t.true(existsSync(st.restore.keptAs), 'the refused file is kept for inspection');
  t.is(st.restore.objects.services, 2, 'the desired state is restored regardless');
});

serial('readiness: healthz answers 503 while saved flows are imported, 200 only once they are in the tables', async (t) => {
  // a checkpoint big enough that its import takes a while: 60,000 established flows to the echo
  // Service, made by a core of our own, written while the daemon is down
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code) => res(code)));
  d.kill('SIGTERM');
  t.is(await exited, 0);
  const FLOWS = 60000;
  const ports = topo.config.ports.map((p, index) => ({ index, name: p.name, mac: topo.lab.mac(topo.ns.dp, p.ifname) }));
  const pods = topo.pods.map((p, i) => backend({ id: i + 1, addr: p.ip, port: ECHO_PORT, service: 'default/echo', outPort: 2 + i }));
  const core = Core.create({ flows: FLOWS + 16, batchMax: 256 });
  core.applyIr(mkIr({ frontends: [frontend({ id: 1, addr: '10.96.5.10', port: ECHO_PORT, service: 'default/echo', portName: 'echo' }, pods)], backends: pods.map((b) => ({ ...b, portName: 'echo' })) }));
  const frames = [];
  for (let i = 0; i < FLOWS; i++) {
    frames.push(frame({ src: `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, dst: '10.96.5.10', proto: 'TCP', sport: 20000 + (i % 1000), dport: ECHO_PORT, flags: 'A', srcMac: MAC.client, dstMac: ports[0].mac }));
  }
  core.run(frames, 1000, 0);
  const recs = exportFlows(core, ports, 1001);
  t.is(recs.flows.length / L.CT_SIZE, FLOWS);
  writeCheckpoint(topo.config.stateDir, { savedAt: Date.now(), reason: 'stop', workers: [{ ...recs, worker: 0 }], neighbours: [] });
  topo.config.conntrack.flows = 2 * FLOWS;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));

  // start by hand and poll healthz from the moment the API socket answers
  const child = topo.lab.spawn(topo.ns.dp, process.execPath, [WDP, 'start', '--config', topo.configFile], { env: daemonEnv(topo) });
  topo.daemon = child;
  topo.daemonLog = '';
  child.stdout.on('data', (x) => { topo.daemonLog += x; });
  child.stderr.on('data', (x) => { topo.daemonLog += x; });
  const seen = [];
  let ready;
  const deadline = Date.now() + 90000;
  while (Date.now() < deadline && child.exitCode === null) {
    let code;
    try { code = (await api(topo, 'GET', '/healthz')).status; } catch { code = 'down'; }
    if (seen[seen.length - 1] !== code) seen.push(code);
    if (code === 200) { ready = status(); break; }
    await sleep(10);
  }
  t.log(`healthz went ${seen.join(' -> ')}`);
  t.truthy(ready, topo.daemonLog.slice(-2000));
  t.true(seen.includes(503), 'not ready while the flows are imported');
  t.is(ready.restore.flows, FLOWS, 'ready means every saved flow is in the table');
  t.is(ready.restore.staleBackends, 0);
  const ct = (await api(topo, 'GET', '/api/v1/conntrack?limit=5')).json;
  t.is((ct.items ?? ct).length, 5);
});

serial('a crash (SIGKILL) keeps the connections older than the last periodic checkpoint', async (t) => {
  // a Service on pod-a alone; pod-b and pod-c are added while the daemon is dead, so without the
  // checkpoint a fresh pick keeps all four connections on pod-a with probability (1/3)^4
  const [podA, podB, podC] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'crash', clusterIP: '10.96.5.12', ports: [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, protocol: 'TCP' }] }),
    slice('crash-1', 'crash', [podA]),
  ]);
  t.is(r.status, 200, r.text);
  const c = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.5.12', String(ECHO_PORT), '4']);
  clients.push(c);
  const before = await waitFor('connections flowing', async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
  const opened = Date.now();
  // checkpointSeconds is 2: wait for a periodic checkpoint taken after the connections opened
  await waitFor('a periodic checkpoint with the connections', async () => {
    const lc = status().restore.lastCheckpoint;
    return lc && lc.reason === 'periodic' && Date.parse(lc.at) > opened + 200;
  }, 30000);
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code, sig) => res(sig)));
  d.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  await applyWhileDown([slice('crash-1', 'crash', [podA, podB, podC])]);
  await startDaemon(topo);
  const st = status();
  t.is(st.restore.from, 'checkpoint');
  const after = await waitFor('connections flowing again', async () => {
    const s = await report(c);
    return s.every((x, i) => x.closed || x.errors.length || x.recv >= before[i].recv + 5) && s;
  }, 45000);
  t.true(before.every((x) => x.pods[0] === 'pod-a'));
  after.forEach((x, i) => {
    t.false(x.closed, `connection ${i} was closed: ${JSON.stringify(x)}`);
    t.deepEqual(x.pods, ['pod-a'], `connection ${i} stays on its pod`);
  });
  c.stdin.write('stop\n');
});
