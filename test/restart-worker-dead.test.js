// A worker that died (or does not answer) costs the flow checkpoint its own flows only: the
// checkpoint is written with what the live workers give, the lost worker is named in the log and
// in `wdp status` (lastCheckpoint.lostWorkers), and the next start restores the rest. Forwarding
// workers without ports (no root); the worker is killed by terminating its thread, a hang is the
// request's time-out (as daemon-worker-dataplane injects a refusing worker).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { readCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { FlowCheckpointer } from '../dist/src/daemon/restart.js';

const init = (worker, workers) => ({
  worker, workers, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay',
});

async function setup(t, workers = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-dead-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fatal = [];
  const dp = await WorkerDataplane.start(Array.from({ length: workers }, (_, w) => init(w, workers)), { onFatal: (m, w) => fatal.push([w, m]) });
  t.teardown(() => dp.close());
  const lines = [];
  const log = pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) });
  return { dir, dp, fatal, lines, cp: new FlowCheckpointer(dir, log, 0) };
}

test('a dead worker: the checkpoint holds the live workers\' flows, the lost worker is logged and reported', async (t) => {
  const { dir, dp, fatal, lines, cp } = await setup(t, 3);
  const exited = new Promise((r) => dp.workers[1].thread.once('exit', r));
  await dp.workers[1].thread.terminate();
  await exited;
  t.is(fatal[0]?.[0], 1, 'the dataplane saw worker 1 die');
  t.true(await cp.save(dp, () => [], 'stop'), 'written');
  const c = readCheckpoint(dir).checkpoint;
  t.deepEqual(c.workers.map((w) => w.worker), [0, 2]);
  const last = cp.summary().lastCheckpoint;
  t.is(last.lostWorkers.length, 1);
  t.like(last.lostWorkers[0], { worker: 1 });
  t.regex(last.lostWorkers[0].error, /worker 1/);
  const lost = lines.find((l) => /flow checkpoint: worker 1 gave no flows/.test(l.msg));
  t.truthy(lost, JSON.stringify(lines));
  t.is(lost.worker, 1);
  t.truthy(lines.find((l) => l.msg === 'flow checkpoint written' && l.lostWorkers?.[0]?.worker === 1));
  // the next start restores what was saved
  t.is(new FlowCheckpointer(dir, pino({ level: 'silent' }), 0).summary().from, 'checkpoint');
});

test('a worker that does not answer: the others\' flows are saved', async (t) => {
  const { dir, dp, lines, cp } = await setup(t);
  const real = dp.request.bind(dp);
  dp.request = (h, msg, ...rest) => (msg.type === 'exportFlows' && h === dp.workers[0]
    ? new Promise((_, reject) => setTimeout(() => reject(new Error('dataplane worker 0 did not answer exportFlows within 100 ms')), 100))
    : real(h, msg, ...rest));
  t.true(await cp.save(dp, () => [], 'periodic'));
  t.deepEqual(readCheckpoint(dir).checkpoint.workers.map((w) => w.worker), [1]);
  t.like(cp.summary().lastCheckpoint.lostWorkers, [{ worker: 0, error: 'dataplane worker 0 did not answer exportFlows within 100 ms' }]);
  t.truthy(lines.find((l) => l.worker === 0 && /gave no flows/.test(l.msg)));
});

test('no live worker at all: nothing is written, the previous checkpoint stays', async (t) => {
  const { dir, dp, lines, cp } = await setup(t, 1);
  t.true(await cp.save(dp, () => [], 'periodic'));
  const before = readCheckpoint(dir).checkpoint.savedAt;
  await dp.workers[0].thread.terminate();
  await new Promise((r) => setTimeout(r, 50));
  t.false(await cp.save(dp, () => [], 'stop'));
  t.is(readCheckpoint(dir).checkpoint.savedAt, before);
  t.truthy(lines.find((l) => l.msg === 'writing the flow checkpoint failed' && /no worker gave its flows/.test(l.error)));
});
