// Conntrack: the hash index (both directions of every flow), the flow entries, their free list,
// expiry and eviction, and the TCP/UDP/SCTP state machine. Semantics: docs/core.md "Conntrack lookup",
// "Conntrack storage".
import * as L from "./layout";
import { CtFlow, Backend } from "./records";
import { flowHash, keyHash } from "./hash";
import { addrEq, addrCopy, macCopy } from "./addr";
import { ETH_DST, ETH_SRC, IPPROTO_TCP, IPPROTO_SCTP, TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK } from "./net";
import {
  gCtIdx, gCtMask, gCtMax, gCtFlows, gAff, gAffMask, gNow, gLive, flowAt, ctSlotAt, timeoutOf, count,
  setFlowsActive, config, flowSnatAddr,
} from "./regions";
import { Frame } from "./frame";
import { fragFlushAll } from "./fragment";

// Core-internal bookkeeping, persistent across batches; reset by init/ct_flush.
let gFreeHead: u32 = 0;
let gActive: u32 = 0;
let gExpireCursor: u32 = 1;
let gEvictCursor: u32 = 1;

@inline export function flowsActive(): u32 { return gActive; }

@inline function flowExpired(e: CtFlow): bool {
  return gNow - e.lastSeen > timeoutOf(<u32>e.state);
}

/** The reply key's destination: the flow's SNAT (or hairpin) address, or the client. */
@inline function natDst(e: CtFlow): usize {
  return (e.flags & L.CTF_SNAT) ? flowSnatAddr(<u32>e.flags, <u32>e.family) : e.clientAddr;
}

@inline function origHashOf(e: CtFlow): u32 {
  return flowHash(e.clientAddr, e.vipAddr, e.origPorts, <u32>e.proto);
}

// ---- index ----------------------------------------------------------------------------------------
export function idxInsert(h: u32, ref: u32): void {
  let slot = h & gCtMask;
  for (let n: u32 = 0; n <= gCtMask; n++) {
    const s = ctSlotAt(slot);
    if (s.ref == 0) { s.hash = h; s.ref = ref; return; }
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
    const r = ctSlotAt(i).ref;
    if (r == ref) break;
    if (r == 0) return;
    i = (i + 1) & mask;
  }
  if (n > mask) return;
  let j = (i + 1) & mask;
  for (let m: u32 = 0; m < mask; m++) {
    const sj = ctSlotAt(j);
    if (sj.ref == 0) break;
    const home = sj.hash & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      store<u64>(changetype<usize>(ctSlotAt(i)), load<u64>(changetype<usize>(sj)));
      i = j;
    }
    j = (j + 1) & mask;
  }
  store<u64>(changetype<usize>(ctSlotAt(i)), 0);
}

/** The first PROBE_NEAR index slots from h's home (the home line is cached after the prefetch's
 * first stage): 0 = an empty slot came first, a certain conntrack miss; a ref (>= 2) = the first
 * slot with hash h, very likely the frame's flow; 1 = undecided. */
@inline export function probeNear(h: u32): u32 {
  const mask = gCtMask;
  let j = h & mask;
  for (let t: u32 = 0; t < PROBE_NEAR; t++) {
    const s = ctSlotAt(j);
    const ref = s.ref;
    if (ref == 0) return 0;
    if (s.hash == h) return ref;
    j = (j + 1) & mask;
  }
  return 1;
}
// 16 slots = 2 cache lines. Established frames nearly always stop at the first slot; for new
// flows at index load 0.3-0.5 a 4-slot window left many undecided (measured: 16 vs 4 slots, new
// flows ~5% faster overall and ~10% at the high-fill end, established unchanged).
const PROBE_NEAR: u32 = 16;

/** Index hash of a reply key without SNAT: (backend, client, bport, sport). */
@inline export function replyKeyHash(beAddr: usize, natd: usize, bport: u32, nport: u32, proto: u32, family: u32): u32 {
  return keyHash(beAddr, natd, bport | (nport << 16), proto, family);
}

/** Address of h's home index slot (what the prefetch touches first). */
@inline export function homeSlot(h: u32): usize { return changetype<usize>(ctSlotAt(h & gCtMask)); }

// ---- flows ----------------------------------------------------------------------------------------
/** Frees a flow: both index slots, entry zeroed, pushed on the free list. */
export function ctFree(flow: u32): void {
  const e = flowAt(flow);
  idxDelete(origHashOf(e), flow << 1);
  // while a flow is in use its reply hash is kept in the entry (the SNAT address the reply key was
  // built with may have changed since, so it cannot be recomputed reliably)
  idxDelete(e.replyHash, (flow << 1) | 1);
  // six vector stores instead of memory.fill: V8 turns a bulk fill into an out-of-line call
  const p = e.ptr;
  const z = i64x2.splat(0);
  v128.store(p, z, 0); v128.store(p, z, 16); v128.store(p, z, 32);
  v128.store(p, z, 48); v128.store(p, z, 64); v128.store(p, z, 80);
  e.nextFree = gFreeHead;
  gFreeHead = flow;
  gActive--;
}

/** Finds the flow whose original (dir 0) or reply (dir 1) key equals the packet key. Returns
 * flow << 1 | dir, or 0. An expired match counts as a miss (and is freed unless dry-run). */
export function ctLookup(h: u32, src: usize, dst: usize, ports: u32, proto: u32, family: u32): u32 {
  const mask = gCtMask;
  let slot = h & mask;
  const pf = proto | (family << 8);
  for (let n: u32 = 0; n <= mask; n++) {
    const s = ctSlotAt(slot);
    const ref = s.ref;
    if (ref == 0) return 0;
    if (s.hash == h) {
      const flow = ref >>> 1;
      const e = flowAt(flow);
      if (e.protoFamily == pf) {
        let hit = false;
        if ((ref & 1) == 0) {
          hit = e.origPorts == ports && addrEq(e.clientAddr, src) && addrEq(e.vipAddr, dst);
        } else {
          hit = e.replyPorts == ports && addrEq(e.backendAddr, src) && addrEq(natDst(e), dst);
        }
        if (hit) {
          if (flowExpired(e)) {
            if (gLive) { ctFree(flow); count(L.GC_CT_EXPIRED, 1); }
            return 0;
          }
          return ref;
        }
      }
    }
    slot = (slot + 1) & mask;
  }
  return 0;
}

@inline function nextCursor(c: u32): u32 { return c >= gCtMax ? 1 : c + 1; }

/** Whether a flow may be evicted to make room: one not confirmed by traffic in both directions
 * (TCP: SYN sent, SYN-ACK seen, picked up mid-stream; UDP: not a stream; SCTP: never established,
 * CTF_CONFIRMED unset), or a TCP flow that is half-closed or closing, or an SCTP association
 * shutting down. Like the kernel's early drop, which drops flows that are not ASSURED and,
 * ASSURED or not, TCP flows in FIN_WAIT/CLOSE_WAIT/LAST_ACK/TIME_WAIT/CLOSE (tcp_can_early_drop)
 * and SCTP ones in SHUTDOWN_SENT/RECD/ACK_SENT (sctp_can_early_drop):
 * an established flow is never evicted, so a flood of SYNs or bare ACKs cannot push out the
 * connections that already work, and connections that ended cannot hold the table full for their
 * closing timeout either. */
@inline export function evictable(st: u32, flags: u32): bool {
  if (st >= <u32>L.CTS_COUNT) return false;
  const states = (flags & L.CTF_CONFIRMED) != 0 ? <u32>L.EVICTABLE_CT_STATES : <u32>(L.EVICTABLE_CT_STATES | L.EVICTABLE_UNCONFIRMED_CT_STATES);
  return ((states >>> st) & 1) != 0;
}

/** A free flow entry: free list first, else evict the first expired or unconfirmed (evictable)
 * entry within CFG_EVICT_WINDOW entries from the rotating cursor. 0 = table full of confirmed flows. */
export function ctAlloc(): u32 {
  if (gFreeHead == 0) {
    let window = config().evictWindow;
    if (window > gCtMax) window = gCtMax;
    let c = gEvictCursor;
    if (c == 0 || c > gCtMax) c = 1;
    let victim: u32 = 0;
    for (let k: u32 = 0; k < window; k++) {
      const e = flowAt(c);
      const st = <u32>e.state;
      const cur = c;
      c = nextCursor(c);
      if (st == L.CTS_NONE) continue;
      if (flowExpired(e)) { ctFree(cur); count(L.GC_CT_EXPIRED, 1); victim = cur; break; }
      if (evictable(st, <u32>e.flags)) { ctFree(cur); count(L.GC_CT_EVICTED, 1); victim = cur; break; }
    }
    gEvictCursor = c;
    if (victim == 0) return 0;
  }
  const flow = gFreeHead;
  gFreeHead = flowAt(flow).nextFree;
  gActive++;
  return flow;
}

// SCTP chunk types (RFC 9260 section 3.2) the kernel's SCTP conntrack changes state on.
const SCTP_INIT: u32 = 1;
const SCTP_INIT_ACK: u32 = 2;
const SCTP_HEARTBEAT: u32 = 4;
const SCTP_HEARTBEAT_ACK: u32 = 5;
const SCTP_ABORT: u32 = 6;
const SCTP_SHUTDOWN: u32 = 7;
const SCTP_SHUTDOWN_ACK: u32 = 8;
const SCTP_ERROR: u32 = 9;
const SCTP_COOKIE_ECHO: u32 = 10;
const SCTP_COOKIE_ACK: u32 = 11;
const SCTP_SHUTDOWN_COMPLETE: u32 = 14;

/** State of a new flow from its first packet: a pure SYN opens a handshake; FIN or RST a closing
 * flow; any other TCP packet (a bare ACK, data) is picked up mid-stream, unconfirmed until the
 * backend answers it (the kernel's nf_conntrack_tcp_loose pick-up, which is not ASSURED either).
 * SCTP (`tcpf` = the first chunk's type): the kernel's table from its NONE state — a HEARTBEAT
 * picks up a path (HEARTBEAT_SENT), a SHUTDOWN-ACK goes to SHUTDOWN_ACK_SENT, any other chunk to
 * CLOSED (an INIT, until the INIT-ACK answers it; a DATA chunk, which the kernel refuses to make
 * an entry of, too: docs/core.md "SCTP states"). */
@inline function initialState(proto: u32, tcpf: u32): u32 {
  if (proto == IPPROTO_TCP) {
    if ((tcpf & (TCP_FIN | TCP_RST)) != 0) return L.CTS_TCP_CLOSING;
    return (tcpf & (TCP_SYN | TCP_ACK)) == TCP_SYN ? L.CTS_TCP_SYN : L.CTS_TCP_MIDSTREAM;
  }
  if (proto == IPPROTO_SCTP) {
    if (tcpf == SCTP_HEARTBEAT) return L.CTS_SCTP_HEARTBEAT_SENT;
    return tcpf == SCTP_SHUTDOWN_ACK ? L.CTS_SCTP_SHUTDOWN_ACK_SENT : L.CTS_SCTP_CLOSED;
  }
  return L.CTS_UDP;
}

/** Creates the flow of frame fr (slot f) toward backend `be`; both index slots are inserted.
 * Returns the flow index, 0 when the table is full. */
// @inline: one call site (newFlow), kept out of line it costs a call with eight arguments per new flow
@inline export function ctCreate(f: usize, fr: Frame, front: u32, bid: u32, be: Backend, nport: u32, flags: u32, replyHash: u32): u32 {
  const flow = ctAlloc();
  if (flow == 0) return 0;
  const e = flowAt(flow);
  addrCopy(e.clientAddr, fr.srcAddr);
  addrCopy(e.vipAddr, fr.dstAddr);
  addrCopy(e.backendAddr, be.addrPtr);
  e.cport = fr.sport;
  e.vport = fr.dport;
  e.bport = be.port;
  e.nport = <u16>nport;
  e.proto = fr.proto;
  e.family = fr.family;
  e.state = <u8>initialState(<u32>fr.proto, <u32>fr.tcpFlags);
  e.flags = <u8>flags;
  e.lastSeen = gNow;
  e.front = front;
  e.backendId = bid;
  e.clientPort = fr.inPort;
  macCopy(e.clientMacPtr, f + ETH_SRC);   // the client's MAC = source MAC of this frame
  macCopy(e.localMacPtr, f + ETH_DST);    // our MAC on the client side = its destination MAC
  e.created = gNow;
  e.replyHash = replyHash;
  idxInsert(fr.hash, flow << 1);
  idxInsert(replyHash, (flow << 1) | 1);
  return flow;
}

// ---- state machine -------------------------------------------------------------------------------
// TCP follows the kernel's nf_conntrack_proto_tcp in outline (no sequence tracking):
//   SYN ──reply SYN-ACK──► SYN_RECV ──orig ACK──► ESTABLISHED (confirmed)
//   MIDSTREAM ──reply without RST──► ESTABLISHED (confirmed: a valid answer to a picked-up flow)
//   ESTABLISHED, SYN_RECV, MIDSTREAM ──FIN from one side──► HALF_CLOSED_ORIG / _REPLY
//   HALF_CLOSED_ORIG / _REPLY ──FIN from the other side──► CLOSING
//   SYN, CLOSING ──FIN──► CLOSING;  any ──RST (either direction)──► CLOSING
// (the kernel's FIN from SYN_RECV or ESTABLISHED — a loose pick-up is ESTABLISHED there — goes
// to FIN_WAIT; from SYN_SENT it is invalid)
// A half-closed connection is still open one way (the kernel's FIN_WAIT / CLOSE_WAIT, which
// kube-proxy gives 1 h: --conntrack-tcp-timeout-close-wait); only both FINs or a RST end it.
// A pure SYN on a CLOSING flow never gets here: the flow is stale (assembly/stale.ts
// reopensClosed), freed, and the SYN creates a new flow with a fresh backend selection.
// Only ESTABLISHED and the half-closed states have long timeouts; SYN, SYN_RECV and MIDSTREAM have
// short ones. Every TCP state but ESTABLISHED may be evicted (evictable): half-closed and CLOSING ones too,
// confirmed or not, as the kernel's early drop takes FIN_WAIT / CLOSE_WAIT ones.

/** State after a FIN or RST: the first FIN of a flow that is open, or opening past the
 * backend's SYN-ACK (TCP_EST, TCP_SYN_RECV, TCP_MIDSTREAM: HALF_OPEN_CT_STATES), half-closes it
 * (`half`: the state for this direction's FIN; a repeated FIN of the same side keeps it); the
 * other side's FIN, a RST, or a FIN on a flow in TCP_SYN or TCP_CLOSING closes it. Only FIN and
 * RST segments get here: the data path's cost is unchanged. */
@inline function closeState(st: u32, fl: u32, half: u32): u32 {
  if ((fl & TCP_RST) != 0) return L.CTS_TCP_CLOSING;
  if (st == half || ((HALF_OPEN_CT_STATES >>> st) & 1) != 0) return half;
  return L.CTS_TCP_CLOSING;
}
// The TCP states a FIN half-closes (bit s = state s): the kernel's FIN from ESTABLISHED or
// SYN_RECV goes to FIN_WAIT (a mid-stream pick-up is ESTABLISHED there).
const HALF_OPEN_CT_STATES: u32 = (1 << L.CTS_TCP_EST) | (1 << L.CTS_TCP_SYN_RECV) | (1 << L.CTS_TCP_MIDSTREAM);

/** The SCTP state after a packet whose first chunk is `chunk` (`reply`: backend → client): the
 * kernel's nf_conntrack_proto_sctp table (sctp_conntracks), SHUTDOWN_SENT and SHUTDOWN_RECD as one
 * state (their rows are the same), without its verification-tag checks; a chunk the kernel counts
 * invalid in that state (a reply to a picked-up HEARTBEAT other than HEARTBEAT / HEARTBEAT-ACK)
 * leaves the state as it is. Other chunks (DATA, SACK, ...) change nothing. */
function sctpState(st: u32, chunk: u32, reply: bool): u32 {
  const hb = st == L.CTS_SCTP_HEARTBEAT_SENT;
  // from HEARTBEAT_SENT a client's chunk other than those below closes, a reply's is invalid
  const hbOther = hb ? (reply ? st : L.CTS_SCTP_CLOSED) : st;
  switch (chunk) {
    case SCTP_ABORT: return reply && hb ? st : L.CTS_SCTP_CLOSED;
    case SCTP_INIT:
      if (reply) return st;
      if (hb) return L.CTS_SCTP_COOKIE_WAIT;
      return st == L.CTS_SCTP_SHUTDOWN ? L.CTS_SCTP_CLOSED : st;
    case SCTP_INIT_ACK:
      if (reply && st == L.CTS_SCTP_CLOSED) return L.CTS_SCTP_COOKIE_WAIT;
      return hbOther;
    case SCTP_SHUTDOWN: return st == L.CTS_SCTP ? L.CTS_SCTP_SHUTDOWN : hbOther;
    case SCTP_SHUTDOWN_ACK:
      if (st == L.CTS_SCTP_SHUTDOWN || (hb && !reply)) return L.CTS_SCTP_SHUTDOWN_ACK_SENT;
      return st;
    case SCTP_ERROR: return reply && st == L.CTS_SCTP_COOKIE_ECHOED ? L.CTS_SCTP_CLOSED : hbOther;
    case SCTP_COOKIE_ECHO: return st == L.CTS_SCTP_COOKIE_WAIT ? L.CTS_SCTP_COOKIE_ECHOED : hbOther;
    case SCTP_COOKIE_ACK: return st == L.CTS_SCTP_COOKIE_ECHOED ? L.CTS_SCTP : hbOther;
    case SCTP_SHUTDOWN_COMPLETE: return st == L.CTS_SCTP_SHUTDOWN_ACK_SENT ? L.CTS_SCTP_CLOSED : hbOther;
    case SCTP_HEARTBEAT_ACK: return reply && hb ? L.CTS_SCTP : st;
    default: return st;   // HEARTBEAT, DATA, SACK, ...: unchanged
  }
}

/** SCTP packet on flow e (live only): the new state; entering CTS_SCTP confirms the flow (the
 * kernel's ASSURED, kept after). Returns whether last_seen is refreshed: not for a client's INIT
 * on a flow that stays CLOSED — the kernel does not renew the timeout of an INIT retransmit, so a
 * client (or a NAT before wdp) reusing the port cannot keep an entry alive indefinitely. Out of
 * line: the established TCP/UDP path that inlines stateOnOrig / stateOnReply stays as small. */
function sctpUpdate(e: CtFlow, chunk: u32, reply: bool): bool {
  const st = <u32>e.state;
  const ns = sctpState(st, chunk, reply);
  e.state = <u8>ns;
  if (ns == L.CTS_SCTP) e.flags = e.flags | <u8>L.CTF_CONFIRMED;
  return !(st == L.CTS_SCTP_CLOSED && ns == L.CTS_SCTP_CLOSED && chunk == SCTP_INIT && !reply);
}

/** Whether UDP flow e becomes a stream on this packet: it is not one yet, a reply was seen before
 * this packet, and its first packet was more than UDP_STREAM_MS ago (the kernel's
 * nf_conntrack_proto_udp: replied and "still active after two seconds"). */
@inline function udpStreams(e: CtFlow): bool {
  return <u32>e.state == L.CTS_UDP && (e.flags & L.CTF_REPLIED) != 0 && gNow - e.created > <u32>L.UDP_STREAM_MS;
}

/** Original-direction packet (live only). */
@inline export function stateOnOrig(e: CtFlow, fr: Frame): void {
  if (udpStreams(e)) e.state = <u8>L.CTS_UDP_REPLIED;
  else if (<u32>fr.proto == IPPROTO_TCP) {
    const fl = <u32>fr.tcpFlags;
    let st = <u32>e.state;
    if ((fl & (TCP_FIN | TCP_RST)) != 0) st = closeState(st, fl, L.CTS_TCP_HALF_CLOSED_ORIG);
    else if (st == L.CTS_TCP_SYN_RECV && (fl & (TCP_SYN | TCP_ACK)) == TCP_ACK) {
      // the client's ACK of the SYN-ACK: the handshake is complete in both directions
      st = L.CTS_TCP_EST;
      e.flags = e.flags | <u8>L.CTF_CONFIRMED;
    }
    e.state = <u8>st;
  } else if (<u32>fr.proto == IPPROTO_SCTP) {
    if (!sctpUpdate(e, <u32>fr.tcpFlags, false)) return;
  }
  e.lastSeen = gNow;
}

/** Reply-direction packet (live only). */
@inline export function stateOnReply(e: CtFlow, fr: Frame): void {
  let st = <u32>e.state;
  if (<u32>fr.proto == IPPROTO_TCP) {
    const fl = <u32>fr.tcpFlags;
    if ((fl & (TCP_FIN | TCP_RST)) != 0) st = closeState(st, fl, L.CTS_TCP_HALF_CLOSED_REPLY);
    else if (st == L.CTS_TCP_SYN) {
      if ((fl & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) st = L.CTS_TCP_SYN_RECV;
    } else if (st == L.CTS_TCP_MIDSTREAM) {
      st = L.CTS_TCP_EST;
      e.flags = e.flags | <u8>L.CTF_CONFIRMED;
    }
  } else if (<u32>fr.proto == IPPROTO_SCTP) {
    sctpUpdate(e, <u32>fr.tcpFlags, true);
    st = <u32>e.state;
  } else if (udpStreams(e)) {
    // (the first reply itself never makes a stream: CTF_REPLIED is set after this check)
    st = L.CTS_UDP_REPLIED;
  }
  e.state = <u8>st;
  e.flags = e.flags | <u8>L.CTF_REPLIED;
  e.lastSeen = gNow;
}

// ---- expiry, flush -----------------------------------------------------------------------------------
/** Expiry sweep: examines `budget` entries from the rotating cursor; returns how many it freed. */
export function expireSweep(budget: u32): u32 {
  if (budget > gCtMax) budget = gCtMax;
  let c = gExpireCursor;
  if (c == 0 || c > gCtMax) c = 1;
  let freed: u32 = 0;
  for (let k: u32 = 0; k < budget; k++) {
    const e = flowAt(c);
    if (e.state != L.CTS_NONE && flowExpired(e)) {
      ctFree(c);
      count(L.GC_CT_EXPIRED, 1);
      freed++;
    }
    c = nextCursor(c);
  }
  gExpireCursor = c;
  return freed;
}

/** Frees every expired flow; returns how many (counted in GC_CT_EXPIRED). */
export function expireAll(): u32 {
  let freed: u32 = 0;
  for (let f: u32 = 1; f <= gCtMax; f++) {
    const e = flowAt(f);
    if (e.state != L.CTS_NONE && flowExpired(e)) { ctFree(f); freed++; }
  }
  count(L.GC_CT_EXPIRED, freed);
  setFlowsActive(gActive);
  return freed;
}

/** Clears the index, every flow and the affinity table; rebuilds the free list 1 -> 2 -> ... */
export function ctFlushAll(): void {
  memory.fill(gCtIdx, 0, (gCtMask + 1) * L.CTI_SIZE);
  memory.fill(gCtFlows, 0, (gCtMax + 1) * L.CT_SIZE);
  memory.fill(gAff, 0, (gAffMask + 1) * L.AFF_SIZE);
  for (let f: u32 = 1; f <= gCtMax; f++) flowAt(f).nextFree = f < gCtMax ? f + 1 : 0;
  gFreeHead = gCtMax >= 1 ? 1 : 0;
  gActive = 0;
  gExpireCursor = 1;
  gEvictCursor = 1;
  setFlowsActive(0);
  fragFlushAll();
}
