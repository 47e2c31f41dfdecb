// A core's conntrack and affinity tables as raw entry records: what the daemon checkpoints
// (src/daemon/checkpoint.ts) so that connections survive a restart or an upgrade of wdp.
//
// Export copies every live entry in the layout's own format (assembly/layout.ts CT_* / AFF_*),
// with its absolute core-clock times turned into ages (ms before the export): the next process
// has another clock. Import re-inserts entry by entry — flows through the core's own allocator
// and index insert (Core.restoreFlowEntry → assembly/ct-restore.ts), affinity entries into their
// probe window as the core's write does — rather than copying the regions wholesale, because
// nothing index-shaped survives a restart unchanged:
//   * frontend and backend ids are the compiler's, assigned afresh from the restored state;
//     a flow's frontend is found again by its VIP, port and protocol — then, as the core records
//     a new flow, its cluster front when that frontend short-circuits the flow's client (a pod or
//     the node to an externalTrafficPolicy Local frontend: Core.recordedFront) — its backend by
//     (service port, address, port); the affinity hash covers the frontend id, so slots move too;
//   * port indexes follow the config order; flows are re-attached to ports by name (the client
//     side's CT_CLIENT_PORT; the reserved CT_OUT_PORT is imported as the core's 0);
//   * the table capacity (conntrack.flows) may differ between the two runs.
// A wholesale copy would only be right when all of these happen to match, and the saving (a few
// ms per 100k flows at restore) does not pay for a second, rarely exercised restore path.
//
// What import does with entries that no longer fit (counted in ImportStats.dropped):
//   expired      idle longer than its state's timeout, counting the downtime
//   portGone     the port the client side came in on is not configured any more
//   snatChanged  masqueraded, and the masquerade address of its family changed (replies go to
//                the old address: the connection cannot continue); for a hairpin flow, the
//                hairpin address
//   clash        a live flow already owns its original or reply key (a damaged file, or
//                flows created in this core before the import)
//   invalid      a field outside the layout's values
//   full         the table is full (flows the core may not evict — established TCP, UDP streams,
//                confirmed SCTP — are restored first)
// A flow whose backend no longer exists is kept with backend id 0: the core treats it exactly as
// when a backend disappears while running (docs/core.md, "Original-direction hit": an open TCP or
// SCTP connection goes on to its own address by the route to it, a UDP flow or a new SYN is
// decided again), and its replies still
// translate. So is a flow whose Service port is gone, with frontend id 0 too (no per-frontend
// counter): live, its connection goes on to its old address after the Service was deleted (its
// backends left with it), as the kernel's conntrack keeps it under kube-proxy.
import * as L from '../../assembly/layout.js';
import type { Core } from './host.js';
import { PROTO_NUMBER, type Ir, type IrBackend, type IrFrontend } from '../ir/ir.js';
import { affinityHash } from './hash.js';
import { canonicalAddr, formatAddr, parseAddr, parseMacShared, type Family } from '../util/addr.js';
import { BackendStore } from '../ir/backend-store.js';
import { addrPortKey, keyOf, frontendIndex } from './frontend-index.js';
import { affinityKeyIn, pinSetsOf } from './affinity-pins.js';

/** A frontend an affinity record names (old id → what it was). `kind` 'ClusterPolicy': the
 * port's ClusterPolicy frontend (the cluster front of its externalTrafficPolicy Local frontends
 * while internalTrafficPolicy is Local too), which shares the ClusterIP's (VIP, port) but not its
 * endpoints; absent for every other kind (and in checkpoints written before it existed). */
export interface FrontendRef { id: number; addr: string; port: number; proto: number; kind?: 'ClusterPolicy' }
/** A backend an affinity record names. */
export interface BackendRef { id: number; addr: string; port: number }
/** A dataplane port: flows remember the port index and our MAC on the client side. */
export interface PortRef { index: number; name: string; mac: string }

export interface FlowRecords {
  /** n × CT_SIZE; CT_LAST_SEEN and CT_CREATED hold ages (ms before the export), CT_REPLY_HASH 0. */
  flows: Uint8Array;
  /** m × AFF_SIZE; AFF_LAST_SEEN holds the age, AFF_HASH 0. */
  affinity: Uint8Array;
  frontends: FrontendRef[];
  backends: BackendRef[];
  snatV4: string | null;
  snatV6: string | null;
  /** The hairpin addresses (null when none; absent in checkpoints written before they existed). */
  hairpinV4?: string | null;
  hairpinV6?: string | null;
  ports: PortRef[];
}

export interface ImportStats {
  flows: number;
  affinity: number;
  /** Restored flows whose backend is gone (kept with backend id 0: handled as a backend that
   * left), those whose Service port is gone among them (kept with frontend id 0 too). */
  staleBackends: number;
  dropped: Record<string, number>;
}

/** Whether the core may evict a flow in conntrack state `st` with CT_FLAGS `flags`
 * (assembly/conntrack.ts evictable reads the same EVICTABLE_CT_STATES and
 * EVICTABLE_UNCONFIRMED_CT_STATES of layout.ts). */
export const evictableState = (st: number, flags: number): boolean => st < L.CTS_COUNT &&
  ((((flags & L.CTF_CONFIRMED) ? L.EVICTABLE_CT_STATES : L.EVICTABLE_CT_STATES | L.EVICTABLE_UNCONFIRMED_CT_STATES) >>> st) & 1) !== 0;

const TCP_STATES = [L.CTS_TCP_SYN, L.CTS_TCP_SYN_RECV, L.CTS_TCP_MIDSTREAM, L.CTS_TCP_EST, L.CTS_TCP_HALF_CLOSED_ORIG,
  L.CTS_TCP_HALF_CLOSED_REPLY, L.CTS_TCP_CLOSING];
const SCTP_STATES = [L.CTS_SCTP_CLOSED, L.CTS_SCTP_COOKIE_WAIT, L.CTS_SCTP_COOKIE_ECHOED, L.CTS_SCTP, L.CTS_SCTP_SHUTDOWN,
  L.CTS_SCTP_SHUTDOWN_ACK_SENT, L.CTS_SCTP_HEARTBEAT_SENT];

/** Whether a saved record's state is one the core gives a flow of its protocol (TCP 6, UDP 17,
 * SCTP 132): another (a corrupt record, a state of another build) is refused as invalid, so a
 * restored flow is never in a state its protocol's transitions (assembly/conntrack.ts) do not
 * know. */
export function stateOfProto(st: number, proto: number): boolean {
  if (proto === 6) return TCP_STATES.includes(st);
  if (proto === 17) return st === L.CTS_UDP || st === L.CTS_UDP_REPLIED;
  if (proto === 132) return SCTP_STATES.includes(st);
  return false;
}

/** The state of the flow record at byte `o` of `flows` (ages, as exported) as this build reads
 * it. A UDP stream (CTS_UDP_REPLIED) has had a packet more than UDP_STREAM_MS after its first
 * (assembly/conntrack.ts udpStreams), so its last packet came later than that after its creation;
 * a record in that state whose last packet came sooner is no stream: a build before streams
 * saved every answered UDP flow so (a DNS query answered at once). It is CTS_UDP — evictable, the
 * UDP timeout — else an upgrade's restore would hold a table full of answered queries that
 * nothing may evict for CFG_TO_UDP_REPLIED. */
function savedState(flows: Uint8Array, v: DataView, o: number): number {
  const st = flows[o + L.CT_STATE];
  if (st !== L.CTS_UDP_REPLIED) return st;
  const sinceCreated = v.getUint32(o + L.CT_CREATED, true) - v.getUint32(o + L.CT_LAST_SEEN, true);
  return sinceCreated > L.UDP_STREAM_MS ? st : L.CTS_UDP;
}

/** An export in slices: a forwarding worker scans its tables a slice at a time between batches
 * instead of pausing for a whole pass (4M flows are ~400 MB to read). step() reads up to `budget`
 * entries (flow entries, then affinity slots) and says whether all have been read; each entry's
 * age is taken when its slice is read. Entries that change after their slice was read are as
 * they were then, and flows created in an already-read part are left for the next checkpoint: a
 * checkpoint is a recent picture, not an instant's. */
export class FlowExport {
  private nextFlow = 1;
  private nextAff = 0;
  private readonly flowChunks: Uint8Array[] = [];
  private readonly affChunks: Uint8Array[] = [];
  private readonly frontends = new Map<number, FrontendRef>();
  private readonly backends = new Map<number, BackendRef>();

  constructor(private readonly core: Core, private readonly ports: PortRef[]) {}

  step(budget: number, now = this.core.clockNow()): boolean {
    const core = this.core, u8 = core.u8, dv = core.dv, map = core.map, ir = core.ir;
    const timeout = core.flowTimeouts();
    const live: number[] = [];
    for (; this.nextFlow <= map.ctFlowsMax && budget > 0; this.nextFlow++, budget--) {
      const e = map.ctFlows + this.nextFlow * L.CT_SIZE;
      const st = u8[e + L.CT_STATE];
      if (st === L.CTS_NONE) continue;
      if (((now - dv.getUint32(e + L.CT_LAST_SEEN, true)) >>> 0) > (timeout[st] ?? 0)) continue;
      live.push(e);
    }
    if (live.length) this.flowChunks.push(copyEntries(core, live, L.CT_SIZE, [L.CT_LAST_SEEN, L.CT_CREATED], L.CT_REPLY_HASH, now));
    const affs: number[] = [];
    for (; this.nextAff < map.affSlots && budget > 0; this.nextAff++, budget--) {
      const a = map.aff + this.nextAff * L.AFF_SIZE;
      const front = dv.getUint32(a + L.AFF_FRONT, true), bid = dv.getUint32(a + L.AFF_BACKEND, true);
      const fe = front ? ir.frontends.get(front) : undefined, be = ir.backends.get(bid);
      if (!fe || !be || ((now - dv.getUint32(a + L.AFF_LAST_SEEN, true)) >>> 0) > fe.affinityTimeoutMs) continue;
      affs.push(a);
      // the references as the Ir names them now (ids are stable while the object exists)
      if (!this.frontends.has(front)) {
        this.frontends.set(front, { id: front, addr: canonicalAddr(fe.addr), port: fe.port, proto: PROTO_NUMBER[fe.proto], ...(fe.kind === 'ClusterPolicy' ? { kind: fe.kind } : {}) });
      }
      if (!this.backends.has(bid)) this.backends.set(bid, { id: bid, addr: canonicalAddr(be.addr), port: be.port });
    }
    if (affs.length) this.affChunks.push(copyEntries(core, affs, L.AFF_SIZE, [L.AFF_LAST_SEEN], L.AFF_HASH, now));
    return this.nextFlow > map.ctFlowsMax && this.nextAff >= map.affSlots;
  }

  /** The records read so far (all of them once step() has said so). */
  result(): FlowRecords {
    const join = (chunks: Uint8Array[]) => {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) { out.set(c, at); at += c.length; }
      return out;
    };
    return {
      flows: join(this.flowChunks), affinity: join(this.affChunks),
      frontends: [...this.frontends.values()], backends: [...this.backends.values()],
      snatV4: this.core.snatAddress(4), snatV6: this.core.snatAddress(6),
      hairpinV4: this.core.hairpinAddress(4), hairpinV6: this.core.hairpinAddress(6), ports: this.ports,
    };
  }
}

/** Every live (not expired) flow and affinity entry of `core`, as records with ages, in one pass. */
export function exportFlows(core: Core, ports: PortRef[], now = core.clockNow()): FlowRecords {
  const x = new FlowExport(core, ports);
  x.step(Infinity, now);
  return x.result();
}

/** Copies the `size`-byte entries at addresses `at` into one array; the u32 times at offsets
 * `times` become ages at `now`, the u32 at `zero` (a hash the import recomputes) is cleared. */
function copyEntries(core: Core, at: number[], size: number, times: number[], zero: number, now: number): Uint8Array {
  const u8 = core.u8, dv = core.dv;
  const out = new Uint8Array(at.length * size);
  const ov = new DataView(out.buffer);
  at.forEach((e, i) => {
    const o = i * size;
    out.set(u8.subarray(e, e + size), o);
    for (const t of times) ov.setUint32(o + t, (now - dv.getUint32(e + t, true)) >>> 0, true);
    ov.setUint32(o + zero, 0, true);
  });
  return out;
}

/** Re-inserts `recs` into `core` (normally right after start, tables empty; entries already in
 * the core stay). `current` are the ports as configured now; `extraAgeMs` is added to every age
 * (the time the daemon was down). Bad records are counted, never thrown on; only records of the
 * wrong size throw (the caller checked the file's format before). */
export function importFlows(core: Core, recs: FlowRecords, current: PortRef[], extraAgeMs = 0, now = core.clockNow(), ids: FlowIdLookup = new IrIds(core)): ImportStats {
  if (recs.flows.length % L.CT_SIZE !== 0 || recs.affinity.length % L.AFF_SIZE !== 0) {
    throw new RangeError(`flow records must be whole entries (${L.CT_SIZE} / ${L.AFF_SIZE} bytes)`);
  }
  const stats: ImportStats = { flows: 0, affinity: 0, staleBackends: 0, dropped: {} };
  const drop = (why: string) => { stats.dropped[why] = (stats.dropped[why] ?? 0) + 1; };
  const portBy = new Map(current.map((p) => [p.name, p]));
  const portMap = new Map<number, { now: PortRef; savedMac: Uint8Array; nowMac: Uint8Array }>();
  for (const p of recs.ports) {
    const c = portBy.get(p.name);
    if (c) portMap.set(p.index, { now: c, savedMac: parseMacShared(p.mac), nowMac: parseMacShared(c.mac) });
  }
  const timeout = core.flowTimeouts();
  // per family: [masquerade, hairpin] address now and as saved
  const snatNow = { 4: [core.snatAddress(4), core.hairpinAddress(4)], 6: [core.snatAddress(6), core.hairpinAddress(6)] } as const;
  const snatSaved = { 4: [recs.snatV4, recs.hairpinV4 ?? null], 6: [recs.snatV6, recs.hairpinV6 ?? null] } as const;
  const age = (saved: number) => Math.min(saved + extraAgeMs, 0xffffffff);

  // Each entry is built in the core's staging area, where ct_restore and ct_recorded_front read
  // it: no copy per core call. The view holds for the whole loop: nothing in it grows the core's
  // memory (its core calls are ct_recorded_front, ct_restore and ct_active). Against a scratch
  // array staged by each call: 0.83x the CPU per flow restored (bench/profile-restore.mjs).
  const e = core.flowStage();
  const at = e.byteOffset;
  const ev = new DataView(e.buffer, at, L.CT_SIZE);
  // Flows the core may not evict first: when the new table is smaller, the ones the
  // core would evict anyway (EVICTABLE_CT_STATES: TCP_SYN, TCP_SYN_RECV, TCP_MIDSTREAM, TCP_CLOSING,
  // half-closed, UDP not a stream; SCTP never established or shutting down; docs/core.md "TCP states", "SCTP states") are the ones left out. The capacity check
  // keeps the core's eviction out of the restore: its clock has not started yet.
  const rv = new DataView(recs.flows.buffer, recs.flows.byteOffset, recs.flows.byteLength);
  const embryonic = (o: number) => evictableState(savedState(recs.flows, rv, o), recs.flows[o + L.CT_FLAGS]);
  const order: number[] = [];
  for (let o = 0; o < recs.flows.length; o += L.CT_SIZE) if (!embryonic(o)) order.push(o);
  for (let o = 0; o < recs.flows.length; o += L.CT_SIZE) if (embryonic(o)) order.push(o);
  // restored flows to an address no frontend holds now: steering keys them by their client (retired-fronts.ts)
  const orphans = new Map<string, { family: number; bytes: Uint8Array }>();
  for (const o of order) {
    if (core.exports.ct_active() >= core.map.ctFlowsMax) { drop('full'); continue; }
    e.set(recs.flows.subarray(o, o + L.CT_SIZE));
    e[L.CT_STATE] = savedState(recs.flows, rv, o);
    const st = e[L.CT_STATE], fam = e[L.CT_FAMILY], proto = e[L.CT_PROTO];
    if (!stateOfProto(st, proto) || (fam !== 4 && fam !== 6)) { drop('invalid'); continue; }
    const family = fam as Family;
    const idle = age(ev.getUint32(L.CT_LAST_SEEN, true));
    if (idle > (timeout[st] ?? 0)) { drop('expired'); continue; }
    const vport = ev.getUint16(L.CT_VPORT, true), bport = ev.getUint16(L.CT_BPORT, true);
    const cp = portMap.get(ev.getUint16(L.CT_CLIENT_PORT, true));
    if (!cp) { drop('portGone'); continue; }
    // the port index it has now: the frontend lookup may depend on it (a pod known by its port)
    ev.setUint16(L.CT_CLIENT_PORT, cp.now.index, true);
    const front = ids.flowFront(e, proto, family, vport);
    if (e[L.CT_FLAGS] & L.CTF_SNAT) {
      // the core hashes the reply key with the address it has now (ct-restore.ts): only a flow
      // saved with that same address can continue
      const which = e[L.CT_FLAGS] & L.CTF_HAIRPIN ? 1 : 0;
      if (!snatNow[family][which] || snatNow[family][which] !== snatSaved[family][which]) { drop('snatChanged'); continue; }
    }
    const bid = front === undefined ? 0 : ids.flowBackend(front, e, family, bport);
    // our MAC on the client side: the port's MAC as it was, unless the frame had been addressed
    // to another of our addresses (keep that one)
    if (sameBytes(e, L.CT_LOCAL_MAC, cp.savedMac)) e.set(cp.nowMac, L.CT_LOCAL_MAC);
    // reserved, never written by the core (a flow it creates has 0 there): whatever the file holds
    ev.setUint16(L.CT_OUT_PORT, 0, true);
    ev.setUint32(L.CT_LAST_SEEN, (now - idle) >>> 0, true);
    ev.setUint32(L.CT_CREATED, (now - age(ev.getUint32(L.CT_CREATED, true))) >>> 0, true);
    ev.setUint32(L.CT_FRONT, front ?? 0, true);
    ev.setUint32(L.CT_BACKEND_ID, bid, true);
    const flow = core.restoreFlowEntry(at, now);
    if (flow <= 0) { drop(flow < 0 ? 'clash' : 'full'); continue; }
    stats.flows++;
    if (front === undefined && core.retired) {
      const vip = e.slice(L.CT_VIP, L.CT_VIP + 16), key = `${family}${vip.join('.')}`;
      if (!orphans.has(key)) orphans.set(key, { family, bytes: vip });
    }
    if (bid === 0) stats.staleBackends++;
  }
  core.dv.setBigUint64(core.map.counters + L.GC_CT_ACTIVE * 8, BigInt(core.exports.ct_active()), true);
  if (orphans.size) core.retired!.restored(core, [...orphans.values()]);

  const frontRef = new Map(recs.frontends.map((f) => [f.id, f]));
  const backRef = new Map(recs.backends.map((b) => [b.id, b]));
  const a = new Uint8Array(L.AFF_SIZE);
  const av = new DataView(a.buffer);
  for (let o = 0; o < recs.affinity.length; o += L.AFF_SIZE) {
    a.set(recs.affinity.subarray(o, o + L.AFF_SIZE));
    const savedFront = av.getUint32(L.AFF_FRONT, true), savedBack = av.getUint32(L.AFF_BACKEND, true);
    const fe = ids.affinityFront(savedFront, frontRef.get(savedFront));
    if (!fe) { drop('affinityNoFrontend'); continue; }
    const idle = age(av.getUint32(L.AFF_LAST_SEEN, true));
    if (idle > fe.timeoutMs) { drop('affinityExpired'); continue; }
    const bid = ids.affinityBackend(fe.id, savedBack, backRef.get(savedBack));
    if (!bid) { drop('affinityStaleBackend'); continue; }
    writeAffinity(core, a.subarray(L.AFF_CLIENT, L.AFF_CLIENT + 16), fe.id, bid, (now - idle) >>> 0, now);
    stats.affinity++;
  }
  return stats;
}

/** Whether b[off..] starts with the bytes of `x` (a loop: no closure per flow restored). */
function sameBytes(b: Uint8Array, off: number, x: Uint8Array): boolean {
  for (let i = 0; i < x.length; i++) if (b[off + i] !== x[i]) return false;
  return true;
}

/** How a restore finds the ids that saved records name now. */
export interface FlowIdLookup {
  /** The frontend of a flow entry `e` (its VIP, port and protocol; CT_CLIENT_PORT already the
   * current port index), undefined when there is none. */
  flowFront(e: Uint8Array, proto: number, family: Family, vport: number): number | undefined;
  /** The backend of flow entry `e` under frontend `front` (its address and port); 0 when gone. */
  flowBackend(front: number, e: Uint8Array, family: Family, bport: number): number;
  /** The frontend an affinity record saved as `savedId` (described by `ref`) is now, with its
   * affinity timeout; undefined when there is none or it has no session affinity. */
  affinityFront(savedId: number, ref: FrontendRef | undefined): { id: number; timeoutMs: number } | undefined;
  /** The backend an affinity record saved as `savedId` names now under frontend `front`
   * (IrIds: only one in that frontend's set — a pin holds only while its backend is in it). */
  affinityBackend(front: number, savedId: number, ref: BackendRef | undefined): number | undefined;
}

/** Ids by what they name in the core's Ir (the restored state's compile: its ids are new).
 * Frontends by protocol, then (VIP, port) — a flow's then as the core records it
 * (Core.recordedFront: a pod's or the node's flow to an externalTrafficPolicy Local frontend is
 * its cluster front's), an affinity entry's by its saved FrontendRef (a ClusterPolicy one's:
 * the ClusterPolicy frontend of that key); backends by Service port, then (address, port).
 * Built on first use: at 10k Services x 10 endpoints a key string per backend was ~100 ms of
 * the worker, which a restore with no flow or affinity entry left to place (nothing saved, or
 * everything expired or invalid) never needs; and only the Service ports a restored entry names
 * get their (address, port) map. */
export class IrIds implements FlowIdLookup {
  private frontIndex: Map<number, Map<number | string, number>> | null = null;
  private policyIndex: Map<number, Map<number | string, number>> | null = null;
  private backendIndex: BackendIndex | null = null;
  private readonly frontBackends = new Map<number, Map<number | string, number>>();   // per frontend id: no string per flow
  private pinSets: Map<number, Set<number>> | null = null;   // per affinity key: its port's backend ids
  private readonly ir: Ir;
  constructor(private readonly core: Core) { this.ir = core.ir; }
  private frontBy(): Map<number, Map<number | string, number>> { return this.frontIndex ??= frontendIndex(this.ir); }
  private backendsOf(fe: IrFrontend): Map<number | string, number> { return (this.backendIndex ??= new BackendIndex(this.ir)).of(fe.service, fe.portName); }
  /** The frontend id of (protocol, address bytes at b[off], port): the service map's — with
   * `clusterPolicy` the ClusterPolicy frontend of that key while there is one (else the service
   * map's: with internalTrafficPolicy Cluster now the ClusterIP is the cluster front). */
  front(proto: number, b: Uint8Array, off: number, family: Family, port: number, clusterPolicy = false): number | undefined {
    const key = addrPortKey(b, off, family, port);
    const policy = clusterPolicy ? (this.policyIndex ??= frontendIndex(this.ir, true)).get(proto)?.get(key) : undefined;
    return policy ?? this.frontBy().get(proto)?.get(key);
  }
  /** The backend id of (address bytes at b[off], port) under frontend `front`; 0 when none. */
  backend(front: number, b: Uint8Array, off: number, family: Family, port: number): number {
    let group = this.frontBackends.get(front);
    if (!group) {
      const fe = this.ir.frontends.get(front);
      if (!fe) return 0;
      group = this.backendsOf(fe); this.frontBackends.set(front, group);
    }
    return group.get(addrPortKey(b, off, family, port)) ?? 0;
  }
  /** Whether backend `back` is in a set the frontends keyed by `front` select from now: what a
   * re-placed affinity entry keyed by `front` must name (a pin holds while some frontend of its
   * port lists its backend, affinity-pins.ts pinSetsOf). Built on first use. */
  inSet(front: number, back: number): boolean {
    return (this.pinSets ??= pinSetsOf(this.ir)).get(front)?.has(back) ?? false;
  }
  flowFront(e: Uint8Array, proto: number, family: Family, vport: number): number | undefined {
    const id = this.front(proto, e, L.CT_VIP, family, vport);
    return id === undefined ? undefined : this.core.recordedFront(e, id);
  }
  flowBackend(front: number, e: Uint8Array, family: Family, bport: number): number { return this.backend(front, e, L.CT_BACKEND, family, bport); }
  affinityFront(_savedId: number, ref: FrontendRef | undefined): { id: number; timeoutMs: number } | undefined {
    const a = ref && parseAddr(ref.addr);
    const id = a && this.front(ref.proto, a.bytes, 0, a.family, ref.port, ref.kind === 'ClusterPolicy');
    const fe = id !== undefined ? this.ir.frontends.get(id) : undefined;
    // under its port's key now (an entry saved keyed by a ClusterPolicy frontend, by a wdp that
    // did not share the pins of a Local policy's frontends, is the ClusterIP's now)
    return fe && (fe.flags & L.FEF_AFFINITY) ? { id: affinityKeyIn(this.ir, id!), timeoutMs: fe.affinityTimeoutMs } : undefined;
  }
  affinityBackend(front: number, _savedId: number, ref: BackendRef | undefined): number | undefined {
    const fe = this.ir.frontends.get(front);
    const id = ref && fe ? this.backendsOf(fe).get(keyOf(ref.addr, ref.port)) : undefined;
    return id !== undefined && this.inSet(front, id) ? id : undefined;
  }
}

/** Backend ids of a Service port by (address, port). One pass groups the backend ids by Service
 * (a lookup by the string each backend already holds: no string made per backend); a Service
 * port's map is built when a restored entry first asks for it, in the Ir's backend order (so a
 * duplicate (address, port) resolves to the same id as a map of every backend would). */
export class BackendIndex {
  private readonly byService = new Map<string, Array<IrBackend | number>>();
  private readonly byPort = new Map<string, Map<number | string, number>>();
  constructor(private readonly ir: Ir) {
    const add = (service: string, be: IrBackend | number) => {
      const list = this.byService.get(service);
      if (list) list.push(be); else this.byService.set(service, [be]);
    };
    // a worker's backends kept as received: ids by service, objects only for the services asked for
    const store = ir.backends instanceof BackendStore ? ir.backends : null;
    if (store) for (const id of store.idArray()) add(store.serviceOf(id), id);
    else for (const be of ir.backends.values()) add(be.service, be);
  }

  of(service: string, portName: string | undefined): Map<number | string, number> {
    const port = portName ?? '';
    const key = `${service}|${port}`;
    let m = this.byPort.get(key);
    if (!m) {
      m = new Map();
      for (const x of this.byService.get(service) ?? []) {
        const be = typeof x === 'number' ? this.ir.backends.get(x)! : x;
        if ((be.portName ?? '') === port) m.set(keyOf(be.addr, be.port), be.id);
      }
      this.byPort.set(key, m);
    }
    return m;
  }
}

/** Re-places every live affinity entry under the ids `map` gives its (frontend, backend) — the
 * slot hashes the frontend id, so entries move — and drops those it maps to nothing. The table
 * is emptied first; entries keep their client and last-seen time. */
export function rehomeAffinity(core: Core, map: (front: number, backend: number) => { front: number; back: number } | undefined): { kept: number; dropped: number } {
  const u8 = core.u8, dv = core.dv, m = core.map;
  const saved: Array<{ client: Uint8Array; front: number; back: number; lastSeen: number }> = [];
  let dropped = 0;
  for (let i = 0; i < m.affSlots; i++) {
    const s = m.aff + i * L.AFF_SIZE;
    const front = dv.getUint32(s + L.AFF_FRONT, true);
    if (front === 0) continue;
    const to = map(front, dv.getUint32(s + L.AFF_BACKEND, true));
    if (to) saved.push({ client: u8.slice(s + L.AFF_CLIENT, s + L.AFF_CLIENT + 16), ...to, lastSeen: dv.getUint32(s + L.AFF_LAST_SEEN, true) });
    else dropped++;
  }
  if (!saved.length && !dropped) return { kept: 0, dropped: 0 };
  u8.fill(0, m.aff, m.aff + m.affSlots * L.AFF_SIZE);
  const now = core.clockNow();
  for (const a of saved) writeAffinity(core, a.client, a.front, a.back, a.lastSeen, now);
  return { kept: saved.length, dropped };
}

/** Places an affinity entry as the core's own write does (docs/core.md, "Affinity table"): the
 * matching slot of its probe window, else the first empty one, else the least recently used. */
function writeAffinity(core: Core, client: Uint8Array, front: number, bid: number, lastSeen: number, now: number): void {
  const u8 = core.u8, dv = core.dv, map = core.map;
  const h = affinityHash(client, front);
  const mask = map.affSlots - 1;
  let target = -1, empty = -1, oldest = -1, oldestAge = -1;
  for (let k = 0; k < L.AFF_PROBE; k++) {
    const s = map.aff + ((h + k) & mask) * L.AFF_SIZE;
    const f = dv.getUint32(s + L.AFF_FRONT, true);
    if (f === 0) { empty = s; break; }
    if (f === front && dv.getUint32(s + L.AFF_HASH, true) === h && u8.subarray(s, s + 16).every((b, i) => b === client[i])) { target = s; break; }
    const ageMs = (now - dv.getUint32(s + L.AFF_LAST_SEEN, true)) >>> 0;
    if (ageMs > oldestAge) { oldestAge = ageMs; oldest = s; }
  }
  const s = target >= 0 ? target : empty >= 0 ? empty : oldest;
  u8.set(client, s + L.AFF_CLIENT);
  dv.setUint32(s + L.AFF_FRONT, front, true);
  dv.setUint32(s + L.AFF_BACKEND, bid, true);
  dv.setUint32(s + L.AFF_LAST_SEEN, lastSeen, true);
  dv.setUint32(s + L.AFF_HASH, h, true);
}
