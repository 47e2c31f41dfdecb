// Durations on the command line (`trace --live --duration`, `capture --duration`) read as Go's and
// kube-proxy's (and wdp's config: docs/running.md): compound forms such as 1m30s and 1h30m
// too; a bare number is seconds.
import test from 'ava';
import { runWdp } from './lib/wdp-cli.js';

const NOWHERE = 'http://127.0.0.1:9'; // nothing listens: a duration read well fails on the request

test('--duration takes compound Go durations', async (t) => {
  for (const d of ['1m30s', '1h30m', '2m0.5s', '500ms', '30s', '2', '0.5s']) {
    for (const args of [['trace', '--live', '--duration', d], ['capture', '--port', 'client', '-w', '-', '--duration', d]]) {
      const r = await runWdp(args, NOWHERE);
      t.is(r.code, 1);
      t.regex(r.stderr, /^error: cannot reach the wdp API/m, `${args.join(' ')}: ${r.stderr}`);
    }
  }
});

test('--duration refuses what is not a duration, naming the forms', async (t) => {
  for (const d of ['1m30', 'm', '1d', '-1s', '1s2', '0s', '']) {
    const r = await runWdp(['trace', '--live', '--duration', d], NOWHERE);
    t.is(r.code, 1);
    t.regex(r.stderr, /^error: --duration (takes a duration like 500ms, 30s, 1m30s or 1h|must be at least 1ms|may not be empty)/m, `${d}: ${r.stderr}`);
  }
});
