// The control API against hostile or careless input, through real HTTP: bodies that would exhaust
// the heap or the stack, unknown fields, browsers (CSRF, DNS rebinding), addresses that would
// hijack traffic, and a store that stops taking writes. Each case once got through.
import test from 'ava';
import { request } from 'node:http';
import { createControlPlane } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { startControlPlane } from './lib/server.js';

const start = startControlPlane;

const svc = (name, spec, extra = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', ...extra }, spec });
const okSpec = (ip = '10.96.0.10') => ({ clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: addrs[0].includes(':') ? 'IPv6' : 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }],
});
const node = (spec) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec });
const names = async (req) => (await req('GET', '/api/v1/services')).json.items.map((s) => s.metadata.name);

// ---- bodies that used to exhaust the daemon ---------------------------------------------------

test('4M nested arrays (8 MB) are refused 400 before parsing; the server keeps serving', async (t) => {
  const { req, dp } = await start(t);
  const gen = dp.generation();
  const before = process.memoryUsage().heapUsed;
  const r = await req('POST', '/api/v1/apply', '['.repeat(4_000_000) + ']'.repeat(4_000_000));
  t.is(r.status, 400, r.text.slice(0, 300));
  t.regex(r.json.message, /nested deeper than 64 levels/);
  t.true(process.memoryUsage().heapUsed - before < 200e6, 'no structure was built from the body');
  t.is(dp.generation(), gen);
  t.is((await req('GET', '/api/v1/generation')).status, 200);
});

test('the same nesting as YAML (flow and block) is refused 400', async (t) => {
  const { req } = await start(t);
  let r = await req('POST', '/api/v1/apply', 'a: ' + '['.repeat(200_000), { 'content-type': 'application/yaml' });
  t.is(r.status, 400, r.text.slice(0, 300));
  t.regex(r.json.message, /nested deeper than 64 levels/);
  r = await req('POST', '/api/v1/apply', '- '.repeat(100_000) + 'x', { 'content-type': 'application/yaml' });
  t.is(r.status, 400, r.text.slice(0, 300));
  // a quote inside a plain scalar does not hide the brackets after it
  r = await req('POST', '/api/v1/apply', "[a' " + '['.repeat(100_000), { 'content-type': 'application/yaml' });
  t.is(r.status, 400, r.text.slice(0, 300));
});

test('an object 5,000 levels deep is a 4xx and the dataplane never sees it', async (t) => {
  const { req, dp } = await start(t);
  const deep = '{"x":'.repeat(5000) + '{}' + '}'.repeat(5000);
  const gen = dp.generation();
  let r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', { ...okSpec(), future: 'DEEP' })).replace('"DEEP"', deep));
  t.is(r.status, 400, r.text.slice(0, 300));
  t.is(dp.generation(), gen);
  t.deepEqual(await names(req), []);
  // 60 levels (under the limit) in an unknown field: accepted, and pruned
  let ok = {}; for (let i = 0; i < 55; i++) ok = { x: ok };
  r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', { ...okSpec(), future: ok })));
  t.is(r.status, 200, r.text.slice(0, 300));
  t.false('future' in (await req('GET', '/api/v1/namespaces/shop/services/web')).json.spec);
});

test('an object over 1.5 MB is refused 413 before validation', async (t) => {
  const { req, dp } = await start(t);
  const gen = dp.generation();
  const r = await req('POST', '/api/v1/apply', JSON.stringify([svc('small', okSpec('10.96.0.9')), svc('web', { ...okSpec(), pad: 'x'.repeat(1_600_000) })]));
  t.is(r.status, 413, r.text.slice(0, 300));
  t.regex(r.json.message, /Service shop\/web: Too long: the object is larger than 1572864 bytes/);
  t.is(dp.generation(), gen);
  t.deepEqual(await names(req), []);
});

test('annotations over 256 KiB are refused 422 with the field', async (t) => {
  const { req } = await start(t);
  const r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec(), { annotations: { big: 'x'.repeat(300_000) } })));
  t.is(r.status, 422, r.text.slice(0, 300));
  t.like(r.json.details.causes[0], { field: 'metadata.annotations', reason: 'FieldValueTooLong' });
});

test('unknown fields are pruned from what is stored and returned, at every level', async (t) => {
  const { req } = await start(t);
  const body = {
    ...svc('web', { ...okSpec(), futureField: { x: 1 }, ports: [{ name: 'http', port: 80, targetPort: 8080, appProtocolX: 'h2' }] }, { managedFields: [{ manager: 'x' }], uid: 'u-1', resourceVersion: '7' }),
    extra: true,
  };
  t.is((await req('POST', '/api/v1/apply', JSON.stringify([body, { ...slice('web-1', 'web', ['10.244.1.5']), junk: 1 }]))).status, 200);
  const s = (await req('GET', '/api/v1/namespaces/shop/services/web')).json;
  t.deepEqual(s, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop', uid: 'u-1', resourceVersion: '7' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
  t.false('junk' in (await req('GET', '/api/v1/namespaces/shop/endpointslices/web-1')).json);
  // the same object without its unknown fields is "unchanged"
  const again = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec(), { uid: 'u-1', resourceVersion: '7' })));
  t.is(again.json.objects[0].action, 'unchanged');
});

// ---- browsers ----------------------------------------------------------------------------------

test('a text/plain or form POST (CSRF from a web page) changes nothing: 415', async (t) => {
  const { req, dp } = await start(t);
  const gen = dp.generation();
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec())), { 'content-type': type });
    t.is(r.status, 415, type);
    t.is(r.json.reason, 'UnsupportedMediaType');
  }
  t.is(dp.generation(), gen);
  t.deepEqual(await names(req), []);
  t.is((await req('POST', '/api/v1/apply', 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n', { 'content-type': 'application/yaml' })).status, 200);
});

test('any Origin header is refused 403, with or without a token', async (t) => {
  const { req } = await start(t);
  let r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec())), { origin: 'http://evil.example' });
  t.is(r.status, 403);
  t.regex(r.json.message, /Origin/);
  r = await req('GET', '/api/v1/services', undefined, { origin: 'null' });
  t.is(r.status, 403);
  const b = await start(t, { token: 'a-token-of-16-chars' });
  r = await b.req('GET', '/api/v1/services', undefined, { origin: 'http://127.0.0.1:9440', authorization: 'Bearer a-token-of-16-chars' });
  t.is(r.status, 403);
  t.deepEqual(await names(req), []);
});

/** fetch() does not let a caller set Host: a raw request does, as a browser's would after rebinding. */
function rawRequest(url, method, path, headers, body) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const r = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => { let json; try { json = JSON.parse(text); } catch { json = undefined; } resolve({ status: res.statusCode, json, text }); });
    });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

test('a foreign Host (DNS rebinding) is refused 403; loopback names are served', async (t) => {
  const { cp, req: fetchReq } = await start(t);
  const port = new URL(cp.url).port;
  const req = (method, path, body, headers = {}) => rawRequest(cp.url, method, path, { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, body);
  let r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec())), { host: `attacker.example:${port}` });
  t.is(r.status, 403);
  t.regex(r.json.message, /DNS rebinding/);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost']) {
    t.is((await req('GET', '/api/v1/generation', undefined, { host })).status, 200, host);
  }
  t.deepEqual(await names(fetchReq), []);
});

test('listening on a non-loopback address without a token is refused', async (t) => {
  const err = await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '0.0.0.0:0', healthz: false }));
  t.regex(err.message, /refusing to listen on 0\.0\.0\.0:0 without a token/);
  await t.throwsAsync(createControlPlane({ dataplane: new LocalDataplane(), listen: '[::]:0', healthz: false }), { message: /without a token/ });
  const cp = await createControlPlane({ dataplane: new LocalDataplane(), listen: '0.0.0.0:0', healthz: false, token: 'a-token-of-16-chars' });
  await cp.close();
  t.pass();
});

// ---- addresses that would take other hosts' traffic --------------------------------------------

async function refused(t, objs, field, re, opts = {}, setup = []) {
  const { req, dp } = await start(t, opts);
  if (setup.length) t.is((await req('POST', '/api/v1/apply', JSON.stringify(setup))).status, 200);
  const gen = dp.generation();
  const before = await names(req);
  const r = await req('POST', '/api/v1/apply', JSON.stringify(objs));
  t.is(r.status, 422, r.text.slice(0, 400));
  const c = r.json.details.causes.find((x) => x.field === field);
  t.truthy(c, `no cause for ${field}: ${r.text.slice(0, 400)}`);
  if (c) t.regex(c.message, re);
  t.is(dp.generation(), gen);
  t.deepEqual(await names(req), before);
}

for (const [ip, re] of [
  ['0.0.0.0', /unspecified/], ['255.255.255.255', /broadcast/], ['127.0.0.1', /loopback/], ['127.9.9.9', /loopback/],
  ['224.0.0.251', /multicast/], ['169.254.169.254', /link-local/], ['::', /unspecified/], ['::1', /loopback/],
  ['ff02::1', /multicast/], ['fe80::1', /link-local/], ['fe80::1%eth0', /valid IP address/],
]) {
  test(`ClusterIP ${ip} is refused with the field path`, (t) => refused(t, svc('web', okSpec(ip)), 'spec.clusterIP', re));
}

test('externalIPs and clusterIPs[] get the same address rules', async (t) => {
  await refused(t, svc('web', { ...okSpec(), externalIPs: ['10.0.0.5', '127.0.0.1'] }), 'spec.externalIPs[1]', /loopback/);
  await refused(t, svc('web', { clusterIPs: ['10.96.0.10', 'fd00::1%lo'], ports: [{ port: 80 }] }), 'spec.clusterIPs[1]', /valid IP address/);
});

test('an IPv6 endpoint with a zone is refused', (t) => refused(t, slice('web-1', 'web', ['fe80::1%eth0']), 'endpoints[0].addresses[0]', /without a zone/));

// the API server accepts them (and kube-proxy reads the prefix): refusing would leave the Service
// unprogrammed in a cluster (test model-source-ranges has the programmed ranges)
test('a source range with host bits set or padded with spaces is accepted, as the API server does', async (t) => {
  const { req } = await start(t);
  const r = await req('POST', '/api/v1/apply', JSON.stringify(svc('web', { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }], loadBalancerSourceRanges: ['10.1.2.3/8', ' 192.168.1.0/24 '] })));
  t.is(r.status, 200, r.text.slice(0, 400));
});
test('a source range that is no CIDR is refused', (t) =>
  refused(t, svc('web', { type: 'LoadBalancer', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }], loadBalancerSourceRanges: ['10.1.2.3'] }),
    'spec.loadBalancerSourceRanges[0]', /valid CIDR/));

test('a ClusterIP equal to a node address is refused, in one request or after; a node address that is a cluster IP is the node\'s', async (t) => {
  const n = node({ nodeAddresses: ['192.168.0.1'] });
  await refused(t, [n, svc('web', okSpec('192.168.0.1'))], 'spec.clusterIP', /is an address of node node-a/);
  await refused(t, svc('web', okSpec('192.168.0.1')), 'spec.clusterIP', /is an address of node node-a/, {}, [n]);
  // the other way round the node's address wins: the NodeConfig is applied (the daemon's own, from
  // the Node, must not depend on which came first) and that ClusterIP frontend is removed, with a warning
  const { req } = await start(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc('web', okSpec('192.168.0.1'))))).status, 200);
  const r = await req('POST', '/api/v1/apply', JSON.stringify(n));
  t.is(r.status, 200, r.text.slice(0, 400));
  t.deepEqual(r.json.diff.frontendsRemove.map((f) => `${f.kind} ${f.addr}`), ['ClusterIP 192.168.0.1']);
  t.true(r.json.warnings.some((w) => /cluster IP 192\.168\.0\.1 is an address of node node-a: not served/.test(w)), JSON.stringify(r.json.warnings));
});

test('a ClusterIP equal to a pod (endpoint) address is refused, either way round', async (t) => {
  await refused(t, svc('api', okSpec('10.244.1.5')), 'spec.clusterIP', /endpoint \(pod\) in EndpointSlice shop\/web-1/, {}, [svc('web', okSpec()), slice('web-1', 'web', ['10.244.1.5'])]);
  await refused(t, slice('web-1', 'web', ['10.96.0.10']), 'endpoints[0].addresses[0]', /is the cluster IP of Service shop\/web/, {}, [svc('web', okSpec())]);
  await refused(t, [svc('web', okSpec()), slice('web-1', 'web', ['10.96.0.10'])], 'endpoints[0].addresses[0]', /cluster IP of Service shop\/web/);
  // an endpoint that moves away frees its address in the same request
  const { req } = await start(t);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify([svc('web', okSpec()), slice('web-1', 'web', ['10.244.1.5'])]))).status, 200);
  const r = await req('POST', '/api/v1/apply', JSON.stringify([slice('web-1', 'web', ['10.244.1.6']), svc('api', okSpec('10.244.1.5'))]));
  t.is(r.status, 200, r.text.slice(0, 300));
});

test('a NodeConfig neighbour or route on a port the dataplane does not have is refused', async (t) => {
  await refused(t, node({ neighbours: [{ address: '10.0.0.1', port: 0, mac: '02:00:00:00:00:01', localMac: '02:00:00:00:00:02' }, { address: '10.0.0.2', port: 7, mac: '02:00:00:00:00:03', localMac: '02:00:00:00:00:02' }] }),
    'spec.neighbours[1].port', /no such port \(its ports: 0, 1\)/, { ports: [0, 1] });
  await refused(t, node({ routes: [{ prefix: '10.0.0.0/8', port: 2, nextHopMac: '02:00:00:00:00:03', localMac: '02:00:00:00:00:02' }] }),
    'spec.routes[0].port', /no such port/, { ports: [0, 1] });
});

// ---- big reads ---------------------------------------------------------------------------------

test('lists are paged: limit/continue, a default page size, every object once', async (t) => {
  const { req } = await start(t);
  const objs = [];
  for (let i = 0; i < 1200; i++) objs.push(svc(`s${String(i).padStart(4, '0')}`, okSpec(`10.97.${i >> 7}.${(i & 127) + 1}`)));
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(objs))).status, 200);
  const first = (await req('GET', '/api/v1/services')).json;
  t.is(first.items.length, 500, 'the default page');
  t.is(first.metadata.remainingItemCount, 700);
  const seen = [];
  let cont = '';
  for (let pages = 0; pages < 20; pages++) {
    const r = (await req('GET', `/api/v1/services?limit=300${cont ? `&continue=${cont}` : ''}`)).json;
    seen.push(...r.items.map((s) => s.metadata.name));
    cont = r.metadata.continue;
    if (!cont) break;
  }
  t.is(seen.length, 1200);
  t.is(new Set(seen).size, 1200);
  t.deepEqual(seen, [...seen].sort());
  t.is((await req('GET', '/api/v1/services?limit=0')).status, 400);
  t.is((await req('GET', '/api/v1/services?continue=%21%21')).status, 400);
  const c = (await req('GET', '/api/v1/counters?limit=10')).json;
  t.is(c.services.length, 10);
  t.truthy(c.metadata.continue);
  t.is((await req('GET', '/api/v1/counters?service=shop/s0005')).json.services[0].service, 'shop/s0005');
  const fe = (await req('GET', '/api/v1/frontends?limit=7')).json;
  t.is(fe.items.length, 7);
  const fe2 = (await req('GET', `/api/v1/frontends?limit=7&continue=${fe.metadata.continue}`)).json;
  t.true(fe2.items[0].id > fe.items[6].id);
});
