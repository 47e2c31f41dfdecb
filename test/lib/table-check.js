// What a core's tables must be for an Ir (test helper): both table sets byte-identical (the
// left-right invariant), the service map holding exactly the Ir's frontends plus one catch-all key
// per ClusterIP address naming its lowest ClusterIP frontend, each found by probing as the core
// does, and frontend / backend entries that decode back to the Ir.
import * as L from '../../dist/assembly/layout.js';
import { svcmapHash } from '../../dist/src/core/table-writer.js';
import { parseAddr, formatAddr } from '../../dist/src/util/addr.js';
import { maglevIds } from '../../dist/src/ir/ir.js';
import { maglevRangeWords, maglevSlotWords } from '../../dist/src/core/maglev-range.js';

const PROTO = { TCP: 6, UDP: 17, SCTP: 132 };

/** Frontend `id`'s Maglev table in the set at `base`, read as the core reads it (its range: index
 * slots as wide as the list needs, then the backend list): backend ids, 0 for an index past the
 * list; and the range's raw bytes. */
export function coreMaglev(core, base, id) {
  const dv = core.dv, e = dv.getUint32(base + L.TSH_FRONT_OFF, true) + id * L.FE_SIZE;
  const m = dv.getUint32(e + L.FE_MAGLEV_SIZE, true), n = dv.getUint32(e + L.FE_NBACKENDS, true);
  const at = dv.getUint32(base + L.TSH_MAGLEV_OFF, true) + dv.getUint32(e + L.FE_MAGLEV_OFF, true) * 4;
  const width = n <= L.MAGLEV_SLOT_U8_MAX ? 1 : n <= L.MAGLEV_SLOT_U16_MAX ? 2 : 4;
  const ids = new Uint32Array(m);
  for (let k = 0; k < m; k++) {
    const w = at + k * width, list = at + maglevSlotWords(m, n) * 4;
    const i = width === 1 ? core.u8[w] : width === 2 ? dv.getUint16(w, true) : dv.getUint32(w, true);
    ids[k] = i < n ? dv.getUint32(list + i * 4, true) : 0;
  }
  return { ids, bytes: core.u8.slice(at, at + maglevRangeWords(m, n) * 4) };
}

export function setBytes(core, i) {
  const base = core.map.tableSets[i];
  const next = i === 0 ? core.map.tableSets[1] : null;
  const dv = core.dv;
  const end = dv.getUint32(base + L.TSH_ROUTE_OFF, true) + dv.getUint32(base + L.TSH_ROUTE_MAX, true) * L.RT_SIZE;
  void next;
  return core.u8.slice(base + L.TSH_SIZE, end).map((x) => x); // offsets inside differ per set; compare relative
}

export function lookup(core, setIdx, addr, port, proto) {
  const dv = core.dv, u8 = core.u8;
  const base = core.map.tableSets[setIdx];
  const sm = dv.getUint32(base + L.TSH_SVCMAP_OFF, true), mask = dv.getUint32(base + L.TSH_SVCMAP_MASK, true);
  const a = parseAddr(addr);
  const pn = typeof proto === 'number' ? proto : PROTO[proto];
  const h = svcmapHash(a.bytes, port, pn, a.family);
  for (let i = h & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
    const e = sm + i * L.SM_SIZE;
    const front = dv.getUint32(e + L.SM_FRONT, true);
    if (front === 0) return 0;
    if (dv.getUint32(e + L.SM_HASH, true) === h && dv.getUint16(e + L.SM_PORT, true) === port &&
      u8[e + L.SM_PROTO] === pn && u8[e + L.SM_FAMILY] === a.family &&
      a.bytes.every((x, k) => u8[e + L.SM_ADDR + k] === x)) return front;
  }
  return 0;
}

export function checkCore(t, core, ir) {
  const a = setBytes(core, 0), b = setBytes(core, 1);
  t.is(a.length, b.length);
  t.true(Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, 'both table sets identical');
  const active = core.cfg32(L.CFG_GEN) & 1;
  let count = 0;
  const dv = core.dv, base = core.map.tableSets[active];
  const sm = dv.getUint32(base + L.TSH_SVCMAP_OFF, true), mask = dv.getUint32(base + L.TSH_SVCMAP_MASK, true);
  for (let i = 0; i <= mask; i++) if (dv.getUint32(sm + i * L.SM_SIZE + L.SM_FRONT, true)) count++;
  // every frontend's key, plus one catch-all key per ClusterIP address naming its lowest
  // ClusterIP frontend (the core rejects other ports of a ClusterIP through it: issue 14)
  const vips = new Map();
  for (const f of ir.frontends.values()) {
    if (f.kind !== 'ClusterIP') continue;
    const k = `${f.family}|${f.addr}`;
    if (!vips.has(k) || f.id < vips.get(k).id) vips.set(k, f);
  }
  // (a ClusterPolicy frontend is not in the service map)
  const keyed = [...ir.frontends.values()].filter((f) => f.kind !== 'ClusterPolicy').length;
  t.is(count, keyed + vips.size, 'service map holds exactly the frontends and one catch-all per ClusterIP address');
  for (const f of vips.values()) t.is(lookup(core, active, f.addr, L.SM_ANY_PORT, L.SM_ANY_PROTO), f.id, `catch-all ${f.addr}`);
  const fe = dv.getUint32(base + L.TSH_FRONT_OFF, true);
  for (const f of ir.frontends.values()) {
    if (f.kind !== 'ClusterPolicy') t.is(lookup(core, active, f.addr, f.port, f.proto), f.id, `lookup ${f.addr}:${f.port}/${f.proto}`);
    const e = fe + f.id * L.FE_SIZE;
    t.is(dv.getUint32(e + L.FE_MAGLEV_SIZE, true), f.maglev.length);
    t.is(dv.getUint32(e + L.FE_NBACKENDS, true), f.backends.length);
    const ids = maglevIds(f); // (an index table names backends by their place in f.backends)
    const got = coreMaglev(core, base, f.id).ids;
    for (let k = 0; k < f.maglev.length; k += 97) t.is(got[k], ids[k]);
    t.is(formatAddr(core.u8, f.family, e + L.FE_ADDR), formatAddr(parseAddr(f.addr).bytes, f.family));
  }
  const be = dv.getUint32(base + L.TSH_BACKEND_OFF, true);
  for (const b of ir.backends.values()) {
    t.is(core.u8[be + b.id * L.BE_SIZE + L.BE_STATE], b.state);
    t.is(dv.getUint16(be + b.id * L.BE_SIZE + L.BE_PORT, true), b.port);
  }
}
