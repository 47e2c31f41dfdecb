// bin/wdp-cni.js as an operator types it by hand (no CNI_COMMAND): the about text says how to
// install it, a misspelt command ("instal") is refused naming it rather than answered with the
// about text and exit 0, and `install` with an unknown option or two directories says which
// before the usage.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'wdp-cni.js');
const run = (args) => {
  const e = { ...process.env };
  delete e.CNI_COMMAND;
  return spawnSync(process.execPath, [BIN, ...args], { env: e, input: '', encoding: 'utf8', timeout: 60_000 });
};

test('wdp-cni (and --help) by hand: names the install command', (t) => {
  for (const args of [[], ['--help'], ['-h']]) {
    const r = run(args);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /^CNI wdp-cni plugin/m);
    t.regex(r.stderr, /^install it: node \S+wdp-cni\.js install \[DIR\] \(install --help: the options\)$/m, args.join(' '));
  }
});

test('wdp-cni instal (a typo): an error naming it and the command meant, exit 1', (t) => {
  const r = run(['instal']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^wdp-cni: unknown command "instal": the command is install \(node \S+ install --help\)/);
  t.notRegex(r.stderr, /CNI protocol versions/);
});

test('wdp-cni install with an unknown option or two directories: says which, then the usage', (t) => {
  const bad = run(['install', '--bogus']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /^wdp-cni install: unknown option --bogus\nusage: /);
  const two = run(['install', '/nonexistent-a', '/nonexistent-b']);
  t.is(two.status, 1);
  t.regex(two.stderr, /^wdp-cni install: one DIR only, got "\/nonexistent-b" too\nusage: /);
});
