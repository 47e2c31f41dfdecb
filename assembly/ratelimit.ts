// The rate limit of reject answers (ICMP / ICMPv6 port unreachable, time exceeded): what the kernel applies to
// the ICMP errors kube-proxy's `reject` makes (net/ipv4/icmp.c, net/ipv6/icmp.c), so a flood of
// packets to a refused service — spoofed or not — is not reflected at its own rate. Two token
// buckets, with the kernel's default values (layout.ts "Reject rate limit" has the block): one per
// client address (a burst of RL_HOST_BURST answers, then one per the family's interval) in a
// fixed table of RL_BUCKETS x RL_WAYS entries, and one for all clients (RL_GLOBAL_PER_SEC, a burst
// of RL_GLOBAL_BURST). As current kernels (CVE-2024-47678): the global bucket is only looked at first, the client's
// is charged, and the global one only for an answer the client's let through. Semantics:
// docs/core.md "Reject rate limit". Only the reject path calls it; nothing allocates.
// Several workers (each its own core) keep the node's buckets in one shared block the host maps
// (src/core/shared-reject-limit.ts): with sharing on, a decision copies the global bucket in from
// it (the host's reject_limit_enter, under the block's lock, unless a look at the global bucket
// and the client's without the lock already refuses: it is given the client to find its entry), and the client's bucket only when
// the global one lets it be looked at (reject_limit_bucket), decides here, and copies back what it
// changed (reject_limit_leave). A worker that cannot take the lock at once (another
// one holds it for longer than the host spins) does not answer: limited, never over the limit.
import * as L from "./layout";
import { affHash } from "./hash";
import { addrEq, addrCopy } from "./addr";
import { gNow, gLive } from "./regions";

const BLOCK: usize = memory.data(L.RL_BLOCK_SIZE, 64);
const ANSWER: u32 = 1000;                                // one answer, in thousandths (global credit)
const GLOBAL_CAP: u32 = <u32>L.RL_GLOBAL_BURST * ANSWER;
const GLOBAL_REFILL_MAX_MS: u32 = 1000;                  // elapsed time counted at most (no overflow; 50 ms already fill it)

@external("env", "reject_limit_enter") declare function sharedEnter(now: u32, bucket: u32, client: usize, family: u32): u32;
@external("env", "reject_limit_bucket") declare function sharedBucket(bucket: u32): void;
@external("env", "reject_limit_leave") declare function sharedLeave(bucket: u32, write: u32): void;

/** With sharing: whether this decision copied its client bucket in (sharedBucket). */
let gBucketIn = false;

/** Whether the buckets are the node's, shared with other workers' cores through the host. */
let gShared = false;

/** The buckets kept in the host's shared block (on) or in this core's alone (off). */
export function rejectLimitShare(on: bool): void { gShared = on; }

/** Address of the block (RL_BLOCK_SIZE bytes, static, 64-byte aligned). */
export function rejectLimitPtr(): usize { return BLOCK; }

/** Every client forgotten, the global bucket full (init). */
export function rejectLimitClear(): void {
  memory.fill(BLOCK, 0, L.RL_BLOCK_SIZE);
  store<u32>(BLOCK, GLOBAL_CAP, L.RL_CREDIT);
}

@inline function entryAt(i: u32): usize { return BLOCK + L.RL_ENTRIES + <usize>i * L.RLE_SIZE; }

/** Whether an answer to `client` (16 bytes) of `family` may go now. Live, the buckets are refilled
 * to now and charged for an answer that goes; a dry run changes nothing. A client not in its
 * bucket's RL_WAYS entries starts with a full burst, in the first empty entry, else in the one
 * refilled longest ago (largest u32(now - last); ties: the first). */
export function rejectAllowed(client: usize, family: u32): bool {
  const bucket = affHash(client, family) & (<u32>L.RL_BUCKETS - 1);
  if (!gShared) return decide(client, family, bucket);
  if (sharedEnter(gNow, bucket, client, family) == 0) return false;
  gBucketIn = false;
  const ok = decide(client, family, bucket);
  sharedLeave(bucket, !gLive ? 0 : gBucketIn ? 2 : 1);
  return ok;
}

/** rejectAllowed on the block's global bucket and client bucket `bucket`. */
function decide(client: usize, family: u32, bucket: u32): bool {
  const now = gNow;
  let elapsed = now - load<u32>(BLOCK, L.RL_STAMP);
  if (elapsed > GLOBAL_REFILL_MAX_MS) elapsed = GLOBAL_REFILL_MAX_MS;
  let credit = load<u32>(BLOCK, L.RL_CREDIT) + elapsed * <u32>L.RL_GLOBAL_PER_SEC;
  if (credit > GLOBAL_CAP) credit = GLOBAL_CAP;
  if (credit < ANSWER) {
    if (gLive) { store<u32>(BLOCK, credit, L.RL_CREDIT); store<u32>(BLOCK, now, L.RL_STAMP); }
    return false;
  }
  if (gShared) { sharedBucket(bucket); gBucketIn = true; }
  const ivl: u32 = family == 4 ? <u32>L.RL_HOST_INTERVAL_V4_MS : <u32>L.RL_HOST_INTERVAL_V6_MS;
  const cap = ivl * <u32>L.RL_HOST_BURST;
  const first = bucket * <u32>L.RL_WAYS;
  let hit: i32 = -1, empty: i32 = -1, oldest: i32 = 0;
  let oldestAge: u32 = 0;
  for (let w: u32 = 0; w < <u32>L.RL_WAYS; w++) {
    const e = entryAt(first + w);
    const fam = <u32>load<u8>(e, L.RLE_FAMILY);
    if (fam == 0) { if (empty < 0) empty = <i32>w; continue; }
    if (fam == family && addrEq(e + L.RLE_ADDR, client)) { hit = <i32>w; break; }
    const age = now - load<u32>(e, L.RLE_LAST);
    if (age > oldestAge) { oldestAge = age; oldest = <i32>w; }
  }
  let tokens = cap;
  if (hit >= 0) {
    const e = entryAt(first + <u32>hit);
    let since = now - load<u32>(e, L.RLE_LAST);
    if (since > cap) since = cap;
    tokens = load<u32>(e, L.RLE_TOKENS) + since;
    if (tokens > cap) tokens = cap;
  }
  const ok = tokens >= ivl;
  if (gLive) {
    const e = entryAt(first + <u32>(hit >= 0 ? hit : empty >= 0 ? empty : oldest));
    addrCopy(e + L.RLE_ADDR, client);
    store<u8>(e, <u8>family, L.RLE_FAMILY);
    store<u32>(e, ok ? tokens - ivl : tokens, L.RLE_TOKENS);
    store<u32>(e, now, L.RLE_LAST);
    store<u32>(BLOCK, ok ? credit - ANSWER : credit, L.RL_CREDIT);
    store<u32>(BLOCK, now, L.RL_STAMP);
  }
  return ok;
}
