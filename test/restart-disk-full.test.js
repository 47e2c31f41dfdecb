// A full disk when the flow checkpoint or a table image is written: the write fails with a clear
// error (the checkpointer logs it and goes on), the previous file stays whole, and nothing of the
// failed write is left behind — a partial `.tmp` would hold the little space there is, so the
// store in the same directory (every acknowledged apply commits there) could not commit until the
// next checkpoint. The state directory is a small tmpfs mounted in a mount namespace of the
// test's own (unshare -m): nothing outside the test sees it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';

const { serial } = rootGate(test, { tools: ['unshare', 'mount'] });
const DIST = new URL('../dist/src/', import.meta.url).pathname;

/** Runs `script` (an ES module) with `dir` a fresh 256 KiB tmpfs; resolves its stdout as JSON. */
function onSmallTmpfs(t, script) {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-full-`));
  const file = join(dir, '..', `${dir.split('/').pop()}.mjs`);
  writeFileSync(file, script);
  try {
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=256k wdp-test "$1" && exec "$2" "$3" "$1"`, 'sh', dir, process.execPath, file],
      { encoding: 'utf8', timeout: 60000 });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } finally {
    rmSync(file, { force: true });
    rmSync(dir, { recursive: true, force: true });   // the tmpfs went with its namespace
  }
}

const common = `
import { readdirSync, statfsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.argv[2];
const free = () => { const s = statfsSync(dir); return s.bavail * s.bsize; };
const fill = (leave) => writeFileSync(join(dir, 'filler'), Buffer.alloc(Math.max(0, free() - leave)));
`;

serial('a checkpoint that does not fit fails cleanly: the previous one stays whole, no partial file holds the space', (t) => {
  const r = onSmallTmpfs(t, `${common}
import { writeCheckpoint, readCheckpoint } from '${DIST}daemon/checkpoint.js';
import { FlowCheckpointer } from '${DIST}daemon/restart.js';
import pino from '${DIST}../../node_modules/pino/pino.js';
const rec = (flows) => ({ savedAt: Date.now(), reason: 'periodic', neighbours: [], workers: [{ worker: 0, flows: new Uint8Array(96 * flows), affinity: new Uint8Array(0), frontends: [], backends: [], snatV4: null, snatV6: null, ports: [] }] });
writeCheckpoint(dir, rec(10));
fill(32 * 1024);
const freeBefore = free();
let error = '';
try { writeCheckpoint(dir, rec(2000)); } catch (e) { error = e.code ?? e.message; }
const afterDirect = { names: readdirSync(dir).sort(), free: free() };
// the daemon's path: the periodic save logs the failure and says it was not written
const lines = [];
const log = pino({ level: 'info' }, { write: (s) => lines.push(JSON.parse(s)) });
const cp = new FlowCheckpointer(dir, log, 0);
const dataplane = { exportFlows: async () => ({ workers: rec(2000).workers, failed: [] }) };
const saved = await cp.save(dataplane, () => [], 'periodic');
const back = readCheckpoint(dir);
console.log(JSON.stringify({ error, freeBefore, afterDirect, saved, names: readdirSync(dir).sort(), free: free(),
  logged: lines.filter((l) => l.level >= 50).map((l) => l.msg + ': ' + l.error), flowsBack: back.checkpoint?.workers[0].flows.length / 96, problem: back.problem ?? null }));
`);
  t.is(r.error, 'ENOSPC');
  t.deepEqual(r.afterDirect.names, ['filler', 'flows.ckpt'], 'no partial flows.ckpt.tmp left');
  t.true(r.afterDirect.free >= r.freeBefore, `the space is free again: ${r.afterDirect.free} of ${r.freeBefore} bytes`);
  t.false(r.saved);
  t.deepEqual(r.names, ['filler', 'flows.ckpt']);
  t.true(r.free >= r.freeBefore);
  t.is(r.logged.length, 1);
  t.regex(r.logged[0], /writing the flow checkpoint failed: ENOSPC/);
  t.is(r.flowsBack, 10, 'the previous checkpoint is read back whole');
  t.is(r.problem, null);
});

serial('a table image that does not fit fails cleanly: no partial image left', (t) => {
  const r = onSmallTmpfs(t, `${common}
import { writeImageFile } from '${DIST}daemon/table-image-file.js';
fill(32 * 1024);
const freeBefore = free();
let error = '';
try { writeImageFile(dir, 0, new Uint8Array(200 * 1024)); } catch (e) { error = e.code ?? e.message; }
console.log(JSON.stringify({ error, freeBefore, names: readdirSync(dir).sort(), free: free() }));
`);
  t.is(r.error, 'ENOSPC');
  t.deepEqual(r.names, ['filler'], 'no tables.0.img.tmp left');
  t.true(r.free >= r.freeBefore);
});

serial('a full disk does not keep a start from taking the state directory\'s lock', (t) => {
  const r = onSmallTmpfs(t, `${common}
import { lockStateDir, LOCK_FILE } from '${DIST}daemon/state-lock.js';
import { lstatSync } from 'node:fs';
fill(0);
let fileError = '';
try { writeFileSync(join(dir, 'probe'), 'x'.repeat(20)); } catch (e) { fileError = e.code; }
let lockError = '', socket = false;
try { const l = await lockStateDir(dir); socket = lstatSync(join(dir, LOCK_FILE)).isSocket(); l.release(); } catch (e) { lockError = e.code ?? e.message; }
console.log(JSON.stringify({ fileError, lockError, socket }));
`);
  t.is(r.fileError, 'ENOSPC', 'the disk is full: a file with content cannot be written');
  t.is(r.lockError, '');
  t.true(r.socket);
});
