// Typed views of the shared memory records (assembly/layout.ts is the contract; the TypeScript host
// reads and writes the same bytes through those constants). Each class is @unmanaged: no header,
// never allocated; `changetype<Rec>(ptr)` makes a view of the record at `ptr`, and a field access
// compiles to one load/store with the field's offset as its immediate, exactly as a raw
// `load<u32>(p, L.X)` does. AssemblyScript lays fields out in declaration order, each aligned to
// its size; every field whose offset the layout names is checked at compile time below (a
// mismatch is a build error naming the field), and test/layout.test.js checks the sizes from the
// running module. 16-byte address fields are declared v128 only to reserve (and align) their 16
// bytes: addresses are compared and copied through their pointers (addr.ts), never as vectors.
// MAC fields are 6 bytes and split into a word and a half-word (or the reverse) to keep every
// later field at its layout offset; they are reached through their pointer getters.
import * as L from "./layout";

// ---- CONFIG block (CFG_SIZE = 256, static, at config_ptr()) --------------------------------------
//   0 magic | 4 version | 8 gen | 12 trace | 16 batch max | 20 slot size | 24..84 region offsets,
//   capacities and masks (see the fields) | 88..112 timeouts (ms) | 116 expire budget |
//   120 evict window | 124 (free) | 128 SNAT v4 addr[16] | 144 SNAT v6 addr[16] | 160 has SNAT |
//   164 SNAT port min | 168 SNAT port max | 172 .. 256 (free)
//   0       4       8     12     16      20      24     28      32     36       40       44
//   +-------+-------+-----+------+-------+-------+------+-------+------+--------+--------+------+
//   | magic |version| gen |trace |batchmx| slot  | desc | arena |trace |counters|svc cnt |svcmax|
//   +-------+-------+-----+------+-------+-------+------+-------+------+--------+--------+------+
//   48      52      56      60      64       68       72    76     80      84      88 .. 112
//   +-------+-------+-------+-------+--------+--------+-----+------+-------+-------+-----------+
//   |be cnt |be max |ct idx |ct mask|ct flows|flow max| aff |aff mk| tset0 | tset1 | timeouts  |
//   +-------+-------+-------+-------+--------+--------+-----+------+-------+-------+-----------+
//   116     120     124     128              144              160     164      168      172
//   +-------+-------+-------+----------------+----------------+-------+--------+--------+
//   |expire |evict  |(free) | SNAT v4 addr   | SNAT v6 addr   |hasSNAT|port min|port max|
//   +-------+-------+-------+----------------+----------------+-------+--------+--------+
@unmanaged export class Config {
  magic: u32;
  version: u32;
  gen: u32;
  trace: u32;
  batchMax: u32;
  slotSize: u32;
  descOff: u32;
  arenaOff: u32;
  traceOff: u32;
  countersOff: u32;
  svcCountersOff: u32;
  svcMax: u32;
  beCountersOff: u32;
  beMax: u32;
  ctIndexOff: u32;
  ctIndexMask: u32;
  ctFlowsOff: u32;
  ctFlowsMax: u32;
  affOff: u32;
  affMask: u32;
  tableset0Off: u32;
  tableset1Off: u32;
  toTcpSyn: u32;
  toTcpEst: u32;
  toTcpClose: u32;
  toUdp: u32;
  toUdpReplied: u32;
  toSctp: u32;
  toIcmp: u32;
  expireBudget: u32;
  evictWindow: u32;
  toTcpUnconfirmed: u32;
  snatV4: v128;
  snatV6: v128;
  hasSnat: u32;
  snatPortMin: u32;
  snatPortMax: u32;
  fragOff: u32;
  fragMask: u32;
  toFrag: u32;
  steerWorkers: u32;
  steerSelf: u32;
  hairpinV4: v128;
  hairpinV6: v128;
  toTcpHalfClosed: u32;
  tableEpoch: u32;
  portMtuOff: u32;
  portAddrOff: u32;
  toSctpHandshake: u32;
  toSctpShutdown: u32;
  toSctpClosed: u32;
  toSctpHeartbeat: u32;

  @inline get snatV4Addr(): usize { return changetype<usize>(this) + offsetof<Config>("snatV4"); }
  @inline get snatV6Addr(): usize { return changetype<usize>(this) + offsetof<Config>("snatV6"); }
  @inline get hairpinV4Addr(): usize { return changetype<usize>(this) + offsetof<Config>("hairpinV4"); }
  @inline get hairpinV6Addr(): usize { return changetype<usize>(this) + offsetof<Config>("hairpinV6"); }
}

// ---- Descriptor (DESC_SIZE = 16, one per frame of the batch) ------------------------------------
//   0       2         4          6         7        8            12          16
//   +-------+---------+----------+---------+--------+------------+-----------+
//   | len   | in_port | out_port | verdict | reason | flow hash  | flags     |
//   +-------+---------+----------+---------+--------+------------+-----------+
@unmanaged export class Desc {
  len: u16;
  inPort: u16;
  outPort: u16;
  verdict: u8;
  reason: u8;
  hash: u32;
  aux: u32;
}

// ---- Per-frontend / per-backend counter pair (PC_SIZE = 16) -------------------------------------
//   0                  8                  16
//   +------------------+------------------+
//   | packets u64      | bytes u64        |
//   +------------------+------------------+
@unmanaged export class CounterPair {
  packets: u64;
  bytes: u64;
}

// ---- Conntrack index slot (CTI_SIZE = 8) --------------------------------------------------------
//   0        4                    8
//   +--------+--------------------+
//   | hash   | flow << 1 | dir    |   ref 0 = empty
//   +--------+--------------------+
@unmanaged export class CtSlot {
  hash: u32;
  ref: u32;
}

// ---- Conntrack flow entry (CT_SIZE = 96) ---------------------------------------------------------
//   0                16               32               48   50   52   54   56  57  58  59  60
//   +----------------+----------------+----------------+----+----+----+----+---+---+---+---+
//   | client addr    | VIP addr       | backend addr   |cprt|vprt|bprt|nprt|pro|fam|st |flg|
//   +----------------+----------------+----------------+----+----+----+----+---+---+---+---+
//   60         64         68           72      74       76             82             88
//   +----------+----------+------------+-------+--------+--------------+--------------+
//   | last_seen| front id | backend id | c.port|(rsrvd) | client MAC   | local MAC    |
//   +----------+----------+------------+-------+--------+--------------+--------------+
//   88         92                      96
//   +----------+-----------------------+
//   | created  | reply hash/next_free  |   (in use: reply-key index hash; free: free-list link)
//   +----------+-----------------------+
// ---- Fragment entry (FRAG_SIZE = 48; FRAG_WAYS per bucket) -----------------------------------------
//   0                16               32    34    36  37  38      40       44         48
//   +----------------+----------------+-----+-----+---+---+-------+--------+----------+
//   | src addr       | dst addr       |sport|dport|pro|fam|  (0)  | IP ID  | last seen|
//   +----------------+----------------+-----+-----+---+---+-------+--------+----------+
//   the ports of a first fragment, for the later fragments of its datagram (family 0 = empty)
@unmanaged export class FragEntry {
  src: v128;
  dst: v128;
  sport: u16;
  dport: u16;
  proto: u8;
  family: u8;
  pad: u16;
  id: u32;
  lastSeen: u32;

  @inline get srcAddr(): usize { return changetype<usize>(this) + offsetof<FragEntry>("src"); }
  @inline get dstAddr(): usize { return changetype<usize>(this) + offsetof<FragEntry>("dst"); }
}

@unmanaged export class CtFlow {
  client: v128;
  vip: v128;
  backend: v128;
  cport: u16;
  vport: u16;
  bport: u16;
  nport: u16;
  proto: u8;
  family: u8;
  state: u8;
  flags: u8;
  lastSeen: u32;
  front: u32;
  backendId: u32;
  clientPort: u16;
  outPort: u16;        // reserved (CT_OUT_PORT): not written, 0 (a restore sets 0 too)
  clientMac: u32;
  clientMacTail: u16;
  localMac: u16;
  localMacTail: u32;
  created: u32;
  replyHash: u32;      // shares its bytes with the free-list link (CT_NEXT_FREE)

  @inline get ptr(): usize { return changetype<usize>(this); }
  @inline get clientAddr(): usize { return changetype<usize>(this) + offsetof<CtFlow>("client"); }
  @inline get vipAddr(): usize { return changetype<usize>(this) + offsetof<CtFlow>("vip"); }
  @inline get backendAddr(): usize { return changetype<usize>(this) + offsetof<CtFlow>("backend"); }
  @inline get clientMacPtr(): usize { return changetype<usize>(this) + offsetof<CtFlow>("clientMac"); }
  @inline get localMacPtr(): usize { return changetype<usize>(this) + offsetof<CtFlow>("localMac"); }
  /** cport | vport << 16: the original key's ports as one word. */
  @inline get origPorts(): u32 { return load<u32>(changetype<usize>(this), offsetof<CtFlow>("cport")); }
  /** bport | nport << 16: the reply key's ports as one word. */
  @inline get replyPorts(): u32 { return load<u32>(changetype<usize>(this), offsetof<CtFlow>("bport")); }
  /** proto | family << 8, compared with the packet's in one load. */
  @inline get protoFamily(): u32 { return <u32>load<u16>(changetype<usize>(this), offsetof<CtFlow>("proto")); }
  @inline get nextFree(): u32 { return this.replyHash; }
  @inline set nextFree(v: u32) { this.replyHash = v; }
}

// ---- Affinity entry (AFF_SIZE = 32) --------------------------------------------------------------
//   0                16         20           24          28      32
//   +----------------+----------+------------+-----------+-------+
//   | client addr    | front id | backend id | last_seen | hash  |   front 0 = empty
//   +----------------+----------+------------+-----------+-------+
@unmanaged export class AffEntry {
  client: v128;
  front: u32;
  backend: u32;
  lastSeen: u32;
  hash: u32;

  @inline get clientAddr(): usize { return changetype<usize>(this) + offsetof<AffEntry>("client"); }
}

// ---- Trace record (TRACE_SIZE = 32, per frame when CFG_TRACE has TRACE_ON) -----------------------
//   0         4   5   6        8        12        16       20  21  22  23  24    26    28      32
//   +---------+---+---+--------+--------+---------+--------+---+---+---+---+-----+-----+-------+
//   | stages  |vrd|rsn|out_prt | front  | backend | flow   |ct |sel|pro|fam| l3  | l4  | hash  |
//   +---------+---+---+--------+--------+---------+--------+---+---+---+---+-----+-----+-------+
@unmanaged export class TraceRec {
  stages: u32;
  verdict: u8;
  reason: u8;
  outPort: u16;
  front: u32;
  backend: u32;
  flow: u32;
  ct: u8;
  select: u8;
  proto: u8;
  family: u8;
  l3: u16;
  l4: u16;
  hash: u32;
}

// ---- Table-set header (TSH_SIZE = 64, offsets absolute) ------------------------------------------
//   0        4        8        12       16       20       24       28       32       36
//   +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
//   | svcmap | smask  | fronts | fe max | backs  | be max | maglev | words  | cidrs  | cidr mx|
//   +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
//   40       44       48       52        56 .. 64
//   +--------+--------+--------+---------+--------+
//   | routes | rt cnt | rt max | loc cnt | (free) |
//   +--------+--------+--------+---------+--------+
@unmanaged export class TableSetHeader {
  svcmapOff: u32;
  svcmapMask: u32;
  frontOff: u32;
  frontMax: u32;
  backendOff: u32;
  backendMax: u32;
  maglevOff: u32;
  maglevWords: u32;
  cidrOff: u32;
  cidrMax: u32;
  routeOff: u32;
  routeCount: u32;
  routeMax: u32;
  localCount: u32;
}

// ---- Service-map slot (SM_SIZE = 32) -------------------------------------------------------------
//   0                16     18  19  20         24      28         32
//   +----------------+------+---+---+----------+-------+----------+
//   | VIP addr       | port |pro|fam| front id | hash  | (free)   |   front 0 = empty
//   +----------------+------+---+---+----------+-------+----------+
@unmanaged export class SvcSlot {
  addr: v128;
  port: u16;
  proto: u8;
  family: u8;
  front: u32;
  hash: u32;

  @inline get addrPtr(): usize { return changetype<usize>(this) + offsetof<SvcSlot>("addr"); }
  /** port | proto << 16 | family << 24: the non-address key as one word. */
  @inline get key(): u32 { return load<u32>(changetype<usize>(this), offsetof<SvcSlot>("port")); }
}

// ---- Frontend entry (FE_SIZE = 64, index = frontend id) ------------------------------------------
//   0       4          8          12         16        20         24          28       32
//   +-------+----------+----------+----------+---------+----------+-----------+--------+
//   | flags | mg. off  | mg. size | aff. ms  | cidr off| cidr cnt | nbackends | clu.fe |
//   +-------+----------+----------+----------+---------+----------+-----------+--------+
//   32               48     50  51  52 .. 64
//   +----------------+------+---+---+--------+
//   | VIP addr       | port |pro|fam| (free) |
//   +----------------+------+---+---+--------+
@unmanaged export class Frontend {
  flags: u32;
  maglevOff: u32;
  maglevSize: u32;     // 0 = no endpoints: reject
  affTimeout: u32;
  cidrOff: u32;
  cidrCount: u32;
  nBackends: u32;
  clusterFront: u32;   // 0 = none
  addr: v128;
  port: u16;
  proto: u8;
  family: u8;
  @inline get addrPtr(): usize { return changetype<usize>(this) + offsetof<Frontend>("addr"); }
}

// ---- Backend entry (BE_SIZE = 64, index = backend id) --------------------------------------------
//   0                16     18  19  20       22       24             30             36 .. 64
//   +----------------+------+---+---+--------+--------+--------------+--------------+--------+
//   | addr           | port |fam|st | out_prt| (free) | dst MAC      | src MAC      | (free) |
//   +----------------+------+---+---+--------+--------+--------------+--------------+--------+
@unmanaged export class Backend {
  addr: v128;
  port: u16;
  family: u8;
  state: u8;
  outPort: u16;
  reserved: u16;
  dstMac: u32;
  dstMacTail: u16;
  srcMac: u16;
  srcMacTail: u32;

  @inline get addrPtr(): usize { return changetype<usize>(this) + offsetof<Backend>("addr"); }
  @inline get dstMacPtr(): usize { return changetype<usize>(this) + offsetof<Backend>("dstMac"); }
  @inline get srcMacPtr(): usize { return changetype<usize>(this) + offsetof<Backend>("srcMac"); }
}

// ---- CIDR entry (CIDR_SIZE = 20) -----------------------------------------------------------------
//   0                16   17  18 .. 20
//   +----------------+----+---+------+
//   | addr           |plen|fam|(free)|
//   +----------------+----+---+------+
@unmanaged export class Cidr {
  addr: v128;
  plen: u8;
  family: u8;

  @inline get addrPtr(): usize { return changetype<usize>(this) + offsetof<Cidr>("addr"); }
}

// ---- Route entry (RT_SIZE = 48) ------------------------------------------------------------------
//   0                16   17  18       20             26             32
//   +----------------+----+---+--------+--------------+--------------+
//   | prefix addr    |plen|fam| out_prt| dst MAC      | src MAC      |
//   +----------------+----+---+--------+--------------+--------------+
@unmanaged export class Route {
  addr: v128;
  plen: u8;
  family: u8;
  outPort: u16;
  dstMac: u32;
  dstMacTail: u16;
  srcMac: u16;
  srcMacTail: u32;
  kind: u8;
  _pad0: u8;
  _pad1: u16;
  _pad2: u32;
  _pad3: u64;

  @inline get addrPtr(): usize { return changetype<usize>(this) + offsetof<Route>("addr"); }
  @inline get dstMacPtr(): usize { return changetype<usize>(this) + offsetof<Route>("dstMac"); }
  @inline get srcMacPtr(): usize { return changetype<usize>(this) + offsetof<Route>("srcMac"); }
}

// ---- compile-time agreement with layout.ts (a mismatch fails the build) --------------------------
if (offsetof<Config>("magic") != L.CFG_MAGIC || offsetof<Config>("version") != L.CFG_VERSION ||
    offsetof<Config>("gen") != L.CFG_GEN || offsetof<Config>("trace") != L.CFG_TRACE ||
    offsetof<Config>("batchMax") != L.CFG_BATCH_MAX || offsetof<Config>("slotSize") != L.CFG_SLOT_SIZE ||
    offsetof<Config>("descOff") != L.CFG_DESC_OFF || offsetof<Config>("arenaOff") != L.CFG_ARENA_OFF ||
    offsetof<Config>("traceOff") != L.CFG_TRACE_OFF || offsetof<Config>("countersOff") != L.CFG_COUNTERS_OFF ||
    offsetof<Config>("svcCountersOff") != L.CFG_SVC_COUNTERS_OFF || offsetof<Config>("svcMax") != L.CFG_SVC_MAX ||
    offsetof<Config>("beCountersOff") != L.CFG_BE_COUNTERS_OFF || offsetof<Config>("beMax") != L.CFG_BE_MAX ||
    offsetof<Config>("ctIndexOff") != L.CFG_CT_INDEX_OFF || offsetof<Config>("ctIndexMask") != L.CFG_CT_INDEX_MASK ||
    offsetof<Config>("ctFlowsOff") != L.CFG_CT_FLOWS_OFF || offsetof<Config>("ctFlowsMax") != L.CFG_CT_FLOWS_MAX ||
    offsetof<Config>("affOff") != L.CFG_AFF_OFF || offsetof<Config>("affMask") != L.CFG_AFF_MASK ||
    offsetof<Config>("tableset0Off") != L.CFG_TABLESET0_OFF || offsetof<Config>("tableset1Off") != L.CFG_TABLESET1_OFF ||
    offsetof<Config>("toTcpSyn") != L.CFG_TO_TCP_SYN || offsetof<Config>("toTcpEst") != L.CFG_TO_TCP_EST ||
    offsetof<Config>("toTcpClose") != L.CFG_TO_TCP_CLOSE || offsetof<Config>("toUdp") != L.CFG_TO_UDP ||
    offsetof<Config>("toUdpReplied") != L.CFG_TO_UDP_REPLIED || offsetof<Config>("toSctp") != L.CFG_TO_SCTP ||
    offsetof<Config>("toIcmp") != L.CFG_TO_ICMP || offsetof<Config>("expireBudget") != L.CFG_EXPIRE_BUDGET ||
    offsetof<Config>("evictWindow") != L.CFG_EVICT_WINDOW ||
    offsetof<Config>("toTcpUnconfirmed") != L.CFG_TO_TCP_UNCONFIRMED || offsetof<Config>("snatV4") != L.CFG_SNAT_V4 ||
    offsetof<Config>("snatV6") != L.CFG_SNAT_V6 || offsetof<Config>("hasSnat") != L.CFG_HAS_SNAT ||
    offsetof<Config>("hairpinV4") != L.CFG_HAIRPIN_V4 || offsetof<Config>("hairpinV6") != L.CFG_HAIRPIN_V6 ||
    offsetof<Config>("toTcpHalfClosed") != L.CFG_TO_TCP_HALF_CLOSED || offsetof<Config>("tableEpoch") != L.CFG_TABLE_EPOCH ||
    offsetof<Config>("portMtuOff") != L.CFG_PORT_MTU_OFF || offsetof<Config>("portAddrOff") != L.CFG_PORT_ADDR_OFF ||
    offsetof<Config>("toSctpHandshake") != L.CFG_TO_SCTP_HANDSHAKE || offsetof<Config>("toSctpShutdown") != L.CFG_TO_SCTP_SHUTDOWN ||
    offsetof<Config>("toSctpClosed") != L.CFG_TO_SCTP_CLOSED || offsetof<Config>("toSctpHeartbeat") != L.CFG_TO_SCTP_HEARTBEAT ||
    offsetof<Config>("snatPortMin") != L.CFG_SNAT_PORT_MIN || offsetof<Config>("snatPortMax") != L.CFG_SNAT_PORT_MAX ||
    offsetof<Config>("fragOff") != L.CFG_FRAG_OFF || offsetof<Config>("fragMask") != L.CFG_FRAG_MASK ||
    offsetof<Config>("toFrag") != L.CFG_TO_FRAG ||
    offsetof<Config>("steerWorkers") != L.CFG_STEER_WORKERS || offsetof<Config>("steerSelf") != L.CFG_STEER_SELF ||
    <i32>offsetof<Config>() > L.CFG_SIZE) ERROR("Config disagrees with layout.ts");
if (offsetof<Desc>("len") != L.D_LEN || offsetof<Desc>("inPort") != L.D_IN_PORT ||
    offsetof<Desc>("outPort") != L.D_OUT_PORT || offsetof<Desc>("verdict") != L.D_VERDICT ||
    offsetof<Desc>("reason") != L.D_REASON || offsetof<Desc>("hash") != L.D_HASH ||
    offsetof<Desc>("aux") != L.D_AUX || offsetof<Desc>() != L.DESC_SIZE) ERROR("Desc disagrees with layout.ts");
if (offsetof<CounterPair>("packets") != L.PC_PACKETS || offsetof<CounterPair>("bytes") != L.PC_BYTES ||
    offsetof<CounterPair>() != L.PC_SIZE) ERROR("CounterPair disagrees with layout.ts");
if (offsetof<CtSlot>("hash") != L.CTI_HASH || offsetof<CtSlot>("ref") != L.CTI_REF ||
    offsetof<CtSlot>() != L.CTI_SIZE) ERROR("CtSlot disagrees with layout.ts");
if (offsetof<CtFlow>("client") != L.CT_CLIENT || offsetof<CtFlow>("vip") != L.CT_VIP ||
    offsetof<CtFlow>("backend") != L.CT_BACKEND || offsetof<CtFlow>("cport") != L.CT_CPORT ||
    offsetof<CtFlow>("vport") != L.CT_VPORT || offsetof<CtFlow>("bport") != L.CT_BPORT ||
    offsetof<CtFlow>("nport") != L.CT_NPORT || offsetof<CtFlow>("proto") != L.CT_PROTO ||
    offsetof<CtFlow>("family") != L.CT_FAMILY || offsetof<CtFlow>("state") != L.CT_STATE ||
    offsetof<CtFlow>("flags") != L.CT_FLAGS || offsetof<CtFlow>("lastSeen") != L.CT_LAST_SEEN ||
    offsetof<CtFlow>("front") != L.CT_FRONT || offsetof<CtFlow>("backendId") != L.CT_BACKEND_ID ||
    offsetof<CtFlow>("clientPort") != L.CT_CLIENT_PORT || offsetof<CtFlow>("outPort") != L.CT_OUT_PORT ||
    offsetof<CtFlow>("clientMac") != L.CT_CLIENT_MAC || offsetof<CtFlow>("localMac") != L.CT_LOCAL_MAC ||
    offsetof<CtFlow>("created") != L.CT_CREATED || offsetof<CtFlow>("replyHash") != L.CT_REPLY_HASH ||
    offsetof<CtFlow>("replyHash") != L.CT_NEXT_FREE || offsetof<CtFlow>() != L.CT_SIZE) ERROR("CtFlow disagrees with layout.ts");
if (offsetof<FragEntry>("src") != L.FRAG_SRC || offsetof<FragEntry>("dst") != L.FRAG_DST ||
    offsetof<FragEntry>("sport") != L.FRAG_SPORT || offsetof<FragEntry>("dport") != L.FRAG_DPORT ||
    offsetof<FragEntry>("proto") != L.FRAG_PROTO || offsetof<FragEntry>("family") != L.FRAG_FAMILY ||
    offsetof<FragEntry>("id") != L.FRAG_ID || offsetof<FragEntry>("lastSeen") != L.FRAG_LAST_SEEN ||
    offsetof<FragEntry>() != L.FRAG_SIZE) ERROR("FragEntry disagrees with layout.ts");
if (offsetof<AffEntry>("client") != L.AFF_CLIENT || offsetof<AffEntry>("front") != L.AFF_FRONT ||
    offsetof<AffEntry>("backend") != L.AFF_BACKEND || offsetof<AffEntry>("lastSeen") != L.AFF_LAST_SEEN ||
    offsetof<AffEntry>("hash") != L.AFF_HASH || offsetof<AffEntry>() != L.AFF_SIZE) ERROR("AffEntry disagrees with layout.ts");
if (offsetof<TraceRec>("stages") != L.TR_STAGES || offsetof<TraceRec>("verdict") != L.TR_VERDICT ||
    offsetof<TraceRec>("reason") != L.TR_REASON || offsetof<TraceRec>("outPort") != L.TR_OUT_PORT ||
    offsetof<TraceRec>("front") != L.TR_FRONT || offsetof<TraceRec>("backend") != L.TR_BACKEND ||
    offsetof<TraceRec>("flow") != L.TR_FLOW || offsetof<TraceRec>("ct") != L.TR_CT ||
    offsetof<TraceRec>("select") != L.TR_SELECT || offsetof<TraceRec>("proto") != L.TR_PROTO ||
    offsetof<TraceRec>("family") != L.TR_FAMILY || offsetof<TraceRec>("l3") != L.TR_L3 ||
    offsetof<TraceRec>("l4") != L.TR_L4 || offsetof<TraceRec>("hash") != L.TR_HASH ||
    offsetof<TraceRec>() != L.TRACE_SIZE) ERROR("TraceRec disagrees with layout.ts");
if (offsetof<TableSetHeader>("svcmapOff") != L.TSH_SVCMAP_OFF || offsetof<TableSetHeader>("svcmapMask") != L.TSH_SVCMAP_MASK ||
    offsetof<TableSetHeader>("frontOff") != L.TSH_FRONT_OFF || offsetof<TableSetHeader>("frontMax") != L.TSH_FRONT_MAX ||
    offsetof<TableSetHeader>("backendOff") != L.TSH_BACKEND_OFF || offsetof<TableSetHeader>("backendMax") != L.TSH_BACKEND_MAX ||
    offsetof<TableSetHeader>("maglevOff") != L.TSH_MAGLEV_OFF || offsetof<TableSetHeader>("maglevWords") != L.TSH_MAGLEV_WORDS ||
    offsetof<TableSetHeader>("cidrOff") != L.TSH_CIDR_OFF || offsetof<TableSetHeader>("cidrMax") != L.TSH_CIDR_MAX ||
    offsetof<TableSetHeader>("routeOff") != L.TSH_ROUTE_OFF || offsetof<TableSetHeader>("routeCount") != L.TSH_ROUTE_COUNT ||
    offsetof<TableSetHeader>("routeMax") != L.TSH_ROUTE_MAX || offsetof<TableSetHeader>("localCount") != L.TSH_LOCAL_COUNT || <i32>offsetof<TableSetHeader>() > L.TSH_SIZE) ERROR("TableSetHeader disagrees with layout.ts");
if (offsetof<SvcSlot>("addr") != L.SM_ADDR || offsetof<SvcSlot>("port") != L.SM_PORT ||
    offsetof<SvcSlot>("proto") != L.SM_PROTO || offsetof<SvcSlot>("family") != L.SM_FAMILY ||
    offsetof<SvcSlot>("front") != L.SM_FRONT || offsetof<SvcSlot>("hash") != L.SM_HASH ||
    <i32>offsetof<SvcSlot>() > L.SM_SIZE) ERROR("SvcSlot disagrees with layout.ts");
if (offsetof<Frontend>("flags") != L.FE_FLAGS || offsetof<Frontend>("maglevOff") != L.FE_MAGLEV_OFF ||
    offsetof<Frontend>("maglevSize") != L.FE_MAGLEV_SIZE || offsetof<Frontend>("affTimeout") != L.FE_AFF_TIMEOUT ||
    offsetof<Frontend>("cidrOff") != L.FE_CIDR_OFF || offsetof<Frontend>("cidrCount") != L.FE_CIDR_COUNT ||
    offsetof<Frontend>("nBackends") != L.FE_NBACKENDS || offsetof<Frontend>("clusterFront") != L.FE_CLUSTER_FRONT ||
    offsetof<Frontend>("addr") != L.FE_ADDR ||
    offsetof<Frontend>("port") != L.FE_PORT || offsetof<Frontend>("proto") != L.FE_PROTO ||
    offsetof<Frontend>("family") != L.FE_FAMILY || <i32>offsetof<Frontend>() > L.FE_SIZE) ERROR("Frontend disagrees with layout.ts");
if (offsetof<Backend>("addr") != L.BE_ADDR || offsetof<Backend>("port") != L.BE_PORT ||
    offsetof<Backend>("family") != L.BE_FAMILY || offsetof<Backend>("state") != L.BE_STATE ||
    offsetof<Backend>("outPort") != L.BE_OUT_PORT || offsetof<Backend>("dstMac") != L.BE_DST_MAC ||
    offsetof<Backend>("srcMac") != L.BE_SRC_MAC || <i32>offsetof<Backend>() > L.BE_SIZE) ERROR("Backend disagrees with layout.ts");
if (offsetof<Cidr>("addr") != L.CIDR_ADDR || offsetof<Cidr>("plen") != L.CIDR_PLEN ||
    offsetof<Cidr>("family") != L.CIDR_FAMILY || <i32>offsetof<Cidr>() > L.CIDR_SIZE) ERROR("Cidr disagrees with layout.ts");
if (offsetof<Route>("addr") != L.RT_ADDR || offsetof<Route>("plen") != L.RT_PLEN ||
    offsetof<Route>("family") != L.RT_FAMILY || offsetof<Route>("outPort") != L.RT_OUT_PORT ||
    offsetof<Route>("dstMac") != L.RT_DST_MAC || offsetof<Route>("srcMac") != L.RT_SRC_MAC ||
    offsetof<Route>("kind") != L.RT_KIND || offsetof<Route>() != L.RT_SIZE) ERROR("Route disagrees with layout.ts");
