// A store on a read-only filesystem (a state directory remounted read-only, as a failing disk
// is): opening it fails with a StateError that says the store cannot be written and why (EROFS),
// and that it holds the saved state — not the damaged-store advice to move the file away and start
// empty, which would lose every Service once the filesystem is writable again. The filesystem is a
// tmpfs mounted in a mount namespace of the test's own (unshare -m).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';

const { serial } = rootGate(test, { tools: ['unshare', 'mount'] });
const STORE = new URL('../dist/src/state/store.js', import.meta.url).pathname;

serial('a store on a read-only filesystem: a clear error naming EROFS, nothing changed, no advice to move it away', (t) => {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-ro-`));
  const make = join(dir, '..', `${dir.split('/').pop()}-make.mjs`), open = join(dir, '..', `${dir.split('/').pop()}-open.mjs`);
  writeFileSync(make, `import { StateStore } from '${STORE}';
const s = new StateStore(process.argv[2]); s.open();
s.commit({ upsert: [{ kind: 'Service', key: 'shop/web', raw: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } } }], remove: [] });
await s.close();`);
  writeFileSync(open, `import { StateStore } from '${STORE}';
import { readdirSync } from 'node:fs';
const before = readdirSync(process.argv[2]).sort();
let error = null, services = null;
try { services = new StateStore(process.argv[2]).open().state.services.length; } catch (e) { error = { name: e.name, message: e.message }; }
console.log(JSON.stringify({ error, services, before, after: readdirSync(process.argv[2]).sort() }));`);
  try {
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs -o size=4m wdp-test "$1" && "$2" "$3" "$1" && mount -o remount,ro "$1" && "$2" "$4" "$1"', 'sh', dir, process.execPath, make, open],
    { encoding: 'utf8', timeout: 60000 });
    t.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    t.is(out.services, null, 'not opened');
    t.is(out.error?.name, 'StateError');
    t.regex(out.error.message, /state\.db cannot be written \(EROFS: the filesystem is read-only\)/);
    t.regex(out.error.message, /The store was not changed; make \S+ writable/);
    t.notRegex(out.error.message, /start empty/, 'no advice that would drop the saved state');
    t.deepEqual(out.after, out.before);
  } finally {
    rmSync(make, { force: true });
    rmSync(open, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
