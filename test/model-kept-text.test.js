// Objects of an apply's JSON array that validation took as they were are kept as their place in
// the request's text, not as parsed objects (src/model/kept-text.ts): whatever reads `raw` (GET,
// lists, the unchanged check, the store, a restart) sees exactly the object applied.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeptSpan, KeptText, keptSpan, sameRaw, compact } from '../dist/src/model/kept-text.js';
import { startControlPlane } from './lib/server.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kept-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const svc = (name, ip, extra = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', ...extra }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true }, nodeName: 'node-a' })), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
const get = async (req, kind, name) => (await req('GET', `/api/v1/namespaces/shop/${kind === 'Service' ? 'services' : 'endpointslices'}/${name}`)).json;

// element texts as a client might write them: odd spacing, escapes, a number written as 8.0e1,
// keys out of order, and (in the second body) a character that is not ASCII
const webText = '{ "kind":"Service","apiVersion":"v1",\n  "metadata":{"namespace":"shop","name":"web","annotations":{"note":"caf\\u00e9 \\"q\\" 1e2"}},"spec":{"ports":[{"name":"http","port":8.0e1,"targetPort":8080}],"clusterIP":"10.96.0.10"}}';
const webSliceText = JSON.stringify(slice('web-1', 'web', ['10.244.1.5', '10.244.1.6']), null, 1);
const apiText = JSON.stringify(svc('api', '10.96.0.11', { annotations: { owner: 'zoë' } }));

test('objects of a JSON array are kept as their text; GET, lists and a restart answer exactly what was applied', async (t) => {
  const dir = stateDir(t);
  const a = await startControlPlane(t, { stateDir: dir });
  const ascii = `[${webText} ,\n${webSliceText}]`;
  t.is((await a.req('POST', '/api/v1/apply', ascii)).status, 200);
  const utf8 = `[${apiText}]`;
  t.is((await a.req('POST', '/api/v1/apply', utf8)).status, 200);
  // kept as text, both when the body is ASCII (its bytes) and when it is not (its decoded text)
  const web = a.cp.core.compiler.getService('shop', 'web');
  t.true(keptSpan(web) instanceof KeptSpan);
  t.false(typeof keptSpan(web).kept.text === 'string', 'an ASCII body is kept as bytes');
  t.is(typeof keptSpan(a.cp.core.compiler.getService('shop', 'api')).kept.text, 'string');
  t.truthy(keptSpan(a.cp.core.compiler.getSlice('shop', 'web-1')));
  const want = { web: JSON.parse(webText), 'web-1': JSON.parse(webSliceText), api: JSON.parse(apiText) };
  t.deepEqual(web.raw, want.web);
  t.not(web.raw, web.raw, 'parsed on each read: nothing of it is kept');
  t.deepEqual(await get(a.req, 'Service', 'web'), want.web);
  t.deepEqual(await get(a.req, 'EndpointSlice', 'web-1'), want['web-1']);
  t.deepEqual(await get(a.req, 'Service', 'api'), want.api);
  t.deepEqual((await a.req('GET', '/api/v1/services')).json.items, [want.api, want.web]);
  t.deepEqual((await a.req('GET', '/api/v1/endpointslices')).json.items, [want['web-1']]);
  // the same objects again: unchanged, whether as the same text, other texts of the same values
  // (keys reordered), or parsed whole (a single object)
  const actions = async (body) => (await a.req('POST', '/api/v1/apply', body)).json.objects.map((o) => `${o.name}:${o.action}`);
  t.deepEqual(await actions(ascii), ['web:unchanged', 'web-1:unchanged']);
  t.deepEqual(await actions(JSON.stringify([want.api, want['web-1']])), ['api:unchanged', 'web-1:unchanged']);
  t.deepEqual(await actions(JSON.stringify(want.web)), ['web:unchanged']);
  const changed = { ...want.web, metadata: { ...want.web.metadata, labels: { tier: 'front' } } };
  t.deepEqual(await actions(JSON.stringify([changed])), ['web:configured']);
  t.deepEqual(await get(a.req, 'Service', 'web'), changed);
  await a.close();

  const b = await startControlPlane(t, { stateDir: dir });
  t.deepEqual(await get(b.req, 'Service', 'web'), changed);
  t.deepEqual(await get(b.req, 'EndpointSlice', 'web-1'), want['web-1']);
  t.deepEqual(await get(b.req, 'Service', 'api'), want.api);
});

test('a body whose objects are mostly replaced gives the rest a text of their own', async (t) => {
  const a = await startControlPlane(t);
  const n = 400; // (~100 KB of text: past the size below which a text is never compacted)
  const objs = [];
  for (let i = 0; i < n; i++) objs.push(svc(`s${i}`, `10.96.${i >> 8}.${i & 255}`));
  const first = JSON.stringify(objs);
  t.true(first.length >= 1 << 16);
  t.is((await a.req('POST', '/api/v1/apply', first)).status, 200);
  const text0 = keptSpan(a.cp.core.compiler.getService('shop', 's0')).kept;
  t.is(text0.live, first.length - 2 - (n - 1), 'every element counted live (the brackets and commas are not)');
  // replace 60 % of them (a label each), in two applies: the first leaves more than half live
  const relabel = (from, to) => JSON.stringify(objs.slice(from, to).map((o) => ({ ...o, metadata: { ...o.metadata, labels: { v: '2' } } })));
  t.is((await a.req('POST', '/api/v1/apply', relabel(0, 120))).status, 200);
  t.is(keptSpan(a.cp.core.compiler.getService('shop', 's399')).kept, text0, 'still more than half live: not compacted');
  t.is((await a.req('POST', '/api/v1/apply', relabel(120, 240))).status, 200);
  const rest = keptSpan(a.cp.core.compiler.getService('shop', 's399')).kept;
  t.not(rest, text0, 'less than half live: the rest moved');
  t.is(rest.text.length, objs.slice(240).reduce((s, o) => s + JSON.stringify(o).length, 0), 'the new text holds exactly the live objects');
  t.is(rest.live, rest.text.length);
  for (const i of [0, 239, 240, 300, 399]) {
    const want = i < 240 ? { ...objs[i], metadata: { ...objs[i].metadata, labels: { v: '2' } } } : objs[i];
    t.deepEqual(await get(a.req, 'Service', `s${i}`), want);
  }
  // a removal counts out too
  t.is((await a.req('DELETE', '/api/v1/namespaces/shop/services/s399')).status, 200);
  t.is(rest.live, rest.text.length - JSON.stringify(objs[399]).length);
  // a full resync that changes few objects: its text is not held for the many unchanged ones
  const now = objs.slice(0, 399).map((o, i) => (i < 240 ? { ...o, metadata: { ...o.metadata, labels: { v: '2' } } } : o));
  const again = now.map((o, i) => (i % 40 === 7 ? { ...o, metadata: { ...o.metadata, labels: { v: '3' } } } : o));
  const r = await a.req('POST', '/api/v1/apply', JSON.stringify(again));
  t.is(r.json.objects.filter((o) => o.action === 'configured').length, 10);
  const s7 = keptSpan(a.cp.core.compiler.getService('shop', 's7')).kept;
  t.is(s7.text.length, again.filter((_, i) => i % 40 === 7).reduce((n, o) => n + JSON.stringify(o).length, 0));
  t.is(keptSpan(a.cp.core.compiler.getService('shop', 's367')).kept, s7);
  t.deepEqual(await get(a.req, 'Service', 's367'), again[367]);
  t.deepEqual(await get(a.req, 'Service', 's368'), now[368]);
  t.deepEqual(await get(a.req, 'Service', 's100'), now[100]);
});

test('sameRaw: equal texts, the same value in other texts, different values; compact keeps every place\'s text', (t) => {
  const k = new KeptText();
  k.text = Buffer.from('[{"a":1,"b":[2]},{"b":[2],"a":1},{"a":1,"b":[3]},{"a":1,"b":[2]}]');
  const at = (s, e) => ({ src: new KeptSpan(k, s, e), get raw() { return this.src.parse(); } });
  const x = at(1, 16), y = at(17, 32), z = at(33, 48), w = at(49, 64);
  t.deepEqual(x.raw, { a: 1, b: [2] });
  t.true(sameRaw(x, w));
  t.true(sameRaw(x, y));
  t.false(sameRaw(x, z));
  t.true(sameRaw(x, { raw: { b: [2], a: 1 } }));
  t.false(sameRaw({ raw: { a: 1 } }, z));
  const s = new KeptText();
  s.text = 'xx{"é":1}yy';
  const u = at(0, 0); u.src = new KeptSpan(s, 2, 9);
  compact([z.src, u.src]);
  t.is(z.src.kept, u.src.kept);
  t.is(z.src.kept.text, '{"a":1,"b":[3]}{"é":1}');
  t.deepEqual(z.raw, { a: 1, b: [3] });
  t.deepEqual(u.raw, { é: 1 });
});
