// `wdp status` (text) shows the workers the last flow checkpoint lacks (lastCheckpoint.lostWorkers,
// src/daemon/restart.ts), as `-o json` has them: a dead or hung worker's flows are not saved.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { createServer } from 'node:http';

const RESTORE = {
  from: 'none', objects: { services: 2, endpointSlices: 2 }, neighbours: 0, flows: 0, affinity: 0, staleBackends: 0, dropped: {}, durationMs: 12,
};

/** A stand-in daemon answering GET /api/v1/generation with `restore`. */
async function daemon(t, restore) {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'GET' && req.url === '/api/v1/generation') {
      res.end(JSON.stringify({ generation: 3, lastUpdated: '2026-12-06T00:00:00.000Z', services: 2, endpointSlices: 2, frontends: 4, backends: 6, restore }));
      return;
    }
    res.statusCode = 404; res.end('{}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  return `http://127.0.0.1:${server.address().port}`;
}

const LAST = { at: '2026-12-06T00:01:00.000Z', reason: 'stop', flows: 19, affinity: 1, bytes: 2795, ms: 63 };

test('status: the last checkpoint\'s lost workers are shown, each with why', async (t) => {
  const url = await daemon(t, { ...RESTORE, lastCheckpoint: { ...LAST, lostWorkers: [
    { worker: 1, error: 'dataplane worker 1 did not answer forward within 5000 ms' }, { worker: 3, error: 'dataplane worker 3 is not running (exited)' }] } });
  const r = await wdp(['status'], url);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^last checkpoint 2026-12-06T00:01:00.000Z \(stop\): 19 flows, 1 affinity entries, 2795 bytes in 63 ms\n {2}without the flows of 2 workers: worker 1 \(dataplane worker 1 did not answer forward within 5000 ms\), worker 3 \(dataplane worker 3 is not running \(exited\)\)\n$/m);
  const j = await wdp(['status', '-o', 'json'], url);
  t.is(JSON.parse(j.stdout).restore.lastCheckpoint.lostWorkers.length, 2);
});

test('status: no lost workers, no such line', async (t) => {
  for (const last of [LAST, { ...LAST, lostWorkers: [] }]) {
    const r = await wdp(['status'], await daemon(t, { ...RESTORE, lastCheckpoint: last }));
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /last checkpoint .* in 63 ms\n$/);
    t.notRegex(r.stdout, /without the flows/);
  }
});
