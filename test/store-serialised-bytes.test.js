// A large write with no source text (the Kubernetes watcher's full sync) goes to the writer thread
// as one buffer of UTF-8 bytes serialised on the main thread (StateStore.serialisedBytes), not as
// one string per row: the rows read back are the objects written, characters outside ASCII and
// surrogate pairs included, each row's CRC-32 that of its text, and a small write after it (its
// bodies as strings) replaces a row written as bytes.
import test from 'ava';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { StateStore } from '../dist/src/state/store.js';
import { StoreWriterThread } from '../dist/src/state/store-writer.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-store-bytes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every row of a copy of the store's files (the open store holds the database for itself). */
function rows(dir) {
  const copy = mkdtempSync(join(tmpdir(), 'wdp-store-bytes-copy-'));
  try {
    for (const f of ['state.db', 'state.db-wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
    const db = new Database(join(copy, 'state.db'), { readonly: true });
    try { return db.prepare('SELECT kind, key, body, crc, typeof(body) AS type FROM objects ORDER BY kind, key').all(); } finally { db.close(); }
  } finally { rmSync(copy, { recursive: true, force: true }); }
}

const svc = (i, note) => ({
  apiVersion: 'v1', kind: 'Service',
  metadata: { name: `s${i}`, namespace: 'shop', annotations: { note } },
  spec: { clusterIP: `10.96.0.${i + 1}`, ports: [{ name: 'http', port: 80 }] },
});
// ASCII, Latin-1, a 3-byte character, a surrogate pair (4 bytes), a lone surrogate (escaped by
// JSON.stringify), a body much larger than the others (the buffer grows)
const NOTES = ['plain', 'café', '東京', 'emoji 😀 pair', 'lone \ud800 surrogate', 'x'.repeat(200_000) + 'é'];

test('a large write without source text is stored as the objects, byte for byte their JSON, read back equal', async (t) => {
  const dir = stateDir(t);
  const s = new StateStore(dir);
  s.open();
  s.stageOnThreadRows = 2;
  const objs = Array.from({ length: 60 }, (_, i) => svc(i, NOTES[i % NOTES.length]));
  const w = { upsert: objs.map((o) => ({ kind: 'Service', key: `shop/${o.metadata.name}`, raw: o })), remove: [] };
  // what goes to the thread: one buffer of bytes, handed over, no string per row
  const sent = [];
  const request = StoreWriterThread.prototype.request;
  StoreWriterThread.prototype.request = function (m, thread, handOver) { sent.push({ m, handOver }); return request.call(this, m, thread, handOver); };
  t.teardown(() => { StoreWriterThread.prototype.request = request; });
  const stats = await s.stage(w).commit();
  const stage = sent.find((x) => x.m.op === 'stage');
  t.truthy(stage);
  t.deepEqual(stage.m.bodies, [], 'no body posted as a string');
  t.true(stage.m.text instanceof Uint8Array, 'the bodies as bytes');
  t.truthy(stage.handOver, 'their buffer moved to the thread');
  t.is(stage.m.text.byteLength, 0, 'and unusable here afterwards');
  t.is(stats.rows, 60);
  t.is(stats.bytes, objs.reduce((n, o) => n + Buffer.byteLength(JSON.stringify(o)), 0), 'bytes: the UTF-8 bodies');
  const stored = rows(dir);
  t.is(stored.length, 60);
  for (const r of stored) {
    const o = objs[Number(r.key.slice('shop/s'.length))];
    t.is(r.type, 'text', `${r.key} stored as TEXT`);
    t.is(r.body, JSON.stringify(o), `${r.key}: the body is the object's JSON`);
    t.is(r.crc, crc32(JSON.stringify(o)), `${r.key}: the CRC is its text's`);
  }
  // a small write (strings) replaces a row written as bytes
  const changed = svc(3, 'changed ü');
  await s.stage({ upsert: [{ kind: 'Service', key: 'shop/s3', raw: changed }], remove: [] }).commit();
  s.close();
  const again = new StateStore(dir);
  const loaded = again.open();
  t.teardown(() => again.close());
  const byName = new Map(loaded.state.services.map((o) => [o.metadata.name, o]));
  t.is(byName.size, 60);
  for (const o of objs) t.deepEqual(byName.get(o.metadata.name), o.metadata.name === 's3' ? changed : o);
});
