// `wdp get conntrack` shows one page of flows (--limit, default 1000): when the daemon has more,
// it says so on stderr instead of presenting the page as every flow.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';
import { frame } from '../dist/src/packet/build.js';

test('get conntrack --limit N with more flows than N says that more exist', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  dp.core.run([1, 2, 3].map((i) => frame({ src: `10.1.0.${i}`, dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S' })));
  const two = await run(['get', 'conntrack', '--limit', '2']);
  t.is(two.code, 0, two.stderr);
  t.is(two.stdout.trim().split('\n').length, 3, two.stdout); // header + 2 flows
  t.is(two.stderr, 'showing the first 2 flows: the daemon has more (raise --limit, or narrow with --service/--client/--backend/--proto)\n');
  const all = await run(['get', 'conntrack', '--limit', '3']);
  t.is(all.stderr, '');
  const json = await run(['get', 'conntrack', '--limit', '2', '-o', 'json']);
  t.is(JSON.parse(json.stdout).items.length, 2);
  t.truthy(JSON.parse(json.stdout).metadata.continue, 'json keeps the continue token');
});
