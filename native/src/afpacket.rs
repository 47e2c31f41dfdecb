//! AF_PACKET ports: a memory-mapped RX ring and sendmmsg(2) TX straight from the arena slots (one
//! syscall per batch, no copy into a TX ring). Bound to one ifindex, optional promiscuous mode,
//! PACKET_FANOUT group, PACKET_IGNORE_OUTGOING and PACKET_QDISC_BYPASS.
//!
//! RX ring versions:
//!   TPACKET_V3 (default) — block-based: frames packed back to back, one status word and one
//!     wake-up per block. Cheapest per frame under load, but a block reaches user space only
//!     when full or after blockTimeoutMs (>= 1 ms): that much latency at low rates.
//!   TPACKET_V2 — one fixed-size frame slot per packet with its own status word: every frame is
//!     visible at once (tens of microseconds), at a higher per-frame cost and with frames larger
//!     than frameSize - 64 truncated (counted as oversize).
//!
//! The ring walk reads kernel-written headers through raw pointers; every offset is checked
//! against the block before it is used, so a corrupt block is skipped, not trusted.
//!
//! Offloads (default on): with PACKET_VNET_HDR the kernel writes a virtio-net header just before
//! each frame in the ring (and expects one before each frame sent). A veth peer with its default
//! offloads sends CHECKSUM_PARTIAL frames and TCP/UDP super-frames of up to 64 KiB; offload.rs
//! finishes the checksums and cuts the super-frames into wire segments before the core sees them.
//! A super-frame fits a V3 block; it does not fit a V2 slot, so V2 sockets also set
//! PACKET_COPY_THRESH: the kernel queues such a frame whole on the socket as well and flags its
//! truncated ring copy TP_STATUS_COPY, and rx recv()s the whole frame from the queue in its place.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::area::Area;
use crate::device::{tx_frame_len, validate_ifname, Counters, Device, Link};
use crate::ffi::{self, IfReq, IoVecBuf, MMsgBuf, Mmap, NErr, NResult, PacketMreq, TpacketReq, TpacketReq3, TpacketStatsV3};
use crate::offload::{self, Segmenter, VnetHdr, VNET_HDR_LEN, VNET_HDR_NONE};

// struct tpacket_block_desc / tpacket_hdr_v1 offsets (linux/if_packet.h)
const BD_BLOCK_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_OFFSET_TO_FIRST_PKT: usize = 16;
const BD_HDR_SIZE: usize = 48;
// struct tpacket2_hdr offsets
const H2_STATUS: usize = 0;
const H2_LEN: usize = 4;
const H2_SNAPLEN: usize = 8;
const H2_MAC: usize = 12;
const H2_VLAN_TCI: usize = 24;
const H2_VLAN_TPID: usize = 26;
const H2_SIZE: usize = 32;
// struct tpacket3_hdr offsets
const H3_NEXT_OFFSET: usize = 0;
const H3_SNAPLEN: usize = 12;
const H3_LEN: usize = 16;
const H3_STATUS: usize = 20;
const H3_MAC: usize = 24;
const H3_VLAN_TCI: usize = 32;
const H3_VLAN_TPID: usize = 36;
const H3_SIZE: usize = 48;

/// Nominal frame size handed to the kernel; with V3 frames are packed back to back inside a
/// block, this only has to divide the block size.
const RING_FRAME_SIZE: u32 = 2048;
/// sendmmsg batch size: one syscall per this many frames.
const TX_CHUNK: usize = 256;
/// Socket receive buffer for V2 frames queued whole (PACKET_COPY_THRESH): room for a few dozen
/// 64 KiB super-frames between two bursts (the default, ~200 KiB, holds three).
const COPY_RCVBUF: i32 = 4 << 20;

pub struct PacketOpts {
    pub name: String,
    pub netns: Option<String>,
    pub block_size: u32,
    pub block_count: u32,
    pub block_timeout_ms: u32,
    /// 2 or 3 (see the module comment)
    pub ring_version: u8,
    /// TPACKET_V2 frame slot size (multiple of 16); ignored for V3
    pub frame_size: u32,
    pub fanout: Option<(u16, u16)>,
    /// mode PACKET_FANOUT_CBPF: the group's program (set by every member; the last one stays)
    pub fanout_prog: Vec<ffi::SockFilter>,
    pub promisc: bool,
    pub ignore_outgoing: bool,
    pub qdisc_bypass: bool,
    /// PACKET_VNET_HDR: finish offloaded frames (see the module comment)
    pub offloads: bool,
    /// false: unicast frames addressed to another MAC than the port's (`own_mac`) (flooded by a
    /// switch, or taken by a promiscuous interface) are dropped by a socket filter, as the kernel's
    /// IP stack ignores them; true: they are received like the rest
    pub other_host: bool,
    /// the MAC the port answers ARP/ND with, which the filter compares with (None: the
    /// interface's when the port opens)
    pub own_mac: Option<[u8; 6]>,
    /// a kernel path whose tc program (kernel_path::Mode::Packet) is on the interface: the
    /// socket's filter is then its (kernel_path::KernelPath::socket_filter), which also skips the
    /// frames that path takes
    pub kernel_path: Option<std::sync::Arc<std::sync::Mutex<crate::kernel_path::KernelPath>>>,
}

pub struct Packet {
    // field order = drop order: unmap the ring before closing the socket
    ring: Mmap,
    fd: OwnedFd,
    block_size: usize,
    block_count: usize,
    version: u8,
    /// V2 geometry and the next frame slot to look at
    frame_size: usize,
    frames_per_block: usize,
    frame_count: usize,
    cur_frame: usize,
    /// V3: the block being consumed
    cur_block: usize,
    /// Position inside the current block when a burst stopped mid-block: (frames left, offset).
    in_block: Option<(u32, usize)>,
    iov: Vec<IoVecBuf>,
    msgs: Vec<MMsgBuf>,
    tx_slots: Vec<(usize, usize)>,
    vnet: bool,
    seg: Segmenter,
}

fn perm(name: &str, e: i32, what: &str) -> NErr {
    if e == ffi::EPERM || e == ffi::EACCES {
        NErr::new("EPERM", format!("CAP_NET_RAW required to {what} on '{name}' (run as root or grant CAP_NET_RAW)"))
    } else {
        NErr::errno(e, format!("{what} on '{name}'"))
    }
}

pub fn open(o: PacketOpts) -> NResult<(Link, Packet)> {
    validate_ifname(&o.name)?;
    let bs = o.block_size;
    if bs < 4096 || !bs.is_power_of_two() || bs > (1 << 26) {
        return Err(NErr::new("EINVAL", format!("blockSize {bs} must be a power of two between 4096 and 64 MiB")));
    }
    if o.block_count == 0 || o.block_count > 65536 || (bs as u64) * (o.block_count as u64) > (1u64 << 30) {
        return Err(NErr::new("EINVAL", format!("blockCount {} must be 1..65536 with a ring of at most 1 GiB", o.block_count)));
    }
    if o.block_timeout_ms > 60_000 {
        return Err(NErr::new("EINVAL", "blockTimeoutMs must be at most 60000"));
    }
    if o.ring_version != 2 && o.ring_version != 3 {
        return Err(NErr::new("EINVAL", format!("ringVersion must be 2 or 3, got {}", o.ring_version)));
    }
    let fs = o.frame_size;
    if o.ring_version == 2 && (fs < 128 || !fs.is_multiple_of(16) || fs > bs) {
        return Err(NErr::new("EINVAL", format!("frameSize {fs} must be a multiple of 16 between 128 and blockSize ({bs})")));
    }
    let ns = o.netns.clone();
    let (ring_version, frame_size, offloads) = (o.ring_version, o.frame_size, o.offloads);
    let (fd, ring, ifindex, mac, name) = crate::netns::run_in(ns.as_deref(), move || {
        let n = &o.name;
        let ifindex = ffi::nametoindex(n)?;
        if ifindex == 0 {
            return Err(NErr::new(
                "ENODEV",
                format!(
                    "interface '{n}' does not exist{}",
                    o.netns.as_deref().map(|s| format!(" in network namespace {s}")).unwrap_or_default()
                ),
            ));
        }
        // protocol 0: receive nothing until bind() names the interface, so no frame of another
        // interface can sneak into the ring in between.
        let fd = ffi::sys_socket(ffi::AF_PACKET, ffi::SOCK_RAW | ffi::SOCK_NONBLOCK | ffi::SOCK_CLOEXEC, 0)
            .map_err(|e| perm(n, e, "open an AF_PACKET socket"))?;
        let s = fd.as_raw_fd();
        let version = if o.ring_version == 2 { ffi::TPACKET_V2 } else { ffi::TPACKET_V3 };
        ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_VERSION, version)
            .map_err(|e| NErr::errno(e, format!("TPACKET_V{} not supported on '{n}'", o.ring_version)))?;
        if o.offloads {
            // must precede PACKET_RX_RING: the header changes the ring's frame layout
            ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_VNET_HDR, 1)
                .map_err(|e| NErr::errno(e, format!("PACKET_VNET_HDR on '{n}'")))?;
            if o.ring_version == 2 {
                ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_COPY_THRESH, 1)
                    .map_err(|e| NErr::errno(e, format!("PACKET_COPY_THRESH on '{n}'")))?;
                // best effort: SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the default buffer
                // holds fewer queued super-frames (overflow is counted as oversize)
                let _ = ffi::setsockopt_int(s, ffi::SOL_SOCKET, ffi::SO_RCVBUFFORCE, COPY_RCVBUF);
            }
        }
        let ring_err = |e| NErr::errno(e, format!("PACKET_RX_RING ({} x {} bytes) on '{n}'", o.block_count, o.block_size));
        if o.ring_version == 2 {
            let req = TpacketReq {
                tp_block_size: o.block_size,
                tp_block_nr: o.block_count,
                tp_frame_size: o.frame_size,
                tp_frame_nr: o.block_size / o.frame_size * o.block_count,
            };
            ffi::setsockopt_raw(s, ffi::SOL_PACKET, ffi::PACKET_RX_RING, &req).map_err(ring_err)?;
        } else {
            let req = TpacketReq3 {
                tp_block_size: o.block_size,
                tp_block_nr: o.block_count,
                tp_frame_size: RING_FRAME_SIZE,
                tp_frame_nr: o.block_size / RING_FRAME_SIZE * o.block_count,
                tp_retire_blk_tov: o.block_timeout_ms,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            ffi::setsockopt_raw(s, ffi::SOL_PACKET, ffi::PACKET_RX_RING, &req).map_err(ring_err)?;
        }
        let len = o.block_size as usize * o.block_count as usize;
        let ring = Mmap::map_shared(s, len).map_err(|e| NErr::errno(e, format!("mmap of the {len}-byte RX ring of '{n}'")))?;
        if o.ignore_outgoing {
            ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_IGNORE_OUTGOING, 1)
                .map_err(|e| NErr::errno(e, format!("PACKET_IGNORE_OUTGOING on '{n}'")))?;
        }
        if o.qdisc_bypass {
            ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_QDISC_BYPASS, 1)
                .map_err(|e| NErr::errno(e, format!("PACKET_QDISC_BYPASS on '{n}'")))?;
        }
        let mut r = IfReq::new(n);
        ffi::ioctl_ifreq(s, ffi::SIOCGIFHWADDR, &mut r).map_err(|e| NErr::errno(e, format!("read MAC of '{n}'")))?;
        // before bind: no frame is queued unfiltered
        if let Some(k) = &o.kernel_path {
            let own = if o.other_host { None } else { Some(o.own_mac.unwrap_or(r.hwaddr())) };
            let prog = crate::kernel_path::lock(k).socket_filter(own)?;
            ffi::attach_bpf(s, &prog).map_err(|e| NErr::errno(e, format!("SO_ATTACH_BPF (the kernel path's filter) on '{n}'")))?;
        } else if !o.other_host {
            ffi::attach_filter(s, &ffi::other_host_filter(o.own_mac.unwrap_or(r.hwaddr())))
                .map_err(|e| NErr::errno(e, format!("SO_ATTACH_FILTER (frames for other hosts) on '{n}'")))?;
        }
        ffi::bind_packet(s, ifindex as i32, ffi::ETH_P_ALL).map_err(|e| match e {
            ffi::ENODEV | ffi::ENXIO => NErr::new("ENODEV", format!("interface '{n}' disappeared while binding")),
            _ => perm(n, e, "bind an AF_PACKET socket"),
        })?;
        if o.promisc {
            let mr = PacketMreq { mr_ifindex: ifindex as i32, mr_type: ffi::PACKET_MR_PROMISC, ..Default::default() };
            ffi::setsockopt_raw(s, ffi::SOL_PACKET, ffi::PACKET_ADD_MEMBERSHIP, &mr)
                .map_err(|e| perm(n, e, "enable promiscuous mode"))?;
        }
        if let Some((group, mode)) = o.fanout {
            let arg = (group as i32) | ((mode as i32) << 16);
            ffi::setsockopt_int(s, ffi::SOL_PACKET, ffi::PACKET_FANOUT, arg).map_err(|e| match e {
                ffi::EINVAL => NErr::new(
                    "EBUSY",
                    format!("PACKET_FANOUT group {group} on '{n}' exists with a different mode or interface"),
                ),
                _ => NErr::errno(e, format!("PACKET_FANOUT group {group} on '{n}'")),
            })?;
            if mode == ffi::PACKET_FANOUT_CBPF {
                ffi::set_fanout_cbpf(s, &o.fanout_prog)
                    .map_err(|e| NErr::errno(e, format!("PACKET_FANOUT_DATA ({} instructions) on '{n}'", o.fanout_prog.len())))?;
            }
        }
        Ok((fd, ring, ifindex, r.hwaddr(), o.name.clone()))
    })?;
    let block_count = ring.len() / bs as usize;
    let frames_per_block = (bs / frame_size.max(16)) as usize;
    Ok((
        Link { name: name.clone(), ifindex, mac },
        Packet {
            ring,
            fd,
            block_size: bs as usize,
            block_count,
            version: ring_version,
            frame_size: frame_size as usize,
            frames_per_block,
            frame_count: frames_per_block * block_count,
            cur_frame: 0,
            cur_block: 0,
            in_block: None,
            iov: Vec::with_capacity(2 * TX_CHUNK),
            msgs: Vec::with_capacity(TX_CHUNK),
            tx_slots: Vec::with_capacity(TX_CHUNK),
            vnet: offloads,
            seg: Segmenter::new(),
        },
    ))
}

/// Copies a frame to `dst`, putting a VLAN tag the kernel moved into the ring header back after
/// the MAC addresses. Returns the bytes written.
fn copy_frame(dst: &mut [u8], src: &[u8], vlan: Option<(u16, u16)>) -> usize {
    match vlan {
        Some((tpid, tci)) => {
            dst[..12].copy_from_slice(&src[..12]);
            dst[12..14].copy_from_slice(&tpid.to_be_bytes());
            dst[14..16].copy_from_slice(&tci.to_be_bytes());
            dst[16..src.len() + 4].copy_from_slice(&src[12..]);
            src.len() + 4
        }
        None => {
            dst[..src.len()].copy_from_slice(src);
            src.len()
        }
    }
}

/// One ordinary (not GSO) frame into slot i, its partial checksum finished. Returns the slots
/// filled (0: dropped and counted).
fn deliver_to_slot(area: &mut Area, i: usize, src: &[u8], vlan: Option<(u16, u16)>, h: &VnetHdr, in_port: u16, c: &mut Counters) -> usize {
    let out_len = src.len() + if vlan.is_some() { 4 } else { 0 };
    if out_len > area.cap() {
        c.oversize += 1;
        c.rx_dropped += 1;
        return 0;
    }
    copy_frame(area.slot_mut(i), src, vlan);
    if !offload::finish_in_slot(area, i, out_len, h, c) {
        return 0;
    }
    area.set_rx(i, out_len, in_port);
    c.rx_packets += 1;
    c.rx_bytes += out_len as u64;
    1
}

impl Packet {
    fn block_ptr(&self, b: usize) -> *mut u8 {
        // SAFETY: b < block_count, so the offset stays inside the mapping.
        unsafe { self.ring.ptr().add(b * self.block_size) }
    }

    fn block_status(&self, b: usize) -> &AtomicU32 {
        // SAFETY: block_status is a 4-byte aligned u32 inside block b's header, which lives as
        // long as the mapping (i.e. as long as &self). The kernel writes it concurrently, hence
        // the atomic view; Acquire on load pairs with the kernel's smp_wmb before it flips the
        // word to TP_STATUS_USER.
        unsafe { &*(self.block_ptr(b).add(BD_BLOCK_STATUS) as *const AtomicU32) }
    }

    fn read_u32(&self, b: usize, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.block_size);
        // SAFETY: callers bound off + 4 by the block size; unaligned read is fine for any offset.
        unsafe { std::ptr::read_unaligned(self.block_ptr(b).add(off) as *const u32) }
    }

    fn read_u16(&self, b: usize, off: usize) -> u16 {
        debug_assert!(off + 2 <= self.block_size);
        // SAFETY: as read_u32.
        unsafe { std::ptr::read_unaligned(self.block_ptr(b).add(off) as *const u16) }
    }

    fn block_bytes(&self, b: usize, off: usize, len: usize) -> &[u8] {
        // SAFETY: callers check off + len <= block_size; the block belongs to user space while its
        // status is TP_STATUS_USER, so the kernel does not write these bytes during the copy.
        unsafe { std::slice::from_raw_parts(self.block_ptr(b).add(off), len) }
    }

    fn release_block(&mut self) {
        // Release: our reads of the block happen before the kernel may reuse it.
        self.block_status(self.cur_block).store(ffi::TP_STATUS_KERNEL, Ordering::Release);
        self.cur_block = (self.cur_block + 1) % self.block_count;
        self.in_block = None;
    }

    /// Delivers one ring frame (`snap` of `wire` bytes at `data` in block `b`, ring header from
    /// `hdr_end` on) into slots i.. (at most `room`), putting back a VLAN tag the kernel moved into
    /// the ring header and finishing offloads. Returns the slots filled: 0 when it was dropped
    /// (and counted), several for a super-frame.
    #[allow(clippy::too_many_arguments)]
    fn deliver(&mut self, area: &mut Area, i: usize, room: usize, b: usize, hdr_end: usize, data: usize, snap: usize, wire: usize, status: u32, vlan: Option<(u16, u16)>, in_port: u16, c: &mut Counters) -> usize {
        let tag = if vlan.is_some() { 4 } else { 0 };
        let h = if self.vnet {
            if data < hdr_end + VNET_HDR_LEN {
                c.rx_errors += 1;
                return 0;
            }
            VnetHdr::parse(self.block_bytes(b, data - VNET_HDR_LEN, VNET_HDR_LEN)).shifted(tag as u16)
        } else {
            VnetHdr::default()
        };
        if snap != wire {
            if self.vnet && status & ffi::TP_STATUS_COPY != 0 {
                return self.deliver_queued(area, i, room, vlan, in_port, c);
            }
            c.oversize += 1;
            c.rx_dropped += 1;
            return 0;
        }
        let out_len = snap + tag;
        // SAFETY: as block_bytes (callers checked data + snap against the block); borrowing only
        // the mapping leaves self.seg free to write.
        let src = unsafe { std::slice::from_raw_parts(self.ring.ptr().add(b * self.block_size + data), snap) };
        if h.is_gso() {
            if out_len > self.seg.buf_mut().len() {
                c.oversize += 1;
                c.rx_dropped += 1;
                return 0;
            }
            copy_frame(self.seg.buf_mut(), src, vlan);
            if !self.seg.start(out_len, &h, area.cap(), c) {
                return 0;
            }
            return self.seg.drain(area, i, room, in_port, c);
        }
        deliver_to_slot(area, i, src, vlan, &h, in_port, c)
    }

    /// The whole of a frame whose V2 ring copy was truncated (TP_STATUS_COPY): the kernel queued
    /// it on the socket too, in ring order, with its virtio-net header in front.
    fn deliver_queued(&mut self, area: &mut Area, i: usize, room: usize, vlan: Option<(u16, u16)>, in_port: u16, c: &mut Counters) -> usize {
        let fd = self.fd.as_raw_fd();
        let buf = self.seg.buf_mut();
        let n = match ffi::recv_trunc(fd, buf) {
            Ok(n) => n,
            Err(_) => {
                c.rx_errors += 1;
                return 0;
            }
        };
        let tag = if vlan.is_some() { 4 } else { 0 };
        if n < VNET_HDR_LEN + 14 || n + tag > buf.len() {
            c.oversize += 1;
            c.rx_dropped += 1;
            return 0;
        }
        let h = VnetHdr::parse(&buf[..VNET_HDR_LEN]).shifted(tag as u16);
        let snap = n - VNET_HDR_LEN;
        // Move the frame to the buffer's start, the VLAN tag (if any) back in place.
        match vlan {
            Some((tpid, tci)) => {
                buf.copy_within(VNET_HDR_LEN + 12..n, 16);
                buf.copy_within(VNET_HDR_LEN..VNET_HDR_LEN + 12, 0);
                buf[12..14].copy_from_slice(&tpid.to_be_bytes());
                buf[14..16].copy_from_slice(&tci.to_be_bytes());
            }
            None => buf.copy_within(VNET_HDR_LEN..n, 0),
        }
        let out_len = snap + tag;
        if h.is_gso() {
            if !self.seg.start(out_len, &h, area.cap(), c) {
                return 0;
            }
            return self.seg.drain(area, i, room, in_port, c);
        }
        deliver_to_slot(area, i, &self.seg.buf()[..out_len], None, &h, in_port, c)
    }

    fn rx(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> usize {
        // segments of a super-frame left over from the last burst go first
        let got = self.seg.drain(area, first, max, in_port, c);
        got + if self.version == 2 {
            self.rx_v2(area, first + got, max - got, in_port, c)
        } else {
            self.rx_v3(area, first + got, max - got, in_port, c)
        }
    }

    fn frame_status(&self, b: usize, off: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the first, 4-byte aligned word of a frame slot (slots are 16-byte
        // aligned inside page-aligned blocks) and lives as long as the mapping. Acquire/Release
        // pair with the kernel as for V3 block_status.
        unsafe { &*(self.block_ptr(b).add(off + H2_STATUS) as *const AtomicU32) }
    }

    fn rx_v2(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> usize {
        let fs = self.frame_size;
        let mut got = 0usize;
        let mut budget = max * 2 + 16;
        while got < max && budget > 0 {
            budget -= 1;
            let b = self.cur_frame / self.frames_per_block;
            let off = (self.cur_frame % self.frames_per_block) * fs;
            let status = self.frame_status(b, off).load(Ordering::Acquire);
            if status & ffi::TP_STATUS_USER == 0 {
                break;
            }
            let snap = self.read_u32(b, off + H2_SNAPLEN) as usize;
            let wire = self.read_u32(b, off + H2_LEN) as usize;
            let mac = self.read_u16(b, off + H2_MAC) as usize;
            let vlan = if status & ffi::TP_STATUS_VLAN_VALID != 0 {
                let tpid = if status & ffi::TP_STATUS_VLAN_TPID_VALID != 0 { self.read_u16(b, off + H2_VLAN_TPID) } else { 0x8100 };
                Some((tpid, self.read_u16(b, off + H2_VLAN_TCI)))
            } else {
                None
            };
            if mac < H2_SIZE || mac.checked_add(snap).is_none_or(|e| e > fs) || snap < 12 {
                c.rx_errors += 1;
            } else {
                got += self.deliver(area, first + got, max - got, b, off + H2_SIZE, off + mac, snap, wire, status, vlan, in_port, c);
            }
            self.frame_status(b, off).store(ffi::TP_STATUS_KERNEL, Ordering::Release);
            self.cur_frame = (self.cur_frame + 1) % self.frame_count;
        }
        got
    }

    fn rx_v3(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> usize {
        let bs = self.block_size;
        let mut got = 0usize;
        while got < max {
            let b = self.cur_block;
            let (left, off) = match self.in_block {
                Some(p) => p,
                None => {
                    if self.block_status(b).load(Ordering::Acquire) & ffi::TP_STATUS_USER == 0 {
                        break; // ring empty
                    }
                    let num = self.read_u32(b, BD_NUM_PKTS);
                    let first_off = self.read_u32(b, BD_OFFSET_TO_FIRST_PKT) as usize;
                    if num == 0 || first_off < BD_HDR_SIZE || first_off >= bs {
                        if num != 0 {
                            c.rx_errors += 1;
                        }
                        self.release_block();
                        continue;
                    }
                    (num, first_off)
                }
            };
            if off + H3_SIZE > bs {
                c.rx_errors += 1;
                self.release_block();
                continue;
            }
            let next = self.read_u32(b, off + H3_NEXT_OFFSET) as usize;
            let snap = self.read_u32(b, off + H3_SNAPLEN) as usize;
            let wire = self.read_u32(b, off + H3_LEN) as usize;
            let status = self.read_u32(b, off + H3_STATUS);
            let mac = self.read_u16(b, off + H3_MAC) as usize;
            let vlan = if status & ffi::TP_STATUS_VLAN_VALID != 0 {
                let tpid = if status & ffi::TP_STATUS_VLAN_TPID_VALID != 0 { self.read_u16(b, off + H3_VLAN_TPID) } else { 0x8100 };
                Some((tpid, (self.read_u32(b, off + H3_VLAN_TCI) & 0xffff) as u16))
            } else {
                None
            };
            let data = off + mac;
            if data.checked_add(snap).is_none_or(|e| e > bs) || snap < 12 {
                c.rx_errors += 1;
            } else {
                got += self.deliver(area, first + got, max - got, b, off + H3_SIZE, data, snap, wire, status, vlan, in_port, c);
            }
            if left <= 1 || next == 0 {
                self.release_block();
            } else {
                self.in_block = Some((left - 1, off + next));
            }
        }
        got
    }

}

impl Device for Packet {
    fn kind(&self) -> &'static str {
        "af_packet"
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn offloads(&self) -> bool {
        self.vnet
    }

    fn rx_burst(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> NResult<usize> {
        Ok(self.rx(area, first, max, in_port, c))
    }

    fn tx_burst(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize {
        let cap = area.cap();
        let fd = self.fd.as_raw_fd();
        self.tx_slots.clear();
        for i in 0..count {
            let Some(len) = tx_frame_len(area, i, port_index, 14, cap, c) else { continue };
            self.tx_slots.push((i, len));
        }
        let mut sent = 0usize;
        let mut start = 0usize;
        let mut frames: Vec<&[u8]> = Vec::with_capacity(TX_CHUNK.min(self.tx_slots.len()));
        while start < self.tx_slots.len() {
            let end = (start + TX_CHUNK).min(self.tx_slots.len());
            frames.clear();
            for &(i, len) in &self.tx_slots[start..end] {
                frames.push(&area.slot(i)[..len]);
            }
            match ffi::send_batch(fd, if self.vnet { &VNET_HDR_NONE } else { &[] }, &frames, &mut self.iov, &mut self.msgs) {
                Ok(0) => {
                    c.tx_errors += 1;
                    start += 1;
                }
                Ok(n) => {
                    for f in &frames[..n] {
                        c.tx_bytes += f.len() as u64;
                    }
                    c.tx_packets += n as u64;
                    sent += n;
                    // n < batch: frame `start + n` failed; the retry from there reports why.
                    start += n;
                }
                Err(ffi::EINTR) => continue,
                Err(ffi::EAGAIN) | Err(ffi::ENOBUFS) => {
                    // Socket send queue full: the remaining frames are dropped (never block).
                    c.tx_errors += (self.tx_slots.len() - start) as u64;
                    break;
                }
                Err(_) => {
                    // This frame is bad (EMSGSIZE: above MTU) or the link is down: skip one.
                    c.tx_errors += 1;
                    start += 1;
                }
            }
        }
        sent
    }

    /// Folds the kernel's ring-full drop count (reset on every read) into the counters.
    fn poll_kernel_stats(&mut self, c: &mut Counters) {
        let mut st = TpacketStatsV3::default();
        if ffi::getsockopt_raw(self.fd.as_raw_fd(), ffi::SOL_PACKET, ffi::PACKET_STATISTICS, &mut st).is_ok() {
            c.kernel_drops += st.tp_drops as u64;
            c.rx_dropped += st.tp_drops as u64;
        }
    }

    /// Clears a pending socket error (what made poll report POLLERR) and counts it.
    fn clear_error(&mut self, c: &mut Counters) {
        let mut err: i32 = 0;
        if ffi::getsockopt_raw(self.fd.as_raw_fd(), ffi::SOL_SOCKET, ffi::SO_ERROR, &mut err).is_ok() && err != 0 {
            c.rx_errors += 1;
        }
    }

    fn ring_bytes(&self) -> usize {
        self.ring.len()
    }
}
