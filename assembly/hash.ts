// The layout hash (assembly/layout.ts): flow hash (conntrack index and Maglev), service-map hash,
// affinity hash. All @inline so the optimizer folds them into the forwarding loop.
import { HASH_SEED, HASH_M1, HASH_M2, HASH_ADD, HASH_F1, HASH_F2 } from "./layout";

// ---- the layout hash (assembly/layout.ts; src/core/hash.ts must give identical results) -------
@inline export function hashStart(): u32 { return <u32>HASH_SEED; }

@inline export function hashMix(h: u32, w: u32): u32 {
  h ^= w * <u32>HASH_M1;
  h = rotl<u32>(h, 13);
  return h * <u32>HASH_M2 + <u32>HASH_ADD;
}

@inline export function hashFinish(h: u32): u32 {
  h ^= h >>> 16; h *= <u32>HASH_F1;
  h ^= h >>> 13; h *= <u32>HASH_F2;
  h ^= h >>> 16;
  return h;
}

/** Flow hash of (src[16], dst[16], sport | dport << 16, proto): the conntrack index hash and the
 * Maglev selection hash at once, so a packet is hashed exactly once. */
@inline export function flowHash(src: usize, dst: usize, ports: u32, proto: u32): u32 {
  let h = hashStart();
  h = hashMix(h, load<u32>(src, 0)); h = hashMix(h, load<u32>(src, 4));
  h = hashMix(h, load<u32>(src, 8)); h = hashMix(h, load<u32>(src, 12));
  h = hashMix(h, load<u32>(dst, 0)); h = hashMix(h, load<u32>(dst, 4));
  h = hashMix(h, load<u32>(dst, 8)); h = hashMix(h, load<u32>(dst, 12));
  h = hashMix(h, ports);
  h = hashMix(h, proto);
  return hashFinish(h);
}

/** flowHash of IPv4 addresses (16-byte form: the word, then three zero words) given as words.
 * Same result as flowHash; the zero words' multiplies fold away (6 of 10 rounds lose their
 * multiply), which shortens the hash's serial dependency chain on the IPv4 fast path. */
@inline export function flowHash4(src: u32, dst: u32, ports: u32, proto: u32): u32 {
  let h = hashStart();
  h = hashMix(h, src); h = hashMix(h, 0); h = hashMix(h, 0); h = hashMix(h, 0);
  h = hashMix(h, dst); h = hashMix(h, 0); h = hashMix(h, 0); h = hashMix(h, 0);
  h = hashMix(h, ports);
  h = hashMix(h, proto);
  return hashFinish(h);
}

/** svcHash of an IPv4 address given as its word (see flowHash4). */
@inline export function svcHash4(addr: u32, port: u32, proto: u32, family: u32): u32 {
  let h = hashStart();
  h = hashMix(h, addr); h = hashMix(h, 0); h = hashMix(h, 0); h = hashMix(h, 0);
  h = hashMix(h, port | (proto << 16) | (family << 24));
  return hashFinish(h);
}

/** Affinity hash of (client[16], front id); also used for Maglev selection on affinity frontends. */
@inline export function affHash(client: usize, front: u32): u32 {
  let h = hashStart();
  h = hashMix(h, load<u32>(client, 0)); h = hashMix(h, load<u32>(client, 4));
  h = hashMix(h, load<u32>(client, 8)); h = hashMix(h, load<u32>(client, 12));
  h = hashMix(h, front);
  return hashFinish(h);
}

/** Service-map hash: (addr[16], port | proto << 16 | family << 24). */
@inline export function svcHash(addr: usize, port: u32, proto: u32, family: u32): u32 {
  let h = hashStart();
  h = hashMix(h, load<u32>(addr, 0)); h = hashMix(h, load<u32>(addr, 4));
  h = hashMix(h, load<u32>(addr, 8)); h = hashMix(h, load<u32>(addr, 12));
  h = hashMix(h, port | (proto << 16) | (family << 24));
  return hashFinish(h);
}

/** Flow hash of a key whose addresses are 16-byte values of `family`: the IPv4 form skips the zero
 * words' multiplies (flowHash4), the result is the same. */
@inline export function keyHash(src: usize, dst: usize, ports: u32, proto: u32, family: u32): u32 {
  return family == 4 ? flowHash4(load<u32>(src), load<u32>(dst), ports, proto) : flowHash(src, dst, ports, proto);
}

/** Service-map hash of (addr, port, proto, family), IPv4 through svcHash4 (same result). */
@inline export function svcKeyHash(addr: usize, port: u32, proto: u32, family: u32): u32 {
  return family == 4 ? svcHash4(load<u32>(addr), port, proto, 4) : svcHash(addr, port, proto, family);
}
