//! TAP ports: /dev/net/tun with IFF_TAP | IFF_NO_PI, non-blocking; one read()/write() per frame
//! (the tun driver has no batch interface short of io_uring, which costs far more code).
//!
//! Offloads (default on): IFF_VNET_HDR puts a virtio-net header before every frame, and
//! TUNSETOFFLOAD lets the kernel side hand over CHECKSUM_PARTIAL frames and TCP/UDP super-frames
//! (one read per up to 64 KiB instead of per segment). offload.rs finishes them before the core
//! sees them; frames written carry an empty header (finished wire frames).
//!
//! Persistence: a persistent TAP (TUNSETPERSIST) outlives the process, with its addresses and
//! routes (in whatever namespace it has been given). Opening a name that exists attaches to it
//! (TUNSETIFF on an existing device), also inside another namespace, so a restarted daemon picks
//! up the pod's interface as it was. Such a device is deleted only by release(remove = true)
//! (close with removeInterface) or remove_persistent().

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::area::Area;
use crate::device::{tx_frame_len, validate_ifname, Counters, Device, Link};
use crate::ffi::{self, IfReq, NErr, NResult};
use crate::offload::{self, Segmenter, VnetHdr, SUPER_MAX, VNET_HDR_LEN, VNET_HDR_NONE};

pub struct Tap {
    name: String,
    fd: OwnedFd,
    vnet: bool,
    persist: bool,
    /// Tail of a frame that did not fit its slot lands here, so its true length is known and the
    /// frame can be dropped and counted as oversize instead of being delivered truncated.
    /// With offloads on, super-frames are cut from here (see rx_burst).
    seg: Segmenter,
    vnet_hdr: [u8; VNET_HDR_LEN],
}

pub struct TapOpts {
    pub name: String,
    pub netns: Option<String>,
    pub multi_queue: bool,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub persist: bool,
    pub offloads: bool,
}

fn perm(name: &str, e: i32, what: &str) -> NErr {
    if e == ffi::EPERM || e == ffi::EACCES {
        NErr::new("EPERM", format!("CAP_NET_ADMIN required to {what} TAP '{name}' (run as root or grant CAP_NET_ADMIN)"))
    } else {
        NErr::errno(e, format!("{what} TAP '{name}'"))
    }
}

/// Opens /dev/net/tun and creates or attaches the TAP `name` in the current namespace.
fn attach(name: &str, flags: i16) -> NResult<(OwnedFd, String)> {
    let fd = ffi::open_tun().map_err(|e| {
        if e == ffi::ENOENT || e == ffi::ENODEV || e == ffi::ENXIO {
            NErr::new("ENODEV", format!("cannot create TAP '{name}': /dev/net/tun is missing (tun driver not loaded?)"))
        } else {
            perm(name, e, "open /dev/net/tun for")
        }
    })?;
    let mut ifr = IfReq::new(name);
    ifr.set_flags(flags);
    let mq = flags & ffi::IFF_MULTI_QUEUE != 0;
    ffi::ioctl_ifreq(fd.as_raw_fd(), ffi::TUNSETIFF, &mut ifr).map_err(|e| match e {
        ffi::EBUSY => NErr::new(
            "EBUSY",
            format!("TAP '{name}' is busy: another process already holds it (single-queue TAPs take one owner; use multiQueue on a multi-queue TAP)"),
        ),
        ffi::EINVAL => NErr::new(
            "EINVAL",
            format!("cannot attach TAP '{name}': the interface exists but is not a TAP, or its queue mode differs (multiQueue={mq})"),
        ),
        _ => perm(name, e, "create/attach"),
    })?;
    Ok((fd, ifr.name_str()))
}

/// Offloads the kernel may leave to us; USO (kernel 6.2+) is dropped where it is unknown.
fn set_offloads(fd: RawFd, name: &str) -> NResult<()> {
    let base = ffi::TUN_F_CSUM | ffi::TUN_F_TSO4 | ffi::TUN_F_TSO6 | ffi::TUN_F_TSO_ECN;
    if ffi::ioctl_int(fd, ffi::TUNSETOFFLOAD, (base | ffi::TUN_F_USO4 | ffi::TUN_F_USO6) as _).is_ok() {
        return Ok(());
    }
    ffi::ioctl_int(fd, ffi::TUNSETOFFLOAD, base as _).map_err(|e| NErr::errno(e, format!("TUNSETOFFLOAD on TAP '{name}'")))
}

pub fn open(o: TapOpts) -> NResult<(Link, Tap)> {
    validate_ifname(&o.name)?;
    let ns = o.netns.clone();
    let (fd, name, ifindex, mac) = crate::netns::run_in(ns.as_deref(), move || {
        let mut flags = ffi::IFF_TAP | ffi::IFF_NO_PI;
        if o.multi_queue {
            flags |= ffi::IFF_MULTI_QUEUE;
        }
        if o.offloads {
            flags |= ffi::IFF_VNET_HDR;
        }
        let (fd, name) = attach(&o.name, flags)?;
        if o.offloads {
            set_offloads(fd.as_raw_fd(), &name)?;
        }
        // Persistence is set either way: a device left persistent by an earlier run that is now
        // opened without `persist` goes back to living only as long as its fd.
        ffi::ioctl_int(fd.as_raw_fd(), ffi::TUNSETPERSIST, o.persist as _).map_err(|e| perm(&name, e, "set persistence of"))?;
        // Interface ioctls need some socket of this namespace; a datagram socket is the cheapest.
        let ctl = ffi::sys_socket(ffi::AF_INET, ffi::SOCK_DGRAM | ffi::SOCK_CLOEXEC, 0)
            .map_err(|e| NErr::errno(e, format!("control socket for TAP '{name}'")))?;
        let c = ctl.as_raw_fd();
        if let Some(mac) = o.mac {
            let mut r = IfReq::new(&name);
            ffi::ioctl_ifreq(c, ffi::SIOCGIFHWADDR, &mut r).map_err(|e| NErr::errno(e, format!("read MAC of TAP '{name}'")))?;
            // Setting the MAC of an attached, up device is refused by some kernels (EBUSY) and
            // pointless when it already has it.
            if r.hwaddr() != mac {
                let mut r = IfReq::new(&name);
                r.set_hwaddr(&mac);
                ffi::ioctl_ifreq(c, ffi::SIOCSIFHWADDR, &mut r).map_err(|e| perm(&name, e, "set the MAC of"))?;
            }
        }
        if let Some(mtu) = o.mtu {
            let mut r = IfReq::new(&name);
            r.set_int(mtu as i32);
            ffi::ioctl_ifreq(c, ffi::SIOCSIFMTU, &mut r).map_err(|e| {
                if e == ffi::EINVAL {
                    NErr::new("EINVAL", format!("MTU {mtu} rejected for TAP '{name}' (valid: 68..=65521)"))
                } else {
                    perm(&name, e, "set the MTU of")
                }
            })?;
        }
        if o.up {
            let mut r = IfReq::new(&name);
            ffi::ioctl_ifreq(c, ffi::SIOCGIFFLAGS, &mut r).map_err(|e| NErr::errno(e, format!("read flags of TAP '{name}'")))?;
            let f = r.flags();
            if f & ffi::IFF_UP == 0 {
                r.set_flags(f | ffi::IFF_UP);
                ffi::ioctl_ifreq(c, ffi::SIOCSIFFLAGS, &mut r).map_err(|e| perm(&name, e, "bring up"))?;
            }
        }
        let mut r = IfReq::new(&name);
        ffi::ioctl_ifreq(c, ffi::SIOCGIFHWADDR, &mut r).map_err(|e| NErr::errno(e, format!("read MAC of TAP '{name}'")))?;
        let mac = r.hwaddr();
        let mut r = IfReq::new(&name);
        ffi::ioctl_ifreq(c, ffi::SIOCGIFINDEX, &mut r).map_err(|e| NErr::errno(e, format!("read ifindex of TAP '{name}'")))?;
        Ok((fd, name, r.int() as u32, mac))
    })?;
    let tap = Tap { name: name.clone(), fd, vnet: o.offloads, persist: o.persist, seg: Segmenter::new(), vnet_hdr: [0; VNET_HDR_LEN] };
    Ok((Link { name, ifindex, mac }, tap))
}

/// Deletes the persistent TAP `name` in `netns` (attach, clear TUNSETPERSIST, close). False when
/// there is no such interface. A TAP another process holds open is EBUSY (single-queue).
pub fn remove_persistent(name: &str, netns: Option<&str>, multi_queue: bool) -> NResult<bool> {
    validate_ifname(name)?;
    crate::netns::run_in(netns, || {
        if ffi::nametoindex(name)? == 0 {
            return Ok(false);
        }
        let mut flags = ffi::IFF_TAP | ffi::IFF_NO_PI;
        if multi_queue {
            flags |= ffi::IFF_MULTI_QUEUE;
        }
        let (fd, name) = attach(name, flags)?;
        ffi::ioctl_int(fd.as_raw_fd(), ffi::TUNSETPERSIST, 0).map_err(|e| perm(&name, e, "clear persistence of"))?;
        Ok(true) // dropping fd deletes the now non-persistent device
    })
}

impl Tap {
    /// Reads one frame into slot i; returns its length (header excluded), None when none is waiting.
    fn read_one(&mut self, area: &mut Area, i: usize) -> Result<Option<usize>, i32> {
        let cap = area.cap();
        let fd = self.fd.as_raw_fd();
        // The overflow is the segmenter's buffer past `cap`, so a super-frame only needs its
        // first `cap` bytes copied over from the slot to be whole there.
        let (hdr, seg) = (&mut self.vnet_hdr, &mut self.seg);
        let over = &mut seg.buf_mut()[cap..cap + SUPER_MAX];
        let head: &mut [u8] = if self.vnet { &mut hdr[..] } else { &mut [] };
        loop {
            let mut parts: [&mut [u8]; 3] = [&mut *head, &mut *area.slot_mut(i), &mut *over];
            match ffi::read_parts(fd, &mut parts) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(n.saturating_sub(if self.vnet { VNET_HDR_LEN } else { 0 }))),
                Err(ffi::EAGAIN) => return Ok(None),
                Err(ffi::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Device for Tap {
    fn kind(&self) -> &'static str {
        "tap"
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn offloads(&self) -> bool {
        self.vnet
    }

    fn persistent(&self) -> bool {
        self.persist
    }

    fn rx_burst(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> NResult<usize> {
        let cap = area.cap();
        let mut got = self.seg.drain(area, first, max, in_port, c);
        // Bounded so a flood of oversize frames cannot keep one call busy forever.
        let mut budget = max * 2 + 16;
        while got < max && budget > 0 {
            budget -= 1;
            let i = first + got;
            let n = match self.read_one(area, i) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    c.rx_errors += 1;
                    if got > 0 {
                        break; // report what we have; the error repeats on the next call
                    }
                    return Err(NErr::errno(e, format!("read from TAP '{}'", self.name)));
                }
            };
            let h = if self.vnet { VnetHdr::parse(&self.vnet_hdr) } else { VnetHdr::default() };
            if h.is_gso() {
                let head = n.min(cap);
                self.seg.buf_mut()[..head].copy_from_slice(&area.slot(i)[..head]);
                if self.seg.start(n, &h, cap, c) {
                    got += self.seg.drain(area, i, max - got, in_port, c);
                }
                continue;
            }
            if n > cap {
                c.oversize += 1;
                c.rx_dropped += 1;
                continue;
            }
            if n == 0 || !offload::finish_in_slot(area, i, n, &h, c) {
                continue;
            }
            area.set_rx(i, n, in_port);
            c.rx_packets += 1;
            c.rx_bytes += n as u64;
            got += 1;
        }
        Ok(got)
    }

    fn tx_burst(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize {
        let fd = self.fd.as_raw_fd();
        let cap = area.cap();
        let head: &[u8] = if self.vnet { &VNET_HDR_NONE } else { &[] };
        let mut sent = 0usize;
        for i in 0..count {
            let Some(len) = tx_frame_len(area, i, port_index, 1, cap, c) else { continue };
            let frame = &area.slot(i)[..len];
            let mut r = ffi::write_parts(fd, head, frame);
            if r == Err(ffi::EINTR) {
                r = ffi::write_parts(fd, head, frame);
            }
            match r {
                Ok(_) => {
                    c.tx_packets += 1;
                    c.tx_bytes += len as u64;
                    sent += 1;
                }
                Err(_) => c.tx_errors += 1,
            }
        }
        sent
    }

    fn release(&mut self, remove: bool) -> NResult<()> {
        if remove && self.persist {
            ffi::ioctl_int(self.fd.as_raw_fd(), ffi::TUNSETPERSIST, 0)
                .map_err(|e| perm(&self.name, e, "clear persistence of"))?;
            self.persist = false;
        }
        Ok(())
    }
}
