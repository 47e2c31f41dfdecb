// Desired state survives a real restart (a new server on the same state dir, a new core), and a
// corrupt or truncated state file is reported, kept, and replaced by the last good copy.
import test from 'ava';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createControlPlane } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { StateStore } from '../dist/src/state/store.js';
import { startControlPlane } from './lib/server.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const server = (t, dir) => startControlPlane(t, { stateDir: dir });

const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }],
});
const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec: { nodeAddresses: ['192.168.0.1'], routes: [{ prefix: '10.244.0.0/16', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' }] } };
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name);
const trace = async (req, dst) => (await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.1', dst, proto: 'TCP', dport: 80 }))).json;

test('state survives a restart: objects, node config and programmed dataplane', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify([node, svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])]))).status, 200);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  t.is((await a.req('DELETE', '/api/v1/namespaces/shop/services/api')).status, 200);
  const irBefore = [...a.dp.core.ir.frontends.values()].map((f) => [f.id, f.addr, f.port]);
  await a.close();
  t.is(statSync(join(dir, 'state.json')).mode & 0o777, 0o600);

  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']);
  t.is((await b.req('GET', '/api/v1/nodeconfig')).json.metadata.name, 'node-a');
  t.is((await b.req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json.endpoints[0].addresses[0], '10.244.1.5');
  t.deepEqual([...b.dp.core.ir.frontends.values()].map((f) => [f.id, f.addr, f.port]), irBefore);
  const tr = await trace(b.req, '10.96.0.10');
  t.is(tr.verdict, 'forward');
  t.is(tr.backend.addr, '10.244.1.5');
  t.like((await b.req('GET', '/api/v1/state')).json, { restoredFrom: 'primary', restoreProblems: [] });
});

/** A server that applied web, then api (two saves: state.json holds both, state.json.bak web
 * only), stopped again; returns the primary state file's path. */
async function savedWebThenApi(t, dir) {
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('web', '10.96.0.10')))).status, 200);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  await a.close();
  return join(dir, 'state.json');
}

test('truncated state file: the backup is restored, the bad file kept, the problem reported', async (t) => {
  const dir = stateDir(t);
  const primary = await savedWebThenApi(t, dir);
  const text = readFileSync(primary, 'utf8');
  writeFileSync(primary, text.slice(0, Math.floor(text.length / 2)));

  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']); // the state before the last apply: the last good copy
  const st = (await b.req('GET', '/api/v1/state')).json;
  t.is(st.restoredFrom, 'backup');
  t.regex(st.restoreProblems.join('\n'), /state\.json is not valid JSON \(truncated or corrupt\).*kept it as .*state\.json\.corrupt-/s);
  t.regex(st.restoreProblems.join('\n'), /restored the previous good state from .*state\.json\.bak/);
  const kept = readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'));
  t.is(kept.length, 1);
  t.is(readFileSync(join(dir, kept[0]), 'utf8'), text.slice(0, Math.floor(text.length / 2)));
  t.is(await trace(b.req, '10.96.0.10').then((x) => x.verdict), 'reject'); // programmed: known service, no endpoints
  // the next apply writes a fresh primary again
  t.is((await b.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  await b.close();
  const c = await server(t, dir);
  t.deepEqual(await names(c.req), ['api', 'web']);
  t.is((await c.req('GET', '/api/v1/state')).json.restoredFrom, 'primary');
});

test('edited state file (checksum mismatch) is detected', async (t) => {
  const dir = stateDir(t);
  const primary = await savedWebThenApi(t, dir);
  writeFileSync(primary, readFileSync(primary, 'utf8').replace('10.96.0.11', '10.96.0.12'));
  const b = await server(t, dir);
  t.deepEqual(await names(b.req), ['web']);
  t.regex((await b.req('GET', '/api/v1/state')).json.restoreProblems[0], /checksum mismatch/);
});

test('corrupt state without a backup: start fails with a clear error, nothing deleted', async (t) => {
  const dir = stateDir(t);
  writeFileSync(join(dir, 'state.json'), '{"format":"wdp-desired-state","vers');
  const err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '127.0.0.1:0', healthz: false, stateDir: dir }));
  t.is(err.name, 'StateError');
  t.regex(err.message, /state\.json is not valid JSON.*no backup/s);
  t.true(readdirSync(dir).some((f) => f.startsWith('state.json.corrupt-')));
});

test('a state file whose content no longer validates falls back to the backup', (t) => {
  const dir = stateDir(t);
  const store = new StateStore(dir);
  store.save({ services: [svc('web', '10.96.0.10')], endpointSlices: [], node: null });
  store.save({ services: [{ ...svc('bad', '10.96.0.10'), spec: { clusterIP: 'x' } }], endpointSlices: [], node: null });
  const r = store.load((s) => { for (const x of s.services) if (x.spec.clusterIP === 'x') throw new Error('bad clusterIP'); });
  t.is(r.source, 'backup');
  t.is(r.state.services[0].metadata.name, 'web');
  t.regex(r.problems[0], /content does not validate: bad clusterIP/);
});

test('a failed save refuses the apply and leaves dataplane and state unchanged', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('web', '10.96.0.10')))).status, 200);
  const gen = a.dp.generation();
  mkdirSync(join(dir, 'state.json.tmp')); // the temp file cannot be created: a directory is in the way
  const r = await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')));
  t.is(r.status, 500);
  t.regex(r.json.message, /saving the desired state failed \(nothing applied; the dataplane was restored/);
  t.deepEqual(await names(a.req), ['web']);
  t.deepEqual([...a.dp.core.ir.frontends.values()].map((f) => f.service), ['shop/web']);
  t.is((await trace(a.req, '10.96.0.11')).verdict, 'to_host');
  t.true(a.dp.generation() >= gen);
  rmSync(join(dir, 'state.json.tmp'), { recursive: true });
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify(svc('api', '10.96.0.11')))).status, 200);
  t.true(existsSync(join(dir, 'state.json.bak')));
});

test('a saved state without a node config is restored with the configured one', async (t) => {
  const dir = stateDir(t);
  const a = await server(t, dir);
  t.is((await a.req('POST', '/api/v1/apply', JSON.stringify([svc('web', '10.96.0.10'), slice('web-1', 'web', ['10.244.1.5'])]))).status, 200);
  await a.close();
  // restart the way the daemon does: its config's node config, the state file for the rest
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, stateDir: dir, node });
  t.teardown(() => cp.close());
  const r = await fetch(cp.url + '/api/v1/nodeconfig');
  t.is(r.status, 200);
  t.is((await r.json()).metadata.name, 'node-a');
  const backends = [...dp.core.ir.backends.values()];
  t.is(backends.length, 1);
  t.is(backends[0].outPort, 1, 'the configured node config resolved the backend\'s next hop');
  t.deepEqual([...dp.core.ir.frontends.values()].map((f) => f.addr), ['10.96.0.10']);
});
