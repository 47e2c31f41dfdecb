//! TAP ports: /dev/net/tun with IFF_TAP | IFF_NO_PI, non-blocking; one read()/write() per frame
//! (the tun driver has no batch interface short of io_uring, which costs far more code).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::ffi::{self, IfReq, NErr, NResult};
use crate::ports::{validate_ifname, Area, Counters, Port, Dev};

pub struct Tap {
    fd: OwnedFd,
    /// Tail of a frame that did not fit its slot lands here, so its true length is known and the
    /// frame can be dropped and counted as oversize instead of being delivered truncated.
    overflow: Vec<u8>,
}

pub struct TapOpts {
    pub name: String,
    pub netns: Option<String>,
    pub multi_queue: bool,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub up: bool,
}

fn perm(name: &str, e: i32, what: &str) -> NErr {
    if e == ffi::EPERM || e == ffi::EACCES {
        NErr::new("EPERM", format!("CAP_NET_ADMIN required to {what} TAP '{name}' (run as root or grant CAP_NET_ADMIN)"))
    } else {
        NErr::errno(e, format!("{what} TAP '{name}'"))
    }
}

pub fn open(o: TapOpts) -> NResult<Port> {
    validate_ifname(&o.name)?;
    let ns = o.netns.clone();
    let (fd, name, ifindex, mac) = crate::netns::run_in(ns.as_deref(), move || {
        let fd = ffi::open_tun().map_err(|e| {
            if e == ffi::ENOENT || e == ffi::ENODEV || e == ffi::ENXIO {
                NErr::new("ENODEV", format!("cannot create TAP '{}': /dev/net/tun is missing (tun driver not loaded?)", o.name))
            } else {
                perm(&o.name, e, "open /dev/net/tun for")
            }
        })?;
        let mut ifr = IfReq::new(&o.name);
        let mut flags = ffi::IFF_TAP | ffi::IFF_NO_PI;
        if o.multi_queue {
            flags |= ffi::IFF_MULTI_QUEUE;
        }
        ifr.set_flags(flags);
        ffi::ioctl_ifreq(fd.as_raw_fd(), ffi::TUNSETIFF, &mut ifr).map_err(|e| match e {
            ffi::EBUSY => NErr::new(
                "EBUSY",
                format!("TAP '{}' is busy: another process already holds it (single-queue TAPs take one owner; use multiQueue on a multi-queue TAP)", o.name),
            ),
            ffi::EINVAL => NErr::new(
                "EINVAL",
                format!("cannot attach TAP '{}': the interface exists but is not a TAP, or its queue mode differs (multiQueue={})", o.name, o.multi_queue),
            ),
            _ => perm(&o.name, e, "create/attach"),
        })?;
        let name = ifr.name_str();
        // Interface ioctls need some socket of this namespace; a datagram socket is the cheapest.
        let ctl = ffi::sys_socket(ffi::AF_INET, ffi::SOCK_DGRAM | ffi::SOCK_CLOEXEC, 0)
            .map_err(|e| NErr::errno(e, format!("control socket for TAP '{name}'")))?;
        let c = ctl.as_raw_fd();
        if let Some(mac) = o.mac {
            let mut r = IfReq::new(&name);
            r.set_hwaddr(&mac);
            ffi::ioctl_ifreq(c, ffi::SIOCSIFHWADDR, &mut r).map_err(|e| perm(&name, e, "set the MAC of"))?;
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
    let raw = fd.as_raw_fd();
    Ok(Port {
        name,
        ifindex,
        mac,
        netns: o.netns,
        fd: raw,
        dev: Dev::Tap(Tap { fd, overflow: vec![0u8; 65536 + 4096] }),
        c: Counters::default(),
    })
}

impl Tap {
    pub fn rx(&mut self, name: &str, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> NResult<usize> {
        let cap = area.cap();
        let fd = self.fd.as_raw_fd();
        let mut got = 0usize;
        // Bounded so a flood of oversize frames cannot keep one call busy forever.
        let mut budget = max * 2 + 16;
        while got < max && budget > 0 {
            budget -= 1;
            let i = first + got;
            match ffi::read2(fd, area.slot_mut(i), &mut self.overflow) {
                Ok(n) if n > cap => {
                    c.oversize += 1;
                    c.rx_dropped += 1;
                }
                Ok(0) => break,
                Ok(n) => {
                    area.set_rx(i, n, in_port);
                    c.rx_packets += 1;
                    c.rx_bytes += n as u64;
                    got += 1;
                }
                Err(ffi::EAGAIN) => break,
                Err(ffi::EINTR) => continue,
                Err(e) => {
                    c.rx_errors += 1;
                    if got > 0 {
                        break; // report what we have; the error repeats on the next call
                    }
                    return Err(NErr::errno(e, format!("read from TAP '{name}'")));
                }
            }
        }
        Ok(got)
    }

    pub fn tx(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize {
        let fd = self.fd.as_raw_fd();
        let cap = area.cap();
        let mut sent = 0usize;
        for i in 0..count {
            let Some(len) = area.tx_len(i, port_index) else { continue };
            if len == 0 || len > cap {
                c.oversize += 1;
                c.tx_errors += 1;
                continue;
            }
            let frame = &area.slot(i)[..len];
            let mut r = ffi::write_all_once(fd, frame);
            if r == Err(ffi::EINTR) {
                r = ffi::write_all_once(fd, frame);
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
}
