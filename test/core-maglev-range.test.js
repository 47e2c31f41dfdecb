// A frontend's Maglev range (assembly/layout.ts, "Maglev range"): slots that index its backend
// list, u8 up to 256 backends, u16 up to 65536, u32 beyond, then the list. The core picks list[slot]
// for slot h % M of a new flow's hash h, whatever the width and whatever ids the list holds (not
// one contiguous range), and an index past the list names no backend (fail closed).
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { flowHash } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { CLIENT_MAC, LOCAL_MAC, mkCore, reasonCount } from './lib/core-fixture.js';
import { backend, mkIr } from './lib/ir-fixture.js';
import { coreMaglev } from './lib/table-check.js';
import { maglevListRoom } from '../dist/src/core/maglev-range.js';

const T0 = 1000, VIP = '10.96.0.10', M = 251;
const beAddr = (id) => `10.${64 + (id >>> 16)}.${(id >>> 8) & 255}.${id & 255}`;

/** An Ir with one UDP frontend over n backends whose ids are spread out (3i + 7), its Maglev
 * table an index table of the width the compiler gives n backends, every index used. */
function rangeIr(n) {
  const ids = Array.from({ length: n }, (_, i) => 3 * i + 7);
  const width = n <= 256 ? Uint8Array : n <= 65536 ? Uint16Array : Uint32Array;
  const maglev = width.from({ length: M }, (_, k) => (k * 7919 + (k >> 3)) % n);
  const fe = { id: 1, service: 'default/svc', portName: '', kind: 'ClusterIP', addr: VIP, family: 4, port: 53, proto: 'UDP', flags: 0,
    affinityTimeoutMs: 0, sourceRanges: [], backends: ids, maglev, maglevIndexed: true };
  return { ir: mkIr({ frontends: [fe], backends: ids.map((id) => backend({ id, addr: beAddr(id), port: 5353 })) }), fe };
}

const query = (sport) => frame({ src: '10.0.0.5', dst: VIP, proto: 'UDP', sport, dport: 53, payload: 'q', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC });
const slotOf = (sport) => flowHash(parseAddr('10.0.0.5').bytes, parseAddr(VIP).bytes, sport, 53, 17) % M;

for (const [n, width] of [[10, 1], [300, 2], [70_000, 4]]) {
  test(`${n} backends: u${width * 8} slots; each new flow goes to list[slot], a slot past the list drops`, (t) => {
    const { ir, fe } = rangeIr(n);
    const core = mkCore(ir, { flows: 4096 });
    const base = core.map.tableSets[core.cfg32(L.CFG_GEN) & 1];
    const { ids, bytes } = coreMaglev(core, base, 1);
    t.is(bytes.length, (Math.ceil((M * width) / 4) + maglevListRoom(n)) * 4, 'the range: M slots of the width, then room for the list');
    t.deepEqual([...ids], [...fe.maglev].map((i) => fe.backends[i]));
    // 300 new flows in batches (the prefetch's pick, and the decision's own for frames it did not prepare)
    const sports = Array.from({ length: 300 }, (_, i) => 20000 + i);
    const res = core.run(sports.map(query), T0);
    res.forEach((r, i) => {
      t.is(r.verdict, 'forward');
      t.is(parseFrame(r.frame).dst, beAddr(fe.backends[fe.maglev[slotOf(sports[i])]]));
    });
    // an index past the list, written into the active set's slot of a new flow: no backend
    const sport = 40000, slot = slotOf(sport);
    const dv = core.dv, e = dv.getUint32(base + L.TSH_FRONT_OFF, true) + L.FE_SIZE;
    const at = dv.getUint32(base + L.TSH_MAGLEV_OFF, true) + dv.getUint32(e + L.FE_MAGLEV_OFF, true) * 4 + slot * width;
    if (width === 1) core.u8[at] = 255; else if (width === 2) dv.setUint16(at, 65535, true); else dv.setUint32(at, 0xffffffff, true);
    const [r] = core.run([query(sport)], T0);
    t.is(r.verdict, 'drop');
    t.is(r.reason, 'drop_no_route', 'an index past the list');
    t.is(reasonCount(core, 'drop_no_route'), 1);
  });
}
