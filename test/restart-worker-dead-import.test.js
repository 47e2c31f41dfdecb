// A worker that died before the restore costs the restore its own saved flows only, as it costs a
// checkpoint only its own (restart-worker-dead): the others' imports are waited for and counted,
// the dead worker's records are counted as not restored (workerFailed) and it is named — the
// restore summary does not say the whole import failed while the other workers imported theirs.
// Forwarding workers without ports (no root).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import * as L from '../dist/assembly/layout.js';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { FlowCheckpointer } from '../dist/src/daemon/restart.js';

const init = (worker, workers) => ({
  worker, workers, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay',
});
const records = (worker, flows) => ({ worker, flows: new Uint8Array(flows * L.CT_SIZE), affinity: new Uint8Array(0), frontends: [], backends: [], ports: [] });

test('a dead worker at the restore: its records counted as workerFailed and named, the others\' import counted, no "import failed"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-dead-import-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)], { onFatal: () => {} });
  t.teardown(() => dp.close());
  const exited = new Promise((r) => dp.workers[1].thread.once('exit', r));
  await dp.workers[1].thread.terminate();
  await exited;
  const s = await dp.importFlows([records(0, 0), records(1, 3)], 0);
  t.is(s.dropped.workerFailed, 3, 'the dead worker\'s records');
  t.like(s.failed, [{ worker: 1 }]);
  // through the restore: the summary names the worker, not the whole import
  writeCheckpoint(dir, { savedAt: Date.now(), reason: 'stop', workers: [records(0, 0), records(1, 0)], neighbours: [] });
  const lines = [];
  const cp = new FlowCheckpointer(dir, pino({ level: 'info' }, { write: (l) => lines.push(JSON.parse(l)) }), 0);
  await cp.restoreFlows(dp, [], { workers: 2, steering: false });
  t.notRegex(cp.summary().problem ?? '', /importing the saved flows failed/);
  t.regex(cp.summary().problem ?? '', /worker 1/);
  t.truthy(lines.find((l) => l.worker === 1 && /saved flows/.test(l.msg)), JSON.stringify(lines));
});
