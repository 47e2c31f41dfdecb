// A damaged table image or flow checkpoint whose header names huge but plausible sizes is refused
// before anything those sizes would allocate: the image's whole file is checked (length, CRC)
// before the table set its capacities size is taken from the core's memory, and the checkpoint's
// CRCs and lengths before its counts are used. The refused file is kept aside with the reason.
// The core's linear memory (which never shrinks) is what an allocation would grow: the test
// compares its size before and after.
import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { captureImage } from '../dist/src/core/table-image.js';
import { TableWriter, tableSetBytes } from '../dist/src/core/table-writer.js';
import { imageFile, startFromImage } from '../dist/src/daemon/table-image-file.js';
import { CHECKPOINT_FILE, HEADER_SIZE, readCheckpoint, writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { irFrom, mkCore } from './lib/core-fixture.js';
import { frame } from '../dist/src/packet/build.js';

const who = { worker: 0, workers: 1, revision: 'store:1@-,-;flows -', inputsHash: 'h', announced: [] };
const init = (dir) => ({ dir, revision: who.revision, inputsHash: who.inputsHash, extraAgeMs: 0, neighbours: [] });

function tmp(t) {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-img-corrupt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real image of a small table, its metadata rewritten to `caps` (offsets laid out for them, as
 * a writer would) and its CRC computed, then spoiled when `badCrc`. */
function craftedImage(caps, badCrc) {
  const core = mkCore(irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] }));
  const img = captureImage(core, who);
  const metaLen = img.readUInt32LE(12), payloadLen = img.readUInt32LE(16);
  const meta = JSON.parse(img.toString('utf8', 24, 24 + metaLen));
  meta.caps = { ...meta.caps, ...caps };
  meta.offsets = TableWriter.regionOffsets(meta.caps);
  const m = Buffer.from(JSON.stringify(meta));
  const out = Buffer.concat([img.subarray(0, 24), m, img.subarray(24 + metaLen)]);
  out.writeUInt32LE(m.length, 12);
  out.writeUInt32LE(payloadLen, 16);
  out.writeUInt32LE((crc32(out.subarray(24)) ^ (badCrc ? 1 : 0)) >>> 0, 20);
  return out;
}

const HUGE = { frontends: 600_000, backends: 6_000_000, maglevWords: 40_000_000 };

test('an image with huge capacities and a bad CRC is refused and kept aside without growing the core\'s memory', (t) => {
  const dir = tmp(t);
  t.true(tableSetBytes({ ...HUGE, cidrs: 16, routes: 16 }) > 256 << 20, 'the capacities ask for hundreds of MB');
  const bytes = craftedImage(HUGE, true);
  writeFileSync(join(dir, imageFile(0)), bytes);
  const core = Core.create({ batchMax: 16, flows: 256, affinitySlots: 256 });
  const memBefore = core.memory.buffer.byteLength, endBefore = core.map.end;
  const { resume, result } = startFromImage(core, 0, 1, init(dir), []);
  t.is(resume, undefined);
  t.false(result.used);
  t.regex(result.problem, /checksum mismatch \(corrupt\); kept as .*tables\.0\.img\.rejected-/);
  t.is(core.memory.buffer.byteLength, memBefore, 'no memory was allocated for the image');
  t.is(core.map.end, endBefore, 'nothing was taken from the bump allocator');
  const kept = readdirSync(dir).filter((n) => n.startsWith('tables.0.img.rejected-'));
  t.is(kept.length, 1, readdirSync(dir).join(' '));
  t.deepEqual(readFileSync(join(dir, kept[0])), bytes, 'kept as it was, for inspection');
  t.false(existsSync(join(dir, imageFile(0))), 'never read as an image again');
  t.false(existsSync(join(dir, `${imageFile(0)}.loading`)));
});

test('damaged framing is kept aside too; an image refused for what it describes is deleted', (t) => {
  const dir = tmp(t);
  const good = craftedImage({}, false);
  const short = good.subarray(0, good.length - 3);
  writeFileSync(join(dir, imageFile(0)), short);
  const core = Core.create({ batchMax: 16, flows: 256, affinitySlots: 256 });
  let r = startFromImage(core, 0, 1, init(dir), []).result;
  t.regex(r.problem, /truncated or trailing bytes.*; kept as /);
  // another revision: nothing wrong with the file, it is just not for this start
  writeFileSync(join(dir, imageFile(0)), good);
  r = startFromImage(core, 0, 1, { ...init(dir), revision: 'store:2@-,-;flows -' }, []).result;
  t.regex(r.problem, /saved state changed/);
  t.notRegex(r.problem, /kept as/);
  t.deepEqual(readdirSync(dir).filter((n) => n.startsWith('tables.0.img')).length, 1, 'only the damaged one is kept');
  // and an intact image loads
  writeFileSync(join(dir, imageFile(0)), good);
  const ok = startFromImage(core, 0, 1, init(dir), []);
  t.true(ok.result.used, ok.result.problem);
});

test('a checkpoint whose header says huge but plausible counts and whose payload CRC is bad is refused before the counts are used', (t) => {
  const dir = tmp(t);
  writeCheckpoint(dir, { savedAt: Date.now(), reason: 'stop', workers: [{ worker: 0, flows: new Uint8Array(4 * L.CT_SIZE), affinity: new Uint8Array(0), frontends: [], backends: [], ports: [], snatV4: null, snatV6: null }], neighbours: [] });
  const file = join(dir, CHECKPOINT_FILE);
  const buf = readFileSync(file);
  buf.writeUInt32LE(10_000_000, 28);                   // flows: ~1 GB of records, were they trusted
  buf.writeUInt32LE(crc32(buf.subarray(0, 48)), 48);   // a header CRC that holds
  buf[HEADER_SIZE + 1] ^= 0xff;                        // and a damaged payload
  writeFileSync(file, buf);
  const before = process.memoryUsage().arrayBuffers;
  const l = readCheckpoint(dir);
  t.is(l.checkpoint, null);
  t.regex(l.problem, /checksum mismatch|do not add up/);
  t.true(existsSync(l.keptAs));
  t.true(process.memoryUsage().arrayBuffers - before < 64 << 20, 'nothing sized by the counts was allocated');
});

test('an image of format 1 (Maglev words of u32 backend ids) is refused at start before its tables are taken; the next apply writes them', (t) => {
  const dir = tmp(t);
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] });
  const old = captureImage(mkCore(ir), who);
  old.writeUInt32LE(1, 8); // (the version is outside the CRC: the rest is intact)
  writeFileSync(join(dir, imageFile(0)), old);
  const core = Core.create({ batchMax: 16, flows: 256, affinitySlots: 256 });
  const endBefore = core.map.end;
  const { resume, result } = startFromImage(core, 0, 1, init(dir), []);
  t.is(resume, undefined);
  t.false(result.used);
  t.regex(result.problem, /format version 1; this wdp reads version 2/);
  t.is(core.map.end, endBefore, 'nothing was taken from the bump allocator');
  t.false(existsSync(join(dir, imageFile(0))), 'never read as an image again');
  core.applyIr(ir);
  t.is(core.run([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'TCP', sport: 4000, dport: 80, flags: 'S' })])[0].verdict, 'forward');
});
