// Packet filters for live trace and capture (`wdp trace --live`, `wdp capture`): the flags of
// tcpdump/pwru/`cilium monitor` as one small object. A frame matches when every given field
// matches; `host`/`port` match either side. The 5-tuple is read from the frame's headers (before
// translation, and for live trace also after), service/backend/reason from the core's trace record.
//
// Cost: `readTuple` reads a few header bytes into a caller-owned Tuple (no allocation); it runs
// only while a live trace or capture is active.
import { formatAddr } from '../util/addr.js';

export interface PacketFilter {
  src?: string; dst?: string; host?: string;
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
  for (const k of ['src', 'dst', 'host', 'backend'] as const) {
    const v = r[k];
    if (v === undefined) continue;
    const c = typeof v === 'string' ? canonical(v) : undefined;
    if (!c) problems.push(`filter.${k}: must be an IPv4 or IPv6 address`); else f[k] = c;
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
  return problems.length ? { problems } : { filter: f, problems };
}

/** Canonical text of an address (so "::0001" and "::1" compare equal), or undefined. */
export function canonical(s: string): string | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return s.split('.').every((o) => Number(o) <= 255) ? s.split('.').map(Number).join('.') : undefined;
  if (!s.includes(':') || s.length > 45) return undefined;
  try { return new URL(`http://[${s}]/`).hostname.replace(/^\[|\]$/g, ''); } catch { return undefined; }
}

/** The parts of a frame a filter looks at. family 0: not IP (or too short to tell). */
export interface Tuple { family: 0 | 4 | 6; proto: number; src: string; dst: string; sport: number; dport: number }

export function emptyTuple(): Tuple { return { family: 0, proto: 0, src: '', dst: '', sport: 0, dport: 0 }; }

/** Reads Ethernet (+ one VLAN tag) / IPv4 or IPv6 / ports into `t` from `len` bytes at `at`. */
export function readTuple(b: Uint8Array, at: number, len: number, t: Tuple): Tuple {
  t.family = 0; t.proto = 0; t.src = ''; t.dst = ''; t.sport = 0; t.dport = 0;
  let l3 = at + 14;
  if (len < 14) return t;
  let et = (b[at + 12] << 8) | b[at + 13];
  if (et === 0x8100 && len >= 18) { et = (b[at + 16] << 8) | b[at + 17]; l3 += 4; }
  const end = at + len;
  let l4 = 0;
  if (et === 0x0800 && l3 + 20 <= end) {
    t.family = 4; t.proto = b[l3 + 9];
    t.src = formatAddr(b, 4, l3 + 12); t.dst = formatAddr(b, 4, l3 + 16);
    const fragOff = ((b[l3 + 6] & 0x1f) << 8) | b[l3 + 7];
    l4 = fragOff === 0 ? l3 + (b[l3] & 0x0f) * 4 : 0;
  } else if (et === 0x86dd && l3 + 40 <= end) {
    t.family = 6; t.proto = b[l3 + 6];
    t.src = formatAddr(b, 6, l3 + 8); t.dst = formatAddr(b, 6, l3 + 24);
    l4 = l3 + 40;   // extension headers: ports not read (the 5-tuple fields then do not match)
  }
  if (l4 && (t.proto === 6 || t.proto === 17 || t.proto === 132) && l4 + 4 <= end) {
    t.sport = (b[l4] << 8) | b[l4 + 1];
    t.dport = (b[l4 + 2] << 8) | b[l4 + 3];
  }
  return t;
}

/** Whether the 5-tuple fields of `f` match `t` (fields not given match anything). */
export function tupleMatches(f: PacketFilter, t: Tuple): boolean {
  if (f.src !== undefined && t.src !== f.src) return false;
  if (f.dst !== undefined && t.dst !== f.dst) return false;
  if (f.host !== undefined && t.src !== f.host && t.dst !== f.host) return false;
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
