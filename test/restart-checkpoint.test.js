// The flow checkpoint file (src/daemon/checkpoint.ts): round trip, and every way a file can be
// unusable — corrupt, truncated, another format version, another record layout, not a checkpoint
// at all — is refused with the reason, the file kept aside (never deleted), and nothing thrown.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as L from '../dist/assembly/layout.js';
import {
  encodeCheckpoint, decodeCheckpoint, writeCheckpoint, readCheckpoint, recordLayoutHash, readableLayoutHashes, CHECKPOINT_FILE, HEADER_SIZE,
} from '../dist/src/daemon/checkpoint.js';

function sample() {
  const flows = new Uint8Array(3 * L.CT_SIZE).map((_, i) => (i * 7) & 0xff);
  const affinity = new Uint8Array(2 * L.AFF_SIZE).map((_, i) => (i * 3) & 0xff);
  return {
    savedAt: 1_760_000_000_000, reason: 'stop',
    workers: [
      { worker: 0, flows, affinity, frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 6 }], backends: [{ id: 2, addr: '10.1.0.1', port: 8080 }],
        snatV4: '192.168.0.1', snatV6: null, hairpinV4: '169.254.42.1', hairpinV6: null, ports: [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:01' }] },
      { worker: 1, flows: new Uint8Array(0), affinity: new Uint8Array(0), frontends: [], backends: [], snatV4: null, snatV6: null, hairpinV4: null, hairpinV6: null, ports: [] },
    ],
    neighbours: [{ addr: '10.244.1.11', family: 4, port: 2, mac: '02:aa:00:00:00:0b', source: 'learned', portName: 'pod-a' }],
  };
}

const dirs = [];
function dir() { const d = mkdtempSync(join(tmpdir(), 'wdp-ckpt-')); dirs.push(d); return d; }
test.after.always(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

test('encode/decode round trip; write is atomic (no tmp left) and read back equal', (t) => {
  const c = sample();
  const back = decodeCheckpoint(encodeCheckpoint(c));
  t.deepEqual(back, c);
  const d = dir();
  const bytes = writeCheckpoint(d, c);
  t.is(readFileSync(join(d, CHECKPOINT_FILE)).length, bytes);
  t.deepEqual(readdirSync(d), [CHECKPOINT_FILE]);
  t.deepEqual(readCheckpoint(d), { checkpoint: c });
  t.deepEqual(readCheckpoint(dir()), { checkpoint: null }, 'no file: nothing to restore, no problem');
});

test('the header names magic, version, layout hash, entry sizes, counts and checksums', (t) => {
  const buf = encodeCheckpoint(sample());
  t.is(buf.toString('latin1', 0, 8), 'WDPFLOWS');
  t.is(buf.readUInt32LE(8), 1);
  t.is(buf.readUInt32LE(16), recordLayoutHash());
  t.is(buf.readUInt32LE(20), L.CT_SIZE);
  t.is(buf.readUInt32LE(24), L.AFF_SIZE);
  t.is(buf.readUInt32LE(28), 3);
  t.is(buf.readUInt32LE(32), 2);
  t.is(buf.length, HEADER_SIZE + buf.readUInt32LE(40));
});

/** Writes `bytes` as the checkpoint, reads it: must be refused with `why`, the file moved aside intact. */
function refused(t, bytes, why) {
  const d = dir();
  writeFileSync(join(d, CHECKPOINT_FILE), bytes);
  const r = readCheckpoint(d);
  t.is(r.checkpoint, null);
  t.regex(r.problem, why);
  t.false(existsSync(join(d, CHECKPOINT_FILE)), 'not read again on the next start');
  t.truthy(r.keptAs);
  t.deepEqual(readFileSync(r.keptAs), Buffer.from(bytes), 'kept aside unchanged for inspection');
}

const good = () => encodeCheckpoint(sample());
const patch = (f) => { const b = good(); f(b); return b; };

test('a flipped payload byte is refused (payload checksum)', (t) => refused(t, patch((b) => { b[HEADER_SIZE + 100] ^= 1; }), /payload checksum mismatch/));
test('a flipped header byte is refused (header checksum)', (t) => refused(t, patch((b) => { b[30] ^= 1; }), /header checksum mismatch/));
test('a truncated file is refused', (t) => {
  const b = good();
  refused(t, b.subarray(0, b.length - 10), /truncated/);
  refused(t, b.subarray(0, 40), /truncated/);
  refused(t, b.subarray(0, 5), /truncated/);
});
test('trailing bytes are refused', (t) => refused(t, Buffer.concat([good(), Buffer.from([1, 2, 3])]), /trailing bytes/));
test('another format version is refused with both versions named', (t) => refused(t, patch((b) => { b.writeUInt32LE(2, 8); }), /format version 2; this wdp reads version 1/));
test('another record layout is refused with both hashes named', (t) => refused(t, patch((b) => {
  b.writeUInt32LE((recordLayoutHash() ^ 0xff) >>> 0, 16);
  // a consistent header otherwise: only the layout differs
  b.writeUInt32LE(crc32(b.subarray(0, 48)), 48);
}), /layout hash 0x[0-9a-f]{8}; this build's is 0x[0-9a-f]{8}/));
// A tripwire: every CT_/CTS_/CTF_/AFF_ constant (and LAYOUT_VERSION) is in the hash, so a change to
// any of them makes the next upgrade refuse the saved flows of the build before it — every
// connection reset — unless that build's hash is listed in readableLayoutHashes (when its records
// still mean the same) or the change is meant to cost them.
test('the record layout hash is the one checkpoints of this layout carry (a change loses every saved flow at the upgrade unless the previous hash stays readable)', (t) => {
  t.is(`0x${recordLayoutHash().toString(16)}`, '0xec22903c',
    'the flow or affinity record constants changed: list the previous hash in readableLayoutHashes (src/daemon/checkpoint.ts) if its records read the same, then pin the new one here');
  t.true(readableLayoutHashes().includes(0xec22903c));
});
test('records of the layout before the SCTP states are read as this one\'s (an upgrade keeps its flows)', (t) => {
  const [, prior] = readableLayoutHashes();
  // the hash of 6f55d89's build (the last layout without CTS_SCTP_CLOSED…HEARTBEAT_SENT)
  t.is(prior, 0x8101f00b);
  const b = good();
  b.writeUInt32LE(prior, 16);
  b.writeUInt32LE(crc32(b.subarray(0, 48)), 48);
  const c = decodeCheckpoint(b);
  t.deepEqual(c, decodeCheckpoint(good()));
});
test('something else entirely is refused', (t) => refused(t, Buffer.from('{"format":"wdp-desired-state"}'), /not a wdp flow checkpoint/));
test('an empty file is refused', (t) => refused(t, Buffer.alloc(0), /truncated/));

