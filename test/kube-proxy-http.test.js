// wdp's kube-proxy-compatible HTTP servers on their own, answer by answer against kube-proxy's:
// the per-service health check (pkg/proxy/healthcheck/service_health.go), the proxy health
// server (proxy_health.go, :10256) and the metrics server (cmd/kube-proxy/app/server.go
// serveMetrics, :10249). Load balancers, kubelet probes, the Kubernetes e2e tests and operators'
// scripts read these bytes, so the tests compare bytes, not just parsed JSON.
import test from 'ava';
import { networkInterfaces } from 'node:os';
import pino from 'pino';
import { ServiceHealthServers } from '../dist/src/kube/service-health.js';
import { ProxyHealth, serveProxyHealth } from '../dist/src/kube/healthz.js';
import { startKube, apiService, until } from './lib/kube-fixture.js';

const silent = pino({ level: 'silent' });

test('healthCheckNodePort: the body is kube-proxy\'s, byte for byte (tab-indented JSON), on any path and method', async (t) => {
  let healthy = true;
  const hc = new ServiceHealthServers('127.0.0.1', () => healthy, silent);
  t.teardown(() => hc.close());
  // port 0: the system picks one (the server keeps the requested 0 as its identity across syncs)
  const at = (n) => new Map([['ns-a/web', { port: 0, localEndpoints: n }]]);
  await hc.sync(at(2));
  const { port } = hc.ports()[0];
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'application/json');
  t.is(r.headers.get('x-content-type-options'), 'nosniff');
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
(HAS_V6_LOOPBACK ? test : test.skip)(`listeners bound to 0.0.0.0, :port or :: answer over IPv6 and IPv4 alike, as Go's${HAS_V6_LOOPBACK ? '' : ' (skipped: no ::1 on this host)'}`, async (t) => {
  const hc = new ServiceHealthServers('0.0.0.0', () => true, silent);
  t.teardown(() => hc.close());
  await hc.sync(new Map([['ns-a/web', { port: 0, localEndpoints: 1 }]]));
  const { port } = hc.ports()[0];
  const v6 = await fetch(`http://[::1]:${port}/`).catch((e) => e);
  t.is(v6.status, 200, `healthCheckNodePort on 0.0.0.0 reached over ::1 (${v6.cause?.code ?? v6.status})`);
  t.is((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
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
