// A NodeConfig is a singleton (applying another replaces it), but a delete names an object: one
// naming a NodeConfig the daemon does not hold (node-b while it holds node-a) is a 404 NotFound
// Status naming it, as the API server answers a delete of a missing object, and changes nothing —
// before, it deleted node-a. `wdp delete -f` prints the same "not found" line as for a missing
// Service and exits 1.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from './lib/server.js';
import { runWdp } from './lib/wdp-cli.js';

const node = (name) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name }, spec: { nodeAddresses: ['192.168.10.11'] } });

test('deleting a NodeConfig by another name than the one held: 404 NotFound, the held one kept', async (t) => {
  const { cp, req } = await startControlPlane(t);
  const a = await req('POST', '/api/v1/apply', JSON.stringify(node('node-a')));
  t.is(a.status, 200, a.text);
  for (const q of ['?dryRun=true', '']) {
    const r = await req('POST', `/api/v1/delete${q}`, JSON.stringify(node('node-b')));
    t.is(r.status, 404, r.text);
    t.is(r.json.kind, 'Status');
    t.is(r.json.reason, 'NotFound');
    t.regex(r.json.message, /NodeConfig.*node-b.*not found/);
    t.like(r.json.details.causes[0], { kind: 'NodeConfig', name: 'node-b', reason: 'NotFound' });
    t.is(cp.core.compiler.getNode()?.name, 'node-a');
  }
  const g = await req('GET', '/api/v1/nodeconfig');
  t.is(g.status, 200);
  t.is(g.json.metadata.name, 'node-a');
  // the one it holds is deleted by its name
  const d = await req('POST', '/api/v1/delete', JSON.stringify(node('node-a')));
  t.is(d.status, 200, d.text);
  t.is(cp.core.compiler.getNode(), null);
});

test('wdp delete -f naming another NodeConfig: the not-found line, exit 1, as for a missing Service', async (t) => {
  const { cp, req } = await startControlPlane(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(node('node-a')))).status, 200);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-delnode-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'nodeconfig.yaml');
  writeFileSync(f, JSON.stringify(node('node-b')));
  const r = await runWdp(['delete', '-f', f], cp.url, { killAfterMs: 60_000 });
  t.is(r.code, 1, r.stdout);
  t.is(r.stdout, '');
  t.is(r.stderr, 'error: NodeConfig node-b: not found\n');
  const svc = await runWdp(['delete', 'service', 'ghost'], cp.url, { killAfterMs: 60_000 });
  t.is(svc.code, 1);
  t.is(svc.stderr, 'error: Service default/ghost: not found\n');
  t.is(cp.core.compiler.getNode()?.name, 'node-a');
});
