// Bodies of the daemon's other POST routes (ports, CNI GC, live trace, capture, trace) bounded as
// apply bodies are: millions of nested brackets, deep YAML, alias bombs and several documents are
// refused (400) before any parser builds them — a deep body to the ports API recursed in the YAML
// parser for seconds and then ran the daemon out of heap — and the server keeps serving.
import test from 'ava';
import { startControlPlane } from './lib/server.js';
import { registerPortRoutes } from '../dist/src/api/ports-routes.js';
import { registerObserveRoutes } from '../dist/src/api/observe-routes.js';

function fakeDaemonRoutes(seen) {
  const ports = {
    async list() { return [{ name: 'pods', index: 0 }]; },
    async add(raw) { seen.push(raw); return { name: raw.name }; },
    async remove(name) { return { name }; },
    cniGc(body) { seen.push(body); return Promise.resolve({ network: 'n', removed: [], failed: [] }); },
  };
  const observe = { async observe() { return { async stop() {} }; }, async ports() { return [{ name: 'pods', index: 0 }]; } };
  return [(app) => registerPortRoutes(app, ports), (app) => registerObserveRoutes(app, observe)];
}

const ROUTES = ['/api/v1/ports', '/api/v1/cni/gc', '/api/v1/trace/live', '/api/v1/capture', '/api/v1/trace'];
const BOMB = 'a: &a [1,2]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n';

test('deep JSON and YAML bodies, alias bombs and several documents are refused 400 on every one-object route; the server keeps serving', async (t) => {
  const seen = [];
  const { req } = await startControlPlane(t, { extraRoutes: fakeDaemonRoutes(seen) });
  const bodies = [
    ['2M nested JSON arrays', '['.repeat(2_000_000) + ']'.repeat(2_000_000), 'application/json', /nested deeper than 64 levels/],
    ['2M nested YAML flow sequences', 'a: ' + '['.repeat(2_000_000), 'application/yaml', /nested deeper than 64 levels/],
    ['deep YAML block mappings', Array.from({ length: 400 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n', 'application/yaml', /nested deeper than 64 levels/],
    ['an alias bomb', BOMB, 'application/yaml', /alias/i],
    ['two documents', 'name: a\n---\nname: b\n', 'application/yaml', /2 YAML documents: expected one/],
  ];
  for (const route of ROUTES) {
    for (const [what, body, type, re] of bodies) {
      const r = await req('POST', route, body, { 'content-type': type });
      t.is(r.status, 400, `${route}, ${what}: ${r.text.slice(0, 300)}`);
      t.regex(r.json?.message ?? '', re, `${route}, ${what}`);
    }
  }
  t.deepEqual(seen, [], 'nothing reached the port manager');
  // still serving, and a good body still works
  t.is((await req('GET', '/api/v1/generation')).status, 200);
  const r = await req('POST', '/api/v1/ports', 'name: p1\ntype: tap\nifname: t1\nrole: pod\n', { 'content-type': 'application/yaml' });
  t.is(r.status, 201, r.text);
  t.deepEqual(seen, [{ name: 'p1', type: 'tap', ifname: 't1', role: 'pod' }]);
});

test('a NodeConfig whose masquerade source no one host owns (0.0.0.0, broadcast, multicast) is refused: masqueraded flows would leave from it', async (t) => {
  const { req } = await startControlPlane(t);
  const node = (masquerade) => JSON.stringify({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeAddresses: ['192.168.1.2', 'fd00::2'], masquerade } });
  for (const [m, field, re] of [[{ ipv4: '0.0.0.0' }, 'ipv4', /unspecified/], [{ ipv4: '255.255.255.255' }, 'ipv4', /broadcast/], [{ ipv6: 'ff02::1' }, 'ipv6', /multicast/], [{ ipv6: '::' }, 'ipv6', /unspecified/]]) {
    const r = await req('POST', '/api/v1/apply', node(m));
    t.is(r.status, 422, r.text);
    t.is(r.json.details.causes[0].field, `spec.masquerade.${field}`);
    t.regex(r.json.message, re);
  }
  t.is((await req('POST', '/api/v1/apply', node({ ipv4: '192.168.1.2' }))).status, 200);
});
