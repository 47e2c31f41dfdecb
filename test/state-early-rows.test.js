// A large apply's store rows go to the store writer thread while the body arrives (early rows:
// src/state/store-early-rows.ts), into a scratch database of its own; the apply's stage copies
// them into the store only when its rows are exactly the batch's, and inserts its own rows
// otherwise. What the store holds and when it is durable are the stage's and commit's, as before.
import test from 'ava';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { startControlPlane } from './lib/server.js';
import { StateStore } from '../dist/src/state/store.js';

function stateDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-early-rows-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const svc = (name, ip) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
const slice = (name, svcName, addrs) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', endpoints: addrs.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }],
});

/** `n` Services with a slice each, as one JSON array's bytes and each element's place in it. */
function body(n) {
  const objs = [];
  for (let i = 0; i < n; i++) {
    const name = `web-${i}`;
    objs.push(svc(name, `10.96.${i >> 8}.${i & 255}`), slice(`${name}-a`, name, [`10.244.${i >> 8}.${i & 255}`]));
  }
  let text = '[';
  const spans = [];
  objs.forEach((o, i) => {
    if (i) text += ',\n';
    const s = JSON.stringify(o);
    spans.push([text.length, text.length + s.length]);
    text += s;
  });
  text += ']';
  const rows = objs.map((o, i) => ({ kind: o.kind, key: `shop/${o.metadata.name}`, raw: o, span: spans[i] }));
  return { bytes: Buffer.from(text), rows };
}

/** The store's rows, read from a copy of its files (its writing connection holds the database). */
function storedRows(dir) {
  const copy = mkdtempSync(join(tmpdir(), 'wdp-early-copy-'));
  try {
    for (const f of ['state.db', 'state.db-wal']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(copy, f));
    const db = new Database(join(copy, 'state.db'), { readonly: true });
    try { return new Map(db.prepare('SELECT kind, key, body, crc FROM objects').all().map((r) => [`${r.kind} ${r.key}`, r])); } finally { db.close(); }
  } finally { rmSync(copy, { recursive: true, force: true }); }
}

/** Sends `b`'s rows early as chunks of `per` rows, their bytes taken from `from` (the body's own,
 * or a decoy of the same length that tells which rows the store then took), and ends the batch. */
function sendEarly(store, b, from, per = 50) {
  const early = store.earlyRows();
  b.rows.forEach((r, i) => {
    early.add(r.kind, r.key, r.span[0], r.span[1]);
    if (i % per === per - 1) early.flush(from);
  });
  early.flush(from);
  early.done(b.bytes);
  return early;
}

/** The StoreWrite of `rows` (their texts the body's). */
const write = (b, rows = b.rows) => ({ upsert: rows.map((r) => ({ kind: r.kind, key: r.key, raw: r.raw, source: { text: b.bytes, start: r.span[0], end: r.span[1] } })), remove: [] });

/** The body with every "web-" turned into "WEB-" (same length): rows stored from it were the early ones. */
const decoyOf = (bytes) => Buffer.from(bytes.toString('latin1').replaceAll('"web-', '"WEB-'), 'latin1');

function openStore(t, dir) {
  const s = new StateStore(dir);
  s.open();
  t.teardown(() => s.close());
  return s;
}

test('a stage whose rows are the early batch\'s takes them from the scratch; the store reads back as sent', async (t) => {
  const dir = stateDir(t);
  const s = openStore(t, dir);
  const b = body(600);
  // (the decoy proves which rows the stage took: the same places, other bytes)
  sendEarly(s, b, decoyOf(b.bytes));
  const stats = await s.stage(write(b)).commit();
  t.is(stats.rows, 1200);
  const rows = storedRows(dir);
  t.is(rows.size, 1200);
  const one = rows.get('Service shop/web-7');
  t.regex(one.body, /"name":"WEB-7"/, 'stored from the early rows');
  t.is(one.crc, crc32(Buffer.from(one.body)));
});

test('early rows from the body itself: every stored row is its object\'s text with its CRC, and the store opens again', async (t) => {
  const dir = stateDir(t);
  const s = openStore(t, dir);
  const b = body(600);
  sendEarly(s, b, b.bytes, 37);
  const sent = Buffer.from(b.bytes); // (the stage hands the body's bytes over to the thread)
  await s.stage(write(b)).commit();
  const rows = storedRows(dir);
  t.is(rows.size, 1200);
  for (const r of b.rows) {
    const got = rows.get(`${r.kind} ${r.key}`);
    t.is(got.body, sent.toString('latin1', r.span[0], r.span[1]));
    t.is(got.crc, crc32(sent.subarray(r.span[0], r.span[1])));
  }
  s.close();
  const again = new StateStore(dir);
  const loaded = again.open();
  again.close();
  t.is(loaded.state.services.length, 600);
  t.is(loaded.state.endpointSlices.length, 600);
});

test('a stage whose rows differ from the early batch (one fewer, another key, another place) inserts its own rows', async (t) => {
  for (const change of [
    (rows) => rows.slice(1),
    (rows) => rows.map((r, i) => i === 5 ? { ...r, key: 'shop/other' } : r),
    (rows) => rows.map((r, i) => i === 5 ? { ...r, span: [r.span[0], r.span[1] - 1] } : r),
  ]) {
    const dir = stateDir(t);
    const s = openStore(t, dir);
    const b = body(600);
    sendEarly(s, b, decoyOf(b.bytes));
    await s.stage(write(b, change(b.rows))).commit();
    const rows = storedRows(dir);
    t.false([...rows.values()].some((r) => r.body.includes('"WEB-')), 'no early row stored');
    t.true(rows.has('Service shop/web-7'));
    s.close();
  }
});

test('a batch that did not end (no done: the body was not read to its end) is not taken', async (t) => {
  const dir = stateDir(t);
  const s = openStore(t, dir);
  const b = body(600);
  const early = s.earlyRows();
  for (const r of b.rows) early.add(r.kind, r.key, r.span[0], r.span[1]);
  early.flush(decoyOf(b.bytes));
  await s.stage(write(b)).commit();
  t.false([...storedRows(dir).values()].some((r) => r.body.includes('"WEB-')));
});

test('early rows that come while another apply\'s write is staged wait for it: its rollback does not take them with it', async (t) => {
  const dir = stateDir(t);
  const s = openStore(t, dir);
  const b = body(600);
  // a one-row write staged (its transaction open on the thread), then the early rows, then its abort
  const small = s.stage({ upsert: [{ kind: 'Service', key: 'shop/x', raw: svc('x', '10.97.0.1') }], remove: [] });
  sendEarly(s, b, decoyOf(b.bytes));
  small.abort();
  await s.stage(write(b)).commit();
  const rows = storedRows(dir);
  t.is(rows.size, 1200);
  t.false(rows.has('Service shop/x'));
  t.regex(rows.get('EndpointSlice shop/web-9-a').body, /"WEB-9-a"/, 'the early rows were taken');
});

test('an apply of a large body through the API sends its rows early; the store holds each object as sent', async (t) => {
  const dir = stateDir(t);
  const a = await startControlPlane(t, { stateDir: dir });
  const b = body(3200);
  t.true(b.bytes.length >= 1 << 20, 'above EARLY_ROWS_MIN_BYTES');
  const writer = a.cp.core.store.writerThreadForTests ?? (a.cp.core.store.prestartWriter(), a.cp.core.store.writerThreadForTests);
  let chunks = 0;
  const post = writer.postEarly.bind(writer);
  writer.postEarly = (c) => { chunks++; return post(c); };
  const r = await a.req('POST', '/api/v1/apply', b.bytes);
  t.is(r.status, 200, r.text);
  t.true(chunks > 1, `${chunks} chunks sent early`);
  await a.close();
  const rows = storedRows(dir);
  t.is(rows.size, 6400);
  for (const x of [b.rows[0], b.rows[1], b.rows[6399]]) t.is(rows.get(`${x.kind} ${x.key}`).body, b.bytes.toString('latin1', x.span[0], x.span[1]));
});

test('a dry run sends no rows early', async (t) => {
  const dir = stateDir(t);
  const a = await startControlPlane(t, { stateDir: dir });
  const b = body(3200);
  const writer = a.cp.core.store.writerThreadForTests ?? (a.cp.core.store.prestartWriter(), a.cp.core.store.writerThreadForTests);
  let chunks = 0;
  const post = writer.postEarly.bind(writer);
  writer.postEarly = (c) => { chunks++; return post(c); };
  const r = await a.req('POST', '/api/v1/apply?dryRun=All', b.bytes);
  t.is(r.status, 200, r.text);
  t.is(chunks, 0);
});
