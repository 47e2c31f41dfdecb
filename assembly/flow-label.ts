// The flow label of the ICMPv6 errors the core answers with (reject.ts: port unreachable, packet too
// big, time exceeded). The kernel sends each through icmp6_send, whose flow leaves the label 0, so
// the output path gives it an automatic one (ip6_make_flowlabel under net.ipv6.auto_flowlabels=1,
// the default for a socket that did not choose: its ICMP socket): a hash of the error's own flow —
// source, destination, ICMPv6 type and code, next header 58 — rotated by 16 bits, its low 20 bits.
// The kernel keys that hash with a secret drawn at boot, so its value cannot be reproduced; the
// core hashes the same fields with its flow hash (hash.ts flowHash: the ports word carries
// type | code << 8), which keeps what the label is for: every error of one (source, destination,
// type, code) carries one label (ECMP and LAG hashing along the way back keep them on one path),
// different ones spread. A TCP reset carries label 0 (nf_reject_ip6hdr_put), as the kernel's.
// Cost: one flow hash per ICMPv6 error built (the answers are rate-limited; none on forwarding).
import { flowHash } from "./hash";
import { IPPROTO_ICMPV6 } from "./net";

/** The 20-bit flow label of an ICMPv6 error `type`/`code` from `src` to `dst` (16 bytes each). */
export function icmp6FlowLabel(src: usize, dst: usize, type: u32, code: u32): u32 {
  const h = flowHash(src, dst, (type & 0xff) | ((code & 0xff) << 8), IPPROTO_ICMPV6);
  return rotl<u32>(h, 16) & 0xfffff;
}
