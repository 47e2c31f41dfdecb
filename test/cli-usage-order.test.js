// Usage errors in the order an operator fixes them (src/util/cli-usage.ts): an unknown option is
// named before a required option that is missing (commander checks the required ones first:
// `wdp start --bogus` said "required option '-c, --config <file>' not specified"), with where the
// command's usage is; a missing required option is still named when nothing else is wrong. Through
// the real entry point (bin/wdp.js: `wdp start` runs src/daemon/start-main.ts, the rest
// src/cli/main.ts), without a daemon: nothing is started.
import test from 'ava';
import { spawnSync } from 'node:child_process';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;
const run = (args) => spawnSync(process.execPath, [WDP, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });

test('wdp start --bogus: the unknown option first, with the hint to wdp help start; exit 1', (t) => {
  const r = run(['start', '--bogus']);
  t.is(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.is(lines[0], "error: unknown option '--bogus'");
  t.notRegex(r.stderr, /required option/);
  t.regex(r.stderr, /\(run 'wdp help start' for usage\)/);
  t.is(r.stdout, '');
});

test('wdp start --conifg FILE: the misspelt option, with its suggestion (src/util/cli-hints.ts)', (t) => {
  const r = run(['start', '--conifg', '/nonexistent.yaml']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^error: unknown option '--conifg' \(did you mean "--config"\?\)\n/);
});

test('wdp start without --config: the missing option, as before', (t) => {
  const r = run(['start']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^error: required option '-c, --config <file>' not specified\n/);
  t.regex(r.stderr, /wdp help start/);
});

test('wdp help start shows the usage the hint points at', (t) => {
  const r = run(['help', 'start']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /Usage: wdp start \[options\]/);
  t.regex(r.stdout, /--config <file>/);
});

// every other command with a required option had the same order
const others = [
  [['apply', '--bogus'], 'apply', 1],
  [['diff', '--bogus'], 'diff', 2],   // wdp diff's errors exit 2 (1 means "changes")
  [['capture', '--bogus'], 'capture', 1],
  [['replay', 'x.pcap', '--bogus'], 'replay', 1],
  [['bench', 'kube', '--bogus'], 'bench kube', 1],
];
for (const [args, path, code] of others) {
  test(`wdp ${args.join(' ')}: the unknown option first`, (t) => {
    const r = run(args);
    t.is(r.status, code, r.stderr);
    t.is(r.stderr.split('\n')[0], "error: unknown option '--bogus'");
    t.regex(r.stderr, new RegExp(`\\(run 'wdp help ${path}' for usage\\)`));
  });
}

test('a required option still missing once the rest is right is named (capture without -w)', (t) => {
  const r = run(['capture', '--port', 'client']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^error: required option '-w, --write <file>' not specified/);
});
