// Checksums computed from scratch over whole packets. Deliberately independent of the core
// (which updates checksums incrementally, RFC 1624): tests recompute everything here and compare,
// so a shared bug cannot hide. Cost: O(packet length) per call — test/trace use only.

/** One's-complement sum of 16-bit big-endian words of bytes[start, end), folded to 16 bits,
 *  NOT complemented. An odd trailing byte is padded with zero (RFC 1071). */
export function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The internet checksum (RFC 1071) of a byte range: complement of the one's-complement sum. */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  return (~onesSum(bytes, start, end, initial)) & 0xffff;
}

/** One's-complement sum of the TCP/UDP/ICMPv6 pseudo header (RFC 793 / RFC 8200 section 8.1).
 *  `src`/`dst` are 4-byte (v4) or 16-byte (v6) address bytes — or 16-byte layout buffers, in which
 *  case `family` selects how many bytes count. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, proto: number, l4Length: number, family: 4 | 6): number {
  const n = family === 4 ? 4 : 16;
  let sum = 0;
  for (let i = 0; i < n; i += 2) sum += ((src[i] << 8) | src[i + 1]) + ((dst[i] << 8) | dst[i + 1]);
  if (family === 4) sum += proto + l4Length;
  else sum += (l4Length >>> 16) + (l4Length & 0xffff) + proto;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

let crcTable: Uint32Array | undefined;
function crc32cTable(): Uint32Array {
  if (crcTable) return crcTable;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1; // reflected Castagnoli
    t[n] = c >>> 0;
  }
  return (crcTable = t);
}

/** CRC32c (Castagnoli, reflected, init and final xor 0xffffffff) as used by SCTP (RFC 4960 App. B;
 *  placed in the packet least-significant byte first). crc32c("123456789") = 0xe3069283. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = crc32cTable();
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** SCTP checksum of an SCTP packet at bytes[start, end): CRC32c with the checksum field zeroed. */
export function sctpChecksum(bytes: Uint8Array, start: number, end: number): number {
  const copy = bytes.slice(start, end);
  copy[8] = copy[9] = copy[10] = copy[11] = 0;
  return crc32c(copy);
}

function rd16(b: Uint8Array, o: number): number { return (b[o] << 8) | b[o + 1]; }

interface L3Info { family: 4 | 6; src: Uint8Array; dst: Uint8Array; proto: number; l4: number; end: number; firstFragment: boolean; isFragment: boolean }

/** Locate the L3/L4 parts of an IP packet at `off` (no Ethernet). Returns a problem string on
 *  malformed input instead of throwing. */
function locateIp(b: Uint8Array, off: number, end: number, problems: string[], where: string, allowTruncated: boolean): L3Info | undefined {
  if (end - off < 1) { problems.push(`${where}: no IP header`); return undefined; }
  const v = b[off] >> 4;
  if (v === 4) {
    if (end - off < 20) { problems.push(`${where}: truncated IPv4 header`); return undefined; }
    const ihl = (b[off] & 15) * 4;
    if (ihl < 20 || end - off < ihl) { problems.push(`${where}: bad IHL`); return undefined; }
    const total = rd16(b, off + 2);
    let pend = off + total;
    if (total < ihl) { problems.push(`${where}: IPv4 total length ${total} < IHL`); return undefined; }
    if (pend > end) {
      if (!allowTruncated) { problems.push(`${where}: IPv4 total length ${total} exceeds frame`); return undefined; }
      pend = end;
    }
    const fo = rd16(b, off + 6);
    return {
      family: 4, src: b.subarray(off + 12, off + 16), dst: b.subarray(off + 16, off + 20), proto: b[off + 9],
      l4: off + ihl, end: pend, firstFragment: (fo & 0x1fff) === 0, isFragment: (fo & 0x3fff) !== 0,
    };
  }
  if (v === 6) {
    if (end - off < 40) { problems.push(`${where}: truncated IPv6 header`); return undefined; }
    let pend = off + 40 + rd16(b, off + 4);
    if (pend > end) {
      if (!allowTruncated) { problems.push(`${where}: IPv6 payload length exceeds frame`); return undefined; }
      pend = end;
    }
    let nh = b[off + 6];
    let p = off + 40;
    let first = true, isFrag = false;
    for (let n = 0; n < 16; n++) {
      if (nh === 0 || nh === 43 || nh === 60) {
        if (p + 8 > pend) { problems.push(`${where}: truncated extension header`); return undefined; }
        const next = b[p]; p += (b[p + 1] + 1) * 8; nh = next;
      } else if (nh === 44) {
        if (p + 8 > pend) { problems.push(`${where}: truncated fragment header`); return undefined; }
        const fo = rd16(b, p + 2);
        isFrag = true; first = (fo >> 3) === 0;
        nh = b[p]; p += 8;
      } else break;
    }
    if (p > pend) { problems.push(`${where}: extension headers exceed packet`); return undefined; }
    return { family: 6, src: b.subarray(off + 8, off + 24), dst: b.subarray(off + 24, off + 40), proto: nh, l4: p, end: pend, firstFragment: first, isFragment: isFrag };
  }
  problems.push(`${where}: IP version ${v}`);
  return undefined;
}

function checkL4(b: Uint8Array, ip: L3Info, problems: string[], where: string, quoted: boolean): void {
  if (ip.isFragment) return; // L4 checksum covers the reassembled datagram: not checkable per fragment
  const len = ip.end - ip.l4;
  const sumOver = (ck: number, name: string) => {
    const ps = pseudoHeaderSum(ip.src, ip.dst, ip.proto, len, ip.family);
    const s = onesSum(b, ip.l4, ip.end, ps);
    if (s !== 0xffff) problems.push(`${where}: bad ${name} checksum 0x${ck.toString(16)}`);
  };
  switch (ip.proto) {
    case 6:
      if (len < 20) { if (!quoted) problems.push(`${where}: truncated TCP`); return; }
      if (quoted) return; // a quote rarely holds the whole segment: its checksum is not verifiable
      sumOver(rd16(b, ip.l4 + 16), 'TCP');
      return;
    case 17: {
      if (len < 8) { if (!quoted) problems.push(`${where}: truncated UDP`); return; }
      const ck = rd16(b, ip.l4 + 6);
      if (ck === 0) { if (ip.family === 6 && !quoted) problems.push(`${where}: UDP checksum 0 over IPv6`); return; }
      if (quoted && rd16(b, ip.l4 + 4) !== len) return;
      sumOver(ck, 'UDP');
      return;
    }
    case 132: {
      if (len < 12) { if (!quoted) problems.push(`${where}: truncated SCTP`); return; }
      if (quoted) return;
      const want = sctpChecksum(b, ip.l4, ip.end);
      const got = (b[ip.l4 + 8] | (b[ip.l4 + 9] << 8) | (b[ip.l4 + 10] << 16) | (b[ip.l4 + 11] << 24)) >>> 0;
      if (want !== got) problems.push(`${where}: bad SCTP CRC32c 0x${got.toString(16)} (want 0x${want.toString(16)})`);
      return;
    }
    case 1: {
      if (len < 8) { if (!quoted) problems.push(`${where}: truncated ICMP`); return; }
      if (quoted) return;
      if (onesSum(b, ip.l4, ip.end) !== 0xffff) problems.push(`${where}: bad ICMP checksum 0x${rd16(b, ip.l4 + 2).toString(16)}`);
      const t = b[ip.l4];
      if ((t === 3 || t === 11 || t === 12) && len > 8) checkIp(b, ip.l4 + 8, ip.end, problems, `${where} inner`, true);
      return;
    }
    case 58: {
      if (len < 8) { if (!quoted) problems.push(`${where}: truncated ICMPv6`); return; }
      if (quoted) return;
      sumOver(rd16(b, ip.l4 + 2), 'ICMPv6');
      const t = b[ip.l4];
      if (t >= 1 && t <= 4 && len > 8) checkIp(b, ip.l4 + 8, ip.end, problems, `${where} inner`, true);
      return;
    }
    default:
      return;
  }
}

function checkIp(b: Uint8Array, off: number, end: number, problems: string[], where: string, quoted: boolean): void {
  const ip = locateIp(b, off, end, problems, where, quoted);
  if (!ip) return;
  if (ip.family === 4) {
    const ihl = (b[off] & 15) * 4;
    if (onesSum(b, off, off + ihl) !== 0xffff) problems.push(`${where}: bad IPv4 header checksum 0x${rd16(b, off + 10).toString(16)}`);
  }
  checkL4(b, ip, problems, where, quoted);
}

/** Every checksum problem of an Ethernet frame: IPv4 header, TCP/UDP/ICMPv6 (with pseudo header),
 *  ICMPv4, SCTP CRC32c, and for ICMP errors the quoted inner IPv4 header (the inner L4 checksum is
 *  only checked for UDP when the whole datagram is quoted). Empty list = all good. Non-IP frames
 *  (ARP) have nothing to check and return []. */
export function verifyChecksums(frame: Uint8Array): string[] {
  const problems: string[] = [];
  if (frame.length < 14) return ['frame shorter than an Ethernet header'];
  let off = 12;
  let et = rd16(frame, off);
  if (et === 0x8100) {
    if (frame.length < 18) return ['truncated 802.1Q tag'];
    off += 4; et = rd16(frame, off);
  }
  off += 2;
  if (et !== 0x0800 && et !== 0x86dd) return problems;
  checkIp(frame, off, frame.length, problems, 'outer', false);
  return problems;
}
