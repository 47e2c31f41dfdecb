// Installing wdp-cni as a container runtime finds and runs it: `<bin dir>/wdp-cni`, executed by
// path with the runtime's environment (whose PATH need not hold node), the config on stdin.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, lstatSync, mkdtempSync, rmSync, statSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { installPlugin } from '../dist/src/cni/install.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const PLUGIN = join(ROOT, 'bin/wdp-cni.js');

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cni-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** As a runtime runs a plugin: by path, a bare environment, the config on stdin. */
const runPlugin = (path, env, stdin) => spawnSync(path, [], { env: { PATH: '/nonexistent', ...env }, input: stdin, encoding: 'utf8', timeout: 30000 });

test('`wdp-cni.js install DIR` writes an executable DIR/wdp-cni that a runtime can run with any PATH: VERSION, and a DEL with its config on stdin', (t) => {
  const dir = tempDir(t);
  const inst = spawnSync(process.execPath, [PLUGIN, 'install', dir], { encoding: 'utf8', timeout: 30000 });
  t.is(inst.status, 0, inst.stderr);
  const launcher = join(dir, 'wdp-cni');
  t.is(inst.stdout.trim(), `installed ${launcher}`);
  t.is(statSync(launcher).mode & 0o777, 0o755);
  t.true(readFileSync(launcher, 'utf8').includes(process.execPath), 'node named by absolute path');
  const v = runPlugin(launcher, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  t.is(v.status, 0, v.stderr);
  t.true(JSON.parse(v.stdout).supportedVersions.includes('1.0.0'));
  // stdin reaches the plugin: a DEL for a daemon that is not there succeeds (nothing to delete)
  const del = runPlugin(launcher, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c0ffee', CNI_IFNAME: 'eth0' },
    JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'wdp-cni', server: `unix:${join(dir, 'no.sock')}` }));
  t.is(del.status, 0, del.stdout + del.stderr);
  t.regex(del.stderr, /not answering/);
  const again = spawnSync(process.execPath, [PLUGIN, 'install', dir], { encoding: 'utf8', timeout: 30000 });
  t.is(again.status, 0, 'installing over the launcher replaces it');
});

test('install into a directory that does not exist fails and says why; a copy of bin/wdp-cni.js answers code 5 naming the install command', (t) => {
  const dir = tempDir(t);
  const bad = spawnSync(process.execPath, [PLUGIN, 'install', join(dir, 'missing')], { encoding: 'utf8', timeout: 30000 });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /is not a directory/);
  copyFileSync(PLUGIN, join(dir, 'wdp-cni'));
  const r = spawnSync(process.execPath, [join(dir, 'wdp-cni')], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8', timeout: 30000 });
  t.is(r.status, 1);
  const err = JSON.parse(r.stdout);
  t.is(err.code, 5);
  t.regex(err.msg, /cannot find wdp's build/);
  t.regex(err.details, /bin\/wdp-cni\.js install/);
});

test('install never writes through a symlink planted at its temporary name', (t) => {
  const dir = tempDir(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'keep me\n');
  symlinkSync(victim, join(dir, `wdp-cni.tmp-${process.pid}`));
  const at = installPlugin(dir, PLUGIN, join(ROOT, 'dist/src/cni/plugin.js'));
  t.is(readFileSync(victim, 'utf8'), 'keep me\n', 'the symlink\'s target is untouched');
  t.true(readFileSync(at, 'utf8').startsWith('#!/bin/sh'));
  t.false(lstatSync(at).isSymbolicLink());
});
