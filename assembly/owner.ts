// Which of N workers owns a flow key (an address and a port, 0 for "address only"): the one
// function that steering (steer.ts) and SNAT port allocation (snat.ts) must agree on, so that a
// masqueraded flow's replies — addressed to (SNAT address, allocated port) — are steered to the
// worker that allocated the port. docs/performance.md "Several workers on one interface".
//
// Not the layout hash: it only has to spread keys evenly, be cheap, and be what the kernel
// computes for a port-less key in the classic BPF fanout program (src/ports/fanout-program.ts),
// so frames reach their owner without a hand-off where the port's role tells the client's side:
// the four address words folded and read big-endian (an IPv4 address as the BPF load sees it),
// the port mixed in with a golden-ratio multiply, murmur3's finaliser, modulo the workers (the
// kernel takes the program's result modulo the group's members).

@inline export function ownerOf(addr: usize, port: u32, workers: u32): u32 {
  let x = bswap<u32>(load<u32>(addr, 0) ^ load<u32>(addr, 4) ^ load<u32>(addr, 8) ^ load<u32>(addr, 12));
  x ^= port * 0x9e3779b1;
  x ^= x >>> 16; x *= 0x85ebca6b;
  x ^= x >>> 13; x *= 0xc2b2ae35;
  x ^= x >>> 16;
  return x % workers;
}
