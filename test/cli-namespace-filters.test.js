// `-n NS` and a bare `--service NAME` mean the same for every `wdp get` resource: frontends and
// backends of the namespace's services only, a bare service name in -n's namespace (else
// default), as `get conntrack --service` and `get services -n` already read them.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';

const services = (r) => [...new Set(JSON.parse(r.stdout).items.map((x) => x.service))].sort();

test('get frontends/backends: -n keeps that namespace\'s services; a bare --service is in -n\'s namespace, else default', async (t) => {
  const { cp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  const applied = await run(['apply', '-f', 'examples/']);
  t.is(applied.code, 0, applied.stderr);
  for (const res of ['frontends', 'backends']) {
    const all = await run(['get', res, '-o', 'json']);
    t.true(services(all).includes('ingress/ingress-gateway') && services(all).includes('shop/web'), all.stdout);
    const shop = await run(['get', res, '-n', 'shop', '-o', 'json']);
    t.is(shop.code, 0, shop.stderr);
    t.deepEqual(services(shop).filter((s) => !s.startsWith('shop/')), [], `${res} -n shop: only shop's`);
    t.true(services(shop).includes('shop/web'));
    t.deepEqual(services(await run(['get', res, '-n', 'shop', '-A', '-o', 'json'])), services(all), `${res} -A: every namespace`);
    t.deepEqual(services(await run(['get', res, '--service', 'web', '-n', 'shop', '-o', 'json'])), ['shop/web'], `${res} --service web -n shop`);
    t.deepEqual(services(await run(['get', res, '--service', 'shop/web', '-o', 'json'])), ['shop/web']);
    t.deepEqual(services(await run(['get', res, '--service', 'kube-dns', '-n', 'kube-system', '-o', 'json'])), ['kube-system/kube-dns']);
  }
});

test('get conntrack -n without --service: flows are listed per service, so it asks for one instead of ignoring -n', async (t) => {
  const { cp } = await startControlPlane(t);
  const r = await wdp(['get', 'conntrack', '-n', 'shop'], cp.url);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: get conntrack -n shop: give the service too \(--service NAME\)/);
});
