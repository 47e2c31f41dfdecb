// The forwarding core: parse, conntrack, service lookup, backend selection, NAT rewrite, reject,
// ICMP error translation, expiry and eviction. Semantics: docs/core.md (the reference model in
// src/reference/ implements the same rules; keep both in step).
//
// Memory discipline: no managed allocation anywhere. All state lives in the regions the host
// placed (addresses in the CONFIG block) or in a few static buffers below. Every frame byte read is
// preceded by a length check against the descriptor length / IP packet end.
import * as L from "./layout";
import {
  flowHash, flowHash4, affHash, svcHash, svcHash4, d32, d16, csumApply, sumBytes, csumFinal, crcInit, crc32c,
} from "./util";

// ---- static data ------------------------------------------------------------------------------
export const CFG: usize = memory.data(L.CFG_SIZE, 64);
// Per-frame parse records for one chunk of the batch (pass 1 writes, pass 2 reads). Chunking keeps
// the static footprint independent of CFG_BATCH_MAX.
const CHUNK: u32 = 64;
const PR_SIZE: u32 = 128;
const PREC: usize = memory.data(<i32>(CHUNK * PR_SIZE), 64);
// Reject / ICMP construction buffer: output can be longer than the input frame (ICMP quotes it),
// so it is built here and copied into the slot, never longer than CFG_SLOT_SIZE.
const SCRATCH: usize = memory.data(2048, 64);
// Inner-address temporaries for ICMP error translation (16 bytes each, v4 zero-padded).
const TMP_A: usize = memory.data(32, 16);
const TMP_B: usize = memory.data(32, 16);
// Timeouts by CTS_* state (u32 ms), refreshed from CONFIG each batch.
const TO_TABLE: usize = memory.data(32, 16);

// parse record fields
const PR_SRC: usize = 0;      // 16 bytes, v4 zero-padded
const PR_DST: usize = 16;
const PR_HASH: usize = 32;    // u32 flow hash
const PR_L3: usize = 36;      // u16
const PR_L4: usize = 38;      // u16
const PR_END: usize = 40;     // u16 end of the IP packet (frame offset)
const PR_SPORT: usize = 42;   // u16 host order
const PR_DPORT: usize = 44;   // u16 host order
const PR_PROTO: usize = 46;   // u8
const PR_FAMILY: usize = 47;  // u8 (0: not IP)
const PR_REASON: usize = 48;  // u8: non-zero = decided in parse
const PR_VERDICT: usize = 49; // u8
const PR_TCPF: usize = 50;    // u8 TCP flags
const PR_TTL: usize = 51;     // u8 TTL / hop limit as received
const PR_ICMPT: usize = 52;   // u8 ICMP type
const PR_FRAG: usize = 53;    // u8 1: first fragment of a fragmented packet
const PR_LEN: usize = 54;     // u16 frame length
const PR_PORTS: usize = 56;   // u8 1: TCP/UDP/SCTP (has ports, conntrack applies)
// Speculative new-flow work done by the touch passes (see coreProcess). Every cached value is a
// pure function of the frame and the batch's table set, so pass 2 may use it instead of
// recomputing; PR_SPEC says which ones are valid for this frame.
const PR_SPEC: usize = 57;    // u8 SPEC_* bits
const PR_SVCH: usize = 60;    // u32 service-map hash of (dst, dport, proto, family)
const PR_FRONTID: usize = 64; // u32 svcLookup result (0 = no frontend)
const PR_BID: usize = 68;     // u32 Maglev pick of PR_FRONTID with the flow hash (may be 0)
const PR_RHASH: usize = 72;   // u32 reply-key hash without SNAT: (backend, client, bport, sport)
const PR_TA: usize = 76;      // u32 x 3: addresses the next touch() loads (0 = none)
const PR_TB: usize = 80;
const PR_TC: usize = 84;
const SPEC_SVCH: u32 = 1;
const SPEC_FRONT: u32 = 2;
const SPEC_BID: u32 = 4;
const SPEC_RHASH: u32 = 8;

const TCP_FIN: u32 = 1;
const TCP_SYN: u32 = 2;
const TCP_RST: u32 = 4;
const TCP_ACK: u32 = 16;

const AFF_PROBE: u32 = <u32>L.AFF_PROBE;
const SNAT_TRIES: u32 = <u32>L.SNAT_PROBE_MAX;

// ---- region globals (CONFIG, re-read every batch: cheap, and the host may change tunables) ----
let gDesc: usize = 0;
let gArena: usize = 0;
let gSlot: u32 = 0;
let gBatchMax: u32 = 0;
let gTrace: usize = 0;
let gCounters: usize = 0;
let gSvcCnt: usize = 0;
let gSvcMax: u32 = 0;
let gBeCnt: usize = 0;
let gBeCntMax: u32 = 0;
let gCtIdx: usize = 0;
let gCtMask: u32 = 0;
let gCtFlows: usize = 0;
let gCtMax: u32 = 0;
let gAff: usize = 0;
let gAffMask: u32 = 0;
let gHasSnat: u32 = 0;
let gPortMin: u32 = 0;
let gPortMax: u32 = 0;
let gTraceFlags: u32 = 0;
let gLive: bool = true;       // false in TRACE_DRY_RUN: no state, no counters
let gTraceOn: bool = false;
let gNow: u32 = 0;

// active table set
let tSm: usize = 0;
let tSmMask: u32 = 0;
let tFe: usize = 0;
let tFeMax: u32 = 0;
let tBe: usize = 0;
let tBeMax: u32 = 0;
let tMg: usize = 0;
let tMgWords: u32 = 0;
let tCidr: usize = 0;
let tCidrMax: u32 = 0;
let tRt: usize = 0;
let tRtCount: u32 = 0;

// conntrack bookkeeping (core-internal; reset by init/ct_flush)
let gFreeHead: u32 = 0;
let gActive: u32 = 0;
let gExpireCursor: u32 = 1;
let gEvictCursor: u32 = 1;
export let gInitialized: bool = false;
let gSink: u32 = 0;

// per-frame result and trace state
let fVerdict: u32 = 0;
let fReason: u32 = 0;
let fOut: u32 = 0;
let fStages: u32 = 0;
let fFront: u32 = 0;
let fBackend: u32 = 0;
let fFlow: u32 = 0;
let fCt: u32 = 0;
let fSel: u32 = 0;
let fLenOut: u32 = 0;         // output frame length (reject changes it)
let fInPort: u32 = 0;

// ---- small helpers -----------------------------------------------------------------------------
@inline function rec(i: u32): usize { return PREC + <usize>(i * PR_SIZE); }
@inline export function flowPtr(flow: u32): usize { return gCtFlows + <usize>flow * L.CT_SIZE; }
@inline function bePtr(id: u32): usize { return tBe + <usize>id * L.BE_SIZE; }
@inline function fePtr(id: u32): usize { return tFe + <usize>id * L.FE_SIZE; }
@inline function snatAddr(family: u32): usize { return CFG + (family == 4 ? L.CFG_SNAT_V4 : L.CFG_SNAT_V6); }
@inline function hasSnat(family: u32): bool { return (gHasSnat & (family == 4 ? 1 : 2)) != 0; }

@inline function addrEq(a: usize, b: usize): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
}
@inline function addrCopy(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src)); store<u64>(dst, load<u64>(src, 8), 8);
}
@inline function macCopy(dst: usize, src: usize): void {
  store<u32>(dst, load<u32>(src)); store<u16>(dst, load<u16>(src, 4), 4);
}

@inline function count(i: i32, v: u64): void {
  const p = gCounters + (<usize>i << 3);
  store<u64>(p, load<u64>(p) + v);
}

@inline function timeoutOf(state: u32): u32 { return load<u32>(TO_TABLE + (<usize>(state & 7) << 2)); }

@inline function flowExpired(e: usize): bool {
  return gNow - load<u32>(e, L.CT_LAST_SEEN) > timeoutOf(<u32>load<u8>(e, L.CT_STATE));
}

@inline function setResult(v: u32, reason: u32, out: u32): void { fVerdict = v; fReason = reason; fOut = out; }
@inline function drop(reason: u32): void { setResult(L.V_DROP, reason, L.PORT_NONE); }

/** Prefix match of 16-byte addresses a and b on the first plen bits (network bit order). */
function prefixMatch(a: usize, b: usize, plen: u32): bool {
  let bits = <i32>plen;
  for (let k: usize = 0; k < 16 && bits > 0; k += 4, bits -= 32) {
    const x = bswap<u32>(load<u32>(a + k) ^ load<u32>(b + k));
    const m: u32 = bits >= 32 ? 0xffffffff : ~(<u32>0xffffffff >>> <u32>bits);
    if ((x & m) != 0) return false;
  }
  return true;
}

// ---- configuration -----------------------------------------------------------------------------
export function loadConfig(): void {
  gDesc = load<u32>(CFG, L.CFG_DESC_OFF);
  gArena = load<u32>(CFG, L.CFG_ARENA_OFF);
  gSlot = load<u32>(CFG, L.CFG_SLOT_SIZE);
  gBatchMax = load<u32>(CFG, L.CFG_BATCH_MAX);
  gTrace = load<u32>(CFG, L.CFG_TRACE_OFF);
  gCounters = load<u32>(CFG, L.CFG_COUNTERS_OFF);
  gSvcCnt = load<u32>(CFG, L.CFG_SVC_COUNTERS_OFF);
  gSvcMax = load<u32>(CFG, L.CFG_SVC_MAX);
  gBeCnt = load<u32>(CFG, L.CFG_BE_COUNTERS_OFF);
  gBeCntMax = load<u32>(CFG, L.CFG_BE_MAX);
  gCtIdx = load<u32>(CFG, L.CFG_CT_INDEX_OFF);
  gCtMask = load<u32>(CFG, L.CFG_CT_INDEX_MASK);
  gCtFlows = load<u32>(CFG, L.CFG_CT_FLOWS_OFF);
  gCtMax = load<u32>(CFG, L.CFG_CT_FLOWS_MAX);
  gAff = load<u32>(CFG, L.CFG_AFF_OFF);
  gAffMask = load<u32>(CFG, L.CFG_AFF_MASK);
  gHasSnat = load<u32>(CFG, L.CFG_HAS_SNAT);
  gPortMin = load<u32>(CFG, L.CFG_SNAT_PORT_MIN);
  gPortMax = load<u32>(CFG, L.CFG_SNAT_PORT_MAX);
  store<u32>(TO_TABLE, 0);
  store<u32>(TO_TABLE + (L.CTS_TCP_SYN << 2), load<u32>(CFG, L.CFG_TO_TCP_SYN));
  store<u32>(TO_TABLE + (L.CTS_TCP_EST << 2), load<u32>(CFG, L.CFG_TO_TCP_EST));
  store<u32>(TO_TABLE + (L.CTS_TCP_CLOSING << 2), load<u32>(CFG, L.CFG_TO_TCP_CLOSE));
  store<u32>(TO_TABLE + (L.CTS_UDP << 2), load<u32>(CFG, L.CFG_TO_UDP));
  store<u32>(TO_TABLE + (L.CTS_UDP_REPLIED << 2), load<u32>(CFG, L.CFG_TO_UDP_REPLIED));
  store<u32>(TO_TABLE + (L.CTS_SCTP << 2), load<u32>(CFG, L.CFG_TO_SCTP));
  store<u32>(TO_TABLE + (7 << 2), 0);
}

function loadTableSet(): void {
  const gen = load<u32>(CFG, L.CFG_GEN) & 1;
  const ts: usize = load<u32>(CFG + <usize>(gen ? L.CFG_TABLESET1_OFF : L.CFG_TABLESET0_OFF));
  tSm = load<u32>(ts, L.TSH_SVCMAP_OFF);
  tSmMask = load<u32>(ts, L.TSH_SVCMAP_MASK);
  tFe = load<u32>(ts, L.TSH_FRONT_OFF);
  tFeMax = load<u32>(ts, L.TSH_FRONT_MAX);
  tBe = load<u32>(ts, L.TSH_BACKEND_OFF);
  tBeMax = load<u32>(ts, L.TSH_BACKEND_MAX);
  tMg = load<u32>(ts, L.TSH_MAGLEV_OFF);
  tMgWords = load<u32>(ts, L.TSH_MAGLEV_WORDS);
  tCidr = load<u32>(ts, L.TSH_CIDR_OFF);
  tCidrMax = load<u32>(ts, L.TSH_CIDR_MAX);
  tRt = load<u32>(ts, L.TSH_ROUTE_OFF);
  tRtCount = load<u32>(ts, L.TSH_ROUTE_COUNT);
  const rmax = load<u32>(ts, L.TSH_ROUTE_MAX);
  if (tRtCount > rmax) tRtCount = rmax;
  if (tSm == 0) tSmMask = 0;
}

/** Validates the CONFIG block and region geometry, builds the free list. 0 = ok. */
export function coreInit(): u32 {
  if (load<u32>(CFG, L.CFG_MAGIC) != <u32>L.CFG_MAGIC_VALUE) return 1;
  if (load<u32>(CFG, L.CFG_VERSION) != <u32>L.LAYOUT_VERSION) return 2;
  loadConfig();
  if (gSlot < 128 || gSlot > 65535 || gBatchMax == 0) return 3;
  if (gDesc == 0 || gArena == 0 || gTrace == 0 || gCounters == 0 || gSvcCnt == 0 || gBeCnt == 0 ||
      gCtIdx == 0 || gCtFlows == 0 || gAff == 0) return 4;
  if (((gCtMask + 1) & gCtMask) != 0 || ((gAffMask + 1) & gAffMask) != 0) return 5;
  if (gCtMax == 0 || <u64>gCtMask + 1 < <u64>gCtMax * 2 + 2) return 6;
  const memEnd = <u64>memory.size() << 16;
  if (<u64>gDesc + <u64>gBatchMax * L.DESC_SIZE > memEnd) return 7;
  if (<u64>gArena + <u64>gBatchMax * gSlot > memEnd) return 7;
  if (<u64>gTrace + <u64>gBatchMax * L.TRACE_SIZE > memEnd) return 7;
  if (<u64>gCounters + <u64>(L.GC_COUNT + L.REASON_COUNT) * 8 > memEnd) return 7;
  if (<u64>gSvcCnt + (<u64>gSvcMax + 1) * L.PC_SIZE > memEnd) return 7;
  if (<u64>gBeCnt + (<u64>gBeCntMax + 1) * L.PC_SIZE > memEnd) return 7;
  if (<u64>gCtIdx + (<u64>gCtMask + 1) * L.CTI_SIZE > memEnd) return 7;
  if (<u64>gCtFlows + (<u64>gCtMax + 1) * L.CT_SIZE > memEnd) return 7;
  if (<u64>gAff + (<u64>gAffMask + 1) * L.AFF_SIZE > memEnd) return 7;
  const ts0 = load<u32>(CFG, L.CFG_TABLESET0_OFF), ts1 = load<u32>(CFG, L.CFG_TABLESET1_OFF);
  if (ts0 == 0 || ts1 == 0 || <u64>ts0 + L.TSH_SIZE > memEnd || <u64>ts1 + L.TSH_SIZE > memEnd) return 8;
  crcInit();
  memory.fill(gCounters, 0, (L.GC_COUNT + L.REASON_COUNT) * 8);
  memory.fill(gSvcCnt, 0, (gSvcMax + 1) * L.PC_SIZE);
  memory.fill(gBeCnt, 0, (gBeCntMax + 1) * L.PC_SIZE);
  gInitialized = true;
  ctFlushAll();
  return 0;
}

// ---- conntrack index ---------------------------------------------------------------------------
export function idxInsert(h: u32, ref: u32): void {
  let slot = h & gCtMask;
  for (let n: u32 = 0; n <= gCtMask; n++) {
    const p = gCtIdx + (<usize>slot << 3);
    if (load<u32>(p, L.CTI_REF) == 0) { store<u32>(p, h, L.CTI_HASH); store<u32>(p, ref, L.CTI_REF); return; }
    slot = (slot + 1) & gCtMask;
  }
}

/** Removes ref (found by probing from h's home slot) with backward-shift deletion, so probes never
 * need tombstones. Cost: proportional to the cluster length after the slot. */
function idxDelete(h: u32, ref: u32): void {
  const mask = gCtMask;
  let i = h & mask;
  let n: u32 = 0;
  for (; n <= mask; n++) {
    const r = load<u32>(gCtIdx + (<usize>i << 3), L.CTI_REF);
    if (r == ref) break;
    if (r == 0) return;
    i = (i + 1) & mask;
  }
  if (n > mask) return;
  let j = (i + 1) & mask;
  for (let m: u32 = 0; m < mask; m++) {
    const pj = gCtIdx + (<usize>j << 3);
    if (load<u32>(pj, L.CTI_REF) == 0) break;
    const home = load<u32>(pj, L.CTI_HASH) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      store<u64>(gCtIdx + (<usize>i << 3), load<u64>(pj));
      i = j;
    }
    j = (j + 1) & mask;
  }
  store<u64>(gCtIdx + (<usize>i << 3), 0);
}

@inline function natDst(e: usize): usize {
  return (load<u8>(e, L.CT_FLAGS) & L.CTF_SNAT) ? snatAddr(<u32>load<u8>(e, L.CT_FAMILY)) : e + L.CT_CLIENT;
}

@inline function origHashOf(e: usize): u32 {
  return flowHash(e + L.CT_CLIENT, e + L.CT_VIP, load<u32>(e, L.CT_CPORT), <u32>load<u8>(e, L.CT_PROTO));
}

/** Frees a flow: both index slots, entry zeroed, pushed on the free list. */
function ctFree(flow: u32): void {
  const e = flowPtr(flow);
  idxDelete(origHashOf(e), flow << 1);
  // while a flow is in use CT_NEXT_FREE holds its reply-key index hash (the SNAT address the
  // reply key was built with may have changed since, so it cannot be recomputed reliably)
  idxDelete(load<u32>(e, L.CT_REPLY_HASH), (flow << 1) | 1);
  // six vector stores instead of memory.fill: V8 turns a bulk fill into an out-of-line call
  const z = i64x2.splat(0);
  v128.store(e, z, 0); v128.store(e, z, 16); v128.store(e, z, 32);
  v128.store(e, z, 48); v128.store(e, z, 64); v128.store(e, z, 80);
  store<u32>(e, gFreeHead, L.CT_NEXT_FREE);
  gFreeHead = flow;
  gActive--;
}

let gLookupSlot: u32 = 0;

/** Finds the flow whose original (dir 0) or reply (dir 1) key equals the packet key. Returns
 * flow << 1 | dir, or 0. An expired match counts as a miss (and is freed unless dry-run). */
function ctLookup(h: u32, src: usize, dst: usize, ports: u32, proto: u32, family: u32): u32 {
  const mask = gCtMask;
  let slot = h & mask;
  const pf = proto | (family << 8);
  for (let n: u32 = 0; n <= mask; n++) {
    const p = gCtIdx + (<usize>slot << 3);
    const ref = load<u32>(p, L.CTI_REF);
    if (ref == 0) return 0;
    if (load<u32>(p, L.CTI_HASH) == h) {
      const flow = ref >>> 1;
      const e = flowPtr(flow);
      if (<u32>load<u16>(e, L.CT_PROTO) == pf) {
        let hit = false;
        if ((ref & 1) == 0) {
          hit = load<u32>(e, L.CT_CPORT) == ports && addrEq(e + L.CT_CLIENT, src) && addrEq(e + L.CT_VIP, dst);
        } else {
          hit = load<u32>(e, L.CT_BPORT) == ports && addrEq(e + L.CT_BACKEND, src) && addrEq(natDst(e), dst);
        }
        if (hit) {
          if (flowExpired(e)) {
            if (gLive) { ctFree(flow); count(L.GC_CT_EXPIRED, 1); }
            return 0;
          }
          gLookupSlot = slot;
          return ref;
        }
      }
    }
    slot = (slot + 1) & mask;
  }
  return 0;
}

function ctFlushAll(): void {
  memory.fill(gCtIdx, 0, (gCtMask + 1) * L.CTI_SIZE);
  memory.fill(gCtFlows, 0, (gCtMax + 1) * L.CT_SIZE);
  memory.fill(gAff, 0, (gAffMask + 1) * L.AFF_SIZE);
  for (let f: u32 = 1; f <= gCtMax; f++) store<u32>(flowPtr(f), f < gCtMax ? f + 1 : 0, L.CT_NEXT_FREE);
  gFreeHead = gCtMax >= 1 ? 1 : 0;
  gActive = 0;
  gExpireCursor = 1;
  gEvictCursor = 1;
  store<u64>(gCounters + (<usize>L.GC_CT_ACTIVE << 3), 0);
}

export function coreFlush(): void {
  if (!gInitialized) return;
  loadConfig();
  ctFlushAll();
}

@inline function nextCursor(c: u32): u32 { return c >= gCtMax ? 1 : c + 1; }

/** Expiry sweep: examines `budget` entries from the rotating cursor. */
function expireSweep(budget: u32): void {
  if (budget > gCtMax) budget = gCtMax;
  let c = gExpireCursor;
  if (c == 0 || c > gCtMax) c = 1;
  for (let k: u32 = 0; k < budget; k++) {
    const e = flowPtr(c);
    if (load<u8>(e, L.CT_STATE) != L.CTS_NONE && flowExpired(e)) {
      ctFree(c);
      count(L.GC_CT_EXPIRED, 1);
    }
    c = nextCursor(c);
  }
  gExpireCursor = c;
}

export function coreExpireAll(now: u32): u32 {
  if (!gInitialized) return 0;
  loadConfig();
  gNow = now;
  gLive = true;
  let freed: u32 = 0;
  for (let f: u32 = 1; f <= gCtMax; f++) {
    const e = flowPtr(f);
    if (load<u8>(e, L.CT_STATE) != L.CTS_NONE && flowExpired(e)) { ctFree(f); freed++; }
  }
  count(L.GC_CT_EXPIRED, freed);
  store<u64>(gCounters + (<usize>L.GC_CT_ACTIVE << 3), gActive);
  return freed;
}

export function coreActive(): u32 { return gActive; }

/** A free flow entry: free list first, else evict the first expired or embryonic entry within
 * CFG_EVICT_WINDOW entries from the rotating cursor. 0 = table full of established flows. */
export function ctAlloc(): u32 {
  if (gFreeHead == 0) {
    let window = load<u32>(CFG, L.CFG_EVICT_WINDOW);
    if (window > gCtMax) window = gCtMax;
    let c = gEvictCursor;
    if (c == 0 || c > gCtMax) c = 1;
    let victim: u32 = 0;
    for (let k: u32 = 0; k < window; k++) {
      const e = flowPtr(c);
      const st = <u32>load<u8>(e, L.CT_STATE);
      const cur = c;
      c = nextCursor(c);
      if (st == L.CTS_NONE) continue;
      if (flowExpired(e)) { ctFree(cur); count(L.GC_CT_EXPIRED, 1); victim = cur; break; }
      if (st == L.CTS_TCP_SYN || st == L.CTS_UDP) { ctFree(cur); count(L.GC_CT_EVICTED, 1); victim = cur; break; }
    }
    gEvictCursor = c;
    if (victim == 0) return 0;
  }
  const flow = gFreeHead;
  gFreeHead = load<u32>(flowPtr(flow), L.CT_NEXT_FREE);
  gActive++;
  return flow;
}

// ---- service map, routes, CIDRs ---------------------------------------------------------------
/** Frontend id for (addr, port, proto, family), 0 = none. */
function svcLookup(addr: usize, port: u32, proto: u32, family: u32): u32 {
  if (tSm == 0) return 0;
  return svcLookupH(svcHash(addr, port, proto, family), addr, port, proto, family);
}

/** svcLookup with the service-map hash already computed (tSm != 0). */
function svcLookupH(h: u32, addr: usize, port: u32, proto: u32, family: u32): u32 {
  const mask = tSmMask;
  let slot = h & mask;
  const key = port | (proto << 16) | (family << 24);
  for (let n: u32 = 0; n <= mask; n++) {
    const p = tSm + (<usize>slot << 5);
    const front = load<u32>(p, L.SM_FRONT);
    if (front == 0) return 0;
    if (load<u32>(p, L.SM_HASH) == h && load<u32>(p, L.SM_PORT) == key && addrEq(p + L.SM_ADDR, addr)) {
      return front <= tFeMax ? front : 0;
    }
    slot = (slot + 1) & mask;
  }
  return 0;
}

/** Route entry pointer for dst (longest prefix first, linear scan), 0 = none. */
function routeLookup(dst: usize, family: u32): usize {
  for (let i: u32 = 0; i < tRtCount; i++) {
    const r = tRt + <usize>i * L.RT_SIZE;
    if (<u32>load<u8>(r, L.RT_FAMILY) == family && prefixMatch(dst, r + L.RT_ADDR, <u32>load<u8>(r, L.RT_PLEN))) return r;
  }
  return 0;
}

function sourceAllowed(fe: usize, client: usize, family: u32): bool {
  const off = load<u32>(fe, L.FE_CIDR_OFF);
  const n = load<u32>(fe, L.FE_CIDR_COUNT);
  for (let i: u32 = 0; i < n; i++) {
    const idx = off + i;
    if (idx >= tCidrMax) return false;  // TSH_CIDR_MAX is the entry capacity
    const c = tCidr + <usize>idx * L.CIDR_SIZE;
    if (<u32>load<u8>(c, L.CIDR_FAMILY) == family && prefixMatch(client, c + L.CIDR_ADDR, <u32>load<u8>(c, L.CIDR_PLEN))) return true;
  }
  return false;
}

/** Backend id from the frontend's Maglev table, 0 when out of bounds. */
@inline function maglevPick(fe: usize, h: u32): u32 {
  const m = load<u32>(fe, L.FE_MAGLEV_SIZE);
  const off = load<u32>(fe, L.FE_MAGLEV_OFF);
  const w = off + h % m;
  if (w >= tMgWords || <u64>off + m > <u64>tMgWords) return 0;
  return load<u32>(tMg + (<usize>w << 2));
}

@inline function backendUsable(id: u32): bool {
  return id != 0 && id <= tBeMax && load<u8>(bePtr(id), L.BE_STATE) != L.BES_ABSENT;
}

// ---- per-frontend / per-backend counters -----------------------------------------------------
@inline function countFrontBackend(front: u32, backend: u32, bytes: u32): void {
  if (!gLive) return;
  if (front != 0 && front <= gSvcMax) {
    const p = gSvcCnt + <usize>front * L.PC_SIZE;
    store<u64>(p, load<u64>(p, L.PC_PACKETS) + 1, L.PC_PACKETS);
    store<u64>(p, load<u64>(p, L.PC_BYTES) + bytes, L.PC_BYTES);
  }
  if (backend != 0 && backend <= gBeCntMax) {
    const p = gBeCnt + <usize>backend * L.PC_SIZE;
    store<u64>(p, load<u64>(p, L.PC_PACKETS) + 1, L.PC_PACKETS);
    store<u64>(p, load<u64>(p, L.PC_BYTES) + bytes, L.PC_BYTES);
  }
}

// ---- rewrite -----------------------------------------------------------------------------------
@inline function srcOff(family: u32): usize { return family == 4 ? 12 : 8; }
@inline function dstOff(family: u32): usize { return family == 4 ? 16 : 24; }

/** Delta of replacing the address at p (4 or 16 bytes) with the one at n, and the copy. */
@inline function addrReplace(p: usize, n: usize, family: u32): u64 {
  if (family == 4) {
    const o = load<u32>(p), w = load<u32>(n);
    store<u32>(p, w);
    return d32(o, w);
  }
  const o0 = load<u32>(p), o1 = load<u32>(p, 4), o2 = load<u32>(p, 8), o3 = load<u32>(p, 12);
  const n0 = load<u32>(n), n1 = load<u32>(n, 4), n2 = load<u32>(n, 8), n3 = load<u32>(n, 12);
  store<u32>(p, n0); store<u32>(p, n1, 4); store<u32>(p, n2, 8); store<u32>(p, n3, 12);
  return d32(o0, n0) + d32(o1, n1) + d32(o2, n2) + d32(o3, n3);
}

/** Rewrites the IP/L4 header of a parsed frame: optional new source (addr, port), optional new
 * destination, TTL/hop limit decrement, checksums. Ports are host order. */
function natRewrite(f: usize, r: usize, newSrc: usize, newSport: u32, newDst: usize, newDport: u32): void {
  const family = <u32>load<u8>(r, PR_FAMILY);
  const proto = <u32>load<u8>(r, PR_PROTO);
  const l3 = f + <usize>load<u16>(r, PR_L3);
  const l4 = f + <usize>load<u16>(r, PR_L4);
  let acc: u64 = 0;
  if (newSrc != 0) acc += addrReplace(l3 + srcOff(family), newSrc, family);
  if (newDst != 0) acc += addrReplace(l3 + dstOff(family), newDst, family);
  let l4acc = acc;
  if (newSrc != 0) {
    const o = <u32>load<u16>(l4), n = <u32>bswap<u16>(<u16>newSport);
    store<u16>(l4, <u16>n);
    l4acc += d16(o, n);
  }
  if (newDst != 0) {
    const o = <u32>load<u16>(l4, 2), n = <u32>bswap<u16>(<u16>newDport);
    store<u16>(l4, <u16>n, 2);
    l4acc += d16(o, n);
  }
  if (family == 4) {
    const o = <u32>load<u16>(l3, 8);
    const n = o - 1; // TTL is the first (low, in a little-endian load) byte; TTL > 1 was checked
    store<u16>(l3, <u16>n, 8);
    csumApply(l3 + 10, acc + d16(o, n));
  } else {
    store<u8>(l3, load<u8>(l3, 7) - 1, 7);
  }
  if (proto == 6) {
    csumApply(l4 + 16, l4acc);
  } else if (proto == 17) {
    if (load<u16>(l4, 6) != 0) {
      if (csumApply(l4 + 6, l4acc) == 0) store<u16>(l4, 0xffff, 6);
    }
  } else if (proto == 132) {
    if (load<u8>(r, PR_FRAG) == 0) {
      const end = f + <usize>load<u16>(r, PR_END);
      store<u32>(l4, 0, 8);
      store<u32>(l4, crc32c(l4, <u32>(end - l4)), 8);
    }
  }
}

@inline function ttlOk(r: usize): bool { return load<u8>(r, PR_TTL) > 1; }

/** Forward toward the backend: DNAT to (backend addr, bport), SNAT to (snat, nport) when snat != 0. */
function fwdOrig(f: usize, r: usize, beAddr: usize, bport: u32, snat: usize, nport: u32, be: usize): void {
  natRewrite(f, r, snat, nport, beAddr, bport);
  macCopy(f, be + L.BE_DST_MAC);
  macCopy(f + 6, be + L.BE_SRC_MAC);
  fStages |= L.TS_DNAT | (snat != 0 ? L.TS_SNAT : 0);
  setResult(L.V_FORWARD, L.REASON_FWD_NAT, <u32>load<u16>(be, L.BE_OUT_PORT));
}

// ---- TCP / flow state ------------------------------------------------------------------------
@inline function stateOnOrig(e: usize, r: usize): void {
  const proto = <u32>load<u8>(r, PR_PROTO);
  if (proto == 6) {
    const fl = <u32>load<u8>(r, PR_TCPF);
    let st = <u32>load<u8>(e, L.CT_STATE);
    if ((fl & (TCP_FIN | TCP_RST)) != 0) st = L.CTS_TCP_CLOSING;
    else if (st == L.CTS_TCP_CLOSING && (fl & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
      // port reuse after a close: a fresh SYN starts the flow over (same backend)
      st = L.CTS_TCP_SYN;
      store<u8>(e, load<u8>(e, L.CT_FLAGS) & ~L.CTF_REPLIED, L.CT_FLAGS);
    }
    store<u8>(e, <u8>st, L.CT_STATE);
  }
  store<u32>(e, gNow, L.CT_LAST_SEEN);
}

@inline function stateOnReply(e: usize, r: usize): void {
  const proto = <u32>load<u8>(r, PR_PROTO);
  let st = <u32>load<u8>(e, L.CT_STATE);
  if (proto == 6) {
    const fl = <u32>load<u8>(r, PR_TCPF);
    if ((fl & (TCP_FIN | TCP_RST)) != 0) st = L.CTS_TCP_CLOSING;
    else if (st == L.CTS_TCP_SYN) st = L.CTS_TCP_EST;
  } else if (st == L.CTS_UDP) {
    st = L.CTS_UDP_REPLIED;
  }
  store<u8>(e, <u8>st, L.CT_STATE);
  store<u8>(e, load<u8>(e, L.CT_FLAGS) | L.CTF_REPLIED, L.CT_FLAGS);
  store<u32>(e, gNow, L.CT_LAST_SEEN);
}

// ---- the frame pipeline ----------------------------------------------------------------------
function hitOrig(f: usize, r: usize, flow: u32): void {
  const e = flowPtr(flow);
  const bid = load<u32>(e, L.CT_BACKEND_ID);
  if (!backendUsable(bid)) {
    // The backend left the current generation: re-select instead of black-holing the flow.
    const family = <u32>load<u8>(r, PR_FAMILY), proto = <u32>load<u8>(r, PR_PROTO);
    const front = svcLookup(r + PR_DST, <u32>load<u16>(r, PR_DPORT), proto, family);
    if (gLive) ctFree(flow);
    if (front != 0) {
      fStages |= L.TS_STALE_RESELECT;
      newFlow(f, r, front, true);
    } else {
      noService(f, r);
    }
    return;
  }
  fStages |= L.TS_CT_HIT_ORIG;
  fCt = L.TRCT_HIT_ORIG;
  fSel = L.TRSEL_EXISTING;
  fFlow = flow;
  fFront = load<u32>(e, L.CT_FRONT);
  fBackend = bid;
  if (!ttlOk(r)) { drop(L.REASON_DROP_TTL_EXCEEDED); return; }
  const be = bePtr(bid);
  if (load<u16>(be, L.BE_OUT_PORT) == L.PORT_NONE) { drop(L.REASON_DROP_NO_ROUTE); return; }
  if (gLive) { stateOnOrig(e, r); count(L.GC_CT_HIT, 1); }
  const snat = (load<u8>(e, L.CT_FLAGS) & L.CTF_SNAT) ? snatAddr(<u32>load<u8>(e, L.CT_FAMILY)) : 0;
  fwdOrig(f, r, e + L.CT_BACKEND, <u32>load<u16>(e, L.CT_BPORT), snat, <u32>load<u16>(e, L.CT_NPORT), be);
  countFrontBackend(fFront, bid, <u32>load<u16>(r, PR_LEN));
}

function hitReply(f: usize, r: usize, flow: u32): void {
  const e = flowPtr(flow);
  fStages |= L.TS_CT_HIT_REPLY;
  fCt = L.TRCT_HIT_REPLY;
  fSel = L.TRSEL_EXISTING;
  fFlow = flow;
  fFront = load<u32>(e, L.CT_FRONT);
  fBackend = load<u32>(e, L.CT_BACKEND_ID);
  if (!ttlOk(r)) { drop(L.REASON_DROP_TTL_EXCEEDED); return; }
  if (gLive) { stateOnReply(e, r); count(L.GC_CT_HIT, 1); }
  const snat = (load<u8>(e, L.CT_FLAGS) & L.CTF_SNAT) != 0;
  natRewrite(f, r, e + L.CT_VIP, <u32>load<u16>(e, L.CT_VPORT),
    snat ? e + L.CT_CLIENT : 0, <u32>load<u16>(e, L.CT_CPORT));
  macCopy(f, e + L.CT_CLIENT_MAC);
  macCopy(f + 6, e + L.CT_LOCAL_MAC);
  fStages |= L.TS_REVERSE_NAT;
  setResult(L.V_FORWARD, L.REASON_FWD_REPLY, <u32>load<u16>(e, L.CT_CLIENT_PORT));
  countFrontBackend(fFront, fBackend, <u32>load<u16>(r, PR_LEN));
}

/** Affinity lookup/refresh; returns the backend id (0 = fail closed). */
function selectAffinity(fe: usize, front: u32, client: usize): u32 {
  const h = affHash(client, front);
  const mask = gAffMask;
  const home = h & mask;
  let free: usize = 0;
  let oldest: usize = 0;
  let oldestAge: u32 = 0;
  let window = AFF_PROBE;
  if (window > mask + 1) window = mask + 1;
  for (let k: u32 = 0; k < window; k++) {
    const p = gAff + (<usize>((home + k) & mask) << 5);
    const pf = load<u32>(p, L.AFF_FRONT);
    if (pf == 0) { free = p; break; }
    if (pf == front && load<u32>(p, L.AFF_HASH) == h && addrEq(p + L.AFF_CLIENT, client)) {
      const bid = load<u32>(p, L.AFF_BACKEND);
      if (gNow - load<u32>(p, L.AFF_LAST_SEEN) <= load<u32>(fe, L.FE_AFF_TIMEOUT) && bid != 0 && bid <= tBeMax) {
        const st = load<u8>(bePtr(bid), L.BE_STATE);
        if (st == L.BES_READY || st == L.BES_TERMINATING_SERVING) {
          if (gLive) { store<u32>(p, gNow, L.AFF_LAST_SEEN); count(L.GC_AFF_HIT, 1); }
          fSel = L.TRSEL_AFFINITY;
          return bid;
        }
      }
      free = p; // stale entry for this client: overwrite in place
      break;
    }
    const age = gNow - load<u32>(p, L.AFF_LAST_SEEN);
    if (oldest == 0 || age > oldestAge) { oldest = p; oldestAge = age; }
  }
  const bid = maglevPick(fe, h);
  if (!backendUsable(bid)) return 0;
  const slot = free != 0 ? free : oldest;
  if (gLive && slot != 0) {
    addrCopy(slot + L.AFF_CLIENT, client);
    store<u32>(slot, front, L.AFF_FRONT);
    store<u32>(slot, bid, L.AFF_BACKEND);
    store<u32>(slot, gNow, L.AFF_LAST_SEEN);
    store<u32>(slot, h, L.AFF_HASH);
    count(L.GC_AFF_NEW, 1);
  }
  return bid;
}

/** New (or re-selected) flow to frontend `front`. */
function newFlow(f: usize, r: usize, front: u32, reselect: bool): void {
  const fe = fePtr(front);
  const family = <u32>load<u8>(r, PR_FAMILY), proto = <u32>load<u8>(r, PR_PROTO);
  const flags = load<u32>(fe, L.FE_FLAGS);
  const client = r + PR_SRC;
  fStages |= L.TS_SERVICE_MATCH;
  fFront = front;
  fCt = reselect ? L.TRCT_RESELECT : L.TRCT_NEW;
  if (flags & L.FEF_SOURCE_RANGES) {
    fStages |= L.TS_SOURCE_RANGE_CHECKED;
    if (!sourceAllowed(fe, client, family)) { drop(L.REASON_DROP_SOURCE_RANGE); return; }
  }
  if (load<u32>(fe, L.FE_MAGLEV_SIZE) == 0) {
    reject(f, r);
    if (fVerdict == L.V_REJECT) countFrontBackend(front, 0, <u32>load<u16>(r, PR_LEN));
    return;
  }
  if (!ttlOk(r)) { drop(L.REASON_DROP_TTL_EXCEEDED); return; }
  const h = load<u32>(r, PR_HASH);
  let bid: u32;
  if (flags & L.FEF_AFFINITY) {
    fSel = (flags & L.FEF_FALLBACK) ? L.TRSEL_FALLBACK_TERMINATING : L.TRSEL_MAGLEV;
    bid = selectAffinity(fe, front, client);
  } else {
    fSel = (flags & L.FEF_FALLBACK) ? L.TRSEL_FALLBACK_TERMINATING : L.TRSEL_MAGLEV;
    const spec = <u32>load<u8>(r, PR_SPEC);
    bid = (spec & SPEC_BID) != 0 && load<u32>(r, PR_FRONTID) == front ? load<u32>(r, PR_BID) : maglevPick(fe, h);
    if (!backendUsable(bid)) bid = 0;
  }
  if (bid == 0) { fSel = L.TRSEL_NONE; drop(L.REASON_DROP_NO_ROUTE); return; }
  const be = bePtr(bid);
  fBackend = bid;
  fStages |= L.TS_BACKEND_SELECTED;
  if (load<u16>(be, L.BE_OUT_PORT) == L.PORT_NONE || <u32>load<u8>(be, L.BE_FAMILY) != family) {
    drop(L.REASON_DROP_NO_ROUTE); return;
  }
  const beAddr = be + L.BE_ADDR;
  const bport = <u32>load<u16>(be, L.BE_PORT);
  const sport = <u32>load<u16>(r, PR_SPORT);
  let nport = sport;
  let snat: usize = 0;
  if (((flags & L.FEF_MASQUERADE) != 0 || addrEq(client, beAddr)) && hasSnat(family)) {
    snat = snatAddr(family);
    // source port: deterministic start from the flow hash, linear probe for a free reply key
    if (gPortMax < gPortMin || gPortMin == 0) { drop(L.REASON_DROP_SNAT_EXHAUSTED); return; }
    const range = gPortMax - gPortMin + 1;
    let p = gPortMin + h % range;
    let tries = SNAT_TRIES < range ? SNAT_TRIES : range;
    let found = false;
    for (let t: u32 = 0; t < tries; t++) {
      const rh = flowHash(beAddr, snat, bport | (p << 16), proto);
      if (ctLookup(rh, beAddr, snat, bport | (p << 16), proto, family) == 0) { found = true; break; }
      p = p >= gPortMax ? gPortMin : p + 1;
    }
    if (!found) { drop(L.REASON_DROP_SNAT_EXHAUSTED); return; }
    nport = p;
  }
  const natd = snat != 0 ? snat : client;
  const replyHash = snat == 0 && (<u32>load<u8>(r, PR_SPEC) & SPEC_RHASH) != 0 && load<u32>(r, PR_BID) == bid &&
    load<u32>(r, PR_FRONTID) == front
    ? load<u32>(r, PR_RHASH) : flowHash(beAddr, natd, bport | (nport << 16), proto);
  const tcpf = <u32>load<u8>(r, PR_TCPF);
  const isRst = proto == 6 && (tcpf & TCP_RST) != 0;
  if (!isRst) {
    const owner = snat == 0 ? ctLookup(replyHash, beAddr, natd, bport | (nport << 16), proto, family) : 0;
    if (owner != 0) {
      // Another flow owns this reply tuple (same client port, same backend, other frontend).
      // A pure SYN may take over the tuple of a flow that is already closing (FIN/RST seen): the
      // client reused its port for a new connection (Linux picks ephemeral ports per destination),
      // exactly as hitOrig restarts a closing flow on a fresh SYN of the same tuple. Refusing it
      // would drop every SYN retransmit until the old flow expires (tcpCloseMs, 10 s).
      // Anything else: the live owner's replies would be mistranslated.
      const oe = flowPtr(owner >>> 1);
      if (proto != 6 || (tcpf & (TCP_SYN | TCP_ACK | TCP_FIN)) != TCP_SYN || load<u8>(oe, L.CT_STATE) != L.CTS_TCP_CLOSING) {
        drop(L.REASON_DROP_CT_CLASH); return;
      }
      if (gLive) ctFree(owner >>> 1);
    }
    fStages |= L.TS_CT_NEW;
    if (gLive) {
      const flow = ctAlloc();
      if (flow == 0) { drop(L.REASON_DROP_CT_FULL); return; }
      const e = flowPtr(flow);
      addrCopy(e + L.CT_CLIENT, client);
      addrCopy(e + L.CT_VIP, r + PR_DST);
      addrCopy(e + L.CT_BACKEND, beAddr);
      store<u16>(e, <u16>sport, L.CT_CPORT);
      store<u16>(e, load<u16>(r, PR_DPORT), L.CT_VPORT);
      store<u16>(e, <u16>bport, L.CT_BPORT);
      store<u16>(e, <u16>nport, L.CT_NPORT);
      store<u8>(e, <u8>proto, L.CT_PROTO);
      store<u8>(e, <u8>family, L.CT_FAMILY);
      let st: u32 = L.CTS_UDP;
      if (proto == 6) {
        st = (tcpf & TCP_SYN) != 0 ? L.CTS_TCP_SYN : L.CTS_TCP_EST;
        if ((tcpf & TCP_FIN) != 0) st = L.CTS_TCP_CLOSING;
      } else if (proto == 132) st = L.CTS_SCTP;
      store<u8>(e, <u8>st, L.CT_STATE);
      let cf: u32 = snat != 0 ? L.CTF_SNAT : 0;
      if (fSel == L.TRSEL_AFFINITY) cf |= L.CTF_AFFINITY;
      if (flags & L.FEF_FALLBACK) cf |= L.CTF_FALLBACK;
      store<u8>(e, <u8>cf, L.CT_FLAGS);
      store<u32>(e, gNow, L.CT_LAST_SEEN);
      store<u32>(e, front, L.CT_FRONT);
      store<u32>(e, bid, L.CT_BACKEND_ID);
      store<u16>(e, <u16>fInPort, L.CT_CLIENT_PORT);
      store<u16>(e, load<u16>(be, L.BE_OUT_PORT), L.CT_OUT_PORT);
      macCopy(e + L.CT_CLIENT_MAC, f + 6);   // client's MAC = source MAC of this frame
      macCopy(e + L.CT_LOCAL_MAC, f);        // our MAC on the client side = its destination MAC
      store<u32>(e, gNow, L.CT_CREATED);
      store<u32>(e, replyHash, L.CT_REPLY_HASH);
      idxInsert(load<u32>(r, PR_HASH), flow << 1);
      idxInsert(replyHash, (flow << 1) | 1);
      fFlow = flow;
      count(reselect ? L.GC_CT_RESELECT : L.GC_CT_NEW, 1);
      if (snat != 0) count(L.GC_SNAT, 1);
    }
  } else {
    fCt = L.TRCT_NONE;
  }
  fwdOrig(f, r, beAddr, bport, snat, nport, be);
  countFrontBackend(front, bid, <u32>load<u16>(r, PR_LEN));
}

/** No flow, no frontend: ICMP error translation, else plain routing, else to the host. */
function noService(f: usize, r: usize): void {
  const family = <u32>load<u8>(r, PR_FAMILY);
  const rt = routeLookup(r + PR_DST, family);
  if (rt == 0) { setResult(L.V_TO_HOST, L.REASON_HOST_NO_MATCH, L.PORT_NONE); return; }
  if (!ttlOk(r)) { drop(L.REASON_DROP_TTL_EXCEEDED); return; }
  const out = <u32>load<u16>(rt, L.RT_OUT_PORT);
  if (out == L.PORT_NONE) { drop(L.REASON_DROP_NO_ROUTE); return; }
  const l3 = f + <usize>load<u16>(r, PR_L3);
  if (family == 4) {
    const o = <u32>load<u16>(l3, 8);
    store<u16>(l3, <u16>(o - 1), 8);
    csumApply(l3 + 10, d16(o, o - 1));
  } else {
    store<u8>(l3, load<u8>(l3, 7) - 1, 7);
  }
  macCopy(f, rt + L.RT_DST_MAC);
  macCopy(f + 6, rt + L.RT_SRC_MAC);
  fStages |= L.TS_ROUTED;
  setResult(L.V_FORWARD, L.REASON_FWD_ROUTED, out);
}

@inline function isIcmpError(family: u32, type: u32): bool {
  if (family == 4) return type == 3 || type == 11 || type == 12;
  return type >= 1 && type <= 4;
}

/** ICMP error quoting a NATed flow: translate the quoted packet and the outer header. Returns
 * false when the quote does not match a flow (the caller then routes it like any packet). */
function icmpError(f: usize, r: usize): bool {
  const family = <u32>load<u8>(r, PR_FAMILY);
  const l3 = f + <usize>load<u16>(r, PR_L3);
  const l4 = f + <usize>load<u16>(r, PR_L4);
  const end = f + <usize>load<u16>(r, PR_END);
  const q = l4 + 8;
  let il4: usize;
  let iproto: u32;
  memory.fill(TMP_A, 0, 32);
  memory.fill(TMP_B, 0, 32);
  const isrc = TMP_A, idst = TMP_B;
  if (family == 4) {
    if (q + 20 > end) return false;
    const vi = <u32>load<u8>(q);
    if ((vi >>> 4) != 4 || (vi & 15) < 5) return false;
    if ((bswap<u16>(load<u16>(q, 6)) & 0x1fff) != 0) return false;
    il4 = q + <usize>((vi & 15) << 2);
    iproto = <u32>load<u8>(q, 9);
    store<u32>(isrc, load<u32>(q, 12));
    store<u32>(idst, load<u32>(q, 16));
  } else {
    if (q + 40 > end) return false;
    if ((load<u8>(q) >>> 4) != 6) return false;
    il4 = q + 40;
    iproto = <u32>load<u8>(q, 6);
    addrCopy(isrc, q + 8);
    addrCopy(idst, q + 24);
  }
  if (iproto != 6 && iproto != 17 && iproto != 132) return false;
  if (il4 + 4 > end) return false;
  const isport = <u32>bswap<u16>(load<u16>(il4)), idport = <u32>bswap<u16>(load<u16>(il4, 2));
  // the quoted packet is one we sent; the flow key of the direction it travelled is reversed
  const ports = idport | (isport << 16);
  const h = flowHash(idst, isrc, ports, iproto);
  const ref = ctLookup(h, idst, isrc, ports, iproto, family);
  if (ref == 0) return false;
  const flow = ref >>> 1;
  const e = flowPtr(flow);
  const snatFlag = (load<u8>(e, L.CT_FLAGS) & L.CTF_SNAT) != 0;
  fStages |= L.TS_ICMP_INNER | ((ref & 1) ? L.TS_CT_HIT_REPLY : L.TS_CT_HIT_ORIG);
  fCt = (ref & 1) ? L.TRCT_HIT_REPLY : L.TRCT_HIT_ORIG;
  fSel = L.TRSEL_EXISTING;
  fFlow = flow;
  fFront = load<u32>(e, L.CT_FRONT);
  fBackend = load<u32>(e, L.CT_BACKEND_ID);
  if (!ttlOk(r)) { drop(L.REASON_DROP_TTL_EXCEEDED); return true; }
  // new inner addresses/ports (0 = unchanged) and outer ones
  let nIsrc: usize = 0, nIsport: u32 = 0, nIdst: usize = 0, nIdport: u32 = 0;
  let nOsrc: usize = 0, nOdst: usize = 0;
  let out: u32;
  let be: usize = 0;
  const osrc = l3 + srcOff(family), odst = l3 + dstOff(family);
  memory.fill(TMP_A + 16, 0, 16);
  if (family == 4) store<u32>(TMP_A + 16, load<u32>(osrc)); else addrCopy(TMP_A + 16, osrc);
  memory.fill(TMP_B + 16, 0, 16);
  if (family == 4) store<u32>(TMP_B + 16, load<u32>(odst)); else addrCopy(TMP_B + 16, odst);
  if (ref & 1) {
    // (a) from the backend side about a packet we sent toward the backend
    nIdst = e + L.CT_VIP; nIdport = <u32>load<u16>(e, L.CT_VPORT);
    if (snatFlag) { nIsrc = e + L.CT_CLIENT; nIsport = <u32>load<u16>(e, L.CT_CPORT); nOdst = e + L.CT_CLIENT; }
    if (addrEq(TMP_A + 16, e + L.CT_BACKEND)) nOsrc = e + L.CT_VIP;
    out = <u32>load<u16>(e, L.CT_CLIENT_PORT);
  } else {
    // (b) from the client about a reply we sent it
    const bid = load<u32>(e, L.CT_BACKEND_ID);
    if (!backendUsable(bid)) { drop(L.REASON_DROP_NO_ROUTE); return true; }
    be = bePtr(bid);
    out = <u32>load<u16>(be, L.BE_OUT_PORT);
    if (out == L.PORT_NONE) { drop(L.REASON_DROP_NO_ROUTE); return true; }
    nIsrc = e + L.CT_BACKEND; nIsport = <u32>load<u16>(e, L.CT_BPORT);
    if (snatFlag) {
      nIdst = snatAddr(family); nIdport = <u32>load<u16>(e, L.CT_NPORT);
      nOsrc = snatAddr(family);
    }
    if (addrEq(TMP_B + 16, e + L.CT_VIP)) nOdst = e + L.CT_BACKEND;
  }
  // inner rewrite: addresses (+ inner IPv4 header checksum), ports, inner L4 checksum if quoted
  let iacc: u64 = 0;
  if (nIsrc != 0) iacc += addrReplace(q + (family == 4 ? 12 : 8), nIsrc, family);
  if (nIdst != 0) iacc += addrReplace(q + (family == 4 ? 16 : 24), nIdst, family);
  if (family == 4 && iacc != 0) csumApply(q + 10, iacc);
  let pacc = iacc;
  if (nIsrc != 0) { const o = <u32>load<u16>(il4), n = <u32>bswap<u16>(<u16>nIsport); store<u16>(il4, <u16>n); pacc += d16(o, n); }
  if (nIdst != 0) { const o = <u32>load<u16>(il4, 2), n = <u32>bswap<u16>(<u16>nIdport); store<u16>(il4, <u16>n, 2); pacc += d16(o, n); }
  if (iproto == 6 && il4 + 18 <= end) csumApply(il4 + 16, pacc);
  else if (iproto == 17 && il4 + 8 <= end && load<u16>(il4, 6) != 0) { if (csumApply(il4 + 6, pacc) == 0) store<u16>(il4, 0xffff, 6); }
  // outer rewrite + TTL
  let oacc: u64 = 0;
  if (nOsrc != 0) oacc += addrReplace(osrc, nOsrc, family);
  if (nOdst != 0) oacc += addrReplace(odst, nOdst, family);
  if (family == 4) {
    const o = <u32>load<u16>(l3, 8);
    store<u16>(l3, <u16>(o - 1), 8);
    csumApply(l3 + 10, oacc + d16(o, o - 1));
  } else {
    store<u8>(l3, load<u8>(l3, 7) - 1, 7);
  }
  // ICMP checksum: recomputed over the whole message (it changed in several places)
  const ilen = <u32>(end - l4);
  store<u16>(l4, 0, 2);
  let s = sumBytes(l4, ilen);
  if (family == 6) s += sumBytes(osrc, 32) + <u64>bswap<u16>(<u16>(ilen >>> 16)) + <u64>bswap<u16>(<u16>ilen) + (<u64>58 << 8);
  store<u16>(l4, <u16>csumFinal(s), 2);
  if (ref & 1) {
    macCopy(f, e + L.CT_CLIENT_MAC);
    macCopy(f + 6, e + L.CT_LOCAL_MAC);
  } else {
    macCopy(f, be + L.BE_DST_MAC);
    macCopy(f + 6, be + L.BE_SRC_MAC);
  }
  setResult(L.V_FORWARD, L.REASON_FWD_ICMP_ERROR, out);
  countFrontBackend(fFront, fBackend, <u32>load<u16>(r, PR_LEN));
  return true;
}

// ---- reject --------------------------------------------------------------------------------------
/** Builds a TCP RST or ICMP port unreachable answering the frame (in SCRATCH), copies it into the
 * slot. Output never exceeds CFG_SLOT_SIZE. */
function reject(f: usize, r: usize): void {
  const family = <u32>load<u8>(r, PR_FAMILY), proto = <u32>load<u8>(r, PR_PROTO);
  const l3o = <u32>load<u16>(r, PR_L3);
  const l3 = f + <usize>l3o;
  const l4 = f + <usize>load<u16>(r, PR_L4);
  const end = f + <usize>load<u16>(r, PR_END);
  const o = SCRATCH;
  // Ethernet (+ VLAN tag and ethertype kept as received), MACs swapped
  memory.copy(o, f, l3o);
  macCopy(o, f + 6);
  macCopy(o + 6, f);
  const ip = o + <usize>l3o;
  const iphl: u32 = family == 4 ? 20 : 40;
  const osrc = l3 + srcOff(family), odst = l3 + dstOff(family);
  const tcpRst = proto == 6 && (load<u8>(r, PR_TCPF) & TCP_RST) == 0;
  if (proto == 6 && !tcpRst) {
    // never answer a RST with a RST: dropped, counted under the reject reason
    drop(L.REASON_REJECT_NO_ENDPOINTS);
    fStages |= L.TS_REJECT;
    return;
  }
  let l4len: u32;
  let nh: u32;
  const t = ip + iphl;
  if (tcpRst) {
    nh = 6;
    l4len = 20;
    const fl = <u32>load<u8>(r, PR_TCPF);
    const doff = (<u32>load<u8>(l4, 12) >>> 4) << 2;
    const payload = <u32>(end - l4) - doff;
    store<u16>(t, load<u16>(l4, 2), 0);
    store<u16>(t, load<u16>(l4, 0), 2);
    if (fl & TCP_ACK) {
      store<u32>(t, load<u32>(l4, 8), 4);  // seq = their ack (network order copy)
      store<u32>(t, 0, 8);
      store<u8>(t, <u8>TCP_RST, 13);
    } else {
      const seq = bswap<u32>(load<u32>(l4, 4));
      const ack = seq + payload + ((fl & TCP_SYN) ? 1 : 0) + ((fl & TCP_FIN) ? 1 : 0);
      store<u32>(t, 0, 4);
      store<u32>(t, bswap<u32>(ack), 8);
      store<u8>(t, <u8>(TCP_RST | TCP_ACK), 13);
    }
    store<u8>(t, 5 << 4, 12);
    store<u16>(t, 0, 14);  // window
    store<u16>(t, 0, 16);  // checksum
    store<u16>(t, 0, 18);  // urgent
  } else {
    nh = family == 4 ? 1 : 58;
    const maxTotal: u32 = family == 4 ? 576 : 1280;
    let qlen = <u32>(end - l3);
    if (qlen > maxTotal - iphl - 8) qlen = maxTotal - iphl - 8;
    if (l3o + iphl + 8 + qlen > gSlot) qlen = gSlot - l3o - iphl - 8;
    l4len = 8 + qlen;
    store<u8>(t, <u8>(family == 4 ? 3 : 1), 0);
    store<u8>(t, <u8>(family == 4 ? 3 : 4), 1);
    store<u16>(t, 0, 2);
    store<u32>(t, 0, 4);
    memory.copy(t + 8, l3, qlen);
  }
  // IP header
  let ps: u64;
  if (family == 4) {
    store<u8>(ip, 0x45, 0);
    store<u8>(ip, 0, 1);
    store<u16>(ip, bswap<u16>(<u16>(20 + l4len)), 2);
    store<u16>(ip, 0, 4);
    store<u16>(ip, bswap<u16>(0x4000), 6);
    store<u8>(ip, 64, 8);
    store<u8>(ip, <u8>nh, 9);
    store<u16>(ip, 0, 10);
    store<u32>(ip, load<u32>(odst), 12);
    store<u32>(ip, load<u32>(osrc), 16);
    store<u16>(ip, <u16>csumFinal(sumBytes(ip, 20)), 10);
    ps = nh == 1 ? 0 : <u64>load<u32>(ip, 12) + <u64>load<u32>(ip, 16) + (<u64>nh << 8) + <u64>bswap<u16>(<u16>l4len);
  } else {
    store<u32>(ip, bswap<u32>(0x60000000), 0);
    store<u16>(ip, bswap<u16>(<u16>l4len), 4);
    store<u8>(ip, <u8>nh, 6);
    store<u8>(ip, 64, 7);
    addrCopy(ip + 8, odst);
    addrCopy(ip + 24, osrc);
    ps = sumBytes(ip + 8, 32) + (<u64>nh << 8) + <u64>bswap<u16>(<u16>l4len);
  }
  const ck = csumFinal(ps + sumBytes(t, l4len));
  store<u16>(t + <usize>(tcpRst ? 16 : 2), <u16>ck);
  const total = l3o + iphl + l4len;
  memory.copy(f, o, total);
  fLenOut = total;
  fStages |= L.TS_REJECT;
  setResult(L.V_REJECT, L.REASON_REJECT_NO_ENDPOINTS, fInPort);
}

// ---- parse (pass 1) ----------------------------------------------------------------------------
@inline function early(r: usize, v: u32, reason: u32): void {
  store<u8>(r, <u8>reason, PR_REASON);
  store<u8>(r, <u8>v, PR_VERDICT);
}

function parse(i: u32, r: usize): void {
  const d = gDesc + <usize>i * L.DESC_SIZE;
  const len = <u32>load<u16>(d, L.D_LEN);
  const f = gArena + <usize>i * gSlot;
  store<u16>(r, <u16>len, PR_LEN);
  store<u8>(r, 0, PR_REASON);
  store<u8>(r, 0, PR_FAMILY);
  store<u8>(r, 0, PR_PROTO);
  store<u8>(r, 0, PR_PORTS);
  store<u8>(r, 0, PR_SPEC);
  store<u8>(r, 0, PR_ICMPT);
  store<u8>(r, 0, PR_TCPF);
  store<u32>(r, 0, PR_HASH);
  store<u32>(r, 0, PR_L3);
  if (load<u16>(d, L.D_IN_PORT) == L.PORT_NONE) { early(r, L.V_DROP, L.REASON_DROP_BAD_PORT); return; }
  if (len > gSlot) { early(r, L.V_DROP, L.REASON_DROP_OVERSIZE); return; }
  if (len < 14) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L2); return; }
  let et = <u32>bswap<u16>(load<u16>(f, 12));
  let l3: u32 = 14;
  if (et == 0x8100) {
    if (len < 18) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L2); return; }
    et = <u32>bswap<u16>(load<u16>(f, 16));
    l3 = 18;
  }
  store<u16>(r, <u16>l3, PR_L3);
  if (et == 0x0806) { early(r, L.V_TO_HOST, L.REASON_HOST_ARP); return; }
  let family: u32;
  let end: u32;
  let l4: u32;
  let proto: u32;
  const p = f + <usize>l3;
  if (et == 0x0800) {
    if (len - l3 < 20) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L3); return; }
    const vi = <u32>load<u8>(p);
    if ((vi >>> 4) != 4) { early(r, L.V_DROP, L.REASON_DROP_BAD_IP_VERSION); return; }
    const ihl = (vi & 15) << 2;
    if (ihl < 20) { early(r, L.V_DROP, L.REASON_DROP_BAD_IHL); return; }
    const tot = <u32>bswap<u16>(load<u16>(p, 2));
    if (tot > len - l3 || tot < ihl) { early(r, L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH); return; }
    family = 4;
    store<u8>(r, 4, PR_FAMILY);
    end = l3 + tot;
    l4 = l3 + ihl;
    proto = <u32>load<u8>(p, 9);
    const s = load<u32>(p, 12);
    store<u32>(r, s, PR_SRC); store<u32>(r, 0, PR_SRC + 4); store<u64>(r, 0, PR_SRC + 8);
    store<u32>(r, load<u32>(p, 16), PR_DST); store<u32>(r, 0, PR_DST + 4); store<u64>(r, 0, PR_DST + 8);
    store<u8>(r, load<u8>(p, 8), PR_TTL);
    const fo = <u32>bswap<u16>(load<u16>(p, 6));
    if ((s & 0xf0) == 0xe0 || s == 0xffffffff) { early(r, L.V_DROP, L.REASON_DROP_MARTIAN); return; }
    if ((fo & 0x1fff) != 0) { early(r, L.V_DROP, L.REASON_DROP_FRAGMENT); return; }
    store<u8>(r, (fo & 0x2000) ? 1 : 0, PR_FRAG);
  } else if (et == 0x86dd) {
    if (len - l3 < 40) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L3); return; }
    if ((load<u8>(p) >>> 4) != 6) { early(r, L.V_DROP, L.REASON_DROP_BAD_IP_VERSION); return; }
    const pl = <u32>bswap<u16>(load<u16>(p, 4));
    if (pl + 40 > len - l3) { early(r, L.V_DROP, L.REASON_DROP_BAD_IP_LENGTH); return; }
    family = 6;
    store<u8>(r, 6, PR_FAMILY);
    end = l3 + 40 + pl;
    addrCopy(r + PR_SRC, p + 8);
    addrCopy(r + PR_DST, p + 24);
    store<u8>(r, load<u8>(p, 7), PR_TTL);
    store<u8>(r, 0, PR_FRAG);
    if (load<u8>(p, 8) == 0xff) { early(r, L.V_DROP, L.REASON_DROP_MARTIAN); return; }
    proto = <u32>load<u8>(p, 6);
    l4 = l3 + 40;
    let n: u32 = 0;
    while (proto == 0 || proto == 43 || proto == 60 || proto == 44) {
      if (++n > 8 || l4 + 8 > end) { early(r, L.V_DROP, L.REASON_DROP_IPV6_EXT_HEADERS); return; }
      const x = f + <usize>l4;
      const next = <u32>load<u8>(x);
      if (proto == 44) {
        const fo = <u32>bswap<u16>(load<u16>(x, 2));
        if ((fo & 0xfff8) != 0) { early(r, L.V_DROP, L.REASON_DROP_FRAGMENT); return; }
        if (fo & 1) store<u8>(r, 1, PR_FRAG);
        l4 += 8;
      } else {
        l4 += (<u32>load<u8>(x, 1) + 1) << 3;
        if (l4 > end) { early(r, L.V_DROP, L.REASON_DROP_IPV6_EXT_HEADERS); return; }
      }
      proto = next;
    }
  } else {
    early(r, L.V_TO_HOST, L.REASON_HOST_NOT_IP);
    return;
  }
  store<u16>(r, <u16>l4, PR_L4);
  store<u16>(r, <u16>end, PR_END);
  store<u8>(r, <u8>proto, PR_PROTO);
  const q = f + <usize>l4;
  let sport: u32 = 0, dport: u32 = 0;
  if (proto == 6) {
    if (l4 + 20 > end) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    const doff = (<u32>load<u8>(q, 12) >>> 4) << 2;
    if (doff < 20) { early(r, L.V_DROP, L.REASON_DROP_BAD_L4_HEADER); return; }
    if (l4 + doff > end) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    store<u8>(r, load<u8>(q, 13), PR_TCPF);
    store<u8>(r, 1, PR_PORTS);
  } else if (proto == 17) {
    if (l4 + 8 > end) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    store<u8>(r, 1, PR_PORTS);
  } else if (proto == 132) {
    if (l4 + 12 > end) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    store<u8>(r, 1, PR_PORTS);
  } else if ((proto == 1 && family == 4) || (proto == 58 && family == 6)) {
    if (l4 + 8 > end) { early(r, L.V_DROP, L.REASON_DROP_TRUNCATED_L4); return; }
    const type = <u32>load<u8>(q);
    store<u8>(r, <u8>type, PR_ICMPT);
    if (family == 6 && type >= 133 && type <= 137) { early(r, L.V_TO_HOST, L.REASON_HOST_ND); return; }
  }
  if (load<u8>(r, PR_PORTS)) {
    sport = <u32>bswap<u16>(load<u16>(q));
    dport = <u32>bswap<u16>(load<u16>(q, 2));
  }
  store<u16>(r, <u16>sport, PR_SPORT);
  store<u16>(r, <u16>dport, PR_DPORT);
  store<u32>(r, family == 4
    ? flowHash4(load<u32>(r, PR_SRC), load<u32>(r, PR_DST), sport | (dport << 16), proto)
    : flowHash(r + PR_SRC, r + PR_DST, sport | (dport << 16), proto), PR_HASH);
}

// ---- touch passes ------------------------------------------------------------------------------
// Wasm has no prefetch instruction. What it does have: independent loads issued back to back,
// which the CPU overlaps instead of paying them one by one in pass 2. A frame's path is a chain of
// dependent misses (index slot -> flow entry -> backend entry and counters; for a new flow:
// index slot -> service-map slot -> frontend -> Maglev word -> backend -> reply index slot), so
// each link is a stage over the whole chunk: a compute loop writes up to three addresses per frame
// (PR_TA/TB/TC, 0 = nothing: address 0 is static data, always cached), then touch() loads them in
// a loop of a few instructions per frame. The tight loop matters: on the measuring VM a random
// miss into the 32 MiB index costs hundreds of ns (4 KiB pages: TLB walk plus DRAM), and only a
// loop body small enough for many iterations to sit in the reorder window keeps many misses in
// flight (measured: with each stage's loads inside its compute loop a new flow cost 620 ns/frame
// of on-CPU time, 378 of it in the reply-slot stage; with separate touch() loops 359 in total).
// See docs/performance.md.
// Everything here only reads shared state. What it computes for a likely new flow is a pure
// function of the frame and the batch's table set, cached in the parse record (PR_SPEC) so pass 2
// does not redo it. A frame counts as a new flow when probing from its home index slot meets an
// empty slot before its hash (probeNear).
@inline function setTouch(r: usize, a: usize, b: usize, c: usize): void {
  store<u32>(r, <u32>a, PR_TA); store<u32>(r, <u32>b, PR_TB); store<u32>(r, <u32>c, PR_TC);
}

function touch(n: u32): u32 {
  let sink: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    sink ^= load<u32>(load<u32>(r, PR_TA)) ^ load<u32>(load<u32>(r, PR_TB)) ^ load<u32>(load<u32>(r, PR_TC));
  }
  return sink;
}

/** The first PROBE_NEAR index slots from h's home (the home line is cached after stage 1):
 * 0 = an empty slot came first, a certain conntrack miss (the frame is treated as a new flow);
 * a ref (>= 2) = the first slot with hash h, very likely the frame's flow; 1 = undecided.
 * Only a certain miss triggers the speculative new-flow stages: with "home slot holds another
 * hash" as the test, ~5% of established frames at 100k flows were speculated on, i.e. nearly
 * every 64-frame chunk ran all stages (measured ~17% of established throughput). */
@inline function probeNear(h: u32): u32 {
  const mask = gCtMask;
  let j = h & mask;
  for (let t: u32 = 0; t < PROBE_NEAR; t++) {
    const q = gCtIdx + (<usize>j << 3);
    const ref = load<u32>(q, L.CTI_REF);
    if (ref == 0) return 0;
    if (load<u32>(q, L.CTI_HASH) == h) return ref;
    j = (j + 1) & mask;
  }
  return 1;
}
// 16 slots = 2 cache lines. Established frames nearly always stop at the first slot; for new
// flows at index load 0.3-0.5 a 4-slot window left many undecided (measured: 16 vs 4 slots, new
// flows ~5% faster overall and ~10% at the high-fill end, established unchanged).
const PROBE_NEAR: u32 = 16;

function touchChunk(n: u32): u32 {
  let sink: u32 = 0;
  const mask = gCtMask;
  // 1: home index slots (the loop is already tight: no separate touch())
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    if (load<u8>(r, PR_PORTS)) sink ^= load<u32>(gCtIdx + (<usize>(load<u32>(r, PR_HASH) & mask) << 3), L.CTI_REF);
  }
  // 2: the flow entry the frame's index slot points to (both of its cache lines), loaded right
  // here: for an all-established chunk this is the last miss-bound stage, kept as a plain loop.
  let spec: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    if (!load<u8>(r, PR_PORTS)) continue;
    const ref = probeNear(load<u32>(r, PR_HASH));
    if (ref > 1) {
      const e = flowPtr(ref >>> 1);
      sink ^= load<u32>(e) ^ load<u32>(e, L.CT_SIZE - 4);
    } else if (ref == 0 && tSm != 0) {
      store<u8>(r, <u8>SPEC_SVCH, PR_SPEC);
      spec = 1;
    }
  }
  if (spec) {
    // likely new flows: the service-map hash and its home slot
    for (let k: u32 = 0; k < n; k++) {
      const r = rec(k);
      let ta: usize = 0;
      if (load<u8>(r, PR_SPEC)) {
        const family = <u32>load<u8>(r, PR_FAMILY), dport = <u32>load<u16>(r, PR_DPORT), proto = <u32>load<u8>(r, PR_PROTO);
        const sh = family == 4 ? svcHash4(load<u32>(r, PR_DST), dport, proto, 4) : svcHash(r + PR_DST, dport, proto, family);
        store<u32>(r, sh, PR_SVCH);
        ta = tSm + (<usize>(sh & tSmMask) << 5);
      }
      setTouch(r, ta, 0, 0);
    }
    sink ^= touch(n);
  }
  // 3: existing flow -> its backend entry and counters; likely new flow -> service lookup, frontend
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    let ta: usize = 0, tb: usize = 0, tc: usize = 0;
    if (load<u8>(r, PR_PORTS)) {
      if (load<u8>(r, PR_SPEC)) {
        const front = svcLookupH(load<u32>(r, PR_SVCH), r + PR_DST, <u32>load<u16>(r, PR_DPORT),
          <u32>load<u8>(r, PR_PROTO), <u32>load<u8>(r, PR_FAMILY));
        store<u32>(r, front, PR_FRONTID);
        store<u8>(r, <u8>(SPEC_SVCH | SPEC_FRONT), PR_SPEC);
        if (front != 0) ta = fePtr(front);
      } else {
        const ref = probeNear(load<u32>(r, PR_HASH));
        if (ref > 1) {
          const e = flowPtr(ref >>> 1);
          const bid = load<u32>(e, L.CT_BACKEND_ID), front = load<u32>(e, L.CT_FRONT);
          if (bid <= tBeMax) ta = bePtr(bid);
          if (bid <= gBeCntMax) tb = gBeCnt + <usize>bid * L.PC_SIZE;
          if (front <= gSvcMax) tc = gSvcCnt + <usize>front * L.PC_SIZE;
        }
      }
    }
    setTouch(r, ta, tb, tc);
  }
  sink ^= touch(n);
  if (!spec) return sink;
  // 4: likely new flow on a plain (non-affinity) frontend with endpoints: its Maglev word
  spec = 0;
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    let ta: usize = 0;
    if ((<u32>load<u8>(r, PR_SPEC) & SPEC_FRONT) != 0) {
      const front = load<u32>(r, PR_FRONTID);
      if (front != 0) {
        const fe = fePtr(front);
        const m = load<u32>(fe, L.FE_MAGLEV_SIZE);
        if ((load<u32>(fe, L.FE_FLAGS) & L.FEF_AFFINITY) == 0 && m != 0) {
          // maglevPick, split in two so the word's miss overlaps with the other frames'
          const off = load<u32>(fe, L.FE_MAGLEV_OFF);
          const w = off + load<u32>(r, PR_HASH) % m;
          store<u32>(r, 0, PR_BID);
          store<u8>(r, <u8>(SPEC_SVCH | SPEC_FRONT | SPEC_BID), PR_SPEC);
          if (w < tMgWords && <u64>off + m <= <u64>tMgWords) ta = tMg + (<usize>w << 2);
          spec = 1;
        }
      }
    }
    setTouch(r, ta, 0, 0);
  }
  sink ^= touch(n);
  if (!spec) return sink;
  // 5: the picked backend's entry
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    let ta: usize = 0;
    if ((<u32>load<u8>(r, PR_SPEC) & SPEC_BID) != 0) {
      const w = load<u32>(r, PR_TA);
      const bid = w != 0 ? load<u32>(w) : 0;
      store<u32>(r, bid, PR_BID);
      if (bid != 0 && bid <= tBeMax) ta = bePtr(bid);
    }
    setTouch(r, ta, 0, 0);
  }
  sink ^= touch(n);
  // 6: the reply key's index slot (the clash check and the insert) or, when the flow will be
  // masqueraded, the first SNAT port probe's slot; and the counters the frame will add to
  for (let k: u32 = 0; k < n; k++) {
    const r = rec(k);
    let ta: usize = 0, tb: usize = 0, tc: usize = 0;
    const be = load<u32>(r, PR_TA);
    if (be != 0) {
      const family = <u32>load<u8>(r, PR_FAMILY), proto = <u32>load<u8>(r, PR_PROTO);
      const bid = load<u32>(r, PR_BID), front = load<u32>(r, PR_FRONTID);
      const beAddr = be + L.BE_ADDR;
      const bport = <u32>load<u16>(be, L.BE_PORT);
      const client = r + PR_SRC;
      if (<u32>load<u8>(be, L.BE_FAMILY) == family) {
        if (((load<u32>(fePtr(front), L.FE_FLAGS) & L.FEF_MASQUERADE) != 0 || addrEq(client, beAddr)) && hasSnat(family)) {
          if (gPortMax >= gPortMin && gPortMin != 0) {
            const p = gPortMin + load<u32>(r, PR_HASH) % (gPortMax - gPortMin + 1);
            ta = gCtIdx + (<usize>(flowHash(beAddr, snatAddr(family), bport | (p << 16), proto) & mask) << 3);
          }
        } else {
          const ports = bport | (<u32>load<u16>(r, PR_SPORT) << 16);
          const rh = family == 4 ? flowHash4(load<u32>(beAddr), load<u32>(client), ports, proto) : flowHash(beAddr, client, ports, proto);
          store<u32>(r, rh, PR_RHASH);
          store<u8>(r, <u8>(SPEC_SVCH | SPEC_FRONT | SPEC_BID | SPEC_RHASH), PR_SPEC);
          ta = gCtIdx + (<usize>(rh & mask) << 3);
        }
      }
      if (bid <= gBeCntMax) tb = gBeCnt + <usize>bid * L.PC_SIZE;
      if (front <= gSvcMax) tc = gSvcCnt + <usize>front * L.PC_SIZE;
    }
    setTouch(r, ta, tb, tc);
  }
  sink ^= touch(n);
  return sink;
}

// ---- pass 2 ------------------------------------------------------------------------------------
function decide(f: usize, r: usize): void {
  const reason = <u32>load<u8>(r, PR_REASON);
  if (reason != 0) { setResult(<u32>load<u8>(r, PR_VERDICT), reason, L.PORT_NONE); return; }
  fStages = L.TS_PARSED;
  const family = <u32>load<u8>(r, PR_FAMILY);
  const proto = <u32>load<u8>(r, PR_PROTO);
  if (load<u8>(r, PR_PORTS)) {
    const ports = <u32>load<u16>(r, PR_SPORT) | (<u32>load<u16>(r, PR_DPORT) << 16);
    const ref = ctLookup(load<u32>(r, PR_HASH), r + PR_SRC, r + PR_DST, ports, proto, family);
    if (ref != 0) {
      if (ref & 1) hitReply(f, r, ref >>> 1); else hitOrig(f, r, ref >>> 1);
      return;
    }
    const front = (<u32>load<u8>(r, PR_SPEC) & SPEC_FRONT) != 0
      ? load<u32>(r, PR_FRONTID) : svcLookup(r + PR_DST, <u32>load<u16>(r, PR_DPORT), proto, family);
    if (front != 0) { newFlow(f, r, front, false); return; }
  } else if (((proto == 1 && family == 4) || (proto == 58 && family == 6)) && isIcmpError(family, <u32>load<u8>(r, PR_ICMPT))) {
    if (icmpError(f, r)) return;
  }
  noService(f, r);
}

function writeTrace(i: u32, r: usize): void {
  const t = gTrace + <usize>i * L.TRACE_SIZE;
  store<u32>(t, fStages, L.TR_STAGES);
  store<u8>(t, <u8>fVerdict, L.TR_VERDICT);
  store<u8>(t, <u8>fReason, L.TR_REASON);
  store<u16>(t, <u16>fOut, L.TR_OUT_PORT);
  store<u32>(t, fFront, L.TR_FRONT);
  store<u32>(t, fBackend, L.TR_BACKEND);
  store<u32>(t, fFlow, L.TR_FLOW);
  store<u8>(t, <u8>fCt, L.TR_CT);
  store<u8>(t, <u8>fSel, L.TR_SELECT);
  store<u8>(t, load<u8>(r, PR_PROTO), L.TR_PROTO);
  store<u8>(t, load<u8>(r, PR_FAMILY), L.TR_FAMILY);
  store<u16>(t, load<u16>(r, PR_L3), L.TR_L3);
  store<u16>(t, load<u16>(r, PR_L4), L.TR_L4);
  store<u32>(t, load<u32>(r, PR_HASH), L.TR_HASH);
}

export function coreProcess(count_: u32, now: u32): void {
  if (!gInitialized) return;
  loadConfig();
  loadTableSet();
  gNow = now;
  gTraceFlags = load<u32>(CFG, L.CFG_TRACE);
  gTraceOn = (gTraceFlags & L.TRACE_ON) != 0;
  gLive = (gTraceFlags & L.TRACE_DRY_RUN) == 0;
  if (count_ > gBatchMax) count_ = gBatchMax;
  if (gLive) {
    expireSweep(load<u32>(CFG, L.CFG_EXPIRE_BUDGET));
    count(L.GC_BATCHES, 1);
  }
  let fwd: u64 = 0, rej: u64 = 0, host: u64 = 0, drp: u64 = 0, bytes: u64 = 0;
  for (let base: u32 = 0; base < count_; base += CHUNK) {
    const n = count_ - base < CHUNK ? count_ - base : CHUNK;
    // pass 1: parse + hash every frame of the chunk (independent work, overlaps cache misses)
    for (let k: u32 = 0; k < n; k++) parse(base + k, rec(k));
    gSink = touchChunk(n);
    // pass 2: conntrack, services, rewrite, in order
    for (let k: u32 = 0; k < n; k++) {
      const i = base + k;
      const r = rec(k);
      const d = gDesc + <usize>i * L.DESC_SIZE;
      const f = gArena + <usize>i * gSlot;
      fStages = 0; fFront = 0; fBackend = 0; fFlow = 0; fCt = L.TRCT_NONE; fSel = L.TRSEL_NONE;
      fInPort = <u32>load<u16>(d, L.D_IN_PORT);
      const len = <u32>load<u16>(d, L.D_LEN);
      fLenOut = len;
      decide(f, r);
      if (fVerdict == L.V_DROP) fOut = L.PORT_NONE;
      store<u16>(d, <u16>fLenOut, L.D_LEN);
      store<u16>(d, <u16>fOut, L.D_OUT_PORT);
      store<u8>(d, <u8>fVerdict, L.D_VERDICT);
      store<u8>(d, <u8>fReason, L.D_REASON);
      store<u32>(d, load<u32>(r, PR_HASH), L.D_HASH);
      if (gLive) {
        bytes += len;
        if (fVerdict == L.V_FORWARD) fwd++;
        else if (fVerdict == L.V_REJECT) rej++;
        else if (fVerdict == L.V_TO_HOST) host++;
        else drp++;
        count(L.GC_COUNT + <i32>fReason, 1);
      }
      if (gTraceOn) writeTrace(i, r);
    }
  }
  if (gLive) {
    count(L.GC_RX_PACKETS, <u64>count_);
    count(L.GC_RX_BYTES, bytes);
    count(L.GC_FORWARD, fwd);
    count(L.GC_REJECT, rej);
    count(L.GC_TO_HOST, host);
    count(L.GC_DROP, drp);
    store<u64>(gCounters + (<usize>L.GC_CT_ACTIVE << 3), gActive);
  }
}
