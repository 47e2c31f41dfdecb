// Table images end to end (`wdp start` in network namespaces): after a clean stop the restarted
// daemon forwards from the images before its control plane has restored — with the restore held
// back (WDP_TEST_RESTORE_HOLD_FILE: until the test removes that file) the API is not even listening, yet long-lived connections
// (direct and masqueraded) keep exchanging data and new connections are translated; the catch-up
// follows. An image is used once: after a crash (SIGKILL) following an apply the next start finds
// none and takes the normal path. An image for another store revision is refused with its reason
// (restart-daemon.test.js: a change persisted while the daemon was down).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { ECHO_PORT, ECHO_CLIENT, report, startEchoServers } from './lib/echo-traffic.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, WDP, NODE_V4, spawnNode, waitFor } from './lib/topology.js';

const { ok: root, serial } = rootGate(test);
const CONNS = 4;

/** One new connection to the ClusterIP: the pod that answers, or what went wrong. */
async function connectOnce(topo) {
  const r = await topo.lab.execAsync(topo.ns.client, process.execPath, ['-e', `
    const s = require('net').connect({ host: '10.96.6.10', port: ${ECHO_PORT} }, () => s.write('x\\n'));
    s.on('data', (d) => { console.log(String(d).split(':')[0]); process.exit(0); });
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); }); setTimeout(() => { console.log('timeout'); process.exit(0); }, 3000);`], { timeoutMs: 8000 });
  return r.stdout.trim();
}
const status = (topo) => {
  const r = spawnSync(process.execPath, [WDP, 'status', '--server', `unix:${topo.config.api.listen}`, '-o', 'json'], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
};
const stop = async (topo, signal) => {
  const d = topo.daemon;
  const exited = new Promise((res) => d.once('exit', (code, sig) => res(code ?? sig)));
  d.kill(signal);
  return exited;
};

let topo;
let hold = null; // the file that holds the restarted daemon's control plane back
const clients = [];
test.before(async () => {
  if (!root) return;
  topo = buildTopology({ pods: ['pod-a', 'pod-b', 'pod-c'].map((name) => ({ name, attach: 'afpacket' })) });
  await startDaemon(topo);
  await startPods(topo);
  await startEchoServers(topo);
});
test.after.always(async () => {
  delete process.env.WDP_TEST_RESTORE_HOLD_FILE;
  if (hold) rmSync(hold, { force: true });
  for (const c of clients) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  await destroyTopology(topo);
});

const service = serviceYaml({ name: 'echo', type: 'NodePort', clusterIP: '10.96.6.10', ports: [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, nodePort: 30710, protocol: 'TCP' }] });
const slice = (pods) => sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) });

serial('after a clean stop the daemon forwards old and new connections from its table image while the control plane has not restored', async (t) => {
  const [podA, podB, podC] = topo.pods;
  t.is((await api(topo, 'POST', '/api/v1/apply', [service, slice([podA, podB])])).status, 200);
  const direct = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.6.10', String(ECHO_PORT), String(CONNS)]);
  const masq = spawnNode(topo, topo.ns.remote, ECHO_CLIENT, [NODE_V4, '30710', String(CONNS)]);
  clients.push(direct, masq);
  const kinds = { direct, masq };
  const before = {};
  for (const [k, c] of Object.entries(kinds)) before[k] = await waitFor(`${k} flowing`, async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });

  t.is(await stop(topo, 'SIGTERM'), 0);
  t.regex(topo.daemonLog, /table images written/);
  t.true(existsSync(join(topo.config.stateDir, 'tables.0.img')));

  // the restart, its control plane held back until the hold file is removed (below)
  hold = join(topo.config.stateDir, '..', `restore-hold-${process.pid}`);
  writeFileSync(hold, '');
  process.env.WDP_TEST_RESTORE_HOLD_FILE = hold;
  const started = startDaemon(topo);
  delete process.env.WDP_TEST_RESTORE_HOLD_FILE;
  await waitFor('the daemon forwarding from its table image', () => /forwarding from the table image/.test(topo.daemonLog), 20000);
  const mid = {};
  for (const [k, c] of Object.entries(kinds)) {
    mid[k] = await waitFor(`${k} flowing again before the control plane`, async () => {
      const s = await report(c);
      return s.every((x, i) => x.closed || x.errors.length || x.recv >= before[k][i].recv + 5) && s;
    }, 15000);
  }
  const fresh = await connectOnce(topo);
  // all of this before the control plane restored: its API is not listening yet
  t.false(/control API listening/.test(topo.daemonLog), 'the control plane had restored already: the delay did not hold');
  t.throws(() => status(topo));
  for (const [k, s] of Object.entries(mid)) {
    s.forEach((x, i) => {
      t.false(x.closed, `${k} ${i}: ${JSON.stringify(x)}`);
      t.deepEqual(x.errors, []);
      t.deepEqual(x.pods, before[k][i].pods, `${k} ${i} stays on its pod`);
    });
  }
  t.true(['pod-a', 'pod-b'].includes(fresh), `a new connection before the control plane: ${fresh}`);

  rmSync(hold, { force: true });
  await started;
  const st = status(topo);
  t.log(JSON.stringify(st.restore.images));
  t.like(st.restore.images[0], { worker: 0, used: true, catchUp: { unmatched: 0 } });
  t.true(st.restore.forwardingAfterMs < st.restore.controlPlaneAfterMs, JSON.stringify(st.restore));
  t.false(existsSync(join(topo.config.stateDir, 'tables.0.img')), 'used once: deleted at start');
  // after the catch-up: the same connections go on, a change applies as always
  t.is((await api(topo, 'POST', '/api/v1/apply', [slice([podA, podB, podC])])).status, 200);
  for (const [k, c] of Object.entries(kinds)) {
    const after = await waitFor(`${k} after the catch-up`, async () => { const s = await report(c); return s.every((x, i) => x.closed || x.recv >= mid[k][i].recv + 5) && s; });
    after.forEach((x, i) => { t.false(x.closed); t.deepEqual(x.pods, before[k][i].pods); });
  }
  for (const c of Object.values(kinds)) c.stdin.write('stop\n');
});

serial('a crash after an apply leaves no image to trust: the next start takes the normal path', async (t) => {
  const [podA] = topo.pods;
  t.is((await api(topo, 'POST', '/api/v1/apply', [slice([podA])])).status, 200);
  t.is(await stop(topo, 'SIGKILL'), 'SIGKILL');
  await startDaemon(topo);
  const st = status(topo);
  t.like(st.restore.images[0], { used: false, problem: 'none' });
  t.is(st.backends, 1, 'the state after the apply');
  t.is(await connectOnce(topo), 'pod-a');
  // and a clean stop writes one again, which the next start uses
  t.is(await stop(topo, 'SIGTERM'), 0);
  await startDaemon(topo);
  t.like(status(topo).restore.images[0], { used: true, catchUp: { equal: true, remapped: 0 } });
});

serial('a store written by another tool after the stop (its file changed) refuses the image', async (t) => {
  t.is(await stop(topo, 'SIGTERM'), 0);
  t.true(existsSync(join(topo.config.stateDir, 'tables.0.img')));
  // what an edit with the sqlite3 tool or a restored backup does to the file, without wdp's revision
  const db = join(topo.config.stateDir, 'state.db');
  const later = new Date(Date.now() + 5000);
  utimesSync(db, later, later);
  await startDaemon(topo);
  const [r] = status(topo).restore.images;
  t.false(r.used);
  t.regex(r.problem, /saved state changed since it was written/);
  t.is(await connectOnce(topo), 'pod-a', 'the normal path restored the state');
});

serial('a stop whose flow checkpoint fails writes no table image (an older checkpoint\'s flow ids would be read as the image\'s)', async (t) => {
  t.is(await connectOnce(topo), 'pod-a');
  // a directory where the checkpoint's temporary file goes: writing the checkpoint fails
  const tmp = join(topo.config.stateDir, 'flows.ckpt.tmp');
  mkdirSync(tmp);
  try {
    t.is(await stop(topo, 'SIGTERM'), 0);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
  t.regex(topo.daemonLog, /writing the flow checkpoint failed/);
  t.regex(topo.daemonLog, /no table images written/);
  t.false(existsSync(join(topo.config.stateDir, 'tables.0.img')));
  await startDaemon(topo);
  t.like(status(topo).restore.images[0], { used: false, problem: 'none' });
  t.is(await connectOnce(topo), 'pod-a', 'the normal path restored the state');
});
