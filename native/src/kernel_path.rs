//! An established-flow path in the kernel: a table of flows the Wasm core has already decided,
//! and a tcx ingress program that forwards a frame of such a flow itself — rewrites its MACs,
//! addresses, ports and TTL, updates the checksums by precomputed differences, and redirects it to
//! the egress interface — so the frame never wakes the worker. The core stays the authority: an
//! entry carries the table generation it was made under (a table switch bumps the generation and
//! every entry stops matching at once) and a deadline after which the next frame goes through the
//! core again (which refreshes its conntrack, affinity and counters, and the worker the entry).
//! Frames that must see the core always pass: TCP SYN/FIN/RST, fragments, IPv4 options, TTL < 2,
//! frames above the egress MTU (a super-frame: its segments), frames addressed to another MAC,
//! anything not IPv4 TCP/UDP. docs/performance.md, "An established-flow path in the kernel", has
//! what it costs and why it sits at tc on veth.
//!
//! The worker fills the table (src/daemon/kernel-path.ts) from the core's decisions. What feeds the
//! worker decides which tc program an interface gets (Mode): behind an AF_XDP port, the port's XDP
//! program (afxdp.rs) runs the same match (emit_match) and passes a frame this path takes on to tc
//! instead of to the worker; behind an AF_PACKET port, the socket's filter (filter_program) runs it
//! and leaves such a frame to tc through a per-CPU handoff slot.
//!
//! Flow key (KEY_SIZE bytes, the frame as it arrives):
//!   0 ingress ifindex u32 | 4 saddr | 8 daddr | 12 sport | 14 dport | 16 protocol u8 | 17 zero[3]
//!   (addresses and ports as on the wire)
//! Flow value (VALUE_SIZE bytes):
//!   0 egress ifindex u32 | 4 generation u32 | 8 deadline u64 (CLOCK_MONOTONIC ns)
//!   16 saddr | 20 daddr | 24 sport | 26 dport      (the frame as it leaves: 12 bytes written at 26)
//!   28 dst MAC | 34 src MAC                          (12 bytes written at 0)
//!   40 IPv4 checksum difference u32 (addresses and TTL) | 44 L4 pseudo-header difference u32
//!   48 L4 port difference u32 | 52 largest IP length u16 (the egress MTU) | 54 zero[2]
//!   56 the MAC the frame arrives addressed to (the ingress port's) | 62 zero[2]
//! Entry as user space gives it (ENTRY_SIZE bytes): the key, then
//!   20 egress ifindex u32 | 24 saddr | 28 daddr | 32 sport | 34 dport | 36 dst MAC | 42 src MAC
//!   48 largest IP length u16 | 50 lifetime ms u16 | 52 ingress MAC | 58 zero[2]

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bpf_asm::{Asm, Cond, Size, FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9};
use crate::ffi::{self, NErr, NResult};
use crate::handles::Handles;

pub const KEY_SIZE: usize = 20;
pub const VALUE_SIZE: usize = 64;
pub const ENTRY_SIZE: usize = 60;

// Ethernet + IPv4 (no options) + TCP up to its checksum: what the program reads and writes
const ETH_LEN: i32 = 14;
const HEADERS: i32 = 54;
/// Ethernet + IPv4 (no options) + UDP: a short datagram's frame (veth does not pad to 60 bytes)
const HEADERS_UDP: i32 = 42;
const IP_CSUM: i32 = 24;
const UDP_CSUM: i32 = 40;
const TCP_CSUM: i32 = 50;

// helpers (linux/bpf.h enum bpf_func_id)
const KTIME_GET_NS: i32 = 5;
const L3_CSUM_REPLACE: i32 = 10;
const L4_CSUM_REPLACE: i32 = 11;
const REDIRECT: i32 = 23;
const SKB_PULL_DATA: i32 = 39;
const F_PSEUDO_HDR: i32 = 0x10;
const F_MARK_MANGLED_0: i32 = 0x20;
const TCX_NEXT: i32 = -1;
// struct __sk_buff
const SKB_LEN: i16 = 0;
const SKB_INGRESS_IFINDEX: i16 = 36;
const SKB_IFINDEX: i16 = 40;
const SKB_GSO_SIZE: i16 = 176;
/// emit_match's stack slot for the L4 header's length (TCP's data offset, UDP's 8): FP-48
const L4_HEADER_LEN: i16 = -48;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
// struct xdp_md
const XDP_DATA: i16 = 0;
const XDP_DATA_END: i16 = 4;
const XDP_INGRESS_IFINDEX: i16 = 12;
/// How far away an entry's deadline must be for XDP to pass its frame: far more than a frame takes
/// from the XDP hook to tc.
pub const XDP_MARGIN_NS: i32 = 2_000_000;

/// One's complement sum of the 16-bit words of `b` as they sit in memory (little-endian loads,
/// as the kernel's csum code adds them), not folded.
fn words(b: &[u8]) -> u32 {
    b.chunks(2).map(|w| u16::from_le_bytes([w[0], w[1]]) as u32).sum()
}

fn fold(mut s: u64) -> u32 {
    while s >> 32 != 0 {
        s = (s & 0xffff_ffff) + (s >> 32);
    }
    s as u32
}

/// The difference (RFC 1624: the sum of ~old and new words) that turns a checksum over `old`
/// into one over `new`, as the kernel's *_csum_replace helpers take it with size 0.
fn difference(old: &[u8], new: &[u8]) -> u32 {
    let not_old: u64 = old.chunks(2).map(|w| (!u16::from_le_bytes([w[0], w[1]])) as u64).sum();
    fold(not_old + words(new) as u64)
}

/// The three checksum differences of a rewrite from (saddr, daddr, sport, dport) `old` to `new`
/// (12 bytes each, as on the wire): the IPv4 header's (addresses and the TTL's decrement: the word
/// TTL|protocol as loaded is one less, so ~w + (w - 1) = 0xfffe), the L4 pseudo-header's
/// (addresses), the L4 ports'. Kept apart because a CHECKSUM_PARTIAL skb's L4 field holds the
/// pseudo-header's sum only: the kernel applies the pseudo part there and leaves the ports to the
/// checksum still to be computed.
pub fn differences(old: &[u8; 12], new: &[u8; 12]) -> (u32, u32, u32) {
    let addrs = difference(&old[..8], &new[..8]);
    let l3 = fold(addrs as u64 + 0xfffe);
    (l3, addrs, difference(&old[8..], &new[8..]))
}

/// Where a program runs, and so what it reads the frame and its ingress interface through.
#[derive(Clone, Copy, PartialEq)]
pub enum Hook {
    Tc,
    Xdp,
    /// an AF_PACKET socket's filter: the headers copied to the stack (no direct packet access)
    Socket,
}

impl Hook {
    fn data(self) -> i16 {
        if self == Hook::Xdp { XDP_DATA } else { SKB_DATA }
    }
    fn data_end(self) -> i16 {
        if self == Hook::Xdp { XDP_DATA_END } else { SKB_DATA_END }
    }
    fn ingress_ifindex(self) -> i16 {
        match self {
            Hook::Xdp => XDP_INGRESS_IFINDEX,
            Hook::Tc => SKB_INGRESS_IFINDEX,
            // (a socket filter's ingress_ifindex reads 0: the device the socket is bound to)
            Hook::Socket => SKB_IFINDEX,
        }
    }
}

/// What feeds an interface's frames to the worker, and so which tc program runs there.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    /// nothing in front: tc checks everything (native-kernel-path's test)
    Alone,
    /// an AF_XDP port: its XDP program checked the entry's generation and deadline and passes
    /// the frames it matched (tc checks the rest again)
    Xdp,
    /// an AF_PACKET port: its socket filter (socket_filter()) skips the frames it matched and
    /// hands each to tc through the per-CPU handoff slot; tc takes exactly those
    Packet,
}

impl Mode {
    pub fn parse(s: &str) -> NResult<Mode> {
        match s {
            "alone" => Ok(Mode::Alone),
            "xdp" => Ok(Mode::Xdp),
            "packet" => Ok(Mode::Packet),
            _ => Err(NErr::new("EINVAL", format!("kernel path mode must be \"xdp\", \"packet\" or \"alone\", got \"{s}\""))),
        }
    }
}

/// r2 = the frame's first byte, r3 = its end, r4 = r2 + HEADERS_UDP (a bound still to be
/// checked: emit_match checks TCP's longer header itself); r6 = the context
pub fn packet(p: &mut Asm, hook: Hook) {
    p.load(Size::W, R2, R6, hook.data());
    p.load(Size::W, R3, R6, hook.data_end());
    p.mov(R4, R2);
    p.add_imm(R4, HEADERS_UDP);
}

/// The maps a frame is matched against (fds, for the programs' map loads).
#[derive(Clone, Copy)]
pub struct MatchMaps {
    pub flows: i32,
    pub state: i32,
}

/// The checks that make a frame the kernel path's, one emitter for the tc program and the AF_XDP
/// port's XDP program (afxdp.rs: it passes such a frame on to tc instead of to the worker). With
/// r6 = the context and r2 = the frame's first byte, HEADERS_UDP bytes checked readable (TCP's
/// HEADERS are checked here: against r3, the frame's end; for Hook::Socket against r7, the bytes
/// filter_program copied): on a match
/// r7 = the flow's value, r8 = the L4 checksum's offset, r9 = the L4 helpers' extra flags, and the
/// code falls through; otherwise it jumps to `miss`. `fresh`: Some(margin): the entry must be of
/// the current generation and its deadline at least `margin` ns away; None: not checked (tc
/// behind an XDP program that checked them: what it passed, it passed for this path).
pub fn emit_match(p: &mut Asm, hook: Hook, maps: MatchMaps, fresh: Option<i32>, miss: &'static str) {
    p.load(Size::H, R4, R2, 12);
    p.jump_imm(Cond::Ne, R4, 0x0008, miss); // ethertype IPv4 (as loaded)
    // the destination MAC, kept for the check against the entry's (a frame flooded to this port,
    // addressed to another host, is not this path's): on the stack below the key
    // (in halves: the socket filter's copy on the stack is 2-byte aligned here, 4-byte aligned at the addresses)
    for off in [0, 2, 4] {
        p.load(Size::H, R4, R2, off);
        p.store(Size::H, FP, -40 + off, R4);
    }
    p.load(Size::B, R4, R2, 14);
    p.jump_imm(Cond::Ne, R4, 0x45, miss); // version 4, no options
    p.load(Size::H, R4, R2, 20);
    p.and_imm(R4, 0xff3f); // MF and the fragment offset (as loaded)
    p.jump_imm(Cond::Ne, R4, 0, miss);
    p.load(Size::B, R4, R2, 22);
    p.jump_imm(Cond::Lt, R4, 2, miss); // TTL: the core answers time exceeded
    p.load(Size::B, R5, R2, 23);
    p.mov_imm(R8, UDP_CSUM);
    p.mov_imm(R9, F_MARK_MANGLED_0);
    p.store_imm(Size::W, FP, L4_HEADER_LEN, 8);
    p.jump_imm(Cond::Eq, R5, 17, "match_key");
    p.jump_imm(Cond::Ne, R5, 6, miss);
    if hook == Hook::Socket {
        p.jump_imm(Cond::Lt, R7, HEADERS, miss);
    } else {
        p.mov(R4, R2);
        p.add_imm(R4, HEADERS);
        p.jump_reg(Cond::Gt, R4, R3, miss); // a TCP header shorter than 20 bytes: the core's to drop
    }
    p.load(Size::B, R4, R2, 47);
    p.and_imm(R4, 0x07); // FIN, SYN, RST: the core's state machine sees them
    p.jump_imm(Cond::Ne, R4, 0, miss);
    p.mov_imm(R8, TCP_CSUM);
    p.mov_imm(R9, 0);
    p.load(Size::B, R4, R2, 46);
    p.and_imm(R4, 0xf0);
    p.rsh_imm(R4, 2); // the data offset's words as bytes
    p.store(Size::W, FP, L4_HEADER_LEN, R4);
    p.label("match_key");
    p.load(Size::W, R4, R6, hook.ingress_ifindex());
    p.store(Size::W, FP, -24, R4);
    p.load(Size::W, R4, R2, 26);
    p.store(Size::W, FP, -20, R4);
    p.load(Size::W, R4, R2, 30);
    p.store(Size::W, FP, -16, R4);
    p.load(Size::W, R4, R2, 34);
    p.store(Size::W, FP, -12, R4);
    p.store(Size::W, FP, -8, R5); // protocol, then three zero bytes
    p.store_imm(Size::W, FP, -28, 0); // key 0 of the arrays
    p.map_lookup(maps.flows, -24);
    p.jump_imm(Cond::Eq, R0, 0, miss);
    p.mov(R7, R0);
    p.load(Size::W, R1, FP, -40);
    p.load(Size::W, R2, R7, 56);
    p.jump_reg(Cond::Ne, R1, R2, miss);
    p.load(Size::H, R1, FP, -36);
    p.load(Size::H, R2, R7, 60);
    p.jump_reg(Cond::Ne, R1, R2, miss);
    if let Some(margin_ns) = fresh {
        p.map_lookup(maps.state, -28);
        p.jump_imm(Cond::Eq, R0, 0, miss);
        p.load(Size::W, R1, R0, 0);
        p.load(Size::W, R2, R7, 4);
        p.jump_reg(Cond::Ne, R1, R2, miss); // made under another table generation
        p.call(KTIME_GET_NS);
        p.add_imm(R0, margin_ns);
        p.load(Size::DW, R1, R7, 8);
        p.jump_reg(Cond::Ge, R0, R1, miss); // due to be seen by the core
    }
    // the IP packet's length against the egress MTU: above it the core answers or fragments. A
    // super-frame (GSO: a local sender's TSO, or GRO) is its segments': segment size + headers
    if hook != Hook::Xdp {
        p.load(Size::W, R1, R6, SKB_GSO_SIZE);
        p.jump_imm(Cond::Eq, R1, 0, "match_len");
        p.load(Size::W, R2, FP, L4_HEADER_LEN);
        p.add(R1, R2);
        p.add_imm(R1, 20 + ETH_LEN);
        p.jump("match_mtu");
        p.label("match_len");
        p.load(Size::W, R1, R6, SKB_LEN);
    } else {
        p.load(Size::W, R1, R6, XDP_DATA_END);
        p.load(Size::W, R2, R6, XDP_DATA);
        p.sub(R1, R2);
    }
    p.label("match_mtu");
    p.add_imm(R1, -ETH_LEN);
    p.load(Size::H, R2, R7, 52);
    p.jump_reg(Cond::Gt, R1, R2, miss);
}

/// One checksum field updated by a difference in the flow's value at `value_off` (size 0: the
/// helper's `to` is the difference): `helper`(skb, offset in r2, 0, difference, flags in r5).
fn csum_by_difference(p: &mut Asm, helper: i32, value_off: i16) {
    p.mov(R1, R6);
    p.mov_imm(R3, 0);
    p.load(Size::W, R4, R7, value_off);
    p.call(helper);
}

/// Adds one to the per-CPU counter at byte `off` of `counters` (and the skb's length to the one
/// after it with `add_len`); clobbers r0-r5.
fn count(p: &mut Asm, counters: i32, off: i16, add_len: bool, done: &'static str) {
    p.store_imm(Size::W, FP, -28, 0);
    p.map_lookup(counters, -28);
    p.jump_imm(Cond::Eq, R0, 0, done);
    p.load(Size::DW, R1, R0, off);
    p.add_imm(R1, 1);
    p.store(Size::DW, R0, off, R1);
    if add_len {
        p.load(Size::W, R2, R6, SKB_LEN);
        p.load(Size::DW, R1, R0, off + 8);
        p.add(R1, R2);
        p.store(Size::DW, R0, off + 8, R1);
    }
}

/// The key emit_match built (FP-24, KEY_SIZE bytes) against the handoff slot at r0 (KEY_SIZE
/// bytes, then the flag u32): a mismatch or an empty slot jumps to `other`.
fn emit_handoff_is(p: &mut Asm, other: &'static str) {
    p.load(Size::W, R1, R0, KEY_SIZE as i16);
    p.jump_imm(Cond::Eq, R1, 0, other);
    for off in (0..KEY_SIZE as i16).step_by(4) {
        p.load(Size::W, R1, R0, off);
        p.load(Size::W, R2, FP, -24 + off);
        p.jump_reg(Cond::Ne, R1, R2, other);
    }
}

/// The tcx program for interfaces of `mode` over maps `flows`, `state` (the generation),
/// `counters` (per CPU: frames, bytes, frames declined) and `handoff` (per CPU, Mode::Packet).
/// r6 = skb, r7 = the flow's value, r8 = the L4 checksum's offset, r9 = the L4 helpers' extra
/// flags. Mode::Xdp: the frames reaching tc are the ones the XDP program passed — the path's,
/// whose entry's generation and deadline it checked (with a margin), and frames for another host;
/// they are not checked again (a flush or the deadline a few µs later must not send a frame the
/// worker never saw up the node's stack), and tc cannot tell one whose entry was evicted meanwhile
/// from another host's: neither is counted. Mode::Packet: the socket filter ran on this very skb just before, on this
/// CPU, and left the key of a frame it skipped in the handoff slot; tc takes the frame exactly when
/// its key is the slot's (and empties the slot), so every frame goes to the worker or through
/// here, never both, never neither (an entry evicted in between: declined).
fn program(flows: i32, state: i32, counters: i32, handoff: i32, mode: Mode) -> Vec<u64> {
    let mut p = Asm::new();
    let declined = if mode == Mode::Packet { "declined" } else { "next" };
    let maps = MatchMaps { flows, state };
    p.mov(R6, R1);
    packet(&mut p, Hook::Tc);
    p.jump_reg(Cond::Ge, R3, R4, "linear");
    // a packet socket's skb may hold the headers in page fragments: pull them into the head (a
    // TCP header's worth, or the whole frame when it is shorter)
    p.load(Size::W, R2, R6, SKB_LEN);
    p.jump_imm(Cond::Lt, R2, HEADERS, "pull");
    p.mov_imm(R2, HEADERS);
    p.label("pull");
    p.mov(R1, R6);
    p.call(SKB_PULL_DATA);
    p.jump_imm(Cond::Ne, R0, 0, "next");
    packet(&mut p, Hook::Tc);
    p.jump_reg(Cond::Gt, R4, R3, "next");
    p.label("linear");
    match mode {
        Mode::Alone => emit_match(&mut p, Hook::Tc, maps, Some(0), "next"),
        Mode::Xdp => emit_match(&mut p, Hook::Tc, maps, None, "next"),
        Mode::Packet => {
            // the slot: read and emptied whatever this frame turns out to be
            emit_match(&mut p, Hook::Tc, maps, None, "slot_miss");
            p.map_lookup(handoff, -28);
            p.jump_imm(Cond::Eq, R0, 0, "next");
            emit_handoff_is(&mut p, "slot_other");
            p.store_imm(Size::W, R0, KEY_SIZE as i16, 0);
            p.jump("rewrite");
            p.label("slot_other");
            p.store_imm(Size::W, R0, KEY_SIZE as i16, 0);
            p.jump("next");
            // no entry (any more): the slot's key may still be this frame's (evicted in between)
            p.label("slot_miss");
            p.map_lookup(handoff, -28);
            p.jump_imm(Cond::Eq, R0, 0, "next");
            p.load(Size::W, R1, R0, KEY_SIZE as i16);
            p.store_imm(Size::W, R0, KEY_SIZE as i16, 0);
            p.jump_imm(Cond::Ne, R1, 0, "declined");
            p.jump("next");
        }
    }
    p.label("rewrite");
    // the rewrite: fresh packet pointers (the calls above invalidated them)
    packet(&mut p, Hook::Tc);
    p.jump_reg(Cond::Gt, R4, R3, declined);
    for (from, to) in [(28, 0), (32, 4), (36, 8), (16, 26), (20, 30), (24, 34)] {
        p.load(Size::W, R4, R7, from);
        p.store(Size::W, R2, to, R4);
    }
    p.load(Size::B, R4, R2, 22);
    p.add_imm(R4, -1);
    p.store(Size::B, R2, 22, R4);
    // checksums by difference (size 0: `to` is the difference)
    p.mov_imm(R2, IP_CSUM);
    p.mov_imm(R5, 0);
    csum_by_difference(&mut p, L3_CSUM_REPLACE, 40);
    p.mov(R2, R8);
    p.mov(R5, R9);
    p.add_imm(R5, F_PSEUDO_HDR);
    csum_by_difference(&mut p, L4_CSUM_REPLACE, 44);
    p.mov(R2, R8);
    p.mov(R5, R9);
    csum_by_difference(&mut p, L4_CSUM_REPLACE, 48);
    count(&mut p, counters, 0, true, "send");
    p.label("send");
    p.load(Size::W, R1, R7, 0);
    p.mov_imm(R2, 0);
    p.call(REDIRECT);
    p.exit();
    if mode == Mode::Packet {
        p.label("declined");
        count(&mut p, counters, 16, false, "next");
    }
    p.label("next");
    p.mov_imm(R0, TCX_NEXT);
    p.exit();
    p.finish()
}

/// An AF_PACKET port's receive filter with the kernel path behind it (Mode::Packet): with
/// `own_mac`, a unicast frame addressed to another MAC is dropped (ffi::other_host_filter's rule);
/// a frame the kernel path takes is not queued to the socket — its key goes to this CPU's handoff
/// slot, where tc finds it next; everything else is. The headers are copied to the stack (a
/// socket filter has no direct packet access): r2 points there.
fn filter_program(maps: MatchMaps, handoff: i32, own_mac: Option<[u8; 6]>) -> Vec<u64> {
    const SKB_LOAD_BYTES: i32 = 26;
    // HEADERS bytes at fp-106..fp-53, below the MAC and the key (fp-40..); the stack must be read
    // aligned: the addresses (frame offsets 26, 30, 34) land on 4-byte boundaries
    const COPY: i16 = -106;
    let mut p = Asm::new();
    p.mov(R6, R1);
    let load = |p: &mut Asm, n: i32| {
        p.mov(R1, R6);
        p.mov_imm(R2, 0);
        p.mov(R3, FP);
        p.add_imm(R3, COPY as i32);
        p.mov_imm(R4, n);
        p.call(SKB_LOAD_BYTES);
    };
    if let Some(m) = own_mac {
        let half = |i: usize| i32::from(u16::from_ne_bytes([m[i], m[i + 1]]));
        load(&mut p, 6);
        p.jump_imm(Cond::Ne, R0, 0, "drop"); // shorter than a MAC
        p.load(Size::B, R5, FP, COPY);
        p.and_imm(R5, 1); // the group bit: broadcast, multicast
        p.jump_imm(Cond::Ne, R5, 0, "accept");
        for i in [0, 2, 4] {
            p.load(Size::H, R5, FP, COPY + i as i16);
            p.jump_imm(Cond::Ne, R5, half(i), "drop");
        }
    }
    // r7 = the bytes copied: a TCP header's worth, else (a short datagram) a UDP one's
    p.mov_imm(R7, HEADERS);
    load(&mut p, HEADERS);
    p.jump_imm(Cond::Eq, R0, 0, "copied");
    p.mov_imm(R7, HEADERS_UDP);
    load(&mut p, HEADERS_UDP);
    p.jump_imm(Cond::Ne, R0, 0, "accept"); // shorter than any header: not the path's
    p.label("copied");
    p.mov(R2, FP);
    p.add_imm(R2, COPY as i32);
    emit_match(&mut p, Hook::Socket, maps, Some(0), "accept");
    p.map_lookup(handoff, -28);
    p.jump_imm(Cond::Eq, R0, 0, "accept");
    for off in (0..KEY_SIZE as i16).step_by(4) {
        p.load(Size::W, R1, FP, -24 + off);
        p.store(Size::W, R0, off, R1);
    }
    p.store_imm(Size::W, R0, KEY_SIZE as i16, 1);
    p.label("drop");
    p.mov_imm(R0, 0);
    p.exit();
    p.label("accept");
    p.mov_imm(R0, -1); // the whole frame
    p.exit();
    p.finish()
}

fn map_create(kind: u32, key: u32, value: u32, entries: u32, what: &str) -> NResult<OwnedFd> {
    ffi::bpf_map_create(kind, key, value, entries).map_err(|e| NErr::errno(e, format!("kernel path: {what} map create")))
}

fn load_program(kind: u32, insns: &[u64]) -> NResult<OwnedFd> {
    ffi::bpf_prog_load(kind, b"wdp_kpth", insns).map_err(|(e, log)| {
        let tail: Vec<&str> = log.lines().rev().take(6).collect();
        NErr::errno(e, format!("kernel path: program load (verifier: {})", tail.into_iter().rev().collect::<Vec<_>>().join(" | ")))
    })
}

pub struct KernelPath {
    flows: OwnedFd,
    state: OwnedFd,
    counters: OwnedFd,
    handoff: OwnedFd,
    /// the tc program of each mode, loaded when an interface first needs it
    progs: Vec<(Mode, OwnedFd)>,
    /// tcx links by interface (name, ifindex): the path is live on an interface while its link is
    links: Vec<(String, u32, OwnedFd)>,
    generation: u32,
    cpus: usize,
}

/// Bytes of a CPU's counters: frames, bytes, frames declined (the socket filter skipped them, tc
/// found no entry: Mode::Packet).
const COUNTERS_SIZE: usize = 24;

impl KernelPath {
    /// The maps, and the tc program on each of `names` (in `netns`) in Mode::Alone; more
    /// interfaces with attach. Error code ENOTCX where the kernel has no tcx (before Linux 6.6).
    pub fn open(names: &[String], netns: Option<&str>, capacity: u32) -> NResult<KernelPath> {
        let flows = map_create(ffi::BPF_MAP_TYPE_LRU_HASH, KEY_SIZE as u32, VALUE_SIZE as u32, capacity, "flow")?;
        let state = map_create(ffi::BPF_MAP_TYPE_ARRAY, 4, 4, 1, "state")?;
        let counters = map_create(ffi::BPF_MAP_TYPE_PERCPU_ARRAY, 4, COUNTERS_SIZE as u32, 1, "counter")?;
        let handoff = map_create(ffi::BPF_MAP_TYPE_PERCPU_ARRAY, 4, KEY_SIZE as u32 + 4, 1, "handoff")?;
        let mut k = KernelPath { flows, state, counters, handoff, progs: Vec::new(), links: Vec::new(), generation: 0, cpus: possible_cpus() };
        for n in names {
            k.attach(n, netns, Mode::Alone)?;
        }
        Ok(k)
    }

    fn prog(&mut self, mode: Mode) -> NResult<&OwnedFd> {
        if !self.progs.iter().any(|p| p.0 == mode) {
            let insns = program(self.flows.as_raw_fd(), self.state.as_raw_fd(), self.counters.as_raw_fd(), self.handoff.as_raw_fd(), mode);
            let fd = load_program(ffi::BPF_PROG_TYPE_SCHED_CLS, &insns)?;
            self.progs.push((mode, fd));
        }
        Ok(&self.progs.iter().find(|p| p.0 == mode).unwrap().1)
    }

    /// The tc program for `mode` on `name`'s ingress (in `netns`): its ifindex. Attached already
    /// (in whatever mode): the same.
    pub fn attach(&mut self, name: &str, netns: Option<&str>, mode: Mode) -> NResult<u32> {
        if let Some(l) = self.links.iter().find(|l| l.0 == name) {
            return Ok(l.1);
        }
        let n = name.to_string();
        let prog = self.prog(mode)?.try_clone().map_err(|e| NErr::new("EIO", format!("kernel path: {e}")))?;
        let (ifindex, link) = crate::netns::run_in(netns, move || {
            let ifindex = ffi::nametoindex(&n)?;
            if ifindex == 0 {
                return Err(NErr::new("ENODEV", format!("interface '{n}' does not exist")));
            }
            Ok((ifindex, ffi::bpf_link_create(&prog, ifindex, ffi::BPF_TCX_INGRESS, 0)))
        })?;
        let link = link.map_err(|e| {
            if e == ffi::EINVAL {
                NErr::new("ENOTCX", format!("kernel path on '{name}': no tcx link in this kernel (Linux 6.6 or later)"))
            } else {
                NErr::errno(e, format!("kernel path on '{name}': tcx attach"))
            }
        })?;
        self.links.push((name.to_string(), ifindex, link));
        Ok(ifindex)
    }

    /// The program off `name`'s ingress; whether it was on.
    pub fn detach(&mut self, name: &str) -> bool {
        let before = self.links.len();
        self.links.retain(|l| l.0 != name);
        self.links.len() != before
    }

    /// The maps the XDP program of an AF_XDP port in front of this path matches against (Mode::Xdp).
    pub fn match_maps(&self) -> MatchMaps {
        MatchMaps { flows: self.flows.as_raw_fd(), state: self.state.as_raw_fd() }
    }

    /// The receive filter of an AF_PACKET port in front of this path (Mode::Packet; see
    /// filter_program), loaded for the port to attach (SO_ATTACH_BPF).
    pub fn socket_filter(&self, own_mac: Option<[u8; 6]>) -> NResult<OwnedFd> {
        load_program(ffi::BPF_PROG_TYPE_SOCKET_FILTER, &filter_program(self.match_maps(), self.handoff.as_raw_fd(), own_mac))
    }

    /// Adds or replaces entries (ENTRY_SIZE bytes each, the layout above) under the current
    /// generation. Returns how many were written.
    pub fn set(&self, entries: &[u8]) -> NResult<usize> {
        if entries.len() % ENTRY_SIZE != 0 {
            return Err(NErr::new("EINVAL", format!("kernel path entries: {} bytes is not a multiple of {ENTRY_SIZE}", entries.len())));
        }
        let now = ffi::monotonic_ns();
        for e in entries.chunks(ENTRY_SIZE) {
            let value = value_of(e, self.generation, now);
            ffi::bpf_map_update(&self.flows, &e[..KEY_SIZE], &value).map_err(|e| NErr::errno(e, "kernel path: flow update"))?;
        }
        Ok(entries.len() / ENTRY_SIZE)
    }

    /// Removes entries by key (KEY_SIZE bytes each); absent keys are not an error.
    pub fn remove(&self, keys: &[u8]) -> NResult<usize> {
        if keys.len() % KEY_SIZE != 0 {
            return Err(NErr::new("EINVAL", format!("kernel path keys: {} bytes is not a multiple of {KEY_SIZE}", keys.len())));
        }
        let mut n = 0;
        for k in keys.chunks(KEY_SIZE) {
            match ffi::bpf_map_delete(&self.flows, k) {
                Ok(_) => n += 1,
                Err(e) if e == ffi::ENOENT => {}
                Err(e) => return Err(NErr::errno(e, "kernel path: flow delete")),
            }
        }
        Ok(n)
    }

    /// Every entry stops matching at once (the table switched): the new generation.
    pub fn flush(&mut self) -> NResult<u32> {
        let g = self.generation.wrapping_add(1);
        ffi::bpf_map_update(&self.state, &0u32.to_ne_bytes(), &g.to_ne_bytes()).map_err(|e| NErr::errno(e, "kernel path: generation update"))?;
        self.generation = g;
        Ok(g)
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Frames and bytes the programs forwarded, and frames a socket filter left to them that they
    /// did not take (Mode::Packet), summed over the CPUs.
    pub fn counters(&self) -> NResult<(u64, u64, u64)> {
        let mut per_cpu = vec![0u8; self.cpus * COUNTERS_SIZE];
        ffi::bpf_map_lookup(&self.counters, &0u32.to_ne_bytes(), &mut per_cpu).map_err(|e| NErr::errno(e, "kernel path: counters read"))?;
        let at = |c: &[u8], i: usize| u64::from_ne_bytes(c[i..i + 8].try_into().unwrap());
        Ok(per_cpu.chunks(COUNTERS_SIZE).fold((0, 0, 0), |(f, b, d), c| (f + at(c, 0), b + at(c, 8), d + at(c, 16))))
    }
}

/// The CPUs a per-CPU map has a slot for: the kernel's possible CPUs (/sys/devices/system/cpu/possible, "0-N").
fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| s.trim().rsplit(['-', ',']).next().and_then(|n| n.parse::<usize>().ok()))
        .map(|n| n + 1)
        .unwrap_or(1)
}

/// The map value for an entry (ENTRY_SIZE bytes): the rewrite, its checksum differences, the
/// generation and the deadline.
fn value_of(e: &[u8], generation: u32, now_ns: u64) -> [u8; VALUE_SIZE] {
    let mut v = [0u8; VALUE_SIZE];
    v[0..4].copy_from_slice(&e[20..24]);
    v[4..8].copy_from_slice(&generation.to_ne_bytes());
    let lifetime_ms = u16::from_ne_bytes([e[50], e[51]]) as u64;
    v[8..16].copy_from_slice(&(now_ns + lifetime_ms * 1_000_000).to_ne_bytes());
    v[16..28].copy_from_slice(&e[24..36]);
    v[28..40].copy_from_slice(&e[36..48]);
    let old: [u8; 12] = e[4..16].try_into().unwrap();
    let new: [u8; 12] = e[24..36].try_into().unwrap();
    let (l3, pseudo, ports) = differences(&old, &new);
    v[40..44].copy_from_slice(&l3.to_ne_bytes());
    v[44..48].copy_from_slice(&pseudo.to_ne_bytes());
    v[48..52].copy_from_slice(&ports.to_ne_bytes());
    v[52..54].copy_from_slice(&e[48..50]);
    v[56..62].copy_from_slice(&e[52..58]);
    v
}

// ---- the table of open kernel paths (handles.rs) ----------------------------------------------

static PATHS: Handles<Mutex<KernelPath>> = Handles::new("kernel path");

pub fn register(k: KernelPath) -> u32 {
    PATHS.insert(Mutex::new(k))
}

pub fn get(handle: i64) -> NResult<Arc<Mutex<KernelPath>>> {
    PATHS.get(handle)
}

pub fn remove(handle: i64) -> NResult<()> {
    PATHS.remove(handle).map(|_| ())
}

pub fn lock(k: &Arc<Mutex<KernelPath>>) -> MutexGuard<'_, KernelPath> {
    crate::handles::lock(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Internet checksum of `b` (RFC 1071), as it is written into a header.
    fn checksum(b: &[u8]) -> u16 {
        let mut s: u32 = b.chunks(2).map(|w| u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32).sum();
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// A frame's IPv4 and UDP checksums computed from scratch.
    fn fill_checksums(f: &mut [u8]) {
        f[24] = 0;
        f[25] = 0;
        let ip = checksum(&f[14..34]);
        f[24..26].copy_from_slice(&ip.to_be_bytes());
        f[40] = 0;
        f[41] = 0;
        let udp_len = f.len() - 34;
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pseudo.extend_from_slice(&f[34..]);
        let udp = checksum(&pseudo);
        f[40..42].copy_from_slice(&(if udp == 0 { 0xffff } else { udp }).to_be_bytes());
    }

    /// What the kernel's csum_replace_by_diff does to a checksum field as loaded (little-endian):
    /// *sum = csum_fold(csum_add(diff, ~csum_unfold(*sum))).
    fn replace_by_diff(field: &mut [u8], diff: u32) {
        let sum = u16::from_le_bytes([field[0], field[1]]);
        let s = fold(diff as u64 + (!(sum as u32)) as u64);
        let mut x = s;
        while x >> 16 != 0 {
            x = (x & 0xffff) + (x >> 16);
        }
        field.copy_from_slice(&(!(x as u16)).to_le_bytes());
    }

    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 18];
        f[12] = 0x08;
        f[14] = 0x45;
        let ip_len = f.len() as u16 - 14;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 131, 0, 2]);
        f[30..34].copy_from_slice(&[10, 96, 99, 12]);
        f[34..36].copy_from_slice(&40001u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        let udp_len = (f.len() - 34) as u16;
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        for (i, b) in f[42..].iter_mut().enumerate() {
            *b = i as u8 * 7 + 3;
        }
        fill_checksums(&mut f);
        f
    }

    #[test]
    fn the_differences_give_the_checksums_a_recomputation_gives() {
        for (new_daddr, new_dport, new_saddr) in [([10, 130, 2, 2], 8081u16, [10, 131, 0, 2]), ([192, 168, 255, 254], 65535, [172, 16, 0, 1]), ([0, 0, 0, 1], 1, [255, 255, 255, 255])] {
            let mut f = frame();
            let old: [u8; 12] = f[26..38].try_into().unwrap();
            let mut new = [0u8; 12];
            new[0..4].copy_from_slice(&new_saddr);
            new[4..8].copy_from_slice(&new_daddr);
            new[8..10].copy_from_slice(&old[8..10]);
            new[10..12].copy_from_slice(&new_dport.to_be_bytes());
            let (l3, pseudo, ports) = differences(&old, &new);
            // as the program does it: the fields, the TTL, then the checksums by difference
            f[26..38].copy_from_slice(&new);
            f[22] -= 1;
            replace_by_diff(&mut f[24..26], l3);
            replace_by_diff(&mut f[40..42], pseudo);
            replace_by_diff(&mut f[40..42], ports);
            let mut want = f.clone();
            fill_checksums(&mut want);
            assert_eq!(&f[24..26], &want[24..26], "IPv4 checksum for {new_daddr:?}");
            assert_eq!(checksum(&f[14..34]), 0, "the IPv4 header sums to zero");
            // a UDP checksum of 0x0000 and 0xffff are the same sum; the kernel writes what the
            // difference gives, the recomputation 0xffff for zero
            let got = u16::from_be_bytes([f[40], f[41]]);
            let exp = u16::from_be_bytes([want[40], want[41]]);
            assert!(got == exp || (got == 0 && exp == 0xffff), "UDP checksum {got:#x} against {exp:#x} for {new_daddr:?}");
        }
    }

    #[test]
    fn the_value_carries_the_rewrite_generation_and_deadline() {
        let mut e = [0u8; ENTRY_SIZE];
        e[0..4].copy_from_slice(&7u32.to_ne_bytes());
        e[4..16].copy_from_slice(&[10, 131, 0, 2, 10, 96, 99, 12, 0x9c, 0x41, 0, 80]);
        e[16] = 17;
        e[20..24].copy_from_slice(&9u32.to_ne_bytes());
        e[24..36].copy_from_slice(&[10, 131, 0, 2, 10, 130, 2, 2, 0x9c, 0x41, 0x1f, 0x91]);
        e[36..48].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        e[48..50].copy_from_slice(&1500u16.to_ne_bytes());
        e[50..52].copy_from_slice(&250u16.to_ne_bytes());
        e[52..58].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        let v = value_of(&e, 3, 1_000);
        assert_eq!(u32::from_ne_bytes(v[0..4].try_into().unwrap()), 9);
        assert_eq!(u32::from_ne_bytes(v[4..8].try_into().unwrap()), 3);
        assert_eq!(u64::from_ne_bytes(v[8..16].try_into().unwrap()), 1_000 + 250_000_000);
        assert_eq!(&v[16..28], &e[24..36]);
        assert_eq!(&v[28..40], &e[36..48]);
        assert_eq!(u16::from_ne_bytes(v[52..54].try_into().unwrap()), 1500);
        assert_eq!(&v[56..62], &[2, 0, 0, 0, 0, 9]);
    }
}
