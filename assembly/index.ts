// The forwarding core's exports. The host (src/core/host.ts) places the regions, fills the CONFIG
// block at config_ptr(), calls init(), then process() per batch. Semantics: docs/core.md.
export * from "./layout";
import { CFG, coreInit, coreProcess, coreFlush, coreExpireAll, coreActive } from "./core";
import { ctRestore } from "./ct-restore";

export function heap_base(): usize { return __heap_base; }

/** Address of the CFG_SIZE-byte CONFIG block (static, 64-byte aligned). */
export function config_ptr(): usize { return CFG; }

/** Validates CONFIG (magic, version, region geometry within memory), zeroes counters, conntrack
 * and affinity, builds the free list. 0 = ok; 1 bad magic, 2 bad version, 3 bad slot size/batch,
 * 4 region offset missing, 5 index/affinity size not a power of two, 6 conntrack index too small
 * (< 2 x flows + 2 slots), 7 a region ends beyond memory, 8 bad table-set offsets. */
export function init(): u32 { return coreInit(); }

/** Handles descriptors/slots 0..count-1 (clamped to CFG_BATCH_MAX) as one batch at time `now` ms. */
function processBatch(count: u32, now: u32): void { coreProcess(count, now); }
export { processBatch as process };

/** Clears all flows and the affinity table (counters other than ct_active are kept). */
export function ct_flush(): void { coreFlush(); }

/** Frees every expired flow at time `now`; returns how many (counted in GC_CT_EXPIRED). */
export function ct_expire_all(now: u32): u32 { return coreExpireAll(now); }

/** Flows in use. */
export function ct_active(): u32 { return coreActive(); }

/** Inserts the saved flow entry staged at `src` (CT_SIZE bytes, CT_REPLY_HASH set) through the
 * core's allocator and index; returns its flow index or 0 (table full). See ct-restore.ts. */
export function ct_restore(src: usize, origHash: u32): u32 { return ctRestore(src, origHash); }
