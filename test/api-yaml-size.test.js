// A YAML body larger than MAX_YAML_BODY_BYTES (2 MiB) is refused 413 before the YAML parser runs:
// the parser takes ~1-3 µs a byte on the API's one thread, and a 16 MiB YAML body held every
// request, healthz included, for 24 s on a loaded node (a liveness probe restarts the daemon
// then). JSON bodies of any size up to bodyLimit are read as before; a large text that looks like
// JSON but does not parse is answered with JSON's own error instead of being read again as YAML.
// Found with the seeded API fuzzer's YAML cases (test/lib/api-fuzz.js).
import test from 'ava';
import { startControlPlane } from './lib/server.js';
import { registerPortRoutes } from '../dist/src/api/ports-routes.js';
import { MAX_YAML_BODY_BYTES } from '../dist/src/model/limits.js';

const ports = { async list() { return []; }, async add(raw) { return { name: raw.name }; }, async remove(name) { return { name }; }, cniGc() { return Promise.resolve({ network: 'n', removed: [], failed: [] }); } };

test('a YAML body over the limit is a 413 naming the limit, on the apply, delete and one-object routes; state unchanged', async (t) => {
  const { req } = await startControlPlane(t, { extraRoutes: [(app) => registerPortRoutes(app, ports)] });
  t.is(MAX_YAML_BODY_BYTES, 2 * 1024 * 1024);
  const keys = Math.ceil((MAX_YAML_BODY_BYTES + 10) / 12);
  const big = Array.from({ length: keys }, (_, i) => `k${String(i).padStart(7, '0')}: 1`).join('\n') + '\n';
  t.true(big.length > MAX_YAML_BODY_BYTES);
  for (const route of ['/api/v1/apply', '/api/v1/apply?dryRun=true', '/api/v1/delete', '/api/v1/ports', '/api/v1/trace']) {
    const r = await req('POST', route, big, { 'content-type': 'application/yaml' });
    t.is(r.status, 413, `${route}: ${r.text.slice(0, 300)}`);
    t.regex(r.json.message, new RegExp(`request body: ${big.length} characters of YAML, more than ${MAX_YAML_BODY_BYTES}: send it as JSON`), route);
  }
  // broken JSON of that size: JSON's message, a 400
  const broken = '[' + JSON.stringify({ a: 'x'.repeat(MAX_YAML_BODY_BYTES) }) + ',}';
  for (const route of ['/api/v1/apply', '/api/v1/ports']) {
    const r = await req('POST', route, broken);
    t.is(r.status, 400, `${route}: ${r.text.slice(0, 300)}`);
    t.regex(r.json.message, /^request body: cannot parse as JSON: Unexpected token/, route);
  }
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  // a YAML body under the limit, and a JSON one over it, still apply
  const svc = (i) => `apiVersion: v1\nkind: Service\nmetadata: {namespace: y, name: s${i}}\nspec: {clusterIP: 10.96.${i >> 8}.${i & 255}, ports: [{port: 80}]}\n`;
  t.is((await req('POST', '/api/v1/apply', Array.from({ length: 200 }, (_, i) => svc(i)).join('---\n'), { 'content-type': 'application/yaml' })).status, 200);
  const json = JSON.stringify(Array.from({ length: 12000 }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'j', name: `s${i}`, annotations: { pad: 'p'.repeat(100) } }, spec: { clusterIP: `10.97.${i >> 8}.${i & 255}`, ports: [{ port: 80 }] } })));
  t.true(json.length > MAX_YAML_BODY_BYTES);
  t.is((await req('POST', '/api/v1/apply', json)).status, 200);
});

test('a one-object body over the object limit says so, not "larger than the limit of 16777216 bytes"', async (t) => {
  const { req } = await startControlPlane(t, { extraRoutes: [(app) => registerPortRoutes(app, ports)] });
  const body = JSON.stringify({ name: 'p', type: 'tap', ifname: 't', role: 'pod', pad: 'x'.repeat(1600 * 1024) });
  const r = await req('POST', '/api/v1/ports', body);
  t.is(r.status, 413, r.text.slice(0, 300));
  t.is(r.json.message, 'request body: larger than 1572864 bytes: refused');
  // the body limit itself is still named as such
  const { req: small } = await startControlPlane(t, { bodyLimit: 1000, extraRoutes: [(app) => registerPortRoutes(app, ports)] });
  const r2 = await small('POST', '/api/v1/ports', JSON.stringify({ name: 'p', pad: 'x'.repeat(2000) }));
  t.is(r2.status, 413);
  t.is(r2.json.message, 'request body is larger than the limit of 1000 bytes');
});
