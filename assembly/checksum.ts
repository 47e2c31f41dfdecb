// One's-complement checksum arithmetic (RFC 1071, RFC 1624) and CRC32c (SCTP). Hot helpers are
// @inline so the optimizer folds them into the forwarding loop.
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
