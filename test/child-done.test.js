// test/lib/child-done.js: the last output is there when it resolves, and a grandchild holding the
// pipe does not hold the test.
import test from 'ava';
import { spawn } from 'node:child_process';
import { childDone } from './lib/child-done.js';

test('output that reaches the pipe after the exit is read by the time it resolves', async (t) => {
  // the exit comes first here by construction (what a loaded machine does now and then): the
  // last line is written 200 ms after it, by a process still holding the pipe
  const child = spawn('sh', ['-c', '(sleep 0.2; echo END >&2) & echo START >&2; exit 2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  let atExit = null;
  child.once('exit', () => { atExit = err; });
  const { code } = await childDone(child);
  t.is(code, 2);
  t.false(/END/.test(atExit ?? ''), 'the exit came before the last line');
  t.regex(err, /START\nEND\n$/);
});

test('a grandchild that keeps the pipe open: resolved the grace period after the exit, not at its end', async (t) => {
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!; exit 3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const { code } = await childDone(child, 300);
  t.is(code, 3);
  const pid = Number(out.trim());
  if (!(pid > 1)) { t.fail(`no grandchild pid printed: ${JSON.stringify(out)}`); return; }
  let alive = true;
  try { process.kill(pid, 0); } catch { alive = false; }
  t.true(alive, 'resolved while the grandchild still holds the pipe');
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
});
