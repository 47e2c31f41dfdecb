// The `wdp` CLI, spawned as a real process against a control API served by this test process.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createControlPlane } from '../dist/src/api/server.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { frame } from '../dist/src/packet/build.js';
import { startControlPlane } from './lib/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'wdp.js');
const EXAMPLES = join(ROOT, 'examples');

function wdp(args, { env = {}, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, WDP_SERVER: '', WDP_TOKEN: '', ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) p.stdin.end(input); else p.stdin.end();
  });
}

async function start(t, opts = {}) {
  const { cp, dp } = await startControlPlane(t, opts);
  const env = { WDP_SERVER: cp.url, ...(opts.token ? { WDP_TOKEN: opts.token } : {}) };
  return { cp, dp, run: (args, o = {}) => wdp(args, { ...o, env: { ...env, ...(o.env ?? {}) } }) };
}

function tmp(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('every example applies cleanly (no errors, no warnings) and is listed', async (t) => {
  const { run, cp } = await start(t);
  const r = await run(['apply', '-f', 'examples/']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const created = r.stdout.trim().split('\n');
  t.true(created.every((l) => l.endsWith(' created')), r.stdout);
  t.true(created.includes('nodeconfig/node-a created'));
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  t.true(files.length >= 7);
  const svcs = cp.core.compiler.listServices().map((s) => s.key);
  t.deepEqual(svcs, ['ingress/ingress-gateway', 'kube-system/kube-dns', 'shop/api', 'shop/db', 'shop/payments-provider', 'shop/session-store', 'shop/web']);
  // re-applying is a no-op
  const again = await run(['apply', '-f', 'examples']);
  t.true(again.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged')), again.stdout);
});

test('get: aligned tables by default, json / yaml / wide on request', async (t) => {
  const { run } = await start(t);
  t.is((await run(['apply', '-f', 'examples/'])).code, 0);
  const r = await run(['get', 'services']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0], /^NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)$/);
  t.is(lines.length, 8);
  // aligned: every row's TYPE column starts where the header's does
  const col = lines[0].indexOf('TYPE');
  for (const l of lines.slice(1)) t.regex(l.slice(col), /^(ClusterIP|NodePort|LoadBalancer|ExternalName) /);
  t.true(lines.some((l) => /^shop\s+web\s+NodePort\s+10\.96\.12\.34\s+<none>\s+80:30080\/TCP$/.test(l)), r.stdout);

  const j = await run(['get', 'svc', '-n', 'shop', '-o', 'json']);
  const list = JSON.parse(j.stdout);
  t.is(list.kind, 'ServiceList');
  t.deepEqual(list.items.map((s) => s.metadata.name), ['api', 'db', 'payments-provider', 'session-store', 'web']);
  const y = await run(['get', 'endpointslices', '-o', 'yaml']);
  t.is(parseYaml(y.stdout).kind, 'EndpointSliceList');
  const w = await run(['get', 'svc', '-o', 'wide']);
  t.regex(w.stdout.split('\n')[0], /FRONTENDS\s+BACKENDS\s+AFFINITY\s+TRAFFIC-POLICY/);
  t.regex(w.stdout, /session-store .*ClientIP\s+ext=Cluster,int=Local/);
  const one = await run(['get', 'svc', 'web', '-n', 'shop', '-o', 'json']);
  t.is(JSON.parse(one.stdout).spec.clusterIP, '10.96.12.34');
  const fe = await run(['get', 'frontends']);
  t.regex(fe.stdout, /shop\/web\s+http\s+NodePort\s+192\.168\.10\.11:30080\/TCP\s+2\s+masquerade,external/);
});

test('diff shows the dataplane change and exits 1; no change exits 0; delete -f removes', async (t) => {
  const { run } = await start(t);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  t.is((await run(['diff', '-f', 'examples/nodeport.yaml'])).code, 0);
  const dir = tmp(t);
  const f = join(dir, 'web.yaml');
  const { readFileSync } = await import('node:fs');
  writeFileSync(f, readFileSync(join(EXAMPLES, 'nodeport.yaml'), 'utf8').replace('  - addresses: [10.244.2.22]\n', '  - addresses: [10.244.2.99]\n'));
  const d = await run(['diff', '-f', f]);
  t.is(d.code, 1, d.stderr);
  t.regex(d.stdout, /endpointslice\/shop\/web-8xq2z would be configured/);
  t.regex(d.stdout, /^- backend \d+ shop\/web 10\.244\.2\.22:8080 ready port=0$/m);
  t.regex(d.stdout, /^\+ backend \d+ shop\/web 10\.244\.2\.99:8080 ready port=0$/m);
  t.regex(d.stdout, /^~ frontend \d+ shop\/web http ClusterIP 10\.96\.12\.34:80\/TCP -> 2 backend\(s\)$/m);
  const del = await run(['delete', '-f', 'examples/nodeport.yaml']);
  t.is(del.code, 0, del.stderr);
  t.deepEqual(del.stdout.trim().split('\n'), ['service/shop/web deleted', 'endpointslice/shop/web-8xq2z deleted']);
  t.is((await run(['get', 'svc'])).stdout, 'No services found.\n');
});

test('apply from stdin, dry run, and delete by name', async (t) => {
  const { run, cp } = await start(t);
  const yaml = 'apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n';
  const dry = await run(['apply', '--dry-run', '-f', '-'], { input: yaml });
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /service\/x\/a created \(dry run\)\n\+ frontend 1 x\/a - ClusterIP 10\.96\.0\.1:80\/TCP -> 0 backend\(s\)/);
  t.is(cp.core.compiler.serviceCount(), 0);
  t.is((await run(['apply', '-f', '-'], { input: yaml })).code, 0);
  t.is(cp.core.compiler.serviceCount(), 1);
  const del = await run(['delete', 'service', 'a', '-n', 'x']);
  t.is(del.code, 0, del.stderr);
  t.is(cp.core.compiler.serviceCount(), 0);
});

test('trace, counters and conntrack commands', async (t) => {
  const { run, dp } = await start(t);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  const tr = await run(['trace', '--src', '10.1.0.1', '--dst', '10.96.12.34', '--proto', 'tcp', '--dport', '80']);
  t.is(tr.code, 0, tr.stderr);
  t.regex(tr.stdout, /^verdict:\s+forward \(fwd_nat\)$/m);
  t.regex(tr.stdout, /^frontend:\s+\d+ shop\/web http ClusterIP 10\.96\.12\.34:80$/m);
  t.regex(tr.stdout, /^rewritten:\s+10\.1\.0\.1:40000 -> 10\.244\.\d+\.\d+:8080$/m);
  const tj = JSON.parse((await run(['trace', '--src', '10.1.0.1', '--dst', '10.96.99.99', '--dport', '80', '-o', 'json'])).stdout);
  t.is(tj.verdict, 'to_host');

  dp.core.run([frame({ src: '10.1.0.1', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S' })]);
  const c = await run(['get', 'counters']);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /forward 1/);
  t.regex(c.stdout, /^shop\/web\s+1\s+\d+B$/m);
  const ct = await run(['get', 'conntrack']);
  t.regex(ct.stdout.split('\n')[0], /^PROTO\s+CLIENT\s+SERVICE-ADDRESS\s+BACKEND\s+STATE\s+SERVICE\s+IDLE$/);
  t.regex(ct.stdout, /^TCP\s+10\.1\.0\.1:41000\s+10\.96\.12\.34:80\s+10\.244\.\d+\.\d+:8080\s+tcp_syn\s+shop\/web\s+\d+s$/m);
  const ctj = JSON.parse((await run(['get', 'ct', '--service', 'shop/web', '-o', 'json'])).stdout);
  t.is(ctj.items.length, 1);
});

test('errors: one clear line each and a non-zero exit code', async (t) => {
  const { run } = await start(t, { token: 'tok' });
  const dir = tmp(t);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 99999}]}\n');
  let r = await run(['apply', '-f', bad]);
  t.is(r.code, 1);
  t.is(r.stderr, 'error: Service shop/web: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive\n');
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'kind: [\n');
  r = await run(['apply', '-f', broken]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: .*broken\.yaml: document 1: cannot parse \(line \d+, column \d+\)/);
  r = await run(['apply', '-f', join(dir, 'missing.yaml')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: cannot read .*missing\.yaml: ENOENT\n$/);
  r = await run(['get', 'svc'], { env: { WDP_TOKEN: 'wrong' } });
  t.is(r.code, 1);
  t.is(r.stderr, 'error: invalid bearer token\n');
  r = await run(['get', 'svc', '--token', 'tok']);
  t.is(r.code, 0);
  r = await run(['get', 'svc', '--server', 'http://127.0.0.1:1']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: cannot reach the wdp API at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  t.is(r.stderr.split('\n').length, 2);
  r = await run(['get', 'pods']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: unknown resource "pods"/);
  r = await run(['trace', '--src', '10.0.0.1']);
  t.not(r.code, 0);
  t.regex(r.stderr, /error: a dry-run trace needs --src and --dst/);
  r = await run(['delete', 'service', 'ghost']);
  t.is(r.code, 1);
  t.is(r.stderr, 'error: Service default/ghost: not found\n');
});

test('--help lists the commands', async (t) => {
  const r = await wdp(['--help']);
  t.is(r.code, 0);
  for (const c of ['apply', 'delete', 'get', 'diff', 'trace', 'start', 'demo', 'bench']) t.regex(r.stdout, new RegExp(`^  ${c} `, 'm'));
  t.regex(r.stdout, /WDP_SERVER/);
  const g = await wdp(['get', '--help']);
  t.regex(g.stdout, /services \(svc\), endpointslices \(eps\), conntrack \(ct\),\s+counters/);
});

test('talks to a unix-socket API (WDP_SERVER=unix:/path)', async (t) => {
  const dir = tmp(t);
  const sock = join(dir, 'wdp.sock');
  const cp = await createControlPlane({ dataplane: new LocalDataplane(), listen: `unix:${sock}`, healthz: false });
  t.teardown(() => cp.close());
  const yaml = 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n';
  const r = await wdp(['apply', '-f', '-'], { env: { WDP_SERVER: `unix:${sock}` }, input: yaml });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'service/default/a created\n');
  const s = await wdp(['--server', `unix:${sock}`, 'status']);
  t.regex(s.stdout, /^generation \d+, last updated .*: 1 services, 0 endpointslices, 1 frontends, 0 backends$/m);
});

test('get counters --rate: two snapshots, live packets per second overall and per service', async (t) => {
  const { run, dp } = await start(t);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  // traffic keeps flowing through the core for the whole time the CLI measures
  let sport = 42000;
  const pump = setInterval(() => {
    const frames = [];
    for (let i = 0; i < 10; i++) frames.push(frame({ src: '10.1.0.1', dst: '10.96.12.34', proto: 'TCP', sport: sport++, dport: 80, flags: 'S' }));
    dp.core.run(frames);
  }, 50);
  let r;
  try { r = await run(['get', 'counters', '--rate', '1', '-o', 'json']); } finally { clearInterval(pump); }
  t.is(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout);
  t.is(c.rates.seconds, 1);
  t.true(c.rates.rx_pps > 0 && c.rates.forward_pps > 0, JSON.stringify(c.rates));
  t.true(c.rates.services['shop/web'] > 0);
  const text = await run(['get', 'counters', '--rate', '0.2']);
  t.regex(text.stdout, /over the last 0\.2 s: rx [\d.]+ packets\/s/);
  t.regex(text.stdout.split('\n').find((l) => l.startsWith('SERVICE')) ?? '', /PACKETS\/S$/);
  const bad = await run(['get', 'counters', '--rate', 'soon']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /--rate takes a duration like 500ms, 30s, 1m30s or 1h \(a bare number is seconds\), got "soon"/);
});

test('get pages through large lists transparently: every object once', async (t) => {
  const { cp, run } = await start(t);
  const objs = [];
  // more than one CLI page (5000) of services
  for (let i = 0; i < 5200; i++) objs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'big' }, spec: { clusterIP: `10.${96 + (i >> 12)}.${(i >> 6) & 63}.${(i & 63) + 1}`, ports: [{ port: 80 }] } });
  const r = await fetch(cp.url + '/api/v1/apply', { method: 'POST', body: JSON.stringify(objs), headers: { 'content-type': 'application/json' } });
  t.is(r.status, 200, (await r.text()).slice(0, 300));
  const list = JSON.parse((await run(['get', 'svc', '-o', 'json'])).stdout);
  t.is(list.items.length, 5200);
  t.is(new Set(list.items.map((s) => s.metadata.name)).size, 5200);
  const c = JSON.parse((await run(['get', 'counters', '-o', 'json'])).stdout);
  t.is(c.services.length, 5200);
  const fe = JSON.parse((await run(['get', 'frontends', '-o', 'json'])).stdout);
  t.is(fe.items.length, 5200);
});

test('a daemon whose Services and EndpointSlices another writer owns (its Kubernetes watcher) warns on every change of them, as the API server warns; `wdp` prints it as kubectl does', async (t) => {
  const followed = 'this daemon follows the Kubernetes API server: "put back" at its next full sync';
  const { run, cp } = await start(t, { followed: { objects: followed } });
  const dir = tmp(t);
  const svc = join(dir, 'svc.yaml');
  writeFileSync(svc, 'apiVersion: v1\nkind: Service\nmetadata: {name: w, namespace: default}\nspec: {clusterIP: 10.96.7.7, ports: [{port: 80}]}\n');
  const warned = (r) => r.stderr.split('\n').filter((l) => l === `Warning: ${followed}`).length;
  const applied = await run(['apply', '-f', svc]);
  t.is(applied.code, 0, applied.stderr);
  t.is(warned(applied), 1, applied.stderr);
  const deleted = await run(['delete', 'service', 'w']);
  t.is(deleted.code, 0, deleted.stderr);
  t.is(warned(deleted), 1, deleted.stderr);
  // the header as the API server sends it
  const res = await fetch(`${cp.url}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: 'apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {clusterIP: 10.96.7.7, ports: [{port: 80}]}\n' });
  t.is(res.status, 200);
  t.is(res.headers.get('warning'), `299 - ${JSON.stringify(followed)}`);
  // a change of the node config alone, or a daemon without another writer: no warning
  const node = await fetch(`${cp.url}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: 'apiVersion: wdp.io/v1alpha1\nkind: NodeConfig\nmetadata: {name: n}\nspec: {}\n' });
  t.is(node.headers.get('warning'), null, await node.text());
  // the node config too, when the daemon builds it (from its Node): both warnings for both kinds
  const nodeFollowed = 'this daemon builds its NodeConfig from its Node';
  const both = await start(t, { followed: { objects: followed, nodeConfig: nodeFollowed } });
  const nodeFile = join(dir, 'node.yaml');
  writeFileSync(nodeFile, 'apiVersion: wdp.io/v1alpha1\nkind: NodeConfig\nmetadata: {name: n}\nspec: {}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: w, namespace: default}\nspec: {clusterIP: 10.96.7.7, ports: [{port: 80}]}\n');
  const nodeApplied = await both.run(['apply', '-f', nodeFile]);
  t.is(nodeApplied.code, 0, nodeApplied.stderr);
  t.deepEqual(nodeApplied.stderr.split('\n').filter((l) => l.startsWith('Warning: ')), [`Warning: ${followed}`, `Warning: ${nodeFollowed}`]);
  const plain = await start(t);
  const r = await plain.run(['apply', '-f', svc]);
  t.is(r.stderr, '');
});
