// pcap ports: write then read back byte-exact (µs and ns timestamps, both byte orders), a
// hand-built big-endian file, replay into the arena at full speed and at recorded timing, capture
// of another port's traffic, and clear errors for bad files.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as L from '../dist/assembly/layout.js';
import { CapturePort, PcapPort, PcapWriter, encodePcap, parsePcap, readPcap } from '../dist/src/ports/pcap.js';
import { numberedFrame } from './lib/frames.js';

const dir = mkdtempSync(join(tmpdir(), 'wdp-pcap-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const frame = (len, seq) => numberedFrame(len, seq, { dst: '02:00:00:00:00:02', src: '02:00:00:00:00:01' });

function makeArea(slots = 64, slotSize = 2048) {
  const arenaOff = slots * L.DESC_SIZE;
  const mem = new WebAssembly.Memory({ initial: Math.ceil((arenaOff + slots * slotSize) / 65536) + 1 });
  return { memory: mem.buffer, arenaOff, slotSize, descOff: 0 };
}

function getRx(area, i) {
  const dv = new DataView(area.memory);
  const len = dv.getUint16(i * L.DESC_SIZE + L.D_LEN, true);
  const s = area.arenaOff + i * area.slotSize;
  return { len, inPort: dv.getUint16(i * L.DESC_SIZE + L.D_IN_PORT, true), bytes: new Uint8Array(area.memory).slice(s, s + len) };
}

const T0 = 1_700_000_000_123_456_789n;
const records = [60, 64, 1514, 200, 9000].map((len, k) => ({ tsNs: T0 + BigInt(k) * 1_500_000n + BigInt(k * 7), data: frame(len, k) }));

for (const resolution of ['us', 'ns']) {
  for (const byteOrder of ['le', 'be']) {
    test(`PcapWriter → readPcap round trip, ${resolution} timestamps, ${byteOrder}`, (t) => {
      const path = join(dir, `rt-${resolution}-${byteOrder}.pcap`);
      const w = new PcapWriter(path, { resolution, byteOrder });
      for (const r of records) w.write(r.data, r.tsNs);
      t.is(w.count, records.length);
      w.close();
      const f = readPcap(path);
      t.is(f.resolution, resolution);
      t.is(f.byteOrder, byteOrder);
      t.is(f.linktype, 1);
      t.is(f.records.length, records.length);
      f.records.forEach((r, k) => {
        t.deepEqual(r.data, records[k].data, `frame ${k} byte-exact`);
        t.is(r.origLen, records[k].data.length);
        const want = resolution === 'ns' ? records[k].tsNs : (records[k].tsNs / 1000n) * 1000n;
        t.is(r.tsNs, want, `timestamp ${k}`);
      });
      // the in-memory encoder produces the identical file
      t.deepEqual(new Uint8Array(readFileSync(path)), encodePcap(records, { resolution, byteOrder }));
    });
  }
}

test('a hand-built big-endian nanosecond file parses to the expected frame', (t) => {
  const hdr = Buffer.from('a1b23c4d' + '0002' + '0004' + '00000000' + '00000000' + '0000ffff' + '00000001', 'hex');
  const rec = Buffer.from('65000001' + '3b9ac9ff' + '00000010' + '00000040', 'hex'); // sec, ns=999999999, incl 16, orig 64
  const data = Buffer.from('ffffffffffff0200000000010806abcd', 'hex');
  const f = parsePcap(new Uint8Array(Buffer.concat([hdr, rec, data])));
  t.is(f.byteOrder, 'be');
  t.is(f.resolution, 'ns');
  t.is(f.snaplen, 65535);
  t.is(f.records.length, 1);
  t.is(f.records[0].tsNs, 0x65000001n * 1_000_000_000n + 999_999_999n);
  t.is(f.records[0].origLen, 64);
  t.deepEqual(Buffer.from(f.records[0].data), data);
});

test('a hand-built little-endian microsecond file parses to the expected frame', (t) => {
  const hdr = Buffer.from('d4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '01000000', 'hex');
  const rec = Buffer.from('01000000' + 'f07e0e00' + '0e000000' + '0e000000', 'hex'); // 1 s + 950000 µs
  const data = Buffer.from('0200000000020200000000010800', 'hex');
  const f = parsePcap(new Uint8Array(Buffer.concat([hdr, rec, data])));
  t.is(f.resolution, 'us');
  t.is(f.byteOrder, 'le');
  t.is(f.records[0].tsNs, 1_950_000_000n);
  t.deepEqual(Buffer.from(f.records[0].data), data);
});

test('PcapPort replays a file into the arena at full speed; oversize frames are counted', (t) => {
  const path = join(dir, 'replay.pcap');
  writeFileSync(path, encodePcap(records));
  const p = new PcapPort({ path, index: 3 });
  const area = makeArea(8, 2048);
  t.is(p.rxBurst(area, 0, 3), 3);
  for (let k = 0; k < 3; k++) {
    const g = getRx(area, k);
    t.is(g.inPort, 3);
    t.deepEqual(g.bytes, records[k].data);
  }
  // slots 5..: the 9000-byte frame does not fit a 2048-byte slot
  t.is(p.rxBurst(area, 5, 3), 1);
  t.deepEqual(getRx(area, 5).bytes, records[3].data);
  t.true(p.done);
  t.is(p.rxBurst(area, 0, 8), 0);
  const s = p.stats();
  t.is(s.rxPackets, 4);
  t.is(s.oversize, 1);
  t.is(s.rxDropped, 1);
});

test('PcapPort at recorded timing releases frames as the clock passes their offsets', (t) => {
  let now = 1000;
  const p = new PcapPort({ records: parsePcap(encodePcap(records, { resolution: 'ns' })).records, index: 0, timing: 'recorded', clock: () => now });
  const area = makeArea(8);
  t.is(p.rxBurst(area, 0, 8), 1);          // offset 0 is due at once
  now += 1.4;
  t.is(p.rxBurst(area, 0, 8), 0);          // next at 1.500007 ms
  now += 0.2;
  t.is(p.rxBurst(area, 0, 8), 1);
  now += 10;
  t.is(p.rxBurst(area, 0, 8), 2);          // the rest that fit (9000 B is oversize)
  t.is(p.stats().oversize, 1);
  const fast = new PcapPort({ records: parsePcap(encodePcap(records)).records, index: 0, timing: 'recorded', speed: 1000, clock: () => now });
  t.is(fast.rxBurst(area, 0, 8), 1);
  now += 0.01;                              // 10 µs x1000 = 10 ms of recorded time
  t.is(fast.rxBurst(area, 0, 8), 3);
});

test('PcapPort loop replays endlessly; tx side writes what the dataplane sends', (t) => {
  const txPath = join(dir, 'tx.pcap');
  const p = new PcapPort({ records: parsePcap(encodePcap(records.slice(0, 2))).records, index: 2, loop: true, txPath, txOptions: { resolution: 'ns' } });
  const area = makeArea(8);
  t.is(p.rxBurst(area, 0, 5), 5);
  t.deepEqual(getRx(area, 4).bytes, records[0].data);
  t.false(p.done);
  // make descriptors 0..4: forward to port 2 except #1 (other port) and #3 (dropped)
  const dv = new DataView(area.memory);
  for (let i = 0; i < 5; i++) {
    dv.setUint16(i * 16 + L.D_OUT_PORT, i === 1 ? 9 : 2, true);
    dv.setUint8(i * 16 + L.D_VERDICT, i === 3 ? L.V_DROP : i === 4 ? L.V_REJECT : L.V_FORWARD);
  }
  t.is(p.txBurst(area, 5), 3);
  p.close();
  const out = readPcap(txPath);
  t.is(out.resolution, 'ns');
  t.deepEqual(out.records.map((r) => Buffer.from(r.data)), [0, 2, 4].map((i) => Buffer.from(getRx(area, i).bytes)));
  t.throws(() => p.rxBurst(area, 0, 1), { code: 'ECLOSED' });
});

test('CapturePort records another port\'s rx and tx traffic', (t) => {
  const inner = new PcapPort({ records: parsePcap(encodePcap(records.slice(0, 3))).records, index: 1 });
  const capPath = join(dir, 'cap.pcap');
  const cap = new CapturePort(inner, new PcapWriter(capPath));
  t.is(cap.index, 1);
  const area = makeArea(8);
  t.is(cap.rxBurst(area, 0, 8), 3);
  const dv = new DataView(area.memory);
  dv.setUint16(0 + L.D_OUT_PORT, 1, true);
  dv.setUint8(0 + L.D_VERDICT, L.V_FORWARD);
  dv.setUint8(16 + L.D_VERDICT, L.V_DROP);
  dv.setUint8(32 + L.D_VERDICT, L.V_DROP);
  t.is(cap.txBurst(area, 3), 1);
  cap.close();
  const f = readPcap(capPath);
  t.deepEqual(f.records.map((r) => Buffer.from(r.data)), [...records.slice(0, 3), records[0]].map((r) => Buffer.from(r.data)));
  t.true(f.records.every((r) => r.tsNs > 1_600_000_000_000_000_000n), 'wall-clock timestamps');
});

test('bad pcap input gives clear errors', (t) => {
  const good = encodePcap(records.slice(0, 2));
  t.regex(t.throws(() => parsePcap(good.subarray(0, 10))).message, /too short/);
  t.regex(t.throws(() => parsePcap(good.subarray(0, good.length - 3))).message, /record 1 .*truncated/);
  t.regex(t.throws(() => parsePcap(good.subarray(0, 24 + 8))).message, /truncated record header/);
  const ng = new Uint8Array(good); new DataView(ng.buffer).setUint32(0, 0x0a0d0d0a, true);
  t.regex(t.throws(() => parsePcap(ng)).message, /pcapng/);
  const raw = new Uint8Array(good); new DataView(raw.buffer).setUint32(20, 101, true);
  t.regex(t.throws(() => parsePcap(raw)).message, /link type 101/);
  const junk = new Uint8Array(40).fill(7);
  const e = t.throws(() => parsePcap(junk));
  t.is(e.code, 'EPCAP');
  t.regex(e.message, /not a pcap file/);
  t.is(t.throws(() => readPcap(join(dir, 'missing.pcap'))).code, 'ENOENT');
  t.throws(() => new PcapWriter(join(dir, 'x.pcap'), { resolution: 'ms' }), { code: 'EPCAP' });
  const p = new PcapPort({ records: [], index: 0 });
  t.throws(() => p.rxBurst(makeArea(2), 100, 10), { code: 'ERANGE' });
});

test('readPcap reads within a bound: a device given as the capture (/dev/zero) is refused once past it, a missing file names its code', (t) => {
  const e = t.throws(() => readPcap('/dev/zero', 1 << 20));
  t.regex(e.message, /pcap file \/dev\/zero: larger than 1 MiB: refused/);
  const missing = t.throws(() => readPcap('/nonexistent.pcap'));
  t.regex(missing.message, /cannot read pcap file \/nonexistent\.pcap: ENOENT/);
  t.is(missing.code, 'ENOENT');
});
