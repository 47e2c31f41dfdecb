// `wdp get conntrack -o wide` (and the API's flows) name the flag of a flow with the node itself at
// one end — its client or its backend a node address (a hostNetwork endpoint) — whose packets keep
// their TTL (docs/core.md "Time exceeded"): `node`, next to snat, hairpin and the others; and a
// NodeConfig apply that changes the node's addresses decides it again for the flows alive.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';

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

test('a NodeConfig apply that adds a node address while a flow lives sets its node flag; removing it clears it (the flow table swept once each)', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wdp-nodeflag-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = fs.readFileSync('examples/node.yaml', 'utf8');
  const withExtra = path.join(dir, 'node.yaml');
  // the same NodeConfig with one more node address: 192.168.10.50 (a client's until now)
  fs.writeFileSync(withExtra, base.replace('    - 192.168.10.11\n', '    - 192.168.10.11\n    - 192.168.10.50\n'));
  t.not(fs.readFileSync(withExtra, 'utf8'), base);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  const syn = dp.core.run([frame({ src: '192.168.10.50', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'S', ttl: 64 })]);
  t.is(syn[0].reason, 'fwd_nat');
  t.is(parseFrame(syn[0].frame).ttl, 63);
  const flagsOf = async () => {
    const json = await run(['get', 'conntrack', '-o', 'json']);
    t.is(json.code, 0, json.stderr);
    return JSON.parse(json.stdout).items.find((f) => f.client === '192.168.10.50')?.flags;
  };
  const sweeps = () => dp.core.counters().global.ct_node_sweeps;
  t.false((await flagsOf()).includes('node'));
  const before = sweeps();
  const added = await run(['apply', '-f', withExtra]);
  t.is(added.code, 0, added.stderr);
  t.true((await flagsOf()).includes('node'), 'the client is the node now');
  t.is(sweeps(), before + 1);
  const ack = () => dp.core.run([frame({ src: '192.168.10.50', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 80, flags: 'A', seq: 2, ack: 1, ttl: 64 })])[0];
  t.is(parseFrame(ack().frame).ttl, 64, 'its next packet keeps its TTL');
  t.is((await run(['apply', '-f', 'examples/node.yaml'])).code, 0);
  t.false((await flagsOf()).includes('node'), 'no longer');
  t.is(sweeps(), before + 2);
  t.is(parseFrame(ack().frame).ttl, 63, 'decremented again');
});
