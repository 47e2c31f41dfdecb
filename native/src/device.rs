//! What every port device (TAP, AF_PACKET, and the coming AF_XDP) is to the rest of the addon: a
//! receive burst into the arena, a transmit burst out of it, and a descriptor to poll. The port
//! table (ports.rs) holds devices as `Box<dyn Device>`; devices import only this module, area.rs,
//! offload.rs, netns.rs and ffi.rs, never the table, so there is no module cycle.

use std::os::fd::{OwnedFd, RawFd};

use crate::area::Area;
use crate::ffi::{NErr, NResult};

#[derive(Default, Clone, Copy, Debug)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// every frame lost on receive: oversize + kernel ring drops + frames whose offload could not
    /// be completed
    pub rx_dropped: u64,
    pub tx_errors: u64,
    /// frames longer than a slot (rx: dropped, also in rx_dropped) or with a bad D_LEN (tx)
    pub oversize: u64,
    pub rx_errors: u64,
    /// AF_PACKET: frames the kernel dropped because the ring was full (PACKET_STATISTICS)
    pub kernel_drops: u64,
    /// received frames whose checksum the sender left to offload (CHECKSUM_PARTIAL), finished here
    pub csum_finished: u64,
    /// received GSO/GRO super-frames cut into wire-sized segments here, and the segments made
    pub gso_frames: u64,
    pub gso_segments: u64,
    /// offloaded frames that could not be finished (unsupported GSO type, malformed headers);
    /// also in rx_dropped
    pub offload_errors: u64,
    /// AF_XDP: transmit kicks (sendto calls); tx_packets / tx_kicks is the frames per kick
    pub tx_kicks: u64,
    /// AF_XDP: sockets the kernel unbound (their interface left the namespace): the port receives
    /// and sends nothing on them until it is opened again
    pub unbound_queues: u64,
}

/// The interface a device was opened on, as the kernel reports it.
pub struct Link {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// What an AF_XDP port joining another one's XDP program needs of it (Device::xsk_map): the
/// XSKMAP its sockets go into, the interface and its queue count. Declared here, not in afxdp.rs,
/// so the Device trait does not depend on one of its implementations.
pub struct XdpShare {
    pub map: OwnedFd,
    pub ifindex: u32,
    pub queues: u32,
}

pub trait Device: Send {
    fn kind(&self) -> &'static str;
    /// The descriptor poll(2) waits on for received frames.
    fn fd(&self) -> RawFd;
    /// Receives up to `max` frames into slots first..first+max-1 and fills their descriptors.
    fn rx_burst(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> NResult<usize>;
    /// Sends the frames among the first `count` descriptors addressed to `port_index`.
    fn tx_burst(&mut self, area: &Area, count: usize, port_index: u16, c: &mut Counters) -> usize;
    /// Whether received frames are waiting, seen without a system call (an AF_XDP RX ring's
    /// indexes); false when the device cannot tell that way (poll(2) then does).
    fn rx_waiting(&self) -> bool {
        false
    }
    /// Bytes of kernel ring memory mapped for this device (0 when it has none).
    fn ring_bytes(&self) -> usize {
        0
    }
    /// Whether frames carry a virtio-net header (checksum/segmentation offloads understood).
    fn offloads(&self) -> bool {
        false
    }
    /// Whether frames move without a copy between the driver and the port's memory (AF_XDP
    /// zero-copy, chosen by the kernel at bind when the driver supports it).
    fn zero_copy(&self) -> bool {
        false
    }
    /// AF_XDP: this port's XDP program and XSKMAP, for another port on the same interface to
    /// join with other queues (afxdp::XdpOpts::share). None for every other device.
    fn xsk_map(&self) -> Option<XdpShare> {
        None
    }
    /// Whether the interface outlives the device (a persistent TAP).
    fn persistent(&self) -> bool {
        false
    }
    /// Folds counters kept by the kernel into `c` (called when stats are read).
    fn poll_kernel_stats(&mut self, _c: &mut Counters) {}
    /// poll reported POLLERR: clear and count the pending socket error.
    fn clear_error(&mut self, _c: &mut Counters) {}
    /// Called once before the device is dropped. `remove`: also delete an interface that would
    /// otherwise outlive it (a persistent TAP).
    fn release(&mut self, _remove: bool) -> NResult<()> {
        Ok(())
    }
}

/// The length of frame `i` of a tx burst when it is for `port_index` and `min..=cap` bytes long.
/// A frame for this port outside that range is counted (oversize, tx_errors) and skipped: every
/// device's tx burst applies the same rule.
pub fn tx_frame_len(area: &Area, i: usize, port_index: u16, min: usize, cap: usize, c: &mut Counters) -> Option<usize> {
    let len = area.tx_len(i, port_index)?;
    if len < min || len > cap {
        c.oversize += 1;
        c.tx_errors += 1;
        return None;
    }
    Some(len)
}

/// The MTU of interface `name` in namespace `netns` (this one when None): SIOCGIFMTU on a datagram
/// socket of that namespace — a setns pair and one ioctl, no fork (the worker reads it for every
/// port it opens: the core answers packets too big for it, docs/core.md "Egress MTU").
pub fn interface_mtu(name: &str, netns: Option<&str>) -> NResult<u32> {
    validate_ifname(name)?;
    let name = name.to_string();
    crate::netns::run_in(netns, move || {
        let ctl = crate::ffi::sys_socket(crate::ffi::AF_INET, crate::ffi::SOCK_DGRAM | crate::ffi::SOCK_CLOEXEC, 0)
            .map_err(|e| NErr::errno(e, "control socket"))?;
        let mut r = crate::ffi::IfReq::new(&name);
        crate::ffi::ioctl_ifreq(std::os::fd::AsRawFd::as_raw_fd(&ctl), crate::ffi::SIOCGIFMTU, &mut r).map_err(|e| {
            if e == crate::ffi::ENODEV { NErr::new("ENODEV", format!("interface '{name}' does not exist")) } else { NErr::errno(e, format!("read the MTU of '{name}'")) }
        })?;
        Ok(r.int() as u32)
    })
}

pub fn validate_ifname(name: &str) -> NResult<()> {
    if name.is_empty() {
        return Err(NErr::new("EINVAL", "interface name is empty"));
    }
    if name.len() > 15 {
        return Err(NErr::new(
            "ENAMETOOLONG",
            format!("interface name '{name}' is too long ({} bytes, Linux allows at most 15)", name.len()),
        ));
    }
    if name == "." || name == ".." || name.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0) {
        return Err(NErr::new("EINVAL", format!("invalid interface name '{name}'")));
    }
    Ok(())
}
