// `wdp demo --rounds N` bounds the run in both of its modes, as `wdp demo --help` and
// docs/running.md say: HTTP request rounds in namespaces, one-second measuring rounds on synthetic
// traffic (before, the synthetic run ignored it and ran its fixed time).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { rootGate } from './lib/root-gate.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const run = (args) => spawnSync(process.execPath, [WDP, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: 'true' } });

test('demo --mode synthetic --rounds 3: three rounds, then the summary', (t) => {
  const r = run(['demo', '--mode', 'synthetic', '--rounds', '3']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /in batches of \d+ for 3 one-second rounds\.$/m);
  t.deepEqual([...r.stdout.matchAll(/^ +round (\d+): [\d.]+ Mpps$/gm)].map((m) => Number(m[1])), [1, 2, 3]);
  t.regex(r.stdout, /\[4\/4\] \d+ packets in/);
});

test('demo --mode synthetic --rounds with --duration: whichever ends first', (t) => {
  const r = run(['demo', '--mode', 'synthetic', '--rounds', '50', '--duration', '1500ms']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /for 1\.5 s or 50 one-second rounds/);
  t.true([...r.stdout.matchAll(/^ +round \d+:/gm)].length <= 2, r.stdout);
});

test('demo --help says what --rounds counts in each mode, and what --mode auto is', (t) => {
  const r = run(['demo', '--help']);
  t.is(r.status, 0);
  const text = r.stdout.replace(/\s+/g, ' ');
  t.regex(text, /--rounds <n> rounds to run: HTTP request rounds in namespaces .* one-second measuring rounds on synthetic traffic/);
  t.regex(text, /whichever ends first/);
  // and what --mode auto (the default) does
  t.regex(text, /--mode <mode> netns \(needs root\), synthetic, or auto: netns where it can run, else synthetic/);
});

// --duration is the rounds' time, from the first round: before, it was counted from before the
// namespaces and the daemon were set up, so `--duration 1` sent no request at all
rootGate(test).test('demo (namespaces) --duration 200ms: one round of requests is sent, then it ends', (t) => {
  const r = run(['demo', '--mode', 'netns', '--duration', '200ms']);
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /^ +round 1: 30 requests in \d+ ms$/m);
  t.regex(r.stdout, /\[6\/6\] Cleaning up/);
});
