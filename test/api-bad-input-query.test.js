// Query parameters a careless or hostile client sends: a dry run must never be misread as a real
// change, a filter given twice is refused instead of answering a list nobody asked for, paging
// limits are decimal numbers, and the trace packet is the one described (no value coerced into
// another). Each answer is a 400/422 with the parameter named; the state stays as it was.
import test from 'ava';
import { startControlPlane } from './lib/server.js';

const svc = (name, ip, ns = 'default') => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { clusterIP: ip, ports: [{ port: 80 }] } });
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => `${s.metadata.namespace}/${s.metadata.name}`);

test('a dryRun value that says neither true nor false, or repeated values that disagree, are refused: nothing applied or deleted', async (t) => {
  const { req, dp } = await startControlPlane(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc('a', '10.96.0.5')))).status, 200);
  const gen = dp.generation();
  for (const q of ['dryRun=yes', 'dryRun=maybe', 'dryRun=TRUE', 'dryRun=true&dryRun=false', 'dryRun[]=true', 'dryrun=true', 'dryRun=true&force=1']) {
    let r = await req('POST', `/api/v1/apply?${q}`, JSON.stringify(svc('b', '10.96.0.6')));
    t.is(r.status, 400, `apply ?${q}: ${r.text}`);
    t.regex(r.json.message, /^(dryRun: |unknown query parameter ).*nothing was changed/);
    r = await req('DELETE', `/api/v1/namespaces/default/services/a?${q}`);
    t.is(r.status, 400, `DELETE ?${q}: ${r.text}`);
    r = await req('POST', `/api/v1/delete?${q}`, JSON.stringify(svc('a', '10.96.0.5')));
    t.is(r.status, 400, `delete ?${q}: ${r.text}`);
  }
  t.deepEqual(await names(req), ['default/a']);
  t.is(dp.generation(), gen, 'nothing was programmed');
  // what is accepted: true/All/1/"" a dry run (repeated alike too), false/0 a real change
  for (const q of ['dryRun=true', 'dryRun=All', 'dryRun=1', 'dryRun', 'dryRun=All&dryRun=All']) {
    const r = await req('POST', `/api/v1/apply?${q}`, JSON.stringify(svc('b', '10.96.0.6')));
    t.is(r.status, 200, q);
    t.true(r.json.dryRun, q);
  }
  t.deepEqual(await names(req), ['default/a']);
  const r = await req('POST', '/api/v1/apply?dryRun=false', JSON.stringify(svc('b', '10.96.0.6')));
  t.false(r.json.dryRun);
  t.deepEqual(await names(req), ['default/a', 'default/b']);
});

test('a filter given twice is refused (400) on every list route; an empty one is no filter', async (t) => {
  const { req } = await startControlPlane(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify([svc('a', '10.96.0.5'), svc('b', '10.96.1.5', 'other')]))).status, 200);
  for (const path of ['/api/v1/services?namespace=default&namespace=other', '/api/v1/endpointslices?namespace=a&namespace=b',
    '/api/v1/frontends?service=default/a&service=other/b', '/api/v1/backends?service=default/a&service=other/b',
    '/api/v1/counters?service=default/a&service=other/b', '/api/v1/counters?namespace=default&namespace=other']) {
    const r = await req('GET', path);
    t.is(r.status, 400, `${path}: ${r.text.slice(0, 200)}`);
    t.regex(r.json.message, /^(namespace|service): given 2 times: give it once$/);
  }
  t.is((await req('GET', '/api/v1/services?namespace=')).json.items.length, 2);
  t.is((await req('GET', '/api/v1/frontends?service=default/a')).json.items.length, 1);
});

test('limit is a decimal number: 1e3, 0x10, +5 and " 5" are refused', async (t) => {
  const { req } = await startControlPlane(t);
  for (const v of ['1e3', '0x10', '%2B5', '%205', '5.0', '-1', '0', '10001']) {
    const r = await req('GET', `/api/v1/services?limit=${v}`);
    t.is(r.status, 400, `limit=${v}: ${r.text.slice(0, 200)}`);
    t.regex(r.json.message, /^limit: must be an integer from 1 to 10000/);
  }
  t.is((await req('GET', '/api/v1/services?limit=10000')).status, 200);
});

test('trace: ports and the in-port are numbers (null, "", true are not 0 or 1), unknown fields are refused, a body that is no object is a 400', async (t) => {
  const { req } = await startControlPlane(t);
  const base = { src: '10.0.0.1', dst: '10.96.0.5', proto: 'TCP' };
  for (const [k, v] of [['dport', null], ['dport', ''], ['dport', true], ['sport', '80abc'], ['sport', []], ['inPort', false], ['inPort', '']]) {
    const r = await req('POST', '/api/v1/trace', JSON.stringify({ ...base, [k]: v }));
    t.is(r.status, 422, `${k}: ${JSON.stringify(v)}: ${r.text.slice(0, 200)}`);
    t.regex(r.json.message, new RegExp(`${k}:`));
  }
  let r = await req('POST', '/api/v1/trace', JSON.stringify({ ...base, dport: 80, sprot: 1234 }));
  t.is(r.status, 422, r.text);
  t.regex(r.json.message, /sprot/);
  for (const body of ['[]', '5', 'null', '"x"', '[[[[', '['.repeat(100_000)]) {
    r = await req('POST', '/api/v1/trace', body);
    t.is(r.status, 400, `${body.slice(0, 10)}: ${r.text.slice(0, 200)}`);
  }
  // what the CLI sends still works: numbers, or digits
  t.is((await req('POST', '/api/v1/trace', JSON.stringify({ ...base, sport: '40000', dport: 80 }))).status, 200);
});
