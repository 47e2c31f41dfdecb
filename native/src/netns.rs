//! Running setup code inside another network namespace without moving any node thread.
//!
//! Sockets and TAP devices belong to the namespace that was current when they were created, and
//! keep working from any thread afterwards. So port setup runs on a short-lived helper thread that
//! setns()es into the target namespace; the node process (and its workers) stay where they are.
//! Cost: one thread spawn per open, which is setup-path only.

use crate::ffi::{open_netns, sys_setns_net, NErr, NResult, EPERM};

/// A bare name means /var/run/netns/NAME (what `ip netns add` creates); anything with a slash is
/// taken as a path (e.g. /proc/PID/ns/net).
pub fn resolve(ns: &str) -> NResult<String> {
    if ns.is_empty() {
        return Err(NErr::new("EINVAL", "network namespace name is empty"));
    }
    if ns.contains('/') {
        Ok(ns.to_string())
    } else if ns == "." || ns == ".." {
        Err(NErr::new("EINVAL", format!("invalid network namespace name {ns:?}")))
    } else {
        Ok(format!("/var/run/netns/{ns}"))
    }
}

pub fn run_in<T: Send>(ns: Option<&str>, f: impl FnOnce() -> NResult<T> + Send) -> NResult<T> {
    let Some(ns) = ns else { return f() };
    let path = resolve(ns)?;
    let fd = open_netns(&path)?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            sys_setns_net(&fd).map_err(|e| {
                if e == EPERM {
                    NErr::new("EPERM", format!("CAP_SYS_ADMIN required to enter network namespace {path}"))
                } else {
                    NErr::errno(e, format!("setns into {path}"))
                }
            })?;
            f()
        });
        worker
            .join()
            .unwrap_or_else(|_| Err(NErr::new("EINTERNAL", "wdp-native: namespace helper thread panicked")))
    })
}
