// A flow checkpoint describes one moment and is restored once. With conntrack.checkpointSeconds 0
// (a checkpoint only at a stop) a clean restart restores the stop's flows and retires the file once
// they are in the running workers; a crash (SIGKILL) long after must not restore that stop's flows
// again — connections that ended since, or whose 5-tuple a new connection took, would get the
// stale entries. With periodic checkpoints the restored file is replaced at once by a checkpoint
// of the flows as they are. A table image is used only with the checkpoint of its own stop.
// (`wdp start` in network namespaces for the first; FlowCheckpointer over a stand-in dataplane
// for the others.)
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { rootGate } from './lib/root-gate.js';
import { ECHO_PORT, ECHO_CLIENT, report, startEchoServers } from './lib/echo-traffic.js';
import { buildTopology, startPods, startDaemon, destroyTopology, api, serviceYaml, sliceYaml, spawnNode, waitFor, logged } from './lib/topology.js';
import * as L from '../dist/assembly/layout.js';
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { FlowCheckpointer } from '../dist/src/daemon/restart.js';
import { storeRevisionStamp } from '../dist/src/daemon/table-image-file.js';
import { imageProblem, layoutHash } from '../dist/src/core/table-image.js';

const { ok: root, serial } = rootGate(test);

/** What `wdp status -o json` shows under `restore` (the API's generation answer). */
const restored = async (topo) => (await api(topo, 'GET', '/api/v1/generation')).json.restore;
/** Signals the daemon; its exit code or signal. */
function stop(topo, signal) {
  const exited = new Promise((res) => topo.daemon.once('exit', (code, sig) => res(code ?? sig)));
  topo.daemon.kill(signal);
  return exited;
}

let topo;
const clients = [];
test.after.always(async () => {
  for (const c of clients) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  await destroyTopology(topo);
});

serial('checkpointSeconds 0: a restart restores the stop\'s flows once; a crash after it does not restore them again', async (t) => {
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  topo.config.conntrack.checkpointSeconds = 0;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await startDaemon(topo);
  await startPods(topo);
  await startEchoServers(topo);
  const [podA] = topo.pods;
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'echo', clusterIP: '10.96.7.10', ports: [{ name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }], endpoints: [{ addresses: [podA.ip], conditions: { ready: true } }] }),
  ]);
  t.is(r.status, 200, r.text);
  const c = spawnNode(topo, topo.ns.client, ECHO_CLIENT, ['10.96.7.10', String(ECHO_PORT), '3']);
  clients.push(c);
  await waitFor('connections flowing', async () => { const s = await report(c); return s.every((x) => x.recv >= 3) && s; });
  const ckpt = join(topo.config.stateDir, CHECKPOINT_FILE);

  t.is(await stop(topo, 'SIGTERM'), 0);
  t.true(existsSync(ckpt), 'the stop wrote its checkpoint');
  await startDaemon(topo);
  const first = await restored(topo);
  t.is(first.from, 'checkpoint');
  t.true(first.flows >= 3, `the stop's flows are restored: ${JSON.stringify(first)}`);
  t.like(first.images[0], { used: true }, 'and its table image, which goes with that checkpoint');
  // retired right after forwarding resumed (asserted below, after what it is for)
  await waitFor('the restored checkpoint retired', () => !existsSync(ckpt), 10000).catch(() => undefined);
  const retired = !existsSync(ckpt);
  // (its line is logged after the file is gone, and reaches the pipe later still)
  const firstLog = await logged(topo, /the restored flow checkpoint is removed/, 'the retirement logged', 10000).catch(() => topo.daemonLog);

  // the connections end; later the daemon crashes
  c.stdin.write('stop\n');
  t.is(await stop(topo, 'SIGKILL'), 'SIGKILL');
  await startDaemon(topo);
  const second = await restored(topo);
  t.is(second.from, 'none', `nothing restored a second time: ${JSON.stringify(second)}`);
  t.is(second.flows, 0);
  t.like(second.images[0], { used: false, problem: 'none' });
  t.is(second.objects.services, 1, 'the desired state is restored from the store as always');
  t.true(retired, 'the restored checkpoint was removed once its flows were in the workers');
  t.regex(firstLog, /the restored flow checkpoint is removed/);
});

// ---- the same rule without a daemon ----

const silent = pino({ level: 'silent' });
const records = (worker, n) => ({ worker, flows: new Uint8Array(n * L.CT_SIZE), affinity: new Uint8Array(0), frontends: [], backends: [], ports: [], snatV4: null, snatV6: null });
/** A dataplane stand-in: what importFlows was given, and `live` flows to export. */
const standIn = (live) => ({
  imported: [],
  async importFlows(w) { this.imported.push(...w); return { flows: 0, affinity: 0, staleBackends: 0, dropped: {} }; },
  async exportFlows() { return { workers: [records(0, live)], failed: [] }; },
});
const placement = { workers: 1, steering: false };

function dirWithCheckpoint(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ckpt-once-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeCheckpoint(dir, { savedAt: Date.now() - 1000, reason: 'stop', workers: [records(0, 0)], neighbours: [] });
  return dir;
}

test('checkpointSeconds 0: the checkpoint stays through the restore (a crash during it restores it again) and is removed once the flows are in the workers', async (t) => {
  const dir = dirWithCheckpoint(t);
  const cp = new FlowCheckpointer(dir, silent, 0);
  const dp = standIn(0);
  await cp.restoreFlows(dp, [], placement);
  t.true(existsSync(join(dir, CHECKPOINT_FILE)), 'still there until forwarding resumed with the flows');
  t.is(new FlowCheckpointer(dir, silent, 0).summary().from, 'checkpoint', 'a crash here: the next start restores it');
  cp.startPeriodic(dp, () => []);
  t.false(existsSync(join(dir, CHECKPOINT_FILE)));
  t.is(new FlowCheckpointer(dir, silent, 0).summary().from, 'none');
});

test('periodic checkpoints: the restored checkpoint is replaced at once by one of the flows now', async (t) => {
  const dir = dirWithCheckpoint(t);
  const cp = new FlowCheckpointer(dir, silent, 3600);
  const dp = standIn(5);
  await cp.restoreFlows(dp, [], placement);
  const before = readCheckpoint(dir).checkpoint;
  cp.startPeriodic(dp, () => []);
  t.teardown(() => cp.stopPeriodic());
  await waitFor('the checkpoint rewritten', () => cp.summary().lastCheckpoint, 5000);
  const after = readCheckpoint(dir).checkpoint;
  t.true(after.savedAt > before.savedAt);
  t.is(after.workers[0].flows.length, 5 * L.CT_SIZE, 'the flows as they are now');
});

test('periodic checkpoints, and the replacing write fails: the restored checkpoint is removed all the same', async (t) => {
  const dir = dirWithCheckpoint(t);
  const cp = new FlowCheckpointer(dir, silent, 3600);
  const dp = standIn(5);
  await cp.restoreFlows(dp, [], placement);
  mkdirSync(join(dir, `${CHECKPOINT_FILE}.tmp`));   // where the write goes: it fails
  cp.startPeriodic(dp, () => []);
  t.teardown(() => cp.stopPeriodic());
  await waitFor('the restored checkpoint removed', () => !existsSync(join(dir, CHECKPOINT_FILE)), 5000);
  t.is(cp.summary().lastCheckpoint, undefined, 'nothing was written');
});

test('a table image goes only with the checkpoint of its stop: a revision stamp names the checkpoint file too', (t) => {
  const dir = dirWithCheckpoint(t);
  const atStop = storeRevisionStamp(dir, () => 'store:7');
  t.is(storeRevisionStamp(dir, () => 'store:7'), atStop, 'nothing changed: the same stamp');
  // rewritten (a later run's periodic checkpoint): same size, another modification time
  const file = join(dir, CHECKPOINT_FILE);
  writeFileSync(file, readFileSync(file));
  t.not(storeRevisionStamp(dir, () => 'store:7'), atStop);
  rmSync(file);
  const retired = storeRevisionStamp(dir, () => 'store:7');
  t.not(retired, atStop);
  const meta = { moduleHash: 1, layoutHash: layoutHash(), worker: 0, workers: 1, revision: atStop, inputsHash: 'h', caps: {}, offsets: [], lengths: [] };
  t.regex(imageProblem(meta, { moduleHash: 1, worker: 0, workers: 1, revision: retired, inputsHash: 'h' }) ?? '', /the flow checkpoint is not the one written with it/);
});
