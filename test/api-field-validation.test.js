// `POST /api/v1/apply?fieldValidation=Ignore|Warn|Strict`, as the Kubernetes API server takes it
// (KEP 2885): a field the object's kind does not have (`unknown field "spec.foo"`) and a JSON key
// given twice (`duplicate field "metadata.name"`: JSON.parse keeps the last one) are answered
// with a `Warning: 299 - "..."` header each (Warn, the default), refuse the request (Strict: 400,
// `strict decoding error: ...`, nothing applied) or pass silently (Ignore). The fields Kubernetes
// has and wdp does not read (spec.selector, managedFields, ...) are known, not unknown. `wdp
// apply` prints each warning as kubectl does.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';
import { runWdp } from './lib/wdp-cli.js';
import { warningTexts } from '../dist/src/cli/client.js';
import { duplicatePaths } from '../dist/src/model/field-validation.js';
import { countJsonKeys } from '../dist/src/model/json-keys.js';

const svc = (name, spec = {}, metadata = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'shop', name, ...metadata }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }], ...spec } });
const slice = (extra = {}) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: 'shop', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } },
  endpoints: [{ addresses: ['10.244.1.5'], conditions: { ready: true }, ...extra }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
const warnings = (r) => warningTexts(r.headers.get('warning') ?? undefined);

// what `kubectl get svc -o json` and `kubectl get endpointslice -o json` carry: every field known
const FULL_SERVICE = svc('web', {
  selector: { app: 'web' }, sessionAffinity: 'None', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', internalTrafficPolicy: 'Cluster',
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, appProtocol: 'http' }], publishNotReadyAddresses: false, trafficDistribution: 'PreferClose',
}, {
  uid: 'u1', resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z', ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'u', controller: true }],
  managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:anything': {} } } }],
  finalizers: ['service.kubernetes.io/load-balancer-cleanup'],
});
FULL_SERVICE.status = { loadBalancer: {}, conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'X', message: '' }] };

test('Warn (the default): an unknown field is a Warning header naming the object and the path; the apply goes through; Kubernetes fields wdp does not read are no warning', async (t) => {
  const { req } = await startControlPlane(t);
  const r = await req('POST', '/api/v1/apply', JSON.stringify([svc('web', { foo: 1, ports: [{ name: 'http', port: 80, colour: 'red' }] }), slice({ weight: 3 })]));
  t.is(r.status, 200, r.text);
  // (in the order the text gives them)
  t.deepEqual(warnings(r), ['Service shop/web: unknown field "spec.ports[0].colour"', 'Service shop/web: unknown field "spec.foo"', 'EndpointSlice shop/web-1: unknown field "endpoints[0].weight"']);
  t.regex(r.headers.get('warning'), /^299 - "Service shop\/web: unknown field \\"spec\.ports\[0\]\.colour\\""/);
  t.is((await req('POST', '/api/v1/apply?fieldValidation=Warn', JSON.stringify(svc('web', { foo: 1 })))).headers.get('warning'), '299 - "Service shop/web: unknown field \\"spec.foo\\""');
  // the fields are pruned as before
  t.is((await req('GET', '/api/v1/namespaces/shop/services/web')).json.spec.foo, undefined);
  const full = await req('POST', '/api/v1/apply', JSON.stringify([FULL_SERVICE, slice({ targetRef: { kind: 'Pod', name: 'p', namespace: 'shop', uid: 'u' }, hints: { forZones: [{ name: 'a' }] } })]));
  t.is(full.status, 200, full.text);
  t.is(full.headers.get('warning'), null);
  // a NodeConfig is wdp's: its fields are wdp's
  const node = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeAddresses: ['192.168.1.1'], nodeAdresses: ['x'] } };
  t.deepEqual(warnings(await req('POST', '/api/v1/apply?dryRun=true', JSON.stringify(node))), ['NodeConfig n: unknown field "spec.nodeAdresses"']);
});

test('a JSON key given twice: a Warning naming its path, in every body shape (array, List, one object; read as it arrives or whole)', async (t) => {
  const { req } = await startControlPlane(t);
  const one = '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"shop","name":"web","name":"web"},"spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":81,"port":80}]}}';
  const want = ['Service shop/web: duplicate field "metadata.name"', 'Service shop/web: duplicate field "spec.ports[0].port"'];
  // (the last: not ASCII, so parsed whole after it arrived)
  for (const body of [`[${one}]`, `{"kind":"List","apiVersion":"v1","items":[${one}]}`, one, `[${one.replace('"metadata":{', '"metadata":{"annotations":{"note":"é"},')}]`]) {
    const r = await req('POST', '/api/v1/apply?dryRun=true', body);
    t.is(r.status, 200, r.text);
    t.deepEqual(warnings(r), want, body);
  }
  // an escaped key is the same key; a key twice in different objects, or strings that are values, is none
  const esc = await req('POST', '/api/v1/apply?dryRun=true', `[${one.replace(',"name":"web"}', ',"n\\u0061me":"web"}').replace('"port":81,', '')}]`);
  t.deepEqual(warnings(esc), ['Service shop/web: duplicate field "metadata.name"']);
  const fine = await req('POST', '/api/v1/apply?dryRun=true', JSON.stringify([svc('web', { ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] }, { labels: { name: 'name' } })]));
  t.is(fine.headers.get('warning'), null);
});

test('Strict: unknown and duplicate fields refuse the request (400, strict decoding error, one cause per object), nothing applied; Ignore: no warning', async (t) => {
  const { req } = await startControlPlane(t);
  const body = `[${JSON.stringify(svc('web', { foo: 1 }))},{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"shop","name":"db","name":"db"},"spec":{"clusterIP":"10.96.0.11","ports":[{"port":5432}]}}]`;
  const r = await req('POST', '/api/v1/apply?fieldValidation=Strict', body);
  t.is(r.status, 400, r.text);
  t.is(r.json.reason, 'BadRequest');
  t.deepEqual(r.json.details.causes.map((c) => c.message), ['Service shop/web: strict decoding error: unknown field "spec.foo"', 'Service shop/db: strict decoding error: duplicate field "metadata.name"']);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  // refused before validation, as the API server decodes before it validates
  const both = await req('POST', '/api/v1/apply?fieldValidation=Strict', JSON.stringify([svc('Bad_Name', { foo: 1 })]));
  t.is(both.status, 400, both.text);
  const ign = await req('POST', '/api/v1/apply?fieldValidation=Ignore', body);
  t.is(ign.status, 200, ign.text);
  t.is(ign.headers.get('warning'), null);
  t.is((await req('GET', '/api/v1/services')).json.items.length, 2);
  // a clean body under Strict applies
  t.is((await req('POST', '/api/v1/apply?fieldValidation=Strict', JSON.stringify([FULL_SERVICE]))).status, 200);
});

test('a bad fieldValidation is a 400 and changes nothing; only the apply takes it', async (t) => {
  const { req } = await startControlPlane(t);
  const body = JSON.stringify([svc('web')]);
  for (const q of ['fieldValidation=strict', 'fieldValidation=Nope', 'fieldValidation=Warn&fieldValidation=Strict', 'fieldvalidation=Strict']) {
    const r = await req('POST', `/api/v1/apply?${q}`, body);
    t.is(r.status, 400, `${q}: ${r.text}`);
    t.regex(r.json.message, /fieldValidation|fieldvalidation/);
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  t.is((await req('POST', '/api/v1/apply?fieldValidation=', body)).status, 200, 'empty: the default');
  t.is((await req('POST', '/api/v1/delete?fieldValidation=Strict', body)).status, 400);
  t.is((await req('DELETE', '/api/v1/namespaces/shop/services/web?fieldValidation=Strict')).status, 400);
});

test('many problems: the Warning headers stay within a few KiB (a client reads 16 KiB of headers), the last one counting the rest', async (t) => {
  const { req } = await startControlPlane(t);
  const objs = Array.from({ length: 300 }, (_, i) => svc(`web-${i}`, { clusterIP: `10.96.1.${i % 250}`, foo: i }));
  const r = await req('POST', '/api/v1/apply?dryRun=true&fieldValidation=Warn', JSON.stringify(objs.slice(0, 250)));
  t.is(r.status, 200, r.text.slice(0, 300));
  const w = warnings(r);
  t.true(r.headers.get('warning').length <= 4096, `${r.headers.get('warning').length}`);
  t.regex(w[w.length - 1], /^\d+ more warnings not shown/);
  t.is(Number(w[w.length - 1].split(' ')[0]) + w.length - 1, 250);
  const s = await req('POST', '/api/v1/apply?fieldValidation=Strict', JSON.stringify(objs.slice(0, 250)));
  t.is(s.status, 400);
  t.is(s.json.details.causes.length, 250, 'Strict lists every object');
});

test('the duplicate scan: paths, escapes, keys counted as written', (t) => {
  t.deepEqual(duplicatePaths('{"a":{"b":1,"b":2},"c":[{"d":1},{"d":1,"d":2}],"a":3}'), [['a', 'b'], ['c', 1, 'd'], ['a']]);
  t.deepEqual(duplicatePaths('{"s":"{\\"x\\":1,\\"x\\":2}","t":["a","a"]}'), []);
  t.is(countJsonKeys('{"a":"x:y","b\\"c":{"d":[1,{"e":2}]}}'), 4);
});

test('wdp apply prints each warning as kubectl does (Warning: ...) and applies', async (t) => {
  const { cp, req } = await startControlPlane(t);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-fieldval-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  clusterIP: 10.96.0.10\n  clusterIp: 10.96.0.11\n  ports: [{name: http, port: 80}]\n');
  const r = await runWdp(['apply', '-f', join(dir, 'svc.yaml')], cp.url);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, 'Warning: Service shop/web: unknown field "spec.clusterIp"\n');
  t.regex(r.stdout, /service\/shop\/web created/);
  t.is((await req('GET', '/api/v1/services')).json.items.length, 1);
  // --validate as kubectl's: strict refuses (nothing changed), ignore says nothing
  writeFileSync(join(dir, 'svc2.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\nspec:\n  clusterIP: 10.96.0.12\n  foo: 1\n  ports: [{name: pg, port: 5432}]\n');
  const strict = await runWdp(['apply', '--validate', 'strict', '-f', join(dir, 'svc2.yaml')], cp.url);
  t.is(strict.code, 1, strict.stdout);
  t.is(strict.stderr, 'error: Service shop/db: strict decoding error: unknown field "spec.foo"\n');
  t.is((await req('GET', '/api/v1/services')).json.items.length, 1);
  const ignore = await runWdp(['apply', '--validate=false', '-f', join(dir, 'svc2.yaml')], cp.url);
  t.is(ignore.code, 0, ignore.stderr);
  t.is(ignore.stderr, '');
  t.is((await req('GET', '/api/v1/services')).json.items.length, 2);
});
