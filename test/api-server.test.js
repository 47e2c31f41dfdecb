// The control API over real HTTP, against a real in-thread core (LocalDataplane).
import test from 'ava';
import { statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { createControlPlane, statusReason } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { frame } from '../dist/src/packet/build.js';
import { startControlPlane } from './lib/server.js';

const start = (t, opts = {}) => startControlPlane(t, { healthz: '127.0.0.1:0', ...opts });

const NODE = `
apiVersion: wdp.io/v1alpha1
kind: NodeConfig
metadata: {name: node-a}
spec:
  nodeAddresses: [192.168.0.1]
  routes:
  - {prefix: 10.244.0.0/16, port: 1, nextHopMac: "02:00:00:00:00:11", localMac: "02:00:00:00:00:01"}
`;
const WEB = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.5]
- addresses: [10.244.1.6]
ports: [{name: http, port: 8080}]
`;
const EMPTY = `
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports: [{port: 80, protocol: TCP}]
`;

test('apply creates, re-apply is unchanged, change is configured; get and delete', async (t) => {
  const { req, dp } = await start(t);
  let r = await req('POST', '/api/v1/apply', NODE + '---' + WEB, { 'content-type': 'application/yaml' });
  t.is(r.status, 200, r.text);
  t.deepEqual(r.json.objects.map((o) => `${o.kind}/${o.name}:${o.action}`), ['NodeConfig/node-a:created', 'Service/web:created', 'EndpointSlice/web-1:created']);
  t.is(r.json.generation, dp.generation());
  t.is(r.json.diff.frontendsUpsert.length, 1);
  t.is(r.json.diff.backendsUpsert.length, 2);
  const gen = dp.generation();

  r = await req('POST', '/api/v1/apply', WEB);
  t.deepEqual(r.json.objects.map((o) => o.action), ['unchanged', 'unchanged']);
  t.is(r.json.diff.frontendsUpsert.length + r.json.diff.backendsUpsert.length, 0);
  t.is(r.json.programmedSeconds, 0, 'nothing programmed');
  t.is(r.json.programmedAtNs, 0);
  t.false('receivedToProgrammedSeconds' in r.json);

  const sentNs = Number(process.hrtime.bigint());
  r = await req('POST', '/api/v1/apply', WEB.replace('- addresses: [10.244.1.6]\n', ''));
  const answeredNs = Number(process.hrtime.bigint());
  t.deepEqual(r.json.objects.map((o) => o.action), ['unchanged', 'configured']);
  t.deepEqual(r.json.diff.backendsRemove.map((b) => b.addr), ['10.244.1.6']);
  t.true(r.json.generation > gen);
  // programmed during the transaction: after its start, not after its end
  t.true(r.json.programmedSeconds > 0 && r.json.programmedSeconds <= r.json.syncSeconds, `${r.json.programmedSeconds} of ${r.json.syncSeconds}`);
  // the same instant on this host's monotonic clock: between the request's send and its answer
  t.true(r.json.programmedAtNs >= sentNs && r.json.programmedAtNs <= answeredNs, `${r.json.programmedAtNs} not in [${sentNs}, ${answeredNs}]`);
  // the daemon's own view starts when it read the request, before the transaction started
  t.true(r.json.receivedToProgrammedSeconds >= r.json.programmedSeconds && r.json.receivedToProgrammedSeconds * 1e9 <= answeredNs - sentNs,
    `${r.json.receivedToProgrammedSeconds} s vs ${r.json.programmedSeconds} s and ${(answeredNs - sentNs) / 1e9} s`);

  r = await req('GET', '/api/v1/services');
  t.is(r.json.kind, 'ServiceList');
  t.deepEqual(r.json.items.map((s) => s.metadata.name), ['web']);
  r = await req('GET', '/api/v1/namespaces/shop/services/web');
  t.is(r.json.spec.clusterIP, '10.96.0.10');
  r = await req('GET', '/api/v1/namespaces/shop/endpointslices/web-1');
  t.is(r.json.endpoints.length, 1);
  r = await req('GET', '/api/v1/endpointslices?namespace=other');
  t.deepEqual(r.json.items, []);
  r = await req('GET', '/api/v1/nodeconfig');
  t.is(r.json.metadata.name, 'node-a');
  r = await req('GET', '/api/v1/frontends');
  t.like(r.json.items[0], { service: 'shop/web', kind: 'ClusterIP', addr: '10.96.0.10', port: 80, proto: 'TCP' });

  r = await req('DELETE', '/api/v1/namespaces/shop/endpointslices/web-1');
  t.is(r.status, 200);
  t.deepEqual(r.json.objects, [{ kind: 'EndpointSlice', namespace: 'shop', name: 'web-1', action: 'deleted' }]);
  r = await req('GET', '/api/v1/namespaces/shop/endpointslices/web-1');
  t.is(r.status, 404);
  r = await req('POST', '/api/v1/delete', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' } }));
  t.is(r.status, 200, r.text);
  r = await req('GET', '/api/v1/generation');
  t.like(r.json, { services: 0, endpointSlices: 0, frontends: 0, backends: 0, generation: dp.generation() });
});

test('JSON bodies: single object, array and List all work', async (t) => {
  const { req } = await start(t);
  const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { clusterIP: ip, ports: [{ port: 80 }] } });
  t.is((await req('POST', '/api/v1/apply', JSON.stringify(svc('a', '10.96.0.1')), { 'content-type': 'application/json' })).status, 200);
  t.is((await req('POST', '/api/v1/apply', JSON.stringify([svc('b', '10.96.0.2')]))).status, 200);
  const r = await req('POST', '/api/v1/apply', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svc('c', '10.96.0.3'), svc('d', '10.96.0.4')] }));
  t.is(r.status, 200);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items.map((s) => `${s.metadata.namespace ?? 'default'}/${s.metadata.name}`), ['default/a', 'default/b', 'default/c', 'default/d']);
});

test('dryRun returns the diff and changes nothing', async (t) => {
  const { req, dp } = await start(t);
  const gen = dp.generation();
  const r = await req('POST', '/api/v1/apply?dryRun=true', NODE + '---' + WEB);
  t.is(r.status, 200);
  t.true(r.json.dryRun);
  t.deepEqual(r.json.diff.frontendsUpsert.map((f) => [f.op, f.addr, f.port]), [['add', '10.96.0.10', 80]]);
  t.is(r.json.diff.backendsUpsert.length, 2);
  t.is(dp.generation(), gen);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  t.is(dp.core.ir.frontends.size, 0);
});

test('atomicity: a body with bad objects applies nothing and reports every error', async (t) => {
  const { req, dp } = await start(t);
  const gen = dp.generation();
  const body = WEB + `---
apiVersion: v1
kind: Service
metadata: {name: bad1, namespace: shop}
spec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: bad2, namespace: shop}
spec: {clusterIP: 10.96.0.31, ports: [{port: 0}]}
`;
  const r = await req('POST', '/api/v1/apply', body);
  t.is(r.status, 422);
  const causes = r.json.details.causes;
  t.is(causes.length, 2);
  t.like(causes[0], { kind: 'Service', namespace: 'shop', name: 'bad1', field: 'spec.clusterIP', reason: 'FieldValueInvalid' });
  t.like(causes[1], { kind: 'Service', namespace: 'shop', name: 'bad2', field: 'spec.ports[0].port' });
  t.regex(r.json.message, /bad1.*\n.*bad2/s);
  t.is(dp.generation(), gen);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);

  // a clash between two objects of the same request is refused as a whole too
  const clash = WEB + '---\n' + WEB.split('---')[0].replace('name: web,', 'name: web2,');
  const r2 = await req('POST', '/api/v1/apply', clash);
  t.is(r2.status, 422);
  t.regex(r2.json.message, /Service shop\/web2: spec\.clusterIPs\[0\]: Invalid value: clusterIP 10\.96\.0\.10: already allocated to Service shop\/web/);
  t.deepEqual((await req('GET', '/api/v1/services')).json.items, []);
  t.is(dp.core.ir.frontends.size, 0);
});

test('trace: service hit, no endpoints (reject), no service (to_host); tracing creates no flow', async (t) => {
  const { req } = await start(t);
  t.is((await req('POST', '/api/v1/apply', NODE + '---' + WEB + '---' + EMPTY)).status, 200);
  let r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.7', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 }));
  t.is(r.status, 200, r.text);
  t.like(r.json, { verdict: 'forward', reason: 'fwd_nat', conntrack: 'new', selection: 'maglev', outPort: 1 });
  t.like(r.json.frontend, { service: 'shop/web', kind: 'ClusterIP', addr: '10.96.0.10', port: 80 });
  t.true(['10.244.1.5', '10.244.1.6'].includes(r.json.backend.addr));
  t.deepEqual([r.json.output.dst, r.json.output.dport], [r.json.backend.addr, 8080]);
  t.true(r.json.stages.includes('dnat'));

  r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.7', dst: '10.96.0.20', proto: 'tcp', dport: 80 }));
  t.like(r.json, { verdict: 'reject', reason: 'reject_no_endpoints' });
  t.is(r.json.frontend.service, 'shop/empty');

  r = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.7', dst: '10.96.9.9', proto: 'UDP', dport: 53 }));
  t.like(r.json, { verdict: 'to_host', reason: 'host_no_match' });
  t.is(r.json.frontend, undefined);

  r = await req('GET', '/api/v1/conntrack');
  t.deepEqual(r.json.items, []);
});

test('counters and conntrack map ids to services after real packets', async (t) => {
  const { req, dp } = await start(t);
  t.is((await req('POST', '/api/v1/apply', NODE + '---' + WEB)).status, 200);
  const res = dp.core.run([
    frame({ src: '10.1.0.7', dst: '10.96.0.10', proto: 'TCP', sport: 40001, dport: 80, flags: 'S' }),
    frame({ src: '10.1.0.8', dst: '10.96.0.10', proto: 'TCP', sport: 40002, dport: 80, flags: 'S' }),
  ]);
  t.deepEqual(res.map((x) => x.verdict), ['forward', 'forward']);
  let r = await req('GET', '/api/v1/counters');
  t.is(r.status, 200);
  const web = r.json.services.find((s) => s.service === 'shop/web');
  t.is(web.packets, 2);
  t.true(web.bytes > 0);
  t.is(r.json.backends.reduce((n, b) => n + b.packets, 0), 2);
  t.is(r.json.global.forward, 2);
  r = await req('GET', '/api/v1/conntrack?service=shop/web');
  t.is(r.json.items.length, 2);
  t.true(r.json.items.every((f) => f.service === 'shop/web' && f.vip === '10.96.0.10'));
  r = await req('GET', '/api/v1/conntrack?client=10.1.0.8');
  t.deepEqual(r.json.items.map((f) => f.client), ['10.1.0.8']);
  r = await req('GET', '/api/v1/conntrack?service=shop/none');
  t.deepEqual(r.json.items, []);
});

/** Minimal Prometheus text exposition parser: returns samples, throws on any malformed line. */
function parseExposition(text) {
  const types = new Map(), samples = [];
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) { const [, name] = line.split(' ', 3).slice(1); if (!metricName.test(name)) throw new Error(`bad HELP: ${line}`); continue; }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!metricName.test(name) || !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`bad TYPE: ${line}`);
      if (types.has(name)) throw new Error(`duplicate TYPE for ${name}`);
      types.set(name, type); continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let consumed = 0, lm;
      while ((lm = re.exec(m[3])) !== null) { labels[lm[1]] = lm[2]; consumed += lm[0].length; }
      if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    const base = m[1].replace(/_(bucket|sum|count|total)$/, '');
    if (!types.has(m[1]) && !types.has(base)) throw new Error(`sample without TYPE: ${line}`);
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return { types, samples };
}

test('GET /metrics is valid Prometheus exposition with kube-proxy and wdp metrics', async (t) => {
  const { req, dp } = await start(t);
  t.is((await req('POST', '/api/v1/apply', NODE + '---' + WEB)).status, 200);
  dp.core.run([frame({ src: '10.1.0.7', dst: '10.96.0.10', proto: 'TCP', sport: 40001, dport: 80, flags: 'S' }),
    frame({ src: '10.1.0.7', dst: '10.96.9.9', proto: 'TCP', sport: 40001, dport: 80, flags: 'S', ttl: 1 })]);
  const r = await req('GET', '/metrics');
  t.is(r.status, 200);
  t.regex(r.headers.get('content-type'), /^text\/plain/);
  const { types, samples } = parseExposition(r.text);
  t.is(types.get('kubeproxy_sync_proxy_rules_duration_seconds'), 'histogram');
  t.is(types.get('kubeproxy_network_programming_duration_seconds'), 'histogram');
  t.is(types.get('kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 'gauge');
  t.is(types.get('wdp_packets_total'), 'counter');
  t.is(types.get('wdp_drops_total'), 'counter');
  const get = (name, labels = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  t.is(get('kubeproxy_sync_proxy_rules_duration_seconds_count'), 1);
  t.is(get('kubeproxy_sync_proxy_rules_duration_seconds_bucket', { le: '+Inf' }), 1);
  t.true(get('kubeproxy_sync_proxy_rules_last_timestamp_seconds') > 1.7e9);
  t.is(get('wdp_packets_total', { verdict: 'forward' }), 1);
  t.is(get('wdp_service_packets_total', { service: 'shop/web', kind: 'ClusterIP' }), 1);
  t.is(get('kubeproxy_sync_proxy_rules_endpoint_changes_total'), 1);
  t.is(get('wdp_services'), 1);
  t.true(samples.some((s) => s.name === 'wdp_drops_total' && s.labels.reason?.startsWith('drop_')));
  // the parser itself rejects broken text (so the assertions above mean something)
  t.throws(() => parseExposition('# TYPE x counter\nx{a="1} 3\n'));
  t.throws(() => parseExposition('y 1\n'));
});

test('/metrics: the kube-proxy metrics carry kube-proxy 1.33+ labels (ip_family: every sync per family of the node, programming latency per slice family), types and buckets', async (t) => {
  const { req } = await start(t);
  const startedMs = Date.now(); // (after the control plane was created)
  const metrics = async () => parseExposition((await req('GET', '/metrics')).text);
  const same = (a, b) => Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  const value = (samples, name, labels) => samples.find((s) => s.name === name && same(s.labels, labels))?.value;
  // an IPv4-only node: IPv4 alone
  t.is((await req('POST', '/api/v1/apply', NODE)).status, 200);
  let { types, samples } = await metrics();
  t.is(value(samples, 'kubeproxy_sync_proxy_rules_duration_seconds_count', { ip_family: 'IPv4' }), 1);
  t.true(value(samples, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', { ip_family: 'IPv4' }) > 1.7e9);
  t.true(value(samples, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: 'IPv4' }) > 1.7e9);
  t.false(samples.some((s) => s.name.startsWith('kubeproxy_') && s.labels.ip_family === 'IPv6'), 'no IPv6 proxier on an IPv4 node');
  t.false(samples.some((s) => /^kubeproxy_(sync_proxy_rules_(duration_seconds|last_)|network_programming)/.test(s.name) && !s.labels.ip_family), 'no unlabelled series');
  // kube-proxy's buckets: ExponentialBuckets(0.001, 2, 15) for syncs; MergeBuckets (with its leading 0) for programming latency
  const les = (name, labels) => samples.filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.labels.le);
  t.deepEqual(les('kubeproxy_sync_proxy_rules_duration_seconds', { ip_family: 'IPv4' }), [...Array.from({ length: 15 }, (_, i) => String(0.001 * 2 ** i)), '+Inf']);
  // a dual-stack node, then a change with an IPv6 slice triggered after the start, at least 1.1 s ago
  t.is((await req('POST', '/api/v1/apply', NODE.replace('nodeAddresses: [192.168.0.1]', 'nodeAddresses: [192.168.0.1, "fd00::1"]'))).status, 200);
  await new Promise((r) => setTimeout(r, Math.max(0, startedMs + 1300 - Date.now())));
  const trigger = new Date(startedMs + 100).toISOString();
  const v6 = WEB.replace('clusterIP: 10.96.0.10', 'clusterIPs: ["fd00:96::10"]\n  ipFamilies: [IPv6]').replace('name: web-1', 'name: web-6')
    .replace('labels: {kubernetes.io/service-name: web}}', `labels: {kubernetes.io/service-name: web}, annotations: {endpoints.kubernetes.io/last-change-trigger-time: "${trigger}"}}`)
    .replace('addressType: IPv4', 'addressType: IPv6').replace('[10.244.1.5]', '["fd00:244::5"]').replace('[10.244.1.6]', '["fd00:244::6"]');
  t.is((await req('POST', '/api/v1/apply', v6)).status, 200, v6);
  ({ types, samples } = await metrics());
  t.is(value(samples, 'kubeproxy_sync_proxy_rules_duration_seconds_count', { ip_family: 'IPv4' }), 3);
  t.is(value(samples, 'kubeproxy_sync_proxy_rules_duration_seconds_count', { ip_family: 'IPv6' }), 2);
  t.true(value(samples, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', { ip_family: 'IPv6' }) > 1.7e9);
  t.true(value(samples, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: 'IPv6' }) > 1.7e9);
  t.is(value(samples, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv6' }), 1);
  t.is(value(samples, 'kubeproxy_network_programming_duration_seconds_bucket', { ip_family: 'IPv6', le: '1' }), 0, 'observed as at least 1.1 s');
  t.is(value(samples, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }), undefined, 'the IPv4 proxier did not program that slice');
  // a trigger time from before the start is not this proxy's latency (kube-proxy: after its change tracker started)
  const old = v6.replace(trigger, new Date(startedMs - 3_600_000).toISOString()).replace('["fd00:244::6"]', '["fd00:244::7"]');
  t.is((await req('POST', '/api/v1/apply', old)).status, 200);
  ({ samples } = await metrics());
  t.is(value(samples, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv6' }), 1, 'not observed');
  t.is(value(samples, 'kubeproxy_sync_proxy_rules_endpoint_changes_total', {}), 2);
  const programming = les('kubeproxy_network_programming_duration_seconds', { ip_family: 'IPv6' });
  t.is(programming.length, 82, '0, 0.25, 0.5, 1..59, 60..115 by 5, 120..300 by 30, +Inf');
  t.deepEqual([programming[0], programming[1], programming[3], programming[61], programming[62], programming[74], programming[80]], ['0', '0.25', '1', '59', '60', '120', '300']);
  // kube-proxy's types; the change counters have no labels (the change trackers serve every family)
  for (const [name, type] of [['kubeproxy_sync_proxy_rules_duration_seconds', 'histogram'], ['kubeproxy_network_programming_duration_seconds', 'histogram'],
    ['kubeproxy_sync_proxy_rules_last_timestamp_seconds', 'gauge'], ['kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', 'gauge'],
    ['kubeproxy_sync_proxy_rules_service_changes_total', 'counter'], ['kubeproxy_sync_proxy_rules_endpoint_changes_total', 'counter']]) t.is(types.get(name), type, name);
  t.deepEqual(samples.filter((s) => s.name === 'kubeproxy_sync_proxy_rules_endpoint_changes_total').map((s) => [s.labels, s.value]), [[{}, 2]]);
});

test('healthz: kube-proxy shape on its own listener, 503 when not forwarding', async (t) => {
  let forwarding = true;
  const { cp, req } = await start(t, { isForwarding: () => forwarding, token: 'sekret' });
  let r = await fetch(cp.healthzUrl + '/healthz'); // no token needed on the healthz listener
  t.is(r.status, 200);
  const body = await r.json();
  t.deepEqual(Object.keys(body).sort(), ['currentTime', 'lastUpdated', 'nodeEligible']);
  t.true(body.nodeEligible);
  t.false(Number.isNaN(Date.parse(body.lastUpdated)));
  forwarding = false;
  r = await fetch(cp.healthzUrl + '/healthz');
  t.is(r.status, 503);
  t.is((await fetch(cp.healthzUrl + '/api/v1/services')).status, 404); // the API is not on the healthz port
  t.is((await req('GET', '/api/v1/generation')).status, 200);
});

test('unix socket listener has mode 0600 and serves the API', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-api-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'api.sock');
  const cp = await createControlPlane({ dataplane: new LocalDataplane(), listen: `unix:${path}`, healthz: false });
  t.teardown(() => cp.close());
  t.is(cp.url, `unix:${path}`);
  t.is(statSync(path).mode & 0o777, 0o600);
  const body = await new Promise((resolve, reject) => {
    request({ socketPath: path, path: '/api/v1/generation', method: 'GET' }, (res) => {
      let s = ''; res.on('data', (c) => { s += c; }); res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(s) }));
    }).on('error', reject).end();
  });
  t.is(body.status, 200);
  t.is(body.json.services, 0);
});

test('error answers carry the Kubernetes Status reason of their code; a trace with a bad src names src alone', async (t) => {
  const { req } = await start(t);
  const bad = await req('POST', '/api/v1/trace', JSON.stringify({ src: 'nowhere', dst: '10.96.0.10', proto: 'TCP', dport: 80 }));
  t.is(bad.status, 422, bad.text);
  t.is(bad.json.reason, 'Invalid');
  t.regex(bad.json.message, /src/);
  t.notRegex(bad.json.message, /same address family/, 'an invalid src is not also a family mismatch');
  const mixed = await req('POST', '/api/v1/trace', JSON.stringify({ src: '10.1.0.7', dst: 'fd00::1', proto: 'TCP', dport: 80 }));
  t.is(mixed.status, 422);
  t.regex(mixed.json.message, /same address family/);
  // the routes that throw an HTTP error (ports, capture, live trace) answer through one mapping
  for (const [code, reason] of [[404, 'NotFound'], [409, 'Conflict'], [422, 'Invalid'], [429, 'TooManyRequests'], [503, 'ServiceUnavailable'], [500, 'InternalError']]) t.is(statusReason(code), reason);
});
