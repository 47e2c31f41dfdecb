//! wdp-native: TAP and AF_PACKET ports for the wdp Wasm forwarding core, as a Node-API addon.
//!
//! JS API (wrapped by src/ports/native.ts; every error is thrown as an Error with a `code`):
//!   openTap(name, netns|null, multiQueue, mac|null, mtu (0 = keep), up, persist = false,
//!           offloads = true) -> PortInfo
//!   openAfPacket(name, netns|null, blockSize, blockCount, blockTimeoutMs, fanoutGroup (-1 = none),
//!                fanoutMode, promisc, ignoreOutgoing, qdiscBypass, ringVersion = 3, frameSize = 2048,
//!                offloads = true, fanoutProgram = null, otherHost = true, ownMac = null,
//!                kernelPath = null | handle of a kernel path attached to the interface in mode
//!                'packet': the socket filter then skips the frames it takes) -> PortInfo
//!                (fanoutProgram: classic BPF instructions, 8 bytes each as struct sock_filter in
//!                little-endian, for fanoutMode 6 = PACKET_FANOUT_CBPF; otherHost false: unicast
//!                frames addressed to another MAC than the interface's at open are dropped by a
//!                socket filter; ownMac: the MAC compared with instead, the one the port answers
//!                ARP/ND with when that is not the interface's)
//!   openAfXdp(name, netns|null, offloads = true, rxRing = 4096,
//!                xdpMode = null | 'native' | 'generic', queues = null (all) | [q...],
//!                shareWith = null | handle of an AF_XDP port on the same interface whose program
//!                and XSKMAP this one joins with its queues, otherHost = true: false passes unicast
//!                frames addressed to another MAC (than ownMac, default the interface's) to the
//!                kernel instead, ownMac = null, kernelPath = null | handle of a kernel path
//!                attached to the interface in mode 'xdp': frames it takes pass to it)
//!                -> PortInfo   (code ENOXDP when XDP/AF_XDP is unavailable)
//!   info(handle) -> PortInfo            PortInfo = {handle, kind, fd, ifindex, name, mac, netns,
//!                                                   ringBytes, offloads, persistent, zeroCopy}
//!   rxBurst(handle, memory, arenaOff, slotSize, descOff, first, max, inPortIndex) -> frames received
//!   txBurst(handle, memory, arenaOff, slotSize, descOff, count, portIndex) -> frames sent
//!   wait(handles[], timeoutMs, waker = 0) -> handles that are readable (or in error); also
//!                                       returns when the waker (if any) was woken, and resets it
//!   wakerOpen() -> handle               wake(waker)      wakerClose(waker)
//!   wakerStats(waker) -> {posted, taken} (wake calls; wake-ups a wait took, several may coalesce)
//!   setThreadAffinity(cpus[])   the calling thread runs only on these CPUs (a pinned worker)
//!   rxQueues(name, netns|null) -> the interface's receive queues (those an AF_XDP port binds)
//!   interfaceMtu(name, netns|null) -> the interface's MTU (SIOCGIFMTU in that namespace)
//!   stats(handle) -> counters          close(handle, removeInterface = false)
//!   removeTap(name, netns|null, multiQueue = false) -> whether a persistent TAP was deleted
//!   adviseHugePages(memory) -> bytes marked MADV_HUGEPAGE (the whole 2 MiB pages inside it)
//!   kernelPathOpen(names "a,b", netns|null, capacity) -> handle   (ENOTCX before Linux 6.6)
//!   kernelPathAttach(handle, name, netns|null, mode 'xdp'|'packet'|'alone') -> ifindex
//!   kernelPathDetach(handle, name) -> bool
//!   kernelPathSet(handle, entries) -> n   kernelPathRemove(handle, keys) -> n
//!   kernelPathFlush(handle) -> generation
//!   kernelPathStats(handle) -> {frames, bytes, declined, generation}
//!   kernelPathClose(handle)      (an established-flow path in the kernel: kernel_path.rs)
//!   layout: the descriptor constants compiled in (checked against assembly/layout.ts by a test)
//! `memory` is an ArrayBuffer or a typed array over the Wasm memory (use a Uint8Array for a
//! SharedArrayBuffer).

mod afpacket;
mod afxdp;
mod area;
mod bpf_asm;
mod device;
mod ffi;
mod handles;
mod kernel_path;
mod netns;
mod offload;
mod ports;
mod tap;
mod waker;

use area::Area;
use device::{Device, Link};
use ffi::{napi_env, napi_value, Exports, Js, NErr, NResult};
use ports::Port;

fn port_info(js: &Js, handle: u32, p: &Port) -> NResult<napi_value> {
    let netns = match &p.netns {
        Some(s) => js.str(s)?,
        None => js.undefined()?,
    };
    js.object(&[
        ("handle", js.num(handle as f64)?),
        ("kind", js.str(p.dev.kind())?),
        ("fd", js.num(p.dev.fd() as f64)?),
        ("ifindex", js.num(p.link.ifindex as f64)?),
        ("name", js.str(&p.link.name)?),
        ("mac", js.str(&ports::format_mac(&p.link.mac))?),
        ("netns", netns),
        ("ringBytes", js.num(p.dev.ring_bytes() as f64)?),
        ("offloads", js.boolean_value(p.dev.offloads())?),
        ("persistent", js.boolean_value(p.dev.persistent())?),
        ("zeroCopy", js.boolean_value(p.dev.zero_copy())?),
    ])
}

fn opt_mac(js: &Js, i: usize) -> NResult<Option<[u8; 6]>> {
    match js.opt_string(i, "mac")? {
        Some(s) if !s.is_empty() => Ok(Some(ports::parse_mac(&s)?)),
        _ => Ok(None),
    }
}

fn open_tap(js: &Js) -> NResult<napi_value> {
    let mtu = js.int(4, "mtu", 0, 65535)? as u32;
    let opts = tap::TapOpts {
        name: js.string(0, "name")?,
        netns: js.opt_string(1, "netns")?.filter(|s| !s.is_empty()),
        multi_queue: js.boolean(2, "multiQueue")?,
        mac: opt_mac(js, 3)?,
        mtu: if mtu == 0 { None } else { Some(mtu) },
        up: js.boolean(5, "up")?,
        persist: opt_bool(js, 6, "persist", false)?,
        offloads: opt_bool(js, 7, "offloads", true)?,
    };
    let netns = opts.netns.clone();
    let (link, dev) = tap::open(opts)?;
    register(js, link, netns, Box::new(dev))
}

fn opt_bool(js: &Js, i: usize, what: &str, default: bool) -> NResult<bool> {
    if js.is_nullish(i) {
        Ok(default)
    } else {
        js.boolean(i, what)
    }
}

fn register(js: &Js, link: Link, netns: Option<String>, dev: Box<dyn Device>) -> NResult<napi_value> {
    let h = ports::register(link, netns, dev);
    let p = ports::get(h as i64)?;
    let g = ports::lock(&p);
    port_info(js, h, &g)
}

fn remove_tap(js: &Js) -> NResult<napi_value> {
    let name = js.string(0, "name")?;
    let netns = js.opt_string(1, "netns")?.filter(|s| !s.is_empty());
    let mq = opt_bool(js, 2, "multiQueue", false)?;
    js.boolean_value(tap::remove_persistent(&name, netns.as_deref(), mq)?)
}

fn open_af_packet(js: &Js) -> NResult<napi_value> {
    let group = js.int(5, "fanoutGroup", -1, 65535)?;
    let mode = js.int(6, "fanoutMode", 0, 7)?;
    let opts = afpacket::PacketOpts {
        name: js.string(0, "name")?,
        netns: js.opt_string(1, "netns")?.filter(|s| !s.is_empty()),
        block_size: js.int(2, "blockSize", 0, u32::MAX as i64)? as u32,
        block_count: js.int(3, "blockCount", 0, u32::MAX as i64)? as u32,
        block_timeout_ms: js.int(4, "blockTimeoutMs", 0, u32::MAX as i64)? as u32,
        ring_version: if js.is_nullish(10) { 3 } else { js.int(10, "ringVersion", 2, 3)? as u8 },
        frame_size: if js.is_nullish(11) { 2048 } else { js.int(11, "frameSize", 0, u32::MAX as i64)? as u32 },
        fanout: if group < 0 { None } else { Some((group as u16, mode as u16)) },
        promisc: js.boolean(7, "promisc")?,
        ignore_outgoing: js.boolean(8, "ignoreOutgoing")?,
        qdisc_bypass: js.boolean(9, "qdiscBypass")?,
        offloads: opt_bool(js, 12, "offloads", true)?,
        fanout_prog: if js.is_nullish(13) { Vec::new() } else { cbpf_program(js.bytes(13, "fanoutProgram")?)? },
        other_host: opt_bool(js, 14, "otherHost", true)?,
        own_mac: opt_mac(js, 15)?,
        kernel_path: if js.is_nullish(16) { None } else { Some(kernel_path::get(js.int(16, "kernelPath", 1, u32::MAX as i64)?)?) },
    };
    if (opts.fanout.map(|f| f.1) == Some(ffi::PACKET_FANOUT_CBPF)) != !opts.fanout_prog.is_empty() {
        return Err(NErr::new("EINVAL", "fanoutProgram is given exactly when fanoutMode is 6 (PACKET_FANOUT_CBPF)"));
    }
    let netns = opts.netns.clone();
    let (link, dev) = afpacket::open(opts)?;
    register(js, link, netns, Box::new(dev))
}

/// struct sock_filter records (8 bytes, little-endian) from JS; 1..=4096 of them (BPF_MAXINSNS).
fn cbpf_program(b: &[u8]) -> NResult<Vec<ffi::SockFilter>> {
    if b.is_empty() || b.len() % 8 != 0 || b.len() / 8 > 4096 {
        return Err(NErr::new("EINVAL", format!("fanoutProgram must be 1..4096 instructions of 8 bytes, got {} bytes", b.len())));
    }
    Ok(b.chunks_exact(8)
        .map(|c| ffi::SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

fn open_af_xdp(js: &Js) -> NResult<napi_value> {
    let opts = afxdp::XdpOpts {
        name: js.string(0, "name")?,
        netns: js.opt_string(1, "netns")?.filter(|s| !s.is_empty()),
        offloads: opt_bool(js, 2, "offloads", true)?,
        other_host: opt_bool(js, 7, "otherHost", true)?,
        own_mac: opt_mac(js, 8)?,
        // range-checked by afxdp::open with a message naming the option
        rx_ring: if js.is_nullish(3) { afxdp::RX_RING_DEFAULT } else { js.int(3, "rxRing", 0, u32::MAX as i64)? as u32 },
        generic: match js.opt_string(4, "xdpMode")?.as_deref() {
            None | Some("") => None,
            Some("native") => Some(false),
            Some("generic") => Some(true),
            Some(m) => return Err(NErr::new("EINVAL", format!("xdpMode must be \"native\" or \"generic\", got \"{m}\""))),
        },
        queues: if js.is_nullish(5) { None } else { Some(js.int_array(5, "queues", 0, afxdp::MAX_QUEUES as i64 - 1)?.into_iter().map(|q| q as u32).collect()) },
        share: if js.is_nullish(6) {
            None
        } else {
            let h = js.int(6, "shareWith", 1, u32::MAX as i64)?;
            let p = ports::get(h)?;
            let g = ports::lock(&p);
            Some(g.dev.xsk_map().ok_or_else(|| NErr::new("EINVAL", format!("port {h} is not an AF_XDP port: nothing to share")))?)
        },
        kernel_path: None,
    };
    // the kernel path stays open (and its maps with it) while the program loads
    let kp = if js.is_nullish(9) { None } else { Some(kernel_path::get(js.int(9, "kernelPath", 1, u32::MAX as i64)?)?) };
    let opts = afxdp::XdpOpts { kernel_path: kp.as_ref().map(|k| kernel_path::lock(k).match_maps()), ..opts };
    let netns = opts.netns.clone();
    let (link, dev) = afxdp::open(opts)?;
    drop(kp);
    register(js, link, netns, Box::new(dev))
}

/// setThreadAffinity(cpus[]): the calling thread (a forwarding worker) runs only on these CPUs.
fn set_thread_affinity(js: &Js) -> NResult<napi_value> {
    let cpus = js.int_array(0, "cpus", 0, ffi::CPU_SETSIZE as i64 - 1)?;
    if cpus.is_empty() {
        return Err(NErr::new("EINVAL", "cpus must name at least one CPU"));
    }
    ffi::set_thread_affinity(&cpus.iter().map(|&c| c as usize).collect::<Vec<_>>())
        .map_err(|e| NErr::errno(e, format!("sched_setaffinity({cpus:?})")))?;
    js.undefined()
}

/// rxQueues(name, netns|null): the interface's receive queues (what an AF_XDP port binds).
fn rx_queues(js: &Js) -> NResult<napi_value> {
    let name = js.string(0, "name")?;
    let netns = js.opt_string(1, "netns")?.filter(|s| !s.is_empty());
    let n = afxdp::rx_queues(&name, netns.as_deref())?;
    js.num(n as f64)
}

/// interfaceMtu(name, netns|null): the interface's MTU.
fn interface_mtu(js: &Js) -> NResult<napi_value> {
    let name = js.string(0, "name")?;
    let netns = js.opt_string(1, "netns")?.filter(|s| !s.is_empty());
    let n = device::interface_mtu(&name, netns.as_deref())?;
    js.num(n as f64)
}

fn handle_arg(js: &Js, i: usize) -> NResult<i64> {
    js.int(i, "port handle", 0, u32::MAX as i64)
}

fn info(js: &Js) -> NResult<napi_value> {
    let h = handle_arg(js, 0)?;
    let p = ports::get(h)?;
    let g = ports::lock(&p);
    port_info(js, h as u32, &g)
}

fn area<'a>(js: &Js<'a>, mem: usize, arena: usize, slot: usize, desc: usize) -> NResult<Area<'a>> {
    Ok(Area {
        mem: js.bytes(mem, "memory")?,
        arena_off: js.int(arena, "arenaOff", 0, u32::MAX as i64)? as usize,
        slot_size: js.int(slot, "slotSize", 1, u32::MAX as i64)? as usize,
        desc_off: js.int(desc, "descOff", 0, u32::MAX as i64)? as usize,
    })
}

fn advise_huge_pages(js: &Js) -> NResult<napi_value> {
    let mem = js.bytes(0, "memory")?;
    let n = ffi::advise_huge_pages(mem).map_err(|e| NErr::errno(e, "madvise(MADV_HUGEPAGE)"))?;
    js.num(n as f64)
}

fn rx_burst(js: &Js) -> NResult<napi_value> {
    let h = handle_arg(js, 0)?;
    let mut a = area(js, 1, 2, 3, 4)?;
    let first = js.int(5, "first", 0, u32::MAX as i64)? as usize;
    let max = js.int(6, "max", 0, 1 << 20)? as usize;
    let in_port = js.int(7, "inPortIndex", 0, 0xffff)? as u16;
    a.check(first, max)?;
    let p = ports::get(h)?;
    let mut g = ports::lock(&p);
    let port = &mut *g;
    let n = port.dev.rx_burst(&mut a, first, max, in_port, &mut port.c)?;
    // (a shared cache line every worker writes: not for an empty burst)
    if n > 0 {
        RX_FRAMES.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
    js.num(n as f64)
}

/// Frames every port of the process has received (all threads): the daemon's main thread reads
/// the packet rate from it without asking the workers (src/daemon/autogroup.ts).
static RX_FRAMES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn rx_frames(js: &Js) -> NResult<napi_value> {
    js.num(RX_FRAMES.load(std::sync::atomic::Ordering::Relaxed) as f64)
}

fn tx_burst(js: &Js) -> NResult<napi_value> {
    let h = handle_arg(js, 0)?;
    let a = area(js, 1, 2, 3, 4)?;
    let count = js.int(5, "count", 0, 1 << 20)? as usize;
    let port_index = js.int(6, "portIndex", 0, 0xffff)? as u16;
    a.check(0, count)?;
    let p = ports::get(h)?;
    let mut g = ports::lock(&p);
    let port = &mut *g;
    let n = port.dev.tx_burst(&a, count, port_index, &mut port.c);
    js.num(n as f64)
}

/// Blocks in poll(2) on the ports' fds (and the waker's eventfd) until one is readable or the
/// timeout passes; calls `ready(k)` for each readable port, k its position in `handles`. A
/// readable waker is reset and counted; a port reporting POLLERR has its socket error cleared and
/// counted.
///
/// Ports whose received frames show without a system call (AF_XDP: the RX ring's indexes) are
/// looked at first: when one has frames, they are the ready ones at once, no poll(2) — a worker
/// waits right after a burst that did not fill its batch, and frames that came meanwhile cost it
/// a ring read, not a system call. The waker is left as it is then (still readable if written:
/// the next wait takes it). Up to POLL_STACK fds are polled from the stack (nothing allocated).
fn poll_ports(handles: &[i64], timeout: i32, wk: i64, mut ready: impl FnMut(usize)) -> NResult<()> {
    const POLL_STACK: usize = 16;
    // held for the call, so the eventfd cannot close (and its number be reused) while polled
    let wk = if wk == 0 { None } else { Some(waker::get(wk)?) };
    let nfds = handles.len() + usize::from(wk.is_some());
    let mut stack = [ffi::PollFd { fd: -1, events: 0, revents: 0 }; POLL_STACK];
    let mut heap = Vec::new();
    let fds: &mut [ffi::PollFd] = if nfds <= POLL_STACK {
        &mut stack[..nfds]
    } else {
        heap.resize(nfds, ffi::PollFd { fd: -1, events: 0, revents: 0 });
        &mut heap[..]
    };
    let mut waiting = false;
    for (k, &h) in handles.iter().enumerate() {
        let p = ports::get(h)?;
        let g = ports::lock(&p);
        if g.dev.rx_waiting() {
            waiting = true;
            ready(k);
        }
        fds[k] = ffi::PollFd { fd: g.dev.fd(), events: ffi::POLLIN, revents: 0 };
    }
    if waiting {
        return Ok(());
    }
    if let Some(w) = &wk {
        fds[handles.len()] = ffi::PollFd { fd: w.fd(), events: ffi::POLLIN, revents: 0 };
    }
    // The port locks are not held while blocking, so other threads can keep using the ports.
    match ffi::sys_poll(fds, timeout) {
        Ok(_) => {}
        Err(ffi::EINTR) => return Ok(()),
        Err(e) => return Err(NErr::errno(e, "poll on native ports")),
    }
    if let Some(w) = &wk {
        if fds[handles.len()].revents != 0 {
            w.take()?;
        }
    }
    for (k, pfd) in fds[..handles.len()].iter().enumerate() {
        if pfd.revents == 0 {
            continue;
        }
        if pfd.revents & ffi::POLLERR != 0 {
            if let Ok(p) = ports::get(handles[k]) {
                let mut g = ports::lock(&p);
                let port = &mut *g;
                port.dev.clear_error(&mut port.c);
            }
        }
        ready(k);
    }
    Ok(())
}

fn wait_tail(js: &Js) -> NResult<(i32, i64)> {
    let timeout = js.int(1, "timeoutMs", -1, i32::MAX as i64)? as i32;
    let wk = if js.is_nullish(2) { 0 } else { js.int(2, "waker", 0, u32::MAX as i64)? };
    Ok((timeout, wk))
}

fn wait(js: &Js) -> NResult<napi_value> {
    let handles = js.int_array(0, "ports", 1, u32::MAX as i64)?;
    let (timeout, wk) = wait_tail(js)?;
    let mut ready = Vec::new();
    poll_ports(&handles, timeout, wk, |k| ready.push(handles[k]))?;
    let vals = ready.iter().map(|&h| js.num(h as f64)).collect::<NResult<Vec<_>>>()?;
    js.array(&vals)
}

/// The bit `waitReady` sets for the port at position `k` of its handles: one each for the first
/// 30, one shared by all the others (READY_SHARED_BIT: any of them readable sets it).
const READY_SHARED_BIT: usize = 30;

/// `wait` for a forwarding worker's idle loop: the ports (a Uint32Array of handles, made when the
/// ports change) and, returned, a mask of the readable ones — bit k for position k, bit 30 for
/// any at 30 or above — no array: the worker reads only the ports with frames, and a JS array per
/// wake-up is garbage the worker's young generation collects (a scavenge: a pause on the
/// forwarding path) every ~1,000 round trips.
fn wait_ready(js: &Js) -> NResult<napi_value> {
    let raw = js.bytes(0, "ports")?;
    if raw.len() % 4 != 0 || raw.len() > 4 * 4096 {
        return Err(NErr::new("EINVAL", "argument ports must be a Uint32Array of port handles (at most 4096)"));
    }
    let mut stack = [0i64; 16];
    let mut heap = Vec::new();
    let n = raw.len() / 4;
    let handles: &mut [i64] = if n <= stack.len() { &mut stack[..n] } else { heap.resize(n, 0); &mut heap[..] };
    for (k, c) in raw.chunks_exact(4).enumerate() {
        handles[k] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as i64;
    }
    let (timeout, wk) = wait_tail(js)?;
    let mut mask = 0u32;
    poll_ports(handles, timeout, wk, |k| mask |= 1 << k.min(READY_SHARED_BIT))?;
    js.num(mask as f64)
}

/// Sets the calling thread's scheduling policy: SCHED_FIFO at `priority` (1..99), or back to
/// SCHED_OTHER with 0. Only the calling thread changes (Linux schedules threads).
fn set_thread_realtime(js: &Js) -> NResult<napi_value> {
    let prio = js.int(0, "priority", 0, 99)? as i32;
    ffi::sched_fifo_self(prio).map_err(|e| NErr::errno(e, if prio > 0 { "sched_setscheduler(SCHED_FIFO)" } else { "sched_setscheduler(SCHED_OTHER)" }))?;
    js.undefined()
}

fn waker_arg(js: &Js) -> NResult<i64> {
    js.int(0, "waker handle", 0, u32::MAX as i64)
}

fn waker_open(js: &Js) -> NResult<napi_value> {
    js.num(waker::open()? as f64)
}

fn wake(js: &Js) -> NResult<napi_value> {
    waker::get(waker_arg(js)?)?.wake()?;
    js.undefined()
}

fn waker_stats(js: &Js) -> NResult<napi_value> {
    let w = waker::get(waker_arg(js)?)?;
    js.object(&[
        ("posted", js.num(w.posted.load(std::sync::atomic::Ordering::Relaxed) as f64)?),
        ("taken", js.num(w.taken.load(std::sync::atomic::Ordering::Relaxed) as f64)?),
    ])
}

fn waker_close(js: &Js) -> NResult<napi_value> {
    waker::close(waker_arg(js)?)?;
    js.undefined()
}

fn stats(js: &Js) -> NResult<napi_value> {
    let h = handle_arg(js, 0)?;
    let p = ports::get(h)?;
    let mut g = ports::lock(&p);
    let port = &mut *g;
    port.dev.poll_kernel_stats(&mut port.c);
    let c = port.c;
    js.object(&[
        ("rxPackets", js.num(c.rx_packets as f64)?),
        ("rxBytes", js.num(c.rx_bytes as f64)?),
        ("txPackets", js.num(c.tx_packets as f64)?),
        ("txBytes", js.num(c.tx_bytes as f64)?),
        ("rxDropped", js.num(c.rx_dropped as f64)?),
        ("txErrors", js.num(c.tx_errors as f64)?),
        ("oversize", js.num(c.oversize as f64)?),
        ("rxErrors", js.num(c.rx_errors as f64)?),
        ("kernelDrops", js.num(c.kernel_drops as f64)?),
        ("csumFinished", js.num(c.csum_finished as f64)?),
        ("gsoFrames", js.num(c.gso_frames as f64)?),
        ("gsoSegments", js.num(c.gso_segments as f64)?),
        ("offloadErrors", js.num(c.offload_errors as f64)?),
        ("txKicks", js.num(c.tx_kicks as f64)?),
        ("unboundQueues", js.num(c.unbound_queues as f64)?),
    ])
}

fn close(js: &Js) -> NResult<napi_value> {
    let h = handle_arg(js, 0)?;
    ports::remove(h, opt_bool(js, 1, "removeInterface", false)?)?;
    js.undefined()
}

/// kernelPathOpen(names "a,b" (may be empty; Mode::Alone), netns|null, capacity) -> handle (kernel_path.rs)
fn kernel_path_open(js: &Js) -> NResult<napi_value> {
    let names: Vec<String> = js.string(0, "names")?.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
    for n in &names {
        device::validate_ifname(n)?;
    }
    let netns = js.opt_string(1, "netns")?.filter(|s| !s.is_empty());
    let capacity = js.int(2, "capacity", 1, 1 << 24)? as u32;
    let k = kernel_path::KernelPath::open(&names, netns.as_deref(), capacity)?;
    js.num(kernel_path::register(k) as f64)
}

/// kernelPathAttach(handle, name, netns|null, mode 'xdp'|'packet'|'alone') -> ifindex
fn kernel_path_attach(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let name = js.string(1, "name")?;
    device::validate_ifname(&name)?;
    let netns = js.opt_string(2, "netns")?.filter(|s| !s.is_empty());
    let mode = kernel_path::Mode::parse(&js.string(3, "mode")?)?;
    let ifindex = kernel_path::lock(&k).attach(&name, netns.as_deref(), mode)?;
    js.num(ifindex as f64)
}

/// kernelPathDetach(handle, name) -> whether it was attached
fn kernel_path_detach(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let name = js.string(1, "name")?;
    let was = kernel_path::lock(&k).detach(&name);
    js.boolean_value(was)
}

/// kernelPathSet(handle, entries) -> entries written
fn kernel_path_set(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let entries = js.bytes(1, "entries")?;
    let n = kernel_path::lock(&k).set(entries)?;
    js.num(n as f64)
}

/// kernelPathRemove(handle, keys) -> entries removed
fn kernel_path_remove(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let keys = js.bytes(1, "keys")?;
    let n = kernel_path::lock(&k).remove(keys)?;
    js.num(n as f64)
}

/// kernelPathFlush(handle) -> the new generation (every entry made before stops matching)
fn kernel_path_flush(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let g = kernel_path::lock(&k).flush()?;
    js.num(g as f64)
}

/// kernelPathStats(handle) -> {frames, bytes, generation}
fn kernel_path_stats(js: &Js) -> NResult<napi_value> {
    let k = kernel_path::get(handle_arg(js, 0)?)?;
    let g = kernel_path::lock(&k);
    let (frames, bytes, declined) = g.counters()?;
    js.object(&[("frames", js.num(frames as f64)?), ("bytes", js.num(bytes as f64)?), ("declined", js.num(declined as f64)?), ("generation", js.num(g.generation() as f64)?)])
}

/// kernelPathClose(handle): the links, and so the program, go with it
fn kernel_path_close(js: &Js) -> NResult<napi_value> {
    kernel_path::remove(handle_arg(js, 0)?)?;
    js.undefined()
}

fn layout(js: &Js) -> NResult<napi_value> {
    js.object(&[
        ("DESC_SIZE", js.num(area::DESC_SIZE as f64)?),
        ("D_LEN", js.num(area::D_LEN as f64)?),
        ("D_IN_PORT", js.num(area::D_IN_PORT as f64)?),
        ("D_OUT_PORT", js.num(area::D_OUT_PORT as f64)?),
        ("D_VERDICT", js.num(area::D_VERDICT as f64)?),
        ("V_FORWARD", js.num(area::V_FORWARD as f64)?),
        ("V_REJECT", js.num(area::V_REJECT as f64)?),
    ])
}

fn init(ex: &Exports) -> NResult<()> {
    ex.function("openTap", open_tap)?;
    ex.function("openAfPacket", open_af_packet)?;
    ex.function("openAfXdp", open_af_xdp)?;
    ex.function("info", info)?;
    ex.function("rxBurst", rx_burst)?;
    ex.function("txBurst", tx_burst)?;
    ex.function("wait", wait)?;
    ex.function("waitReady", wait_ready)?;
    ex.function("rxFrames", rx_frames)?;
    ex.function("setThreadRealtime", set_thread_realtime)?;
    ex.function("setThreadAffinity", set_thread_affinity)?;
    ex.function("rxQueues", rx_queues)?;
    ex.function("interfaceMtu", interface_mtu)?;
    ex.function("stats", stats)?;
    ex.function("wakerOpen", waker_open)?;
    ex.function("wake", wake)?;
    ex.function("wakerStats", waker_stats)?;
    ex.function("wakerClose", waker_close)?;
    ex.function("close", close)?;
    ex.function("removeTap", remove_tap)?;
    ex.function("adviseHugePages", advise_huge_pages)?;
    ex.function("kernelPathOpen", kernel_path_open)?;
    ex.function("kernelPathAttach", kernel_path_attach)?;
    ex.function("kernelPathDetach", kernel_path_detach)?;
    ex.function("kernelPathSet", kernel_path_set)?;
    ex.function("kernelPathRemove", kernel_path_remove)?;
    ex.function("kernelPathFlush", kernel_path_flush)?;
    ex.function("kernelPathStats", kernel_path_stats)?;
    ex.function("kernelPathClose", kernel_path_close)?;
    ex.value("layout", layout)?;
    ex.value("version", |js| js.str(env!("CARGO_PKG_VERSION")))?;
    Ok(())
}

/// Called by node once per environment (main thread and every worker_thread) that loads the
/// addon. Nothing JS-side is cached across calls, so each environment gets its own functions.
#[no_mangle]
pub extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let ex = Exports::new(env, exports);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init(&ex))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ex.throw(&e),
        Err(_) => ex.throw(&NErr::new("EINTERNAL", "wdp-native: panic during module init")),
    }
    ex.exports()
}

/// Node-API version this addon is written against (8 = Node 12.22+/14.17+; all calls used exist).
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    8
}
