// The prefetch pass over a parsed chunk. Wasm has no prefetch instruction. What it does have:
// independent loads issued back to back, which the CPU overlaps instead of paying them one by one
// in the decision pass. A frame's path is a chain of dependent misses (index slot -> flow entry ->
// backend and frontend entries and counters; for a new flow: index slot -> service-map slot -> frontend -> Maglev
// slot and backend list -> backend -> reply index slot), so each link is a stage over the whole chunk: a compute
// loop writes up to three addresses per frame (Frame.touchA/B/C, 0 = nothing: address 0 is static
// data, always cached), then touch() loads them in a loop of a few instructions per frame. The
// tight loop matters: only a loop body small enough for many iterations to sit in the reorder
// window keeps many misses in flight (measurements: docs/performance.md,
// "Forwarding core").
//
// Everything here only reads shared state, and calls the same functions as the decision it
// prepares (svcLookupH, maglevSlot, maglevSlotBackend, snatKind, snatFirstPort, replyKeyHash): what it computes for
// a likely new flow is a pure function of the frame and the batch's table set, cached in the
// frame record (Frame.spec) so the decision does not redo it. A frame counts as a new flow when
// probing from its home index slot meets an empty slot before its hash (probeNear).
import * as L from "./layout";
import { Backend } from "./records";
import { svcKeyHash } from "./hash";
import {
  gBeCnt, gBeCntMax, gSvcCnt, gSvcMax, tSm, tBeMax, tFeMax, flowAt, backendAt, frontendAt,
} from "./regions";
import { probeNear, homeSlot, replyKeyHash } from "./conntrack";
import { svcLookupH, svcSlotAt, maglevSlot, maglevList, maglevSlotBackend } from "./select";
import { snatKind, snatSource, snatRangeOk, snatFirstPort, snatReplyHash, SNAT_NONE } from "./snat";
import { Frame, frameAt, SPEC_SVCH, SPEC_FRONT, SPEC_BID, SPEC_RHASH } from "./frame";

@inline function setTouch(fr: Frame, a: usize, b: usize, c: usize): void {
  fr.touchA = <u32>a; fr.touchB = <u32>b; fr.touchC = <u32>c; fr.touchD = 0;
}

function touch(n: u32): u32 {
  let sink: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    sink ^= load<u32>(fr.touchA) ^ load<u32>(fr.touchB) ^ load<u32>(fr.touchC) ^ load<u32>(fr.touchD);
  }
  return sink;
}

@inline function svcCountersPtr(front: u32): usize { return front <= gSvcMax ? gSvcCnt + <usize>front * L.PC_SIZE : 0; }
@inline function beCountersPtr(bid: u32): usize { return bid <= gBeCntMax ? gBeCnt + <usize>bid * L.PC_SIZE : 0; }

/** Loads what the chunk's n frames will need; returns a value that depends on every load (the
 * caller keeps it, so the loads cannot be optimized away). */
export function prefetchChunk(n: u32): u32 {
  let sink: u32 = 0;
  // 1: home index slots (the loop is already tight: no separate touch())
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    if (fr.hasPorts) sink ^= load<u32>(homeSlot(fr.hash), L.CTI_REF);
  }
  // 2: the flow entry the frame's index slot points to (both of its cache lines), loaded right
  // here: for an all-established chunk this is the last miss-bound stage, kept as a plain loop.
  let spec: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    if (!fr.hasPorts) continue;
    const ref = probeNear(fr.hash);
    if (ref > 1) {
      const e = flowAt(ref >>> 1).ptr;
      sink ^= load<u32>(e) ^ load<u32>(e, L.CT_SIZE - 4);
    } else if (ref == 0 && tSm != 0) {
      fr.spec = SPEC_SVCH;
      spec = 1;
    }
  }
  if (spec) {
    // likely new flows: the service-map hash and its home slot
    for (let k: u32 = 0; k < n; k++) {
      const fr = frameAt(k);
      let ta: usize = 0;
      if (fr.spec) {
        const sh = svcKeyHash(fr.dstAddr, <u32>fr.dport, <u32>fr.proto, <u32>fr.family);
        fr.specSvcHash = sh;
        ta = changetype<usize>(svcSlotAt(sh));
      }
      setTouch(fr, ta, 0, 0);
    }
    sink ^= touch(n);
  }
  // 3: existing flow -> its backend entry, its frontend entry (stale.ts heldFrontId) and their
  // counters; likely new flow -> service lookup, frontend
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    let ta: usize = 0, tb: usize = 0, tc: usize = 0, td: usize = 0;
    if (fr.hasPorts) {
      if (fr.spec) {
        const front = svcLookupH(fr.specSvcHash, fr.dstAddr, <u32>fr.dport, <u32>fr.proto, <u32>fr.family);
        fr.specFront = front;
        fr.spec = SPEC_SVCH | SPEC_FRONT;
        if (front != 0) ta = changetype<usize>(frontendAt(front));
      } else {
        const ref = probeNear(fr.hash);
        if (ref > 1) {
          const e = flowAt(ref >>> 1);
          const bid = e.backendId;
          if (bid <= tBeMax) ta = changetype<usize>(backendAt(bid));
          tb = beCountersPtr(bid);
          const front = e.front;
          tc = svcCountersPtr(front);
          if (front <= tFeMax) td = changetype<usize>(frontendAt(front));
        }
      }
    }
    setTouch(fr, ta, tb, tc);
    fr.touchD = <u32>td;
  }
  sink ^= touch(n);
  if (!spec) return sink;
  // 4: likely new flow on a plain (non-affinity) frontend with endpoints: its Maglev slot and
  // its backend list, which stage 5 reads the slot's entry of
  spec = 0;
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    let ta: usize = 0, tb: usize = 0, tc: usize = 0;
    if ((fr.spec & SPEC_FRONT) != 0 && fr.specFront != 0) {
      const fe = frontendAt(fr.specFront);
      if ((fe.flags & L.FEF_AFFINITY) == 0 && fe.maglevSize != 0) {
        // maglevPick split in two (slot address here, the slot and its list entry in stage 5) so
        // the misses overlap with the other frames'
        ta = maglevSlot(fe, fr.hash);
        if (ta != 0) {
          // the list's first and (up to 16 backends) last entry: the one or two cache lines a
          // short list spans
          tb = maglevList(fe);
          const last = fe.nBackends < 16 ? fe.nBackends : 16;
          tc = tb + (<usize>(last - 1) << 2);
        }
        fr.specBackend = 0;
        fr.spec = SPEC_SVCH | SPEC_FRONT | SPEC_BID;
        spec = 1;
      }
    }
    setTouch(fr, ta, tb, tc);
  }
  sink ^= touch(n);
  if (!spec) return sink;
  // 5: the picked backend's entry
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    let ta: usize = 0;
    if ((fr.spec & SPEC_BID) != 0) {
      const bid = maglevSlotBackend(frontendAt(fr.specFront), <usize>fr.touchA);
      fr.specBackend = bid;
      if (bid != 0 && bid <= tBeMax) ta = changetype<usize>(backendAt(bid));
    }
    setTouch(fr, ta, 0, 0);
  }
  sink ^= touch(n);
  // 6: the reply key's index slot (the clash check and the insert) or, when the flow will be
  // masqueraded, the first SNAT port probe's slot; and the counters the frame will add to
  for (let k: u32 = 0; k < n; k++) {
    const fr = frameAt(k);
    let ta: usize = 0, tb: usize = 0, tc: usize = 0;
    const beP = <usize>fr.touchA;
    if (beP != 0) {
      const family = <u32>fr.family, proto = <u32>fr.proto;
      const bid = fr.specBackend, front = fr.specFront;
      const b = changetype<Backend>(beP);
      const bport = <u32>b.port;
      if (<u32>b.family == family) {
        // FEF_MASQUERADE only: a flow newFlow masquerades for its local source (an eTP Local
        // frontend's short-circuit, FEF_MASQUERADE_OUTSIDE) costs a detector scan to know, so it is
        // guessed unmasqueraded here — a wasted touch only: the decision uses specReplyHash only
        // without SNAT and for the same frontend
        const sk = snatKind((frontendAt(front).flags & L.FEF_MASQUERADE) != 0, fr.srcAddr, b.addrPtr, family);
        if (sk != SNAT_NONE) {
          if (snatRangeOk()) {
            ta = homeSlot(snatReplyHash(b.addrPtr, snatSource(sk, family), bport, snatFirstPort(fr.hash), proto));
          }
        } else {
          const rh = replyKeyHash(b.addrPtr, fr.srcAddr, bport, <u32>fr.sport, proto, family);
          fr.specReplyHash = rh;
          fr.spec = SPEC_SVCH | SPEC_FRONT | SPEC_BID | SPEC_RHASH;
          ta = homeSlot(rh);
        }
      }
      tb = beCountersPtr(bid);
      tc = svcCountersPtr(front);
    }
    setTouch(fr, ta, tb, tc);
  }
  sink ^= touch(n);
  return sink;
}
