// The store's files taken away under a running control plane: the state directory deleted, the
// WAL deleted, state.db replaced. SQLite goes on committing to the files it has open, which no
// start reads: every apply was acknowledged and lost at the next restart. Now the store sees that
// its paths no longer name its files: healthz answers 503 at once (before any apply), an apply is
// refused (500, nothing applied) naming what happened, and the metrics say the store is not
// writable.
import test from 'ava';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-gone-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const svc = (name, ip) => JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ port: 80 }] } });
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name);

const cases = [
  ['the state directory deleted', (dir) => rmSync(dir, { recursive: true }), /state\.db is gone \(ENOENT/],
  ['its WAL deleted', (dir) => rmSync(join(dir, 'state.db-wal')), /state\.db-wal \(the store's write-ahead log, holding its latest commits\) was deleted/],
  ['state.db replaced by a copy', (dir) => { copyFileSync(join(dir, 'state.db'), join(dir, 'copy')); renameSync(join(dir, 'copy'), join(dir, 'state.db')); }, /state\.db was replaced/],
];

for (const [what, take, message] of cases) {
  test(`${what} under a running control plane: healthz 503 before any apply, applies refused naming it, metrics say so`, async (t) => {
    const dir = stateDir(t);
    const a = await startControlPlane(t, { healthz: '127.0.0.1:0', stateDir: dir });
    t.is((await a.req('POST', '/api/v1/apply', svc('web', '10.96.0.10'))).status, 200);
    t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 200);
    take(dir);
    t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 503, 'seen without an apply');
    const state = (await a.req('GET', '/api/v1/state')).json;
    t.false(state.store.writable);
    t.regex(state.store.lastError, message);
    const r = await a.req('POST', '/api/v1/apply', svc('api', '10.96.0.11'));
    t.is(r.status, 500, 'not acknowledged: it would be lost at the next start');
    t.regex(r.json.message, message);
    t.regex(r.json.message, /every write is refused until wdp is restarted/);
    t.deepEqual(await names(a.req), ['web']);
    const metrics = await (await fetch(a.cp.url + '/metrics')).text();
    t.regex(metrics, /^wdp_state_store_writable 0$/m);
    t.regex(metrics, /^wdp_state_save_failures_total 1$/m);
    t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 503, 'and stays so');
  });
}
