// The relay port's helper interpreter (src/daemon/relay-port.ts) named by an earlier helper and
// gone since (an interpreter upgraded or removed): a helper started from it in another namespace
// (`ip netns exec`, which reports the missing file by its exit, not a spawn error) fails, and the
// next one goes back to `python3` on PATH. (A file of its own: the interpreter a helper names is
// kept per thread, and this one must be named first.)
import test from 'ava';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { NetnsLab } from '../dist/src/netns.js';
import { RelayPort } from '../dist/src/daemon/relay-port.js';

const gate = rootGate(test, { tools: ['python3'] });

gate.serial('relay helpers: an interpreter named by an earlier helper and gone since is not started again; PATH\'s python3 is', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-py-gone-'));
  const lab = new NetnsLab('pyg');
  const ports = [];
  const path = process.env.PATH;
  t.teardown(async () => {
    for (const p of ports) p.close();
    process.env.PATH = path;
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const real = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  symlinkSync(real, join(dir, 'python3'));   // the helper names this file (sys.executable)
  process.env.PATH = `${dir}:${path}`;
  const ns = lab.namespace('a');
  lab.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
  const open = (i) => { const p = new RelayPort({ name: `p${i}`, index: i, kind: 'afpacket', ifname: 'lo', mac: '02:00:00:00:00:01', netns: ns }); ports.push(p); return p.ready; };
  await open(0);
  rmSync(join(dir, 'python3'));
  await t.throwsAsync(open(1), { message: /exited/ }, 'started from the file that is gone');
  await open(2);
  t.true(ports[2].alive);
});
