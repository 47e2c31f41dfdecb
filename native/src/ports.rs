//! The port table: every open device with its interface, namespace and counters.
//!
//! Ports live in a process-wide table indexed by a small integer handle, not in JS objects: a port
//! opened on the main thread can be driven from a worker_thread by passing the number, and no JS
//! reference is kept across environments. Handles are never reused, so a stale handle reports
//! ECLOSED instead of silently hitting a newer port.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::{Counters, Device, Link};
use crate::ffi::{NErr, NResult};

pub struct Port {
    pub link: Link,
    pub netns: Option<String>,
    pub dev: Box<dyn Device>,
    pub c: Counters,
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

pub fn register(link: Link, netns: Option<String>, dev: Box<dyn Device>) -> u32 {
    let mut t = table();
    t.push(Some(Arc::new(Mutex::new(Port { link, netns, dev, c: Counters::default() }))));
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
/// (holding its own Arc) finishes. `remove`: also delete an interface that would outlive the fd
/// (a persistent TAP); the port is closed even when that fails, and the error is returned.
pub fn remove(handle: i64, remove_interface: bool) -> NResult<()> {
    let p = {
        let mut t = table();
        if handle < 1 || handle as usize > t.len() {
            return Err(NErr::new("EINVAL", format!("no native port with handle {handle}")));
        }
        t[handle as usize - 1]
            .take()
            .ok_or_else(|| NErr::new("ECLOSED", format!("native port {handle} is already closed")))?
    };
    let r = lock(&p).dev.release(remove_interface);
    r
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
