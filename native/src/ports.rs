//! The port table: every open device with its interface, namespace and counters, in a handle
//! table (handles.rs).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::{Counters, Device, Link};
use crate::ffi::{NErr, NResult};
use crate::handles::Handles;

pub struct Port {
    pub link: Link,
    pub netns: Option<String>,
    pub dev: Box<dyn Device>,
    pub c: Counters,
}

static PORTS: Handles<Mutex<Port>> = Handles::new("native port");

pub fn lock(p: &Arc<Mutex<Port>>) -> MutexGuard<'_, Port> {
    crate::handles::lock(p)
}

pub fn register(link: Link, netns: Option<String>, dev: Box<dyn Device>) -> u32 {
    PORTS.insert(Mutex::new(Port { link, netns, dev, c: Counters::default() }))
}

pub fn get(handle: i64) -> NResult<Arc<Mutex<Port>>> {
    PORTS.get(handle)
}

/// Drops the table's reference; the fd and ring go away once a burst running on another thread
/// (holding its own Arc) finishes. `remove`: also delete an interface that would outlive the fd
/// (a persistent TAP); the port is closed even when that fails, and the error is returned.
pub fn remove(handle: i64, remove_interface: bool) -> NResult<()> {
    let p = PORTS.remove(handle)?;
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
