// The relay port's helper interpreter (src/daemon/relay-port.ts) named by an earlier helper and
// gone since (an interpreter upgraded or removed): a helper started from it in another namespace
// (`ip netns exec`, which reports the missing file by its exit, not a spawn error) fails, and the
// next one goes back to `python3` on PATH. (A file of its own: the interpreter a helper names is
// kept per thread, and this one must be named first.)
import test from 'ava';
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { relayPythonLab } from './lib/relay-python.js';

const gate = rootGate(test, { tools: ['python3'] });

gate.serial('relay helpers: an interpreter named by an earlier helper and gone since is not started again; PATH\'s python3 is', async (t) => {
  const { dir, real, ports, open } = relayPythonLab(t, 'pyg');
  symlinkSync(real, join(dir, 'python3'));   // the helper names this file (sys.executable)
  await open(0);
  rmSync(join(dir, 'python3'));
  await t.throwsAsync(open(1), { message: /exited/ }, 'started from the file that is gone');
  await open(2);
  t.true(ports[2].alive);
});
