// A kubeconfig a person got wrong — not YAML (a bracket left open), an empty file or a list, a
// cluster entry without its cluster — stops `wdp start --kubeconfig F` with one line naming the
// file and what is wrong with it: not the YAML library's multi-line code frame, not
// "Cannot read properties of undefined (reading 'clusters')".
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../dist/src/kube/client.js';

function file(t, text) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kube-badfile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'kubeconfig');
  writeFileSync(f, text);
  return f;
}

/** The error loading `text` gives: one line, naming the file. */
function error(t, text) {
  const f = file(t, text);
  const e = t.throws(() => loadKubeConfig({ kubeconfig: f }));
  t.false(e.message.includes('\n'), `one line: ${JSON.stringify(e.message)}`);
  t.true(e.message.includes(f), `names the file: ${e.message}`);
  t.notRegex(e.message, /Cannot read properties|undefined/);
  return e.message;
}

test('a kubeconfig that is not YAML: the file, the position and the parser\'s reason on one line', (t) => {
  t.regex(error(t, 'apiVersion: v1\nclusters: [\n'), /^kubeconfig .*: not valid YAML \(line \d+, column \d+\): unexpected end of the stream within a flow collection$/);
});

test('an empty kubeconfig, or one that is a list: not a kubeconfig', (t) => {
  for (const text of ['', '- a\n', '42\n']) t.regex(error(t, text), /^kubeconfig .*: not a kubeconfig: expected a mapping with clusters:, users: and contexts:$/);
});

test('a cluster entry without its cluster: the library\'s reason, with the file', (t) => {
  t.regex(error(t, 'apiVersion: v1\nkind: Config\nclusters: [{name: a}]\n'), /^kubeconfig .*: clusters\[0\]\.cluster is missing$/);
});
