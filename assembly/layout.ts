// wdp memory layout — THE single source of truth for Wasm and TypeScript.
//
// This file is compiled twice: by asc into the forwarding core (assembly/) and by tsc into the
// control layer (dist/assembly/layout.js, imported by src/). It may therefore only contain
// `export const NAME = <integer expression of literals and earlier constants>;` lines and
// comments. No types, no functions, no strings. test/layout.test.js checks that every constant
// here equals the global the built core.wasm exports under the same name, so a stale build or a
// hand-edited copy cannot drift.
//
// Conventions
//   * All offsets are byte offsets. All multi-byte table fields are little-endian (native Wasm).
//   * Packet bytes are network order; the core uses bswap when it reads ports/lengths.
//   * An address is always 16 bytes: IPv6 as-is; IPv4 in bytes 0..3 and bytes 4..15 zero, with a
//     separate family byte (4 or 6) next to it.
//   * Index 0 is invalid everywhere (frontend 0, backend 0, flow 0): a zero word means "empty".
//   * Times are u32 milliseconds on the core clock (host passes `now` to process()); comparisons
//     are wrap-safe: (now - then) as u32.
//
// ============================================================================================
// Memory map (regions are placed by the host after the core's __heap_base, 64-byte aligned;
// their absolute offsets are written into the CONFIG block before init() is called)
//
//   0 ............ static data of the core (crc tables, scratch, CONFIG block, live trace filter block)
//   CONFIG ....... CFG_SIZE bytes at config_ptr(): offsets, capacities, timeouts, generation word
//   DESC ......... BATCH_MAX x DESC_SIZE   per-frame descriptors (in: len, in_port; out: verdict)
//   ARENA ........ BATCH_MAX x SLOT_SIZE   packet slots, frame at slot start, rewritten in place
//   TRACE ........ BATCH_MAX x TRACE_SIZE  per-frame trace records (written only when traced)
//   COUNTERS ..... GC_COUNT x u64 global counters, then REASON_COUNT x u64 per-reason counters
//   SVC_COUNTERS . (SVC_MAX+1) x 16        per-frontend {packets u64, bytes u64}
//   BE_COUNTERS .. (BE_MAX+1) x 16         per-backend  {packets u64, bytes u64}
//   CT_INDEX ..... CT_INDEX_SLOTS x 8      conntrack hash index (both directions of each flow)
//   CT_FLOWS ..... (CT_FLOWS_MAX+1) x 96   conntrack flow entries
//   AFFINITY ..... AFF_SLOTS x 32          sessionAffinity ClientIP table
//   FRAGMENTS .... buckets x FRAG_WAYS x 48 first fragments' ports, by (src, dst, proto, IP ID)
//   PORT_MTU ..... PORT_MTU_ENTRIES x u16   egress MTU per port index (0xffff = unknown, unchecked)
//   PORT_ADDR .... PORT_MTU_ENTRIES x PA_SIZE  per port index the node's IPv4 / IPv6 address the core's
//                                          own ICMP errors (time exceeded, a reject not to a node
//                                          address) come from (0 = none)
//   (the reject rate limit's block is static data of the core, at reject_limit_ptr(): see below)
//   TABLESET[0] .. service tables, generation 0  } written by the host (src/core/table-writer.ts);
//   TABLESET[1] .. service tables, generation 1  } the core reads the one CFG_GEN names.
// ============================================================================================

export const LAYOUT_VERSION = 3;
export const CFG_MAGIC_VALUE = 0x31504457; // "WDP1"

// ---- CONFIG block (u32 fields unless noted) -------------------------------------------------
export const CFG_MAGIC = 0;
export const CFG_VERSION = 4;
export const CFG_GEN = 8;            // active table set: 0 or 1. The one word a flip writes.
export const CFG_TRACE = 12;         // TRACE_* bits for the next process() call
export const TRACE_ON = 1;           // write a trace record per frame
export const TRACE_DRY_RUN = 2;      // decide and rewrite, but change no state: no conntrack/affinity
                                     // insert or update, no counters (POST /trace uses ON|DRY_RUN)
export const CFG_BATCH_MAX = 16;
export const CFG_SLOT_SIZE = 20;
export const CFG_DESC_OFF = 24;
export const CFG_ARENA_OFF = 28;
export const CFG_TRACE_OFF = 32;
export const CFG_COUNTERS_OFF = 36;
export const CFG_SVC_COUNTERS_OFF = 40;
export const CFG_SVC_MAX = 44;       // highest valid frontend id
export const CFG_BE_COUNTERS_OFF = 48;
export const CFG_BE_MAX = 52;        // highest valid backend id
export const CFG_CT_INDEX_OFF = 56;
export const CFG_CT_INDEX_MASK = 60; // slots - 1 (slots is a power of two, >= 4 x flows)
export const CFG_CT_FLOWS_OFF = 64;
export const CFG_CT_FLOWS_MAX = 68;  // highest valid flow index
export const CFG_AFF_OFF = 72;
export const CFG_AFF_MASK = 76;
export const CFG_TABLESET0_OFF = 80;
export const CFG_TABLESET1_OFF = 84;
export const CFG_TO_TCP_SYN = 88;    // ms: embryonic TCP (SYN seen, no reply yet)
export const CFG_TO_TCP_EST = 92;    // ms: established TCP
export const CFG_TO_TCP_CLOSE = 96;  // ms: FIN or RST seen
export const CFG_TO_UDP = 100;       // ms: UDP/other, no reply seen yet
export const CFG_TO_UDP_REPLIED = 104; // ms: UDP/other after a reply
export const CFG_TO_SCTP = 108;      // ms: SCTP association established (CTS_SCTP: COOKIE-ACK seen)
export const CFG_TO_ICMP = 112;      // ms: reserved (ICMP is not translated as a flow)
export const CFG_EXPIRE_BUDGET = 116; // flow entries examined per process() call for expiry
export const CFG_EVICT_WINDOW = 120;  // flow entries examined for a victim when the table is full
export const CFG_TO_TCP_UNCONFIRMED = 124; // ms: TCP flow whose handshake is not complete in both
                                     // directions (SYN-ACK seen, or picked up mid-stream)
export const CFG_SNAT_V4 = 128;      // 16-byte address: masquerade / hairpin source, IPv4
export const CFG_SNAT_V6 = 144;      // 16-byte address: masquerade / hairpin source, IPv6
export const CFG_HAS_SNAT = 160;     // bit 0: v4 address set, bit 1: v6 address set; bit 2 / bit 3:
                                     // v4 / v6 hairpin address set (CFG_HAIRPIN_*)
export const CFG_SNAT_PORT_MIN = 164; // SNAT source port range (inclusive)
export const CFG_SNAT_PORT_MAX = 168;
export const CFG_FRAG_OFF = 172;     // fragment table (FRAGMENTS region); 0 = none: every non-first fragment drops
export const CFG_FRAG_MASK = 176;    // fragment table buckets - 1 (power of two), FRAG_WAYS entries each
export const CFG_TO_FRAG = 180;      // ms a first fragment's ports are remembered for the fragments after it
export const CFG_STEER_WORKERS = 184; // workers sharing the interfaces (steer.ts); 0 or 1 = this core alone
export const CFG_STEER_SELF = 188;    // this core's worker index (< CFG_STEER_WORKERS): SNAT ports it owns
// 16-byte address: the source of flows whose backend is at the SNAT address (the node itself, a
// hostNetwork endpoint) when they are source-translated — the host reaching a Service that
// selects itself. Translated to its own address the packet would come back to the host from a
// local address and its reply would stay local; a reserved address routed through the host port
// brings the reply back to the core. IPv4 / IPv6; set when CFG_HAS_SNAT bit 2 / bit 3 is.
export const CFG_HAIRPIN_V4 = 192;
export const CFG_HAIRPIN_V6 = 208;
export const CFG_TO_TCP_HALF_CLOSED = 224; // ms: established TCP with a FIN from one side only (kube-proxy's
                                     // CLOSE_WAIT timeout: the other side may go on sending)
export const CFG_TABLE_EPOCH = 228;  // u32: changed by the host whenever it publishes tables (every store of
                                     // CFG_GEN or a CFG_TABLESETn_OFF): what the core caches of the active
                                     // set (route-cache.ts) holds while it is unchanged
export const CFG_PORT_MTU_OFF = 232;  // PORT_MTU region: PORT_MTU_ENTRIES x u16, entry i = the MTU (largest IP packet, bytes)
                                     // of port i's interface; 0xffff = unknown: nothing is checked, as no
                                     // IP packet is bigger (docs/core.md "Egress MTU")
export const PORT_MTU_ENTRIES = 65536; // one per port index (0..0xfffe) and PORT_NONE (always 0xffff)
export const CFG_PORT_ADDR_OFF = 236; // PORT_ADDR region: PORT_MTU_ENTRIES x PA_SIZE, entry i = port i's source addresses
                                     // for a time exceeded or a reject sent out of it (docs/core.md "Time exceeded", "Reject")
export const PA_SIZE = 20;
export const PA_V4 = 0;              // 4 bytes, network order; 0.0.0.0 = the port has no IPv4 address
export const PA_V6 = 4;              // 16 bytes; :: = the port has no IPv6 address
// SCTP states' timeouts (conntrack.ts sctpState; the kernel's nf_conntrack_proto_sctp defaults in
// src/core/timeouts.ts)
export const CFG_TO_SCTP_HANDSHAKE = 240; // ms: CTS_SCTP_COOKIE_WAIT, CTS_SCTP_COOKIE_ECHOED
export const CFG_TO_SCTP_SHUTDOWN = 244;  // ms: CTS_SCTP_SHUTDOWN, CTS_SCTP_SHUTDOWN_ACK_SENT
export const CFG_TO_SCTP_CLOSED = 248;    // ms: CTS_SCTP_CLOSED (INIT seen, ABORT, SHUTDOWN-COMPLETE)
export const CFG_TO_SCTP_HEARTBEAT = 252; // ms: CTS_SCTP_HEARTBEAT_SENT
export const CFG_SIZE = 256;
// steer(): D_VERDICT of a frame that stays with this core (any other value: the owning worker, in
// the low 7 bits; STEER_RECHECK set: that worker steers it once more, handing it on to the one
// its own rules name when the flow is not there — steer.ts keptFlowOwner)
export const STEER_LOCAL = 255;
export const STEER_RECHECK = 0x80;
// steer.ts: the addresses of frontends the applies removed (a kept flow's client frames go by their
// source): an open-addressed set of STEER_RETIRED_SLOTS entries, at most STEER_RETIRED_MAX in use,
export const STEER_RETIRED_SLOTS = 1024;
export const STEER_RETIRED_MAX = 512;
// and the older ones as bits of a filter (one an address, never cleared: no false negative)
export const STEER_RETIRED_FILTER_BITS = 65536;

// ---- Descriptor (one per frame in the batch) ------------------------------------------------
//   0      2        4         6        7        8            12          16
//   +------+--------+---------+--------+--------+------------+-----------+
//   | len  | in_port| out_port| verdict| reason | flow hash  | aux       |
//   +------+--------+---------+--------+--------+------------+-----------+
//   in: len, in_port.  out: len (may change on reject), out_port, verdict, reason, hash, aux.
export const DESC_SIZE = 16;
export const D_LEN = 0;       // u16
export const D_IN_PORT = 2;   // u16
export const D_OUT_PORT = 4;  // u16
export const D_VERDICT = 6;   // u8
export const D_REASON = 7;    // u8
export const D_HASH = 8;      // u32
export const D_AUX = 12;      // u32 out: with reason drop_no_route, the id of the backend the frame was
                              // meant for (its next hop is unresolved: the worker's hold queue keeps
                              // the frame until a diff resolves it), 0 when no backend was chosen (an
                              // unusable Maglev pick, a plain route without a port); with fwd_nat /
                              // fwd_reply, the flow when the kernel path could carry the frame (IPv4,
                              // no options, TCP without SYN/FIN/RST or UDP, ...: pipeline.ts
                              // kernelPathFlow), AUX_FLOW_REPLY set for the reply direction, else 0;
                              // 0 for every other reason
export const AUX_FLOW_REPLY = 0x40000000; // D_AUX: the reply direction (flow indexes are below it)

export const PORT_NONE = 0xffff;

// Verdicts
export const V_DROP = 0;      // freed, counted under `reason`
export const V_FORWARD = 1;   // transmit on out_port (rewritten)
export const V_REJECT = 2;    // frame rewritten into an ICMP error (port unreachable, ...); transmit on out_port (= in_port)
export const V_TO_HOST = 3;   // not for the fast path (ARP, ND, no service, no route): host decides

// ---- Reasons: one enum for every verdict. Names are derived from the constant names
// (REASON_DROP_TRUNCATED_L2 -> "drop_truncated_l2"), so this list is the only place they live;
// what each one means (verdict, severity, description) is in assembly/reasons.ts.
export const REASON_NONE = 0;
export const REASON_FWD_NAT = 1;              // forward: new or existing NATed flow
export const REASON_FWD_REPLY = 2;            // forward: reply of a NATed flow, reverse-translated
export const REASON_FWD_ROUTED = 3;           // forward: plain routed (no service), TTL decremented (kept from / to a node address)
export const REASON_FWD_ICMP_ERROR = 4;       // forward: ICMP error quoting a NATed flow, inner rewritten
export const REASON_REJECT_NO_ENDPOINTS = 5;  // reject: service has no usable endpoint (ICMP port unreachable)
export const REASON_HOST_ARP = 6;
export const REASON_HOST_ND = 7;              // ICMPv6 neighbour solicitation/advertisement/RS/RA
export const REASON_HOST_NO_MATCH = 8;        // no service, no flow, no route
export const REASON_HOST_NOT_IP = 9;          // other ethertypes
export const REASON_DROP_TRUNCATED_L2 = 10;
export const REASON_DROP_TRUNCATED_L3 = 11;
export const REASON_DROP_BAD_IP_VERSION = 12;
export const REASON_DROP_BAD_IHL = 13;
export const REASON_DROP_BAD_IP_LENGTH = 14;
export const REASON_DROP_TRUNCATED_L4 = 15;
export const REASON_DROP_BAD_L4_HEADER = 16;
export const REASON_DROP_TTL_EXCEEDED = 17;
export const REASON_DROP_FRAGMENT = 18;        // non-first fragment without a remembered first fragment (docs/core.md "Fragments")
export const REASON_DROP_IPV6_EXT_HEADERS = 19; // too many or malformed extension headers
export const REASON_DROP_SOURCE_RANGE = 20;    // loadBalancerSourceRanges refused the client
export const REASON_DROP_NO_ROUTE = 21;        // backend has no resolved port/neighbour
export const REASON_DROP_CT_FULL = 22;         // no free flow entry and no evictable victim
export const REASON_DROP_OVERSIZE = 23;        // descriptor length > slot size
export const REASON_DROP_BAD_PORT = 24;        // in_port not valid
export const REASON_DROP_MARTIAN = 25;         // multicast/broadcast/unspecified source
export const REASON_DROP_SNAT_EXHAUSTED = 26;  // no free SNAT port
export const REASON_DROP_ICMP_UNMATCHED = 27;  // reserved
export const REASON_COUNT = 42;

// ---- Global counters (u64 each, at CFG_COUNTERS_OFF; then REASON_COUNT u64 reason counters) ---
export const GC_RX_PACKETS = 0;
export const GC_RX_BYTES = 1;
export const GC_FORWARD = 2;
export const GC_REJECT = 3;
export const GC_TO_HOST = 4;
export const GC_DROP = 5;
export const GC_CT_HIT = 6;
export const GC_CT_NEW = 7;
export const GC_CT_EXPIRED = 8;
export const GC_CT_EVICTED = 9;
export const GC_CT_ACTIVE = 10;        // gauge: flows in use
export const GC_CT_RESELECT = 11;      // stale flows re-selected (a UDP flow's backend gone or its id reused while its port has serving endpoints, SNAT address changed, a new SYN on a closing flow or on one whose backend left)
export const GC_AFF_HIT = 12;
export const GC_AFF_NEW = 13;
export const GC_BATCHES = 14;
export const GC_SNAT = 15;
export const GC_COUNT = 16;
// reason counter r lives at CFG_COUNTERS_OFF + (GC_COUNT + r) * 8

// per-frontend / per-backend counter record
export const PC_PACKETS = 0;  // u64
export const PC_BYTES = 8;    // u64
export const PC_SIZE = 16;

// ---- Conntrack index slot (8 bytes) --------------------------------------------------------
//   0        4                    8
//   +--------+--------------------+
//   | hash   | flow << 1 | dir    |    ref == 0: empty slot. Linear probing, backward-shift delete.
//   +--------+--------------------+    dir 0 = original (client -> VIP), 1 = reply (backend -> client)
export const CTI_SIZE = 8;
export const CTI_HASH = 0;
export const CTI_REF = 4;

// ---- Conntrack flow entry (96 bytes; 96 + 4 index slots x 8 = 128 bytes per flow) -----------
//   0                16               32               48
//   +----------------+----------------+----------------+----+----+----+----+-----------------+
//   | client addr    | VIP addr       | backend addr   |cprt|vprt|bprt|nprt|proto fam st flg |
//   +----------------+----------------+----------------+----+----+----+----+-----------------+
//   60 last_seen  64 front_id  68 backend_id  72 client_port u16  74 (reserved u16)
//   76 client MAC[6]  82 local MAC[6] (our MAC on the client side)  88 created  92 next_free
//   Original key:  (client, VIP,     cprt, vprt, proto)
//   Reply key:     (backend, nat_dst, bprt, nprt, proto) where nat_dst = client, or the SNAT
//                  address of the family when CTF_SNAT is set (the hairpin address when
//                  CTF_HAIRPIN is set too; then nprt is the allocated port).
export const CT_SIZE = 96;
export const CT_CLIENT = 0;
export const CT_VIP = 16;
export const CT_BACKEND = 32;
export const CT_CPORT = 48;      // u16 host order
export const CT_VPORT = 50;
export const CT_BPORT = 52;
export const CT_NPORT = 54;
export const CT_PROTO = 56;      // u8 IP protocol number
export const CT_FAMILY = 57;     // u8 4 | 6
export const CT_STATE = 58;      // u8 CTS_*
export const CT_FLAGS = 59;      // u8 CTF_*
export const CT_LAST_SEEN = 60;  // u32 ms
export const CT_FRONT = 64;      // u32 frontend id (= per-service counter id)
export const CT_BACKEND_ID = 68; // u32
export const CT_CLIENT_PORT = 72; // u16 port the client side arrived on
export const CT_OUT_PORT = 74;   // u16 reserved: not written, so 0 (entries are zeroed when freed); a restore sets 0 too (src/core/flow-export.ts). Nothing reads it: forwarding uses the backend's current BE_OUT_PORT
export const CT_CLIENT_MAC = 76; // 6 bytes
export const CT_LOCAL_MAC = 82;  // 6 bytes
export const CT_CREATED = 88;    // u32 ms
export const CT_NEXT_FREE = 92;  // u32 free-list link while unused

export const CTS_NONE = 0;       // entry unused
export const CTS_TCP_SYN = 1;    // embryonic: SYN seen, no reply
export const CTS_TCP_EST = 2;    // reply seen
export const CTS_TCP_CLOSING = 3; // FIN or RST seen
export const CTS_UDP = 4;        // UDP: not a stream (yet): no reply, or replied within UDP_STREAM_MS of its first packet
export const CTS_UDP_REPLIED = 5; // UDP stream: a packet after a reply, more than UDP_STREAM_MS after the first (kernel: ASSURED)
export const CTS_SCTP = 6;       // SCTP association established: COOKIE-ACK after COOKIE-ECHO, or a HEARTBEAT-ACK answering a picked-up HEARTBEAT (kernel ESTABLISHED, ASSURED)
export const CTS_TCP_SYN_RECV = 7; // the backend's SYN-ACK seen, the client's ACK not yet (kernel SYN_RECV)
export const CTS_TCP_MIDSTREAM = 8; // created by a non-SYN TCP packet, no reply yet (kernel's loose pick-up)
export const CTS_TCP_HALF_CLOSED_ORIG = 9;  // established, then a FIN from the client only (kernel FIN_WAIT/CLOSE_WAIT)
export const CTS_TCP_HALF_CLOSED_REPLY = 10; // established, then a FIN from the backend only
// SCTP (kernel nf_conntrack_proto_sctp states; conntrack.ts sctpState follows its table on each packet's first chunk)
export const CTS_SCTP_CLOSED = 11;        // new flow (INIT, any chunk but SHUTDOWN-ACK / HEARTBEAT), ABORT, SHUTDOWN-COMPLETE (kernel CLOSED)
export const CTS_SCTP_COOKIE_WAIT = 12;   // INIT-ACK seen in reply (kernel COOKIE_WAIT)
export const CTS_SCTP_COOKIE_ECHOED = 13; // COOKIE-ECHO seen (kernel COOKIE_ECHOED)
export const CTS_SCTP_SHUTDOWN = 14;      // SHUTDOWN seen on an established association (kernel SHUTDOWN_SENT / SHUTDOWN_RECD: the same transitions)
export const CTS_SCTP_SHUTDOWN_ACK_SENT = 15; // SHUTDOWN-ACK seen (kernel SHUTDOWN_ACK_SENT)
export const CTS_SCTP_HEARTBEAT_SENT = 16; // new flow from a HEARTBEAT (a path of an association picked up; kernel HEARTBEAT_SENT)
export const CTS_COUNT = 32;       // states are < CTS_COUNT (the core's timeout table has this many entries; EVICTABLE_* are u32 masks)
// The states whose flows may be evicted when the table is full (bit s = state s): not confirmed
// in both directions (TCP SYN sent, SYN-ACK seen, picked up mid-stream; UDP not a stream), or
// TCP half-closed or closing — the kernel's early drop (not ASSURED, or tcp_can_early_drop). The
// core's eviction (conntrack.ts evictable) and a restore's order (src/core/flow-export.ts, these
// last) both read it. (Not named CTS_*: it shapes no record, so the checkpoint's record layout hash
// — src/daemon/checkpoint.ts, which hashes the CT_/CTS_/CTF_ names — stays the same.)
// SCTP's shutdown states are evictable confirmed or not too (the kernel's sctp_can_early_drop).
export const EVICTABLE_CT_STATES = (1 << CTS_TCP_SYN) | (1 << CTS_TCP_SYN_RECV) | (1 << CTS_TCP_MIDSTREAM) | (1 << CTS_UDP) | (1 << CTS_TCP_CLOSING) | (1 << CTS_TCP_HALF_CLOSED_ORIG) | (1 << CTS_TCP_HALF_CLOSED_REPLY) |
  (1 << CTS_SCTP_SHUTDOWN) | (1 << CTS_SCTP_SHUTDOWN_ACK_SENT);
// The states whose flows may be evicted until CTF_CONFIRMED (bit s = state s): the other SCTP
// states. CTF_CONFIRMED is set when the association reaches CTS_SCTP (the kernel sets ASSURED on
// ESTABLISHED, and early-drops SCTP entries without it, or in a SHUTDOWN state); an association
// that was established keeps it when it closes (an ABORT: CTS_SCTP_CLOSED), as the kernel keeps
// ASSURED, and is not evicted for its CFG_TO_SCTP_CLOSED either.
export const EVICTABLE_UNCONFIRMED_CT_STATES = (1 << CTS_SCTP) | (1 << CTS_SCTP_CLOSED) | (1 << CTS_SCTP_COOKIE_WAIT) |
  (1 << CTS_SCTP_COOKIE_ECHOED) | (1 << CTS_SCTP_HEARTBEAT_SENT);

// A UDP flow is a stream (CTS_UDP_REPLIED: the long timeout, never evicted) once a packet, either
// way, follows a reply more than this long after the flow's first packet — the kernel's
// nf_conntrack_proto_udp ("still active after two seconds? extend timeout", then ASSURED). A
// query answered at once (DNS) keeps the unreplied timeout and stays evictable, as there.
export const UDP_STREAM_MS = 2000;

export const CTF_SNAT = 1;       // source translated (masquerade or hairpin)
export const CTF_REPLIED = 2;    // a reply was seen
export const CTF_AFFINITY = 4;   // backend came from the affinity table
export const CTF_FALLBACK = 8;   // backend chosen from serving-terminating endpoints
export const CTF_CONFIRMED = 16; // TCP handshake completed in both directions (the kernel's ASSURED):
                                 // only flows without it may be evicted when the table is full
export const CTF_HAIRPIN = 32;   // with CTF_SNAT: translated to the hairpin address (CFG_HAIRPIN_*),
                                 // not the SNAT address
// CT_FLAGS bit: the flow's client or backend is the node itself (node-addr.ts nodeEnds, at the flow's
// creation): its packets keep their TTL / hop limit, either way, and a spent one is never answered
// (docs/core.md "Time exceeded"). Not named CTF_*: a restore derives it again from the tables in
// force (ct-restore.ts) and never reads the saved bit, so the checkpoint's record layout hash —
// src/daemon/checkpoint.ts hashes the CT_/CTS_/CTF_ names — stays, and older checkpoints restore.
export const FLOW_NODE = 64;

// ---- Fragment entry (48 bytes; FRAG_WAYS entries per bucket, bucket = hash & CFG_FRAG_MASK) -----
//   0                16               32    34    36  37  38      40       44         48
//   +----------------+----------------+-----+-----+---+---+-------+--------+----------+
//   | src addr       | dst addr       |sport|dport|pro|fam|  (0)  | IP ID  | last seen|
//   +----------------+----------------+-----+-----+---+---+-------+--------+----------+
//   Written when a first fragment (offset 0, more-fragments set) is decided; a later fragment
//   with the same (src, dst, proto, family, IP ID) within CFG_TO_FRAG ms is handled with these
//   ports. family 0 = empty. A full bucket overwrites its oldest entry. hash = keyHash(src, dst,
//   IP ID, proto, family); the IP ID is host order (IPv4: 16 bits; IPv6: the 32-bit identification).
export const FRAG_SIZE = 48;
export const FRAG_WAYS = 4;
export const FRAG_SRC = 0;
export const FRAG_DST = 16;
export const FRAG_SPORT = 32;    // u16 host order
export const FRAG_DPORT = 34;
export const FRAG_PROTO = 36;    // u8
export const FRAG_FAMILY = 37;   // u8 4 | 6; 0 = empty
export const FRAG_ID = 40;       // u32
export const FRAG_LAST_SEEN = 44; // u32 ms: when the first fragment was seen

// ---- Affinity entry (32 bytes) --------------------------------------------------------------
//   0 client addr[16] | 16 front id u32 (0 = empty) | 20 backend id | 24 last_seen | 28 hash
export const AFF_SIZE = 32;
export const AFF_CLIENT = 0;
export const AFF_FRONT = 16;
export const AFF_BACKEND = 20;
export const AFF_LAST_SEEN = 24;
export const AFF_HASH = 28;

// ---- Trace record (32 bytes per frame, written only when CFG_TRACE != 0) -------------------
//   0 stages u32 (TS_* bits) | 4 verdict u8 | 5 reason u8 | 6 out_port u16 | 8 front id |
//   12 backend id | 16 flow idx | 20 ct result u8 | 21 select u8 | 22 l4 proto u8 | 23 family u8
//   24 l3 offset u16 | 26 l4 offset u16 | 28 flow hash u32
export const TRACE_SIZE = 32;
export const TR_STAGES = 0;
export const TR_VERDICT = 4;
export const TR_REASON = 5;
export const TR_OUT_PORT = 6;
export const TR_FRONT = 8;
export const TR_BACKEND = 12;
export const TR_FLOW = 16;
export const TR_CT = 20;
export const TR_SELECT = 21;
export const TR_PROTO = 22;
export const TR_FAMILY = 23;
export const TR_L3 = 24;
export const TR_L4 = 26;
export const TR_HASH = 28;

// stage bits
export const TS_PARSED = 1;
export const TS_SERVICE_MATCH = 2;
export const TS_CT_HIT_ORIG = 4;
export const TS_CT_HIT_REPLY = 8;
export const TS_CT_NEW = 16;
export const TS_BACKEND_SELECTED = 32;
export const TS_DNAT = 64;
export const TS_SNAT = 128;
export const TS_REVERSE_NAT = 256;
export const TS_REJECT = 512;
export const TS_ROUTED = 1024;
export const TS_ICMP_INNER = 2048;
export const TS_STALE_RESELECT = 4096;
export const TS_SOURCE_RANGE_CHECKED = 8192;

// ct result
export const TRCT_NONE = 0;
export const TRCT_HIT_ORIG = 1;
export const TRCT_HIT_REPLY = 2;
export const TRCT_NEW = 3;
export const TRCT_RESELECT = 4;
// select reason
export const TRSEL_NONE = 0;
export const TRSEL_MAGLEV = 1;
export const TRSEL_AFFINITY = 2;
export const TRSEL_FALLBACK_TERMINATING = 3;
export const TRSEL_EXISTING = 4;

// ============================================================================================
// Table set (one per generation). The header's offsets are absolute.
//
//   TABLESET header (TSH_SIZE) | SVCMAP | FRONTENDS | BACKENDS | MAGLEV words | CIDRS | ROUTES
export const TSH_SVCMAP_OFF = 0;
export const TSH_SVCMAP_MASK = 4;    // slots - 1 (power of two, load <= 0.5: 4 x the frontend ids; a ClusterIP also has its address's catch-all key)
export const TSH_FRONT_OFF = 8;
export const TSH_FRONT_MAX = 12;     // highest valid frontend id
export const TSH_BACKEND_OFF = 16;
export const TSH_BACKEND_MAX = 20;   // highest valid backend id
export const TSH_MAGLEV_OFF = 24;    // u32 words: each frontend's Maglev range (below)
export const TSH_MAGLEV_WORDS = 28;
export const TSH_CIDR_OFF = 32;
export const TSH_CIDR_MAX = 36;
export const TSH_ROUTE_OFF = 40;
export const TSH_ROUTE_COUNT = 44;   // routes in use, sorted by prefix length, longest first
export const TSH_ROUTE_MAX = 48;
export const TSH_LOCAL_COUNT = 52;   // local-source entries (RTK_LOCAL_*), stored in the route array right after the TSH_ROUTE_COUNT routes
export const TSH_SIZE = 64;

// ---- Service map slot (32 bytes): open addressing, linear probing, backward-shift delete ----
//   0 addr[16] | 16 port u16 | 18 proto u8 | 19 family u8 | 20 front id u32 (0 = empty) |
//   24 hash u32 | 28 reserved
export const SM_SIZE = 32;
export const SM_ADDR = 0;
export const SM_PORT = 16;
export const SM_PROTO = 18;
export const SM_FAMILY = 19;
export const SM_FRONT = 20;
export const SM_HASH = 24;

// ---- Frontend entry (64 bytes, index = frontend id) -----------------------------------------
//   0 flags u32 | 4 maglev off (word index of its range) | 8 maglev size M (0 = no endpoints: reject) |
//   12 affinity timeout ms | 16 cidr off (index) | 20 cidr count | 24 backends in active set N |
//   28 cluster front id (0 = none) | 32 VIP addr[16] | 48 port u16 | 50 proto u8 | 51 family u8 |
//   52 reserved
export const FE_SIZE = 64;
export const FE_FLAGS = 0;
export const FE_MAGLEV_OFF = 4;
export const FE_MAGLEV_SIZE = 8;
export const FE_AFF_TIMEOUT = 12;
export const FE_CIDR_OFF = 16;
export const FE_CIDR_COUNT = 20;
export const FE_NBACKENDS = 24;
export const FE_CLUSTER_FRONT = 28; // u32: externalTrafficPolicy Local frontend: the frontend (its
                                    // service port's ClusterIP, policy Cluster) whose table serves
                                    // sources inside the cluster (local-source entries); 0 = none
export const FE_ADDR = 32;
export const FE_PORT = 48;
export const FE_PROTO = 50;
export const FE_FAMILY = 51;

// A frontend's Maglev range: FE_MAGLEV_OFF is its first word in the Maglev words, N =
// FE_NBACKENDS, M = FE_MAGLEV_SIZE. First its M slots, each an index into its backend list, as
// wide as N needs (MAGLEV_SLOT_U8_MAX, MAGLEV_SLOT_U16_MAX, else u32), zero to a whole word (S =
// ceil(M x width / 4) words); then the list: the ids of its active set, each >= 1, with room for
// more (the writer's: a power of two, so that a change of N alone keeps the range's size). Slot
// i names backend list[slot]; an index >= N names none (fail closed, like backend id 0).
//   word FE_MAGLEV_OFF                        FE_MAGLEV_OFF + S
//   +------------------------------------+-----+---------------------+--------+
//   | M x slot (u8 / u16 / u32 index)    | pad | N x u32 backend ids | (room) |
//   +------------------------------------+-----+---------------------+--------+
export const MAGLEV_SLOT_U8_MAX = 256;    // N up to this: u8 slots
export const MAGLEV_SLOT_U16_MAX = 65536; // N up to this: u16 slots; more: u32

export const FEF_AFFINITY = 1;     // sessionAffinity: ClientIP
export const FEF_MASQUERADE = 2;   // SNAT the client to the node address (external, policy Cluster; a ClusterIP with masqueradeAll)
export const FEF_SOURCE_RANGES = 4; // check client against CIDR list
export const FEF_EXTERNAL = 8;     // NodePort / LoadBalancer / externalIP frontend
export const FEF_FALLBACK = 16;    // maglev table built from serving-terminating endpoints
export const FEF_POLICY_DROP = 32; // empty table because the traffic policy (Local) left no endpoint, though the service has some: drop, not reject
export const FEF_NODE_SOURCE_DROP = 64; // with FE_CLUSTER_FRONT: the node itself is not short-circuited but dropped like an
                                    // outside client (external IP / LB IP without a local endpoint: the nftables
                                    // proxier's pre-DNAT output filter drops it; a NodePort is short-circuited)
export const FEF_AFFINITY_SHARED = 256; // with FE_CLUSTER_FRONT: not a short-circuit — FE_CLUSTER_FRONT is only the
                                        // frontend its sessionAffinity entries are keyed by (kube-proxy keeps affinity
                                        // per service port, whichever IP was used; docs/core.md "sessionAffinity per
                                        // service port"; select.ts affinityKey)
export const FEF_AFFINITY_IN_SET = 512; // sessionAffinity: the frontend's set is narrower than what the port's other
                                        // frontends pin to (local endpoints, topology hints): a pin is followed only
                                        // when its backend is in this frontend's backend list (a scan of it)
export const FEF_MASQUERADE_OUTSIDE = 128; // ClusterIP with a local-traffic detector: masquerade sources it does not take
                                    // for pods (off-cluster traffic to a service VIP, kube-proxy's
                                    // "IfNotLocal ... jump mark-for-masquerade"); the node itself included

// ---- Backend entry (64 bytes, index = backend id, stable across generations) ---------------
//   0 addr[16] | 16 port u16 | 18 family u8 | 19 state u8 | 20 out_port u16 | 22 reserved u16 |
//   24 dst MAC[6] | 30 src MAC[6] | 36 reserved
export const BE_SIZE = 64;
export const BE_ADDR = 0;
export const BE_PORT = 16;
export const BE_FAMILY = 18;
export const BE_STATE = 19;
export const BE_OUT_PORT = 20;
export const BE_DST_MAC = 24;
export const BE_SRC_MAC = 30;

export const BES_ABSENT = 0;       // not in this generation: UDP flows to it are re-selected while their port has serving endpoints, open TCP/SCTP ones (and other UDP ones) keep its address (docs/core.md)
export const BES_READY = 1;
export const BES_TERMINATING_SERVING = 2;
export const BES_NOT_SERVING = 3;  // not ready / terminating-not-serving: existing TCP/SCTP flows only (UDP ones re-select while the port has serving endpoints)

// ---- CIDR entry (20 bytes): addr[16] | prefix len u8 | family u8 | 2 reserved -------------
export const CIDR_SIZE = 20;
export const CIDR_ADDR = 0;
export const CIDR_PLEN = 16;
export const CIDR_FAMILY = 17;

// ---- Route entry (32 bytes): plain forwarding of non-service traffic, longest prefix first --
//   0 addr[16] | 16 prefix len u8 | 17 family u8 | 18 out_port u16 | 20 dst MAC[6] | 26 src MAC[6]
export const RT_SIZE = 48;
export const RT_ADDR = 0;
export const RT_PLEN = 16;
export const RT_FAMILY = 17;
export const RT_OUT_PORT = 18;
export const RT_DST_MAC = 20;
export const RT_SRC_MAC = 26;
export const RT_KIND = 32;            // u8: RTK_FORWARD, or RTK_SERVICE_CIDR (a service CIDR: drop what no service owns)
export const RTK_FORWARD = 0;
export const RTK_SERVICE_CIDR = 1;
// Local-source entries (kube-proxy's local-traffic detector) use the route entry's addr, plen,
// family and kind; they follow the routes and are never routed by.
export const RTK_LOCAL_POD = 2;      // a pod source (cluster CIDR / the node's pod CIDR): cluster-wide endpoints, no masquerade
export const RTK_LOCAL_NODE = 3;     // the node itself (a node / masquerade address): cluster-wide endpoints, masqueraded;
                                     // a backend at it is the node (snat.ts snatKind: hairpin, no masquerade)
export const RTK_LOCAL_POD_PORT = 4; // a pod port (detectLocalMode PodPort): a frame that arrived on port RT_OUT_PORT is a
                                     // pod's, whatever its address (kube-proxy's interface-based modes); as RTK_LOCAL_POD

// ---- Defaults --------------------------------------------------------------------------------
export const DEFAULT_SLOT_SIZE = 2048;
export const DEFAULT_BATCH_MAX = 256;

// ---- Flow hash (also the Maglev selection hash; the reference model implements the same) ---
// h = HASH_SEED; for each u32 word w (little-endian load of the bytes):
//   h = rotl(h ^ imul(w, HASH_M1), 13) * HASH_M2 + HASH_ADD   (all mod 2^32)
// final: h ^= h >>> 16; h = imul(h, HASH_F1); h ^= h >>> 13; h = imul(h, HASH_F2); h ^= h >>> 16
// Maglev key words: src addr[4 words], dst addr[4 words], sport | dport << 16, proto.
// Affinity key words: client addr[4 words], front id.  Index = hash % M.
export const HASH_SEED = 0x9747b28c;
export const HASH_M1 = 0xcc9e2d51;
export const HASH_M2 = 5;
export const HASH_ADD = 0xe6546b64;
export const HASH_F1 = 0x85ebca6b;
export const HASH_F2 = 0xc2b2ae35;

// ============================================================================================
// Additions by the core (assembly/; semantics in docs/core.md)
// ============================================================================================
export const REASON_DROP_CT_CLASH = 28;  // new flow's reply tuple is owned by another live flow (no SNAT to remap)
export const AFF_PROBE = 8;              // affinity table: slots examined from the home slot (no deletes; LRU replace)
export const SNAT_PROBE_MAX = 64;        // SNAT source port tries before drop_snat_exhausted
export const REASON_DROP_RST_NO_ENDPOINTS = 29; // TCP RST to a service without endpoints (never answered)
export const REASON_DROP_ITP_NO_LOCAL = 32;  // internalTrafficPolicy Local, no local endpoint (the service has endpoints elsewhere)
export const REASON_DROP_ETP_NO_LOCAL = 33;  // externalTrafficPolicy Local, no local endpoint (the service has endpoints elsewhere)
export const REASON_DROP_NO_SERVICE_IP = 34; // destination inside a service CIDR that no service owns (routes of kind RTK_SERVICE_CIDR)
export const REASON_REJECT_INVALID_PORT = 35; // reject: a ClusterIP on a port/protocol its Service does not define
export const REASON_REJECT_CLUSTER_IP_PROTO = 36; // reject: ICMP echo (or another query) or a protocol without ports to an allocated ClusterIP
export const TS_LOCAL_SOURCE = 16384;    // stage: an externalTrafficPolicy Local frontend sent an in-cluster source to its cluster front
export const TS_BACKEND_LEFT = 32768;    // stage: a hit on a flow whose backend left the endpoints (its id no longer names it: trace backend 0); in the original direction, kept on its own address through the routes
export const REASON_DROP_BACKEND_UNREACHABLE = 37; // a flow kept on the address of a backend that left (TCP/SCTP; UDP while its port serves nothing): no route reaches that address any more
export const REASON_REJECT_PACKET_TOO_BIG = 30; // reject: IP packet larger than its egress port's MTU (IPv4 with DF, IPv6): ICMP fragmentation needed / ICMPv6 packet too big to its source
export const REASON_DROP_PACKET_TOO_BIG = 31;   // IPv4 packet without DF (the core does not fragment), or an ICMP error, larger than its egress port's MTU
export const REASON_DROP_ICMP_STALE_FLOW = 38; // ICMP error from the client about a reply of a stale flow (SNAT address gone or changed; UDP backend left while its port serves): the flow's own next packet re-selects, an error cannot
// Service map: each ClusterIP address also has a catch-all key (addr, port SM_ANY_PORT, proto
// SM_ANY_PROTO) naming one of its frontends; a miss on the real key that hits it is that case.
export const SM_ANY_PORT = 0;
export const SM_ANY_PROTO = 0;
export const CT_REPLY_HASH = 92;         // u32, while a flow is in use: its reply-key index hash (shares CT_NEXT_FREE)

// ============================================================================================
// Reject rate limit (assembly/ratelimit.ts; docs/core.md "Reject rate limit")
// ============================================================================================
// The kernel rate-limits the ICMP errors kube-proxy's `reject` makes (net/ipv4/icmp.c,
// net/ipv6/icmp.c): per destination host a token bucket (inet_peer) of XRLIM_BURST_FACTOR errors
// refilled one per interval (icmp_ratelimit; net.ipv6.icmp.ratelimit), and one bucket for all
// destinations (icmp_msgs_per_sec, icmp_msgs_burst). The core keeps both, with the kernel's
// default values, in a static block at reject_limit_ptr() (like the live trace filter block: the
// host places nothing; init() fills it, nothing else clears it):
//
//   0        4        8 .. 64   64                                                RL_BLOCK_SIZE
//   +--------+--------+---------+-------------------------------------------------+
//   | credit | stamp  | (free)  | RL_BUCKETS x RL_WAYS client entries (RLE_*)      |
//   +--------+--------+---------+-------------------------------------------------+
//   credit: the global bucket, in thousandths of an answer (at most RL_GLOBAL_BURST x 1000; an
//   answer costs 1000; RL_GLOBAL_PER_SEC thousandths come back per ms); stamp: ms it was refilled.
//
// Client entry (RLE_SIZE bytes), keyed by (address, family) of the client an answer goes to; its
// bucket = the layout hash of (address words, family) & (RL_BUCKETS - 1), RL_WAYS entries each:
//   0                16    17 .. 20  20       24       28 .. 32
//   +----------------+-----+--------+--------+--------+--------+
//   | client addr    | fam | (free) | tokens | last   | (free) |
//   +----------------+-----+--------+--------+--------+--------+
//   fam 0: empty. tokens: ms of credit (an answer costs the family's interval, at most
//   RL_HOST_BURST intervals are held; 1 comes back per ms); last: ms it was refilled.
export const RL_HOST_BURST = 6;               // XRLIM_BURST_FACTOR: answers a client gets at once
export const RL_HOST_INTERVAL_V4_MS = 1000;   // net.ipv4.icmp_ratelimit default: then one per interval
export const RL_HOST_INTERVAL_V6_MS = 100;    // net.ipv6.icmp.ratelimit default
export const RL_GLOBAL_PER_SEC = 1000;        // net.ipv4.icmp_msgs_per_sec default (both families share it)
export const RL_GLOBAL_BURST = 50;            // net.ipv4.icmp_msgs_burst default
export const RL_CREDIT = 0;                   // u32
export const RL_STAMP = 4;                    // u32
export const RL_ENTRIES = 64;                 // first client entry
export const RL_BUCKETS = 256;                // a power of two
export const RL_WAYS = 4;
export const RLE_SIZE = 32;
export const RLE_ADDR = 0;
export const RLE_FAMILY = 16;                 // u8: 4 | 6; 0 = empty
export const RLE_TOKENS = 20;                 // u32
export const RLE_LAST = 24;                   // u32
export const RL_BLOCK_SIZE = RL_ENTRIES + RL_BUCKETS * RL_WAYS * RLE_SIZE;
export const REASON_DROP_REJECT_RATE_LIMITED = 39; // a reject's answer over the client's or the global rate limit: dropped
export const REASON_REJECT_TTL_EXCEEDED = 40;  // reject: TTL / hop limit ran out on a routed packet: ICMP time exceeded to its source
export const REASON_DROP_TTL_NO_ADDRESS = 41;  // TTL / hop limit ran out on a routed packet whose in port has no node address of its family to answer from

// ============================================================================================
// Live trace filter (assembly/trace.ts; written by the host, src/observe/core-filter.ts)
// ============================================================================================
// A static block at trace_filter_ptr() (like CONFIG; the host places nothing). Between batches
// the host writes up to TF_SLOTS compiled filters and sets their bits in TF_ACTIVE. A live
// process() with TF_ACTIVE != 0 tests every frame, after its decision, against the active filters
// with budget left, and appends one match record per frame that matched any (TF_MATCHES of them,
// at most TM_MAX; matches beyond that are counted in TF_MISSED). TF_ACTIVE == 0 costs one load
// and one branch per batch and a predictable branch per frame; dry-run batches never match.
//
//   0        4         8        12 .. 64   64                          TF_MATCH_OFF          TF_BLOCK_SIZE
//   +--------+---------+--------+---------+---------------------------+----------------------+
//   | active | matches | missed | (free)  | TF_SLOTS x filter (TFF_*) | TM_MAX x match (TM_*) |
//   +--------+---------+--------+---------+---------------------------+----------------------+
export const TF_ACTIVE = 0;          // u32 in: bit s = filter slot s is in use
export const TF_MATCHES = 4;         // u32 out: match records written by the last live process()
export const TF_MISSED = 8;          // u32 out: matching frames not recorded (more than TM_MAX)
export const TF_SLOTS = 4;           // filters tested per frame at most
export const TF_FILTERS = 64;        // filter s at TF_FILTERS + s * TFF_SIZE

// Filter (TFF_SIZE bytes). A field takes part only when its TFM_* bit is set in TFF_FIELDS; all
// fields set must match. Addresses are prefixes: (addr & mask) == value, value pre-masked by the
// host; family is that of the address fields. The 5-tuple fields (TFM_TUPLE) match the frame as
// it arrived or, for a forwarded or rejected frame, as it leaves (all of them one or the other).
//   0          16         32         48         64         80         96       100      104
//   +----------+----------+----------+----------+----------+----------+--------+--------+
//   | src      | src mask | dst      | dst mask | host     | host mask| fields | budget |
//   +----------+----------+----------+----------+----------+----------+--------+--------+
//   104 105 106 107 108   110   112   114   116 117..120 120                152                184..192
//   +---+---+---+---+-----+-----+-----+-----+---+-------+------------------+------------------+------+
//   |fam|pro|pr2|rsn|sport|dport|port |in pt|vrd| (free)| front ids [8] u32 | backend ids [8]  |(free)|
//   +---+---+---+---+-----+-----+-----+-----+---+-------+------------------+------------------+------+
//   budget: matches left (the core decrements; 0: the filter rests). proto2: a second protocol
//   (ICMP = 1 or 58). port: either side. Id lists end at the first 0.
export const TFF_SIZE = 192;
export const TFF_SRC = 0;
export const TFF_SRC_MASK = 16;
export const TFF_DST = 32;
export const TFF_DST_MASK = 48;
export const TFF_HOST = 64;
export const TFF_HOST_MASK = 80;
export const TFF_FIELDS = 96;
export const TFF_BUDGET = 100;
export const TFF_FAMILY = 104;
export const TFF_PROTO = 105;
export const TFF_PROTO2 = 106;
export const TFF_REASON = 107;
export const TFF_SPORT = 108;
export const TFF_DPORT = 110;
export const TFF_PORT = 112;
export const TFF_IN_PORT = 114;
export const TFF_VERDICT = 116;
export const TFF_FRONTS = 120;
export const TFF_BACKENDS = 152;
export const TFF_IDS = 8;

export const TFM_SRC = 1;
export const TFM_DST = 2;
export const TFM_HOST = 4;
export const TFM_SPORT = 8;
export const TFM_DPORT = 16;
export const TFM_PORT = 32;
export const TFM_PROTO = 64;
export const TFM_TUPLE = 127;        // the 5-tuple bits above
export const TFM_IN_PORT = 128;
export const TFM_FRONT = 256;        // frontend id in TFF_FRONTS
export const TFM_BACKEND = 512;      // backend id in TFF_BACKENDS
export const TFM_REASON = 1024;      // reason == TFF_REASON
export const TFM_VERDICT = 2048;     // verdict == TFF_VERDICT

// Match record (TM_SIZE bytes): the frame's batch index, the filters it matched, the frame's trace
// record and its 5-tuple as it arrived (the frame itself is rewritten in place).
//   0     2   3   4     6     8   9 .. 16  16                     48         64         80
//   +-----+---+---+-----+-----+---+-------+----------------------+----------+----------+
//   |index|flt|pro|sport|dport|fam|(free) | trace record (TR_*)  | src      | dst      |
//   +-----+---+---+-----+-----+---+-------+----------------------+----------+----------+
//   index: the frame's slot in the batch; flt: bit s = filter s matched; fam 0: not IP.
export const TM_SIZE = 80;
export const TM_INDEX = 0;
export const TM_FILTERS = 2;
export const TM_PROTO = 3;
export const TM_SPORT = 4;
export const TM_DPORT = 6;
export const TM_FAMILY = 8;
export const TM_TRACE = 16;
export const TM_SRC = 48;
export const TM_DST = 64;
export const TM_MAX = 256;
export const TF_MATCH_OFF = TF_FILTERS + TF_SLOTS * TFF_SIZE;
export const TF_BLOCK_SIZE = TF_MATCH_OFF + TM_MAX * TM_SIZE;
