// Small hot helpers: the layout hash, one's-complement checksum arithmetic, CRC32c.
// Everything here is @inline or tiny so the optimizer folds it into the forwarding loop.
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

// ---- one's-complement checksums ----------------------------------------------------------------
// The Internet checksum is byte-order independent (RFC 1071 §2(B)): summing 16-bit words loaded
// little-endian and storing the result little-endian gives the same bytes as doing it in network
// order. So no bswap anywhere here; every word must sit at an even offset from the start of the
// checksummed region, which holds for every field we touch.

/** Folds a 64-bit one's-complement accumulator to 16 bits. */
@inline export function fold(s: u64): u32 {
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  let r = <u32>s;
  r = (r & 0xffff) + (r >>> 16);
  r = (r & 0xffff) + (r >>> 16);
  return r;
}

/** Delta for replacing the 32-bit word `o` by `n` (RFC 1624 eqn 3: ~m + m'). */
@inline export function d32(o: u32, n: u32): u64 { return <u64>(~o) + <u64>n; }
@inline export function d16(o: u32, n: u32): u64 { return <u64>((~o) & 0xffff) + <u64>(n & 0xffff); }

/** Applies an accumulated delta to the checksum stored at p: HC' = ~(~HC + sum(~m + m')). */
@inline export function csumApply(p: usize, acc: u64): u32 {
  const old = <u32>load<u16>(p);
  const r = (~fold(<u64>((~old) & 0xffff) + acc)) & 0xffff;
  store<u16>(p, <u16>r);
  return r;
}

/** Plain one's-complement sum of len bytes at p (64-bit accumulator, not folded). */
export function sumBytes(p: usize, len: u32): u64 {
  let s: u64 = 0;
  let i: u32 = 0;
  while (i + 8 <= len) {
    const w = load<u64>(p + i);
    s += (w & 0xffffffff) + (w >> 32);
    i += 8;
  }
  while (i + 2 <= len) { s += <u64>load<u16>(p + i); i += 2; }
  if (i < len) s += <u64>load<u8>(p + i);
  return s;
}

/** Final checksum value (to store little-endian) from an accumulator. */
@inline export function csumFinal(s: u64): u32 { return (~fold(s)) & 0xffff; }

// ---- CRC32c (SCTP, RFC 4960 appendix B) ----------------------------------------------------------
// Slice-by-8 tables (8 KiB), built once by crcInit(). Cost: 8 KiB static data; ~1 byte/cycle.
const CRC_TABLE: usize = memory.data(8 * 1024, 64);

export function crcInit(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = (c & 1) ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    store<u32>(CRC_TABLE + (i << 2), c);
  }
  for (let i: u32 = 0; i < 256; i++) {
    let c = load<u32>(CRC_TABLE + (i << 2));
    for (let t: u32 = 1; t < 8; t++) {
      c = load<u32>(CRC_TABLE + ((c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(CRC_TABLE + (t << 10) + (i << 2), c);
    }
  }
}

@inline function tb(t: u32, i: u32): u32 { return load<u32>(CRC_TABLE + (t << 10) + ((i & 0xff) << 2)); }

/** CRC32c of len bytes at p (initial ~0, final complement), as SCTP wants it. */
export function crc32c(p: usize, len: u32): u32 {
  let c: u32 = 0xffffffff;
  let i: u32 = 0;
  while (i + 8 <= len) {
    const a = load<u32>(p + i) ^ c;
    const b = load<u32>(p + i + 4);
    c = tb(7, a) ^ tb(6, a >>> 8) ^ tb(5, a >>> 16) ^ tb(4, a >>> 24) ^
        tb(3, b) ^ tb(2, b >>> 8) ^ tb(1, b >>> 16) ^ tb(0, b >>> 24);
    i += 8;
  }
  while (i < len) { c = tb(0, c ^ <u32>load<u8>(p + i)) ^ (c >>> 8); i++; }
  return ~c;
}
