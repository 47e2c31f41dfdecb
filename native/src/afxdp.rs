//! AF_XDP ports: a tiny XDP program (assembled here, loaded with bpf(2), no libbpf) redirects
//! every frame of the interface to an AF_XDP socket per receive queue through an XSKMAP; each
//! socket has its own UMEM (frame memory shared with the kernel) with fill/completion rings and
//! RX/TX rings, in need_wakeup mode. On a veth (and any driver without zero-copy support) the
//! kernel copies frames into the UMEM ("copy mode"); with zero-copy drivers it DMAs straight into
//! it. Frames are then copied once between the UMEM and the arena slots (the UMEM is not the Wasm
//! memory: sharing would pin the whole Wasm memory and tie the arena layout to UMEM chunks).
//!
//! The program is attached with a BPF link (BPF_LINK_CREATE): closing the link fd — on close()
//! or when the process dies — detaches it, so nothing is left on the interface. Frames of a
//! queue without a socket go to the kernel stack (the redirect's fallback action is XDP_PASS).
//! A port may bind only some queues and join another open port's program and XSKMAP with them
//! (XdpOpts::queues, ::share): one port per worker on a multi-queue interface; the program lives
//! as long as the first port.
//!
//! What XDP loses: the checksum-offload metadata of an skb. A local peer's CHECKSUM_PARTIAL
//! frames (a pod's veth with default offloads) arrive with their checksum unfinished and no
//! header saying so; with `offloads` (default) every TCP/UDP frame's checksum is verified and a
//! field holding just the pseudo-header sum is finished (offload::repair_partial) — one checksum
//! pass per frame. Super-frames do not reach XDP: a veth whose peer runs XDP turns the peer's
//! GSO off, and XDP runs before GRO on a NIC.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::area::Area;
use crate::device::{tx_frame_len, validate_ifname, Counters, Device, Link, XdpShare};
use crate::bpf_asm::{Asm, Cond, Size, R0, R1, R2, R3, R4, R5, R6};
use crate::kernel_path;
use crate::offload;
use crate::ffi::{self, IfReq, Mmap, NErr, NResult, XdpMmapOffsets, XdpRingOffset, XdpUmemReg};

/// UMEM chunk: one frame. In copy mode a received frame may use CHUNK - 256 (XDP headroom) =
/// 1792 bytes (an MTU up to 1778); an arena slot holds 2048 (assembly/layout.ts DEFAULT_SLOT_SIZE),
/// so a larger chunk would only hold frames the core cannot take, at twice the memory.
const CHUNK: usize = 2048;
/// TX and completion ring size (power of two), and the UMEM frames kept for transmitting. A burst
/// is at most a batch (256 frames), so the ring never needs more.
const TX_RING: u32 = 1024;
/// Frames per copy-mode transmit call asked of the kernel (XDP_MAX_TX_SKB_BUDGET, at most
/// TX_RING / 2): a whole batch.
const TX_BUDGET: u32 = 256;
const _: () = assert!(TX_BUDGET >= 32 && TX_BUDGET <= TX_RING / 2);
/// RX and fill ring size when the caller does not say: the frames the kernel can queue for the
/// worker before it drops (rx_ring_full). Each costs a UMEM chunk (2 KiB): with the TX frames,
/// 10 MiB per queue. 4096 frames are ~8 ms at 0.5 Mpps, longer than a scheduler time slice on a
/// busy machine; 1024 dropped a fifth of a one-flow blast there (docs/performance.md, "The
/// worker's loop, as built").
pub const RX_RING_DEFAULT: u32 = 4096;
pub const RX_RING_MIN: u32 = 64;
pub const RX_RING_MAX: u32 = 16384;
/// The receive queues an AF_XDP port binds at most (the XSKMAP's size bound).
pub const MAX_QUEUES: u32 = 64;

pub struct XdpOpts {
    pub name: String,
    pub netns: Option<String>,
    /// finish CHECKSUM_PARTIAL frames of local peers (see the module comment)
    pub offloads: bool,
    /// RX/fill ring size, a power of two in RX_RING_MIN..=RX_RING_MAX
    pub rx_ring: u32,
    /// where the program runs: None = the kernel's choice (the driver's own XDP hook where it
    /// has one, as on veth), Some(false) = the driver hook or fail, Some(true) = generic XDP
    /// (after the skb is built, any interface)
    pub generic: Option<bool>,
    /// the receive queues this port binds (None: every queue of the interface)
    pub queues: Option<Vec<u32>>,
    /// false: unicast frames addressed to another MAC than `own_mac` are passed to the kernel
    /// (which drops them) instead of redirected to the sockets; a port that joins another (share)
    /// has that port's program
    pub other_host: bool,
    /// the MAC the port answers ARP/ND with, which the program compares with (None: the
    /// interface's when the port opens)
    pub own_mac: Option<[u8; 6]>,
    /// another open AF_XDP port on the same interface whose XDP program and XSKMAP this one joins
    /// (its sockets go into that map; the program stays attached while that port is open): how
    /// several workers each take some of an interface's queues
    pub share: Option<XdpShare>,
    /// the maps of a kernel path whose tc program is on the interface: frames it takes are passed
    /// to it (see program()); not with `share` (the program is the joined port's)
    pub kernel_path: Option<kernel_path::MatchMaps>,
}

/// BPF_LINK_CREATE flags for XdpOpts::generic (linux/if_link.h XDP_FLAGS_SKB_MODE / DRV_MODE).
fn attach_flags(generic: Option<bool>) -> u32 {
    match generic {
        None => 0,
        Some(true) => 1 << 1,
        Some(false) => 1 << 2,
    }
}

/// One mmapped ring: producer/consumer indices, flags word and the descriptor array.
struct Ring {
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    _map: Mmap,
}

// SAFETY: the ring memory is a shared mapping owned by the Ring; access is serialised by the port
// mutex that owns the device.
unsafe impl Send for Ring {}

impl Ring {
    fn map(fd: RawFd, off: &XdpRingOffset, size: u32, entry: usize, pgoff: i64) -> Result<Ring, i32> {
        let len = off.desc as usize + size as usize * entry;
        let map = Mmap::map_ring(fd, len, pgoff)?;
        let base = map.ptr();
        // SAFETY: the kernel reported these offsets for this mapping; all lie inside `len`.
        unsafe {
            Ok(Ring {
                prod: base.add(off.producer as usize) as *const AtomicU32,
                cons: base.add(off.consumer as usize) as *const AtomicU32,
                flags: base.add(off.flags as usize) as *const AtomicU32,
                desc: base.add(off.desc as usize),
                mask: size - 1,
                _map: map,
            })
        }
    }
    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, 4-byte aligned (kernel layout).
        unsafe { &*self.prod }
    }
    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as prod().
        unsafe { &*self.cons }
    }
    fn needs_wakeup(&self) -> bool {
        // SAFETY: as prod().
        unsafe { &*self.flags }.load(Ordering::Relaxed) & ffi::XDP_RING_NEED_WAKEUP != 0
    }
    /// u64 entry i (fill / completion rings: frame addresses).
    fn addr(&self, i: u32) -> u64 {
        // SAFETY: (i & mask) < size entries of 8 bytes inside the mapping.
        unsafe { std::ptr::read_unaligned(self.desc.add((i & self.mask) as usize * 8) as *const u64) }
    }
    fn set_addr(&self, i: u32, a: u64) {
        // SAFETY: as addr(); the entry belongs to the producer (us) until prod is published.
        unsafe { std::ptr::write_unaligned(self.desc.add((i & self.mask) as usize * 8) as *mut u64, a) }
    }
    /// struct xdp_desc entry i (RX / TX rings): (addr, len).
    fn desc(&self, i: u32) -> (u64, u32) {
        // SAFETY: (i & mask) < size entries of 16 bytes inside the mapping.
        unsafe {
            let p = self.desc.add((i & self.mask) as usize * ffi::XDP_DESC_SIZE);
            (std::ptr::read_unaligned(p as *const u64), std::ptr::read_unaligned(p.add(8) as *const u32))
        }
    }
    fn set_desc(&self, i: u32, addr: u64, len: u32) {
        // SAFETY: as desc(); the entry belongs to the producer (us) until prod is published.
        unsafe {
            let p = self.desc.add((i & self.mask) as usize * ffi::XDP_DESC_SIZE);
            std::ptr::write_unaligned(p as *mut u64, addr);
            std::ptr::write_unaligned(p.add(8) as *mut u32, len);
            std::ptr::write_unaligned(p.add(12) as *mut u32, 0);
        }
    }
}

/// One AF_XDP socket bound to one receive queue, with its own UMEM.
struct Queue {
    // field order = drop order: rings unmapped, then the socket closed, then the UMEM freed
    fill: Ring,
    comp: Ring,
    rx: Ring,
    tx: Ring,
    fd: OwnedFd,
    umem: Mmap,
    tx_free: Vec<u64>,
    /// frames the kernel could not hand over (XDP_STATISTICS, cumulative), as last folded in
    drops_seen: u64,
    /// bound in zero-copy mode (XDP_OPTIONS after bind)
    zero_copy: bool,
    /// unbound by the kernel: its interface was unregistered in the socket's namespace (it left
    /// the namespace, even if it came back: the socket stays unbound). Seen as the socket error
    /// ENETDOWN the kernel sets then, read once (SO_ERROR clears it).
    unbound: bool,
}

impl Queue {
    fn open(ifindex: u32, queue: u32, rx_ring: u32) -> Result<Queue, (i32, &'static str)> {
        let fd = ffi::sys_socket(ffi::AF_XDP, ffi::SOCK_RAW | ffi::SOCK_CLOEXEC, 0).map_err(|e| (e, "socket(AF_XDP)"))?;
        let s = fd.as_raw_fd();
        // UMEM: rx_ring frames that circulate through the fill and RX rings, then TX_RING for TX
        let frames = (rx_ring + TX_RING) as usize;
        let umem = Mmap::anonymous(frames * CHUNK).map_err(|e| (e, "UMEM mmap"))?;
        let reg = XdpUmemReg { addr: umem.ptr() as u64, len: (frames * CHUNK) as u64, chunk_size: CHUNK as u32, ..Default::default() };
        ffi::setsockopt_raw(s, ffi::SOL_XDP, ffi::XDP_UMEM_REG, &reg).map_err(|e| (e, "XDP_UMEM_REG"))?;
        for (opt, size) in [(ffi::XDP_UMEM_FILL_RING, rx_ring), (ffi::XDP_UMEM_COMPLETION_RING, TX_RING), (ffi::XDP_RX_RING, rx_ring), (ffi::XDP_TX_RING, TX_RING)] {
            ffi::setsockopt_int(s, ffi::SOL_XDP, opt, size as i32).map_err(|e| (e, "AF_XDP ring size"))?;
        }
        // One sendto may transmit a whole burst (a batch is at most 256 frames) instead of the
        // kernel's default 32 per call (copy mode): a burst of 256 frames was 8 kicks, each a
        // system call. Kernels before 6.17 lack the option; kick_tx then loops as before.
        let _ = ffi::setsockopt_int(s, ffi::SOL_XDP, ffi::XDP_MAX_TX_SKB_BUDGET, TX_BUDGET as i32);
        let mut off = XdpMmapOffsets::default();
        ffi::getsockopt_raw(s, ffi::SOL_XDP, ffi::XDP_MMAP_OFFSETS, &mut off).map_err(|e| (e, "XDP_MMAP_OFFSETS"))?;
        let ring_err = |e| (e, "AF_XDP ring mmap");
        let q = Queue {
            fill: Ring::map(s, &off.fr, rx_ring, 8, ffi::XDP_UMEM_PGOFF_FILL_RING).map_err(ring_err)?,
            comp: Ring::map(s, &off.cr, TX_RING, 8, ffi::XDP_UMEM_PGOFF_COMPLETION_RING).map_err(ring_err)?,
            rx: Ring::map(s, &off.rx, rx_ring, ffi::XDP_DESC_SIZE, ffi::XDP_PGOFF_RX_RING).map_err(ring_err)?,
            tx: Ring::map(s, &off.tx, TX_RING, ffi::XDP_DESC_SIZE, ffi::XDP_PGOFF_TX_RING).map_err(ring_err)?,
            tx_free: (rx_ring as usize..frames).map(|k| (k * CHUNK) as u64).collect(),
            umem,
            fd,
            drops_seen: 0,
            zero_copy: false,
            unbound: false,
        };
        // every RX frame starts out in the fill ring
        for k in 0..rx_ring {
            q.fill.set_addr(k, k as u64 * CHUNK as u64);
        }
        q.fill.prod().store(rx_ring, Ordering::Release);
        // Neither XDP_COPY nor XDP_ZEROCOPY: the kernel binds zero-copy when the driver supports
        // it and copy mode otherwise (veth), so the port takes zero-copy wherever it is offered.
        ffi::bind_xdp(s, ifindex, queue, ffi::XDP_USE_NEED_WAKEUP).map_err(|e| (e, "bind AF_XDP socket"))?;
        let mut opts: u32 = 0;
        let mut q = q;
        if ffi::getsockopt_raw(s, ffi::SOL_XDP, ffi::XDP_OPTIONS, &mut opts).is_ok() {
            q.zero_copy = opts & ffi::XDP_OPTIONS_ZEROCOPY != 0;
        }
        Ok(q)
    }

    fn umem_bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let a = addr as usize;
        if a.checked_add(len)? > self.umem.len() {
            return None;
        }
        // SAFETY: bounds checked against the mapping; the kernel handed this frame to us (RX) or
        // it is one of our free TX frames.
        Some(unsafe { std::slice::from_raw_parts(self.umem.ptr().add(a), len) })
    }

    fn rx(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, offloads: bool, c: &mut Counters) -> usize {
        let prod = self.rx.prod().load(Ordering::Acquire);
        let cons = self.rx.cons().load(Ordering::Relaxed);
        let n = prod.wrapping_sub(cons).min(max as u32);
        if n == 0 {
            return 0;
        }
        let fill_prod = self.fill.prod().load(Ordering::Relaxed);
        let cap = area.cap();
        let mut got = 0usize;
        for k in 0..n {
            let (addr, len) = self.rx.desc(cons.wrapping_add(k));
            let len = len as usize;
            match self.umem_bytes(addr, len) {
                Some(src) if len <= cap && len >= 14 => {
                    let slot = &mut area.slot_mut(first + got)[..len];
                    slot.copy_from_slice(src);
                    if offloads && offload::repair_partial(slot) == offload::Repair::Finished {
                        c.csum_finished += 1;
                    }
                    area.set_rx(first + got, len, in_port);
                    c.rx_packets += 1;
                    c.rx_bytes += len as u64;
                    got += 1;
                }
                Some(_) => {
                    c.oversize += 1;
                    c.rx_dropped += 1;
                }
                None => c.rx_errors += 1,
            }
            // the frame goes straight back to the kernel (chunk base: aligned mode)
            self.fill.set_addr(fill_prod.wrapping_add(k), addr & !(CHUNK as u64 - 1));
        }
        self.rx.cons().store(cons.wrapping_add(n), Ordering::Release);
        self.fill.prod().store(fill_prod.wrapping_add(n), Ordering::Release);
        if self.fill.needs_wakeup() {
            let _ = ffi::xdp_kick_rx(self.fd.as_raw_fd());
        }
        got
    }

    fn rx_waiting(&self) -> bool {
        self.rx.prod().load(Ordering::Acquire) != self.rx.cons().load(Ordering::Relaxed)
    }

    fn reap_completions(&mut self) {
        let prod = self.comp.prod().load(Ordering::Acquire);
        let cons = self.comp.cons().load(Ordering::Relaxed);
        let n = prod.wrapping_sub(cons);
        for k in 0..n {
            self.tx_free.push(self.comp.addr(cons.wrapping_add(k)) & !(CHUNK as u64 - 1));
        }
        self.comp.cons().store(prod, Ordering::Release);
    }

    /// Reads (and clears) the socket's pending error; ENETDOWN marks it unbound for good.
    fn take_error(&mut self, c: &mut Counters) {
        let mut err: i32 = 0;
        if ffi::getsockopt_raw(self.fd.as_raw_fd(), ffi::SOL_SOCKET, ffi::SO_ERROR, &mut err).is_ok() && err != 0 {
            if err == ffi::ENETDOWN {
                self.unbound = true;
            } else {
                c.rx_errors += 1;
            }
        }
    }

    fn tx(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize {
        self.reap_completions();
        let cap = area.cap().min(CHUNK);
        let mut prod = self.tx.prod().load(Ordering::Relaxed);
        // the ring's free entries, read once a burst (the consumer index is the kernel's cache
        // line): the kernel only frees more meanwhile, so this never overfills the ring
        let mut room = TX_RING - prod.wrapping_sub(self.tx.cons().load(Ordering::Acquire));
        let mut sent = 0usize;
        for i in 0..count {
            let Some(len) = tx_frame_len(area, i, port_index, 14, cap, c) else { continue };
            let Some(addr) = (if room > 0 { self.tx_free.pop() } else { None }) else {
                c.tx_errors += 1; // TX ring or frames exhausted: dropped, never blocks
                continue;
            };
            // SAFETY: addr is a free TX chunk of this UMEM (CHUNK bytes >= len); the kernel does
            // not touch it until the descriptor is published below.
            unsafe { std::ptr::copy_nonoverlapping(area.slot(i).as_ptr(), self.umem.ptr().add(addr as usize), len) };
            self.tx.set_desc(prod, addr, len as u32);
            prod = prod.wrapping_add(1);
            room -= 1;
            c.tx_packets += 1;
            c.tx_bytes += len as u64;
            sent += 1;
        }
        if sent > 0 {
            self.tx.prod().store(prod, Ordering::Release);
            c.tx_kicks += self.kick_tx();
        }
        sent
    }

    /// Has the kernel send what the TX ring holds. In copy mode (veth, drivers without
    /// zero-copy) one sendto transmits at most the socket's budget — a whole batch where the kernel
    /// takes XDP_MAX_TX_SKB_BUDGET (6.17+, set at open), else 32 frames (TX_BATCH_SIZE) — and
    /// answers EAGAIN while more are queued: kicked once per burst, a burst above the budget left
    /// the rest in the ring, the ring filled and later frames were dropped as tx_errors. So kick
    /// until the ring is drained or the kernel stops making progress (a full device queue: the
    /// frames stay queued for the next burst's kick).
    /// Returns the sendto calls made.
    fn kick_tx(&mut self) -> u64 {
        let fd = self.fd.as_raw_fd();
        let mut kicks = 0;
        for _ in 0..(TX_RING / 32 + 2) {
            if !self.tx.needs_wakeup() {
                break;
            }
            let before = self.tx.cons().load(Ordering::Acquire);
            kicks += 1;
            match ffi::xdp_kick_tx(fd) {
                Ok(()) => break,
                Err(e) if e == ffi::EAGAIN || e == ffi::EBUSY || e == ffi::ENOBUFS => {
                    let after = self.tx.cons().load(Ordering::Acquire);
                    if after == before || after == self.tx.prod().load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        kicks
    }
}

pub struct Xdp {
    // field order = drop order: detach the program first. A port that joined another one's
    // program (XdpOpts::share) has no link or program of its own.
    _link: Option<OwnedFd>,
    _prog: Option<OwnedFd>,
    map: OwnedFd,
    ifindex: u32,
    /// the interface's queues (the XSKMAP's size)
    nq: u32,
    /// several queues: one pollable fd for all of them (None with one queue, see fd())
    epoll: Option<OwnedFd>,
    queues: Vec<Queue>,
    next_rx: usize,
    offloads: bool,
}

/// The XDP program: bpf_redirect_map(&xskmap, ctx->rx_queue_index, XDP_PASS). With `own_mac`
/// (the MAC the port answers ARP/ND with: the caller's, else the interface's when it opens), a unicast frame
/// addressed to another MAC is passed to the kernel instead (whose IP stack ignores it, as does
/// the daemon's ingress chain): a frame a switch floods to every port is not this port's;
/// broadcast and multicast frames are redirected as before. With `kernel_path` (the maps of a
/// kernel path whose tc program is on this interface, kernel_path.rs), a frame that path takes is
/// passed to the kernel, where that program forwards it, instead of to the worker.
fn program(map_fd: i32, own_mac: Option<[u8; 6]>, kernel_path: Option<kernel_path::MatchMaps>) -> Vec<u64> {
    const XDP_PASS: i32 = 2;
    const BPF_FUNC_REDIRECT_MAP: i32 = 51;
    const XDP_RX_QUEUE_INDEX: i16 = 16;
    let mut p = Asm::new();
    p.mov(R6, R1);
    if let Some(m) = own_mac {
        // the MAC as the three 16-bit loads below read it (host byte order)
        let half = |i: usize| i32::from(u16::from_ne_bytes([m[i], m[i + 1]]));
        kernel_path::packet(&mut p, kernel_path::Hook::Xdp);
        p.mov(R4, R2);
        p.add_imm(R4, 6);
        p.jump_reg(Cond::Gt, R4, R3, "pass"); // shorter than a MAC
        p.load(Size::B, R5, R2, 0);
        p.and_imm(R5, 1); // the group bit: broadcast, multicast
        p.jump_imm(Cond::Ne, R5, 0, "redirect");
        for i in [0, 2, 4] {
            p.load(Size::H, R5, R2, i as i16);
            p.jump_imm(Cond::Ne, R5, half(i), "pass");
        }
    }
    if let Some(maps) = kernel_path {
        kernel_path::packet(&mut p, kernel_path::Hook::Xdp);
        p.jump_reg(Cond::Gt, R4, R3, "redirect");
        kernel_path::emit_match(&mut p, kernel_path::Hook::Xdp, maps, Some(kernel_path::XDP_MARGIN_NS), "redirect");
        p.jump("pass");
    }
    p.label("redirect");
    p.load(Size::W, R2, R6, XDP_RX_QUEUE_INDEX);
    p.load_map(R1, map_fd);
    p.mov_imm(R3, XDP_PASS); // the fallback action
    p.call(BPF_FUNC_REDIRECT_MAP);
    p.exit();
    if own_mac.is_some() || kernel_path.is_some() {
        // (only then reached: the verifier refuses unreachable instructions)
        p.label("pass");
        p.mov_imm(R0, XDP_PASS);
        p.exit();
    }
    p.finish()
}

/// Loads the redirect program for `map` (an XSKMAP) with bpf(2); the verifier's log in the error.
fn load_program(n: &str, map: &OwnedFd, own_mac: Option<[u8; 6]>, kernel_path: Option<kernel_path::MatchMaps>) -> NResult<OwnedFd> {
    let insns = program(map.as_raw_fd(), own_mac, kernel_path);
    ffi::bpf_prog_load(ffi::BPF_PROG_TYPE_XDP, b"wdp_xsk", &insns).map_err(|(e, text)| xdp_err(n, e, &format!("XDP program load (verifier: {text})")))
}

fn xdp_err(name: &str, e: i32, what: &str) -> NErr {
    let code = if e == ffi::EPERM || e == ffi::EACCES { "EPERM" } else { "ENOXDP" };
    let hint = if code == "EPERM" { " (needs CAP_NET_ADMIN + CAP_BPF or root)" } else { "" };
    NErr::new(code, format!("AF_XDP on '{name}': {what}: {}{hint}", std::io::Error::from_raw_os_error(e)))
}

/// The interface's receive queues as a port counts them: ethtool channels, 1 when the driver
/// does not say, at most MAX_QUEUES (rx_queues and open must agree: a shared port checks it).
fn queue_count(ctl: RawFd, name: &str) -> u32 {
    ffi::rx_queue_count(ctl, name).unwrap_or(1).clamp(1, MAX_QUEUES)
}

/// The receive queues an AF_XDP port on `name` binds by default (ethtool channels; 1 when the
/// driver does not say), at most MAX_QUEUES.
pub fn rx_queues(name: &str, netns: Option<&str>) -> NResult<u32> {
    validate_ifname(name)?;
    let name = name.to_string();
    crate::netns::run_in(netns, move || {
        if ffi::nametoindex(&name)? == 0 {
            return Err(NErr::new("ENODEV", format!("interface '{name}' does not exist")));
        }
        let ctl = ffi::sys_socket(ffi::AF_INET, ffi::SOCK_DGRAM | ffi::SOCK_CLOEXEC, 0).map_err(|e| NErr::errno(e, "control socket"))?;
        Ok(queue_count(ctl.as_raw_fd(), &name))
    })
}

pub fn open(o: XdpOpts) -> NResult<(Link, Xdp)> {
    validate_ifname(&o.name)?;
    if !o.rx_ring.is_power_of_two() || !(RX_RING_MIN..=RX_RING_MAX).contains(&o.rx_ring) {
        return Err(NErr::new("EINVAL", format!("AF_XDP rxRing must be a power of two in {RX_RING_MIN}..{RX_RING_MAX}, got {}", o.rx_ring)));
    }
    let name = o.name.clone();
    let ns = o.netns.clone();
    crate::netns::run_in(ns.as_deref(), move || {
        let mut o = o;
        let n = &o.name.clone();
        let ifindex = ffi::nametoindex(n)?;
        if ifindex == 0 {
            return Err(NErr::new("ENODEV", format!("interface '{n}' does not exist")));
        }
        let ctl = ffi::sys_socket(ffi::AF_INET, ffi::SOCK_DGRAM | ffi::SOCK_CLOEXEC, 0).map_err(|e| NErr::errno(e, "control socket"))?;
        let mut r = IfReq::new(n);
        ffi::ioctl_ifreq(ctl.as_raw_fd(), ffi::SIOCGIFHWADDR, &mut r).map_err(|e| NErr::errno(e, format!("read MAC of '{n}'")))?;
        let mac = r.hwaddr();
        let nq = queue_count(ctl.as_raw_fd(), n);
        let bound: Vec<u32> = match &o.queues {
            None => (0..nq).collect(),
            Some(qs) => {
                if qs.is_empty() || qs.iter().any(|&q| q >= nq) || (1..qs.len()).any(|i| qs[..i].contains(&qs[i])) {
                    return Err(NErr::new("EINVAL", format!("AF_XDP on '{n}': queues {qs:?} must be distinct receive queues of the interface (0..{})", nq - 1)));
                }
                qs.clone()
            }
        };
        // the program and its XSKMAP: our own, or those of the port we join
        if o.share.is_some() && o.kernel_path.is_some() {
            return Err(NErr::new("EINVAL", format!("AF_XDP on '{n}': a port that joins another one's program cannot bring a kernel path")));
        }
        let (map, prog) = match o.share.take() {
            Some(sh) => {
                if sh.ifindex != ifindex {
                    return Err(NErr::new("EINVAL", format!("AF_XDP on '{n}': the port to share is on another interface")));
                }
                if sh.queues != nq {
                    return Err(NErr::new("EINVAL", format!("AF_XDP on '{n}': the port to share was opened with {} receive queues, the interface has {nq} now", sh.queues)));
                }
                (sh.map, None)
            }
            None => {
                let map = ffi::bpf_map_create(ffi::BPF_MAP_TYPE_XSKMAP, 4, 4, nq).map_err(|e| xdp_err(n, e, "XSKMAP create"))?;
                let prog = load_program(n, &map, if o.other_host { None } else { Some(o.own_mac.unwrap_or(mac)) }, o.kernel_path)?;
                (map, Some(prog))
            }
        };
        let mut queues = Vec::with_capacity(bound.len());
        for &q in &bound {
            let queue = Queue::open(ifindex, q, o.rx_ring).map_err(|(e, what)| {
                if e == ffi::EBUSY {
                    NErr::new("EBUSY", format!("AF_XDP on '{n}': queue {q} is taken by another AF_XDP socket or XDP program"))
                } else {
                    xdp_err(n, e, &format!("queue {q}: {what}"))
                }
            })?;
            let val = queue.fd.as_raw_fd() as u32;
            ffi::bpf_map_update(&map, &q.to_ne_bytes(), &val.to_ne_bytes()).map_err(|e| xdp_err(n, e, "XSKMAP update"))?;
            queues.push(queue);
        }
        let link = match &prog {
            None => None,
            Some(prog) => {
                Some(ffi::bpf_link_create(prog, ifindex, ffi::BPF_XDP, attach_flags(o.generic)).map_err(|e| {
                    if e == ffi::EBUSY || e == ffi::EEXIST {
                        NErr::new("EBUSY", format!("AF_XDP on '{n}': another XDP program is attached to the interface"))
                    } else {
                        xdp_err(n, e, "XDP attach (BPF_LINK_CREATE)")
                    }
                })?)
            }
        };
        let epoll = if queues.len() == 1 {
            None
        } else {
            let fds: Vec<RawFd> = queues.iter().map(|q| q.fd.as_raw_fd()).collect();
            Some(ffi::epoll_of(&fds).map_err(|e| NErr::errno(e, "epoll for AF_XDP queues"))?)
        };
        Ok((Link { name: name.clone(), ifindex, mac }, Xdp { _link: link, _prog: prog, map, ifindex, nq, epoll, queues, next_rx: 0, offloads: o.offloads }))
    })
}

impl Device for Xdp {
    fn kind(&self) -> &'static str {
        "af_xdp"
    }

    /// With one queue, the socket itself: poll(2) puts the waiting thread on the socket's wait
    /// queue only while it sleeps. An epoll set stays registered there, so while the worker is
    /// busy every frame's wake-up walks it — each received frame's data_ready and each sent
    /// frame's skb free (sock_wfree's write_space) take the wait queue's lock and run the epoll
    /// callback, in the sender's softirq and in the worker's transmit (docs/performance.md, "The
    /// worker's loop, as built").
    fn fd(&self) -> RawFd {
        match &self.epoll {
            Some(ep) => ep.as_raw_fd(),
            None => self.queues[0].fd.as_raw_fd(),
        }
    }

    fn rx_waiting(&self) -> bool {
        self.queues.iter().any(|q| q.rx_waiting())
    }

    fn ring_bytes(&self) -> usize {
        self.queues.iter().map(|q| q.umem.len()).sum()
    }

    fn offloads(&self) -> bool {
        self.offloads
    }

    fn zero_copy(&self) -> bool {
        self.queues.iter().all(|q| q.zero_copy)
    }

    fn xsk_map(&self) -> Option<XdpShare> {
        let map = ffi::dup_fd(self.map.as_raw_fd()).ok()?;
        Some(XdpShare { map, ifindex: self.ifindex, queues: self.nq })
    }

    /// Frames the kernel dropped for want of room (RX ring full, fill ring empty):
    /// XDP_STATISTICS counts since the socket opened, so the growth since the last read is added.
    fn poll_kernel_stats(&mut self, c: &mut Counters) {
        for q in &mut self.queues {
            if !q.unbound {
                q.take_error(c);
            }
            let mut st = ffi::XdpStatistics::default();
            if ffi::getsockopt_raw(q.fd.as_raw_fd(), ffi::SOL_XDP, ffi::XDP_STATISTICS, &mut st).is_ok() {
                // an empty fill ring shows in both rx_dropped and rx_fill_ring_empty_descs; a
                // full RX ring only in rx_ring_full
                let total = st.rx_dropped + st.rx_ring_full;
                let new = total.saturating_sub(q.drops_seen);
                q.drops_seen = total;
                c.kernel_drops += new;
                c.rx_dropped += new;
            }
        }
        c.unbound_queues = self.queues.iter().filter(|q| q.unbound).count() as u64;
    }

    fn clear_error(&mut self, c: &mut Counters) {
        for q in &mut self.queues {
            if !q.unbound {
                q.take_error(c);
            }
        }
        c.unbound_queues = self.queues.iter().filter(|q| q.unbound).count() as u64;
    }

    fn rx_burst(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> NResult<usize> {
        // round-robin over the queues so one busy queue cannot starve the others
        let nq = self.queues.len();
        let mut got = 0;
        for k in 0..nq {
            if got >= max {
                break;
            }
            let q = (self.next_rx + k) % nq;
            got += self.queues[q].rx(area, first + got, max - got, in_port, self.offloads, c);
        }
        self.next_rx = (self.next_rx + 1) % nq;
        Ok(got)
    }

    fn tx_burst(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize {
        self.queues[0].tx(area, count, port_index, c)
    }
}
