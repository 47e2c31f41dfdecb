// `wdp apply -f DIR` with a FIFO named like a manifest in DIR waited for a writer for good (a
// stale pipe left by a tool, a socket): a directory's entries are read only when they are
// regular files; anything else is named and refused. A pipe named with -f is still read (`-f
// <(generate)`). Found by hand while fuzzing the CLI's -f arguments.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './lib/cli-fuzz.js';

test('a FIFO in a manifest directory is refused, naming it; the files beside it are not sent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n');
  execFileSync('mkfifo', [join(dir, 'b.yaml')]);
  for (const cmd of [['apply', '-f', dir], ['diff', '-f', dir], ['delete', '-f', dir], ['apply', '-R', '-f', dir]]) {
    // (bounded: before, it waited for the FIFO's writer until killed)
    const r = await runCli(cmd, 'http://127.0.0.1:1', 20_000);
    t.false(r.timedOut, `${cmd.join(' ')} did not end`);
    t.is(r.code, cmd[0] === 'diff' ? 2 : 1, r.stderr);
    t.regex(r.stderr.trim(), /^error: cannot read .*b\.yaml: not a regular file \(a FIFO\); in a directory only files are read, a pipe only when named with -f$/);
  }
});
