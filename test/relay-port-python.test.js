// The relay port's helper interpreter (src/daemon/relay-port.ts): `python3` from PATH starts the
// first helper, which names the file it runs from; later helpers start that file straight, so a
// version manager's shim on PATH (pyenv's: a shell script that looks the version up on every
// start) is run once, not once per port. Here the shim is a script that counts its starts.
import test from 'ava';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { relayPythonLab } from './lib/relay-python.js';

const gate = rootGate(test, { tools: ['python3'] });

gate.serial('relay helpers: the python3 on PATH is started once; the next helper runs the interpreter the first one named', async (t) => {
  const { dir, real, ports, open } = relayPythonLab(t, 'py');
  const starts = join(dir, 'starts');
  writeFileSync(join(dir, 'python3'), `#!/bin/sh\necho start >> '${starts}'\nexec '${real}' "$@"\n`);
  chmodSync(join(dir, 'python3'), 0o755);
  for (let i = 0; i < 3; i++) await open(i);
  t.true(existsSync(starts), 'the first helper went through PATH');
  t.is(readFileSync(starts, 'utf8').split('\n').filter(Boolean).length, 1, 'the shim ran once for three helpers');
  t.true(ports.every((p) => p.alive));
});
