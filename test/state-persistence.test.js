// Desired state in the SQLite store (src/state/store.ts): survives a real restart (a new server on
// the same state dir, a new core); an apply writes only what it changes; a damaged store fails
// start naming the problem and deletes nothing; a state.json of the previous format is migrated;
// a store that stops taking writes refuses applies and turns healthz red until it recovers.
import test from 'ava';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { createControlPlane } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { StateStore } from '../dist/src/state/store.js';
import { startControlPlane } from './lib/server.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const server = (t, dir, extra = {}) => startControlPlane(t, { healthz: '127.0.0.1:0', stateDir: dir, ...extra });

const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }],
});
const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'], routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }] } };
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name);
const trace = async (req, dst) => (await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.1', dst, proto: 'TCP', dport: 80 }))).json;
const dirListing = (dir) => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
/** The store's files and rows (SQLite may fold its WAL into the file when a connection closes: the
 * same rows, other bytes). */
function storeContent(dir) {
  const db = new Database(join(dir, 'state.db'), { readonly: true });
  try { return { files: readdirSync(dir).filter((f) => !/-(wal|shm)$/.test(f)).sort(), rows: db.prepare('SELECT * FROM objects ORDER BY kind, key').all() }; } finally { db.close(); }
}

test('state survives a restart: objects, node config and programmed dataplane; files are private', async (t) => {
  const parent = stateDir(t);
  const dir = join(parent, 'a', 'state'); // created by the server
  const a = await server(t, dir);
  t.is(statSync(dir).mode & 0o777, 0o700);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify([node, svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])]))).status, 200);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  t.is((await a.req('DELETE', '/api/v1/namespaces/shop/services/api')).status, 200);
  const irBefore = [...a.dp.core.ir.frontends.values()].map((f) => [f.id, f.addr, f.port]);
  await a.close();
  t.is(statSync(join(dir, 'state.db')).mode & 0o777, 0o600);

  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']);
  t.is((await b.req('GET', '/api/v1/nodeconfig')).json.metadata.name, 'node-a');
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
  t.deepEqual([...b.dp.core.ir.frontends.values()].map((f) => [f.id, f.addr, f.port]), irBefore);
  const tr = await trace(b.req, '10.96.0.10');
  t.is(tr.verdict, 'forward');
  t.is(tr.backend.addr, '10.244.1.5');
  t.like((await b.req('GET', '/api/v1/state')).json, { restoredFrom: 'store', restoreProblems: [] });
});

test('an apply writes only the objects it changes, whatever the size of the state', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const objs = [];
  for (let i = 0; i < 300; i++) objs.push(svc(`s${i}`, `10.96.${i >> 7}.${(i & 127) + 1}`), slice(`s${i}-1`, `s${i}`, [`10.244.${i >> 7}.${(i & 127) + 1}`]));
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(objs))).status, 200);
  const store = a.cp.core.store;
  t.is(store.lastCommit.rows, 600);
  const r = await a.req('POST', '/api/v1/apply', JSON.stringify(slice('s5-1', 's5', ['10.244.9.9'])));
  t.is(r.status, 200);
  t.deepEqual(store.lastCommit.rows, 1);
  t.true(store.lastCommit.bytes < 1000, `${store.lastCommit.bytes} bytes for one slice`);
  t.is((await a.req('DELETE', '/api/v1/namespaces/shop/endpointslices/s5-1')).status, 200);
  t.is(store.lastCommit.rows, 1);
  // an unchanged re-apply writes nothing at all
  const before = store.lastCommit;
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('s7', '10.96.0.8')))).json.objects[0].action, 'unchanged');
  t.is(store.lastCommit, before);
});

test('a store that is not a database fails start with a clear error; nothing is deleted or changed', async (t) => {
  const dir = stateDir(t);
  writeFileSync(join(dir, 'state.db'), 'SQLite format 3\u0000 but then garbage '.repeat(200));
  const before = dirListing(dir);
  const err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '127.0.0.1:0', healthz: false, stateDir: dir }));
  t.is(err.name, 'StateError');
  t.regex(err.message, /state\.db: .*Nothing was deleted or changed/s);
  t.deepEqual(dirListing(dir), before);
});

test('a damaged or no-longer-valid object fails start naming it; the store is untouched', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify([svc('web', '10.96.0.10'), svc('api', '10.96.0.11')]))).status, 200);
  await a.close();
  // a changed byte (the checksum no longer matches)
  let db = new Database(join(dir, 'state.db'));
  db.prepare("UPDATE objects SET body = replace(body, '10.96.0.11', '10.96.0.12') WHERE key = 'shop/api'").run();
  db.close();
  let before = storeContent(dir);
  let err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '127.0.0.1:0', healthz: false, stateDir: dir }));
  t.regex(err.message, /damaged object: Service shop\/api: checksum mismatch/);
  t.deepEqual(storeContent(dir), before);
  // a consistent row whose content is invalid (what a stricter wdp would find)
  db = new Database(join(dir, 'state.db'));
  const body = JSON.stringify(svc('api', '127.0.0.1'));
  db.prepare("UPDATE objects SET body = ?, crc = ? WHERE key = 'shop/api'").run(body, crc32(body));
  db.close();
  before = storeContent(dir);
  err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '127.0.0.1:0', healthz: false, stateDir: dir }));
  t.regex(err.message, /do not validate: Service shop\/api: spec\.clusterIP: .*loopback/);
  t.deepEqual(storeContent(dir), before);
});

function writeLegacy(path, state) {
  const payload = JSON.stringify(state);
  const sha = createHash('sha256').update(payload).digest('hex');
  writeFileSync(path, `{"format":"wdp-desired-state","version":1,"savedAt":"2026-01-01T00:00:00.000Z","sha256":"${sha}","state":${payload}}\n`);
}

test('a state.json of the previous format is migrated once, and kept', async (t) => {
  const dir = stateDir(t);
  writeLegacy(join(dir, 'state.json'), { services: [svc('web', '10.96.0.10')], endpointSlices: [slice('web-1', 'web', ['10.244.1.5'])], node });
  writeLegacy(join(dir, 'state.json.bak'), { services: [], endpointSlices: [], node: null });
  const a = await server(t, dir);
  t.deepEqual(await names(a.req), ['web']);
  const st = (await a.req('GET', '/api/v1/state')).json;
  t.is(st.restoredFrom, 'migrated');
  t.regex(st.restoreProblems.join('\n'), /migrated 3 objects from .*state\.json to .*state\.db/);
  t.true(existsSync(join(dir, 'state.json.migrated')));
  t.true(existsSync(join(dir, 'state.json.bak.migrated')));
  t.false(existsSync(join(dir, 'state.json')));
  t.is((await trace(a.req, '10.96.0.10')).backend.addr, '10.244.1.5');
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'web']);
  t.is((await b.req('GET', '/api/v1/state')).json.restoredFrom, 'store');
});

test('migration: a truncated state.json falls back to its backup, keeps the bad file, and says so', async (t) => {
  const dir = stateDir(t);
  writeLegacy(join(dir, 'state.json'), { services: [svc('web', '10.96.0.10'), svc('api', '10.96.0.11')], endpointSlices: [], node: null });
  writeLegacy(join(dir, 'state.json.bak'), { services: [svc('web', '10.96.0.10')], endpointSlices: [], node: null });
  const text = readFileSync(join(dir, 'state.json'), 'utf8');
  writeFileSync(join(dir, 'state.json'), text.slice(0, text.length >> 1));
  const a = await server(t, dir);
  t.deepEqual(await names(a.req), ['web']);
  t.regex((await a.req('GET', '/api/v1/state')).json.restoreProblems.join('\n'), /not valid JSON.*kept it as .*state\.json\.corrupt-.*migrated 1 objects from .*state\.json\.bak/s);
});

test('migration: no usable state.json and no backup fails start, deleting nothing', async (t) => {
  const dir = stateDir(t);
  writeFileSync(join(dir, 'state.json'), '{"format":"wdp-desired-state","vers');
  const err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '127.0.0.1:0', healthz: false, stateDir: dir }));
  t.is(err.name, 'StateError');
  t.regex(err.message, /state\.json is not valid JSON.*no backup/s);
  t.true(readdirSync(dir).some((f) => f.startsWith('state.json.corrupt-')));
  t.false(existsSync(join(dir, 'state.db')));
});

test('a store that stops taking writes: applies refused and rolled back, healthz 503 and metrics say so, then it recovers', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('web', '10.96.0.10')))).status, 200);
  const gen = a.dp.generation();
  // no other connection can take the database while the store has it open (its connection holds
  // it in locking_mode=EXCLUSIVE): a stuck backup tool or a second daemon cannot block its writes
  const other = new Database(join(dir, 'state.db'), { timeout: 0 });
  let busy = null;
  try { other.exec('BEGIN EXCLUSIVE'); } catch (e) { busy = e.code; }
  t.is(busy, 'SQLITE_BUSY');
  other.close();
  // the log made immutable: every write to it fails (EPERM, even for root), as on a failing disk
  const wal = join(dir, 'state.db-wal');
  if (spawnSync('chattr', ['+i', wal]).status !== 0) { t.log('chattr +i is not supported here: the failing part not run'); await a.close(); return; }
  t.teardown(() => spawnSync('chattr', ['-i', wal]));
  const r = await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')));
  t.is(r.status, 500);
  t.regex(r.json.message, /saving the desired state failed \(nothing applied; the dataplane was restored/);
  t.deepEqual(await names(a.req), ['web']);
  t.deepEqual([...a.dp.core.ir.frontends.values()].map((f) => f.service), ['shop/web']);
  t.is((await trace(a.req, '10.96.0.11')).verdict, 'to_host');
  t.true(a.dp.generation() >= gen);
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 503);
  let metrics = await (await fetch(a.cp.url + '/metrics')).text();
  t.regex(metrics, /^wdp_state_store_writable 0$/m);
  t.regex(metrics, /^wdp_state_save_failures_total 1$/m);
  t.is(spawnSync('chattr', ['-i', wal]).status, 0);
  t.is((await fetch(a.cp.healthzUrl + '/healthz')).status, 200, 'healthz probes the store and sees it writable again');
  metrics = await (await fetch(a.cp.url + '/metrics')).text();
  t.regex(metrics, /^wdp_state_store_writable 1$/m);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  await a.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['api', 'web']);
});

test('a saved state without a node config is restored with the configured one', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify([svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])]))).status, 200);
  await a.close();
  // restart the way the daemon does: its config's node config, the store for the rest
  const b = await server(t, dir, { node });
  t.is((await b.req('GET', '/api/v1/nodeconfig')).json.metadata.name, 'node-a');
  const backends = [...b.dp.core.ir.backends.values()];
  t.is(backends.length, 1);
  t.is(backends[0].outPort, 1, 'the configured node config resolved the backend\'s next hop');
  t.deepEqual([...b.dp.core.ir.frontends.values()].map((f) => f.addr), ['10.96.0.10']);
  // and saved: an apply of the same node config (the daemon's first program) is unchanged and
  // saves nothing, yet a restart takes the saved one as the node last seen (the Kubernetes API
  // server away; the table images' key)
  t.is((await b.req('POST', '/api/v1/apply', JSON.stringify(node))).json.objects[0].action, 'unchanged');
  await b.close();
  // (peeked as the start does, the store closed: the running store's connection holds it)
  t.like(StateStore.peek(dir).node, { kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'] } });
  const c = await server(t, dir);
  t.is((await c.req('GET', '/api/v1/nodeconfig')).json.metadata.name, 'node-a', 'restored from the store alone');
});

test('a change the dataplane refuses is not kept in the store either (it was committed alongside, then undone)', async (t) => {
  const dir = stateDir(t);
  const dp = new LocalDataplane();
  let refuse = false;
  const apply = dp.apply.bind(dp);
  dp.apply = (...args) => (refuse ? Promise.reject(new Error('table full')) : apply(...args));
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, stateDir: dir });
  const post = async (body) => fetch(cp.url + '/api/v1/apply', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  t.is((await post([svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])])).status, 200);
  refuse = true;
  const r = await post([svc('api', '10.96.0.11'), slice('web-1', 'web', ['10.244.1.6'])]);
  t.is(r.status, 500);
  t.regex((await r.json()).message, /the dataplane refused the change \(nothing applied\): table full/);
  await cp.close();
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
});

test('objects of a JSON array are stored as the client wrote them unless validation pruned them; a restart reads them back the same', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  const pruned = { ...svc('api', '10.96.0.11'), status: {}, spec: { ...svc('api', '10.96.0.11').spec, future: { x: 1 } } };
  // an unusual layout and escapes: still this object's text, and parsed back to the same object
  const webText = '{ "apiVersion":"v1",\n  "kind":"Service", "metadata":{"name":"web","namespace":"shop","annotations":{"note":"caf\\u00e9 1e2"}},"spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":8.0e1,"targetPort":8080}]}}';
  const r = await a.req('POST', '/api/v1/apply', `[${webText} , ${JSON.stringify(pruned)}]`);
  t.is(r.status, 200, r.text);
  const webBefore = (await a.req('GET', '/api/v1/namespaces/shop/services/web')).json;
  await a.close(); // (the running store's connection holds the database for itself)
  const db = new Database(join(dir, 'state.db'), { readonly: true });
  const body = (key) => db.prepare('SELECT body FROM objects WHERE kind = ? AND key = ?').get('Service', key).body;
  t.is(body('shop/web'), webText);
  t.deepEqual(JSON.parse(body('shop/web')), webBefore);
  t.false('future' in JSON.parse(body('shop/api')).spec, 'a pruned object is stored pruned');
  db.close();
  const b = await server(t, dir);
  t.deepEqual((await b.req('GET', '/api/v1/namespaces/shop/services/web')).json, webBefore);
  t.is((await b.req('GET', '/api/v1/namespaces/shop/services/web')).json.metadata.annotations.note, 'café 1e2');
  t.deepEqual(await names(b.req), ['api', 'web']);
});
