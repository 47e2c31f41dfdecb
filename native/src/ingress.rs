//! Exclusive interfaces: frames an AF_PACKET port reads must not also go up the node's IP stack
//! when the interface belongs to wdp alone. Packet sockets see a frame (ptype_all taps) before
//! the netdev ingress hook does, so an nftables netdev-family chain on the interface whose policy
//! is drop leaves the port's copy intact and saves the kernel its ip_rcv work for every frame
//! (which, on a veth, the sender's CPU pays).
//!
//! Why nftables and not a tc clsact filter: the tc route needs cls_matchall/act_gact (or cls_bpf),
//! modules a minimal kernel may lack, while nf_tables is what kube-proxy's nftables mode needs
//! anyway. Installed with the `nft` tool rather than by netlink messages built here: one
//! setup-time process per interface. Reference-counted per (namespace, interface) in this
//! process, so several sockets on one interface (fanout) share one chain, removed with the last.
//! The table's name is fixed per interface (wdp_own_<ifname>), so a run that died without
//! removing it is replaced, not duplicated, on the next start. When nft is missing or refuses,
//! the port still opens (the kernel then also sees the frames, as before) and says why.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::ffi::{NErr, NResult};

static OWNED: Mutex<Option<HashMap<(String, String), u32>>> = Mutex::new(None);

/// The system's nft. Looked up in the sbin/bin directories before PATH: under npm/npx, PATH starts
/// with node_modules/.bin, where @vercel/nft (a dependency of the build tools) installs an `nft`
/// command that accepts anything and does nothing.
fn nft_path() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft")
}

/// Runs `nft -f -` with `script` on stdin.
fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new(nft_path())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| format!("writing to nft: {e}"))?;
    }
    let o = child.wait_with_output().map_err(|e| format!("waiting for nft: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

fn table(ifname: &str) -> String {
    format!("wdp_own_{ifname}")
}

/// Drops every frame arriving on `ifname` (in `netns`) at netdev ingress, after packet sockets
/// saw it. The interface name was validated (no quotes or spaces) when the port was opened.
pub fn take(ifname: &str, netns: Option<&str>) -> NResult<()> {
    let key = (netns.unwrap_or("").to_string(), ifname.to_string());
    let mut g = OWNED.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(users) = map.get_mut(&key) {
        *users += 1;
        return Ok(());
    }
    let t = table(ifname);
    // add + delete + add: one atomic transaction that also replaces a table left by a dead run
    let script = format!(
        "table netdev {t}\ndelete table netdev {t}\ntable netdev {t} {{\n  chain ingress {{\n    type filter hook ingress device \"{ifname}\" priority 0; policy drop;\n  }}\n}}\n"
    );
    crate::netns::run_in(netns, || {
        nft(&script).map_err(|e| NErr::new("EIO", format!("cannot install the ingress drop on '{ifname}' (nft: {e})")))
    })?;
    map.insert(key, 1);
    Ok(())
}

/// Undoes take() once; the last user removes the table.
pub fn give_back(ifname: &str, netns: Option<&str>) {
    let key = (netns.unwrap_or("").to_string(), ifname.to_string());
    let mut g = OWNED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = g.as_mut() else { return };
    let Some(users) = map.get_mut(&key) else { return };
    *users -= 1;
    if *users > 0 {
        return;
    }
    map.remove(&key);
    // Best effort: the interface (or its namespace) may be gone already, taking the chain along.
    let script = format!("delete table netdev {}\n", table(ifname));
    let _ = crate::netns::run_in(netns, || {
        let _ = nft(&script);
        Ok(())
    });
}
