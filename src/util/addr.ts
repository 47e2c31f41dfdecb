// Address, CIDR and MAC codecs shared by the compiler, table writer, reference model and tests.
// Addresses are 16-byte buffers as in the core's layout: IPv4 in bytes 0..3, rest zero.
import { isIPv4, isIPv6 } from 'node:net';
/** An address family, as the core stores it. */
export type Family = 4 | 6;

export interface Addr { family: Family; bytes: Uint8Array }

/** A canonical dotted quad ("10.0.0.1": 4 decimal parts 0..255, no leading zeros — what node's
 * isIPv4 accepts) written into bytes[0..3]; false, touching nothing else, for anything else.
 * The table writer parses ~100k backend addresses on a full apply: this loop is ~20x cheaper
 * than isIPv4's regular expression plus split/map. */
function dottedQuad(s: string, bytes: Uint8Array): boolean {
  const v = ipv4Value(s);
  if (v < 0) return false;
  bytes[0] = v >>> 24; bytes[1] = (v >>> 16) & 255; bytes[2] = (v >>> 8) & 255; bytes[3] = v & 255;
  return true;
}

/** The value (0 .. 2^32 - 1) of a canonical dotted quad — four parts of 0..255 without leading
 * zeros, e.g. "10.0.0.1" — or -1 for anything else. One pass over the characters: validation
 * keeps an IPv4 endpoint's value for the compiler. */
export function ipv4Value(s: string): number { return ipv4ValueAt(s, 0, s.length); }

/** ipv4Value of s.slice(from, to), without the slice (the table writer reads every backend's
 * address out of one joined string). */
export function ipv4ValueAt(s: string, from: number, to: number): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let v = 0, part = 0, digits = 0, k = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || k > 3) return -1;
      v = v * 256 + part; k++; part = 0; digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  return k === 4 ? v : -1;
}

/** parseAddr(s).bytes written to out[off..off+16) — 16 bytes, IPv4 zero-padded — without the
 * two allocations (the table writer's per-backend path). Throws like parseAddr. */
export function writeAddr(s: string, out: Uint8Array, off: number): Family {
  if (dottedQuad(s, quad)) { out.set(quad, off); out.fill(0, off + 4, off + 16); return 4; }
  const a = parseAddr(s);
  out.set(a.bytes, off);
  return a.family;
}
const quad = new Uint8Array(4);

export function parseAddr(s: string): Addr {
  const bytes = new Uint8Array(16);
  if (dottedQuad(s, bytes)) return { family: 4, bytes };
  bytes.fill(0);
  if (isIPv4(s)) {
    const p = s.split('.').map(Number);
    for (let i = 0; i < 4; i++) bytes[i] = p[i];
    return { family: 4, bytes };
  }
  if (isIPv6(s)) {
    let str = s;
    const zone = str.indexOf('%');
    if (zone >= 0) str = str.slice(0, zone);
    // embedded dotted quad (::ffff:1.2.3.4)
    const lastColon = str.lastIndexOf(':');
    const tail = str.slice(lastColon + 1);
    let tailWords: number[] = [];
    if (tail.includes('.')) {
      const q = tail.split('.').map(Number);
      tailWords = [(q[0] << 8) | q[1], (q[2] << 8) | q[3]];
      str = str.slice(0, lastColon + 1) + '0:0';
    }
    const [head, rest] = str.includes('::') ? str.split('::') : [str, undefined];
    const hw = head ? head.split(':').filter((x) => x !== '').map((x) => parseInt(x, 16)) : [];
    const rw = rest !== undefined && rest !== '' ? rest.split(':').map((x) => parseInt(x, 16)) : [];
    const words = rest !== undefined ? [...hw, ...new Array(8 - hw.length - rw.length).fill(0), ...rw] : hw;
    if (tailWords.length) { words[6] = tailWords[0]; words[7] = tailWords[1]; }
    for (let i = 0; i < 8; i++) { bytes[2 * i] = words[i] >> 8; bytes[2 * i + 1] = words[i] & 0xff; }
    return { family: 6, bytes };
  }
  throw new Error(`invalid IP address: ${JSON.stringify(s)}`);
}

/** Canonical text form (RFC 5952 for IPv6), so "fd00::0a" and "fd00::a" are the same key. */
export function canonicalAddr(s: string): string {
  const a = parseAddr(s);
  return formatAddr(a.bytes, a.family);
}

export function isIp(s: string): boolean { return isIPv4(s) || isIPv6(s); }

export function formatAddr(bytes: Uint8Array, family: Family, off = 0): string {
  if (family === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((bytes[off + 2 * i] << 8) | bytes[off + 2 * i + 1]);
  // RFC 5952: compress the longest run (>= 2) of zero words
  let bestAt = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i; while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return hex.slice(0, bestAt).join(':') + '::' + hex.slice(bestAt + bestLen).join(':');
}

export interface Cidr { family: Family; bytes: Uint8Array; plen: number }

export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  if (slash < 0) { const a = parseAddr(s); return { ...a, plen: a.family === 4 ? 32 : 128 }; }
  const a = parseAddr(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  const plen = /^\d{1,3}$/.test(lenStr) ? Number(lenStr) : NaN;
  if (!(plen >= 0 && plen <= (a.family === 4 ? 32 : 128))) throw new Error(`invalid prefix length in CIDR ${JSON.stringify(s)}`);
  return { ...a, plen };
}

/** `c` as its network, in canonical text: the host bits cleared ("10.1.2.3/8" → "10.0.0.0/8"). */
export function cidrNetwork(c: Cidr): string {
  const b = Uint8Array.from(c.bytes);
  for (let bit = c.plen; bit < b.length * 8; bit++) b[bit >> 3] &= ~(0x80 >> (bit & 7));
  return `${formatAddr(b, c.family)}/${c.plen}`;
}

export function cidrContains(c: Cidr, a: Addr): boolean {
  if (c.family !== a.family) return false;
  let bits = c.plen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((c.bytes[i] & mask) !== (a.bytes[i] & mask)) return false;
  }
  return true;
}

// A node has a handful of distinct MACs (its ports', its neighbours') while a full apply writes two
// per backend: parsed once each. Callers get a copy, so the cache cannot be changed through them.
const macCache = new Map<string, Uint8Array>();

export function parseMac(s: string): Uint8Array { return parseMacShared(s).slice(); }

/** parseMac without the copy, for writers that only read the bytes (u8.set): never modify it. */
export function parseMacShared(s: string): Uint8Array {
  const have = macCache.get(s);
  if (have) return have;
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(s);
  if (!m) throw new Error(`invalid MAC address: ${JSON.stringify(s)}`);
  const mac = Uint8Array.from(m.slice(1).map((x) => parseInt(x, 16)));
  if (macCache.size >= 4096) macCache.clear();
  macCache.set(s, mac);
  return mac;
}

export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i].toString(16).padStart(2, '0'));
  return out.join(':');
}
