// wdp's kube-proxy-compatible HTTP servers on their own, answer by answer against kube-proxy's:
// the per-service health check (pkg/proxy/healthcheck/service_health.go), the proxy health
// server (proxy_health.go, :10256) and the metrics server (cmd/kube-proxy/app/server.go
// serveMetrics, :10249). Load balancers, kubelet probes, the Kubernetes e2e tests and operators'
// scripts read these bytes, so the tests compare bytes, not just parsed JSON.
import test from 'ava';
import { networkInterfaces } from 'node:os';
import pino from 'pino';
import { ServiceHealthServers, healthCheckAddresses, boundHealthCheckAddresses } from '../dist/src/kube/service-health.js';
import { ProxyHealth, serveProxyHealth } from '../dist/src/kube/healthz.js';
import { startKube, apiService, apiSlice, apiNode, until, freePort, memoryLogger } from './lib/kube-fixture.js';

const silent = pino({ level: 'silent' });

test('healthCheckNodePort: the body is kube-proxy\'s, byte for byte (tab-indented JSON), on any path and method', async (t) => {
  let healthy = true;
  const hc = new ServiceHealthServers([{ host: '127.0.0.1', family: 4 }], () => healthy, silent);
  t.teardown(() => hc.close());
  // port 0: the system picks one (the server keeps the requested 0 as its identity across syncs)
  const at = (n) => new Map([['ns-a/web', { port: 0, localEndpoints: { IPv4: n, IPv6: 7 } }]]);
  await hc.sync(at(2));
  const { port } = hc.ports()[0];
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'application/json');
  t.is(r.headers.get('x-content-type-options'), 'nosniff');
  // kube-proxy's weight header (service_health.go): the local endpoint count, for load balancers
  // that weight nodes by it
  t.is(r.headers.get('x-load-balancing-endpoint-weight'), '2');
  // kube-proxy prints a dedented template: tabs, "key": value, no trailing newline
  t.is(await r.text(), '{\n\t"service": {\n\t\t"namespace": "ns-a",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}');
  // every path and method answers the same (kube-proxy's handler has no mux)
  const other = await fetch(`http://127.0.0.1:${port}/anything?x=1`, { method: 'POST' });
  t.is(other.status, 200);
  t.is((await other.json()).localEndpoints, 2);
  // no local endpoint, or the proxy unhealthy: 503 with the same layout
  await hc.sync(at(0));
  const none = await fetch(`http://127.0.0.1:${port}/`);
  t.is(none.status, 503);
  t.is(none.headers.get('x-load-balancing-endpoint-weight'), '0');
  t.is(await none.text(), '{\n\t"service": {\n\t\t"namespace": "ns-a",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n}');
  await hc.sync(at(1));
  healthy = false;
  const sick = await fetch(`http://127.0.0.1:${port}/`);
  t.is(sick.status, 503);
  t.deepEqual(await sick.json(), { service: { namespace: 'ns-a', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: false });
});

test('metrics port (:10249): /healthz and /healthz/ping answer "ok" as kube-proxy\'s (the apiserver healthz handler), /proxyMode and /metrics as before, the rest 404', async (t) => {
  const k = await startKube(t, { seed: (d) => d.create('services', apiService('m', '10.96.21.1')) });
  await until(() => k.compiler.getService('default', 'm'), { what: 'first sync' });
  const base = k.watcher.metricsUrl;
  for (const path of ['/healthz', '/healthz/ping', '/healthz?exclude=x']) {
    const r = await fetch(base + path);
    t.is(r.status, 200, path);
    t.is(r.headers.get('content-type'), 'text/plain; charset=utf-8', path);
    t.is(r.headers.get('x-content-type-options'), 'nosniff', path);
    t.is(await r.text(), 'ok', path);
  }
  const verbose = await fetch(`${base}/healthz?verbose`);
  t.is(await verbose.text(), '[+]ping ok\nhealthz check passed\n');
  const mode = await fetch(`${base}/proxyMode`);
  t.is(mode.status, 200);
  t.is(mode.headers.get('content-type'), 'text/plain; charset=utf-8');
  t.is(mode.headers.get('x-content-type-options'), 'nosniff');
  t.is(await mode.text(), 'wdp');
  const m = await fetch(`${base}/metrics`);
  t.is(m.status, 200);
  t.regex(await m.text(), /^kubeproxy_sync_proxy_rules_service_changes_pending 0$/m);
  const none = await fetch(`${base}/livez`);
  t.is(none.status, 404, 'livez is the healthz port\'s (10256), not this one');
  t.is(await none.text(), '404 page not found\n');
  t.is(none.headers.get('x-content-type-options'), 'nosniff');
});

// Go's net.Listen("tcp", "0.0.0.0:port") listens on every address of both families (a dual-stack
// socket; kube-proxy's service_health.go says so), so kube-proxy's health ports answer a load
// balancer or kubelet probing the node's IPv6 address. The same from wdp's listeners.
const HAS_V6_LOOPBACK = Object.values(networkInterfaces()).flat().some((a) => a?.address === '::1');
(HAS_V6_LOOPBACK ? test : test.skip)(`listeners bound to 0.0.0.0, :port or :: answer over IPv6 and IPv4 alike, as Go's; a health check listens per family with its family's count${HAS_V6_LOOPBACK ? '' : ' (skipped: no ::1 on this host)'}`, async (t) => {
  // kube-proxy (since kubernetes#137370): the IPv4 proxier's health server on an IPv4 socket, the
  // IPv6 one's on an IPv6-only socket, each answering with its own family's local endpoints
  const hc = new ServiceHealthServers(boundHealthCheckAddresses('0.0.0.0'), () => true, silent);
  t.teardown(() => hc.close());
  await hc.sync(new Map([['ns-a/web', { port: 0, localEndpoints: { IPv4: 1, IPv6: 2 } }]]));
  const ports = hc.ports();
  t.deepEqual(ports.map((p) => [p.host, p.family, p.localEndpoints]), [['0.0.0.0', 4, 1], ['::', 6, 2]]);
  const v6 = await fetch(`http://[::1]:${ports[1].port}/`).catch((e) => e);
  t.is(v6.status, 200, `the :: listener reached over ::1 (${v6.cause?.code ?? v6.status})`);
  t.is((await v6.json()).localEndpoints, 2, 'IPv6 clients get the IPv6 count');
  const v4 = await fetch(`http://127.0.0.1:${ports[0].port}/`);
  t.is((await v4.json()).localEndpoints, 1, 'IPv4 clients the IPv4 count');
  const v4over6 = await fetch(`http://[::1]:${ports[0].port}/`).catch((e) => e);
  t.not(v4over6.status, 200, 'the 0.0.0.0 listener is IPv4 only');
  const health = new ProxyHealth(60_000);
  for (const bind of ['0.0.0.0:0', ':0', '[::]:0']) {
    const l = await serveProxyHealth(bind, health, { healthz: { inc() {} }, livez: { inc() {} } });
    t.teardown(() => l.close());
    for (const host of ['[::1]', '127.0.0.1']) {
      const r = await fetch(`http://${host}:${l.port}/livez`).catch((e) => e);
      t.is(r.status, 200, `${bind} reached over ${host} (${r.cause?.code ?? r.status})`);
    }
  }
});

test('healthz port (:10256): a path other than /healthz and /livez is Go\'s 404, with its headers', async (t) => {
  const l = await serveProxyHealth('127.0.0.1:0', new ProxyHealth(60_000), { healthz: { inc() {} }, livez: { inc() {} } });
  t.teardown(() => l.close());
  const r = await fetch(`${l.url}/metrics`);
  t.is(r.status, 404);
  t.is(await r.text(), '404 page not found\n');
  t.is(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  t.is(r.headers.get('x-content-type-options'), 'nosniff');
});

test('healthCheckNodePort addresses: kube-proxy\'s per-family nodePortAddresses rule', (t) => {
  const node = ['10.1.1.5', '10.1.1.6', 'fd00::5', '203.0.113.7'];
  const hosts = (l) => l.map((a) => `${a.family}:${a.host}`);
  // unset: every address of each family (kube-proxy's MatchAll: "0.0.0.0" / "::")
  t.deepEqual(hosts(healthCheckAddresses(node, [], [])), ['4:0.0.0.0', '6:::']);
  // an IPv4 CIDR restricts IPv4 only: the IPv6 proxier has no CIDR of its family and matches all
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5', '10.1.1.6'], ['10.0.0.0/8'], [])), ['4:10.1.1.5', '4:10.1.1.6', '6:::']);
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5', 'fd00::5'], ['10.0.0.0/8', 'fd00::/64'], [])), ['4:10.1.1.5', '6:fd00::5']);
  // a zero CIDR matches everything: kube-proxy's MatchAll for that family (IsZeroCIDR), the wildcard
  // even beside narrower CIDRs of the family
  t.deepEqual(hosts(healthCheckAddresses(node, ['0.0.0.0/0'], [])), ['4:0.0.0.0', '6:::']);
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5', 'fd00::5'], ['10.0.0.0/8', '0.0.0.0/0', '::/0'], [])), ['4:0.0.0.0', '6:::']);
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5', 'fd00::5'], ['10.0.0.0/8', '::/0'], [])), ['4:10.1.1.5', '6:::']);
  // a CIDR that holds no node address: no listener of that family (kube-proxy's empty GetNodeIPs)
  t.deepEqual(hosts(healthCheckAddresses([], ['192.0.2.0/24'], [])), ['6:::']);
  // "primary": the node IP of each family it has (kube-proxy: its /32 and /128); none = all
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5'], ['primary'], ['10.1.1.5'])), ['4:10.1.1.5', '6:::']);
  t.deepEqual(hosts(healthCheckAddresses(['10.1.1.5', 'fd00::5'], ['primary'], ['10.1.1.5', 'fd00::5'])), ['4:10.1.1.5', '6:fd00::5']);
  t.deepEqual(hosts(healthCheckAddresses([], ['primary'], [])), ['4:0.0.0.0', '6:::']);
  // a loopback node IP is none to kube-proxy's "primary": that family is unrestricted
  t.deepEqual(hosts(healthCheckAddresses(['127.0.0.1', '10.1.1.5', 'fd00::5'], ['primary'], ['127.0.0.1', 'fd00::5'])), ['4:0.0.0.0', '6:fd00::5']);
  // healthCheckBindAddress: one address, or both wildcards
  t.deepEqual(hosts(boundHealthCheckAddresses('127.0.0.1')), ['4:127.0.0.1']);
  t.deepEqual(hosts(boundHealthCheckAddresses('::')), ['4:0.0.0.0', '6:::']);
});

test('healthCheckNodePort listens on the node addresses nodePortAddresses selects, and follows them when the Node\'s addresses change', async (t) => {
  const port = await freePort();
  const lb = apiService('lb', '10.96.7.1', { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }], extra: {
    externalTrafficPolicy: 'Local', healthCheckNodePort: port, clusterIPs: ['10.96.7.1', 'fd00:96::7'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
  } });
  // both families restricted to loopback addresses: nothing listens on a wildcard of the test host
  const addrs = (ip) => [{ type: 'InternalIP', address: ip }, ...(HAS_V6_LOOPBACK ? [{ type: 'InternalIP', address: '::1' }] : [])];
  const k = await startKube(t, {
    config: { healthCheckBindAddress: undefined, nodePortAddresses: ['127.0.0.0/8', '::1/128'] },
    seed: (d) => {
      d.create('nodes', apiNode('node-a', { addresses: addrs('127.0.0.1') }));
      d.create('services', lb);
      d.create('endpointslices', apiSlice('lb-1', 'lb', ['10.244.1.10']));
    },
  });
  const get = async (host) => { try { const r = await fetch(`http://${host}:${port}/`); return { code: r.status, body: await r.json() }; } catch { return null; } };
  const r = await until(() => get('127.0.0.1'), { what: 'health check on the node address 127.0.0.1' });
  t.is(r.code, 200);
  t.is(r.body.localEndpoints, 1);
  t.is(await get('127.0.0.2'), null, '127.0.0.2 is no node address: nothing listens there');
  if (HAS_V6_LOOPBACK) {
    const v6 = await until(() => get('[::1]'), { what: 'health check on ::1' });
    t.is(v6.code, 503, 'no IPv6 endpoint: the IPv6 listener answers with the IPv6 count');
    t.is(v6.body.localEndpoints, 0);
  }
  // the node's address changes: the listener moves (kube-proxy restarts and re-reads them)
  k.double.apply('nodes', apiNode('node-a', { addresses: addrs('127.0.0.2') }));
  await until(async () => (await get('127.0.0.2'))?.code === 200, { what: 'listener on the new address' });
  await until(async () => (await get('127.0.0.1')) === null, { what: 'listener on the old address closed' });
  t.pass();
});

test('healthz port (:10256): /healthz and /livez bodies are kube-proxy\'s ProxyHealth as Go\'s json.Marshal writes it (healthy, per-family status, Go times), byte for byte', async (t) => {
  const T0 = Date.parse('2026-12-05T10:00:00.120Z');
  let now = T0, families = ['IPv4'];
  const h = new ProxyHealth(60_000, () => now, () => true, () => families);
  const l = await serveProxyHealth('127.0.0.1:0', h, { healthz: { inc() {} }, livez: { inc() {} } });
  t.teardown(() => l.close());
  const get = async (path) => { const r = await fetch(l.url + path); return [r.status, await r.text()]; };
  // starting (the sync loop has not run): healthy, no family status, lastUpdated "now"
  t.deepEqual(await get('/healthz'), [200, '{"lastUpdated":"2026-12-05T10:00:00.12Z","currentTime":"2026-12-05T10:00:00.12Z","nodeEligible":true,"healthy":true}']);
  t.deepEqual(await get('/livez'), [200, '{"lastUpdated":"2026-12-05T10:00:00.12Z","currentTime":"2026-12-05T10:00:00.12Z","healthy":true}']);
  h.updated(); now += 880;
  t.deepEqual(await get('/healthz'), [200, '{"lastUpdated":"2026-12-05T10:00:01Z","currentTime":"2026-12-05T10:00:01Z","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"2026-12-05T10:00:00.12Z","healthy":true}}}']);
  // a dual-stack node: one status per family proxier
  families = ['IPv6', 'IPv4'];
  h.queued(); now += 61_000;
  const stale = '"status":{"IPv4":{"lastUpdated":"2026-12-05T10:00:00.12Z","healthy":false},"IPv6":{"lastUpdated":"2026-12-05T10:00:00.12Z","healthy":false}}';
  t.deepEqual(await get('/healthz'), [503, `{"lastUpdated":"2026-12-05T10:00:00.12Z","currentTime":"2026-12-05T10:01:02Z","nodeEligible":true,"healthy":false,${stale}}`], 'unhealthy: lastUpdated is the last sync');
  t.deepEqual(await get('/livez'), [503, `{"lastUpdated":"2026-12-05T10:00:00.12Z","currentTime":"2026-12-05T10:01:02Z","healthy":false,${stale}}`]);
  // the node being deleted: /healthz 503 while the proxy itself is healthy ("healthy":true), /livez 200
  h.updated(); h.nodeEligible = false; now += 500;
  t.deepEqual(await get('/healthz'), [503, '{"lastUpdated":"2026-12-05T10:01:02Z","currentTime":"2026-12-05T10:01:02.5Z","nodeEligible":false,"healthy":true,"status":{"IPv4":{"lastUpdated":"2026-12-05T10:01:02Z","healthy":true},"IPv6":{"lastUpdated":"2026-12-05T10:01:02Z","healthy":true}}}']);
  t.is((await get('/livez'))[0], 200);
  // never synced and not eligible: Go's zero time
  const fresh = new ProxyHealth(60_000, () => T0);
  fresh.nodeEligible = false;
  t.deepEqual(fresh.answer(true), [503, { lastUpdated: '0001-01-01T00:00:00Z', currentTime: '2026-12-05T10:00:00.12Z', nodeEligible: false, healthy: true }]);
});

(HAS_V6_LOOPBACK ? test : test.skip)(`healthCheckNodePort: a single-stack Service is served on its own family\'s addresses only (the other family\'s kube-proxy does not know it)${HAS_V6_LOOPBACK ? '' : ' (skipped: no ::1 on this host)'}`, async (t) => {
  const hc = new ServiceHealthServers([{ host: '127.0.0.1', family: 4 }, { host: '::1', family: 6 }], () => true, silent);
  t.teardown(() => hc.close());
  const want = (families) => new Map([['ns-a/web', { port: 0, families, localEndpoints: { IPv4: 1, IPv6: 1 } }]]);
  const hosts = () => hc.ports().map((p) => p.host);
  await hc.sync(want([4]));
  t.deepEqual(hosts(), ['127.0.0.1']);
  await hc.sync(want([4, 6]));
  t.deepEqual(hosts(), ['127.0.0.1', '::1'], 'made dual-stack: the IPv6 listener opens');
  const v6 = hc.ports()[1].port;
  t.is((await fetch(`http://[::1]:${v6}/`)).status, 200);
  await hc.sync(want([4]));
  t.deepEqual(hosts(), ['127.0.0.1'], 'single-stack again: the IPv6 listener closes');
  const gone = await fetch(`http://[::1]:${v6}/`).catch((e) => e);
  t.not(gone.status, 200);
});

// healthCheckBindAddress pinned to one address (a wdp setting; kube-proxy has none for these
// servers): as kube-proxy's one --healthz-bind-address serves the node's health for both family
// proxiers, the pinned address serves every Service's health check — one of the other family
// only answers there with its own family's count — and the operator is told once
test('healthCheckBindAddress of one family: a Service of only the other family is served there too, with its own family\'s count; logged once', async (t) => {
  const { log, lines } = memoryLogger();
  const hc = new ServiceHealthServers(boundHealthCheckAddresses('127.0.0.1'), () => true, log);
  t.teardown(() => hc.close());
  const svc = (families, v4, v6) => ({ port: 0, families, localEndpoints: { IPv4: v4, IPv6: v6 } });
  await hc.sync(new Map([['ns-a/v6only', svc([6], 0, 3)], ['ns-a/v6too', svc([6], 0, 0)], ['ns-a/dual', svc([4, 6], 1, 5)]]));
  const by = Object.fromEntries(hc.ports().map((p) => [p.service, p]));
  t.deepEqual(Object.keys(by).sort(), ['ns-a/dual', 'ns-a/v6only', 'ns-a/v6too'], 'every Service gets its listener on the pinned address');
  t.like(by['ns-a/v6only'], { host: '127.0.0.1', localEndpoints: 3 });
  const r = await fetch(`http://127.0.0.1:${by['ns-a/v6only'].port}/`);
  t.is(r.status, 200);
  t.like(await r.json(), { service: { namespace: 'ns-a', name: 'v6only' }, localEndpoints: 3 });
  t.is((await fetch(`http://127.0.0.1:${by['ns-a/v6too'].port}/`)).status, 503, 'no IPv6 local endpoint: 503');
  const dual = await (await fetch(`http://127.0.0.1:${by['ns-a/dual'].port}/`)).json();
  t.is(dual.localEndpoints, 1, 'a Service of the address\'s family answers with that family\'s count');
  await hc.sync(new Map([['ns-a/v6only', svc([6], 0, 4)], ['ns-a/other', svc([6], 0, 1)]]));
  const told = lines.filter((l) => /healthCheckBindAddress/.test(l.msg));
  t.is(told.length, 1, JSON.stringify(told));
  t.like(told[0], { address: '127.0.0.1' });
  t.regex(told[0].msg, /IPv4.*IPv6/);
});
