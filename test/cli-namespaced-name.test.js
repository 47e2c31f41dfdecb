// `wdp get services|endpointslices NAME` and `wdp delete service|endpointslice NAME` take
// NAMESPACE/NAME, as `--service` and `wdp get conntrack NAME` do (a user who just typed
// `--service shop/web` types `get svc shop/web`): it was looked up as a name in the default
// namespace ("Service default/shop/web not found"). A namespace given twice, differently, is refused.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';

async function withExamples(t) {
  const { cp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  const applied = await run(['apply', '-f', 'examples/']);
  t.is(applied.code, 0, applied.stderr);
  return run;
}

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
