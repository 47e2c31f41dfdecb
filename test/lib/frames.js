// The one generator of numbered test frames for the port tests (native, pcap): byte-exact
// transport is checked by comparing what arrives with what was sent, so a frame only needs to be
// recognisable and different from every other.
import { parseMac } from '../../dist/src/util/addr.js';

/** An experimental ethertype (IEEE 802 local): nothing else on a test link uses it. */
export const TEST_ETHERTYPE = 0x88b5;

/**
 * A frame of `len` bytes (>= 19): Ethernet header (dst, src, ethertype), `seq` as a big-endian
 * u32 at byte 14, `tag` at byte 18, then bytes that depend on their position, `seq` and `tag`.
 */
export function numberedFrame(len, seq, { dst = '02:0b:00:00:00:02', src = '02:0a:00:00:00:01', ethertype = TEST_ETHERTYPE, tag = 0 } = {}) {
  const f = new Uint8Array(len);
  f.set(parseMac(dst), 0);
  f.set(parseMac(src), 6);
  f[12] = ethertype >> 8; f[13] = ethertype & 0xff;
  new DataView(f.buffer).setUint32(14, seq >>> 0);
  f[18] = tag;
  for (let i = 19; i < len; i++) f[i] = (i * 31 + seq * 7 + tag) & 0xff;
  return f;
}
