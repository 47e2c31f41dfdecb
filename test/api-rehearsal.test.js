// The one-object apply rehearsed at start (src/api/rehearsal.ts): every step applies on its own
// throwaway control plane, and nothing of it reaches the real one.
import test from 'ava';
import { rehearseOneObjectChange } from '../dist/src/api/rehearsal.js';
import { startControlPlane } from './lib/server.js';

test('the rehearsal applies, moves an endpoint twice and re-applies unchanged, each step accepted', async (t) => {
  t.deepEqual(await rehearseOneObjectChange(), ['created,created,created', 'configured', 'configured', 'unchanged']);
});

test('a control plane that rehearsed holds nothing of it', async (t) => {
  const a = await startControlPlane(t, { healthz: false });
  await new Promise((r) => setTimeout(r, 200)); // the rehearsal runs right after the start
  t.deepEqual((await a.req('GET', '/api/v1/services')).json.items, []);
  t.deepEqual((await a.req('GET', '/api/v1/endpointslices')).json.items, []);
  t.is((await a.req('GET', '/api/v1/generation')).json.services, 0);
  t.is(a.dp.core.ir.frontends.size, 0);
});
