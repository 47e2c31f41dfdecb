// The host's half of the core's live trace filter (assembly/trace.ts; layout.ts "Live trace
// filter"): a PacketFilter compiled into one of the core's TF_SLOTS filter records, the per-batch
// budget (the rate cap), and the match records the core appends for the frames that matched. With
// this, a worker tracing live touches only the frames it reports: unmatched frames never reach JS.
//
// The core matches the 5-tuple (prefixes, ports, protocol), the in port, the reason or verdict and
// the frontend/backend ids. `service` and `backend` are names and addresses in the filter and ids
// in the core: the ids are looked up in the core's Ir when the filter is written and again when
// the table generation changes (FilterIds). A service with more than TFF_IDS frontends (or an
// address serving as more than TFF_IDS backends) is not narrowed in the core; the worker then
// checks it for every frame the rest of the filter passes.
import * as L from '../../assembly/layout.js';
import type { Core, TraceRecord } from '../core/host.js';
import { REASON_NAMES, VERDICT_NAMES } from '../core/names.js';
import { maskBytes, type PacketFilter, type CompiledFilter, type AddrPrefix, type Tuple } from './filter.js';

const PROTO_NUM: Record<NonNullable<PacketFilter['proto']>, [number, number]> = { TCP: [6, 6], UDP: [17, 17], SCTP: [132, 132], ICMP: [1, 58] };

/** Which names the core narrows by id (the rest the worker checks on each match). */
export interface FilterIds { fronts?: number[]; backends?: number[] }

/** The frontend / backend ids a filter's service / backend name stand for in the core's Ir now;
 * a list longer than TFF_IDS is left out (undefined: the worker checks that field itself). */
export function filterIds(core: Core, f: PacketFilter): FilterIds {
  const ids: FilterIds = {};
  if (f.service !== undefined) {
    const fronts: number[] = [];
    core.ir.frontends.forEach((fe, id) => { if (fe.service === f.service) fronts.push(id); });
    if (fronts.length <= L.TFF_IDS) ids.fronts = fronts;
  }
  if (f.backend !== undefined) {
    const backends: number[] = [];
    core.ir.backends.forEach((be, id) => { if (be.addr === f.backend) backends.push(id); });
    if (backends.length <= L.TFF_IDS) ids.backends = backends;
  }
  return ids;
}

const filterOff = (core: Core, slot: number): number => core.traceFilterBase + L.TF_FILTERS + slot * L.TFF_SIZE;

const ALL_ONES = new Uint8Array(16).fill(0xff);

/** The prefix's network at `at`, its mask at `at + 16` (16 bytes each, zero-padded for IPv4). */
function writePrefix(u8: Uint8Array, at: number, p: AddrPrefix): void {
  u8.fill(0, at, at + 32);
  u8.set(p.wire, at);
  u8.set(maskBytes(ALL_ONES.subarray(0, p.wire.length), p.plen), at + 16);
}

/** Writes `c` into filter slot `slot` (not yet active: see setActive), with no budget. */
export function writeCoreFilter(core: Core, slot: number, c: CompiledFilter, ids: FilterIds): void {
  const f = c.filter, at = filterOff(core, slot), u8 = core.u8, dv = core.dv;
  u8.fill(0, at, at + L.TFF_SIZE);
  let fields = 0;
  const addrs = [[c.src, L.TFF_SRC, L.TFM_SRC], [c.dst, L.TFF_DST, L.TFM_DST], [c.host, L.TFF_HOST, L.TFM_HOST]] as const;
  const families = new Set(addrs.filter(([p]) => p).map(([p]) => p!.family));
  if (families.size > 1) {
    // an IPv4 and an IPv6 address in one filter: no frame has both (no frame has family 0xff)
    fields |= L.TFM_SRC;
    u8[at + L.TFF_FAMILY] = 0xff;
  } else {
    for (const [p, off, bit] of addrs) {
      if (!p) continue;
      writePrefix(u8, at + off, p);
      u8[at + L.TFF_FAMILY] = p.family;
      fields |= bit;
    }
  }
  if (f.sport !== undefined) { fields |= L.TFM_SPORT; dv.setUint16(at + L.TFF_SPORT, f.sport, true); }
  if (f.dport !== undefined) { fields |= L.TFM_DPORT; dv.setUint16(at + L.TFF_DPORT, f.dport, true); }
  if (f.port !== undefined) { fields |= L.TFM_PORT; dv.setUint16(at + L.TFF_PORT, f.port, true); }
  if (f.proto !== undefined) {
    fields |= L.TFM_PROTO;
    [u8[at + L.TFF_PROTO], u8[at + L.TFF_PROTO2]] = PROTO_NUM[f.proto];
  }
  if (f.inPort !== undefined) { fields |= L.TFM_IN_PORT; dv.setUint16(at + L.TFF_IN_PORT, f.inPort, true); }
  if (f.reason !== undefined) {
    const verdict = (VERDICT_NAMES as readonly string[]).indexOf(f.reason);
    if (verdict >= 0) { fields |= L.TFM_VERDICT; u8[at + L.TFF_VERDICT] = verdict; } else {
      fields |= L.TFM_REASON; u8[at + L.TFF_REASON] = REASON_NAMES.indexOf(f.reason);
    }
  }
  writeIds(core, slot, ids);
  dv.setUint32(at + L.TFF_FIELDS, dv.getUint32(at + L.TFF_FIELDS, true) | fields, true);
}

/** Rewrites the id lists of filter slot `slot` (after a table generation change). */
export function writeIds(core: Core, slot: number, ids: FilterIds): void {
  const at = filterOff(core, slot), dv = core.dv;
  let fields = dv.getUint32(at + L.TFF_FIELDS, true) & ~(L.TFM_FRONT | L.TFM_BACKEND);
  for (const [list, off, bit] of [[ids.fronts, L.TFF_FRONTS, L.TFM_FRONT], [ids.backends, L.TFF_BACKENDS, L.TFM_BACKEND]] as const) {
    for (let k = 0; k < L.TFF_IDS; k++) dv.setUint32(at + off + 4 * k, list?.[k] ?? 0, true);
    if (list) fields |= bit;   // an empty list matches nothing: the service / backend does not exist (yet)
  }
  dv.setUint32(at + L.TFF_FIELDS, fields, true);
}

// The per-batch accessors take the DataView and block address the caller holds for the batch (a
// Core's dv getter checks the memory buffer on every call).
export function setBudget(dv: DataView, base: number, slot: number, n: number): void { dv.setUint32(base + L.TF_FILTERS + slot * L.TFF_SIZE + L.TFF_BUDGET, n, true); }
export function budgetLeft(dv: DataView, base: number, slot: number): number { return dv.getUint32(base + L.TF_FILTERS + slot * L.TFF_SIZE + L.TFF_BUDGET, true); }

/** Which filter slots the next live batches test (bit s: slot s). */
export function setActive(core: Core, mask: number): void { core.dv.setUint32(core.traceFilterBase + L.TF_ACTIVE, mask, true); }

/** Match records and frames left unrecorded (more than TM_MAX) of the last live batch. */
export function matchCount(dv: DataView, base: number): number { return dv.getUint32(base + L.TF_MATCHES, true); }
export function missedCount(dv: DataView, base: number): number { return dv.getUint32(base + L.TF_MISSED, true); }

export interface Match { index: number; filters: number; trace: TraceRecord }

/** Match record k: the frame's batch index, the filters it matched, its trace record; its
 * 5-tuple as it arrived goes into `input`. */
export function readMatch(core: Core, k: number, input: Tuple): Match {
  const m = core.traceFilterBase + L.TF_MATCH_OFF + k * L.TM_SIZE, dv = core.dv, u8 = core.u8;
  const family = u8[m + L.TM_FAMILY];
  input.family = family === 4 || family === 6 ? family : 0;
  input.proto = u8[m + L.TM_PROTO];
  input.sport = dv.getUint16(m + L.TM_SPORT, true);
  input.dport = dv.getUint16(m + L.TM_DPORT, true);
  input.addrs.set(u8.subarray(m + L.TM_SRC, m + L.TM_SRC + 16), 0);
  input.addrs.set(u8.subarray(m + L.TM_DST, m + L.TM_DST + 16), 16);
  return { index: dv.getUint16(m + L.TM_INDEX, true), filters: u8[m + L.TM_FILTERS], trace: core.traceRecordAt(m + L.TM_TRACE) };
}
