// Every duration flag of the CLI takes the same forms (src/util/duration.ts): Go's ("30s", "1m30s",
// "500ms", "1.5h", "50us") or a bare number in the flag's own unit, as before — `wdp demo
// --duration 30` seconds, `bench kube --min-sync-period 1000` ms, `bench e2e --wdp-busy-poll 50`
// µs. Bad input is one line naming the flag and the forms. (Before, `wdp demo --duration 30s` and
// `get counters --rate 500ms` were refused and the bench's times took bare numbers only.)
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { parseDurationFlag, formatDuration } from '../dist/src/util/duration.js';
import { runWdp } from './lib/wdp-cli.js';

const NOWHERE = 'http://127.0.0.1:9'; // nothing listens: a flag read well fails on the request
const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const run = (args) => spawnSync(process.execPath, [WDP, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: 'true' } });

test('one parser: Go forms, and a bare number in the flag\'s unit', (t) => {
  const s = { flag: '--x', unit: 's' };
  t.is(parseDurationFlag('30', s), 30);
  t.is(parseDurationFlag('30s', s), 30);
  t.is(parseDurationFlag('1m30s', s), 90);
  t.is(parseDurationFlag('500ms', s), 0.5);
  t.is(parseDurationFlag('1.5h', s), 5400);
  t.is(parseDurationFlag('.5s', s), 0.5);
  t.is(parseDurationFlag('1000', { flag: '--x', unit: 'ms' }), 1000);
  t.is(parseDurationFlag('1s', { flag: '--x', unit: 'ms' }), 1000);
  t.is(parseDurationFlag('1.1ms', { flag: '--x', unit: 'us', integer: true }), 1100);
  t.is(parseDurationFlag('50µs', { flag: '--x', unit: 'us' }), 50);
  for (const bad of ['', 'x', '1d', '1m30', 's', '1 s', '30sec', '--1s']) {
    t.throws(() => parseDurationFlag(bad, s), { message: new RegExp(`^--x takes a duration like 500ms, 30s, 1m30s or 1h \\(a bare number is seconds\\), got ${JSON.stringify(JSON.stringify(bad)).slice(1, -1)}$`) }, bad);
  }
  t.throws(() => parseDurationFlag('-1s', { ...s, min: 0, above: true }), { message: '--x must be a positive duration, got "-1s"' });
  t.throws(() => parseDurationFlag('0', { ...s, min: 0, above: true }), { message: '--x must be a positive duration, got "0"' });
  t.throws(() => parseDurationFlag('10ms', { ...s, min: 0.05 }), { message: '--x must be at least 50ms, got "10ms"' });
  t.throws(() => parseDurationFlag('61m', { ...s, max: 3600 }), { message: '--x must be at most 1h, got "61m"' });
  t.throws(() => parseDurationFlag('1.5ms', { flag: '--x', unit: 'ms', integer: true }), { message: '--x takes a whole number of milliseconds, got "1.5ms"' });
  t.is(formatDuration(90_000_000), '1m30s');
  t.is(formatDuration(500), '500µs');
});

test('wdp demo --duration takes 500ms as trace does (synthetic run, bounded)', (t) => {
  const r = run(['demo', '--mode', 'synthetic', '--duration', '500ms']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /for 0\.5 s/);
  const bad = run(['demo', '--duration', '30x']);
  t.is(bad.status, 2);
  t.is(bad.stderr, 'wdp demo: --duration takes a duration like 500ms, 30s, 1m30s or 1h (a bare number is seconds), got "30x"\n');
});

test('get counters --rate takes a duration (a bare number is seconds, at most 1h)', async (t) => {
  for (const d of ['500ms', '2s', '2', '1m']) {
    const r = await runWdp(['get', 'counters', '--rate', d], NOWHERE);
    t.is(r.code, 1);
    t.regex(r.stderr, /^error: cannot reach the wdp API/m, `${d}: ${r.stderr}`);
  }
  for (const [d, msg] of [['soon', /^error: --rate takes a duration like 500ms, 30s, 1m30s or 1h \(a bare number is seconds\), got "soon"$/m], ['2h', /^error: --rate must be at most 1h, got "2h"$/m], ['0s', /^error: --rate must be a positive duration/m]]) {
    const r = await runWdp(['get', 'counters', '--rate', d], NOWHERE);
    t.is(r.code, 1);
    t.regex(r.stderr, msg, d);
  }
});

test('the bench\'s times take the same forms; bad ones name the flag', (t) => {
  // a whole in-process run (no root): --min-sync-period in Go's form is taken
  const ok = run(['bench', 'kube', '--in-process', '--services', '1', '--endpoints', '1', '--changes', '1', '--min-sync-period', '1s', '--json', '--quiet']);
  t.is(ok.status, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).services, 1);
  for (const [args, msg] of [
    [['bench', 'io', '--seconds', '2h'], /--seconds must be at most 1h, got "2h"/],
    [['bench', 'io', '--warmup', 'soon'], /--warmup takes a duration like 500ms, 30s, 1m30s or 1h \(a bare number is seconds\)/],
    [['bench', 'core', '--seconds', '10ms'], /--seconds must be at least 50ms/],
    [['bench', 'e2e', '--rtt-seconds', '2h'], /--rtt-seconds must be at most 1h/],
    [['bench', 'e2e', '--wdp-busy-poll', '1s'], /--wdp-busy-poll must be at most 100ms/],
    [['bench', 'kube', '--min-sync-period', '1.5ms'], /--min-sync-period takes a whole number of milliseconds/],
  ]) {
    const r = run(args);
    t.is(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, msg, args.join(' '));
  }
});

test('the config file\'s durations and the CLI\'s flags are read by one parser of Go\'s form (kube-proxy\'s config takes time.ParseDuration\'s)', async (t) => {
  const { parseDuration } = await import('../dist/src/daemon/config.js');
  for (const [text, ms] of [['1s', 1000], ['500ms', 500], ['1h30m', 5_400_000], ['1.5s', 1500], ['250us', 0.25], ['1500µs', 1.5], ['.5s', 500], ['0', 0], ['-1s', -1000]]) {
    t.is(parseDuration(text), ms, text);
    t.is(parseDurationFlag(text, { flag: '--x', unit: 'ms' }), ms, `${text} as a flag`);
  }
  for (const bad of ['', '1', '1x', 's', '1s2', '1 s']) t.true(Number.isNaN(parseDuration(bad)), bad);
  t.is(parseDuration(30), 30_000, 'a YAML number is seconds');
});
