// Wire-format constants: ethertypes, IP protocol numbers, header lengths and field offsets (bytes
// from the start of their header), TCP flag bits, ICMP types. Frame bytes are network order; the
// core byte-swaps when it reads a multi-byte field as a number.

// ---- Ethernet / 802.1Q --------------------------------------------------------------------------
export const ETH_DST: usize = 0;          // destination MAC
export const ETH_SRC: usize = 6;          // source MAC
export const ETH_TYPE: usize = 12;
export const ETH_HLEN: u32 = 14;
export const VLAN_TYPE: usize = 16;       // ethertype after one 802.1Q tag
export const VLAN_ETH_HLEN: u32 = 18;
export const ETH_P_IP: u32 = 0x0800;
export const ETH_P_ARP: u32 = 0x0806;
export const ETH_P_8021Q: u32 = 0x8100;
export const ETH_P_IPV6: u32 = 0x86dd;

// ---- IP protocol numbers --------------------------------------------------------------------------
export const IPPROTO_HOPOPTS: u32 = 0;
export const IPPROTO_ICMP: u32 = 1;
export const IPPROTO_TCP: u32 = 6;
export const IPPROTO_UDP: u32 = 17;
export const IPPROTO_ROUTING: u32 = 43;
export const IPPROTO_FRAGMENT: u32 = 44;
export const IPPROTO_ICMPV6: u32 = 58;
export const IPPROTO_DSTOPTS: u32 = 60;
export const IPPROTO_SCTP: u32 = 132;

// ---- IPv4 -------------------------------------------------------------------------------------------
export const IP4_HLEN: u32 = 20;          // without options
export const IP4_VER_IHL: usize = 0;
export const IP4_TOS: usize = 1;
export const IP4_TOT_LEN: usize = 2;
export const IP4_ID: usize = 4;
export const IP4_FRAG: usize = 6;         // flags (3 bits) | fragment offset (13 bits)
export const IP4_TTL: usize = 8;          // TTL and protocol share the 16-bit word at 8
export const IP4_PROTO: usize = 9;
export const IP4_CSUM: usize = 10;
export const IP4_SRC: usize = 12;
export const IP4_DST: usize = 16;
export const IP4_DF: u32 = 0x4000;
export const IPTOS_TOS_MASK: u32 = 0x1e;              // the TOS bits an ICMP error keeps of the packet it quotes
export const IPTOS_PREC_INTERNETCONTROL: u32 = 0xc0;  // the precedence of every ICMP error (icmp_send)
export const IP4_MF: u32 = 0x2000;
export const IP4_OFFSET: u32 = 0x1fff;
export const IP4_MIN_MTU: u32 = 576;      // RFC 1812: an ICMP error never exceeds it
export const IP4_BROADCAST: u32 = 0xffffffff;
export const IP4_CLASS_D_MASK: u32 = 0xf0;   // first address byte: 224.0.0.0/4 is multicast
export const IP4_CLASS_D: u32 = 0xe0;

// ---- IPv6 -------------------------------------------------------------------------------------------
export const IP6_HLEN: u32 = 40;
export const IP6_PLEN: usize = 4;
export const IP6_NEXT: usize = 6;
export const IP6_HOP_LIMIT: usize = 7;
export const IP6_SRC: usize = 8;
export const IP6_DST: usize = 24;
export const IP6_EXT_MAX: u32 = 8;        // extension headers followed before drop_ipv6_ext_headers
export const IP6_EXT_MIN: u32 = 8;        // bytes of every extension header
export const IP6_EXT_NEXT: usize = 0;     // next header
export const IP6_EXT_LEN: usize = 1;      // hdr ext len: 8-byte units beyond the first 8
export const IP6_FRAG_HLEN: u32 = 8;      // fragment header
export const IP6_FRAG_OFFLG: usize = 2;   // fragment header: offset (13 bits) | res | M
export const IP6_FRAG_OFFSET: u32 = 0xfff8;
export const IP6_FRAG_M: u32 = 1;
export const IP6_FRAG_ID: usize = 4;     // fragment header: 32-bit identification
export const IP6_MIN_MTU: u32 = 1280;     // RFC 4443: an ICMPv6 error never exceeds it
export const IP6_MULTICAST: u32 = 0xff;   // first byte

export const DEFAULT_TTL: u32 = 64;       // TTL / hop limit of the packets the core generates

// ---- L4 --------------------------------------------------------------------------------------------
export const L4_SPORT: usize = 0;         // TCP, UDP, SCTP
export const L4_DPORT: usize = 2;
export const TCP_HLEN: u32 = 20;          // without options
export const TCP_SEQ: usize = 4;
export const TCP_ACK_SEQ: usize = 8;
export const TCP_DOFF: usize = 12;        // data offset in the high nibble
export const TCP_FLAGS: usize = 13;
export const TCP_WINDOW: usize = 14;
export const TCP_CSUM: usize = 16;
export const TCP_URG_PTR: usize = 18;
export const TCP_FIN: u32 = 1;
export const TCP_SYN: u32 = 2;
export const TCP_RST: u32 = 4;
export const TCP_ACK: u32 = 16;
export const UDP_HLEN: u32 = 8;
export const UDP_CSUM: usize = 6;
export const UDP_CSUM_ZERO: u16 = 0xffff;  // a computed 0 is sent as all ones (0 means "no checksum")
export const SCTP_HLEN: u32 = 12;
export const SCTP_CSUM: usize = 8;

// ---- ICMP / ICMPv6 ------------------------------------------------------------------------------
export const ICMP_HLEN: u32 = 8;          // type, code, checksum, 4 type-specific bytes
export const ICMP_TYPE: usize = 0;
export const ICMP_CODE: usize = 1;
export const ICMP_CSUM: usize = 2;
export const ICMP_REST: usize = 4;
export const ICMP_DEST_UNREACH: u32 = 3;
export const ICMP_PORT_UNREACH: u32 = 3;  // code
export const ICMP_FRAG_NEEDED: u32 = 4;   // code: fragmentation needed and DF set (RFC 1191: next-hop MTU in the low 16 bits of the rest)
export const ICMP_TIME_EXCEEDED: u32 = 11;
export const ICMP_PARAMETERPROB: u32 = 12;
export const ICMP6_DST_UNREACH: u32 = 1;
export const ICMP6_PORT_UNREACH: u32 = 4; // code
export const ICMP6_PACKET_TOO_BIG: u32 = 2;
export const ICMP6_TIME_EXCEEDED: u32 = 3;
export const ICMP6_PARAM_PROB: u32 = 4;
// query types that open a new conntrack entry in the kernel (nf_conntrack_proto_icmp / icmpv6):
// what kube-proxy's "ct state new" rules see of ICMP
export const ICMP_ECHO: u32 = 8;
export const ICMP_TIMESTAMP: u32 = 13;
export const ICMP_INFO_REQUEST: u32 = 15;
export const ICMP_ADDRESS: u32 = 17;
export const ICMP6_ECHO_REQUEST: u32 = 128;
export const ICMP6_NI_QUERY: u32 = 139;
export const ND_ROUTER_SOLICIT: u32 = 133;   // 133..137: RS, RA, NS, NA, redirect
export const ND_REDIRECT: u32 = 137;
