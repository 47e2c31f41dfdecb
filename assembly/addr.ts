// 16-byte addresses (IPv6 as is, IPv4 in bytes 0..3 with bytes 4..15 zero) and 6-byte MACs.
@inline export function addrEq(a: usize, b: usize): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
}

@inline export function addrCopy(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src)); store<u64>(dst, load<u64>(src, 8), 8);
}

/** Writes the IPv4 address word w as a 16-byte address. */
@inline export function addrSet4(dst: usize, w: u32): void {
  store<u32>(dst, w); store<u32>(dst, 0, 4); store<u64>(dst, 0, 8);
}

@inline export function macCopy(dst: usize, src: usize): void {
  store<u32>(dst, load<u32>(src)); store<u16>(dst, load<u16>(src, 4), 4);
}

/** Prefix match of 16-byte addresses a and b on the first plen bits (network bit order). */
export function prefixMatch(a: usize, b: usize, plen: u32): bool {
  let bits = <i32>plen;
  for (let k: usize = 0; k < 16 && bits > 0; k += 4, bits -= 32) {
    const x = bswap<u32>(load<u32>(a + k) ^ load<u32>(b + k));
    const m: u32 = bits >= 32 ? 0xffffffff : ~(<u32>0xffffffff >>> <u32>bits);
    if ((x & m) != 0) return false;
  }
  return true;
}
