// A trace's `inPort` (POST /api/v1/trace, and a live trace's filter.inPort) names one of the
// dataplane's ports, by index or by name: one it does not have is refused (422) naming it and
// the ports there are, instead of a dry-run trace from a port that does not exist or a live
// filter that never matches.
import test from 'ava';
import Fastify from 'fastify';
import { startControlPlane } from './lib/server.js';
import { registerObserveRoutes } from '../dist/src/api/observe-routes.js';

const TRACE = { src: '10.244.1.2', dst: '10.96.0.10', proto: 'TCP', dport: 80 };
const PORTS = [{ name: 'pod-a', index: 0 }, { name: 'uplink', index: 1 }];

test('dry-run trace: inPort by name or index; one the dataplane has not is a 422 naming it and the ports', async (t) => {
  const { req, dp } = await startControlPlane(t, { ports: [0, 1], portNames: () => PORTS });
  const seen = [];
  const trace = dp.trace.bind(dp);
  dp.trace = (spec) => { seen.push(spec.inPort); return trace(spec); };
  for (const inPort of ['uplink', 1, '1', 'pod-a']) {
    const r = await req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort }));
    t.is(r.status, 200, r.text);
  }
  t.deepEqual(seen, [1, 1, 1, 0]);
  for (const [inPort, what] of [['eth9', 'name'], [7, 'index'], ['7', 'index']]) {
    const r = await req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort }));
    t.is(r.status, 422, r.text);
    t.is(r.json.message, `invalid trace packet: inPort: Not found: ${JSON.stringify(typeof inPort === 'string' && /^\d+$/.test(inPort) ? Number(inPort) : inPort)}: the dataplane has no port of that ${what} (ports: pod-a (0), uplink (1))`);
    t.is(r.json.details.causes[0].field, 'inPort');
  }
  t.is(seen.length, 4, 'nothing traced');
});

test('dry-run trace: a control plane that knows its ports by index only refuses a name and an index it has not; one that knows none takes any index', async (t) => {
  const byIndex = await startControlPlane(t, { ports: [0, 2] });
  t.is((await byIndex.req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort: 2 }))).status, 200);
  const bad = await byIndex.req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort: 1 }));
  t.is(bad.status, 422);
  t.regex(bad.json.message, /Not found: 1: the dataplane has no port of that index \(ports: 0, 2\)/);
  const name = await byIndex.req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort: 'uplink' }));
  t.is(name.status, 422);
  t.regex(name.json.message, /Not found: "uplink": the dataplane has no port of that name/);
  const none = await startControlPlane(t);
  t.is((await none.req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort: 5 }))).status, 200);
  t.is((await none.req('POST', '/api/v1/trace', JSON.stringify({ ...TRACE, inPort: 'uplink' }))).status, 422);
});

test('live trace: filter.inPort by name becomes its index; an unknown one is a 422 naming it, no session started', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  const sessions = [];
  const svc = {
    async ports() { return PORTS; },
    async observe(spec) { sessions.push(spec); return { async stop() {} }; },
  };
  registerObserveRoutes(app, svc);
  await app.ready();
  const post = (body) => app.inject({ method: 'POST', url: '/api/v1/trace/live', payload: body, headers: { 'content-type': 'application/json' } });
  for (const inPort of ['eth9', 9]) {
    const r = await post({ filter: { inPort }, durationMs: 1 });
    t.is(r.statusCode, 422, r.body);
    t.regex(JSON.parse(r.body).message, new RegExp(`filter\\.inPort: Not found: ${JSON.stringify(JSON.stringify(inPort)).slice(1, -1)}: the daemon has no port of that (name|index) \\(ports: pod-a \\(0\\), uplink \\(1\\)\\)`));
  }
  t.is(sessions.length, 0);
  const ok = await post({ filter: { inPort: 'uplink' }, durationMs: 1 });
  t.is(ok.statusCode, 200, ok.body);
  t.is(sessions[0].filter.inPort, 1);
});
