// What the CLI tests expect of a failing command, and their scratch directories.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A directory removed when the test ends. */
export function scratch(t, prefix = 'wdp-cli-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `r` (a finished CLI run) failed with `code` and exactly one stderr line matching `re`: no stack,
 * no TypeError from reading an answer it did not expect. */
export function oneLine(t, r, re, code = 1) {
  t.is(r.code, code, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, r.stderr);
  t.regex(lines[0], re);
  t.notRegex(r.stderr, /\n\s+at |TypeError|Cannot read properties/, 'no stack, no TypeError');
}
