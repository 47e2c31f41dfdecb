//! Process-wide tables of native objects (ports, wakers, kernel paths) indexed by small integer
//! handles, not JS objects: an object opened on the main thread can be driven from a
//! worker_thread by passing the number, and no JS reference is kept across environments. Handles
//! start at 1 and are never reused, so a stale handle reports ECLOSED instead of silently reaching
//! a newer object.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::ffi::{NErr, NResult};

pub struct Handles<T> {
    /// what an error calls one: "no {what} with handle 3", "{what} 3 is closed"
    what: &'static str,
    slots: Mutex<Vec<Option<Arc<T>>>>,
}

impl<T> Handles<T> {
    pub const fn new(what: &'static str) -> Handles<T> {
        Handles { what, slots: Mutex::new(Vec::new()) }
    }

    fn table(&self) -> MutexGuard<'_, Vec<Option<Arc<T>>>> {
        // A poisoned lock only means a panic happened while it was held; the table itself (a Vec
        // of Options) is always consistent, so keep going.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, v: T) -> u32 {
        let mut t = self.table();
        t.push(Some(Arc::new(v)));
        t.len() as u32
    }

    pub fn get(&self, handle: i64) -> NResult<Arc<T>> {
        let t = self.table();
        if handle < 1 || handle as usize > t.len() {
            return Err(NErr::new("EINVAL", format!("no {} with handle {handle}", self.what)));
        }
        t[handle as usize - 1].clone().ok_or_else(|| NErr::new("ECLOSED", format!("{} {handle} is closed", self.what)))
    }

    /// Takes the table's reference out: the object goes once the last other holder (a call
    /// running on another thread) drops its own.
    pub fn remove(&self, handle: i64) -> NResult<Arc<T>> {
        let mut t = self.table();
        if handle < 1 || handle as usize > t.len() {
            return Err(NErr::new("EINVAL", format!("no {} with handle {handle}", self.what)));
        }
        t[handle as usize - 1].take().ok_or_else(|| NErr::new("ECLOSED", format!("{} {handle} is already closed", self.what)))
    }
}

/// A table entry's lock; a poisoned one is taken over (the object's state is its own to keep
/// consistent across a panic, as every call into it returns a Result).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_never_reused_and_errors_name_the_kind() {
        let t: Handles<u8> = Handles::new("thing");
        assert_eq!(t.insert(1), 1);
        assert_eq!(t.insert(2), 2);
        assert_eq!(*t.remove(1).unwrap(), 1);
        assert_eq!(t.insert(3), 3);
        assert_eq!(t.get(1).err().unwrap().msg, "thing 1 is closed");
        assert_eq!(t.remove(1).err().unwrap().msg, "thing 1 is already closed");
        assert_eq!(t.get(0).err().unwrap().msg, "no thing with handle 0");
        assert_eq!(t.get(4).err().unwrap().code, "EINVAL");
        assert_eq!(*t.get(3).unwrap(), 3);
    }
}
