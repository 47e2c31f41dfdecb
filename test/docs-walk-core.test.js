// docs/core.md as a reader checks it against the built core: its "Exports" table names every
// function build/core.wasm exports, and nothing it does not export.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;

test('core.md "Exports": every function export of build/core.wasm is in the table, and every row is an export', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/core.md'), 'utf8');
  const section = doc.split('\n## Exports\n')[1].split('\n## ')[0];
  const rows = [...section.matchAll(/^\| `([a-z_]+)\(/gm)].map((m) => m[1]);
  const mod = new WebAssembly.Module(readFileSync(join(ROOT, 'build/core.wasm')));
  const fns = WebAssembly.Module.exports(mod).filter((e) => e.kind === 'function').map((e) => e.name);
  t.true(fns.length > 5);
  t.deepEqual([...rows].sort(), [...fns].sort(), 'the table lists the exported functions');
});
