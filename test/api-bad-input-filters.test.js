// A `service` filter that cannot name a Service (no namespace/name shape) is a 400 on every route
// that takes it, as /conntrack already refused it: /frontends and /backends answered an empty
// list and /counters a zero entry for it, which reads as "the service exists and has nothing".
// Found by the seeded API fuzzer (test/lib/api-fuzz.js).
import test from 'ava';
import { startControlPlane } from './lib/server.js';

const svc = { apiVersion: 'v1', kind: 'Service', metadata: { namespace: 'fz', name: 'a' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } };

test('?service= that is not namespace/name is a 400 naming the parameter on frontends, backends, counters and conntrack', async (t) => {
  const { req } = await startControlPlane(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc))).status, 200);
  for (const route of ['/api/v1/frontends', '/api/v1/backends', '/api/v1/counters', '/api/v1/conntrack']) {
    for (const bad of ['fz', 'a', '/a', 'fz/', 'fz/a/b', 'FZ/a', '%20fz/a', 'fz/a%00']) {
      const r = await req('GET', `${route}?service=${bad}`);
      t.is(r.status, 400, `${route}?service=${bad}: ${r.text}`);
      t.regex(r.text, /service.*must be namespace\/name/, `${route}?service=${bad}`);
    }
    // the right form still filters
    const ok = await req('GET', `${route}?service=fz/a`);
    t.is(ok.status, 200, ok.text);
  }
  t.is((await req('GET', '/api/v1/frontends?service=fz/a')).json.items.length, 1);
  // a service that does not exist (but could): an empty answer, as before
  t.deepEqual((await req('GET', '/api/v1/frontends?service=fz/nosuch')).json.items, []);
  t.deepEqual((await req('GET', '/api/v1/counters?service=fz/nosuch')).json.services, []);
});

test('/conntrack?limit= takes decimal digits as the paged lists do: 1e3, 0x10, " 5" are a 400', async (t) => {
  const { req } = await startControlPlane(t);
  for (const bad of ['1e3', '0x10', '%205', '5.0', '-1', '0', '10001', 'abc', '']) {
    const r = await req('GET', `/api/v1/conntrack?limit=${bad}`);
    t.is(r.status, 400, `limit=${bad}: ${r.text}`);
    t.regex(r.text, /limit/);
  }
  t.is((await req('GET', '/api/v1/conntrack?limit=5')).status, 200);
  t.is((await req('GET', '/api/v1/services?limit=1e3')).status, 400, 'as the lists');
});
