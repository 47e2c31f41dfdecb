// A damaged table image is kept aside for inspection (restart-image-corrupt), but one per worker:
// the newest. An image is a table set's size (tens to hundreds of MB), and a fault that damages
// each stop's image (a disk, a filesystem) must not fill the state directory one restart at a time.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Core } from '../dist/src/core/host.js';
import { captureImage } from '../dist/src/core/table-image.js';
import { imageFile, startFromImage } from '../dist/src/daemon/table-image-file.js';
import { irFrom, mkCore } from './lib/core-fixture.js';

const who = { worker: 0, workers: 2, revision: 'store:1@-,-;flows -', inputsHash: 'h', announced: [] };
const init = (dir) => ({ dir, revision: who.revision, inputsHash: who.inputsHash, extraAgeMs: 0, neighbours: [] });

test('each damaged image replaces the one kept before it for the same worker; another worker\'s stays', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-img-rejected-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const img = captureImage(mkCore(irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }] })), who);
  img.writeUInt32LE((img.readUInt32LE(20) ^ 1) >>> 0, 20); // the CRC spoiled
  writeFileSync(join(dir, 'tables.1.img.rejected-2026-01-01T00-00-00-000Z'), 'worker 1\'s');
  const kept = [];
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(dir, imageFile(0)), img);
    const { result } = startFromImage(Core.create({ batchMax: 16, flows: 256, affinitySlots: 256 }), 0, 2, init(dir), []);
    t.false(result.used);
    const m = /kept as (.*)$/.exec(result.problem);
    t.truthy(m, result.problem);
    kept.push(m[1]);
  }
  const left = readdirSync(dir).sort();
  t.deepEqual(left.filter((n) => n.startsWith('tables.0.')), [kept.at(-1).split('/').at(-1)], 'only the newest of worker 0');
  t.deepEqual(left.filter((n) => n.startsWith('tables.1.')), ['tables.1.img.rejected-2026-01-01T00-00-00-000Z']);
});
