// The forwarding core's exports. The host (src/core/host.ts) places the regions, fills the CONFIG
// block at config_ptr(), calls init(), then process() per batch. Semantics: docs/core.md.
//
// Files, by stage (each imports only those before it, no cycles):
//   layout.ts     shared memory contract (also compiled by tsc for the host)
//   net.ts        wire-format constants        records.ts  typed views of the layout's records
//   addr.ts, hash.ts, checksum.ts              address helpers, the layout hash, checksums/CRC32c
//   regions.ts    CONFIG, region addresses, active table set, batch context, counters
//   frame.ts      the per-frame record: parse output, prefetch cache, decision
//   parse.ts      pass 1                       conntrack.ts  index, flows, expiry, state machine
//   select.ts     service map, source ranges, Maglev, affinity, routes
//   route-cache.ts the routes kept flows take, remembered while the tables are unchanged
//   snat.ts       SNAT decision and port allocation
//   rewrite.ts    NAT rewrite, TTL, checksums  icmp.ts  ICMP error translation
//   icmp-answer.ts the ICMP errors the core answers with  ttl.ts, mtu.ts  time exceeded, packet too big
//   reject.ts     a rejected packet's port unreachable and its source
//   ratelimit.ts  the rate limit of reject answers (per client, global)
//   prefetch.ts   the staged loads between the passes
//   trace.ts      trace records, the live trace filter and its match records
//   pipeline.ts   pass 2 and the batch loop
//   ct-restore.ts saved flows re-inserted through conntrack.ts (a daemon restart)
//   node-sweep.ts the flows' FLOW_NODE decided again when the node's addresses change
//   owner.ts, steer.ts  which worker owns a frame when several share an interface
export * from "./layout";
import { CFG, configError, loadConfig, clearCounters, beginBatch, setFlowsActive } from "./regions";
import { crcInit } from "./checksum";
import { ctFlushAll, ctFree, expireAll, expireSweep, flowsActive } from "./conntrack";
import { flowAt, gCtMax } from "./regions";
import { processBatch } from "./pipeline";
import { ctRestore, ctRecordedFront } from "./ct-restore";
import { nodeFlagSweep } from "./node-sweep";
import { steerBatch, steerRetiredStage, steerRetiredClear, steerRetiredAdd, steerRetiredFilterAdd, steerRetiredFilterHits, steerRetiredFilter, steerRetiredFilterSet } from "./steer";
import { ownerOf } from "./owner";
import { routeCacheClear } from "./route-cache";
import { traceFilterPtr } from "./trace";
import { rejectLimitPtr, rejectLimitClear, rejectLimitShare } from "./ratelimit";

let gInitialized: bool = false;

export function heap_base(): usize { return __heap_base; }

/** Address of the CFG_SIZE-byte CONFIG block (static, 64-byte aligned). */
export function config_ptr(): usize { return CFG; }

/** Address of the live trace filter block (TF_BLOCK_SIZE bytes, static; layout.ts, trace.ts). */
export function trace_filter_ptr(): usize { return traceFilterPtr(); }

/** Address of the reject rate limit block (RL_BLOCK_SIZE bytes, static; layout.ts, ratelimit.ts). */
export function reject_limit_ptr(): usize { return rejectLimitPtr(); }

/** 1: the reject rate limit's buckets are the node's, in the host's shared block (the imports
 * reject_limit_enter, reject_limit_bucket and reject_limit_leave copy them in and out;
 * ratelimit.ts); 0: this core's. */
export function reject_limit_share(on: u32): void { rejectLimitShare(on != 0); }

/** Validates CONFIG (magic, version, region geometry within memory), zeroes counters, conntrack
 * and affinity, builds the free list, forgets the reject rate limit's clients (its global bucket full). 0 = ok; 1 bad magic, 2 bad version, 3 bad slot size/batch,
 * 4 region offset missing, 5 index/affinity size not a power of two, 6 conntrack index too small
 * (< 2 x flows + 2 slots), 7 a region ends beyond memory, 8 bad table-set offsets. */
export function init(): u32 {
  const err = configError();
  if (err != 0) return err;
  crcInit();
  clearCounters();
  routeCacheClear();
  rejectLimitClear();
  gInitialized = true;
  ctFlushAll();
  return 0;
}

/** Handles descriptors/slots 0..count-1 (clamped to CFG_BATCH_MAX) as one batch at time `now` ms. */
function process_(count: u32, now: u32): void {
  if (gInitialized) processBatch(count, now);
}
export { process_ as process };

/** Clears all flows and the affinity table (counters other than ct_active are kept). */
export function ct_flush(): void {
  if (!gInitialized) return;
  loadConfig();
  ctFlushAll();
}

/** Frees every expired flow at time `now`; returns how many (counted in GC_CT_EXPIRED). */
export function ct_expire_all(now: u32): u32 {
  if (!gInitialized) return 0;
  loadConfig();
  beginBatch(now, true);
  return expireAll();
}

/** The expiry sweep a batch runs, without a batch: frees the expired flows among the next `budget`
 * entries of the sweep's rotating cursor at time `now` (counted in GC_CT_EXPIRED) and sets the
 * ct_active gauge; returns how many it freed. A worker with no frames calls it, so flows that
 * timed out leave the table (and the gauge) without traffic to sweep them. */
export function ct_expire_step(now: u32, budget: u32): u32 {
  if (!gInitialized) return 0;
  loadConfig();
  beginBatch(now, true);
  const freed = expireSweep(budget);
  setFlowsActive(flowsActive());
  return freed;
}

/** Frees flow `flow` (1..CT flows) when it is in use: the host's UDP conntrack cleanup of a
 * deleted Service port (src/core/udp-cleanup.ts). No counter. Returns whether it was in use. */
export function ct_free_flow(flow: u32): bool {
  if (!gInitialized) return false;
  loadConfig();
  if (flow == 0 || flow > gCtMax || <u32>flowAt(flow).state == 0) return false;
  ctFree(flow);
  setFlowsActive(flowsActive());
  return true;
}

/** Flows in use. */
export function ct_active(): u32 { return flowsActive(); }

/** Inserts the saved flow entry staged at `src` (CT_SIZE bytes, times on the clock of `now`; the
 * core hashes its keys and sets CT_REPLY_HASH) through the core's lookup, allocator and index;
 * returns its flow index, 0 (none free) or 0xffffffff (a live flow owns one of its keys). See
 * ct-restore.ts. */
export function ct_restore(src: usize, now: u32): u32 {
  if (!gInitialized) return 0;
  return ctRestore(src, now);
}

/** Decides every flow's FLOW_NODE again from the node addresses of the tables in force (after an
 * apply that changed them); returns how many flows changed. See node-sweep.ts. */
export function ct_node_sweep(): u32 {
  if (!gInitialized) return 0;
  return nodeFlagSweep();
}

/** The frontend id the core records a flow like the entry at `e` (CT_SIZE bytes in memory) under
 * when the service map has frontend `front` for its (VIP, port, protocol): front's cluster front
 * for a client it short-circuits, else front. On the table set in force. See ct-restore.ts. */
export function ct_recorded_front(e: usize, front: u32): u32 {
  if (!gInitialized) return front;
  return ctRecordedFront(e, front);
}

/** Several workers on one interface: the owning worker of frames first..count-1 into D_VERDICT
 * (STEER_LOCAL = this core's; STEER_RECHECK set: that worker steers it once more), returns how
 * many are another's. See steer.ts. */
export function steer(first: u32, count: u32): u32 {
  if (!gInitialized) return 0;
  return steerBatch(first, count);
}

/** Where the host stages a 16-byte address for steer_retired_add (steer.ts). */
export function steer_retired_stage(): usize { return steerRetiredStage(); }

/** Forgets every retired frontend address (steer.ts). */
export function steer_retired_clear(): void { steerRetiredClear(); }

/** The staged address of `family` is a frontend address an apply removed (steer.ts): 1, or 0
 * when the set is full. */
export function steer_retired_add(family: u32): u32 { return steerRetiredAdd(family) ? 1 : 0; }

/** The staged address (one older than the newest STEER_RETIRED_MAX) into the retired set's filter
 * (steer.ts): a bit, until the host ages it out (src/core/retired-fronts.ts). */
export function steer_retired_filter_add(): void { steerRetiredFilterAdd(); }

/** Where the retired set's filter bits are (STEER_RETIRED_FILTER_BITS / 8 bytes), for the host to
 * age out (steer.ts, src/core/retired-fronts.ts). */
export function steer_retired_filter(): usize { return steerRetiredFilter(); }

/** The host rewrote the filter; `bits` of it are set (steer.ts). */
export function steer_retired_filter_set(bits: u32): void { steerRetiredFilterSet(bits); }

/** Frames steered by an address only the retired set's filter holds (steer.ts). */
export function steer_retired_filter_hits(): f64 { return <f64>steerRetiredFilterHits(); }

/** Inspection export, for tests only (nothing in the daemon calls it): owner.ts ownerOf of the
 * 16-byte address at `addr` and `port` among `workers` (0 workers: 0). The daemon places saved
 * flows with a TypeScript copy of it (src/daemon/flow-placement.ts); test restart-owner-of checks
 * that the two agree. */
export function owner_of(addr: usize, port: u32, workers: u32): u32 {
  return workers == 0 ? 0 : ownerOf(addr, port, workers);
}
