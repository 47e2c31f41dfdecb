// A measurement prototype, not part of wdp: what an established-flow path inside the kernel would
// cost on the bench's veth topology (docs/performance.md, "An established-flow path in the
// kernel"). It installs the bench's three ClusterIP services as static rules (one backend each,
// both directions, no conntrack, no counters) into a BPF hash map, a tcx ingress program on r0 and
// r1 that rewrites a matching frame (MACs, address, port, TTL; checksums by the kernel's helpers)
// and redirects it to the other interface, and with --xdp an XDP program returning XDP_PASS on both
// (the price of the XDP hook an AF_XDP port needs, which the real path would pass through); with
// --packet instead an AF_PACKET socket on each whose socket filter looks the frame up in the same
// map and does not take a hit (the price of a port that shares the interface through a tap); with
// --xdp-redirect no tc program but an XDP program that rewrites a hit itself and redirects it as an
// XDP frame (veth takes one only into a peer with NAPI: it turns GRO on at the client's c0 and the
// server's s0, whose namespaces the bench passes in WDP_BENCH_CLIENT_NS and WDP_BENCH_SERVER_NS).
//
//   rustc -O -o /tmp/tc-fastpath bench/proto/tc-fastpath.rs
//   node bench/ab-e2e.mjs --rounds 4 --rtt-chunk 0 --conn-seconds 0 --blast one --blast-seconds 2 \
//     --variant gen=generator --variant kernel=kernel --variant tc=command,cmd=/tmp/tc-fastpath,arg=--xdp
//
// Arguments (src/bench/e2e.ts commandArgv appends all but the first): [--xdp | --packet |
// --xdp-redirect] clientMac serverMac routerMacC routerMacS server {proto vip port targetPort}...
// Runs until stdin closes; the links (and so the programs) go with the process. x86-64 only (the
// bpf(2) syscall number).
use std::io::Read;

extern "C" {
    fn syscall(n: i64, ...) -> i64;
    fn if_nametoindex(n: *const u8) -> u32;
    fn __errno_location() -> *mut i32;
    fn socket(domain: i32, ty: i32, proto: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, val: *const u8, len: u32) -> i32;
    fn bind(fd: i32, addr: *const u8, len: u32) -> i32;
    fn getsockopt(fd: i32, level: i32, name: i32, val: *mut u8, len: *mut u32) -> i32;
}

const SYS_BPF: i64 = 321; // x86-64
const BPF_MAP_CREATE: i64 = 0;
const BPF_MAP_UPDATE_ELEM: i64 = 2;
const BPF_PROG_LOAD: i64 = 5;
const BPF_LINK_CREATE: i64 = 28;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_TCX_INGRESS: u32 = 46;
const XDP_FLAGS_DRV_MODE: u32 = 4;
// helpers
const MAP_LOOKUP: i32 = 1;
const SKB_STORE_BYTES: i32 = 9;
const L3_CSUM_REPLACE: i32 = 10;
const L4_CSUM_REPLACE: i32 = 11;
const REDIRECT: i32 = 23;
const PULL_DATA: i32 = 39;
const SKB_LOAD_BYTES: i32 = 26;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const F_PSEUDO_HDR: i32 = 0x10;
const F_MARK_MANGLED_0: i32 = 0x20;
// __sk_buff
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
// map value: 0 new addr u32 | 4 new port u16 | 6 addr offset u16 | 8 port offset u16 |
// 10 L4 checksum offset u16 | 12 out ifindex u32 | 16 dst MAC, src MAC [12] | 28 checksum flags u8
const VALUE_SIZE: u32 = 32;

#[repr(C, align(8))]
struct Attr([u8; 128]);
impl Attr {
    fn new() -> Attr { Attr([0; 128]) }
    fn u32_at(&mut self, o: usize, v: u32) -> &mut Self { self.0[o..o + 4].copy_from_slice(&v.to_ne_bytes()); self }
    fn u64_at(&mut self, o: usize, v: u64) -> &mut Self { self.0[o..o + 8].copy_from_slice(&v.to_ne_bytes()); self }
}

fn bpf(cmd: i64, a: &mut Attr, what: &str) -> u32 {
    let r = unsafe { syscall(SYS_BPF, cmd, a.0.as_mut_ptr(), 128i64) };
    if r < 0 {
        eprintln!("{what}: errno {}", unsafe { *__errno_location() });
        std::process::exit(1);
    }
    r as u32
}

/// eBPF with forward jumps to named labels.
struct Asm { v: Vec<u64>, fix: Vec<(usize, &'static str)>, labels: Vec<(&'static str, usize)> }
fn enc(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    code as u64 | (dst as u64) << 8 | (src as u64) << 12 | ((off as u16) as u64) << 16 | ((imm as u32) as u64) << 32
}
impl Asm {
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) { self.v.push(enc(code, dst, src, off, imm)); }
    fn jmp(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: &'static str) { self.fix.push((self.v.len(), to)); self.i(code, dst, src, 0, imm); }
    fn label(&mut self, l: &'static str) { self.labels.push((l, self.v.len())); }
    fn mov(&mut self, dst: u8, src: u8) { self.i(0xbf, dst, src, 0, 0); }
    fn movi(&mut self, dst: u8, imm: i32) { self.i(0xb7, dst, 0, 0, imm); }
    fn call(&mut self, f: i32) { self.i(0x85, 0, 0, 0, f); }
    fn ld_map(&mut self, dst: u8, fd: u32) { self.i(0x18, dst, 1, 0, fd as i32); self.i(0, 0, 0, 0, 0); }
    fn done(mut self) -> Vec<u64> {
        for (at, l) in &self.fix {
            let t = self.labels.iter().find(|x| x.0 == *l).expect(l).1;
            self.v[*at] = self.v[*at] & !(0xffffu64 << 16) | (((t as i64 - *at as i64 - 1) as i16 as u16) as u64) << 16;
        }
        self.v
    }
}

fn load(ptype: u32, insns: &[u64], name: &[u8]) -> u32 {
    let license = b"GPL\0";
    let mut log = vec![0u8; 65536];
    let mut a = Attr::new();
    a.u32_at(0, ptype).u32_at(4, insns.len() as u32).u64_at(8, insns.as_ptr() as u64).u64_at(16, license.as_ptr() as u64)
        .u32_at(24, 1).u32_at(28, log.len() as u32).u64_at(32, log.as_mut_ptr() as u64);
    a.0[48..48 + name.len()].copy_from_slice(name);
    let r = unsafe { syscall(SYS_BPF, BPF_PROG_LOAD, a.0.as_mut_ptr(), 128i64) };
    if r < 0 {
        eprintln!("program load: {}", String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]));
        std::process::exit(1);
    }
    r as u32
}

/// Both programs' start, with r2 = data checked to hold 54 bytes: an IPv4 frame without options,
/// TTL ≥ 2, else `miss`; its rule by (destination, 0), else by (source, 1), else `miss`; at the
/// label "hit" r0 is the value and fp-8 holds the matched (old) address and port.
fn lookup(p: &mut Asm, map: u32, miss: &'static str) {
    p.i(0x69, 4, 2, 12, 0);
    p.jmp(0x55, 4, 0, 0x0008, miss); // ethertype IPv4
    p.i(0x71, 4, 2, 14, 0);
    p.jmp(0x55, 4, 0, 0x45, miss); // no options
    p.i(0x71, 4, 2, 22, 0);
    p.jmp(0xa5, 4, 0, 2, miss); // TTL < 2: the stack answers
    p.i(0x71, 5, 2, 23, 0); // r5 = protocol
    p.i(0x61, 4, 2, 30, 0); p.i(0x63, 10, 4, -8, 0);
    p.i(0x69, 4, 2, 36, 0); p.i(0x6b, 10, 4, -4, 0);
    p.i(0x73, 10, 5, -2, 0); p.i(0x72, 10, 0, -1, 0);
    p.i(0x61, 4, 2, 26, 0); p.i(0x63, 10, 4, -16, 0);
    p.i(0x69, 4, 2, 34, 0); p.i(0x6b, 10, 4, -12, 0);
    p.i(0x73, 10, 5, -10, 0); p.i(0x72, 10, 0, -9, 1);
    p.ld_map(1, map); p.mov(2, 10); p.i(0x07, 2, 0, 0, -8); p.call(MAP_LOOKUP);
    p.jmp(0x55, 0, 0, 0, "hit");
    p.ld_map(1, map); p.mov(2, 10); p.i(0x07, 2, 0, 0, -16); p.call(MAP_LOOKUP);
    p.jmp(0x15, 0, 0, 0, miss);
    p.i(0x79, 4, 10, -16, 0); p.i(0x7b, 10, 4, -8, 0); // the old (source) values where the code reads them
    p.label("hit");
}

/// The tcx program. Key on the stack at fp-8: {address u32, port u16, protocol u8, direction u8},
/// first (destination, 0), then (source, 1); a hit rewrites and redirects, a miss continues.
fn tc_program(map: u32) -> Vec<u64> {
    let mut p = Asm { v: vec![], fix: vec![], labels: vec![] };
    p.mov(6, 1); // r6 = skb
    p.i(0x61, 2, 6, SKB_DATA, 0);
    p.i(0x61, 3, 6, SKB_DATA_END, 0);
    p.mov(4, 2);
    p.i(0x07, 4, 0, 0, 54); // Ethernet + IPv4 + TCP up to its checksum
    p.jmp(0x3d, 3, 4, 0, "linear");
    // a packet socket's skb (trafgen's) holds its headers in page fragments: pull them in
    p.mov(1, 6); p.movi(2, 54); p.call(PULL_DATA);
    p.jmp(0x55, 0, 0, 0, "next");
    p.i(0x61, 2, 6, SKB_DATA, 0);
    p.i(0x61, 3, 6, SKB_DATA_END, 0);
    p.mov(4, 2);
    p.i(0x07, 4, 0, 0, 54);
    p.jmp(0x2d, 4, 3, 0, "next");
    p.label("linear");
    p.i(0x69, 4, 2, 22, 0); p.i(0x6b, 10, 4, -18, 0); // TTL and protocol, as on the wire
    lookup(&mut p, map, "next");
    p.mov(7, 0); // r7 = value
    p.i(0x69, 8, 7, 10, 0); // r8 = L4 checksum offset
    p.i(0x71, 9, 7, 28, 0); // r9 = checksum flags
    // TTL - 1 (the word TTL|protocol), IPv4 checksum for it and the address
    p.i(0x69, 3, 10, -18, 0); p.mov(4, 3); p.i(0x07, 4, 0, 0, -1); p.i(0x6b, 10, 4, -20, 0);
    p.mov(1, 6); p.movi(2, 24); p.movi(5, 2); p.call(L3_CSUM_REPLACE);
    p.mov(1, 6); p.movi(2, 22); p.mov(3, 10); p.i(0x07, 3, 0, 0, -20); p.movi(4, 2); p.movi(5, 0); p.call(SKB_STORE_BYTES);
    p.mov(1, 6); p.movi(2, 24); p.i(0x61, 3, 10, -8, 0); p.i(0x61, 4, 7, 0, 0); p.movi(5, 4); p.call(L3_CSUM_REPLACE);
    // L4 checksum: the pseudo-header's address, the port
    p.mov(1, 6); p.mov(2, 8); p.i(0x61, 3, 10, -8, 0); p.i(0x61, 4, 7, 0, 0); p.mov(5, 9); p.i(0x47, 5, 0, 0, F_PSEUDO_HDR | 4); p.call(L4_CSUM_REPLACE);
    p.mov(1, 6); p.mov(2, 8); p.i(0x69, 3, 10, -4, 0); p.i(0x69, 4, 7, 4, 0); p.mov(5, 9); p.i(0x47, 5, 0, 0, 2); p.call(L4_CSUM_REPLACE);
    // the address, the port, the MACs
    p.mov(1, 6); p.i(0x69, 2, 7, 6, 0); p.mov(3, 7); p.movi(4, 4); p.movi(5, 0); p.call(SKB_STORE_BYTES);
    p.mov(1, 6); p.i(0x69, 2, 7, 8, 0); p.mov(3, 7); p.i(0x07, 3, 0, 0, 4); p.movi(4, 2); p.movi(5, 0); p.call(SKB_STORE_BYTES);
    p.mov(1, 6); p.movi(2, 0); p.mov(3, 7); p.i(0x07, 3, 0, 0, 16); p.movi(4, 12); p.movi(5, 0); p.call(SKB_STORE_BYTES);
    p.i(0x61, 1, 7, 12, 0); p.movi(2, 0); p.call(REDIRECT);
    p.i(0x95, 0, 0, 0, 0);
    p.label("next");
    p.movi(0, -1); // TCX_NEXT
    p.i(0x95, 0, 0, 0, 0);
    p.done()
}

/// --xdp-redirect: the same rules in XDP (the hook an AF_XDP port already has): a hit is rewritten
/// in place — checksums by RFC 1624's incremental update over the words as loaded (one's
/// complement sums do not depend on byte order) — and redirected to the other interface as an XDP
/// frame; a miss is passed. Key at fp-8 as in the tc program; r7 = value, r8 = data, r9 = the L4
/// checksum's offset.
fn xdp_program(map: u32) -> Vec<u64> {
    let mut p = Asm { v: vec![], fix: vec![], labels: vec![] };
    p.mov(6, 1);
    p.i(0x61, 2, 6, 0, 0); // data
    p.i(0x61, 3, 6, 4, 0); // data_end
    p.mov(4, 2); p.i(0x07, 4, 0, 0, 54); p.jmp(0x2d, 4, 3, 0, "pass");
    lookup(&mut p, map, "pass");
    p.mov(7, 0);
    p.i(0x61, 8, 6, 0, 0); p.i(0x61, 3, 6, 4, 0); // packet pointers again after the calls
    p.mov(4, 8); p.i(0x07, 4, 0, 0, 54); p.jmp(0x2d, 4, 3, 0, "pass");
    p.i(0x69, 9, 7, 10, 0); // L4 checksum offset: 40 or 50
    // r1 = ~IPv4 checksum; + ~old + new for the TTL word and the address's two words
    p.i(0x69, 1, 8, 24, 0); p.i(0xa7, 1, 0, 0, 0xffff);
    p.i(0x69, 2, 8, 22, 0); p.mov(3, 2); p.i(0x07, 3, 0, 0, -1); p.i(0x6b, 8, 3, 22, 0); // TTL - 1
    p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0); p.i(0x0f, 1, 3, 0, 0);
    p.i(0x69, 2, 10, -8, 0); p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 10, -6, 0); p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 7, 0, 0); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 7, 2, 0); p.i(0x0f, 1, 2, 0, 0);
    for _ in 0..2 { p.mov(2, 1); p.i(0x77, 2, 0, 0, 16); p.i(0x57, 1, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0); }
    p.i(0xa7, 1, 0, 0, 0xffff); p.i(0x6b, 8, 1, 24, 0);
    // the L4 checksum (skipped for a UDP datagram without one): the address's words and the port
    p.jmp(0x15, 9, 0, 50, "l4"); // TCP always has one
    p.i(0x69, 1, 8, 40, 0); p.jmp(0x15, 1, 0, 0, "rewrite");
    p.label("l4");
    p.jmp(0x25, 9, 0, 52, "pass"); // bound the offset for the verifier
    p.mov(4, 8); p.i(0x0f, 4, 9, 0, 0); // data + offset (40 or 50)
    p.mov(5, 4); p.i(0x07, 5, 0, 0, 2);
    p.i(0x61, 3, 6, 4, 0); p.jmp(0x2d, 5, 3, 0, "pass");
    p.i(0x69, 1, 4, 0, 0); p.i(0xa7, 1, 0, 0, 0xffff);
    p.i(0x69, 2, 10, -8, 0); p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 10, -6, 0); p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 10, -4, 0); p.i(0xa7, 2, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 7, 0, 0); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 7, 2, 0); p.i(0x0f, 1, 2, 0, 0);
    p.i(0x69, 2, 7, 4, 0); p.i(0x0f, 1, 2, 0, 0);
    for _ in 0..2 { p.mov(2, 1); p.i(0x77, 2, 0, 0, 16); p.i(0x57, 1, 0, 0, 0xffff); p.i(0x0f, 1, 2, 0, 0); }
    p.i(0xa7, 1, 0, 0, 0xffff);
    p.jmp(0x55, 1, 0, 0, "store"); p.movi(1, 0xffff); // UDP: a zero result is sent as all ones
    p.label("store");
    p.i(0x6b, 4, 1, 0, 0);
    p.label("rewrite");
    // address and port where the value says (offsets 30/36 or 26/34), then the MACs
    p.i(0x69, 1, 7, 6, 0); p.jmp(0x55, 1, 0, 30, "src");
    p.i(0x61, 2, 7, 0, 0); p.i(0x63, 8, 2, 30, 0); p.i(0x69, 2, 7, 4, 0); p.i(0x6b, 8, 2, 36, 0);
    p.jmp(0x05, 0, 0, 0, "macs");
    p.label("src");
    p.i(0x61, 2, 7, 0, 0); p.i(0x63, 8, 2, 26, 0); p.i(0x69, 2, 7, 4, 0); p.i(0x6b, 8, 2, 34, 0);
    p.label("macs");
    for o in [0i16, 4, 8] { p.i(0x61, 2, 7, 16 + o, 0); p.i(0x63, 8, 2, o, 0); }
    p.i(0x61, 1, 7, 12, 0); p.movi(2, 0); p.call(REDIRECT);
    p.i(0x95, 0, 0, 0, 0);
    p.label("pass");
    p.movi(0, 2); // XDP_PASS
    p.i(0x95, 0, 0, 0, 0);
    p.done()
}

/// --packet: the socket filter of an AF_PACKET socket sharing the interface (what a port that
/// takes the frames the fast path does not would run on every frame, before tc): a hit is not
/// taken (0), anything else is (-1: the whole frame). The frame's bytes 12..38 are loaded to
/// fp-34, so a field at frame offset o sits at fp + o - 46 (the addresses 4-byte aligned).
fn filter_program(map: u32) -> Vec<u64> {
    let mut p = Asm { v: vec![], fix: vec![], labels: vec![] };
    p.mov(1, 1); p.movi(2, 12); p.mov(3, 10); p.i(0x07, 3, 0, 0, -34); p.movi(4, 26); p.call(SKB_LOAD_BYTES);
    p.jmp(0x55, 0, 0, 0, "take");
    p.i(0x69, 4, 10, -34, 0); p.jmp(0x55, 4, 0, 0x0008, "take");
    p.i(0x71, 4, 10, -32, 0); p.jmp(0x55, 4, 0, 0x45, "take");
    p.i(0x71, 5, 10, -23, 0);
    p.i(0x61, 4, 10, -16, 0); p.i(0x63, 10, 4, -48, 0); p.i(0x69, 4, 10, -10, 0); p.i(0x6b, 10, 4, -44, 0);
    p.i(0x73, 10, 5, -42, 0); p.i(0x72, 10, 0, -41, 0);
    p.i(0x61, 4, 10, -20, 0); p.i(0x63, 10, 4, -56, 0); p.i(0x69, 4, 10, -12, 0); p.i(0x6b, 10, 4, -52, 0);
    p.i(0x73, 10, 5, -50, 0); p.i(0x72, 10, 0, -49, 1);
    p.ld_map(1, map); p.mov(2, 10); p.i(0x07, 2, 0, 0, -48); p.call(MAP_LOOKUP);
    p.jmp(0x55, 0, 0, 0, "skip");
    p.ld_map(1, map); p.mov(2, 10); p.i(0x07, 2, 0, 0, -56); p.call(MAP_LOOKUP);
    p.jmp(0x55, 0, 0, 0, "skip");
    p.label("take"); p.movi(0, -1); p.i(0x95, 0, 0, 0, 0);
    p.label("skip"); p.movi(0, 0); p.i(0x95, 0, 0, 0, 0);
    p.done()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let xdp = args.first().map(|a| a == "--xdp").unwrap_or(false);
    if xdp { args.remove(0); }
    let packet = args.first().map(|a| a == "--packet").unwrap_or(false);
    if packet { args.remove(0); }
    let xdp_redirect = args.first().map(|a| a == "--xdp-redirect").unwrap_or(false);
    if xdp_redirect { args.remove(0); }
    if args.len() < 5 || (args.len() - 5) % 4 != 0 {
        eprintln!("usage: tc-fastpath [--xdp | --packet | --xdp-redirect] clientMac serverMac routerMacC routerMacS server {{proto vip port targetPort}}...");
        std::process::exit(2);
    }
    let ip = |s: &str| -> [u8; 4] { let b: Vec<u8> = s.split('.').map(|x| x.parse().expect("IPv4")).collect(); [b[0], b[1], b[2], b[3]] };
    let mac = |s: &str| -> Vec<u8> { s.split(':').map(|x| u8::from_str_radix(x, 16).expect("MAC")).collect() };
    let ifindex = |s: &str| -> u32 { let c = format!("{s}\0"); unsafe { if_nametoindex(c.as_ptr()) } };
    let (r0, r1) = (ifindex("r0"), ifindex("r1"));
    let mut a = Attr::new();
    a.u32_at(0, BPF_MAP_TYPE_HASH).u32_at(4, 8).u32_at(8, VALUE_SIZE).u32_at(12, 64);
    let map = bpf(BPF_MAP_CREATE, &mut a, "map create");
    let server = ip(&args[4]);
    for s in args[5..].chunks(4) {
        let proto: u8 = s[0].parse().expect("protocol");
        let (vip, port, target): ([u8; 4], u16, u16) = (ip(&s[1]), s[2].parse().expect("port"), s[3].parse().expect("port"));
        let csum: u16 = if proto == 17 { 40 } else { 50 };
        let flags: u8 = if proto == 17 { F_MARK_MANGLED_0 as u8 } else { 0 };
        // (match address, match port, direction, new address, new port, out, dst MAC, src MAC)
        for (addr, mport, dir, naddr, nport, out, dmac, smac) in [
            (vip, port, 0u8, server, target, r1, &args[1], &args[3]),
            (server, target, 1u8, vip, port, r0, &args[0], &args[2]),
        ] {
            let mut key = [0u8; 8];
            key[0..4].copy_from_slice(&addr); key[4..6].copy_from_slice(&mport.to_be_bytes()); key[6] = proto; key[7] = dir;
            let mut val = [0u8; VALUE_SIZE as usize];
            val[0..4].copy_from_slice(&naddr); val[4..6].copy_from_slice(&nport.to_be_bytes());
            let (ao, po): (u16, u16) = if dir == 0 { (30, 36) } else { (26, 34) };
            val[6..8].copy_from_slice(&ao.to_ne_bytes()); val[8..10].copy_from_slice(&po.to_ne_bytes());
            val[10..12].copy_from_slice(&csum.to_ne_bytes()); val[12..16].copy_from_slice(&out.to_ne_bytes());
            val[16..22].copy_from_slice(&mac(dmac)); val[22..28].copy_from_slice(&mac(smac)); val[28] = flags;
            let mut a = Attr::new();
            a.u32_at(0, map).u64_at(8, key.as_ptr() as u64).u64_at(16, val.as_ptr() as u64);
            bpf(BPF_MAP_UPDATE_ELEM, &mut a, "map update");
        }
    }
    let mut links = vec![];
    if xdp_redirect {
        // veth takes an XDP frame only into a peer with NAPI: GRO on the client's and server's ends
        for (env, dev) in [("WDP_BENCH_CLIENT_NS", "c0"), ("WDP_BENCH_SERVER_NS", "s0")] {
            let ns = std::env::var(env).expect(env);
            let ok = std::process::Command::new("ip").args(["netns", "exec", &ns, "ethtool", "-K", dev, "gro", "on"]).status().map(|s| s.success()).unwrap_or(false);
            if !ok { eprintln!("ethtool -K {dev} gro on in {ns} failed"); std::process::exit(1); }
        }
        let prog = load(BPF_PROG_TYPE_XDP, &xdp_program(map), b"wdp_xdp_proto");
        for i in [r0, r1] {
            let mut a = Attr::new();
            a.u32_at(0, prog).u32_at(4, i).u32_at(8, BPF_XDP).u32_at(12, XDP_FLAGS_DRV_MODE);
            links.push(bpf(BPF_LINK_CREATE, &mut a, "XDP attach"));
        }
        println!("ready");
        let mut b = [0u8; 1];
        let _ = std::io::stdin().read(&mut b);
        return;
    }
    let prog = load(BPF_PROG_TYPE_SCHED_CLS, &tc_program(map), b"wdp_tc_proto");
    for i in [r0, r1] {
        let mut a = Attr::new();
        a.u32_at(0, prog).u32_at(4, i).u32_at(8, BPF_TCX_INGRESS);
        links.push(bpf(BPF_LINK_CREATE, &mut a, "tcx attach"));
    }
    if xdp {
        let pass = load(BPF_PROG_TYPE_XDP, &[enc(0xb7, 0, 0, 0, 2), enc(0x95, 0, 0, 0, 0)], b"wdp_xdp_pass");
        for i in [r0, r1] {
            let mut a = Attr::new();
            a.u32_at(0, pass).u32_at(4, i).u32_at(8, BPF_XDP).u32_at(12, XDP_FLAGS_DRV_MODE);
            links.push(bpf(BPF_LINK_CREATE, &mut a, "XDP attach"));
        }
    }
    let mut sockets = vec![];
    if packet {
        let filter = load(BPF_PROG_TYPE_SOCKET_FILTER, &filter_program(map), b"wdp_pkt_filter");
        for i in [r0, r1] {
            let fd = unsafe { socket(17, 3, 0) }; // AF_PACKET, SOCK_RAW, no protocol until bound
            let one = 1i32;
            let ok = fd >= 0 && unsafe { setsockopt(fd, 1, 50, &filter as *const u32 as *const u8, 4) } == 0 // SO_ATTACH_BPF
                && unsafe { setsockopt(fd, 263, 23, &one as *const i32 as *const u8, 4) } == 0; // PACKET_IGNORE_OUTGOING: as a port
            let mut sll = [0u8; 20];
            sll[0..2].copy_from_slice(&17u16.to_ne_bytes()); sll[2..4].copy_from_slice(&3u16.to_be_bytes()); // ETH_P_ALL
            sll[4..8].copy_from_slice(&(i as i32).to_ne_bytes());
            if !ok || unsafe { bind(fd, sll.as_ptr(), 20) } != 0 {
                eprintln!("AF_PACKET socket: errno {}", unsafe { *__errno_location() });
                std::process::exit(1);
            }
            sockets.push(fd);
        }
    }
    println!("ready");
    let mut b = [0u8; 1];
    let _ = std::io::stdin().read(&mut b);
    // what the sockets' filters took (their hits were not): PACKET_STATISTICS {packets, drops}
    for (fd, dev) in sockets.iter().zip(["r0", "r1"]) {
        let mut st = [0u32; 2];
        let mut len = 8u32;
        unsafe { getsockopt(*fd, 263, 6, st.as_mut_ptr() as *mut u8, &mut len) };
        eprintln!("{dev}: the filter took {} frames ({} of them dropped: nobody reads)", st[0], st[1]);
    }
}
