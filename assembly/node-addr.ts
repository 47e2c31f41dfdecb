// The node's own addresses, gathered once per batch for the question every forwarded frame now
// asks: is the node itself at one end? Such a frame keeps its TTL / hop limit (local delivery and
// the node's own output take no decrement: docs/core.md "Time exceeded"), so a routed packet asks
// it of its source and destination, and a new flow of its client and backend (FLOW_NODE).
//
// The detector's node entries (RTK_LOCAL_NODE: the node and masquerade addresses, host prefixes)
// and the SNAT addresses are copied into two small arrays at the start of each batch (a scan of a
// handful of entries per batch), with a filter of their last bytes; a frame tests its two
// addresses' last bytes against the filter and compares only on a hit. Measured on the routed
// path with a pod entry and four node entries (bench/profile-core.mjs-style, 2 CPUs under load):
// the scan of the local-source entries per frame cost ~16 ns a frame (+18%), the compares alone
// ~3-6 ns, the filter in front of them see docs/core.md. A node entry that is not a host prefix,
// or more than NODE_MAX of a family, leaves the general scan in force (select.ts nodeAddresses)
// for the batch, the filter all set.
import * as L from "./layout";
import { Route } from "./records";
import { tRt, tRtCount, tLocalCount, hasSnat, snatAddr } from "./regions";
import { addrEq } from "./addr";
import { nodeAddresses } from "./select";

/** nodeEnds: the first address is the node itself (bit 0), the second is (bit 1). */
export const NODE_CLIENT: u32 = 1;
export const NODE_BACKEND: u32 = 2;

const NODE_MAX: u32 = 16;
const V4: usize = memory.data(<i32>(NODE_MAX * 4), 16);
const V6: usize = memory.data(<i32>(NODE_MAX * 16), 16);
let gN4: u32 = 0;
let gN6: u32 = 0;
let gWide: bool = false;   // nodeEnds scans the entries (a prefix that is no host address, or too many)
// A filter in front of the compares: per family 256 bits, bit i set when a node address of the
// family ends in byte i (all set while gWide). An address whose last byte has no bit is no node
// address: most frames (pods, clients) stop there, two byte loads and tests.
const FILTER: usize = memory.data(64, 16);   // [0..31] IPv4, [32..63] IPv6

@inline function filterSet(family: u32, last: u32): void {
  const p = FILTER + (family == 4 ? 0 : 32) + <usize>(last >>> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) | (<u32>1 << (last & 7))));
}
@inline function filterHas(f: usize, last: u32): bool {
  return ((<u32>load<u8>(f + <usize>(last >>> 3)) >>> (last & 7)) & 1) != 0;
}

@inline function add4(a: u32): void {
  filterSet(4, a >>> 24);   // (the address's last byte: the high byte of the little-endian load)
  if (gN4 < NODE_MAX) { store<u32>(V4 + (<usize>gN4 << 2), a); gN4++; } else gWide = true;
}
@inline function add6(p: usize): void {
  filterSet(6, <u32>load<u8>(p, 15));
  if (gN6 < NODE_MAX) {
    const d = V6 + (<usize>gN6 << 4);
    store<u64>(d, load<u64>(p)); store<u64>(d, load<u64>(p, 8), 8);
    gN6++;
  } else gWide = true;
}

/** Once per batch, after loadConfig and loadTableSet: the node's addresses of the tables and
 * CONFIG in force. */
export function nodeAddrLoad(): void {
  gN4 = 0; gN6 = 0; gWide = false;
  memory.fill(FILTER, 0, 64);
  if (hasSnat(4)) add4(load<u32>(snatAddr(4)));
  if (hasSnat(6)) add6(snatAddr(6));
  for (let i: u32 = 0; i < tLocalCount; i++) {
    const r = changetype<Route>(tRt + <usize>(tRtCount + i) * L.RT_SIZE);
    if (<u32>r.kind != L.RTK_LOCAL_NODE) continue;
    const family = <u32>r.family, plen = <u32>r.plen;
    if (family == 4 && plen == 32) add4(load<u32>(r.addrPtr));
    else if (family == 6 && plen == 128) add6(r.addrPtr);
    else gWide = true;
  }
  if (gWide) memory.fill(FILTER, 0xff, 64);
}

/** Which of `a`, `b` (16-byte addresses of `family`) are the node itself — the SNAT address of the
 * family or a node address (snat.ts nodeItself): NODE_CLIENT | NODE_BACKEND, 0 = neither. Needs
 * nodeAddrLoad of this batch. */
@inline export function nodeEnds(a: usize, b: usize, family: u32): u32 {
  const f = FILTER + (family == 4 ? 0 : 32);
  const last: usize = family == 4 ? 3 : 15;
  if (!filterHas(f, <u32>load<u8>(a + last)) && !filterHas(f, <u32>load<u8>(b + last))) return 0;
  return nodeEndsCompare(a, b, family);
}

/** nodeEnds past the filter: the compares (or the scan). */
function nodeEndsCompare(a: usize, b: usize, family: u32): u32 {
  let r: u32 = 0;
  if (gWide) {
    r = nodeAddresses(a, b, family);
    if (hasSnat(family)) {
      const s = snatAddr(family);
      if (addrEq(a, s)) r |= NODE_CLIENT;
      if (addrEq(b, s)) r |= NODE_BACKEND;
    }
    return r;
  }
  if (family == 4) {
    const x = load<u32>(a), y = load<u32>(b);
    for (let i: u32 = 0; i < gN4; i++) {
      const v = load<u32>(V4 + (<usize>i << 2));
      if (v == x) r |= NODE_CLIENT;
      if (v == y) r |= NODE_BACKEND;
    }
    return r;
  }
  const x0 = load<u64>(a), x1 = load<u64>(a, 8), y0 = load<u64>(b), y1 = load<u64>(b, 8);
  for (let i: u32 = 0; i < gN6; i++) {
    const p = V6 + (<usize>i << 4);
    const v0 = load<u64>(p), v1 = load<u64>(p, 8);
    if (v0 == x0 && v1 == x1) r |= NODE_CLIENT;
    if (v0 == y0 && v1 == y1) r |= NODE_BACKEND;
  }
  return r;
}
