// Where everything lives: the CONFIG block, the region addresses and capacities it names, and the
// active table set. Re-read at the start of every process() call (cheap, and the host may move
// counter regions or change tunables between batches); a batch sees one table generation. Also
// the batch context (clock, live or dry run) and the global / per-frontend / per-backend counters.
// The globals below are written only here (loadConfig, loadTableSet, beginBatch); every other
// file reads them.
import * as L from "./layout";
import { Config, TableSetHeader, CtFlow, CtSlot, Backend, Frontend, AffEntry, CounterPair, Desc, TraceRec } from "./records";

export const CFG: usize = memory.data(L.CFG_SIZE, 64);
@inline export function config(): Config { return changetype<Config>(CFG); }

// ---- regions (from CONFIG) ------------------------------------------------------------------------
export let gDesc: usize = 0;
export let gArena: usize = 0;
export let gSlot: u32 = 0;
export let gBatchMax: u32 = 0;
export let gTrace: usize = 0;
export let gCounters: usize = 0;
export let gSvcCnt: usize = 0;
export let gSvcMax: u32 = 0;
export let gBeCnt: usize = 0;
export let gBeCntMax: u32 = 0;
export let gCtIdx: usize = 0;
export let gCtMask: u32 = 0;
export let gCtFlows: usize = 0;
export let gCtMax: u32 = 0;
export let gAff: usize = 0;
export let gAffMask: u32 = 0;
export let gHasSnat: u32 = 0;
export let gPortMin: u32 = 0;
export let gPortMax: u32 = 0;
export let gSteerWorkers: u32 = 0;  // > 1: SNAT ports are taken only where owner.ts names this core
export let gSteerSelf: u32 = 0;
export let gTableEpoch: u32 = 0;    // CFG_TABLE_EPOCH of this batch
export let gPortMtu: usize = 0;     // PORT_MTU region (mtu.ts)
export let gPortAddr: usize = 0;    // PORT_ADDR region (ttl.ts)

// ---- active table set (from the header CFG_GEN names) ---------------------------------------------
export let tSm: usize = 0;
export let tSmMask: u32 = 0;
export let tFe: usize = 0;
export let tFeMax: u32 = 0;
export let tBe: usize = 0;
export let tBeMax: u32 = 0;
export let tMg: usize = 0;
export let tMgWords: u32 = 0;
export let tCidr: usize = 0;
export let tCidrMax: u32 = 0;
export let tRt: usize = 0;
export let tRtCount: u32 = 0;
export let tLocalCount: u32 = 0;  // local-source entries at tRt + tRtCount (route entries of kind RTK_LOCAL_*)

// ---- batch context ----------------------------------------------------------------------------------
export let gNow: u32 = 0;
export let gLive: bool = true;  // false in TRACE_DRY_RUN: no state, no counters

// Timeouts by CTS_* state (u32 ms), refreshed from CONFIG each batch.
const TO_TABLE: usize = memory.data(L.CTS_COUNT << 2, 16);

export function loadConfig(): void {
  const c = config();
  gDesc = c.descOff;
  gArena = c.arenaOff;
  gSlot = c.slotSize;
  gBatchMax = c.batchMax;
  gTrace = c.traceOff;
  gCounters = c.countersOff;
  gSvcCnt = c.svcCountersOff;
  gSvcMax = c.svcMax;
  gBeCnt = c.beCountersOff;
  gBeCntMax = c.beMax;
  gCtIdx = c.ctIndexOff;
  gCtMask = c.ctIndexMask;
  gCtFlows = c.ctFlowsOff;
  gCtMax = c.ctFlowsMax;
  gAff = c.affOff;
  gAffMask = c.affMask;
  gHasSnat = c.hasSnat;
  gPortMin = c.snatPortMin;
  gPortMax = c.snatPortMax;
  gSteerWorkers = c.steerWorkers;
  gSteerSelf = c.steerSelf;
  gTableEpoch = c.tableEpoch;
  gPortMtu = c.portMtuOff;
  gPortAddr = c.portAddrOff;
  store<u32>(TO_TABLE, 0);
  store<u32>(TO_TABLE + (L.CTS_TCP_SYN << 2), c.toTcpSyn);
  store<u32>(TO_TABLE + (L.CTS_TCP_EST << 2), c.toTcpEst);
  store<u32>(TO_TABLE + (L.CTS_TCP_CLOSING << 2), c.toTcpClose);
  store<u32>(TO_TABLE + (L.CTS_UDP << 2), c.toUdp);
  store<u32>(TO_TABLE + (L.CTS_UDP_REPLIED << 2), c.toUdpReplied);
  store<u32>(TO_TABLE + (L.CTS_SCTP << 2), c.toSctp);
  store<u32>(TO_TABLE + (L.CTS_TCP_SYN_RECV << 2), c.toTcpUnconfirmed);
  store<u32>(TO_TABLE + (L.CTS_TCP_MIDSTREAM << 2), c.toTcpUnconfirmed);
  store<u32>(TO_TABLE + (L.CTS_TCP_HALF_CLOSED_ORIG << 2), c.toTcpHalfClosed);
  store<u32>(TO_TABLE + (L.CTS_TCP_HALF_CLOSED_REPLY << 2), c.toTcpHalfClosed);
  store<u32>(TO_TABLE + (L.CTS_SCTP_CLOSED << 2), c.toSctpClosed);
  store<u32>(TO_TABLE + (L.CTS_SCTP_COOKIE_WAIT << 2), c.toSctpHandshake);
  store<u32>(TO_TABLE + (L.CTS_SCTP_COOKIE_ECHOED << 2), c.toSctpHandshake);
  store<u32>(TO_TABLE + (L.CTS_SCTP_SHUTDOWN << 2), c.toSctpShutdown);
  store<u32>(TO_TABLE + (L.CTS_SCTP_SHUTDOWN_ACK_SENT << 2), c.toSctpShutdown);
  store<u32>(TO_TABLE + (L.CTS_SCTP_HEARTBEAT_SENT << 2), c.toSctpHeartbeat);
}

export function loadTableSet(): void {
  const c = config();
  const ts = changetype<TableSetHeader>(<usize>((c.gen & 1) ? c.tableset1Off : c.tableset0Off));
  tSm = ts.svcmapOff;
  tSmMask = ts.svcmapMask;
  tFe = ts.frontOff;
  tFeMax = ts.frontMax;
  tBe = ts.backendOff;
  tBeMax = ts.backendMax;
  tMg = ts.maglevOff;
  tMgWords = ts.maglevWords;
  tCidr = ts.cidrOff;
  tCidrMax = ts.cidrMax;
  tRt = ts.routeOff;
  tRtCount = ts.routeCount;
  const rmax = ts.routeMax;
  if (tRtCount > rmax) tRtCount = rmax;
  tLocalCount = ts.localCount;
  if (tLocalCount > rmax - tRtCount) tLocalCount = rmax - tRtCount;
  if (tSm == 0) tSmMask = 0;
}

/** Sets the batch clock and whether the batch changes state (false: dry-run trace). */
export function beginBatch(now: u32, live: bool): void { gNow = now; gLive = live; }

/** Checks CONFIG (after loadConfig) and the region geometry against memory. 0 = ok, else the
 * init() error code (assembly/index.ts). */
export function configError(): u32 {
  const c = config();
  if (c.magic != <u32>L.CFG_MAGIC_VALUE) return 1;
  if (c.version != <u32>L.LAYOUT_VERSION) return 2;
  loadConfig();
  if (gSlot < 128 || gSlot > 65535 || gBatchMax == 0) return 3;
  if (gDesc == 0 || gArena == 0 || gTrace == 0 || gCounters == 0 || gSvcCnt == 0 || gBeCnt == 0 ||
      gCtIdx == 0 || gCtFlows == 0 || gAff == 0 || gPortMtu == 0 || gPortAddr == 0) return 4;
  if (((gCtMask + 1) & gCtMask) != 0 || ((gAffMask + 1) & gAffMask) != 0) return 5;
  if (gCtMax == 0 || <u64>gCtMask + 1 < <u64>gCtMax * 2 + 2) return 6;
  const memEnd = <u64>memory.size() << 16;
  if (<u64>gDesc + <u64>gBatchMax * L.DESC_SIZE > memEnd) return 7;
  if (<u64>gArena + <u64>gBatchMax * gSlot > memEnd) return 7;
  if (<u64>gTrace + <u64>gBatchMax * L.TRACE_SIZE > memEnd) return 7;
  if (<u64>gCounters + <u64>(L.GC_COUNT + L.REASON_COUNT) * 8 > memEnd) return 7;
  if (<u64>gSvcCnt + (<u64>gSvcMax + 1) * L.PC_SIZE > memEnd) return 7;
  if (<u64>gBeCnt + (<u64>gBeCntMax + 1) * L.PC_SIZE > memEnd) return 7;
  if (<u64>gCtIdx + (<u64>gCtMask + 1) * L.CTI_SIZE > memEnd) return 7;
  if (<u64>gCtFlows + (<u64>gCtMax + 1) * L.CT_SIZE > memEnd) return 7;
  if (<u64>gAff + (<u64>gAffMask + 1) * L.AFF_SIZE > memEnd) return 7;
  if (<u64>gPortMtu + <u64>L.PORT_MTU_ENTRIES * 2 > memEnd) return 7;
  if (<u64>gPortAddr + <u64>L.PORT_MTU_ENTRIES * L.PA_SIZE > memEnd) return 7;
  const ts0 = c.tableset0Off, ts1 = c.tableset1Off;
  if (ts0 == 0 || ts1 == 0 || <u64>ts0 + L.TSH_SIZE > memEnd || <u64>ts1 + L.TSH_SIZE > memEnd) return 8;
  return 0;
}

/** Zeroes the global, reason, per-frontend and per-backend counters. */
export function clearCounters(): void {
  memory.fill(gCounters, 0, (L.GC_COUNT + L.REASON_COUNT) * 8);
  memory.fill(gSvcCnt, 0, (gSvcMax + 1) * L.PC_SIZE);
  memory.fill(gBeCnt, 0, (gBeCntMax + 1) * L.PC_SIZE);
}

// ---- record addresses ------------------------------------------------------------------------------
@inline export function descAt(i: u32): Desc { return changetype<Desc>(gDesc + <usize>i * L.DESC_SIZE); }
@inline export function slotAt(i: u32): usize { return gArena + <usize>i * gSlot; }
@inline export function traceAt(i: u32): TraceRec { return changetype<TraceRec>(gTrace + <usize>i * L.TRACE_SIZE); }
@inline export function ctSlotAt(slot: u32): CtSlot { return changetype<CtSlot>(gCtIdx + (<usize>slot << 3)); }
@inline export function flowAt(flow: u32): CtFlow { return changetype<CtFlow>(gCtFlows + <usize>flow * L.CT_SIZE); }
@inline export function affAt(slot: u32): AffEntry { return changetype<AffEntry>(gAff + (<usize>slot << 5)); }
@inline export function backendAt(id: u32): Backend { return changetype<Backend>(tBe + <usize>id * L.BE_SIZE); }
@inline export function frontendAt(id: u32): Frontend { return changetype<Frontend>(tFe + <usize>id * L.FE_SIZE); }
@inline export function svcCountersAt(front: u32): CounterPair { return changetype<CounterPair>(gSvcCnt + <usize>front * L.PC_SIZE); }
@inline export function beCountersAt(backend: u32): CounterPair { return changetype<CounterPair>(gBeCnt + <usize>backend * L.PC_SIZE); }

/** SNAT source address of a family (CFG_SNAT_V4 / CFG_SNAT_V6). */
@inline export function snatAddr(family: u32): usize {
  return family == 4 ? config().snatV4Addr : config().snatV6Addr;
}

/** Whether CONFIG has a SNAT address for the family (CFG_HAS_SNAT bit 0: v4, bit 1: v6). */
@inline export function hasSnat(family: u32): bool { return (gHasSnat & (family == 4 ? 1 : 2)) != 0; }

/** Hairpin source address of a family (CFG_HAIRPIN_V4 / CFG_HAIRPIN_V6). */
@inline export function hairpinAddr(family: u32): usize {
  return family == 4 ? config().hairpinV4Addr : config().hairpinV6Addr;
}

/** Whether CONFIG has a hairpin address for the family (CFG_HAS_SNAT bit 2: v4, bit 3: v6). */
@inline export function hasHairpin(family: u32): bool { return (gHasSnat & (family == 4 ? 4 : 8)) != 0; }

/** The source address a source-translated flow was given, from its CTF_* flags: the hairpin
 * address with CTF_HAIRPIN, else the SNAT address of its family. */
@inline export function flowSnatAddr(flags: u32, family: u32): usize {
  return (flags & L.CTF_HAIRPIN) != 0 ? hairpinAddr(family) : snatAddr(family);
}

@inline export function timeoutOf(state: u32): u32 { return load<u32>(TO_TABLE + (<usize>(state & (L.CTS_COUNT - 1)) << 2)); }

// ---- counters ---------------------------------------------------------------------------------------
/** Global counter i (GC_*, or GC_COUNT + reason) += v. */
@inline export function count(i: i32, v: u64): void {
  const p = gCounters + (<usize>i << 3);
  store<u64>(p, load<u64>(p) + v);
}

@inline export function setFlowsActive(n: u32): void {
  store<u64>(gCounters + (<usize>L.GC_CT_ACTIVE << 3), n);
}

/** Per-frontend and per-backend counters (+1 packet, + bytes); 0 / out-of-range ids are skipped. */
@inline export function countFrontBackend(front: u32, backend: u32, bytes: u32): void {
  if (!gLive) return;
  if (front != 0 && front <= gSvcMax) {
    const c = svcCountersAt(front);
    c.packets += 1;
    c.bytes += bytes;
  }
  if (backend != 0 && backend <= gBeCntMax) {
    const c = beCountersAt(backend);
    c.packets += 1;
    c.bytes += bytes;
  }
}
