//! Port registry, counters and the burst area (the Wasm arena + descriptor array seen from Rust).
//!
//! Ports live in a process-wide table indexed by a small integer handle, not in JS objects: a port
//! opened on the main thread can be driven from a worker_thread by passing the number, and no JS
//! reference is kept across environments. Handles are never reused, so a stale handle reports
//! ECLOSED instead of silently hitting a newer port.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::afpacket::Packet;
use crate::ffi::{NErr, NResult};
use crate::tap::Tap;

// Descriptor layout, mirrored from assembly/layout.ts (exported to JS as `layout` so a test can
// check they never drift).
pub const DESC_SIZE: usize = 16;
pub const D_LEN: usize = 0;
pub const D_IN_PORT: usize = 2;
pub const D_OUT_PORT: usize = 4;
pub const D_VERDICT: usize = 6;
pub const V_FORWARD: u8 = 1;
pub const V_REJECT: u8 = 2;
/// D_LEN is a u16, so no frame longer than this can be described, whatever the slot size.
pub const MAX_FRAME: usize = 65535;

#[derive(Default, Clone, Copy, Debug)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// every frame lost on receive: oversize + kernel ring drops
    pub rx_dropped: u64,
    pub tx_errors: u64,
    /// frames longer than a slot (rx: dropped, also in rx_dropped) or with a bad D_LEN (tx)
    pub oversize: u64,
    pub rx_errors: u64,
    /// AF_PACKET: frames the kernel dropped because the ring was full (PACKET_STATISTICS)
    pub kernel_drops: u64,
}

pub enum Dev {
    Tap(Tap),
    Packet(Packet),
}

pub struct Port {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub netns: Option<String>,
    pub fd: i32,
    pub dev: Dev,
    pub c: Counters,
}

impl Port {
    pub fn kind(&self) -> &'static str {
        match self.dev {
            Dev::Tap(_) => "tap",
            Dev::Packet(_) => "af_packet",
        }
    }
}

type Slot = Option<Arc<Mutex<Port>>>;
static PORTS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

fn table() -> MutexGuard<'static, Vec<Slot>> {
    // A poisoned lock only means a panic happened while it was held; the table itself (a Vec of
    // Options) is always consistent, so keep going.
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn lock(p: &Arc<Mutex<Port>>) -> MutexGuard<'_, Port> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn register(p: Port) -> u32 {
    let mut t = table();
    t.push(Some(Arc::new(Mutex::new(p))));
    t.len() as u32
}

pub fn get(handle: i64) -> NResult<Arc<Mutex<Port>>> {
    let t = table();
    if handle < 1 || handle as usize > t.len() {
        return Err(NErr::new("EINVAL", format!("no native port with handle {handle}")));
    }
    t[handle as usize - 1]
        .clone()
        .ok_or_else(|| NErr::new("ECLOSED", format!("native port {handle} is closed")))
}

/// Drops the table's reference; the fd and ring go away once a burst running on another thread
/// (holding its own Arc) finishes.
pub fn remove(handle: i64) -> NResult<()> {
    let mut t = table();
    if handle < 1 || handle as usize > t.len() {
        return Err(NErr::new("EINVAL", format!("no native port with handle {handle}")));
    }
    match t[handle as usize - 1].take() {
        Some(_) => Ok(()),
        None => Err(NErr::new("ECLOSED", format!("native port {handle} is already closed"))),
    }
}

/// The Wasm memory seen as slots + descriptors, bounds-checked once per burst.
pub struct Area<'a> {
    pub mem: &'a mut [u8],
    pub arena_off: usize,
    pub slot_size: usize,
    pub desc_off: usize,
}

impl<'a> Area<'a> {
    /// Slots and descriptors [first, first+n) must lie inside the memory.
    pub fn check(&self, first: usize, n: usize) -> NResult<()> {
        if self.slot_size == 0 {
            return Err(NErr::new("EINVAL", "slotSize must be > 0"));
        }
        let end = first.checked_add(n).ok_or_else(|| NErr::new("ERANGE", "slot range overflows"))?;
        let len = self.mem.len();
        let slots_end = end.checked_mul(self.slot_size).and_then(|b| b.checked_add(self.arena_off));
        let descs_end = end.checked_mul(DESC_SIZE).and_then(|b| b.checked_add(self.desc_off));
        match (slots_end, descs_end) {
            (Some(s), Some(d)) if s <= len && d <= len => Ok(()),
            _ => Err(NErr::new(
                "ERANGE",
                format!(
                    "burst area out of bounds: slots/descriptors {first}..{end} (arenaOff {}, slotSize {}, descOff {}) exceed the {len}-byte memory{}",
                    self.arena_off,
                    self.slot_size,
                    self.desc_off,
                    if len == 0 { " (detached? pass the current memory.buffer)" } else { "" }
                ),
            )),
        }
    }

    /// Largest frame a slot can take and a descriptor can describe.
    pub fn cap(&self) -> usize {
        self.slot_size.min(MAX_FRAME)
    }

    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let start = self.arena_off + i * self.slot_size;
        let cap = self.cap();
        &mut self.mem[start..start + cap]
    }

    pub fn slot(&self, i: usize) -> &[u8] {
        let start = self.arena_off + i * self.slot_size;
        &self.mem[start..start + self.cap()]
    }

    pub fn set_rx(&mut self, i: usize, len: usize, in_port: u16) {
        let d = self.desc_off + i * DESC_SIZE;
        self.mem[d + D_LEN..d + D_LEN + 2].copy_from_slice(&(len as u16).to_le_bytes());
        self.mem[d + D_IN_PORT..d + D_IN_PORT + 2].copy_from_slice(&in_port.to_le_bytes());
    }

    /// (len, out_port, verdict) of descriptor i.
    pub fn desc(&self, i: usize) -> (usize, u16, u8) {
        let d = self.desc_off + i * DESC_SIZE;
        let m = &self.mem;
        let len = u16::from_le_bytes([m[d + D_LEN], m[d + D_LEN + 1]]) as usize;
        let out = u16::from_le_bytes([m[d + D_OUT_PORT], m[d + D_OUT_PORT + 1]]);
        (len, out, m[d + D_VERDICT])
    }

    /// Is descriptor i a frame to transmit on `port_index`? Returns its length.
    pub fn tx_len(&self, i: usize, port_index: u16) -> Option<usize> {
        let (len, out, verdict) = self.desc(i);
        if (verdict == V_FORWARD || verdict == V_REJECT) && out == port_index {
            Some(len)
        } else {
            None
        }
    }
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

pub fn format_mac(m: &[u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

pub fn parse_mac(s: &str) -> NResult<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || NErr::new("EINVAL", format!("invalid MAC address '{s}' (expected aa:bb:cc:dd:ee:ff)"));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if m[0] & 1 == 1 {
        return Err(NErr::new("EINVAL", format!("MAC address '{s}' is multicast; an interface needs a unicast address")));
    }
    Ok(m)
}
