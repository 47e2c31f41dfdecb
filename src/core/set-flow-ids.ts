// Whether a flow entry's frontend and backend ids still name its own, checked on one table set's
// bytes — the checks of assembly/stale.ts (backendHolds, heldFrontId) as the core makes them on
// the set it reads. The conntrack listing (host.ts flowEntry) makes them on the compiler's Ir of
// the tables in force; between a restart's table image load and the control plane's catch-up
// apply that Ir is still empty while the core forwards from the image (table-image.ts), so the
// listing makes them here, on the image's set, and shows the ids the image (and the old process)
// gives the flows. The table image's restore and catch-up read what an id named in the image's
// set through it too (table-image.ts: fe, be). The first check that needs the service map scans
// it once (~4 slots per frontend id); a check is a few compares on the entries.
import * as L from '../../assembly/layout.js';
import { addrPortKey, type FrontendIndex } from './frontend-index.js';

/** Core memory as this reads it (a Core: its views change when the memory grows). */
export interface CoreMemory { readonly u8: Uint8Array; readonly dv: DataView }

/** The id checks of assembly/stale.ts on the table set at `base` of `mem`, and what an id names
 * in that set. */
export class SetFlowIds {
  private readonly front: number; private readonly frontMax: number;
  private readonly backend: number; private readonly backendMax: number;
  /** The service map's frontend of each (protocol, address, port) key (select.ts svcLookup); built
   * on first use. */
  private svcmap: FrontendIndex | null = null;

  constructor(readonly mem: CoreMemory, private readonly base: number) {
    const dv = mem.dv;
    this.front = dv.getUint32(base + L.TSH_FRONT_OFF, true); this.frontMax = dv.getUint32(base + L.TSH_FRONT_MAX, true);
    this.backend = dv.getUint32(base + L.TSH_BACKEND_OFF, true); this.backendMax = dv.getUint32(base + L.TSH_BACKEND_MAX, true);
  }

  /** Frontend entry address of `id` in the set, or -1 when it names none. */
  fe(id: number): number {
    if (!(id >= 1 && id <= this.frontMax)) return -1;
    const e = this.front + id * L.FE_SIZE;
    return this.mem.u8[e + L.FE_FAMILY] !== 0 ? e : -1;
  }

  /** Backend entry address of `id` in the set, or -1 when it names none. */
  be(id: number): number {
    if (!(id >= 1 && id <= this.backendMax)) return -1;
    const e = this.backend + id * L.BE_SIZE;
    return this.mem.u8[e + L.BE_FAMILY] !== 0 ? e : -1;
  }

  private serviceMap(): FrontendIndex {
    if (this.svcmap) return this.svcmap;
    const dv = this.mem.dv, u8 = this.mem.u8, base = this.base, svcmap: FrontendIndex = new Map();
    const sm = dv.getUint32(base + L.TSH_SVCMAP_OFF, true), slots = sm ? dv.getUint32(base + L.TSH_SVCMAP_MASK, true) + 1 : 0;
    for (let i = 0; i < slots; i++) {
      const s = sm + i * L.SM_SIZE, front = dv.getUint32(s + L.SM_FRONT, true);
      // (a catch-all key, port SM_ANY_PORT, never equals a flow's: kept, never looked up)
      if (front === 0 || front > this.frontMax) continue;
      const proto = u8[s + L.SM_PROTO];
      let byKey = svcmap.get(proto);
      if (!byKey) svcmap.set(proto, byKey = new Map());
      byKey.set(addrPortKey(u8, s + L.SM_ADDR, u8[s + L.SM_FAMILY] === 6 ? 6 : 4, dv.getUint16(s + L.SM_PORT, true)), front);
    }
    return this.svcmap = svcmap;
  }

  /** backendHolds: the flow at `e`'s CT_BACKEND_ID is usable in the set (not BES_ABSENT) and its
   * entry has the flow's backend address, port and family. */
  backendHolds(e: number): boolean {
    const u8 = this.mem.u8, dv = this.mem.dv, id = dv.getUint32(e + L.CT_BACKEND_ID, true);
    if (id === 0 || id > this.backendMax) return false;
    const be = this.backend + id * L.BE_SIZE;
    return u8[be + L.BE_STATE] !== L.BES_ABSENT && dv.getUint16(be + L.BE_PORT, true) === dv.getUint16(e + L.CT_BPORT, true) &&
      u8[be + L.BE_FAMILY] === u8[e + L.CT_FAMILY] && equal16(u8, be + L.BE_ADDR, e + L.CT_BACKEND);
  }

  /** heldFrontId != 0: the flow at `e`'s CT_FRONT names a frontend of its (VIP, port, protocol,
   * family), or is the cluster front of the frontend the service map has for that key. */
  frontHolds(e: number): boolean {
    const u8 = this.mem.u8, dv = this.mem.dv, id = dv.getUint32(e + L.CT_FRONT, true);
    if (id === 0) return false;
    const family = u8[e + L.CT_FAMILY], proto = u8[e + L.CT_PROTO], vport = dv.getUint16(e + L.CT_VPORT, true);
    if (id <= this.frontMax) {
      const fe = this.front + id * L.FE_SIZE;
      if (u8[fe + L.FE_FAMILY] === family && dv.getUint16(fe + L.FE_PORT, true) === vport && u8[fe + L.FE_PROTO] === proto &&
        equal16(u8, fe + L.FE_ADDR, e + L.CT_VIP)) return true;
    }
    const fid = this.serviceFront(proto, e + L.CT_VIP, family === 6 ? 6 : 4, vport);
    return fid !== 0 && (fid === id || dv.getUint32(this.front + fid * L.FE_SIZE + L.FE_CLUSTER_FRONT, true) === id);
  }

  /** The service map's frontend of (protocol, the address at `off` of the memory, port) in the
   * set; 0 for none. */
  serviceFront(proto: number, off: number, family: 4 | 6, port: number): number {
    return this.serviceMap().get(proto)?.get(addrPortKey(this.mem.u8, off, family, port)) ?? 0;
  }
}

/** Whether the 16 bytes at a and b of u8 are equal. */
function equal16(u8: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < 16; i++) if (u8[a + i] !== u8[b + i]) return false;
  return true;
}
