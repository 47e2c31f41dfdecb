// A key given twice in one mapping is refused with its line, as kubectl refuses it ("key "name"
// already set in map"), instead of the last one silently winning: in a YAML body to the API, in
// the CLI's manifest files (YAML, and JSON, which kubectl reads as YAML), in the ports API's
// bodies and in the daemon's config file. The API's JSON manifests are read as JSON.parse reads
// them (docs/api.md, Errors). Found by the seeded fuzzer (test/lib/api-fuzz.js).
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';
import { runWdp } from './lib/wdp-cli.js';
import { loadConfigFile } from '../dist/src/daemon/config.js';
import { parseManifests, parseSingleDocument, duplicateJsonKey } from '../dist/src/model/load.js';

const SVC_YAML = 'apiVersion: v1\nkind: Service\nmetadata:\n  namespace: fz\n  name: a\n  name: b\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80}]\n';

test('a YAML body with a key twice is a 400 naming the key and its line; nothing applied', async (t) => {
  const { req } = await startControlPlane(t);
  const before = (await req('GET', '/api/v1/services')).json.items;
  const cases = [
    [SVC_YAML, /document 1: cannot parse \(line 6, column 3\): key "name" already set in this mapping/],
    ['apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: fz}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: 80, port: 81}]\n', /line 6, column 34\): key "port" already set/],
    // the second document's
    ['apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: fz}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n---\nkind: Service\nkind: Service\n', /document 2: cannot parse \(line 7, column 1\): key "kind" already set/],
    // a number and a string that are the same key of the object
    ['apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  annotations: {1: x, "1": y}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n', /key "1" already set/],
  ];
  for (const [body, re] of cases) {
    for (const route of ['/api/v1/apply', '/api/v1/apply?dryRun=true', '/api/v1/delete']) {
      const r = await req('POST', route, body, { 'content-type': 'application/yaml' });
      t.is(r.status, 400, r.text);
      t.regex(r.json.message, re);
    }
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, before);
  // the same body without the second key applies
  t.is((await req('POST', '/api/v1/apply', SVC_YAML.replace('  name: b\n', ''), { 'content-type': 'application/yaml' })).status, 200);
});

test('one-object bodies and files: a key twice in YAML or JSON is refused with its line', (t) => {
  const e1 = t.throws(() => parseSingleDocument('name: a\ntype: tap\nname: b\n', 'request body'));
  t.is(e1.message, 'request body: cannot parse (line 3, column 1): key "name" already set in this mapping');
  t.is(e1.status, 400);
  const e2 = t.throws(() => parseSingleDocument('{"name": "a",\n "type": "tap", "name": "b"}', 'request body'));
  t.is(e2.message, 'request body: cannot parse (line 2, column 17): key "name" already set in this object');
  // an escaped key is the same key
  t.truthy(duplicateJsonKey('{"a": 1, "\\u0061": 2}'));
  // keys of different objects, of arrays' objects, and strings that are values are not keys twice
  t.is(duplicateJsonKey('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": "a", "d": ["a", "a"]}'), null);
  t.deepEqual(parseSingleDocument('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}', 'x'), { a: { a: 1 }, b: [{ a: 1 }, { a: 2 }] });
  // the manifest reader: JSON keys twice refused only when asked (the CLI's files)
  const json = '[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a","name":"b"}}]';
  t.is(parseManifests(json).length, 1);
  t.throws(() => parseManifests(json, 'f.json', { uniqueJsonKeys: true }), { message: /f\.json: cannot parse \(line 1, column 61\): key "name" already set in this object/ });
});

test('the CLI refuses a manifest file with a key twice (YAML or JSON) before sending it; wdp start a config file with one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-dupkeys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'svc.yaml'), SVC_YAML);
  writeFileSync(join(dir, 'svc.json'), '{"apiVersion":"v1","kind":"Service",\n"metadata":{"namespace":"fz","name":"a","name":"b"},"spec":{"clusterIP":"10.96.0.10","ports":[{"port":80}]}}\n');
  for (const [file, re] of [['svc.yaml', /^error: .*svc\.yaml: document 1: cannot parse \(line 6, column 3\): key "name" already set in this mapping$/], ['svc.json', /^error: .*svc\.json: cannot parse \(line 2, column 41\): key "name" already set in this object$/]]) {
    for (const cmd of [['apply'], ['delete'], ['diff']]) {
      const r = await runWdp([...cmd, '-f', join(dir, file)], 'http://127.0.0.1:1');
      t.is(r.code, cmd[0] === 'diff' ? 2 : 1, r.stderr);
      t.regex(r.stderr.trim(), re);
    }
  }
  writeFileSync(join(dir, 'wdp.yaml'), 'ports:\n  - {name: a, type: tap, ifname: x, role: pod}\nworkers: 1\nworkers: 2\n');
  t.throws(() => loadConfigFile(join(dir, 'wdp.yaml')), { message: /line 4, column 1\): key "workers" already set in this mapping/ });
  writeFileSync(join(dir, 'wdp.json'), '{"ports": [{"name": "a", "type": "tap", "ifname": "x", "role": "pod"}], "workers": 1, "workers": 2}');
  t.throws(() => loadConfigFile(join(dir, 'wdp.json')), { message: /key "workers" already set in this object/ });
  const r = await runWdp(['start', '--config', join(dir, 'wdp.yaml')], 'http://127.0.0.1:1');
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /key "workers" already set in this mapping/);
});

test('a YAML mapping key that is a collection is refused with its line; the daemon prints no warning of the YAML parser', async (t) => {
  for (const [text, at] of [['? [a, b]\n: 1\nname: q0\n', 'line 1, column 3'], ['a: {? {x: 1} : 2}\n', 'line 1, column 7']]) {
    t.throws(() => parseSingleDocument(text, 'request body'), { message: `request body: cannot parse (${at}): a mapping key must be a string, not a collection` });
    t.throws(() => parseManifests(text), { message: new RegExp(`document 1: cannot parse \\(${at.replace(/[()]/g, '\\$&')}\\): a mapping key must be a string`) });
  }
  // (the parser wrote "Keys with collection values will be stringified" with process.emitWarning)
  const warnings = [];
  const onWarning = (w) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const { req } = await startControlPlane(t);
  const r = await req('POST', '/api/v1/apply', 'apiVersion: v1\nkind: Service\n? [a, b]\n: 1\n', { 'content-type': 'application/yaml' });
  t.is(r.status, 400, r.text);
  await new Promise((res) => setImmediate(res));
  t.deepEqual(warnings.filter((w) => /Keys with collection values/.test(w)), []);
});
