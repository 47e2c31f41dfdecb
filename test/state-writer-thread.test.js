// Large writes go through the store's writer thread (src/state/store-writer.ts): staged while the
// change compiles (one without request text, the watcher's: once the diff went to the dataplane),
// committed only after it compiled and went to the dataplane. Every failure on
// that path refuses the apply and leaves dataplane and store as they were; a refused compile drops
// the staged rows; the next apply works (a new thread when the old one died).
import test from 'ava';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { startControlPlane } from './lib/server.js';
import { NotSentError, StoreWriterThread } from '../dist/src/state/store-writer.js';
import { StateStore, StoreStateUncertain } from '../dist/src/state/store.js';
import { within } from './lib/bounded-wait.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-state-thread-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A control plane whose store stages every write of 2 rows or more on the writer thread. */
async function server(t, dir) {
  const a = await startControlPlane(t, { healthz: '127.0.0.1:0', stateDir: dir });
  a.cp.core.store.stageOnThreadRows = 2;
  return a;
}

const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }],
});
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name);
const frontends = (dp) => [...dp.core.ir.frontends.values()].map((f) => f.service).sort();
/** A copy of the store's files (state.db and its WAL) in a directory of its own: the running
 * store's connection holds the database for itself (locking_mode=EXCLUSIVE), so what it committed
 * is read from a copy, taken while no write is under way. */
const storeCopy = (dir) => {
  const copy = mkdtempSync(join(tmpdir(), 'wdp-state-copy-'));
  for (const f of ['state.db', 'state.db-wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
  return copy;
};
const storedRows = (dir) => {
  const copy = storeCopy(dir);
  try {
    const db = new Database(join(copy, 'state.db'), { readonly: true });
    try { return db.prepare('SELECT kind, key FROM objects ORDER BY kind, key').all().map((r) => `${r.kind} ${r.key}`); } finally { db.close(); }
  } finally { rmSync(copy, { recursive: true, force: true }); }
};
/** A read-only connection to a copy of the store's files (removed when it closes). */
const copyDb = (dir) => {
  const copy = storeCopy(dir);
  const db = new Database(join(copy, 'state.db'), { readonly: true });
  const close = db.close.bind(db);
  db.close = () => { try { close(); } finally { rmSync(copy, { recursive: true, force: true }); } };
  return db;
};
/** The committed revision (StateStore.peekRevision) of a copy of the store's files. */
const peekRevision = (dir) => {
  const copy = storeCopy(dir);
  try { return StateStore.peekRevision(copy); } finally { rmSync(copy, { recursive: true, force: true }); }
};
/** An open store that stages every write on the writer thread. */
function stagingStore(t, dir) {
  const s = new StateStore(dir);
  s.open();
  t.teardown(() => s.close());
  s.stageOnThreadRows = 1;
  return s;
}
const apply = (a, objs) => a.req('POST', '/api/v1/apply', JSON.stringify(objs));
/** The store's writer thread is terminated right after the next write is staged on it. */
function killWriterAtNextStage(store) {
  const stage = store.stage.bind(store);
  let kill = true;
  store.stage = (w) => {
    const s = stage(w);
    if (kill) { kill = false; store.writerThreadForTests.threadForTests.terminate(); }
    return s;
  };
}

test('a large write is committed by the writer thread, survives a restart, and small writes still commit here', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5']), svc('api', '10.96.0.11')])).status, 200);
  t.not(a.cp.core.store.writerThreadForTests, null, 'the write went through the thread');
  t.is(a.cp.core.store.lastCommit.rows, 3);
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web']);
  t.is((await apply(a, slice('web-1', 'web', ['10.244.1.6']))).status, 200, 'one row: committed on the main thread');
  t.is(a.cp.core.store.lastCommit.rows, 1);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.6');
});

test('the writer thread dying mid-write: apply refused, dataplane and store unchanged, the next apply works', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  killWriterAtNextStage(a.cp.core.store);
  const r = await apply(a, [svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.9'])]);
  t.is(r.status, 500);
  t.regex(r.json.message, /saving the desired state failed \(nothing applied; the dataplane was restored to the previous state\): the store writer thread stopped/);
  t.deepEqual(await names(a.req), ['web']);
  t.deepEqual(frontends(a.dp), ['shop/web']);
  t.is((await a.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/web']);
  t.regex(await (await fetch(a.cp.url + '/metrics')).text(), /^wdp_state_save_failures_total 1$/m);
  // a new thread takes the next large write
  t.is((await apply(a, [svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.9'])])).status, 200);
  t.deepEqual(frontends(a.dp), ['shop/api', 'shop/web']);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.9');
});

test('the writer thread cannot write its log: apply refused and rolled back, healthz 503 until it can', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  // (no other connection can take the write lock while the store's holds the database:
  // locking_mode=EXCLUSIVE; the log made immutable fails every write to it, even root's)
  const wal = join(dir, 'state.db-wal');
  if (spawnSync('chattr', ['+i', wal]).status !== 0) { t.log('chattr +i is not supported here: not run'); await a.close(); return; }
  t.teardown(() => spawnSync('chattr', ['-i', wal]));
  const r = await apply(a, [svc('api', '10.96.0.11'), svc('db', '10.96.0.12')]);
  t.is(r.status, 500);
  t.regex(r.json.message, /saving the desired state failed \(nothing applied; the dataplane was restored/);
  t.deepEqual(frontends(a.dp), ['shop/web']);
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 503);
  t.like((await a.req('GET', '/api/v1/state')).json.store, { writable: false, saveFailures: 1 });
  t.is(spawnSync('chattr', ['-i', wal]).status, 0);
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 200);
  t.is((await apply(a, [svc('api', '10.96.0.11'), svc('db', '10.96.0.12')])).status, 200);
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/db', 'Service shop/web']);
});

test('a change the compiler refuses drops its staged rows; the next write does not wait for a lock', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  // one slice twice in a batch: the compiler refuses it, after the rows were staged
  let staged = 0;
  const store = a.cp.core.store;
  const stage = store.stage.bind(store);
  store.stage = (w) => { staged++; return stage(w); };
  const r = await apply(a, [svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.7']), slice('web-1', 'web', ['10.244.1.6'])]);
  t.is(staged, 1);
  t.is(r.status, 422, r.text);
  t.is((await apply(a, slice('web-1', 'web', ['10.244.1.8']))).status, 200, 'a one-row write on the main thread right after');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/web']);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.8');
});

/** Records, in order, when the control plane posts a change to the dataplane and when it stages
 * the store's write (`posted`, `staged`). */
function orderOf(a) {
  const order = [];
  const dp = a.cp.core.dataplane, store = a.cp.core.store;
  const apply = dp.apply.bind(dp), stage = store.stage.bind(store);
  dp.apply = (...args) => { order.push('posted'); return apply(...args); };
  store.stage = (...args) => { order.push('staged'); return stage(...args); };
  return order;
}

test('a large write with no request text (the watcher\'s) is staged after the diff went to the dataplane, committed before the apply resolves, and survives a restart; one with request text is staged before the compile', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const order = orderOf(a);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  t.deepEqual(order.splice(0), ['staged', 'posted'], 'the API\'s body: its bytes staged before the compile');
  const r = await a.cp.core.applyEach([svc('api', '10.96.0.11'), slice('api-1', 'api', ['10.244.1.7']), slice('web-1', 'web', ['10.244.1.6'])]);
  t.deepEqual(r.skipped, []);
  t.deepEqual(order.splice(0), ['posted', 'staged'], 'serialised while the workers apply the diff');
  t.is(a.cp.core.store.lastCommit.rows, 3, 'committed before applyEach resolved');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/api-1', 'EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web']);
  // a YAML body has no JSON text to store either (the same as a JSON List's)
  const yaml = [svc('db', '10.96.0.12'), slice('db-1', 'db', ['10.244.1.8'])].map((o) => JSON.stringify(o)).join('\n---\n');
  t.is((await a.req('POST', '/api/v1/apply', yaml, { 'content-type': 'application/yaml' })).status, 200);
  t.deepEqual(order.splice(0), ['posted', 'staged']);
  t.is(a.cp.core.store.lastCommit.rows, 2);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'db', 'web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.6');
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/db-1')).json.endpoints[0].addresses[0], '10.244.1.8');
});

test('the writer thread dying on a watcher\'s large write staged after the post: refused, the dataplane and the store as they were, the next one works', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.deepEqual((await a.cp.core.applyEach([svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).skipped, []);
  killWriterAtNextStage(a.cp.core.store);
  const err = await t.throwsAsync(a.cp.core.applyEach([svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.9'])]));
  t.regex(err.message, /saving the desired state failed \(nothing applied; the dataplane was restored to the previous state\): the store writer thread stopped/);
  t.deepEqual(frontends(a.dp), ['shop/web']);
  t.is((await a.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/web']);
  t.deepEqual((await a.cp.core.applyEach([svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.9'])])).skipped, []);
  t.deepEqual(frontends(a.dp), ['shop/api', 'shop/web']);
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web']);
});

test('after a large write the writer thread copies the WAL into the database file (not the main thread)', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const store = a.cp.core.store;
  let mainCheckpoints = 0;
  const checkpoint = store.checkpoint.bind(store);
  store.checkpoint = () => { mainCheckpoints++; checkpoint(); };
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5']), svc('api', '10.96.0.11')])).status, 200);
  // the database file alone (without its WAL) holds the rows once they were checkpointed
  const copy = mkdtempSync(join(tmpdir(), 'wdp-state-copy-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  let rows = 0;
  for (let i = 0; i < 50 && rows < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    copyFileSync(join(dir, 'state.db'), join(copy, 'state.db'));
    const db = new Database(join(copy, 'state.db'), { readonly: true });
    try { rows = db.prepare('SELECT count(*) AS n FROM objects').get().n; } finally { db.close(); }
  }
  t.is(rows, 3);
  t.is(mainCheckpoints, 0);
});

test('small commits past the checkpoint threshold are copied into the database file by the writer thread, never on the main thread', async (t) => {
  const dir = stateDir(t);
  const a = await startControlPlane(t, { healthz: '127.0.0.1:0', stateDir: dir }); // every write below is small: main thread
  const store = a.cp.core.store;
  store.checkpointBytes = 1; // every commit asks for one
  t.is(store.db, undefined, 'the main thread has no connection: the writer thread\'s is the store\'s only one');
  t.is((await apply(a, [svc('web', '10.96.0.10')])).status, 200);
  t.not(store.writerThreadForTests, null, 'the checkpoint started the writer thread');
  // the applies go on while the checkpoint runs, and do not wait for it
  for (let i = 0; i < 5; i++) t.is((await apply(a, slice('web-1', 'web', [`10.244.1.${i + 1}`]))).status, 200);
  // the database file alone (without its WAL) holds the rows once the thread checkpointed them
  const copy = mkdtempSync(join(tmpdir(), 'wdp-state-copy-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  let rows = [];
  for (let i = 0; i < 50; i++) {
    await store.checkpoint();
    copyFileSync(join(dir, 'state.db'), join(copy, 'state.db'));
    const c = new Database(join(copy, 'state.db'), { readonly: true });
    try { rows = c.prepare('SELECT kind, key, body FROM objects ORDER BY kind, key').all(); } finally { c.close(); }
    if (rows.length === 2 && rows[0].body.includes('10.244.1.5')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.deepEqual(rows.map((r) => `${r.kind} ${r.key}`), ['EndpointSlice shop/web-1', 'Service shop/web']);
  t.true(rows[0].body.includes('10.244.1.5'), 'the last commit is in the database file');
  await a.close();
  const b = await server(t, dir);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
});

test('close() resolves only once the writer thread closed its connection: the store files no longer change (no WAL left)', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5']), svc('api', '10.96.0.11')])).status, 200);
  t.true(existsSync(join(dir, 'state.db-wal')), 'the WAL exists while both connections are open');
  // the API's close closes the store; the thread's connection is the last: its close removes the WAL
  await a.cp.close();
  t.false(existsSync(join(dir, 'state.db-wal')), 'no WAL once close() resolved');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web']);
});

test('a prestarted writer thread opens its connection before any write; a small write does not wait for it, a large one goes through it', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const store = a.cp.core.store;
  store.prestartWriter();
  const writer = store.writerThreadForTests;
  t.not(writer, null, 'the thread was started');
  t.false(store.stagingBusy, 'its open is not a write in flight');
  store.prestartWriter();
  t.is(store.writerThreadForTests.threadForTests, writer.threadForTests, 'a second prestart starts no second thread');
  // the thread's connection shows as a second open handle on the database file once it opened
  const opened = () => readdirSync(`/proc/${process.pid}/fd`).filter((fd) => { try { return readlinkSync(`/proc/${process.pid}/fd/${fd}`) === join(dir, 'state.db'); } catch { return false; } }).length;
  let n = 0;
  for (let i = 0; i < 100 && (n = opened()) < 1; i++) await new Promise((r) => setTimeout(r, 50));
  t.is(n, 1, 'the writer thread\'s connection: the store\'s only one (the start\'s read-only one closed)');
  t.is((await apply(a, slice('web-1', 'web', ['10.244.1.5']))).status, 200, 'one row: committed by the thread too');
  t.is((await apply(a, [svc('web', '10.96.0.10'), svc('api', '10.96.0.11')])).status, 200);
  t.is(store.writerThreadForTests.threadForTests, writer.threadForTests, 'the large write went through the prestarted thread');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web']);
  await a.close();
  t.false(existsSync(join(dir, 'state.db-wal')), 'closed like a thread that wrote');
});

test('a writer thread whose connection failed to open part-way (prestart) opens it again for the first stage', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  new Database(path).close(); // a database without the store's table yet: the thread's open fails at its statements
  const writer = new StoreWriterThread({ path, busyTimeoutMs: 200, cacheKiB: 1024 });
  t.teardown(() => writer.close());
  writer.prestart();
  await writer.request({ op: 'checkpoint' }).catch(() => undefined); // (after the open: the thread answers in order)
  const db = new Database(path);
  db.exec(`CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (kind, key));
           CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  db.close();
  const body = JSON.stringify({ kind: 'Service' });
  const staged = await writer.request({ op: 'stage', kinds: Uint8Array.of(0), keys: 'shop/web', keyEnds: Int32Array.of(8), text: '', starts: Int32Array.of(-1), ends: new Int32Array(1), bodies: [body], removeKinds: [], removeKeys: [], meta: [] });
  t.is(staged.rows, 1);
  await writer.request({ op: 'commit' });
  await writer.close(); // (its connection holds the database for itself)
  const check = new Database(path, { readonly: true });
  t.deepEqual(check.prepare('SELECT kind, key FROM objects').all(), [{ kind: 'Service', key: 'shop/web' }]);
  check.close();
});

test('a staged write commits the store revision in its own transaction: the revision never lags the rows it names', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  const r0 = s.revision();
  // (this thread has no connection: whatever moves the revision is the thread's commit)
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/web', raw: svc('web', '10.96.0.10') }], remove: [] }).commit();
  t.deepEqual(storedRows(dir), ['Service shop/web']);
  const n0 = Number(r0.split(':')[1]);
  t.is(s.revision(), `${r0.split(':')[0]}:${n0 + 1}`);
  t.is(peekRevision(dir), s.revision(), 'the file names the revision of the rows it holds');
  // an aborted write moves neither
  const aborted = s.stage({ upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] });
  aborted.abort();
  await s.writerThreadForTests.idle();
  t.deepEqual(storedRows(dir), ['Service shop/web']);
  t.is(peekRevision(dir), s.revision());
  s.commit({ upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] });
  t.is(s.revision(), `${r0.split(':')[0]}:${n0 + 2}`, 'the next commit counts on from the staged one');
  t.is(peekRevision(dir), s.revision());
});

// (Buffer.from of a short string takes a slice of Node's shared pool, which cannot move: copied)
for (const [what, bytes] of [['a string', null], ['ASCII bytes of the shared pool, copied', 'pooled'], ['ASCII bytes of their own, moved to the thread', 'own']]) test(`a staged write stores every row as given: keys of any length, the empty NodeConfig key, bodies from the text (${what}) and serialised ones`, async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  const a = svc('a', '10.96.0.10'), long = svc('x'.repeat(200), '10.96.0.11'), sl = slice('a-1', 'a', ['10.244.1.5']);
  const str = ` [${JSON.stringify(a)},${JSON.stringify(sl)}]`;
  const text = bytes === 'pooled' ? Buffer.from(str, 'latin1') : bytes === 'own' ? Buffer.alloc(str.length, str, 'latin1') : str;
  const at = (o) => ({ text, start: str.indexOf(JSON.stringify(o)), end: str.indexOf(JSON.stringify(o)) + JSON.stringify(o).length });
  const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: {} };
  await s.stage({ upsert: [
    { kind: 'Service', key: 'shop/a', raw: a, source: at(a) },
    { kind: 'Service', key: `shop/${'x'.repeat(200)}`, raw: long },
    { kind: 'NodeConfig', key: '', raw: node },
    { kind: 'EndpointSlice', key: 'shop/a-1', raw: sl, source: at(sl) },
  ], remove: [] }).commit();
  const db = copyDb(dir);
  t.teardown(() => db.close());
  const rows = Object.fromEntries(db.prepare('SELECT kind, key, body FROM objects').all().map((r) => [`${r.kind} ${r.key}`, JSON.parse(r.body)]));
  t.deepEqual(rows, { 'Service shop/a': a, [`Service shop/${'x'.repeat(200)}`]: long, 'NodeConfig ': node, 'EndpointSlice shop/a-1': sl });
  // every row is TEXT, whether its body was bound as a string or as bytes, and matches its CRC-32
  t.deepEqual(db.prepare('SELECT DISTINCT typeof(body) AS t FROM objects').all(), [{ t: 'text' }]);
  for (const r of db.prepare('SELECT kind, key, body, crc FROM objects').all()) t.is(crc32(r.body), r.crc, `${r.kind} ${r.key}`);
  if (bytes) t.is(text.length, bytes === 'own' ? 0 : str.length, bytes === 'own' ? 'moved, not copied' : 'copied, left as they were');
});

// A body's bytes move to the thread with the first large stage that holds them: a second write
// over the same bytes (none does today; a retry that kept the request's objects would) must be
// refused, not store empty bodies or wait forever for a message the thread could not read.
for (const rows of [1, 1000]) test(`bytes already handed over are refused by a later write (${rows === 1 ? 'staged on the thread' : 'committed on this thread'}), and the stored row stays`, async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  const a = svc('a', '10.96.0.10'), str = JSON.stringify(a);
  const text = Buffer.alloc(str.length, str, 'latin1');
  const w = { upsert: [{ kind: 'Service', key: 'shop/a', raw: a, source: { text, start: 0, end: str.length } }], remove: [] };
  await s.stage(w).commit();
  t.is(text.length, 0, 'moved');
  const rev = s.revision();
  s.stageOnThreadRows = rows;
  const again = (async () => s.stage(w).commit())();
  await t.throwsAsync(within(again, 10_000, () => { throw new Error('no answer in 10 s'); }), { message: /past|handed over/ });
  t.is(s.revision(), rev);
  const db = copyDb(dir);
  t.teardown(() => db.close());
  t.deepEqual(db.prepare('SELECT body FROM objects').all().map((r) => JSON.parse(r.body)), [a]);
});

test('a request the thread cannot be sent (a detached buffer) rejects and leaves nothing in flight', async (t) => {
  const dir = stateDir(t);
  const writer = new StoreWriterThread({ path: join(dir, 'w.db'), busyTimeoutMs: 1000, cacheKiB: 1024 });
  t.teardown(() => writer.close());
  const ab = new ArrayBuffer(8), view = new Uint8Array(ab);
  structuredClone(ab, { transfer: [ab] });
  // (the DataCloneError is a DOMException: not an Error to t.throwsAsync)
  const sent = writer.request({ op: 'stage', kinds: Uint8Array.of(0), keys: 'a/b', keyEnds: Int32Array.of(3), text: view, starts: Int32Array.of(0), ends: Int32Array.of(2), bodies: [], removeKinds: [], removeKeys: [], meta: [] });
  t.regex(await sent.then(() => 'sent', (e) => e.message), /detached/);
  t.false(writer.busy);
});

// A message that cannot be deserialised leaves a request nothing answers: the apply must fail with
// a clear error, not wait forever. Node raises 'messageerror' for it; no message of the store's
// kinds fails to deserialise on demand, so the tests raise the event where Node would.
const oneRow = (key) => ({ op: 'stage', kinds: Uint8Array.of(0), keys: key, keyEnds: Int32Array.of(key.length), text: '', starts: Int32Array.of(-1), ends: new Int32Array(1), bodies: [JSON.stringify({ kind: 'Service' })], removeKinds: [], removeKeys: [], meta: [] });
const withTimeout = (p, ms = 10_000) => within(p, ms, () => { throw new Error(`no answer in ${ms} ms`); });

test('an answer of the writer thread that cannot be read fails the request in flight clearly, drops its write, and the next write gets a new thread', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/web', raw: svc('web', '10.96.0.10') }], remove: [] }).commit(); // (starts the thread)
  const writer = s.writerThreadForTests, first = writer.threadForTests;
  const rev = s.revision();
  const staged = s.stage({ upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] });
  // (whether the stage's own answer came before the thread stopped or not: the commit fails with the reason)
  first.emit('messageerror', new Error('simulated: the answer could not be deserialised'));
  // a request sent now goes to a new thread, and the old one's exit does not take it along
  const onNew = writer.request({ op: 'checkpoint' });
  t.not(writer.threadForTests, first);
  await t.throwsAsync(withTimeout(staged.commit()), { message: /the store writer thread stopped (before the commit )?\(an answer of the thread could not be read: simulated: the answer could not be deserialised\): nothing of the write was kept/ });
  t.is(s.revision(), rev);
  await t.notThrowsAsync(withTimeout(onNew));
  t.deepEqual(storedRows(dir), ['Service shop/web'], 'nothing of the write');
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/db', raw: svc('db', '10.96.0.12') }], remove: [] }).commit();
  t.deepEqual(storedRows(dir), ['Service shop/db', 'Service shop/web']);
});

/** Starts `s`'s writer thread; the next stage's answer goes through, the commit's (the one after
 * it) arrives unreadable. */
function loseTheCommitAnswer(s) {
  s.prestartWriter();
  const w = s.writerThreadForTests.threadForTests;
  const deliver = w.listeners('message');
  w.removeAllListeners('message');
  let staged = false;
  w.on('message', (r) => {
    if (staged) return void w.emit('messageerror', new Error('simulated'));
    staged = r.rows > 0; // (the prestart's open answers first, with no rows)
    for (const l of deliver) l.call(w, r);
  });
  return w;
}

/** Makes reads of `s`'s revision row fail while `fault.on` (an I/O error on the writer thread's
 * connection, which reads it: StateStore.readRevision, private). */
function failRevisionReads(s) {
  const fault = { on: true }, read = s.readRevision.bind(s), readAsync = s.readRevisionAsync.bind(s);
  s.readRevision = () => {
    if (fault.on) throw new Error('simulated: disk I/O error');
    return read();
  };
  s.readRevisionAsync = async () => {
    if (fault.on) throw new Error('simulated: disk I/O error');
    return readAsync();
  };
  return fault;
}

test('a commit begun after the stage answered is posted to the thread within the commit() call (the caller\'s synchronous work after it does not hold it back)', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  s.prestartWriter();
  const staged = s.stage({ upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] });
  await withTimeout(s.writerThreadForTests.idle()); // (the stage answered)
  const w = s.writerThreadForTests.threadForTests;
  const posted = [], post = w.postMessage.bind(w);
  w.postMessage = (m, tr) => { posted.push(m.op); return post(m, tr); };
  const committing = staged.commit();
  t.deepEqual(posted, ['commit'], 'the COMMIT went to the thread before commit() returned');
  t.is((await withTimeout(committing)).rows, 1);
  t.deepEqual(storedRows(dir), ['Service shop/api']);
});

test('a commit whose answer cannot be read, but which the thread made durable, is reported committed', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  loseTheCommitAnswer(s);
  const rev = s.revision();
  const stats = await withTimeout(s.stage({ upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] }).commit());
  t.is(stats.rows, 1);
  t.is(s.revision(), `${rev.split(':')[0]}:${Number(rev.split(':')[1]) + 1}`);
  t.deepEqual(storedRows(dir), ['Service shop/api']);
  t.is(peekRevision(dir), s.revision());
});

const revPlus = (rev, k) => `${rev.split(':')[0]}:${Number(rev.split(':')[1]) + k}`;
const apiRow = { upsert: [{ kind: 'Service', key: 'shop/api', raw: svc('api', '10.96.0.11') }], remove: [] };
const undoApi = () => ({ upsert: [], remove: [{ kind: 'Service', key: 'shop/api' }] });

test('a commit whose answer is lost and whose revision cannot be read back is reported uncertain, not failed; once readable, the store puts the previous objects back before the next write', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  s.commit({ upsert: [{ kind: 'Service', key: 'shop/web', raw: svc('web', '10.96.0.10') }], remove: [] });
  loseTheCommitAnswer(s);
  const rev = s.revision();
  const fault = failRevisionReads(s);
  const e = await t.throwsAsync(withTimeout(s.stage(apiRow, undoApi).commit()), { instanceOf: StoreStateUncertain });
  t.regex(e.message, /the store's state is uncertain: the store writer thread stopped \(an answer of the thread could not be read: simulated\) after the commit was sent, and .*state\.db's revision, which tells whether it is durable, cannot be read \(simulated: disk I\/O error\)/);
  t.is(s.revision(), null, 'no revision while what the store holds is not known (no table image is stamped with one)');
  t.deepEqual(storedRows(dir), ['Service shop/api', 'Service shop/web'], 'the commit was durable after all');
  // while the revision cannot be read, every write (a probe, a small or a staged one) is refused
  t.throws(() => s.probe(), { instanceOf: StoreStateUncertain, message: /writes are refused until it can be read/ });
  t.throws(() => s.commit(apiRow), { instanceOf: StoreStateUncertain });
  await t.throwsAsync(withTimeout(s.stage({ upsert: [{ kind: 'Service', key: 'shop/db', raw: svc('db', '10.96.0.12') }], remove: [] }).commit()), { instanceOf: StoreStateUncertain }, 'a stage is refused at its commit');
  fault.on = false;
  s.probe(); // (healthz's probe settles it)
  t.deepEqual(storedRows(dir), ['Service shop/web'], 'the refused write was undone');
  t.is(s.revision(), revPlus(rev, 2), 'the durable commit and its undo');
  t.is(peekRevision(dir), s.revision());
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/db', raw: svc('db', '10.96.0.12') }], remove: [] }).commit();
  t.deepEqual(storedRows(dir), ['Service shop/db', 'Service shop/web']);
});

test('an apply whose commit outcome is not known is refused and undone everywhere: healthz 503 and applies refused until the store is readable, then the store holds what the daemon kept', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  const store = a.cp.core.store;
  loseTheCommitAnswer(store);
  const fault = failRevisionReads(store);
  const r = await apply(a, [svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.9'])]);
  t.is(r.status, 500);
  t.regex(r.json.message, /saving the desired state failed \(nothing applied; the dataplane was restored to the previous state\): the store's state is uncertain/);
  t.deepEqual(frontends(a.dp), ['shop/web']);
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/api', 'Service shop/web'], 'durable after all');
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 503);
  const again = await apply(a, [svc('db', '10.96.0.12'), svc('db2', '10.96.0.13')]);
  t.is(again.status, 500);
  t.regex(again.json.message, /uncertain/);
  fault.on = false;
  // (healthz waits 0.5 s for its probe — here a new writer thread's boot, the revision read, the
  // undo — and a later healthz takes the answer of one that came later: a loaded node may take two)
  let healthz = 0;
  for (let i = 0; i < 50 && healthz !== 200; i++) { if (i) await new Promise((r) => setTimeout(r, 100)); healthz = (await fetch(a.cp.healthzUrl + '/healthz')).status; }
  t.is(healthz, 200, 'the probe settles it');
  t.deepEqual(storedRows(dir), ['EndpointSlice shop/web-1', 'Service shop/web'], 'the refused change was undone in the store');
  const db = copyDb(dir);
  t.teardown(() => db.close());
  t.is(JSON.parse(db.prepare("SELECT body FROM objects WHERE kind = 'EndpointSlice'").get().body).endpoints[0].addresses[0], '10.244.1.5');
  t.is((await apply(a, [svc('api', '10.96.0.11'), svc('db', '10.96.0.12')])).status, 200);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'db', 'web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
});

test('a commit sent to a thread that stopped before making it durable, the revision unreadable: uncertain, then settled as not committed (nothing to undo)', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  s.prestartWriter();
  const w = s.writerThreadForTests.threadForTests;
  // the commit is posted (so its outcome is not known here) but the thread never gets it: it stops
  const post = w.postMessage.bind(w);
  w.postMessage = (m, tr) => { if (m.op === 'commit') { void w.terminate(); return; } post(m, tr); };
  const rev = s.revision();
  const fault = failRevisionReads(s);
  await t.throwsAsync(withTimeout(s.stage(apiRow, undoApi).commit()), { instanceOf: StoreStateUncertain, message: /the store writer thread stopped \(exit code 1\) after the commit was sent/ });
  t.is(s.revision(), null);
  fault.on = false;
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/db', raw: svc('db', '10.96.0.12') }], remove: [] }).commit(); // (settles first)
  t.deepEqual(storedRows(dir), ['Service shop/db']);
  t.is(s.revision(), revPlus(rev, 1), 'the lost commit made no revision, and no undo was written');
});

test('a commit the thread never got (it stopped before it was sent) is a plain failure: nothing was committed, no revision read needed', async (t) => {
  const dir = stateDir(t);
  const s = stagingStore(t, dir);
  s.prestartWriter();
  const rev = s.revision();
  const staged = s.stage(apiRow, undoApi);
  await s.writerThreadForTests.idle(); // (the stage answered)
  s.writerThreadForTests.threadForTests.emit('messageerror', new Error('simulated'));
  failRevisionReads(s);
  const e = await t.throwsAsync(withTimeout(staged.commit()), { message: /stopped before the commit .*nothing of the write was kept/ });
  t.false(e instanceof StoreStateUncertain);
  t.is(s.revision(), rev);
});

test('a writer thread that stopped but has not exited yet counts as busy: healthz answers at once (503) instead of probing into its write lock', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const core = a.cp.core, store = core.store;
  t.is((await apply(a, [svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  const writer = store.writerThreadForTests, w = writer.threadForTests;
  // a staged write holds the database's write lock in the thread's connection
  await withTimeout(writer.request(oneRow('shop/x')));
  let probes = 0;
  const probe = store.probeAsync.bind(store);
  store.probeAsync = () => { probes++; return probe(); };
  core.persistError = 'simulated: an earlier save failed';
  const exited = new Promise((resolve) => w.once('exit', resolve));
  w.emit('messageerror', new Error('simulated')); // (the thread is being terminated: not exited yet)
  t.true(store.stagingBusy);
  t.false(await core.persistOk());
  t.is(probes, 0, 'no probe while the stopping thread may still hold the lock');
  await withTimeout(exited);
  t.false(store.stagingBusy);
  // the next probe boots a new writer thread (~0.1–0.2 s, more on a loaded machine, where it may
  // outlast healthz's 0.5 s wait): booted first by probes not counted, so the one counted below
  // measures the lock, not the boot
  for (let k = 0; k < 50 && (await probe()) !== null; k++) await new Promise((r) => setTimeout(r, 100));
  t.true(await core.persistOk(), 'once it exited the probe goes through (its lock went with it)');
  t.is(probes, 1);
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 200);
});

test('a request the writer thread cannot read: it drops its staged write, says why and exits; every request in flight fails with that reason', async (t) => {
  const dir = stateDir(t);
  const path = join(dir, 'state.db');
  const s = new StateStore(dir);
  s.open();
  s.close();
  // the thread's own module, in a thread whose test port can raise 'messageerror' on its parentPort
  const { Worker, MessageChannel } = await import('node:worker_threads');
  const { port1, port2 } = new MessageChannel();
  const entry = new URL('../dist/src/state/store-writer-thread.js', import.meta.url).href;
  const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
    workerData.test.on('message', () => parentPort.emit('messageerror', new Error('simulated: the request could not be deserialised')));
    import(${JSON.stringify(entry)}).then(() => workerData.test.postMessage('ready'));`,
  { eval: true, workerData: { path, busyTimeoutMs: 200, cacheKiB: 1024, test: port2 }, transferList: [port2] });
  t.teardown(() => { port1.close(); return w.terminate(); });
  const answers = [];
  w.on('message', (r) => answers.push(r));
  const exited = new Promise((resolve) => w.once('exit', resolve));
  await new Promise((resolve) => port1.once('message', resolve));
  w.postMessage({ ...oneRow('shop/web'), id: 1 });
  for (let i = 0; i < 200 && !answers.length; i++) await new Promise((r) => setTimeout(r, 25));
  t.like(answers[0], { id: 1, ok: true, rows: 1 }, 'staged: its transaction holds the write lock');
  port1.postMessage('lose the next request');
  t.is(await withTimeout(exited), 1);
  t.like(answers[1], { id: 0, ok: false });
  t.regex(answers[1].error, /a request to the thread could not be read: simulated: the request could not be deserialised/);
  // the staged rows are gone and the lock is free: a write on another connection goes through at once
  const db = new Database(path);
  t.teardown(() => db.close());
  db.pragma('busy_timeout = 0');
  t.deepEqual(db.prepare('SELECT key FROM objects').all(), []);
  t.notThrows(() => db.exec("INSERT INTO meta (key, value) VALUES ('x', 'y')"));
});

/** A StoreWriterThread of its own on an empty store, closed when the test ends. */
function bareWriter(t) {
  const dir = stateDir(t);
  const s = new StateStore(dir);
  s.open();
  s.close();
  const writer = new StoreWriterThread({ path: join(dir, 'state.db'), busyTimeoutMs: 200, cacheKiB: 1024 });
  t.teardown(() => writer.close());
  return writer;
}

test('the writer thread\'s reason for exiting is what the requests in flight are rejected with', async (t) => {
  const writer = bareWriter(t);
  const pending = writer.request(oneRow('shop/web'));
  const w = writer.threadForTests;
  // what the thread posts before it exits when it could not read a request, then its exit
  w.emit('message', { id: 0, ok: false, error: 'a request to the thread could not be read: simulated' });
  await w.terminate();
  await t.throwsAsync(withTimeout(pending), { message: /the store writer thread stopped \(a request to the thread could not be read: simulated\): nothing of the write was kept/ });
  t.false(writer.busy);
});

test('a writer thread that failed with an error keeps that reason once it exited: a later commit for its write names it, not the exit code', async (t) => {
  const writer = bareWriter(t);
  const pending = writer.request(oneRow('shop/web'));
  const w = writer.threadForTests, thread = writer.threadNo;
  w.emit('error', new Error('simulated: the thread threw'));
  await t.throwsAsync(withTimeout(pending), { message: /stopped \(simulated: the thread threw\)/ });
  await w.terminate(); // (its 'exit' follows the error)
  await t.throwsAsync(writer.request({ op: 'commit' }, thread), { instanceOf: NotSentError, message: /stopped before the commit \(simulated: the thread threw\)/ });
  t.false(writer.busy);
});
