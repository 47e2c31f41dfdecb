// IP fragments: the fragment table remembers a first fragment's ports by (src, dst, proto, family,
// IP ID) so the later fragments of its datagram (which carry no L4 header) are looked up in
// conntrack and translated like it — Cilium's fragment map, or what the kernel gets by
// reassembling before conntrack. No reassembly and no buffering: a later fragment that arrives
// before its first fragment is dropped (drop_fragment). Semantics: docs/core.md "Fragments".
import * as L from "./layout";
import { FragEntry } from "./records";
import { keyHash } from "./hash";
import { addrEq, addrCopy } from "./addr";
import { gNow, config } from "./regions";
import { Frame } from "./frame";

@inline function fragAt(base: usize, i: u32): FragEntry { return changetype<FragEntry>(base + <usize>i * L.FRAG_SIZE); }

@inline function fragMatch(e: FragEntry, fr: Frame): bool {
  return e.family == fr.family && e.proto == fr.proto && e.id == fr.fragId &&
    addrEq(e.srcAddr, fr.srcAddr) && addrEq(e.dstAddr, fr.dstAddr);
}

/** First entry of the frame's bucket. */
@inline function bucketOf(fr: Frame, mask: u32): u32 {
  return (keyHash(fr.srcAddr, fr.dstAddr, fr.fragId, <u32>fr.proto, <u32>fr.family) & mask) * <u32>L.FRAG_WAYS;
}

/** Remembers a first fragment's ports (live only): the entry with its key, else the bucket's first
 * empty one, else its oldest (ties: the first), is (over)written. Cost: one bucket, 4 x 48 bytes. */
export function fragRemember(fr: Frame): void {
  const c = config();
  const base = <usize>c.fragOff;
  if (base == 0) return;
  const b = bucketOf(fr, c.fragMask);
  let hit: i32 = -1, empty: i32 = -1, oldest: i32 = 0;
  let oldestAge: u32 = 0;
  for (let w: u32 = 0; w < <u32>L.FRAG_WAYS; w++) {
    const e = fragAt(base, b + w);
    if (e.family == 0) { if (empty < 0) empty = <i32>w; continue; }
    if (fragMatch(e, fr)) { hit = <i32>w; break; }
    const age = gNow - e.lastSeen;
    if (age > oldestAge) { oldestAge = age; oldest = <i32>w; }
  }
  const w = hit >= 0 ? hit : empty >= 0 ? empty : oldest;
  const e = fragAt(base, b + <u32>w);
  addrCopy(e.srcAddr, fr.srcAddr);
  addrCopy(e.dstAddr, fr.dstAddr);
  e.sport = fr.sport;
  e.dport = fr.dport;
  e.proto = fr.proto;
  e.family = fr.family;
  e.id = fr.fragId;
  e.lastSeen = gNow;
}

/** A later fragment: its first fragment's ports into the frame (true), or false when none is
 * remembered within CFG_TO_FRAG. */
export function fragFollow(fr: Frame): bool {
  const c = config();
  const base = <usize>c.fragOff;
  if (base == 0) return false;
  const b = bucketOf(fr, c.fragMask);
  for (let w: u32 = 0; w < <u32>L.FRAG_WAYS; w++) {
    const e = fragAt(base, b + w);
    if (e.family != 0 && fragMatch(e, fr)) {
      if (gNow - e.lastSeen > c.toFrag) return false;
      fr.sport = e.sport;
      fr.dport = e.dport;
      return true;
    }
  }
  return false;
}

/** Forgets every remembered fragment (init, ct_flush). */
export function fragFlushAll(): void {
  const c = config();
  if (c.fragOff != 0) memory.fill(<usize>c.fragOff, 0, <usize>(c.fragMask + 1) * L.FRAG_WAYS * L.FRAG_SIZE);
}
