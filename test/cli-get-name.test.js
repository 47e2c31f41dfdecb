// `wdp get RESOURCE NAME` as kubectl reads it: the NAME of frontends, backends and conntrack is
// their Service (in -n's namespace, else default), the same as `--service NAME`; a Service that does
// not exist is an error, not an empty table; a resource that has no names (counters) or one name
// (nodeconfig) refuses a NAME it cannot honour instead of silently showing everything. A Service's or EndpointSlice's NAME may be NAMESPACE/NAME.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';

const services = (r) => [...new Set(JSON.parse(r.stdout).items.map((x) => x.service))].sort();

async function withExamples(t) {
  const { cp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  const applied = await run(['apply', '-f', 'examples/']);
  t.is(applied.code, 0, applied.stderr);
  return run;
}

test('get frontends|backends NAME: that Service\'s only, in -n\'s namespace (else default)', async (t) => {
  const run = await withExamples(t);
  for (const res of ['frontends', 'backends']) {
    const r = await run(['get', res, 'web', '-n', 'shop', '-o', 'json']);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(services(r), ['shop/web'], `${res} web -n shop`);
    const table = await run(['get', res, 'web', '-n', 'shop']);
    t.is(table.code, 0, table.stderr);
    t.false(/kube-system\/kube-dns|shop\/api/.test(table.stdout), table.stdout);
    t.deepEqual(services(await run(['get', res, 'kube-dns', '-n', 'kube-system', '-o', 'json'])), ['kube-system/kube-dns']);
    // a NAME and a different --service: which one is meant is not guessed
    const both = await run(['get', res, 'web', '--service', 'shop/api']);
    t.is(both.code, 1);
    t.regex(both.stderr, /^error: .*web.*shop\/api/m);
  }
});

test('get conntrack NAME -n NS: the Service\'s flows (no "give the service too" error)', async (t) => {
  const run = await withExamples(t);
  const r = await run(['get', 'conntrack', 'web', '-n', 'shop']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'No flows.\n');
});

test('get frontends|backends|conntrack of a Service that does not exist: an error naming it', async (t) => {
  const run = await withExamples(t);
  for (const args of [['frontends', '--service', 'shop/nosuch'], ['backends', 'nosuch', '-n', 'shop'], ['conntrack', '--service', 'shop/nosuch'], ['frontends', 'nosuch']]) {
    const r = await run(['get', ...args]);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    t.regex(r.stderr, /^error: Service (shop|default)\/nosuch not found$/m, args.join(' '));
    t.is(r.stdout, '', args.join(' '));
  }
});

test('get frontends|backends with nothing to list says so instead of printing a bare header', async (t) => {
  const run = await withExamples(t);
  const f = await run(['get', 'frontends', '-n', 'empty-ns']);
  t.is(f.code, 0, f.stderr);
  t.is(f.stdout, 'No frontends found.\n');
  const b = await run(['get', 'backends', '-n', 'empty-ns']);
  t.is(b.stdout, 'No backends found.\n');
});

test('get counters NAME and get nodeconfig OTHER are refused; get nodeconfig with its own name shows it', async (t) => {
  const run = await withExamples(t);
  const c = await run(['get', 'counters', 'web']);
  t.is(c.code, 1);
  t.regex(c.stderr, /^error: get counters takes no name/m);
  const other = await run(['get', 'nodeconfig', 'node-b']);
  t.is(other.code, 1);
  t.regex(other.stderr, /^error: NodeConfig "node-b" not found \(the daemon's is "node-a"\)$/m);
  const own = await run(['get', 'nodeconfig', 'node-a', '-o', 'json']);
  t.is(own.code, 0, own.stderr);
  t.is(JSON.parse(own.stdout).metadata.name, 'node-a');
});

test('get conntrack --client/--backend/--proto: the API\'s flow filters (docs/api.md), checked locally', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  const { frame } = await import('../dist/src/packet/build.js');
  dp.core.run([frame({ src: '10.1.0.1', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S' }),
    frame({ src: '10.1.0.2', dst: '10.96.12.34', proto: 'TCP', sport: 41001, dport: 80, flags: 'S' })]);
  const clients = (r) => JSON.parse(r.stdout).items.map((f) => f.client).sort();
  t.deepEqual(clients(await run(['get', 'conntrack', '-o', 'json'])), ['10.1.0.1', '10.1.0.2']);
  const one = await run(['get', 'conntrack', '--client', '10.1.0.2', '-o', 'json']);
  t.is(one.code, 0, one.stderr);
  t.deepEqual(clients(one), ['10.1.0.2']);
  t.deepEqual(clients(await run(['get', 'conntrack', '--proto', 'udp', '-o', 'json'])), []);
  t.deepEqual(clients(await run(['get', 'ct', 'web', '-n', 'shop', '--proto', 'TCP', '-o', 'json'])), ['10.1.0.1', '10.1.0.2']);
  const backend = JSON.parse(one.stdout).items[0].backend;
  t.true(clients(await run(['get', 'conntrack', '--backend', backend, '-o', 'json'])).includes('10.1.0.2'));
  const bad = await run(['get', 'conntrack', '--client', '10.1.0']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^error: --client takes an IP address, got "10\.1\.0"$/m);
  const badProto = await run(['get', 'conntrack', '--proto', 'icmp']);
  t.regex(badProto.stderr, /^error: --proto takes TCP, UDP or SCTP, got "icmp"$/m);
});

test('an option of another resource is refused, not ignored', async (t) => {
  const run = await withExamples(t);
  const r = await run(['get', 'frontends', '--client', '10.1.0.1']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: --client is an option of get conntrack, not of get frontends$/m);
  const s = await run(['get', 'services', '--service', 'shop/web']);
  t.regex(s.stderr, /^error: --service is an option of get conntrack, frontends and backends, not of get services$/m);
  const rate = await run(['get', 'services', '--rate', '1']);
  t.regex(rate.stderr, /^error: --rate is an option of get counters, not of get services$/m);
});

test('get services NAME -o wide counts its frontends and backends as the list does', async (t) => {
  const run = await withExamples(t);
  const row = (out) => out.split('\n').find((l) => /^shop\s+web\s/.test(l))?.split(/\s+/).join(' ');
  const list = await run(['get', 'services', '-n', 'shop', '-o', 'wide']);
  const one = await run(['get', 'services', 'web', '-n', 'shop', '-o', 'wide']);
  t.is(one.code, 0, one.stderr);
  t.regex(row(list.stdout), /\s[1-9]\d*\s+[1-9]\d*\s+None\s/, list.stdout);
  t.is(row(one.stdout), row(list.stdout));
});

test('get services EXTERNAL-IP as kubectl prints it: an ExternalName\'s name, LB ingress IPs or hostnames then external IPs', async (t) => {
  const run = await withExamples(t);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cli-ext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'lb.yaml'), `apiVersion: v1
kind: Service
metadata: {name: lbh, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.70.7
  externalIPs: [198.51.100.77]
  ports: [{port: 80, nodePort: 30777}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.7}, {hostname: lb.example.com}]
`);
  const applied = await run(['apply', '-f', join(dir, 'lb.yaml')]);
  t.is(applied.code, 0, applied.stderr);
  const ext = (out, name) => out.split('\n').find((l) => new RegExp(`^shop\\s+${name}\\s`).test(l))?.split(/\s+/)[4];
  const r = await run(['get', 'services', '-n', 'shop']);
  t.is(ext(r.stdout, 'payments-provider'), 'api.payments.example.com', r.stdout);
  t.is(ext(r.stdout, 'lbh'), '203.0.113.7,lb.example.com,198.51.100.77', r.stdout);
  t.is(ext(r.stdout, 'api'), '198.51.100.200', r.stdout);
});

// NAMESPACE/NAME, as --service and `get conntrack NAME` take it (a user who just typed `--service
// shop/web` types `get svc shop/web`): it was looked up as a name in the default namespace
// ("Service default/shop/web not found"). A namespace given twice, differently, is refused.
test('get services|endpointslices NAMESPACE/NAME: that object, as -n NAMESPACE NAME finds it', async (t) => {
  const run = await withExamples(t);
  for (const [res, qualified, ns, name] of [['services', 'shop/web', 'shop', 'web'], ['svc', 'shop/web', 'shop', 'web'], ['endpointslices', 'kube-system/kube-dns-x7k2p', 'kube-system', 'kube-dns-x7k2p']]) {
    const a = await run(['get', res, qualified, '-o', 'json']);
    t.is(a.code, 0, `${res} ${qualified}: ${a.stderr}`);
    const b = await run(['get', res, name, '-n', ns, '-o', 'json']);
    t.is(b.code, 0, b.stderr);
    t.deepEqual(JSON.parse(a.stdout), JSON.parse(b.stdout));
    t.is(JSON.parse(a.stdout).metadata.namespace, ns);
    t.is((await run(['get', res, qualified, '-n', ns])).code, 0, 'the same namespace twice is one');
  }
  const wide = await run(['get', 'svc', 'shop/web', '-o', 'wide']);
  t.is(wide.code, 0, wide.stderr);
  t.regex(wide.stdout, /\bshop\s+web\b/);
});

test('get/delete NAMESPACE/NAME with another -n, or a name of more than two parts: one error line, exit 1', async (t) => {
  const run = await withExamples(t);
  for (const [args, msg] of [
    [['get', 'svc', 'shop/web', '-n', 'kube-system'], /^error: get svc shop\/web -n kube-system: two namespaces/],
    [['get', 'eps', 'a/b/c'], /^error: get eps "a\/b\/c": a name is NAME or NAMESPACE\/NAME/],
    [['get', 'svc', '/web'], /a name is NAME or NAMESPACE\/NAME/],
    [['delete', 'service', 'shop/web', '-n', 'default'], /^error: delete service shop\/web -n default: two namespaces/],
  ]) {
    const r = await run(args);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stdout}`);
    t.regex(r.stderr, msg);
  }
  t.is(JSON.parse((await run(['get', 'svc', 'web', '-n', 'shop', '-o', 'json'])).stdout).metadata.name, 'web', 'nothing was deleted');
});

test('delete service|endpointslice NAMESPACE/NAME deletes that object; NAME alone is still in -n\'s namespace, else default', async (t) => {
  const run = await withExamples(t);
  const d = await run(['delete', 'service', 'shop/web']);
  t.is(d.code, 0, d.stderr);
  t.regex(d.stdout, /^service\/shop\/web deleted$/m);
  t.is((await run(['get', 'svc', 'web', '-n', 'shop'])).code, 1, 'gone');
  const e = await run(['delete', 'endpointslice', 'kube-dns-x7k2p', '-n', 'kube-system']);
  t.is(e.code, 0, e.stderr);
  const none = await run(['delete', 'service', 'db']);
  t.is(none.code, 1);
  t.regex(none.stderr, /default\/db/, 'NAME alone: the default namespace');
});
