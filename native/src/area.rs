//! The burst area: the Wasm packet arena (frame slots) and its descriptor array, seen from Rust.
//! A leaf module: devices write received frames into it and read frames to send from it.

use crate::ffi::{NErr, NResult};

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
