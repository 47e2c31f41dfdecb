// `wdp get conntrack -o wide` (and the API's flows) name the flag of a flow with the node itself at
// one end — its client or its backend a node address (a hostNetwork endpoint) — whose packets keep
// their TTL (docs/core.md "Time exceeded"): `node`, next to snat, hairpin and the others.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';
import { frame } from '../dist/src/packet/build.js';

test('get conntrack shows the node flag on the node\'s own flow and not on a pod\'s', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  // the node's own address (examples/node.yaml: its masquerade address) and a pod, to the ClusterIP
  const r = dp.core.run(['192.168.10.11', '10.244.1.10'].map((src) => frame({ src, dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S' })));
  t.deepEqual(r.map((x) => x.reason), ['fwd_nat', 'fwd_nat']);
  const json = await run(['get', 'conntrack', '-o', 'json']);
  t.is(json.code, 0, json.stderr);
  const flags = Object.fromEntries(JSON.parse(json.stdout).items.map((f) => [f.client, f.flags]));
  t.true(flags['192.168.10.11'].includes('node'), JSON.stringify(flags));
  t.false(flags['10.244.1.10'].includes('node'), JSON.stringify(flags));
  const wide = await run(['get', 'conntrack', '-o', 'wide']);
  t.is(wide.code, 0, wide.stderr);
  const rows = wide.stdout.trim().split('\n');
  const col = (row) => row.trim().split(/\s+/).at(-1);
  t.is(col(rows.find((l) => l.includes('192.168.10.11:41000'))), 'node', wide.stdout);
  t.is(col(rows.find((l) => l.includes('10.244.1.10:41000'))), '-', wide.stdout);
});
