// Trace records and the live trace filter. A trace record is the decision of one frame as the
// host reads it (TRACE_SIZE bytes): every frame's when CFG_TRACE has TRACE_ON (dry-run `wdp trace`,
// `wdp replay`), or, for a live trace (`wdp trace --live`), only the frames that match one of the
// host's compiled filters (layout.ts "Live trace filter"), each in a match record with its 5-tuple
// as it arrived. So the host touches only the frames it reports.
//
// Cost: no filter active (or none with budget left) — one load and branch per batch
// (traceFilterBegin) and one predictable branch per chunk of 64 frames in the pipeline. A filter
// active — one call per chunk, then per frame and filter a few compares
// of the frame record's fields (in port, reason, verdict, ids, ports; addresses as one masked
// 16-byte compare); a forwarded or rejected frame whose input tuple did not match re-reads its
// output 5-tuple from the headers it just rewrote (in cache), once for all filters.
import * as L from "./layout";
import { TraceRec } from "./records";
import { Frame, frameAt } from "./frame";
import { slotAt, gSlot } from "./regions";
import {
  ETH_TYPE, ETH_HLEN, VLAN_TYPE, VLAN_ETH_HLEN, ETH_P_IP, ETH_P_8021Q, ETH_P_IPV6, IP4_HLEN, IP4_VER_IHL,
  IP4_FRAG, IP4_OFFSET, IP4_PROTO, IP4_SRC, IP4_DST, IP6_HLEN, IP6_NEXT, IP6_SRC, IP6_DST,
  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, L4_SPORT, L4_DPORT,
} from "./net";
import { addrSet4 } from "./addr";

/** Copies the frame's decision into trace record `t`. */
export function writeTrace(t: TraceRec, fr: Frame): void {
  t.stages = fr.stages;
  t.verdict = fr.verdict;
  t.reason = fr.reason;
  t.outPort = fr.outPort;
  t.front = fr.front;
  t.backend = fr.backend;
  t.flow = fr.flow;
  t.ct = fr.ct;
  t.select = fr.select;
  t.proto = fr.proto;
  t.family = fr.family;
  t.l3 = fr.l3;
  t.l4 = fr.l4;
  t.hash = fr.hash;
}

// ---- records (checked against layout.ts below) ------------------------------------------------------
@unmanaged class TraceFilter {
  src: v128;            // value (pre-masked) then mask, for each address field
  srcMask: v128;
  dst: v128;
  dstMask: v128;
  host: v128;
  hostMask: v128;
  fields: u32;          // TFM_* bits
  budget: u32;          // matches left
  family: u8;
  proto: u8;
  proto2: u8;
  reason: u8;
  sport: u16;
  dport: u16;
  port: u16;
  inPort: u16;
  verdict: u8;
}

@unmanaged class TraceMatch {
  index: u16;
  filters: u8;
  proto: u8;
  sport: u16;
  dport: u16;
  family: u8;
}

/** A 5-tuple read from frame bytes (addresses 16 bytes, IPv4 zero-padded; family 0: not IP). */
@unmanaged class Tuple {
  src: v128;
  dst: v128;
  sport: u16;
  dport: u16;
  proto: u8;
  family: u8;
}

if (offsetof<TraceFilter>("src") != L.TFF_SRC || offsetof<TraceFilter>("srcMask") != L.TFF_SRC_MASK ||
    offsetof<TraceFilter>("dst") != L.TFF_DST || offsetof<TraceFilter>("dstMask") != L.TFF_DST_MASK ||
    offsetof<TraceFilter>("host") != L.TFF_HOST || offsetof<TraceFilter>("hostMask") != L.TFF_HOST_MASK ||
    offsetof<TraceFilter>("fields") != L.TFF_FIELDS || offsetof<TraceFilter>("budget") != L.TFF_BUDGET ||
    offsetof<TraceFilter>("family") != L.TFF_FAMILY || offsetof<TraceFilter>("proto") != L.TFF_PROTO ||
    offsetof<TraceFilter>("proto2") != L.TFF_PROTO2 || offsetof<TraceFilter>("reason") != L.TFF_REASON ||
    offsetof<TraceFilter>("sport") != L.TFF_SPORT || offsetof<TraceFilter>("dport") != L.TFF_DPORT ||
    offsetof<TraceFilter>("port") != L.TFF_PORT || offsetof<TraceFilter>("inPort") != L.TFF_IN_PORT ||
    offsetof<TraceFilter>("verdict") != L.TFF_VERDICT || <i32>offsetof<TraceFilter>() > L.TFF_FRONTS ||
    L.TFF_BACKENDS != L.TFF_FRONTS + L.TFF_IDS * 4 || L.TFF_BACKENDS + L.TFF_IDS * 4 > L.TFF_SIZE ||
    L.TF_FILTERS < L.TF_MISSED + 4) ERROR("TraceFilter disagrees with layout.ts");
if (offsetof<TraceMatch>("index") != L.TM_INDEX || offsetof<TraceMatch>("filters") != L.TM_FILTERS ||
    offsetof<TraceMatch>("proto") != L.TM_PROTO || offsetof<TraceMatch>("sport") != L.TM_SPORT ||
    offsetof<TraceMatch>("dport") != L.TM_DPORT || offsetof<TraceMatch>("family") != L.TM_FAMILY ||
    <i32>offsetof<TraceMatch>() > L.TM_TRACE || L.TM_TRACE + L.TRACE_SIZE > L.TM_SRC ||
    L.TM_DST != L.TM_SRC + 16 || L.TM_DST + 16 > L.TM_SIZE) ERROR("TraceMatch disagrees with layout.ts");

const TF: usize = memory.data(L.TF_BLOCK_SIZE, 64);
const IN_TUPLE: usize = memory.data(offsetof<Tuple>(), 16);   // input of a frame decided while parsing
const OUT_TUPLE: usize = memory.data(offsetof<Tuple>(), 16);  // a frame as it leaves

let gMatches: u32 = 0;
let gCount: u32 = 0;                                 // filters this batch tests
const SLOTS: usize = memory.data(L.TF_SLOTS);        // their slots

/** Address of the TF_BLOCK_SIZE-byte live trace filter block. */
export function traceFilterPtr(): usize { return TF; }

@inline function filterAt(s: u32): TraceFilter { return changetype<TraceFilter>(TF + L.TF_FILTERS + <usize>s * L.TFF_SIZE); }

/** Start of a live batch: whether any active filter has budget left (then the batch's match list
 * restarts and the filters to test are listed once, so a resting filter costs nothing per frame). */
export function traceFilterBegin(): bool {
  const active = load<u32>(TF + L.TF_ACTIVE);
  if (active == 0) return false;
  store<u32>(TF + L.TF_MATCHES, 0);
  store<u32>(TF + L.TF_MISSED, 0);
  gMatches = 0;
  gCount = 0;
  for (let s: u32 = 0; s < <u32>L.TF_SLOTS; s++) {
    if ((active & (1 << s)) != 0 && filterAt(s).budget != 0) { store<u8>(SLOTS + gCount, <u8>s); gCount++; }
  }
  return gCount != 0;
}

/** Reads Ethernet (+ one VLAN tag) / IPv4 or IPv6 / TCP, UDP or SCTP ports from `len` bytes at `f`
 * (IPv6 extension headers and later IPv4 fragments: no ports), as the host's readTuple does. */
function readTuple(f: usize, len: u32, t: Tuple): void {
  t.family = 0; t.proto = 0; t.sport = 0; t.dport = 0;
  if (len < ETH_HLEN) return;
  let et = <u32>bswap<u16>(load<u16>(f + ETH_TYPE));
  let l3 = ETH_HLEN;
  if (et == ETH_P_8021Q) {
    if (len < VLAN_ETH_HLEN) return;
    et = <u32>bswap<u16>(load<u16>(f + VLAN_TYPE));
    l3 = VLAN_ETH_HLEN;
  }
  const ip = f + <usize>l3;
  const tp = changetype<usize>(t);
  let l4: u32 = 0;
  let proto: u32;
  if (et == ETH_P_IP && l3 + IP4_HLEN <= len) {
    t.family = 4;
    proto = <u32>load<u8>(ip + IP4_PROTO);
    addrSet4(tp + offsetof<Tuple>("src"), load<u32>(ip + IP4_SRC));
    addrSet4(tp + offsetof<Tuple>("dst"), load<u32>(ip + IP4_DST));
    if ((<u32>bswap<u16>(load<u16>(ip + IP4_FRAG)) & IP4_OFFSET) == 0) l4 = l3 + ((<u32>load<u8>(ip + IP4_VER_IHL) & 15) << 2);
  } else if (et == ETH_P_IPV6 && l3 + IP6_HLEN <= len) {
    t.family = 6;
    proto = <u32>load<u8>(ip + IP6_NEXT);
    t.src = v128.load(ip + IP6_SRC);
    t.dst = v128.load(ip + IP6_DST);
    l4 = l3 + IP6_HLEN;
  } else return;
  t.proto = <u8>proto;
  if (l4 != 0 && l4 + 4 <= len && (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP)) {
    t.sport = bswap<u16>(load<u16>(f + <usize>l4 + L4_SPORT));
    t.dport = bswap<u16>(load<u16>(f + <usize>l4 + L4_DPORT));
  }
}

/** (addr & mask) == value for the 16 bytes at `a`, value/mask at `v`/`v + 16`. */
@inline function masked(a: usize, v: usize): bool {
  return !v128.any_true(v128.xor(v128.and(v128.load(a), v128.load(v, 16)), v128.load(v)));
}

function tupleMatches(tf: TraceFilter, fields: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32, family: u32): bool {
  if (fields & (L.TFM_SRC | L.TFM_DST | L.TFM_HOST)) {
    if (family != <u32>tf.family) return false;
    const p = changetype<usize>(tf);
    if ((fields & L.TFM_SRC) && !masked(src, p + L.TFF_SRC)) return false;
    if ((fields & L.TFM_DST) && !masked(dst, p + L.TFF_DST)) return false;
    if ((fields & L.TFM_HOST) && !masked(src, p + L.TFF_HOST) && !masked(dst, p + L.TFF_HOST)) return false;
  }
  if ((fields & L.TFM_SPORT) && sport != <u32>tf.sport) return false;
  if ((fields & L.TFM_DPORT) && dport != <u32>tf.dport) return false;
  if ((fields & L.TFM_PORT) && sport != <u32>tf.port && dport != <u32>tf.port) return false;
  if ((fields & L.TFM_PROTO) && proto != <u32>tf.proto && proto != <u32>tf.proto2) return false;
  return true;
}

/** Whether id (non-zero) is in the 0-terminated list of TFF_IDS words at `p`. */
function idIn(p: usize, id: u32): bool {
  if (id == 0) return false;
  for (let k: usize = 0; k < <usize>L.TFF_IDS; k++) {
    const w = load<u32>(p + (k << 2));
    if (w == id) return true;
    if (w == 0) return false;
  }
  return false;
}

/** After the frames `base .. base + m - 1` of a chunk are decided (their records still hold the
 * decisions): tests each against the batch's filters. One call per chunk, not per frame. */
export function traceFilterChunk(base: u32, m: u32): void {
  for (let k: u32 = 0; k < m; k++) filterFrame(base + k, frameAt(k), slotAt(base + k));
}

/** Frame `i` (bytes at `f`, record `fr`): recorded when any filter with budget left matches. */
@inline function filterFrame(i: u32, fr: Frame, f: usize): void {
  let src = fr.srcAddr, dst = fr.dstAddr;
  let sport = <u32>fr.sport, dport = <u32>fr.dport, proto = <u32>fr.proto, family = <u32>fr.family;
  if ((fr.stages & L.TS_PARSED) == 0) {
    // decided while parsing: the record holds only what parsing reached; read the frame instead
    const t = changetype<Tuple>(IN_TUPLE);
    readTuple(f, min(<u32>fr.len, gSlot), t);   // an oversize frame's length is not its slot's
    src = IN_TUPLE + offsetof<Tuple>("src"); dst = IN_TUPLE + offsetof<Tuple>("dst");
    sport = <u32>t.sport; dport = <u32>t.dport; proto = <u32>t.proto; family = <u32>t.family;
  }
  const out = changetype<Tuple>(OUT_TUPLE);
  let outRead = false;
  let hit: u32 = 0;
  for (let j: u32 = 0; j < gCount; j++) {
    const s = <u32>load<u8>(SLOTS + j);
    const tf = filterAt(s);
    if (tf.budget == 0) continue;
    const fields = tf.fields;
    if ((fields & L.TFM_IN_PORT) && fr.inPort != tf.inPort) continue;
    if ((fields & L.TFM_REASON) && fr.reason != tf.reason) continue;
    if ((fields & L.TFM_VERDICT) && fr.verdict != tf.verdict) continue;
    if ((fields & L.TFM_FRONT) && !idIn(changetype<usize>(tf) + L.TFF_FRONTS, fr.front)) continue;
    if ((fields & L.TFM_BACKEND) && !idIn(changetype<usize>(tf) + L.TFF_BACKENDS, fr.backend)) continue;
    if ((fields & L.TFM_TUPLE) && !tupleMatches(tf, fields, src, dst, sport, dport, proto, family)) {
      // the frame as it leaves (translated): only forwarded and rejected frames leave
      const v = <u32>fr.verdict;
      if (v != L.V_FORWARD && v != L.V_REJECT) continue;
      if (!outRead) { readTuple(f, min(<u32>fr.lenOut, gSlot), out); outRead = true; }
      if (!tupleMatches(tf, fields, OUT_TUPLE, OUT_TUPLE + offsetof<Tuple>("dst"), <u32>out.sport, <u32>out.dport, <u32>out.proto, <u32>out.family)) continue;
    }
    tf.budget -= 1;
    hit |= 1 << s;
  }
  if (hit == 0) return;
  if (gMatches >= <u32>L.TM_MAX) {
    store<u32>(TF + L.TF_MISSED, load<u32>(TF + L.TF_MISSED) + 1);
    return;
  }
  const mp = TF + L.TF_MATCH_OFF + <usize>gMatches * L.TM_SIZE;
  const m = changetype<TraceMatch>(mp);
  m.index = <u16>i;
  m.filters = <u8>hit;
  m.proto = <u8>proto;
  m.sport = <u16>sport;
  m.dport = <u16>dport;
  m.family = <u8>family;
  v128.store(mp + L.TM_SRC, v128.load(src));
  v128.store(mp + L.TM_DST, v128.load(dst));
  writeTrace(changetype<TraceRec>(mp + L.TM_TRACE), fr);
  gMatches++;
  store<u32>(TF + L.TF_MATCHES, gMatches);
}
