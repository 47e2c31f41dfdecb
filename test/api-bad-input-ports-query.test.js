// The ports API's changes take no query parameter: `POST /api/v1/ports?dryRun=true` added the port,
// `DELETE /api/v1/ports/NAME?dryRun=true` removed it and `POST /api/v1/cni/gc?dryRun=true`
// collected — a dry run asked for was a real change (as `/apply?dryrun=true` was before it was
// refused). Now a 400 naming the parameter, nothing done. Found by the seeded API fuzzer
// (test/lib/api-fuzz.js) against a real daemon.
import test from 'ava';
import { startControlPlane } from './lib/server.js';
import { registerPortRoutes } from '../dist/src/api/ports-routes.js';

test('a query parameter on POST/DELETE /api/v1/ports and POST /api/v1/cni/gc is a 400 and nothing is done', async (t) => {
  const calls = [];
  const ports = {
    async list() { return [{ name: 'p1', index: 1 }]; },
    async add(raw) { calls.push(['add', raw.name]); return { name: raw.name }; },
    async remove(name) { calls.push(['remove', name]); return { name }; },
    cniGc(body) { calls.push(['gc', body.network]); return Promise.resolve({ network: body.network, removed: [], failed: [] }); },
  };
  const { req } = await startControlPlane(t, { extraRoutes: [(app) => registerPortRoutes(app, ports)] });
  const port = JSON.stringify({ name: 'p1', type: 'tap', ifname: 't1', role: 'pod' });
  for (const q of ['?dryRun=true', '?dryRun=All', '?dryrun=1', '?force=1', '?x']) {
    for (const [method, path, body] of [['POST', '/api/v1/ports', port], ['DELETE', '/api/v1/ports/p1', undefined], ['POST', '/api/v1/cni/gc', JSON.stringify({ network: 'n', validAttachments: [] })]]) {
      const r = await req(method, path + q, body);
      t.is(r.status, 400, `${method} ${path}${q}: ${r.text}`);
      t.regex(r.json.message, /^unknown query parameter "[a-zA-Z]+": .* takes none \(there is no dry run of it\): nothing was changed$/);
    }
  }
  t.deepEqual(calls, []);
  // without one they work
  t.is((await req('POST', '/api/v1/ports', port)).status, 201);
  t.is((await req('DELETE', '/api/v1/ports/p1')).status, 200);
  t.is((await req('POST', '/api/v1/cni/gc', JSON.stringify({ network: 'n', validAttachments: [] }))).status, 200);
  t.deepEqual(calls, [['add', 'p1'], ['remove', 'p1'], ['gc', 'n']]);
});
