// Every class of bad input, through real HTTP: status code, and a message that names the object,
// the field and the reason. Nothing may be applied by a refused request.
import test from 'ava';
import { startControlPlane } from './lib/server.js';

const start = startControlPlane;

const svc = (name, spec, extra = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', ...extra }, spec });
const okSpec = (ip = '10.96.0.10') => ({ clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] });

/** Applies `body`, expects `status` and one cause matching `cause`, and that nothing changed. */
async function rejects(t, body, status, cause, messageRe) {
  const { req, dp } = await start(t);
  // something valid already there, so "nothing changed" is checked against a non-empty state
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc('existing', { type: 'NodePort', clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })))).status, 200);
  const gen = dp.generation();
  const r = await req('POST', '/api/v1/apply', typeof body === 'string' ? body : JSON.stringify(body));
  t.is(r.status, status, r.text);
  t.is(r.json.kind, 'Status');
  t.is(r.json.code, status);
  if (cause) t.like(r.json.details.causes.find((c) => c.field === cause.field) ?? r.json.details.causes[0], cause);
  if (messageRe) t.regex(r.json.message, messageRe);
  t.is(dp.generation(), gen);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name), ['existing']);
}

test('YAML syntax error: 400 with line number', (t) => rejects(t, 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n', 400, null, /request body: document 1: cannot parse \(line \d+, column \d+\)/));
test('JSON syntax error: 400', (t) => rejects(t, '{"apiVersion": "v1", "kind": "Service",', 400, null, /cannot parse/));
test('empty body: 400', (t) => rejects(t, '   ', 400, null, /request body is empty/));
test('not an object: 422', (t) => rejects(t, '[1]', 422, null, /an object is expected/));
test('unknown kind: 422 FieldValueNotSupported', (t) => rejects(t, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }, 422,
  { kind: 'Pod', field: 'kind', reason: 'FieldValueNotSupported' }, /Pod default\/p: kind: Unsupported value: "Pod": supported values: "Service", "EndpointSlice", "NodeConfig"/));
test('wrong apiVersion: 422', (t) => rejects(t, { ...svc('web', okSpec()), apiVersion: 'v2' }, 422, { field: 'apiVersion', reason: 'FieldValueNotSupported' }, /Service shop\/web: apiVersion: Unsupported value: "v2"/));
test('missing name: 422 FieldValueRequired', (t) => rejects(t, { apiVersion: 'v1', kind: 'Service', metadata: {}, spec: okSpec() }, 422, { field: 'metadata.name', reason: 'FieldValueRequired' }, /metadata\.name: Required value/));
test('wrong type: 422 names the field', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: '80' }] }), 422,
  { kind: 'Service', namespace: 'shop', name: 'web', field: 'spec.ports[0].port', reason: 'FieldValueTypeInvalid' }, /Service shop\/web: spec\.ports\[0\]\.port: Invalid value: "80": expected number, received string/));
test('bad IP: 422', (t) => rejects(t, svc('web', { ...okSpec(), clusterIP: '10.96.0.256' }), 422, { field: 'spec.clusterIP', reason: 'FieldValueInvalid' }, /spec\.clusterIP: Invalid value: "10\.96\.0\.256": must be a valid IP address/));
test('bad externalIP: 422', (t) => rejects(t, svc('web', { ...okSpec(), externalIPs: ['nope'] }), 422, { field: 'spec.externalIPs[0]' }, /spec\.externalIPs\[0\]: Invalid value: "nope"/));
test('bad CIDR: 422', (t) => rejects(t, svc('web', { ...okSpec(), type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30081 }], loadBalancerSourceRanges: ['10.0.0.0/33'] }), 422,
  { field: 'spec.loadBalancerSourceRanges[0]' }, /must be a valid CIDR/));
test('port out of range: 422', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 65536 }] }), 422, { field: 'spec.ports[0].port' }, /Invalid value: 65536: must be between 1 and 65535, inclusive/));
test('targetPort out of range: 422', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 0 }] }), 422, { field: 'spec.ports[0].targetPort' }, /must be between 1 and 65535/));
test('bad protocol: 422 FieldValueNotSupported', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, protocol: 'ICMP' }] }), 422, { field: 'spec.ports[0].protocol', reason: 'FieldValueNotSupported' }, /supported values: "TCP", "UDP", "SCTP"/));
test('duplicate ports: 422 FieldValueDuplicate', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] }), 422,
  { field: 'spec.ports[1]', reason: 'FieldValueDuplicate' }, /Duplicate value: \{"port":80,"protocol":"TCP"\}/));
test('duplicate port names: 422', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }), 422, { field: 'spec.ports[1].name', reason: 'FieldValueDuplicate' }));
test('unnamed ports in a multi-port service: 422', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }, { name: 'b', port: 81 }] }), 422, { field: 'spec.ports[0].name', reason: 'FieldValueRequired' }));
test('nodePort clash with another service: 422', (t) => rejects(t, svc('web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), 422,
  { field: 'spec.ports[0].nodePort', reason: 'FieldValueInvalid' }, /Service shop\/web: spec\.ports\[0\]\.nodePort: Invalid value: nodePort 30080\/TCP: already allocated to Service shop\/existing/));
test('ClusterIP clash with another service: 422', (t) => rejects(t, svc('web', okSpec('10.96.1.1')), 422,
  { field: 'spec.clusterIPs[0]' }, /clusterIP 10\.96\.1\.1: already allocated to Service shop\/existing/));
test('missing clusterIP: 422 (wdp does not allocate)', (t) => rejects(t, svc('web', { ports: [{ port: 80 }] }), 422, { field: 'spec.clusterIP', reason: 'FieldValueRequired' }));
test('NodePort without nodePort: 422', (t) => rejects(t, svc('web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ port: 80 }] }), 422, { field: 'spec.ports[0].nodePort', reason: 'FieldValueRequired' }));
test('bad targetPort name: 422', (t) => rejects(t, svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 'Not_A_Name' }] }), 422, { field: 'spec.ports[0].targetPort' }, /IANA_SVC_NAME/));
test('bad affinity timeout: 422', (t) => rejects(t, svc('web', { ...okSpec(), sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }), 422, { field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds' }));
test('bad maglev table size annotation: 422', (t) => rejects(t, svc('web', okSpec(), { annotations: { 'wdp.io/maglev-table-size': '1000' } }), 422,
  { field: 'metadata.annotations["wdp.io/maglev-table-size"]', reason: 'FieldValueNotSupported' }, /supported values: "251", "509"/));
test('dual-stack clusterIPs of one family: 422', (t) => rejects(t, svc('web', { clusterIPs: ['10.96.0.10', '10.96.0.11'], ports: [{ port: 80 }] }), 422, { field: 'spec.clusterIPs[1]' }, /one IP for each IP family/));
test('EndpointSlice address of the wrong family: 422', (t) => rejects(t, {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'shop' }, addressType: 'IPv4',
  endpoints: [{ addresses: ['fd00::1'] }], ports: [{ port: 80 }],
}, 422, { kind: 'EndpointSlice', name: 'web-1', field: 'endpoints[0].addresses[0]' }, /EndpointSlice shop\/web-1: endpoints\[0\]\.addresses\[0\]: Invalid value: "fd00::1": must be a valid IPv4 address/));
test('EndpointSlice bad condition type: 422', (t) => rejects(t, {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'shop' }, addressType: 'IPv4',
  endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }],
}, 422, { field: 'endpoints[0].conditions.ready' }));
test('NodeConfig bad MAC and route: 422', (t) => rejects(t, {
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' },
  spec: { routes: [{ prefix: '10.0.0.0/8', port: 1, nextHopMac: '02:00:00:00:00', localMac: '02:00:00:00:00:01' }] },
}, 422, { kind: 'NodeConfig', field: 'spec.routes[0].nextHopMac' }, /must be a MAC address/));
test('same object twice in one request: 422', (t) => rejects(t, [svc('web', okSpec()), svc('web', okSpec('10.96.0.11'))], 422, { reason: 'FieldValueDuplicate' }, /appears more than once/));

test('unknown fields are ignored', async (t) => {
  const { req } = await start(t);
  const r = await req('POST', '/api/v1/apply', JSON.stringify({ ...svc('web', { ...okSpec(), futureField: { x: 1 } }), extra: true }));
  t.is(r.status, 200, r.text);
});

test('delete of an object that does not exist: 404, nothing deleted', async (t) => {
  const { req } = await start(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec())))).status, 200);
  const r = await req('POST', '/api/v1/delete', JSON.stringify([svc('web', {}), svc('ghost', {})]));
  t.is(r.status, 404);
  t.regex(r.json.message, /Service shop\/ghost: not found/);
  t.is((await req('GET', '/api/v1/services')).json.items.length, 1);
  t.is((await req('DELETE', '/api/v1/namespaces/shop/services/ghost')).status, 404);
});

test('oversize body: 413', async (t) => {
  const { req } = await start(t, { bodyLimit: 1024 });
  const r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', { ...okSpec(), pad: 'x'.repeat(4096) })));
  t.is(r.status, 413);
  t.regex(r.json.message, /larger than the limit of 1024 bytes/);
});

/** `parts` sent one by one without a Content-Length (chunked), as a streaming client does. */
function chunked(parts) {
  return { body: new ReadableStream({ pull(c) { const p = parts.shift(); if (p === undefined) c.close(); else c.enqueue(new TextEncoder().encode(p)); } }), duplex: 'half' };
}

test('a chunked body: over the limit 413 as it arrives; within it, a JSON array cut anywhere applies as if sent whole', async (t) => {
  const { cp, req } = await start(t, { bodyLimit: 4096 });
  const post = (parts) => fetch(`${cp.url}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...chunked(parts) });
  const big = await post(['[', JSON.stringify(svc('web', okSpec())), ',', JSON.stringify(svc('pad', { ...okSpec('10.96.0.11'), pad: 'x'.repeat(5000) })), ']']);
  t.is(big.status, 413);
  t.regex((await big.json()).message, /larger than the limit of 4096 bytes/);
  const text = JSON.stringify([svc('web', okSpec()), svc('api', okSpec('10.96.0.11'))]);
  const cut = [text.slice(0, 7), text.slice(7, 8), text.slice(8, 150), text.slice(150)];
  const ok = await post(cut);
  t.is(ok.status, 200);
  t.deepEqual((await ok.json()).objects.map((o) => `${o.name} ${o.action}`), ['web created', 'api created']);
  // an invalid object in such a body: the same 422 as a whole body gets, nothing applied
  const bad = JSON.stringify([svc('db', okSpec('10.96.0.12')), svc('web', { clusterIP: '127.0.0.1', ports: [{ port: 80 }] })]);
  const r = await post([bad.slice(0, 100), bad.slice(100)]);
  t.is(r.status, 422);
  t.regex(JSON.stringify(await r.json()), /spec\.clusterIP.*loopback/);
  t.is((await req('GET', '/api/v1/services')).json.items.length, 2);
});

test('a body of more than 100,000 objects is 413 before any is validated, whole or in chunks; the daemon answers on', async (t) => {
  const { cp, req } = await start(t, { bodyLimit: 16 * 1024 * 1024 });
  const many = '[' + Array(100_001).fill('{}').join(',') + ']';
  for (const parts of [[many], [many.slice(0, 100_000), many.slice(100_000, 250_000), many.slice(250_000)]]) {
    const r = await fetch(`${cp.url}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...chunked(parts) });
    t.is(r.status, 413);
    t.regex((await r.json()).message, /100001 objects, more than 100000 in one request: send them in several/);
  }
  // a List of them the same
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array(100_001).fill({}) });
  t.is((await req('POST', '/api/v1/apply', list)).status, 413);
  // 100,000 is within the bound: those go on to validation (each {} lacks a kind)
  const r = await req('POST', '/api/v1/apply', '[' + Array(100_000).fill('{}').join(',') + ']');
  t.is(r.status, 422);
  t.is((await req('GET', '/api/v1/services')).status, 200);
});

test('unknown route: 404', async (t) => {
  const { req } = await start(t);
  const r = await req('GET', '/api/v2/everything');
  t.is(r.status, 404);
  t.is(r.json.reason, 'NotFound');
  t.is((await req('PUT', '/api/v1/apply', '{}')).status, 404);
});

test('bearer token: missing or wrong 401, right 200', async (t) => {
  const { cp } = await start(t, { token: 's3cret' });
  let r = await fetch(cp.url + '/api/v1/services');
  t.is(r.status, 401);
  t.regex((await r.json()).message, /missing bearer token/);
  r = await fetch(cp.url + '/api/v1/apply', { method: 'POST', body: '{}', headers: { authorization: 'Bearer wrong' } });
  t.is(r.status, 401);
  t.regex((await r.json()).message, /invalid bearer token/);
  r = await fetch(cp.url + '/metrics', { headers: { authorization: 'Bearer s3cret' } });
  t.is(r.status, 200);
  r = await fetch(cp.url + '/api/v1/services', { headers: { authorization: 'Bearer s3cret' } });
  t.is(r.status, 200);
});

test('bad trace request: 400 / 422 naming the field', async (t) => {
  const { req } = await start(t);
  let r = await req('POST', '/api/v1/trace', 'not json');
  t.is(r.status, 400);
  r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.1', dst: 'fd00::1', proto: 'TCP', dport: 80 }));
  t.is(r.status, 422);
  t.regex(r.json.message, /dst: src and dst must be the same address family/);
  r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'GRE' }));
  t.is(r.status, 422);
  t.regex(r.json.message, /proto/);
  r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'TCP', dport: 70000 }));
  t.is(r.status, 422);
  t.regex(r.json.message, /dport/);
});

test('bad conntrack filter: 400', async (t) => {
  const { req } = await start(t);
  const r = await req('GET', '/api/v1/conntrack?client=banana&limit=-1');
  t.is(r.status, 400);
  t.is(r.json.details.causes.length, 2);
});

test('garbage never crashes the server', async (t) => {
  const { req } = await start(t);
  const bodies = ['\u0000\u0001', '---\n---\n', '{"kind":"List","items":"x"}', 'a: [', '[[[[[]]]]]', JSON.stringify({ kind: 'Service', metadata: 'x' }),
    '*anchor', '{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":null}', 'x'.repeat(10000)];
  for (const b of bodies) {
    const r = await req('POST', '/api/v1/apply', b, { 'content-type': 'application/yaml' });
    t.true(r.status >= 400 && r.status < 500, `${JSON.stringify(b.slice(0, 30))} -> ${r.status} ${r.text.slice(0, 200)}`);
  }
  t.is((await req('GET', '/api/v1/generation')).status, 200);
});
