// docs/e2e-coverage.md as a reader checks it: every wdp test its table names is a test file, and
// every test title it quotes after a file (`file`: "title words" ... "more words") is in that file.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;

test('e2e-coverage.md: each row\'s wdp tests exist, with the titles it quotes', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/e2e-coverage.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| scenario |'));
  t.true(rows.length > 30, `table rows: ${rows.length}`);
  let quoted = 0;
  for (const row of rows) {
    const col = row.split(' | ').at(-1);
    for (const [, file, rest] of col.matchAll(/`([a-z0-9-]+)`:?([^`]*)/g)) {
      const path = join(ROOT, 'test', `${file}.test.js`);
      if (!t.true(existsSync(path), `${row.slice(0, 60)}: test/${file}.test.js`)) continue;
      const src = readFileSync(path, 'utf8');
      for (const [, q] of rest.matchAll(/"([^"]+)"/g)) {
        quoted++;
        for (const words of q.split('...').map((x) => x.trim()).filter(Boolean)) t.true(src.includes(words), `${file}: "${words}"`);
      }
    }
  }
  t.true(quoted > 30, `titles quoted: ${quoted}`);
});
