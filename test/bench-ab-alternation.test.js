// The A/B harnesses in bench/ (ab-builds.mjs, ab-control-daemon.mjs) share one alternation: ABBA
// rounds, so a shared machine's load drift hits every variant alike.
import test from 'ava';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternateRuns, runJsonChild } from '../bench/ab-builds.mjs';

test('alternateRuns runs the variants in ABBA order and keeps each one\'s results, leaving out failed runs', (t) => {
  const order = [];
  let n = 0;
  const by = alternateRuns(4, ['a', 'b', 'c'], (v) => { order.push(v); n++; return v === 'b' && n === 2 ? undefined : `${v}${n}`; });
  t.deepEqual(order, ['a', 'b', 'c', 'c', 'b', 'a', 'a', 'b', 'c', 'c', 'b', 'a']);
  t.deepEqual(by.get('a'), ['a1', 'a6', 'a7', 'a12']);
  t.deepEqual(by.get('b'), ['b5', 'b8', 'b11'], 'the failed run (undefined) is left out');
  t.deepEqual(by.get('c'), ['c3', 'c4', 'c9', 'c10']);
});

test('runJsonChild answers a child\'s last JSON line with the env given, and throws with its stderr when it fails', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ab-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ok = join(dir, 'ok.mjs'), bad = join(dir, 'bad.mjs');
  writeFileSync(ok, 'console.log("noise"); console.log(JSON.stringify({ v: process.env.AB_TEST_V, args: process.argv.slice(2) }));');
  writeFileSync(bad, 'console.error("simulated failure"); process.exit(3);');
  t.deepEqual(runJsonChild(ok, ['x', 'y'], { AB_TEST_V: 'one' }), { v: 'one', args: ['x', 'y'] });
  t.throws(() => runJsonChild(bad, [], {}), { message: /run failed: simulated failure/ });
});
