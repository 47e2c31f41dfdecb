// A process killed at any point leaves the store at its last acknowledged commit (or the one in
// flight, which may have become durable before the kill): never an older state, never a torn one.
// A child commits one object per transaction and prints "ack N" after each commit returns; the
// test kills it (SIGKILL) at varying moments and reopens the store.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../dist/src/state/store.js';

const STORE = new URL('../dist/src/state/store.js', import.meta.url).href;
const CHILD = `
import { StateStore } from ${JSON.stringify(STORE)};
const store = new StateStore(process.argv[1]);
store.open();
const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' + i, namespace: 'crash' }, spec: { clusterIP: '10.96.' + (i >> 8) + '.' + (i & 255), ports: [{ port: 80 }], pad: 'x'.repeat(2000) } });
for (let i = 0; i < 5000; i++) {
  // every commit replaces object 0 too: a torn transaction would show its marker without object i
  store.commit({ upsert: [{ kind: 'Service', key: 'crash/s' + i, raw: svc(i) }, { kind: 'Service', key: 'crash/marker', raw: { last: i } }], remove: [] });
  process.stdout.write('ack ' + i + '\\n');
}
`;

async function killAfterAcks(dir, acks) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  let last = -1;
  child.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no ${acks} acks within 60 s: ${err.slice(0, 500)}`)); }, 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ack (\d+)\n/g);
      if (m) last = Number(m[m.length - 1].slice(4));
      if (last >= acks) { child.kill('SIGKILL'); clearTimeout(timer); resolve(); }
    });
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on('exit', r)));
  // acks the child printed before it died (it may have printed more after the kill was sent)
  const m = out.match(/ack (\d+)\n/g);
  return m ? Number(m[m.length - 1].slice(4)) : -1;
}

for (const acks of [3, 40, 150]) {
  test(`killed after ${acks} acknowledged commits: the store holds them all and nothing torn`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wdp-crash-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const acked = await killAfterAcks(dir, acks);
    t.true(acked >= acks, `child acknowledged ${acked}`);
    const store = new StateStore(dir);
    const r = store.open();
    store.close();
    const marker = r.state.services.find((s) => s.last !== undefined);
    const objects = r.state.services.filter((s) => s.last === undefined);
    // the last acknowledged commit is there; at most the one in flight beyond it
    t.true(marker.last === acked || marker.last === acked + 1, `marker ${marker.last}, acknowledged ${acked}`);
    t.is(objects.length, marker.last + 1, 'every committed object, and only those');
    t.deepEqual(objects.map((o) => o.metadata.name).sort(), Array.from({ length: marker.last + 1 }, (_, i) => `s${i}`).sort());
  });
}

// The same through the store's writer thread (a write of 2 rows or more is staged there): each
// transaction writes 40 objects and the marker. The child prints "staged N" once a write is
// staged; write `hold` it never commits (it waits to be killed): a kill then lands between stage
// and commit, where nothing of write N may survive, however late the test reads the line (a timed
// pause before the commit was outrun under load).
const THREAD_CHILD = `
import { StateStore } from ${JSON.stringify(STORE)};
const store = new StateStore(process.argv[2]);
store.open();
store.stageOnThreadRows = 2;
const hold = Number(process.argv[3]);
const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' + i, namespace: 'crash' }, spec: { clusterIP: '10.96.' + (i >> 8) + '.' + (i & 255), ports: [{ port: 80 }], pad: 'x'.repeat(500) } });
for (let n = 0; n < 500; n++) {
  const rows = Array.from({ length: 40 }, (_, k) => ({ kind: 'Service', key: 'crash/s' + (40 * n + k), raw: svc(40 * n + k) }));
  const staged = store.stage({ upsert: [...rows, { kind: 'Service', key: 'crash/marker', raw: { last: n } }], remove: [] });
  process.stdout.write('staged ' + n + '\\n');
  if (n === hold) await new Promise(() => setInterval(() => {}, 1000));
  await staged.commit();
  process.stdout.write('ack ' + n + '\\n');
}
`;

/** Runs THREAD_CHILD until its output matches `until`, then SIGKILLs it; answers its last ack. */
async function killThreadChild(dir, hold, until) {
  // a file, not -e: a worker thread inherits the process's flags, and --input-type needs -e
  const script = join(dir, 'child.mjs');
  writeFileSync(script, THREAD_CHILD);
  const child = spawn(process.execPath, [script, join(dir, 'state'), String(hold)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no ${until} within 60 s: ${err.slice(0, 500)}`)); }, 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (until.test(out)) { child.kill('SIGKILL'); clearTimeout(timer); resolve(); }
    });
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on('exit', r)));
  const m = out.match(/ack (\d+)\n/g);
  return m ? Number(m[m.length - 1].slice(4)) : -1;
}

function storedWrites(dir) {
  const store = new StateStore(join(dir, 'state'));
  const r = store.open();
  store.close();
  const marker = r.state.services.find((s) => s.last !== undefined);
  const objects = r.state.services.filter((s) => s.last === undefined);
  return { last: marker ? marker.last : -1, objects: objects.map((o) => o.metadata.name).sort() };
}
const namesUpTo = (n) => Array.from({ length: 40 * (n + 1) }, (_, i) => `s${i}`).sort();

test('writer thread: killed between stage and commit, the staged write is gone and every acknowledged one is there', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const acked = await killThreadChild(dir, 3, /staged 3\n/);
  t.is(acked, 2);
  const s = storedWrites(dir);
  t.is(s.last, 2, 'exactly the acknowledged writes');
  t.deepEqual(s.objects, namesUpTo(2));
});

test('writer thread: killed at any moment of a run of writes, the store holds the acknowledged ones and nothing torn', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const acked = await killThreadChild(dir, -1, /ack 30\n/);
  t.true(acked >= 30, `child acknowledged ${acked}`);
  const s = storedWrites(dir);
  t.true(s.last === acked || s.last === acked + 1, `marker ${s.last}, acknowledged ${acked}`);
  t.deepEqual(s.objects, namesUpTo(s.last));
});
