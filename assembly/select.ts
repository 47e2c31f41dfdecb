// Selection: the service map (VIP:port -> frontend), source ranges, Maglev, sessionAffinity,
// backend usability, plain routes. Everything here except the affinity write is a pure function of
// the packet and the batch's table set, so the prefetch pass calls the same functions the decision
// does. Semantics: docs/core.md "New flow", "Affinity table", "No-service path".
import * as L from "./layout";
import { SvcSlot, Frontend, Route, Cidr, AffEntry } from "./records";
import { affHash, svcKeyHash, hashStart, hashMix, hashFinish } from "./hash";
import { addrEq, addrCopy, prefixMatch } from "./addr";
import {
  tSm, tSmMask, tFeMax, tBeMax, tMg, tMgWords, tCidr, tCidrMax, tRt, tRtCount, tLocalCount, gAffMask, gNow, gLive,
  affAt, backendAt, frontendAt, count,
} from "./regions";
import { Frame } from "./frame";

const AFF_PROBE: u32 = <u32>L.AFF_PROBE;

// ---- service map ----------------------------------------------------------------------------------
@inline export function svcSlotAt(h: u32): SvcSlot { return changetype<SvcSlot>(tSm + (<usize>(h & tSmMask) << 5)); }

/** Frontend id for (addr, port, proto, family) given its service-map hash h, 0 = none. The map
 * must exist (tSm != 0). */
export function svcLookupH(h: u32, addr: usize, port: u32, proto: u32, family: u32): u32 {
  const mask = tSmMask;
  let slot = h & mask;
  const key = port | (proto << 16) | (family << 24);
  for (let n: u32 = 0; n <= mask; n++) {
    const s = changetype<SvcSlot>(tSm + (<usize>slot << 5));
    const front = s.front;
    if (front == 0) return 0;
    if (s.hash == h && s.key == key && addrEq(s.addrPtr, addr)) return front <= tFeMax ? front : 0;
    slot = (slot + 1) & mask;
  }
  return 0;
}

/** Frontend id for (addr, port, proto, family), 0 = none. */
export function svcLookup(addr: usize, port: u32, proto: u32, family: u32): u32 {
  if (tSm == 0) return 0;
  return svcLookupH(svcKeyHash(addr, port, proto, family), addr, port, proto, family);
}

// ---- source ranges, routes --------------------------------------------------------------------------
/** loadBalancerSourceRanges: whether the client matches one of the frontend's CIDRs. */
export function sourceAllowed(fe: Frontend, client: usize, family: u32): bool {
  const off = fe.cidrOff;
  const n = fe.cidrCount;
  for (let i: u32 = 0; i < n; i++) {
    const idx = off + i;
    if (idx >= tCidrMax) return false;  // TSH_CIDR_MAX is the entry capacity
    const c = changetype<Cidr>(tCidr + <usize>idx * L.CIDR_SIZE);
    if (<u32>c.family == family && prefixMatch(client, c.addrPtr, <u32>c.plen)) return true;
  }
  return false;
}

/** The route for dst (longest prefix first, linear scan), or null. */
export function routeLookup(dst: usize, family: u32): Route | null {
  for (let i: u32 = 0; i < tRtCount; i++) {
    const r = changetype<Route>(tRt + <usize>i * L.RT_SIZE);
    if (<u32>r.family == family && prefixMatch(dst, r.addrPtr, <u32>r.plen)) return r;
  }
  return null;
}

/** Local-source entry i (< tLocalCount): written after the tRtCount routes, in the route layout. */
@inline function localEntryAt(i: u32): Route { return changetype<Route>(tRt + <usize>(tRtCount + i) * L.RT_SIZE); }

/** kube-proxy's local-traffic detector: the kind of the first local-source entry (pod entries
 * before RTK_LOCAL_NODE, as the host writes them) whose prefix holds the source — or, for
 * RTK_LOCAL_POD_PORT, whose port the frame arrived on (reported as RTK_LOCAL_POD) — 0 = none (a
 * source from outside the cluster). Linear scan over a handful of entries, only for new flows to
 * an externalTrafficPolicy Local frontend or a ClusterIP with FEF_MASQUERADE_OUTSIDE. */
export function localSource(src: usize, family: u32, inPort: u32): u32 {
  for (let i: u32 = 0; i < tLocalCount; i++) {
    const r = localEntryAt(i);
    const kind = <u32>r.kind;
    if (kind == L.RTK_LOCAL_POD_PORT) { if (<u32>r.outPort == inPort) return L.RTK_LOCAL_POD; continue; }
    if (<u32>r.family == family && prefixMatch(src, r.addrPtr, <u32>r.plen)) return kind;
  }
  return 0;
}

/** Whether frontend fe short-circuits in-cluster sources to its cluster front (FE_CLUSTER_FRONT,
 * a valid id): an externalTrafficPolicy Local frontend — kube-proxy's "short-circuit pod traffic"
 * sends pods, and the node itself, to the cluster policy chain. Not with FEF_AFFINITY_SHARED,
 * where the cluster front only keys the affinity entries. */
@inline export function shortCircuits(fe: Frontend): bool {
  const cf = fe.clusterFront;
  return cf != 0 && cf <= tFeMax && (fe.flags & L.FEF_AFFINITY_SHARED) == 0;
}

/** For a frontend that shortCircuits: the local-source kind (localSource) of a client it sends
 * to its cluster front — RTK_LOCAL_POD (a pod), RTK_LOCAL_NODE (the node itself, unless
 * FEF_NODE_SOURCE_DROP: the nftables proxier drops it before DNAT) — else 0 (the client keeps the
 * frontend's own endpoints). pipeline.ts newFlow decides a new flow by it, and a restore derives
 * the frontend a saved flow was recorded under by it (ct-restore.ts ctRecordedFront). */
@inline export function shortCircuitKind(fe: Frontend, client: usize, family: u32, inPort: u32): u32 {
  const kind = localSource(client, family, inPort);
  return kind == L.RTK_LOCAL_POD || (kind == L.RTK_LOCAL_NODE && (fe.flags & L.FEF_NODE_SOURCE_DROP) == 0) ? kind : 0;
}

/** Whether addr is one of the node's own addresses: an RTK_LOCAL_NODE entry of the detector (the
 * node addresses and masquerade addresses, written after the pod entries) holds it. Linear scan
 * over a handful of entries, only for new flows in a family with a SNAT address. */
export function nodeAddress(addr: usize, family: u32): bool {
  for (let i: u32 = 0; i < tLocalCount; i++) {
    const r = localEntryAt(i);
    if (<u32>r.kind == L.RTK_LOCAL_NODE && <u32>r.family == family && prefixMatch(addr, r.addrPtr, <u32>r.plen)) return true;
  }
  return false;
}

/** Which of two addresses are the node's own (nodeAddress of each, in one scan): bit 0 `a`, bit 1
 * `b`. Linear scan over a handful of entries. */
export function nodeAddresses(a: usize, b: usize, family: u32): u32 {
  let r: u32 = 0;
  for (let i: u32 = 0; i < tLocalCount; i++) {
    const e = localEntryAt(i);
    if (<u32>e.kind != L.RTK_LOCAL_NODE || <u32>e.family != family) continue;
    const p = e.addrPtr, plen = <u32>e.plen;
    if (prefixMatch(a, p, plen)) r |= 1;
    if (prefixMatch(b, p, plen)) r |= 2;
    if (r == 3) break;
  }
  return r;
}

// ---- Maglev, backends ---------------------------------------------------------------------------------
/** log2 of the bytes of a Maglev slot of a frontend with n backends (layout.ts, "Maglev range"). */
@inline function slotShift(n: u32): u32 {
  return n <= <u32>L.MAGLEV_SLOT_U8_MAX ? 0 : n <= <u32>L.MAGLEV_SLOT_U16_MAX ? 1 : 2;
}

/** Words the frontend's Maglev slots take, n backends (where its backend list starts). */
@inline function slotWords(fe: Frontend, shift: u32): u64 {
  return (<u64>fe.maglevSize << shift) + 3 >> 2;
}

/** Address of the frontend's Maglev slot for hash h, 0 when its range (the slots, then the
 * backend list) lies outside the words or it has no backends or slots. */
@inline export function maglevSlot(fe: Frontend, h: u32): usize {
  const m = fe.maglevSize;
  const n = fe.nBackends;
  const off = fe.maglevOff;
  const shift = slotShift(n);
  if (n == 0 || m == 0 || <u64>off + slotWords(fe, shift) + n > <u64>tMgWords) return 0;
  return tMg + (<usize>off << 2) + (<usize>(h % m) << shift);
}

/** Address of the first word of the frontend's backend list (what a slot's index is into). */
@inline export function maglevList(fe: Frontend): usize {
  return tMg + (<usize>(<u64>fe.maglevOff + slotWords(fe, slotShift(fe.nBackends))) << 2);
}

/** Backend id the frontend's Maglev slot at address w (maglevSlot) names, 0 when w is 0 or the
 * slot's index is past the backend list. */
@inline export function maglevSlotBackend(fe: Frontend, w: usize): u32 {
  if (w == 0) return 0;
  const n = fe.nBackends;
  const shift = slotShift(n);
  const i = shift == 0 ? <u32>load<u8>(w) : shift == 1 ? <u32>load<u16>(w) : load<u32>(w);
  return i < n ? load<u32>(maglevList(fe) + (<usize>i << 2)) : 0;
}

/** Backend id from the frontend's Maglev table, 0 when out of bounds. */
@inline export function maglevPick(fe: Frontend, h: u32): u32 {
  return maglevSlotBackend(fe, maglevSlot(fe, h));
}

@inline export function backendUsable(id: u32): bool {
  return id != 0 && id <= tBeMax && backendAt(id).state != L.BES_ABSENT;
}

/** The Maglev hash of an affinity miss: the flow hash mixed with the batch clock, so a client
 * whose entry expired gets a pick as fresh as a new client's (kube-proxy picks at random then),
 * not the one (client, frontend) always hashed to; reproducible from (flow, now) for the
 * reference model. */
@inline export function freshPickHash(flowHash: u32, now: u32): u32 {
  return hashFinish(hashMix(hashMix(hashStart(), flowHash), now));
}

/** The frontend id sessionAffinity entries of frontend fe (id `front`, the one that selects:
 * after a short-circuit, the cluster front) are keyed by: one per Service port and family, its
 * ClusterIP frontend, as kube-proxy keeps one affinity set per endpoint that every chain of the
 * port consults. The compiler names it in FE_CLUSTER_FRONT — directly (FEF_AFFINITY_SHARED, or an
 * externalTrafficPolicy Local frontend whose cluster front is the ClusterIP), or through a
 * ClusterPolicy frontend that names it with FEF_AFFINITY_SHARED (both traffic policies Local):
 * at most two frontend entries read, new flows of affinity frontends only. */
export function affinityKey(fe: Frontend, front: u32): u32 {
  let k = fe.clusterFront;
  if (k == 0 || k > tFeMax) return front;
  const kf = frontendAt(k);
  const k2 = kf.clusterFront;
  if ((kf.flags & L.FEF_AFFINITY_SHARED) != 0 && k2 != 0 && k2 <= tFeMax) k = k2;
  return k;
}

/** Whether backend `bid` is in frontend fe's backend list (its active set): a scan of its N ids,
 * only for a pin found on a frontend with FEF_AFFINITY_IN_SET (a local set: this node's
 * endpoints; or a topology-filtered one). False when the list lies outside the Maglev words. */
function inBackendList(fe: Frontend, bid: u32): bool {
  const n = fe.nBackends;
  if (n == 0 || fe.maglevSize == 0 || <u64>fe.maglevOff + slotWords(fe, slotShift(n)) + n > <u64>tMgWords) return false;
  const list = maglevList(fe);
  for (let i: u32 = 0; i < n; i++) if (load<u32>(list + (<usize>i << 2)) == bid) return true;
  return false;
}

/** Affinity lookup/refresh for a new flow of frontend fe, its entries keyed by `front`
 * (affinityKey); returns the backend id (0 = fail closed). An affinity hit sets the frame's
 * selection to TRSEL_AFFINITY. */
export function selectAffinity(fr: Frame, fe: Frontend, front: u32, client: usize, flowHash: u32): u32 {
  const h = affHash(client, front);
  const mask = gAffMask;
  const home = h & mask;
  let free: usize = 0;
  let oldest: usize = 0;
  let oldestAge: u32 = 0;
  let window = AFF_PROBE;
  if (window > mask + 1) window = mask + 1;
  for (let k: u32 = 0; k < window; k++) {
    const a = affAt((home + k) & mask);
    const af = a.front;
    if (af == 0) { free = changetype<usize>(a); break; }
    if (af == front && a.hash == h && addrEq(a.clientAddr, client)) {
      const bid = a.backend;
      if (gNow - a.lastSeen <= fe.affTimeout && bid != 0 && bid <= tBeMax) {
        // a pin holds while its backend is in this frontend's set: ready, or serving-terminating
        // when the set is the fallback (kube-proxy consults the affinity of its chain's endpoints
        // only, so a client pinned to a pod that starts terminating moves to a ready one). The
        // entry is the port's (affinityKey): on a frontend whose set is narrower than the port's
        // (FEF_AFFINITY_IN_SET: a Local policy's, topology hints) the backend must be in its list
        // too — an externalTrafficPolicy Local frontend never follows a pin to a remote endpoint.
        // A backend that left every set of the port is voided by the host when it applies the
        // sets (src/core/affinity-pins.ts); a frontend without the flag selects from every
        // ready (or, fallback, serving-terminating) backend the port's frontends pin to.
        const st = backendAt(bid).state;
        if ((st == L.BES_READY || (st == L.BES_TERMINATING_SERVING && (fe.flags & L.FEF_FALLBACK) != 0)) &&
            ((fe.flags & L.FEF_AFFINITY_IN_SET) == 0 || inBackendList(fe, bid))) {
          if (gLive) { a.lastSeen = gNow; count(L.GC_AFF_HIT, 1); }
          fr.select = <u8>L.TRSEL_AFFINITY;
          return bid;
        }
      }
      // stale, or outside this frontend's set: the fresh pick below overwrites it in place (as
      // kube-proxy's `update @affinity-<endpoint>` adds the client to the chosen endpoint's set;
      // the one entry keeps the latest, see docs/core.md "sessionAffinity per service port")
      free = changetype<usize>(a);
      break;
    }
    const age = gNow - a.lastSeen;
    if (oldest == 0 || age > oldestAge) { oldest = changetype<usize>(a); oldestAge = age; }
  }
  const bid = maglevPick(fe, freshPickHash(flowHash, gNow));
  if (!backendUsable(bid)) return 0;
  const slot = free != 0 ? free : oldest;
  if (gLive && slot != 0) {
    const a = changetype<AffEntry>(slot);
    addrCopy(a.clientAddr, client);
    a.front = front;
    a.backend = bid;
    a.lastSeen = gNow;
    a.hash = h;
    count(L.GC_AFF_NEW, 1);
  }
  return bid;
}
