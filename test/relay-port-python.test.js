// The relay port's helper interpreter (src/daemon/relay-port.ts): `python3` from PATH starts the
// first helper, which names the file it runs from; later helpers start that file straight, so a
// version manager's shim on PATH (pyenv's: a shell script that looks the version up on every
// start) is run once, not once per port. Here the shim is a script that counts its starts.
import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { NetnsLab } from '../dist/src/netns.js';
import { RelayPort } from '../dist/src/daemon/relay-port.js';

const gate = rootGate(test, { tools: ['python3'] });

gate.serial('relay helpers: the python3 on PATH is started once; the next helper runs the interpreter the first one named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-py-shim-'));
  const lab = new NetnsLab('py');
  const ports = [];
  const path = process.env.PATH;
  t.teardown(async () => {
    for (const p of ports) p.close();
    process.env.PATH = path;
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const real = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  const starts = join(dir, 'starts');
  writeFileSync(join(dir, 'python3'), `#!/bin/sh\necho start >> '${starts}'\nexec '${real}' "$@"\n`);
  chmodSync(join(dir, 'python3'), 0o755);
  process.env.PATH = `${dir}:${path}`;
  const ns = lab.namespace('a');
  lab.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
  for (let i = 0; i < 3; i++) {
    const p = new RelayPort({ name: `p${i}`, index: i, kind: 'afpacket', ifname: 'lo', mac: '02:00:00:00:00:01', netns: ns });
    ports.push(p);
    await p.ready;
  }
  t.true(existsSync(starts), 'the first helper went through PATH');
  t.is(readFileSync(starts, 'utf8').split('\n').filter(Boolean).length, 1, 'the shim ran once for three helpers');
  t.true(ports.every((p) => p.alive));
});
