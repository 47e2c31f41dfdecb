// bin/wdp-cni.js run by hand, as an operator first tries it: without CNI_COMMAND it says what it
// is and the CNI versions it speaks (stderr, exit 0), as the reference plugins' skel does, rather
// than a CNI error; `install --help` (or any option) shows the usage instead of taking the option
// for a directory.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'wdp-cni.js');
const run = (args, env = {}) => {
  const e = { ...process.env, ...env };
  delete e.CNI_COMMAND;
  return spawnSync(process.execPath, [BIN, ...args], { env: e, input: '', encoding: 'utf8' });
};

test('wdp-cni without CNI_COMMAND: its name and supported versions on stderr, nothing on stdout, exit 0', (t) => {
  const r = run([]);
  t.is(r.status, 0, r.stdout + r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^CNI wdp-cni plugin/m);
  t.regex(r.stderr, /^CNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0$/m);
});

test('wdp-cni with CNI_COMMAND empty: the same (skel reads empty as unset)', (t) => {
  const r = run([], { CNI_COMMAND: '' });
  t.is(r.status, 0);
  t.regex(r.stderr, /CNI protocol versions supported/);
});

test('wdp-cni install --help: the usage, not "--help is not a directory"', (t) => {
  const r = run(['install', '--help']);
  t.notRegex(r.stderr, /is not a directory/);
  t.regex(r.stdout, /usage: .*wdp-cni\.js install \[DIR\]/);
  t.is(r.status, 0, 'asked for, the usage is not an error');
  const bad = run(['install', '--force']);
  t.regex(bad.stderr, /usage: .*wdp-cni\.js install \[DIR\]/);
  t.is(bad.status, 1, 'an unknown option is');
});
