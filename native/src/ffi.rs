//! The one place where this crate talks to C: Node-API (resolved from the node binary when the
//! addon is loaded) and the Linux/glibc calls the ports need. crates.io is unreachable on the build
//! machines, so instead of `napi`/`libc` crates the few items used are declared here by hand, with
//! values and layouts taken from /usr/include/node/js_native_api*.h, linux/if_packet.h,
//! linux/if_tun.h, linux/sockios.h and the x86-64 glibc ABI (the virtio-net header, a byte
//! layout rather than a C call, is parsed in offload.rs). Everything outside this module (and the
//! packet-ring walk in afpacket.rs) is safe Rust built on the wrappers below.
//!
//! Cost of hand declarations: a wrong signature would be silent UB, so each one mirrors the header
//! text exactly and the struct sizes are checked by const assertions at the bottom.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CString};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

// =============================================================================================
// Errors: everything fallible returns NErr, which becomes a JS Error with a `code` property.
// =============================================================================================

#[derive(Debug, Clone)]
pub struct NErr {
    pub code: &'static str,
    pub msg: String,
}

pub type NResult<T> = Result<T, NErr>;

impl NErr {
    pub fn new(code: &'static str, msg: impl Into<String>) -> NErr {
        NErr { code, msg: msg.into() }
    }
    /// `context` says what was being done and to which interface; the errno text is appended.
    pub fn errno(errno: i32, context: impl AsRef<str>) -> NErr {
        let text = std::io::Error::from_raw_os_error(errno).to_string();
        NErr { code: errno_name(errno), msg: format!("{}: {}", context.as_ref(), text) }
    }
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        EINTR => "EINTR",
        EIO => "EIO",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOPROTOOPT => "ENOPROTOOPT",
        EAFNOSUPPORT => "EAFNOSUPPORT",
        EADDRINUSE => "EADDRINUSE",
        ENETDOWN => "ENETDOWN",
        ENOBUFS => "ENOBUFS",
        EMSGSIZE => "EMSGSIZE",
        ENXIO => "ENXIO",
        EBADFD => "EBADFD",
        _ => "EUNKNOWN",
    }
}

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EINTR: i32 = 4;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const EBADF: i32 = 9;
pub const EAGAIN: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const ENODEV: i32 = 19;
pub const EINVAL: i32 = 22;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const ENAMETOOLONG: i32 = 36;
pub const EBADFD: i32 = 77;
pub const EMSGSIZE: i32 = 90;
pub const ENOPROTOOPT: i32 = 92;
pub const EAFNOSUPPORT: i32 = 97;
pub const EADDRINUSE: i32 = 98;
pub const ENETDOWN: i32 = 100;
pub const ENOBUFS: i32 = 105;

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(EINVAL)
}

// =============================================================================================
// Linux constants (x86-64)
// =============================================================================================

pub const AF_INET: c_int = 2;
pub const AF_PACKET: c_int = 17;
pub const SOCK_DGRAM: c_int = 2;
pub const SOCK_RAW: c_int = 3;
pub const SOCK_NONBLOCK: c_int = 0o4000;
pub const SOCK_CLOEXEC: c_int = 0o2000000;
pub const SOL_SOCKET: c_int = 1;
pub const SO_ERROR: c_int = 4;
pub const SOL_PACKET: c_int = 263;
pub const ETH_P_ALL: u16 = 0x0003;

pub const PACKET_ADD_MEMBERSHIP: c_int = 1;
pub const PACKET_RX_RING: c_int = 5;
pub const PACKET_STATISTICS: c_int = 6;
pub const PACKET_VERSION: c_int = 10;
pub const PACKET_FANOUT: c_int = 18;
/// PACKET_FANOUT_DATA: the program of a PACKET_FANOUT_CBPF group (any member may set it)
pub const PACKET_FANOUT_DATA: c_int = 22;
pub const PACKET_FANOUT_CBPF: u16 = 6;
pub const PACKET_QDISC_BYPASS: c_int = 20;
pub const PACKET_IGNORE_OUTGOING: c_int = 23;
/// Frames too long for a TPACKET_V2 slot are also queued whole on the socket (recv them); the
/// slot says so with TP_STATUS_COPY. Any non-zero value enables it.
pub const PACKET_COPY_THRESH: c_int = 7;
/// Every frame in the ring / every recv and send starts with a struct virtio_net_hdr.
pub const PACKET_VNET_HDR: c_int = 15;
pub const SO_RCVBUFFORCE: c_int = 33;
/// SO_ATTACH_FILTER: the socket's classic BPF filter (a frame it returns 0 for is not queued)
pub const SO_ATTACH_FILTER: c_int = 26;
/// SO_ATTACH_BPF: an eBPF socket filter program (its fd) as the socket's receive filter
pub const SO_ATTACH_BPF: c_int = 50;
pub const PACKET_MR_PROMISC: u16 = 1;
pub const TPACKET_V2: c_int = 1;
pub const TPACKET_V3: c_int = 2;

pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1;
pub const TP_STATUS_COPY: u32 = 1 << 1;
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

pub const IFNAMSIZ: usize = 16;
pub const IFF_UP: i16 = 0x1;
pub const IFF_TAP: i16 = 0x0002;
pub const IFF_NO_PI: i16 = 0x1000;
pub const IFF_MULTI_QUEUE: i16 = 0x0100;
pub const IFF_VNET_HDR: i16 = 0x4000;
// TUNSETOFFLOAD bits (linux/if_tun.h): what the kernel may hand us unfinished
pub const TUN_F_CSUM: c_uint = 0x01;
pub const TUN_F_TSO4: c_uint = 0x02;
pub const TUN_F_TSO6: c_uint = 0x04;
pub const TUN_F_TSO_ECN: c_uint = 0x08;
pub const TUN_F_USO4: c_uint = 0x20;
pub const TUN_F_USO6: c_uint = 0x40;
pub const ARPHRD_ETHER: u16 = 1;

pub const TUNSETIFF: c_ulong = 0x400454ca; // _IOW('T', 202, int)
pub const TUNSETPERSIST: c_ulong = 0x400454cb; // _IOW('T', 203, int)
pub const TUNSETOFFLOAD: c_ulong = 0x400454d0; // _IOW('T', 208, unsigned int)
pub const SIOCGIFFLAGS: c_ulong = 0x8913;
pub const SIOCSIFFLAGS: c_ulong = 0x8914;
pub const SIOCGIFMTU: c_ulong = 0x8921;
pub const SIOCSIFMTU: c_ulong = 0x8922;
pub const SIOCSIFHWADDR: c_ulong = 0x8924;
pub const SIOCGIFHWADDR: c_ulong = 0x8927;
pub const SIOCGIFINDEX: c_ulong = 0x8933;

pub const CLONE_NEWNET: c_int = 0x40000000;
pub const POLLIN: i16 = 0x1;
pub const POLLERR: i16 = 0x8;
pub const MSG_DONTWAIT: c_int = 0x40;
pub const MSG_TRUNC: c_int = 0x20;

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const MAP_POPULATE: c_int = 0x8000;
const O_RDWR: c_int = 2;
const O_NONBLOCK: c_int = 0o4000;
const O_CLOEXEC: c_int = 0o2000000;

// =============================================================================================
// Linux structs
// =============================================================================================

/// struct ifreq: name[IFNAMSIZ] + a 24-byte union. Only the union members used here are exposed,
/// as byte accessors, so no unions leak out of this module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IfReq {
    pub name: [u8; IFNAMSIZ],
    pub data: [u8; 24],
}

impl IfReq {
    pub fn new(name: &str) -> IfReq {
        let mut r = IfReq { name: [0; IFNAMSIZ], data: [0; 24] };
        let b = name.as_bytes();
        let n = b.len().min(IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&b[..n]);
        r
    }
    pub fn name_str(&self) -> String {
        let end = self.name.iter().position(|&c| c == 0).unwrap_or(IFNAMSIZ);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
    pub fn flags(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }
    pub fn set_flags(&mut self, f: i16) {
        self.data[..2].copy_from_slice(&f.to_ne_bytes());
    }
    pub fn int(&self) -> i32 {
        i32::from_ne_bytes([self.data[0], self.data[1], self.data[2], self.data[3]])
    }
    pub fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
    /// ifr_hwaddr: struct sockaddr { u16 sa_family; u8 sa_data[14] }
    pub fn hwaddr(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[2..8]);
        m
    }
    pub fn set_hwaddr(&mut self, mac: &[u8; 6]) {
        self.data[..2].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        self.data[2..8].copy_from_slice(mac);
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TpacketReq {
    pub tp_block_size: c_uint,
    pub tp_block_nr: c_uint,
    pub tp_frame_size: c_uint,
    pub tp_frame_nr: c_uint,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TpacketReq3 {
    pub tp_block_size: c_uint,
    pub tp_block_nr: c_uint,
    pub tp_frame_size: c_uint,
    pub tp_frame_nr: c_uint,
    pub tp_retire_blk_tov: c_uint,
    pub tp_sizeof_priv: c_uint,
    pub tp_feature_req_word: c_uint,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TpacketStatsV3 {
    pub tp_packets: c_uint,
    pub tp_drops: c_uint,
    pub tp_freeze_q_cnt: c_uint,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PacketMreq {
    pub mr_ifindex: c_int,
    pub mr_type: u16,
    pub mr_alen: u16,
    pub mr_address: [u8; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SockaddrLl {
    sll_family: u16,
    sll_protocol: u16, // network byte order
    sll_ifindex: c_int,
    sll_hatype: u16,
    sll_pkttype: u8,
    sll_halen: u8,
    sll_addr: [u8; 8],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PollFd {
    pub fd: c_int,
    pub events: i16,
    pub revents: i16,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct IoVec {
    iov_base: *mut c_void,
    iov_len: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MsgHdr {
    msg_name: *mut c_void,
    msg_namelen: c_uint,
    msg_iov: *mut IoVec,
    msg_iovlen: usize,
    msg_control: *mut c_void,
    msg_controllen: usize,
    msg_flags: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MMsgHdr {
    msg_hdr: MsgHdr,
    msg_len: c_uint,
}

const _: () = assert!(std::mem::size_of::<IfReq>() == 40);
const _: () = assert!(std::mem::size_of::<TpacketReq>() == 16);
const _: () = assert!(std::mem::size_of::<TpacketReq3>() == 28);
const _: () = assert!(std::mem::size_of::<TpacketStatsV3>() == 12);
const _: () = assert!(std::mem::size_of::<PacketMreq>() == 16);
const _: () = assert!(std::mem::size_of::<SockaddrLl>() == 20);
const _: () = assert!(std::mem::size_of::<PollFd>() == 8);
const _: () = assert!(std::mem::size_of::<MsgHdr>() == 56);
const _: () = assert!(std::mem::size_of::<MMsgHdr>() == 64);

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const c_void, len: c_uint) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: c_uint) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut c_uint) -> c_int;
    fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn mmap(addr: *mut c_void, len: usize, prot: c_int, flags: c_int, fd: c_int, off: c_long) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    fn readv(fd: c_int, iov: *const IoVec, iovcnt: c_int) -> isize;
    fn writev(fd: c_int, iov: *const IoVec, iovcnt: c_int) -> isize;
    fn recv(fd: c_int, buf: *mut c_void, n: usize, flags: c_int) -> isize;
    fn sendmmsg(fd: c_int, msgs: *mut MMsgHdr, vlen: c_uint, flags: c_int) -> c_int;
    fn if_nametoindex(name: *const c_char) -> c_uint;
    fn setns(fd: c_int, nstype: c_int) -> c_int;
    fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    fn eventfd(initval: c_uint, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn sched_setscheduler(pid: c_int, policy: c_int, param: *const c_int) -> c_int;
}

const SCHED_OTHER: c_int = 0;
const SCHED_FIFO: c_int = 1;
/// Children forked by a real-time thread start as SCHED_OTHER (a worker never forks, but a
/// helper it might spawn must not inherit a real-time policy).
const SCHED_RESET_ON_FORK: c_int = 0x4000_0000;

/// The calling thread (pid 0 = the caller, a thread on Linux) to SCHED_FIFO at `prio` (1..99),
/// or to SCHED_OTHER with 0. EPERM without CAP_SYS_NICE (or an RLIMIT_RTPRIO that allows it).
pub fn sched_fifo_self(prio: i32) -> Result<(), i32> {
    let (policy, p) = if prio > 0 { (SCHED_FIFO | SCHED_RESET_ON_FORK, prio) } else { (SCHED_OTHER, 0) };
    // SAFETY: struct sched_param is one int; `p` is live for the call.
    if unsafe { sched_setscheduler(0, policy, &p) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

const EFD_NONBLOCK: c_int = O_NONBLOCK;
const EFD_CLOEXEC: c_int = O_CLOEXEC;

/// A non-blocking eventfd (counter 0): readable once anyone added to it, until read.
pub fn sys_eventfd() -> Result<OwnedFd, i32> {
    // SAFETY: plain syscall with integer arguments.
    owned(unsafe { eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) })
}

/// Adds 1 to an eventfd's counter (makes it readable). EAGAIN only when the counter is at its
/// maximum, i.e. it is readable anyway.
pub fn eventfd_add(fd: RawFd) -> Result<(), i32> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    if unsafe { write(fd, &one as *const u64 as *const c_void, 8) } < 0 {
        let e = last_errno();
        if e != EAGAIN {
            return Err(e);
        }
    }
    Ok(())
}

/// Reads (and so resets) an eventfd's counter; 0 when it was not readable.
pub fn eventfd_take(fd: RawFd) -> Result<u64, i32> {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    if unsafe { read(fd, &mut v as *mut u64 as *mut c_void, 8) } < 0 {
        let e = last_errno();
        return if e == EAGAIN { Ok(0) } else { Err(e) };
    }
    Ok(v)
}

const MADV_HUGEPAGE: c_int = 14;
const HUGE_PAGE: usize = 2 << 20; // x86-64 and arm64 (4 KiB base pages) PMD size

/// Marks the whole 2 MiB-aligned huge pages inside `mem` MADV_HUGEPAGE (transparent huge pages
/// in "madvise" mode), so first touches fault in 2 MiB at a time instead of 4 KiB. Returns the
/// bytes advised (0 when `mem` holds no whole huge page). Only a hint: it changes no contents.
pub fn advise_huge_pages(mem: &mut [u8]) -> Result<usize, i32> {
    let start = mem.as_mut_ptr() as usize;
    let first = (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
    let end = (start + mem.len()) & !(HUGE_PAGE - 1);
    if end <= first {
        return Ok(0);
    }
    // SAFETY: [first, end) lies inside `mem`, memory this process owns; MADV_HUGEPAGE only sets
    // a flag on the mapping and never changes or frees its contents.
    if unsafe { madvise(first as *mut c_void, end - first, MADV_HUGEPAGE) } != 0 {
        return Err(last_errno());
    }
    Ok(end - first)
}

fn cstring(s: &str) -> NResult<CString> {
    CString::new(s).map_err(|_| NErr::new("EINVAL", format!("name {s:?} contains a NUL byte")))
}

fn owned(fd: c_int) -> Result<OwnedFd, i32> {
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn sys_socket(domain: c_int, ty: c_int, proto: c_int) -> Result<OwnedFd, i32> {
    // SAFETY: plain syscall with integer arguments.
    owned(unsafe { socket(domain, ty, proto) })
}

pub fn open_tun() -> Result<OwnedFd, i32> {
    let path = b"/dev/net/tun\0";
    // SAFETY: path is NUL-terminated; flags are integers.
    owned(unsafe { open(path.as_ptr() as *const c_char, O_RDWR | O_NONBLOCK | O_CLOEXEC) })
}

pub fn open_netns(path: &str) -> NResult<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: c is NUL-terminated and outlives the call.
    owned(unsafe { open(c.as_ptr(), O_CLOEXEC) /* O_RDONLY is 0 */ }).map_err(|e| {
        if e == ENOENT {
            NErr::new("ENOENT", format!("network namespace {path} does not exist"))
        } else {
            NErr::errno(e, format!("cannot open network namespace {path}"))
        }
    })
}

/// Moves the calling thread into the network namespace behind `fd`. Callers do this only on a
/// short-lived helper thread (netns.rs) so the node threads never change namespace.
pub fn sys_setns_net(fd: &OwnedFd) -> Result<(), i32> {
    // SAFETY: fd is a valid open descriptor for the duration of the call.
    if unsafe { setns(fd.as_raw_fd(), CLONE_NEWNET) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub fn setsockopt_raw<T: Copy>(fd: RawFd, level: c_int, name: c_int, val: &T) -> Result<(), i32> {
    // SAFETY: val points to a live T of exactly the size passed.
    let r = unsafe {
        setsockopt(fd, level, name, val as *const T as *const c_void, std::mem::size_of::<T>() as c_uint)
    };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// One classic BPF instruction (struct sock_filter).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// The receive filter that drops unicast frames addressed to another MAC than `own` (the MAC the
/// port answers ARP/ND with, read when it opens): a frame a switch floods to every port is not
/// this port's, as the kernel's IP stack ignores it (PACKET_OTHERHOST). Broadcast and multicast
/// frames (the group bit) pass. Compared with `own` rather than the kernel's packet type so that
/// a MAC changed under an open port (a udev policy applied late) does not cut off the peers
/// still using the one the port advertises.
pub fn other_host_filter(own: [u8; 6]) -> [SockFilter; 8] {
    const LD_B_ABS: u16 = 0x30;
    const LD_H_ABS: u16 = 0x28;
    const LD_W_ABS: u16 = 0x20;
    const JSET_K: u16 = 0x45;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    [
        f(LD_B_ABS, 0, 0, 0),                                              // 0: A = dst[0]
        f(JSET_K, 4, 0, 1),                                                // 1: group bit -> 6 accept
        f(LD_W_ABS, 0, 0, 0),                                              // 2: A = dst[0..4] (network order)
        f(JEQ_K, 0, 3, u32::from_be_bytes([own[0], own[1], own[2], own[3]])), // 3: else -> 7 drop
        f(LD_H_ABS, 0, 0, 4),                                              // 4: A = dst[4..6]
        f(JEQ_K, 0, 1, u32::from(u16::from_be_bytes([own[4], own[5]]))),  // 5: else -> 7 drop
        f(RET_K, 0, 0, u32::MAX),                                          // 6: accept the whole frame
        f(RET_K, 0, 0, 0),                                                 // 7: drop
    ]
}

/// Attaches `prog` as the socket's receive filter (SO_ATTACH_FILTER; the kernel copies it).
pub fn attach_filter(fd: RawFd, prog: &[SockFilter]) -> Result<(), i32> {
    let fp = SockFprog { len: prog.len() as u16, filter: prog.as_ptr() };
    setsockopt_raw(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp)
}

/// Attaches the eBPF socket filter `prog` as the socket's receive filter (SO_ATTACH_BPF).
pub fn attach_bpf(fd: RawFd, prog: &OwnedFd) -> Result<(), i32> {
    let v: c_int = prog.as_raw_fd();
    setsockopt_raw(fd, SOL_SOCKET, SO_ATTACH_BPF, &v)
}

/// Sets the classic BPF program of the PACKET_FANOUT_CBPF group `fd` belongs to (its return
/// value, modulo the group's members, picks the socket). The kernel copies the program.
pub fn set_fanout_cbpf(fd: RawFd, prog: &[SockFilter]) -> Result<(), i32> {
    let fp = SockFprog { len: prog.len() as u16, filter: prog.as_ptr() };
    setsockopt_raw(fd, SOL_PACKET, PACKET_FANOUT_DATA, &fp)
}

pub fn setsockopt_int(fd: RawFd, level: c_int, name: c_int, v: c_int) -> Result<(), i32> {
    setsockopt_raw(fd, level, name, &v)
}

pub fn getsockopt_raw<T: Copy>(fd: RawFd, level: c_int, name: c_int, out: &mut T) -> Result<(), i32> {
    let mut len = std::mem::size_of::<T>() as c_uint;
    // SAFETY: out points to a writable T of `len` bytes; the kernel writes at most len bytes.
    let r = unsafe { getsockopt(fd, level, name, out as *mut T as *mut c_void, &mut len) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub fn bind_packet(fd: RawFd, ifindex: i32, protocol: u16) -> Result<(), i32> {
    let sa = SockaddrLl {
        sll_family: AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        ..Default::default()
    };
    // SAFETY: sa is a fully initialised sockaddr_ll of the size passed.
    let r = unsafe { bind(fd, &sa as *const SockaddrLl as *const c_void, std::mem::size_of::<SockaddrLl>() as c_uint) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// ioctl taking a struct ifreq (TUNSETIFF and the SIOC*IF* family).
pub fn ioctl_ifreq(fd: RawFd, req: c_ulong, ifr: &mut IfReq) -> Result<(), i32> {
    // SAFETY: every request used with this helper reads/writes at most sizeof(struct ifreq).
    if unsafe { ioctl(fd, req, ifr as *mut IfReq) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub fn nametoindex(name: &str) -> NResult<u32> {
    let c = cstring(name)?;
    // SAFETY: c is NUL-terminated.
    Ok(unsafe { if_nametoindex(c.as_ptr()) })
}

/// Reads one frame (TAP: one read = one frame) into `parts` in order (e.g. virtio-net header,
/// arena slot, overflow buffer): a frame that does not fit the slot spills into the overflow, so
/// the caller sees its true length.
pub fn read_parts(fd: RawFd, parts: &mut [&mut [u8]; 3]) -> Result<usize, i32> {
    let iov = parts.each_mut().map(|p| IoVec { iov_base: p.as_mut_ptr() as *mut c_void, iov_len: p.len() });
    // SAFETY: every iovec describes a live, exclusively borrowed buffer.
    let n = unsafe { readv(fd, iov.as_ptr(), 3) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Writes `head` and `frame` as one frame (TAP: one write = one frame).
pub fn write_parts(fd: RawFd, head: &[u8], frame: &[u8]) -> Result<usize, i32> {
    let iov = [
        IoVec { iov_base: head.as_ptr() as *mut c_void, iov_len: head.len() },
        IoVec { iov_base: frame.as_ptr() as *mut c_void, iov_len: frame.len() },
    ];
    // SAFETY: both iovecs describe live buffers; the kernel only reads them.
    let n = unsafe { writev(fd, iov.as_ptr(), 2) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// One datagram from a socket's receive queue, without blocking; returns its full length (which
/// may exceed buf: MSG_TRUNC).
pub fn recv_trunc(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: buf is a live, exclusively borrowed buffer of the length passed.
    let n = unsafe { recv(fd, buf.as_mut_ptr() as *mut c_void, buf.len(), MSG_DONTWAIT | MSG_TRUNC) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// ioctl taking an int by value (TUNSETPERSIST, TUNSETOFFLOAD).
pub fn ioctl_int(fd: RawFd, req: c_ulong, v: c_ulong) -> Result<(), i32> {
    // SAFETY: these requests take their argument by value, not as a pointer.
    if unsafe { ioctl(fd, req, v) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub fn sys_poll(fds: &mut [PollFd], timeout_ms: i32) -> Result<usize, i32> {
    // SAFETY: fds is a live, exclusively borrowed array of pollfd of the length passed.
    let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as c_ulong, timeout_ms) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Sends each slice as one datagram with one sendmmsg(2) call (bound AF_PACKET socket, so no
/// address), each preceded by `head` when it is not empty (the virtio-net header of a
/// PACKET_VNET_HDR socket). Returns how many were accepted before the first failure; Err only
/// when the very first one failed (errno then describes that frame).
pub fn send_batch(fd: RawFd, head: &[u8], frames: &[&[u8]], iov: &mut Vec<IoVecBuf>, msgs: &mut Vec<MMsgBuf>) -> Result<usize, i32> {
    if frames.is_empty() {
        return Ok(0);
    }
    iov.clear();
    msgs.clear();
    let per = if head.is_empty() { 1 } else { 2 };
    for f in frames {
        if per == 2 {
            iov.push(IoVecBuf(IoVec { iov_base: head.as_ptr() as *mut c_void, iov_len: head.len() }));
        }
        iov.push(IoVecBuf(IoVec { iov_base: f.as_ptr() as *mut c_void, iov_len: f.len() }));
    }
    // iov is complete (no more pushes), so pointers into it stay valid for the call.
    for k in 0..frames.len() {
        msgs.push(MMsgBuf(MMsgHdr {
            msg_hdr: MsgHdr {
                msg_name: std::ptr::null_mut(),
                msg_namelen: 0,
                msg_iov: &mut iov[k * per].0 as *mut IoVec,
                msg_iovlen: per,
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            },
            msg_len: 0,
        }));
    }
    // SAFETY: msgs/iov are live for the call and describe the borrowed frames (read-only for the
    // kernel despite the *mut in the C struct). MMsgBuf is repr(transparent) over mmsghdr.
    let n = unsafe { sendmmsg(fd, msgs.as_mut_ptr() as *mut MMsgHdr, frames.len() as c_uint, MSG_DONTWAIT) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Reusable scratch for send_batch (keeps the per-batch path allocation-free).
#[repr(transparent)]
pub struct IoVecBuf(IoVec);
#[repr(transparent)]
pub struct MMsgBuf(MMsgHdr);
// SAFETY: the raw pointers inside are only meaningful during one send_batch call and are rewritten
// on every call; carrying the (stale) buffers to another thread is harmless.
unsafe impl Send for IoVecBuf {}
unsafe impl Send for MMsgBuf {}

/// A shared read/write mapping of a packet socket's ring, unmapped on drop.
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel; access is serialised by the port
// mutex that owns the Mmap.
unsafe impl Send for Mmap {}

impl Mmap {
    pub fn map_shared(fd: RawFd, len: usize) -> Result<Mmap, i32> {
        // SAFETY: asks the kernel for a fresh mapping; no existing memory is affected.
        let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0) };
        if p as isize == -1 || p.is_null() {
            return Err(last_errno());
        }
        Ok(Mmap { ptr: p as *mut u8, len })
    }
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing references the ring after drop.
        unsafe {
            munmap(self.ptr as *mut c_void, self.len);
        }
    }
}

// =============================================================================================
// Node-API (js_native_api.h / node_api.h). Symbols are resolved from the node executable when
// the addon is dlopen()ed; the cdylib leaves them undefined (see .cargo/config.toml).
// =============================================================================================

#[repr(C)]
pub struct napi_env__ {
    _p: [u8; 0],
}
#[repr(C)]
pub struct napi_value__ {
    _p: [u8; 0],
}
#[repr(C)]
pub struct napi_callback_info__ {
    _p: [u8; 0],
}
pub type napi_env = *mut napi_env__;
pub type napi_value = *mut napi_value__;
pub type napi_callback_info = *mut napi_callback_info__;
type napi_status = c_int;
type napi_callback = Option<unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value>;

const NAPI_OK: napi_status = 0;
const NAPI_UNDEFINED: c_int = 0;
const NAPI_NULL: c_int = 1;
const NAPI_BOOLEAN: c_int = 2;
const NAPI_NUMBER: c_int = 3;
const NAPI_STRING: c_int = 4;

extern "C" {
    fn napi_create_function(env: napi_env, name: *const c_char, len: usize, cb: napi_callback, data: *mut c_void, result: *mut napi_value) -> napi_status;
    fn napi_get_cb_info(env: napi_env, info: napi_callback_info, argc: *mut usize, argv: *mut napi_value, this_arg: *mut napi_value, data: *mut *mut c_void) -> napi_status;
    fn napi_typeof(env: napi_env, value: napi_value, result: *mut c_int) -> napi_status;
    fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    fn napi_get_value_bool(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_value_string_utf8(env: napi_env, value: napi_value, buf: *mut c_char, bufsize: usize, result: *mut usize) -> napi_status;
    fn napi_is_arraybuffer(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_arraybuffer_info(env: napi_env, value: napi_value, data: *mut *mut c_void, byte_length: *mut usize) -> napi_status;
    fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_typedarray_info(env: napi_env, value: napi_value, ty: *mut c_int, length: *mut usize, data: *mut *mut c_void, arraybuffer: *mut napi_value, byte_offset: *mut usize) -> napi_status;
    fn napi_is_array(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_array_length(env: napi_env, value: napi_value, result: *mut u32) -> napi_status;
    fn napi_get_element(env: napi_env, object: napi_value, index: u32, result: *mut napi_value) -> napi_status;
    fn napi_create_array_with_length(env: napi_env, length: usize, result: *mut napi_value) -> napi_status;
    fn napi_set_element(env: napi_env, object: napi_value, index: u32, value: napi_value) -> napi_status;
    fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    fn napi_create_string_utf8(env: napi_env, s: *const c_char, length: usize, result: *mut napi_value) -> napi_status;
    fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_get_boolean(env: napi_env, value: bool, result: *mut napi_value) -> napi_status;
    fn napi_create_object(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_set_named_property(env: napi_env, object: napi_value, name: *const c_char, value: napi_value) -> napi_status;
    fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
}

fn check(status: napi_status, what: &str) -> NResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(NErr::new("EINVAL", format!("{what} (napi status {status})")))
    }
}

/// Arguments and value factory of one N-API callback. The lifetime ties borrowed JS memory
/// (ArrayBuffer contents) to the callback, which is as long as N-API guarantees it.
/// The most arguments a function reads (openAfPacket's 17); more are ignored.
const MAX_ARGS: usize = 20;

pub struct Js<'a> {
    env: napi_env,
    argv: [napi_value; MAX_ARGS],
    argc: usize,
    _scope: PhantomData<&'a ()>,
}

pub type Handler = for<'a> fn(&Js<'a>) -> NResult<napi_value>;

impl<'a> Js<'a> {
    fn arg(&self, i: usize) -> Option<napi_value> {
        if i < self.argc.min(self.argv.len()) {
            Some(self.argv[i])
        } else {
            None
        }
    }

    fn type_of(&self, v: napi_value) -> c_int {
        let mut t: c_int = NAPI_UNDEFINED;
        // SAFETY: env and v come from the current callback.
        unsafe { napi_typeof(self.env, v, &mut t) };
        t
    }

    pub fn is_nullish(&self, i: usize) -> bool {
        match self.arg(i) {
            None => true,
            Some(v) => {
                let t = self.type_of(v);
                t == NAPI_UNDEFINED || t == NAPI_NULL
            }
        }
    }

    pub fn number(&self, i: usize, what: &str) -> NResult<f64> {
        let v = self.arg(i).ok_or_else(|| NErr::new("EINVAL", format!("missing argument {what}")))?;
        if self.type_of(v) != NAPI_NUMBER {
            return Err(NErr::new("EINVAL", format!("argument {what} must be a number")));
        }
        let mut d = 0f64;
        // SAFETY: v is a number value of the current callback.
        check(unsafe { napi_get_value_double(self.env, v, &mut d) }, what)?;
        Ok(d)
    }

    /// An integer argument in [min, max]; fractions, NaN and out-of-range values are errors.
    pub fn int(&self, i: usize, what: &str, min: i64, max: i64) -> NResult<i64> {
        let d = self.number(i, what)?;
        if !d.is_finite() || d.fract() != 0.0 || d < min as f64 || d > max as f64 {
            return Err(NErr::new("EINVAL", format!("argument {what} must be an integer in [{min}, {max}], got {d}")));
        }
        Ok(d as i64)
    }

    pub fn boolean(&self, i: usize, what: &str) -> NResult<bool> {
        if self.is_nullish(i) {
            return Ok(false);
        }
        let v = self.arg(i).unwrap_or(std::ptr::null_mut());
        if self.type_of(v) != NAPI_BOOLEAN {
            return Err(NErr::new("EINVAL", format!("argument {what} must be a boolean")));
        }
        let mut b = false;
        // SAFETY: v is a boolean value of the current callback.
        check(unsafe { napi_get_value_bool(self.env, v, &mut b) }, what)?;
        Ok(b)
    }

    pub fn string(&self, i: usize, what: &str) -> NResult<String> {
        let v = self.arg(i).ok_or_else(|| NErr::new("EINVAL", format!("missing argument {what}")))?;
        if self.type_of(v) != NAPI_STRING {
            return Err(NErr::new("EINVAL", format!("argument {what} must be a string")));
        }
        let mut len = 0usize;
        // SAFETY: a null buffer asks only for the length.
        check(unsafe { napi_get_value_string_utf8(self.env, v, std::ptr::null_mut(), 0, &mut len) }, what)?;
        if len > 4096 {
            return Err(NErr::new("EINVAL", format!("argument {what} is too long ({len} bytes)")));
        }
        let mut buf = vec![0u8; len + 1];
        let mut got = 0usize;
        // SAFETY: buf has len+1 writable bytes (room for the NUL the API writes).
        check(unsafe { napi_get_value_string_utf8(self.env, v, buf.as_mut_ptr() as *mut c_char, buf.len(), &mut got) }, what)?;
        buf.truncate(got);
        String::from_utf8(buf).map_err(|_| NErr::new("EINVAL", format!("argument {what} is not valid UTF-8")))
    }

    pub fn opt_string(&self, i: usize, what: &str) -> NResult<Option<String>> {
        if self.is_nullish(i) {
            Ok(None)
        } else {
            self.string(i, what).map(Some)
        }
    }

    /// The bytes behind an ArrayBuffer, SharedArrayBuffer (via a typed array over it) or typed
    /// array argument. Valid until the callback returns; a detached buffer yields an empty slice.
    pub fn bytes(&self, i: usize, what: &str) -> NResult<&'a mut [u8]> {
        let v = self.arg(i).ok_or_else(|| NErr::new("EINVAL", format!("missing argument {what}")))?;
        let mut is_ab = false;
        let mut is_ta = false;
        let mut data: *mut c_void = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: out-pointers are valid locals; env/v come from the current callback.
        unsafe {
            napi_is_arraybuffer(self.env, v, &mut is_ab);
            if is_ab {
                check(napi_get_arraybuffer_info(self.env, v, &mut data, &mut len), what)?;
            } else {
                napi_is_typedarray(self.env, v, &mut is_ta);
                if !is_ta {
                    return Err(NErr::new("EINVAL", format!("argument {what} must be an ArrayBuffer or a typed array (e.g. new Uint8Array(memory.buffer))")));
                }
                let mut ty: c_int = 0;
                let mut elems = 0usize;
                let mut ab: napi_value = std::ptr::null_mut();
                let mut off = 0usize;
                check(napi_get_typedarray_info(self.env, v, &mut ty, &mut elems, &mut data, &mut ab, &mut off), what)?;
                let elem_size = match ty {
                    // napi_typedarray_type: int8, uint8, uint8_clamped | int16, uint16 |
                    // int32, uint32, float32 | float64, bigint64, biguint64
                    0..=2 => 1,
                    3..=4 => 2,
                    5..=7 => 4,
                    _ => 8,
                };
                len = elems * elem_size;
            }
        }
        if data.is_null() || len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: N-API guarantees `data` points to `len` bytes that stay alive (the value is held
        // by the callback's handle scope) until this callback returns, which bounds 'a. The JS
        // side does not run while we hold the slice; another thread writing the same
        // SharedArrayBuffer concurrently is excluded by the port contract (one worker owns a
        // batch's slots and descriptors during a burst).
        Ok(unsafe { std::slice::from_raw_parts_mut(data as *mut u8, len) })
    }

    pub fn int_array(&self, i: usize, what: &str, min: i64, max: i64) -> NResult<Vec<i64>> {
        let v = self.arg(i).ok_or_else(|| NErr::new("EINVAL", format!("missing argument {what}")))?;
        let mut is_arr = false;
        // SAFETY: valid out-pointer, current-callback values.
        unsafe { napi_is_array(self.env, v, &mut is_arr) };
        if !is_arr {
            return Err(NErr::new("EINVAL", format!("argument {what} must be an array")));
        }
        let mut n = 0u32;
        // SAFETY: v is an array.
        check(unsafe { napi_get_array_length(self.env, v, &mut n) }, what)?;
        if n > 4096 {
            return Err(NErr::new("EINVAL", format!("argument {what} has too many elements ({n})")));
        }
        let mut out = Vec::with_capacity(n as usize);
        for k in 0..n {
            let mut e: napi_value = std::ptr::null_mut();
            // SAFETY: k < length of the array v.
            check(unsafe { napi_get_element(self.env, v, k, &mut e) }, what)?;
            if self.type_of(e) != NAPI_NUMBER {
                return Err(NErr::new("EINVAL", format!("{what}[{k}] must be a number")));
            }
            let mut d = 0f64;
            // SAFETY: e is a number.
            check(unsafe { napi_get_value_double(self.env, e, &mut d) }, what)?;
            if !d.is_finite() || d.fract() != 0.0 || d < min as f64 || d > max as f64 {
                return Err(NErr::new("EINVAL", format!("{what}[{k}] must be an integer in [{min}, {max}]")));
            }
            out.push(d as i64);
        }
        Ok(out)
    }

    pub fn num(&self, d: f64) -> NResult<napi_value> {
        let mut r: napi_value = std::ptr::null_mut();
        // SAFETY: valid env and out-pointer.
        check(unsafe { napi_create_double(self.env, d, &mut r) }, "create number")?;
        Ok(r)
    }

    pub fn str(&self, s: &str) -> NResult<napi_value> {
        let mut r: napi_value = std::ptr::null_mut();
        // SAFETY: s is valid UTF-8 of the given byte length.
        check(unsafe { napi_create_string_utf8(self.env, s.as_ptr() as *const c_char, s.len(), &mut r) }, "create string")?;
        Ok(r)
    }

    pub fn boolean_value(&self, b: bool) -> NResult<napi_value> {
        let mut r: napi_value = std::ptr::null_mut();
        // SAFETY: valid env and out-pointer.
        check(unsafe { napi_get_boolean(self.env, b, &mut r) }, "boolean")?;
        Ok(r)
    }

    pub fn undefined(&self) -> NResult<napi_value> {
        let mut r: napi_value = std::ptr::null_mut();
        // SAFETY: valid env and out-pointer.
        check(unsafe { napi_get_undefined(self.env, &mut r) }, "undefined")?;
        Ok(r)
    }

    pub fn object(&self, fields: &[(&str, napi_value)]) -> NResult<napi_value> {
        let mut o: napi_value = std::ptr::null_mut();
        // SAFETY: valid env and out-pointer.
        check(unsafe { napi_create_object(self.env, &mut o) }, "create object")?;
        for (k, v) in fields {
            let name = cstring(k)?;
            // SAFETY: o is an object of this callback, name is NUL-terminated, v is a live value.
            check(unsafe { napi_set_named_property(self.env, o, name.as_ptr(), *v) }, "set property")?;
        }
        Ok(o)
    }

    pub fn array(&self, items: &[napi_value]) -> NResult<napi_value> {
        let mut a: napi_value = std::ptr::null_mut();
        // SAFETY: valid env and out-pointer.
        check(unsafe { napi_create_array_with_length(self.env, items.len(), &mut a) }, "create array")?;
        for (k, v) in items.iter().enumerate() {
            // SAFETY: a is an array of this callback, v a live value.
            check(unsafe { napi_set_element(self.env, a, k as u32, *v) }, "set element")?;
        }
        Ok(a)
    }
}

fn throw(env: napi_env, code: &str, msg: &str) {
    let code = CString::new(code.replace('\0', "")).unwrap_or_default();
    let msg = CString::new(msg.replace('\0', "")).unwrap_or_default();
    let mut pending = false;
    // SAFETY: env is the current callback's env; strings are NUL-terminated and live.
    unsafe {
        napi_is_exception_pending(env, &mut pending);
        if !pending {
            napi_throw_error(env, code.as_ptr(), msg.as_ptr());
        }
    }
}

/// The single C entry point for every exported function: the Rust handler travels in `data`.
/// Errors become JS exceptions with `code`; a panic is caught here so it never unwinds into node.
unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut js = Js { env, argv: [std::ptr::null_mut(); MAX_ARGS], argc: MAX_ARGS, _scope: PhantomData };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: argv has room for argc (MAX_ARGS) values; env/info are the ones node passed us.
    let st = unsafe { napi_get_cb_info(env, info, &mut js.argc, js.argv.as_mut_ptr(), std::ptr::null_mut(), &mut data) };
    if st != NAPI_OK || data.is_null() {
        throw(env, "EINVAL", "wdp-native: cannot read call arguments");
        return std::ptr::null_mut();
    }
    // SAFETY: `data` was produced from a `Handler` fn pointer in `export` below and fn pointers
    // and data pointers have the same size and representation on the supported targets.
    let handler: Handler = unsafe { std::mem::transmute::<*mut c_void, Handler>(data) };
    match catch_unwind(AssertUnwindSafe(|| handler(&js))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            throw(env, e.code, &e.msg);
            std::ptr::null_mut()
        }
        Err(_) => {
            throw(env, "EINTERNAL", "wdp-native: internal error (Rust panic caught at the N-API boundary)");
            std::ptr::null_mut()
        }
    }
}

/// Module initialisation context (napi_register_module_v1 arguments).
pub struct Exports {
    env: napi_env,
    exports: napi_value,
}

impl Exports {
    pub fn new(env: napi_env, exports: napi_value) -> Exports {
        Exports { env, exports }
    }
    pub fn exports(&self) -> napi_value {
        self.exports
    }

    pub fn function(&self, name: &str, f: Handler) -> NResult<()> {
        let cname = cstring(name)?;
        let mut fv: napi_value = std::ptr::null_mut();
        // SAFETY: the trampoline matches napi_callback; `f as *mut c_void` is turned back into a
        // Handler by the trampoline only.
        check(
            unsafe { napi_create_function(self.env, cname.as_ptr(), name.len(), Some(trampoline), f as *mut c_void, &mut fv) },
            "create function",
        )?;
        // SAFETY: exports is the object node passed to module init.
        check(unsafe { napi_set_named_property(self.env, self.exports, cname.as_ptr(), fv) }, "export function")
    }

    pub fn value(&self, name: &str, make: impl FnOnce(&Js<'_>) -> NResult<napi_value>) -> NResult<()> {
        let js = Js { env: self.env, argv: [std::ptr::null_mut(); MAX_ARGS], argc: 0, _scope: PhantomData };
        let v = make(&js)?;
        let cname = cstring(name)?;
        // SAFETY: exports is the object node passed to module init; v is a live value.
        check(unsafe { napi_set_named_property(self.env, self.exports, cname.as_ptr(), v) }, "export value")
    }

    pub fn throw(&self, e: &NErr) {
        throw(self.env, e.code, &e.msg);
    }
}

// =============================================================================================
// AF_XDP (linux/if_xdp.h), bpf(2) (linux/bpf.h) and epoll, for afxdp.rs
// =============================================================================================

pub const AF_XDP: c_int = 44;
pub const SOL_XDP: c_int = 283;
pub const XDP_MMAP_OFFSETS: c_int = 1;
pub const XDP_RX_RING: c_int = 2;
pub const XDP_TX_RING: c_int = 3;
pub const XDP_UMEM_REG: c_int = 4;
pub const XDP_UMEM_FILL_RING: c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: c_int = 6;
pub const XDP_STATISTICS: c_int = 7;
pub const XDP_OPTIONS: c_int = 8;
/// Frames one copy-mode transmit call may send (Linux 6.17+; default 32 = TX_BATCH_SIZE; from 32
/// to the TX ring's size, set after the TX ring; EACCES outside that, ENOPROTOOPT on older kernels).
pub const XDP_MAX_TX_SKB_BUDGET: c_int = 9;
/// struct xdp_options.flags: the socket is bound in zero-copy mode
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// struct xdp_statistics: cumulative per socket
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct XdpStatistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
pub const XDP_RING_NEED_WAKEUP: u32 = 1;
pub const XDP_PGOFF_RX_RING: i64 = 0;
pub const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct XdpUmemReg {
    pub addr: u64,
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    pub tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct XdpRingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct XdpMmapOffsets {
    pub rx: XdpRingOffset,
    pub tx: XdpRingOffset,
    pub fr: XdpRingOffset,
    pub cr: XdpRingOffset,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SockaddrXdp {
    sxdp_family: u16,
    sxdp_flags: u16,
    sxdp_ifindex: u32,
    sxdp_queue_id: u32,
    sxdp_shared_umem_fd: u32,
}

/// struct xdp_desc: one frame in the RX/TX rings
pub const XDP_DESC_SIZE: usize = 16;

const _: () = assert!(std::mem::size_of::<XdpUmemReg>() == 32);
const _: () = assert!(std::mem::size_of::<XdpMmapOffsets>() == 128);
const _: () = assert!(std::mem::size_of::<SockaddrXdp>() == 16);

pub fn bind_xdp(fd: RawFd, ifindex: u32, queue: u32, flags: u16) -> Result<(), i32> {
    let sa = SockaddrXdp { sxdp_family: AF_XDP as u16, sxdp_flags: flags, sxdp_ifindex: ifindex, sxdp_queue_id: queue, sxdp_shared_umem_fd: 0 };
    // SAFETY: sa is a fully initialised sockaddr_xdp of the size passed.
    let r = unsafe { bind(fd, &sa as *const SockaddrXdp as *const c_void, std::mem::size_of::<SockaddrXdp>() as c_uint) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// A zero-length sendto: kicks the kernel to process the TX ring (need_wakeup mode) or, with
/// MSG_DONTWAIT on a recv, to refill from the fill ring.
pub fn xdp_kick_tx(fd: RawFd) -> Result<(), i32> {
    // SAFETY: no buffer, no address: the kernel reads nothing.
    if unsafe { sendto(fd, std::ptr::null(), 0, MSG_DONTWAIT, std::ptr::null(), 0) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub fn xdp_kick_rx(fd: RawFd) -> Result<(), i32> {
    // SAFETY: zero-length read into no buffer.
    if unsafe { recv(fd, std::ptr::null_mut(), 0, MSG_DONTWAIT) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

impl Mmap {
    /// Maps `len` bytes of a socket's ring at page offset `off` (AF_XDP rings).
    pub fn map_ring(fd: RawFd, len: usize, off: i64) -> Result<Mmap, i32> {
        // SAFETY: asks the kernel for a fresh mapping; no existing memory is affected.
        let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off as c_long) };
        if p as isize == -1 || p.is_null() {
            return Err(last_errno());
        }
        Ok(Mmap { ptr: p as *mut u8, len })
    }

    /// Private anonymous memory (an AF_XDP UMEM), page-aligned.
    pub fn anonymous(len: usize) -> Result<Mmap, i32> {
        // SAFETY: a fresh anonymous mapping; no fd, no existing memory affected.
        let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) };
        if p as isize == -1 || p.is_null() {
            return Err(last_errno());
        }
        Ok(Mmap { ptr: p as *mut u8, len })
    }
}

const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;
const SYS_BPF: c_long = 321; // x86-64
pub const BPF_MAP_CREATE: c_int = 0;
pub const BPF_MAP_UPDATE_ELEM: c_int = 2;
pub const BPF_PROG_LOAD: c_int = 5;
pub const BPF_LINK_CREATE: c_int = 28;
pub const BPF_MAP_LOOKUP_ELEM: c_int = 1;
pub const BPF_MAP_DELETE_ELEM: c_int = 3;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
pub const BPF_TCX_INGRESS: u32 = 46;
pub const BPF_PROG_TYPE_XDP: u32 = 6;
pub const BPF_XDP: u32 = 37;

/// union bpf_attr as a zeroed 128-byte buffer with the fields each command uses written at their
/// offsets (linux/bpf.h); the kernel requires every byte past what it knows to be zero.
#[repr(C, align(8))]
pub struct BpfAttr(pub [u8; 128]);

impl BpfAttr {
    pub fn new() -> BpfAttr {
        BpfAttr([0; 128])
    }
    pub fn u32_at(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    pub fn u64_at(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

/// bpf(cmd, attr): a new fd for the commands that create one, else 0.
pub fn sys_bpf(cmd: c_int, attr: &mut BpfAttr) -> Result<c_int, i32> {
    // SAFETY: attr is a live 128-byte buffer; every pointer written into it by callers points to
    // memory that outlives this call.
    let r = unsafe { syscall(SYS_BPF, cmd as c_long, attr.0.as_mut_ptr(), attr.0.len() as c_long) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as c_int)
    }
}

pub fn bpf_fd(cmd: c_int, attr: &mut BpfAttr) -> Result<OwnedFd, i32> {
    let fd = sys_bpf(cmd, attr)?;
    owned(fd)
}

/// BPF_PROG_LOAD of `insns` as a program of `kind` named `name` (at most 15 bytes); on failure the
/// errno and the verifier's log.
pub fn bpf_prog_load(kind: u32, name: &[u8], insns: &[u64]) -> Result<OwnedFd, (i32, String)> {
    let license = b"Dual BSD/GPL\0";
    let mut log = vec![0u8; 65536];
    let mut a = BpfAttr::new();
    a.u32_at(0, kind)
        .u32_at(4, insns.len() as u32)
        .u64_at(8, insns.as_ptr() as u64)
        .u64_at(16, license.as_ptr() as u64)
        .u32_at(24, 1)
        .u32_at(28, log.len() as u32)
        .u64_at(32, log.as_mut_ptr() as u64);
    let n = name.len().min(15);
    a.0[48..48 + n].copy_from_slice(&name[..n]);
    // the verifier gives up with EAGAIN when a signal arrives for the thread while it runs (a
    // Node process gets them: its workers, a debugger, SIGCHLD), however valid the program: load
    // it again, as libbpf does (seen once in a test run: "processed 114 insns", then EAGAIN)
    let mut tries = 0;
    loop {
        match bpf_fd(BPF_PROG_LOAD, &mut a) {
            Err(e) if e == EAGAIN && tries < 5 => tries += 1,
            r => return r.map_err(|e| (e, String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).trim().to_string())),
        }
    }
}

/// BPF_LINK_CREATE: `prog` attached to the interface `ifindex` at `attach_type` (BPF_XDP with its
/// XDP_FLAGS_*, BPF_TCX_INGRESS); the attachment lasts as long as the returned fd.
pub fn bpf_link_create(prog: &OwnedFd, ifindex: u32, attach_type: u32, flags: u32) -> Result<OwnedFd, i32> {
    let mut a = BpfAttr::new();
    a.u32_at(0, prog.as_raw_fd() as u32).u32_at(4, ifindex).u32_at(8, attach_type).u32_at(12, flags);
    bpf_fd(BPF_LINK_CREATE, &mut a)
}

/// BPF_MAP_CREATE of a map of `kind` with keys and values of these sizes.
pub fn bpf_map_create(kind: u32, key_size: u32, value_size: u32, entries: u32) -> Result<OwnedFd, i32> {
    let mut a = BpfAttr::new();
    a.u32_at(0, kind).u32_at(4, key_size).u32_at(8, value_size).u32_at(12, entries);
    bpf_fd(BPF_MAP_CREATE, &mut a)
}

/// BPF_MAP_UPDATE_ELEM (any flags: create or replace); key and value of the map's sizes.
pub fn bpf_map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> Result<(), i32> {
    let mut a = BpfAttr::new();
    a.u32_at(0, map.as_raw_fd() as u32).u64_at(8, key.as_ptr() as u64).u64_at(16, value.as_ptr() as u64);
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

/// BPF_MAP_DELETE_ELEM; ENOENT when the key is absent.
pub fn bpf_map_delete(map: &OwnedFd, key: &[u8]) -> Result<(), i32> {
    let mut a = BpfAttr::new();
    a.u32_at(0, map.as_raw_fd() as u32).u64_at(8, key.as_ptr() as u64);
    sys_bpf(BPF_MAP_DELETE_ELEM, &mut a).map(|_| ())
}

/// BPF_MAP_LOOKUP_ELEM into `out` (for a per-CPU map: a value for every possible CPU).
pub fn bpf_map_lookup(map: &OwnedFd, key: &[u8], out: &mut [u8]) -> Result<(), i32> {
    let mut a = BpfAttr::new();
    a.u32_at(0, map.as_raw_fd() as u32).u64_at(8, key.as_ptr() as u64).u64_at(16, out.as_mut_ptr() as u64);
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut a).map(|_| ())
}

const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CLOEXEC: c_int = 0o2000000;
const EPOLLIN: u32 = 1;

#[repr(C, packed)]
struct EpollEvent {
    events: u32,
    data: u64,
}

/// An epoll fd watching every fd in `fds` for input: one pollable fd for a multi-queue device.
pub fn epoll_of(fds: &[RawFd]) -> Result<OwnedFd, i32> {
    // SAFETY: plain syscall.
    let ep = owned(unsafe { epoll_create1(EPOLL_CLOEXEC) })?;
    for &fd in fds {
        let mut ev = EpollEvent { events: EPOLLIN, data: fd as u64 };
        // SAFETY: ev is a live epoll_event; ep and fd are open.
        if unsafe { epoll_ctl(ep.as_raw_fd(), EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(last_errno());
        }
    }
    Ok(ep)
}

const SIOCETHTOOL: c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// Receive queues of an interface (ethtool channels: rx + combined), via the ethtool ioctl (no
/// ethtool binary needed). None when the driver does not report channels.
pub fn rx_queue_count(ctl: RawFd, name: &str) -> Option<u32> {
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other, max_combined, rx_count, tx_count,
    // other_count, combined_count
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    let mut r = IfReq::new(name);
    r.data[..8].copy_from_slice(&(ch.as_mut_ptr() as u64).to_ne_bytes());
    ioctl_ifreq(ctl, SIOCETHTOOL, &mut r).ok()?;
    Some(ch[5] + ch[8])
}

extern "C" {
    fn syscall(n: c_long, ...) -> c_long;
    fn sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const c_void, len: c_uint) -> isize;
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(ep: c_int, op: c_int, fd: c_int, ev: *mut EpollEvent) -> c_int;
}

/// CPUs a cpu_set_t (glibc's 1024-bit mask) can name.
pub const CPU_SETSIZE: usize = 1024;

/// sched_setaffinity(0, ...): the calling thread alone runs only on `cpus` (each < CPU_SETSIZE).
pub fn set_thread_affinity(cpus: &[usize]) -> Result<(), i32> {
    let mut mask = [0u64; CPU_SETSIZE / 64];
    for &c in cpus {
        mask[c / 64] |= 1 << (c % 64);
    }
    // SAFETY: mask is a live cpu_set_t-sized buffer; pid 0 is the calling thread.
    if unsafe { sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr() as *const c_void) } < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

extern "C" {
    fn sched_setaffinity(pid: c_int, size: usize, mask: *const c_void) -> c_int;
}

/// CLOCK_MONOTONIC in ns: the clock BPF programs read with bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    const CLOCK_MONOTONIC: c_int = 1;
    let mut ts = [0i64; 2];
    // SAFETY: ts is a live struct timespec (two longs on x86-64).
    unsafe { clock_gettime(CLOCK_MONOTONIC, ts.as_mut_ptr() as *mut c_void) };
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

extern "C" {
    fn clock_gettime(clock: c_int, ts: *mut c_void) -> c_int;
}

/// A new descriptor (close-on-exec) for the same open file: a BPF map shared by two ports.
pub fn dup_fd(fd: RawFd) -> Result<OwnedFd, i32> {
    const F_DUPFD_CLOEXEC: c_int = 1030;
    // SAFETY: plain syscall on an fd the caller keeps open for the call.
    owned(unsafe { fcntl(fd, F_DUPFD_CLOEXEC, 0) })
}

extern "C" {
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
}
