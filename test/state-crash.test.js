// A process killed at any point leaves the store at its last acknowledged commit (or the one in
// flight, which may have become durable before the kill): never an older state, never a torn one.
// A child commits one object per transaction and prints "ack N" after each commit returns; the
// test kills it (SIGKILL) at varying moments and reopens the store.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
