// The route to each address a kept flow goes to (stale.ts keptRoute: a flow whose backend left,
// forwarded to its own address as plain routing would reach it), remembered per address. The
// lookup is a linear scan of the route table, longest prefix first (select.ts routeLookup): a
// node's table holds a host route per neighbour and a route per node's pod CIDR, so with 110 pods
// and 100 nodes a kept flow's packet cost ~4x an established one's (~570 vs ~120 ns; 1,100
// routes: ~1.8 us; docs/performance.md, "Forwarding core"). Every packet of a kept flow made that scan.
//
// A direct-mapped table of ROUTE_CACHE_SLOTS entries in static memory, keyed by (address,
// family), each stamped with CFG_TABLE_EPOCH: the host changes that word whenever it publishes
// tables (the only way the active set's routes change), so an entry holds exactly while the
// tables it was looked up in are in force. The word counts up and wraps after 2^32 publishes, when
// an old stamp would match again: a batch that sees it lower than the last batch did empties the
// cache (routeCacheEpoch; 128 KiB cleared once per 2^32 publishes). A slot another address took
// is looked up again. Kept flows to one pod share an entry. Not state: the answer is the scan's, whoever asked (a dry run
// may fill it too). Cost on a hit: an address hash and a 16-byte compare.
import * as L from "./layout";
import { Route } from "./records";
import { addrEq, addrCopy } from "./addr";
import { gTableEpoch, tRt } from "./regions";
import { routeLookup } from "./select";

const ROUTE_CACHE_SLOTS: u32 = 4096;   // a power of two: 128 KiB of static data (asconfig.json initialMemory)
const RC_SHIFT: u32 = 20;               // 32 - log2(ROUTE_CACHE_SLOTS): a slot from a hash's top bits
const RC_SIZE: u32 = 32;
const RC_ADDR = 0;      // 16 bytes
const RC_FAMILY = 16;   // u8: 4 | 6; 0 = empty
const RC_EPOCH = 20;    // u32: CFG_TABLE_EPOCH of the lookup
const RC_ROUTE = 24;    // u32: route index + 1; 0 = no route
const CACHE: usize = memory.data(<i32>(ROUTE_CACHE_SLOTS * RC_SIZE), 64);

/** Empties the cache (init: a core whose host starts its epochs again). */
export function routeCacheClear(): void { memory.fill(CACHE, 0, ROUTE_CACHE_SLOTS * RC_SIZE); }

let gSeenEpoch: u32 = 0;   // CFG_TABLE_EPOCH of the last batch

/** Once per batch, after loadConfig: an epoch below the last batch's went round past 0 (the host
 * only counts up, far fewer than 2^31 times between two batches), so entries stamped a round ago
 * could match again with other tables in force: the cache is emptied. */
export function routeCacheEpoch(): void {
  if (gTableEpoch < gSeenEpoch) routeCacheClear();
  gSeenEpoch = gTableEpoch;
}

/** routeLookup(addr, family), remembered while the tables are unchanged. */
export function cachedRouteLookup(addr: usize, family: u32): Route | null {
  const x = load<u32>(addr) ^ load<u32>(addr, 4) ^ load<u32>(addr, 8) ^ load<u32>(addr, 12);
  const e = CACHE + <usize>((x * 0x9E3779B1) >>> RC_SHIFT) * RC_SIZE;
  if (<u32>load<u8>(e, RC_FAMILY) == family && load<u32>(e, RC_EPOCH) == gTableEpoch && addrEq(e + RC_ADDR, addr)) {
    const i = load<u32>(e, RC_ROUTE);
    return i == 0 ? null : changetype<Route>(tRt + <usize>(i - 1) * L.RT_SIZE);
  }
  const rt = routeLookup(addr, family);
  addrCopy(e + RC_ADDR, addr);
  store<u8>(e, <u8>family, RC_FAMILY);
  store<u32>(e, gTableEpoch, RC_EPOCH);
  store<u32>(e, rt == null ? 0 : <u32>((changetype<usize>(rt) - tRt) / L.RT_SIZE) + 1, RC_ROUTE);
  return rt;
}
