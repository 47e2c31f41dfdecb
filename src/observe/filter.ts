// Packet filters for live trace and capture (`wdp trace --live`, `wdp capture`): the flags of
// tcpdump/pwru/`cilium monitor` as one small object. A frame matches when every given field
// matches; `host`/`port` match either side; addresses may be prefixes (`10.0.0.0/24`). A live
// trace's filter is tested by the core itself (src/observe/core-filter.ts, assembly/trace.ts);
// the JS matching below serves capture and the checks the core cannot make.
//
// Cost: `readTuple` copies a few header bytes into a caller-owned Tuple and `tupleMatches`
// compares bytes (no allocation, no string); both run only while a capture is active.
import { formatAddr } from '../util/addr.js';
import { addrBytes } from '../packet/build.js';
import { REASON_NAMES, VERDICT_NAMES } from '../core/names.js';

export interface PacketFilter {
  src?: string; dst?: string; host?: string;   // an address or a prefix (ADDR/LEN)
  sport?: number; dport?: number; port?: number;
  proto?: 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
  service?: string;          // namespace/name of the Service matched
  backend?: string;          // backend address chosen
  reason?: string;           // reason name (e.g. drop_no_route, reject_no_endpoints); "drop" = any drop
  inPort?: number;           // dataplane port index the frame arrived on
}

const PROTO_NUM: Record<NonNullable<PacketFilter['proto']>, number[]> = { TCP: [6], UDP: [17], SCTP: [132], ICMP: [1, 58] };

/** Checks an untrusted filter object (API body); returns the filter or a list of problems. */
export function parseFilter(raw: unknown): { filter?: PacketFilter; problems: string[] } {
  const problems: string[] = [];
  if (raw === undefined || raw === null) return { filter: {}, problems };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { problems: ['filter must be an object'] };
  const r = raw as Record<string, unknown>;
  const f: PacketFilter = {};
  const known = new Set(['src', 'dst', 'host', 'sport', 'dport', 'port', 'proto', 'service', 'backend', 'reason', 'inPort']);
  for (const k of Object.keys(r)) if (!known.has(k)) problems.push(`filter.${k}: unknown field (known: ${[...known].join(', ')})`);
  for (const k of ['src', 'dst', 'host'] as const) {
    const v = r[k];
    if (v === undefined) continue;
    const c = typeof v === 'string' ? canonicalPrefix(v) : undefined;
    if (!c) problems.push(`filter.${k}: must be an IPv4 or IPv6 address or prefix (ADDR/LEN)`); else f[k] = c;
  }
  if (r.backend !== undefined) {
    const c = typeof r.backend === 'string' ? canonical(r.backend) : undefined;
    if (!c) problems.push('filter.backend: must be an IPv4 or IPv6 address'); else f.backend = c;
  }
  for (const k of ['sport', 'dport', 'port', 'inPort'] as const) {
    const v = r[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) problems.push(`filter.${k}: must be an integer 0..65535`); else f[k] = v;
  }
  if (r.proto !== undefined) {
    const p = typeof r.proto === 'string' ? r.proto.toUpperCase() : '';
    if (!(p in PROTO_NUM)) problems.push('filter.proto: must be TCP, UDP, SCTP or ICMP'); else f.proto = p as PacketFilter['proto'];
  }
  for (const k of ['service', 'reason'] as const) {
    const v = r[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !v || v.length > 300) problems.push(`filter.${k}: must be a non-empty string`); else f[k] = v;
  }
  if (f.reason !== undefined && !REASON_NAMES.includes(f.reason) && !(VERDICT_NAMES as readonly string[]).includes(f.reason)) {
    problems.push(`filter.reason: unknown reason "${f.reason}" (a reason such as drop_no_route, or one of ${VERDICT_NAMES.join(', ')} for any of that verdict)`);
  }
  return problems.length ? { problems } : { filter: f, problems };
}

/** Canonical text of an address (so "::0001" and "::1" compare equal), or undefined. */
export function canonical(s: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return s.split('.').every((o) => Number(o) <= 255) ? s.split('.').map(Number).join('.') : undefined;
  if (!s.includes(':') || s.length > 45) return undefined;
  try { return new URL(`http://[${s}]/`).hostname.replace(/^\[|\]$/g, ''); } catch { return undefined; }
}

/** Canonical text of an address or prefix: "ADDR" (also for a full-length prefix) or
 * "NETWORK/LEN" with the host bits cleared; undefined when it is neither. */
export function canonicalPrefix(s: string): string | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return canonical(s);
  const addr = canonical(s.slice(0, slash)), lenText = s.slice(slash + 1);
  if (!addr || !/^\d{1,3}$/.test(lenText)) return undefined;
  const { family, wire } = addrBytes(addr), plen = Number(lenText), bits = wire.length * 8;
  if (plen > bits) return undefined;
  if (plen === bits) return addr;
  const net = maskBytes(wire, plen);
  return `${formatAddr(net, family, 0)}/${plen}`;
}

/** `wire` with every bit after the first `plen` cleared (a copy). */
export function maskBytes(wire: Uint8Array, plen: number): Uint8Array {
  const out = wire.slice();
  for (let k = 0; k < out.length; k++) {
    const keep = Math.max(0, Math.min(8, plen - k * 8));
    out[k] &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/** An address filter field as bytes: the network (host bits clear) and its prefix length. */
export interface AddrPrefix { family: 4 | 6; wire: Uint8Array; plen: number }

export function prefixBytes(s: string): AddrPrefix {
  const slash = s.indexOf('/');
  const { family, wire } = addrBytes(slash < 0 ? s : s.slice(0, slash));
  const plen = slash < 0 ? wire.length * 8 : Number(s.slice(slash + 1));
  return { family, wire: maskBytes(wire, plen), plen };
}

/** The parts of a frame a filter looks at: addresses copied as bytes (src at 0, dst at 16) so
 * matching needs no string; formatted only for a packet that is reported. family 0: not IP. */
export interface Tuple { family: 0 | 4 | 6; proto: number; sport: number; dport: number; addrs: Uint8Array }

export function emptyTuple(): Tuple { return { family: 0, proto: 0, sport: 0, dport: 0, addrs: new Uint8Array(32) }; }
export const tupleSrc = (t: Tuple): string => (t.family ? formatAddr(t.addrs, t.family, 0) : '');
export const tupleDst = (t: Tuple): string => (t.family ? formatAddr(t.addrs, t.family, 16) : '');

/** Reads Ethernet (+ one VLAN tag) / IPv4 or IPv6 / ports into `t` from `len` bytes at `at`. */
export function readTuple(b: Uint8Array, at: number, len: number, t: Tuple): Tuple {
  t.family = 0; t.proto = 0; t.sport = 0; t.dport = 0;
  let l3 = at + 14;
  if (len < 14) return t;
  let et = (b[at + 12] << 8) | b[at + 13];
  if (et === 0x8100 && len >= 18) { et = (b[at + 16] << 8) | b[at + 17]; l3 += 4; }
  const end = at + len, a = t.addrs;
  let l4 = 0;
  if (et === 0x0800 && l3 + 20 <= end) {
    t.family = 4; t.proto = b[l3 + 9];
    for (let k = 0; k < 4; k++) { a[k] = b[l3 + 12 + k]; a[16 + k] = b[l3 + 16 + k]; }
    const fragOff = ((b[l3 + 6] & 0x1f) << 8) | b[l3 + 7];
    l4 = fragOff === 0 ? l3 + (b[l3] & 0x0f) * 4 : 0;
  } else if (et === 0x86dd && l3 + 40 <= end) {
    t.family = 6; t.proto = b[l3 + 6];
    for (let k = 0; k < 16; k++) { a[k] = b[l3 + 8 + k]; a[16 + k] = b[l3 + 24 + k]; }
    l4 = l3 + 40;   // extension headers: ports not read (the port fields then do not match)
  }
  if (l4 && (t.proto === 6 || t.proto === 17 || t.proto === 132) && l4 + 4 <= end) {
    t.sport = (b[l4] << 8) | b[l4 + 1];
    t.dport = (b[l4 + 2] << 8) | b[l4 + 3];
  }
  return t;
}

/** A filter with its addresses as bytes (compileFilter), what tupleMatches reads. */
export interface CompiledFilter { filter: PacketFilter; src?: AddrPrefix; dst?: AddrPrefix; host?: AddrPrefix }

export function compileFilter(filter: PacketFilter): CompiledFilter {
  const c: CompiledFilter = { filter };
  for (const k of ['src', 'dst', 'host'] as const) {
    const v = filter[k];
    if (v !== undefined) c[k] = prefixBytes(v);
  }
  return c;
}

function addrAt(t: Tuple, off: number, want: AddrPrefix): boolean {
  if (t.family !== want.family) return false;
  const a = t.addrs, w = want.wire;
  let k = 0;
  for (; (k + 1) * 8 <= want.plen; k++) if (a[off + k] !== w[k]) return false;
  const rest = want.plen - k * 8;
  return rest === 0 || ((a[off + k] ^ w[k]) & ((0xff << (8 - rest)) & 0xff)) === 0;
}

/** Whether the 5-tuple fields of the filter match `t` (fields not given match anything). */
export function tupleMatches(c: CompiledFilter, t: Tuple): boolean {
  const f = c.filter;
  if (c.src && !addrAt(t, 0, c.src)) return false;
  if (c.dst && !addrAt(t, 16, c.dst)) return false;
  if (c.host && !addrAt(t, 0, c.host) && !addrAt(t, 16, c.host)) return false;
  if (f.sport !== undefined && t.sport !== f.sport) return false;
  if (f.dport !== undefined && t.dport !== f.dport) return false;
  if (f.port !== undefined && t.sport !== f.port && t.dport !== f.port) return false;
  if (f.proto !== undefined && !PROTO_NUM[f.proto].includes(t.proto)) return false;
  return true;
}

/** Whether the filter has any 5-tuple field (otherwise every frame passes the tuple stage). */
export function hasTupleFields(f: PacketFilter): boolean {
  return f.src !== undefined || f.dst !== undefined || f.host !== undefined || f.sport !== undefined
    || f.dport !== undefined || f.port !== undefined || f.proto !== undefined;
}

export function reasonMatches(f: PacketFilter, reason: string, verdict: string): boolean {
  if (f.reason === undefined) return true;
  return f.reason === reason || (f.reason === verdict && reason !== 'none');
}
