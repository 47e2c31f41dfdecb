// The per-frame record: what parsing found, what the prefetch pass cached for a likely new flow,
// and the decision. One record per frame of a chunk (parse writes it for the whole chunk first,
// then the decision stages fill in the result frame by frame); every stage takes the frame's
// record as an argument and writes its result there, the pipeline copies it into the descriptor
// and the trace record. Internal to the core (the host never sees it), so no layout.ts entry.
//
//   0                16               32     36  38  40  42    44    46  47  48  49  50  51  52  53  54
//   +----------------+----------------+------+---+---+---+-----+-----+---+---+---+---+---+---+---+---+
//   | src addr       | dst addr       | hash |l3 |l4 |end|sport|dport|pro|fam|rsn|vrd|tcf|ttl|ict|frg|
//   +----------------+----------------+------+---+---+---+-----+-----+---+---+---+---+---+---+---+---+
//   54    56  57  60       64        68         72          76  80  84  88       90      92      94  95
//   +-----+---+---+--------+---------+----------+-----------+---+---+---+--------+-------+-------+---+---+
//   | len |prt|spc|svc hash|spec frnt|spec bknd |spec rhash |t.a|t.b|t.c|out port|len out|in port|ct |sel|
//   +-----+---+---+--------+---------+----------+-----------+---+---+---+--------+-------+-------+---+---+
//   96       100      104       108      112      116 117 120   124 .. 128
//   +--------+--------+---------+--------+--------+---+---+-----+
//   | stages | front  | backend | flow   |frag id |lfr|   | t.d |
//   +--------+--------+---------+--------+--------+---+---+-----+
import * as L from "./layout";

@unmanaged export class Frame {
  // ---- parse (pass 1)
  src: v128;            // 16-byte addresses, IPv4 zero-padded
  dst: v128;
  hash: u32;            // flow hash (D_HASH)
  l3: u16;              // frame offsets
  l4: u16;
  end: u16;             // end of the IP packet
  sport: u16;           // host order; 0 without ports
  dport: u16;
  proto: u8;
  family: u8;           // 0: not IP
  reason: u8;           // non-zero once decided (in parse: the early verdict)
  verdict: u8;
  tcpFlags: u8;          // TCP: the flags; SCTP: the first chunk's type (0 without one); else 0
  ttl: u8;              // TTL / hop limit as received
  icmpType: u8;
  firstFragment: u8;    // 1: first fragment of a fragmented packet
  len: u16;             // frame length as received
  hasPorts: u8;         // 1: TCP/UDP/SCTP (conntrack applies)
  // ---- prefetch cache: pure functions of the frame and the batch's table set (SPEC_* bits)
  spec: u8;
  specSvcHash: u32;     // service-map hash of (dst, dport, proto, family)
  specFront: u32;       // service lookup result (0 = no frontend)
  specBackend: u32;     // Maglev pick of specFront with the flow hash (may be 0)
  specReplyHash: u32;   // reply-key hash without SNAT: (backend, client, bport, sport)
  touchA: u32;          // addresses the next touch() loads (0 = none)
  touchB: u32;
  touchC: u32;
  // ---- decision (pass 2)
  outPort: u16;
  lenOut: u16;          // output frame length (a reject changes it)
  inPort: u16;
  ct: u8;               // TRCT_*
  select: u8;           // TRSEL_*
  stages: u32;          // TS_* bits
  front: u32;
  backend: u32;
  flow: u32;
  // ---- fragments (parse)
  fragId: u32;          // IP ID of a fragment (IPv4 16 bits, IPv6 32 bits; host order)
  laterFragment: u8;    // 1: a fragment with offset != 0 (no L4 header; ports from the fragment table)
  touchD: u32;          // a fourth address the next touch() loads (0 = none)

  @inline get srcAddr(): usize { return changetype<usize>(this) + offsetof<Frame>("src"); }
  @inline get dstAddr(): usize { return changetype<usize>(this) + offsetof<Frame>("dst"); }
  /** sport | dport << 16 (the conntrack key's port word). */
  @inline get ports(): u32 { return <u32>this.sport | (<u32>this.dport << 16); }
}

// Frame.spec: which prefetch results are valid for the frame (each implies the ones before it).
export const SPEC_SVCH: u8 = 1;    // specSvcHash (a certain conntrack miss, the service map exists)
export const SPEC_FRONT: u8 = 2;   // specFront
export const SPEC_BID: u8 = 4;     // specBackend: Maglev pick of a non-affinity frontend with endpoints
export const SPEC_RHASH: u8 = 8;   // specReplyHash: the flow needs no SNAT

// Records for one chunk of the batch. Chunking keeps the static footprint independent of
// CFG_BATCH_MAX; a power-of-two record size keeps the address one shift.
export const CHUNK: u32 = 64;
const FRAME_SIZE: u32 = 128;
if (offsetof<Frame>() > FRAME_SIZE) ERROR("Frame outgrew FRAME_SIZE");
const FRAMES: usize = memory.data(<i32>(CHUNK * FRAME_SIZE), 64);

@inline export function frameAt(k: u32): Frame { return changetype<Frame>(FRAMES + <usize>(k * FRAME_SIZE)); }

// ---- results ------------------------------------------------------------------------------------
@inline export function setResult(fr: Frame, verdict: u32, reason: u32, out: u32): void {
  fr.verdict = <u8>verdict; fr.reason = <u8>reason; fr.outPort = <u16>out;
}
@inline export function drop(fr: Frame, reason: u32): void { setResult(fr, L.V_DROP, reason, L.PORT_NONE); }
