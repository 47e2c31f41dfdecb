// An apply's answer written ahead while the workers apply the change (src/api/apply-answer.ts):
// the text is exactly JSON.stringify of the ApplyResult, and a large apply through the API answers
// with it (a small one, a dry run and an unchanged re-apply as before).
import test from 'ava';
import { PreparedAnswer, PREPARED_ANSWER_MIN_OBJECTS } from '../dist/src/api/apply-answer.js';
import { startControlPlane } from './lib/server.js';

const objects = (n) => Array.from({ length: n }, (_, i) => ({ kind: i % 2 ? 'EndpointSlice' : 'Service', namespace: 'ns', name: `o-${i}`, action: 'created' }));
const diff = () => ({ frontendsUpsert: [{ id: 1, service: 'ns/o-0', flags: ['masquerade'], backends: [1, 2], op: 'add' }], frontendsRemove: [], backendsUpsert: [], backendsRemove: [],
  counts: { frontendsUpsert: 1, frontendsRemove: 0, backendsUpsert: 0, backendsRemove: 0 }, truncated: false });
function result(parts, extra = {}) {
  return { dryRun: false, generation: 7, objects: parts.objects, diff: parts.diff, warnings: parts.warnings, servicesRecompiled: 3, syncSeconds: 0.25, programmedSeconds: 0.125, programmedAtNs: 123456789, ...extra };
}

test('the prepared text is JSON.stringify of the result, member for member, in order', (t) => {
  const parts = { objects: objects(PREPARED_ANSWER_MIN_OBJECTS), diff: diff(), warnings: ['a "quoted" warning', 'ünïcode'] };
  const p = PreparedAnswer.of(parts);
  t.truthy(p);
  for (const r of [result(parts), result(parts, { receivedToProgrammedSeconds: 0.5 }), result(parts, { dryRun: true, generation: 0 })]) {
    t.is(p.text(r), JSON.stringify(r));
  }
  // members that are undefined are left out, as JSON.stringify leaves them out
  const r = result(parts, { receivedToProgrammedSeconds: undefined });
  t.is(p.text(r), JSON.stringify(r));
});

test('no prepared text for a small answer or for a result that does not hold the prepared parts', (t) => {
  t.is(PreparedAnswer.of({ objects: objects(PREPARED_ANSWER_MIN_OBJECTS - 1), diff: diff(), warnings: [] }), null);
  const parts = { objects: objects(PREPARED_ANSWER_MIN_OBJECTS), diff: diff(), warnings: [] };
  const p = PreparedAnswer.of(parts);
  t.is(p.text(result({ ...parts, objects: objects(PREPARED_ANSWER_MIN_OBJECTS) })), null);
  t.is(p.text(result({ ...parts, diff: diff() })), null);
  t.is(p.text(result({ ...parts, warnings: [] })), null);
});

function services(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'bench', name: `svc-${i}` }, spec: { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    out.push({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { namespace: 'bench', name: `svc-${i}-1`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
      addressType: 'IPv4', endpoints: [{ addresses: [`10.244.${i >> 8}.${i & 255}`] }], ports: [{ name: 'http', port: 8080 }] });
  }
  return out;
}

test('a large apply through the API answers every object, the diff and the times (and re-applies, dry runs as before)', async (t) => {
  const { req, dp } = await startControlPlane(t);
  const body = JSON.stringify(services(PREPARED_ANSWER_MIN_OBJECTS));
  const dry = await req('POST', '/api/v1/apply?dryRun=true', body);
  t.is(dry.status, 200, dry.text);
  t.true(dry.json.dryRun);
  t.is(dry.json.objects.length, 2 * PREPARED_ANSWER_MIN_OBJECTS);
  let r = await req('POST', '/api/v1/apply', body);
  t.is(r.status, 200, r.text);
  t.regex(r.headers.get('content-type'), /^application\/json/);
  t.is(r.text, JSON.stringify(r.json)); // one JSON text, nothing around or after it
  t.deepEqual(Object.keys(r.json), ['dryRun', 'generation', 'objects', 'diff', 'warnings', 'servicesRecompiled', 'syncSeconds', 'programmedSeconds', 'programmedAtNs', 'receivedToProgrammedSeconds']);
  t.false(r.json.dryRun);
  t.is(r.json.generation, dp.generation());
  t.is(r.json.objects.length, 2 * PREPARED_ANSWER_MIN_OBJECTS);
  t.true(r.json.objects.every((o) => o.action === 'created'));
  t.is(r.json.diff.counts.frontendsUpsert, PREPARED_ANSWER_MIN_OBJECTS);
  t.is(r.json.diff.counts.backendsUpsert, PREPARED_ANSWER_MIN_OBJECTS);
  t.is(r.json.servicesRecompiled, PREPARED_ANSWER_MIN_OBJECTS);
  t.true(r.json.programmedSeconds > 0 && r.json.receivedToProgrammedSeconds > 0);
  r = await req('POST', '/api/v1/apply', body);
  t.is(r.status, 200, r.text);
  t.true(r.json.objects.every((o) => o.action === 'unchanged'));
  t.is(r.json.programmedAtNs, 0);
});
