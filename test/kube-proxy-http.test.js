// wdp's kube-proxy-compatible HTTP servers on their own, answer by answer against kube-proxy's:
// the per-service health check (pkg/proxy/healthcheck/service_health.go), the proxy health
// server (proxy_health.go, :10256) and the metrics server (cmd/kube-proxy/app/server.go
// serveMetrics, :10249). Load balancers, kubelet probes, the Kubernetes e2e tests and operators'
// scripts read these bytes, so the tests compare bytes, not just parsed JSON.
import test from 'ava';
import pino from 'pino';
import { ServiceHealthServers } from '../dist/src/kube/service-health.js';

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
