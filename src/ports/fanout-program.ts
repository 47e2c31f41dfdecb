// The classic BPF program of a PACKET_FANOUT_CBPF group (config `fanout: true`): it picks the
// worker a frame goes to in the kernel, so most frames reach the worker that owns their flow
// without the hand-off between workers (src/daemon/steering.ts stays the correctness net for the
// rest). It computes assembly/owner.ts's ownerOf(address, 0) of one IPv4 address — the client's,
// as far as the port's role tells: on an uplink clients are the sources (external clients
// reaching Services; replies from remote backends are the exception), on a pod port the
// destinations (replies from local backends; a pod's own connections to Services are the
// exception). Everything else (ARP, IPv6) returns 0: worker 0, where ARP/ND belong anyway. The
// kernel takes the result modulo the group's members, which are the workers in the order they
// joined (the daemon opens a fanout port in worker order).
//
// Instructions are struct sock_filter { u16 code; u8 jt; u8 jf; u32 k } in little-endian.

// linux/filter.h
const LD = 0x00, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, H = 0x08, ABS = 0x20;
const MUL = 0x20, RSH = 0x70, XOR = 0xa0, K = 0x00, X = 0x08;
const JEQ = 0x10, RET_A = 0x10, TAX = 0x00;
const SKF_AD_PROTOCOL = 0xfffff000;   // SKF_AD_OFF + SKF_AD_PROTOCOL: ntohs(skb->protocol)
const SKF_NET_OFF = 0xfff00000;       // loads relative to the network header
const ETH_P_IP = 0x0800;
const IP4_SRC = 12, IP4_DST = 16;

type Insn = [code: number, jt: number, jf: number, k: number];

/** The program for a port whose clients are the frames' sources (`src`: uplinks) or
 * destinations (`dst`: pod ports). */
export function fanoutProgram(client: 'src' | 'dst'): Uint8Array {
  const mix: Insn[] = [
    [MISC | TAX, 0, 0, 0], [ALU | RSH | K, 0, 0, 16], [ALU | XOR | X, 0, 0, 0], [ALU | MUL | K, 0, 0, 0x85ebca6b],
    [MISC | TAX, 0, 0, 0], [ALU | RSH | K, 0, 0, 13], [ALU | XOR | X, 0, 0, 0], [ALU | MUL | K, 0, 0, 0xc2b2ae35],
    [MISC | TAX, 0, 0, 0], [ALU | RSH | K, 0, 0, 16], [ALU | XOR | X, 0, 0, 0],
  ];
  const body: Insn[] = [
    [LD | W | ABS, 0, 0, SKF_NET_OFF + (client === 'src' ? IP4_SRC : IP4_DST)],
    ...mix,
    [RET | RET_A, 0, 0, 0],
  ];
  const prog: Insn[] = [
    [LD | H | ABS, 0, 0, SKF_AD_PROTOCOL],
    [JMP | JEQ | K, 0, body.length, ETH_P_IP],   // not IPv4: past the body, to "return 0"
    ...body,
    [RET | K, 0, 0, 0],
  ];
  const out = new Uint8Array(prog.length * 8);
  const dv = new DataView(out.buffer);
  prog.forEach(([code, jt, jf, k], i) => {
    dv.setUint16(i * 8, code, true); dv.setUint8(i * 8 + 2, jt); dv.setUint8(i * 8 + 3, jf); dv.setUint32(i * 8 + 4, k >>> 0, true);
  });
  return out;
}
