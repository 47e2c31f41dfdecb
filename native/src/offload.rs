//! Offloaded frames: the virtio-net header that AF_PACKET (PACKET_VNET_HDR) and TAP (IFF_VNET_HDR)
//! put in front of each frame, and finishing in user space what the sender left to "hardware".
//!
//! A pod's veth (and a TAP with TUNSETOFFLOAD) hands over frames with
//!   - CHECKSUM_PARTIAL (flags & NEEDS_CSUM): the L4 checksum field holds only the pseudo-header
//!     sum; the sum over csum_start..end is still to be added. Finished here in place.
//!   - GSO (gso_type != NONE): one super-frame of up to 64 KiB standing for many wire segments of
//!     gso_size payload bytes (TCP TSO, UDP USO; GRO on a receiving NIC produces the same). Cut
//!     here into segments, each a complete frame in its own arena slot.
//! Both happen at receive, before the Wasm core sees the frames, so the core and every output
//! port see only ordinary wire frames with valid checksums (the core's incremental NAT checksum
//! updates then stay correct). Cost: a partial checksum is one pass over the L4 bytes (~the cost
//! of the copy into the slot); a super-frame is copied once more into the segmenter's buffer and
//! each segment gets its headers copied and a full L4 checksum — the software GSO the kernel
//! would otherwise do, done in user space. Carrying the offload through to an output port that
//! accepts it (TAP with TUNSETOFFLOAD) would save that work but needs the core to handle frames
//! larger than a slot; not done.
//!
//! Layout (linux/virtio_net.h, little-endian on the hosts wdp runs on):
//!   u8 flags, u8 gso_type, u16 hdr_len, u16 gso_size, u16 csum_start, u16 csum_offset

use crate::area::Area;
use crate::device::Counters;

pub const VNET_HDR_LEN: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// A super-frame holds at most 64 KiB of IP packet plus link headers.
pub const SUPER_MAX: usize = 65536 + 64;

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> VnetHdr {
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr { flags: b[0], gso_type: b[1], hdr_len: u(2), gso_size: u(4), csum_start: u(6), csum_offset: u(8) }
    }

    pub fn is_gso(&self) -> bool {
        self.gso_type != GSO_NONE
    }

    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// The same header for the frame with `by` bytes inserted before the L3 header (a VLAN tag
    /// the kernel had moved out of the frame).
    pub fn shifted(self, by: u16) -> VnetHdr {
        VnetHdr {
            csum_start: self.csum_start.wrapping_add(by),
            hdr_len: if self.hdr_len == 0 { 0 } else { self.hdr_len.wrapping_add(by) },
            ..self
        }
    }
}

/// A header that asks for nothing: what wdp writes in front of every frame it sends.
pub const VNET_HDR_NONE: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// One's complement sum of `d` (RFC 1071), accumulated in native byte order: the folded result
/// stored with to_ne_bytes is the checksum field's bytes whatever the host's endianness, as long
/// as every piece summed starts at an even offset of the checksummed stream.
pub fn sum(mut acc: u64, d: &[u8]) -> u64 {
    let mut words = d.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        acc += (v & 0xffff_ffff) + (v >> 32);
    }
    let mut rest = words.remainder().chunks_exact(2);
    for w in &mut rest {
        acc += u16::from_ne_bytes([w[0], w[1]]) as u64;
    }
    if let [b] = rest.remainder() {
        acc += u16::from_ne_bytes([*b, 0]) as u64;
    }
    acc
}

pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for a sum; 0 goes out as 0xffff (the same number in one's
/// complement, and for UDP 0 would mean "no checksum").
fn field(acc: u64) -> [u8; 2] {
    let c = !fold(acc);
    (if c == 0 { 0xffff } else { c }).to_ne_bytes()
}

/// Finishes a CHECKSUM_PARTIAL frame in place: sums frame[start..] (the field already holds the
/// pseudo-header sum) into frame[start+offset]. False when the offsets do not fit the frame.
pub fn finish_csum(frame: &mut [u8], h: &VnetHdr) -> bool {
    let start = h.csum_start as usize;
    let at = start + h.csum_offset as usize;
    if start >= frame.len() || at + 2 > frame.len() {
        return false;
    }
    let v = field(sum(0, &frame[start..]));
    frame[at..at + 2].copy_from_slice(&v);
    true
}

/// What repair_partial did to a frame.
#[derive(Debug, PartialEq)]
pub enum Repair {
    /// not TCP/UDP over IPv4/IPv6 (without IPv6 extension headers), or a fragment: left alone
    NotL4,
    /// the L4 checksum verifies (or is an absent UDP checksum)
    Valid,
    /// the checksum field held exactly the pseudo-header sum a CHECKSUM_PARTIAL sender leaves:
    /// finished in place
    Finished,
    /// wrong for another reason: left alone (the receiver drops it, as it would on a wire)
    Invalid,
}

/// For ports without offload metadata (AF_XDP: XDP keeps no skb checksum state): recognises a
/// frame a local sender left CHECKSUM_PARTIAL — its L4 checksum does not verify and the field
/// holds the folded pseudo-header sum (what the kernel seeds it with) — and finishes it. Cost:
/// one checksum pass over every TCP/UDP frame. A genuinely corrupt frame whose field happens to
/// equal its pseudo-header sum (1 in 65536 of corrupt frames) would be "repaired"; corruption
/// on a local veth does not happen, and on a wire the Ethernet FCS catches it first.
pub fn repair_partial(f: &mut [u8]) -> Repair {
    let Some((l3, et)) = l3_of(f) else { return Repair::NotL4 };
    let (l4, proto, pseudo) = match et {
        ETH_P_IPV4 if f.len() >= l3 + 20 && f[l3] >> 4 == 4 => {
            let ihl = ((f[l3] & 0x0f) as usize) * 4;
            let frag = u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]) & 0x3fff;
            let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
            if ihl < 20 || frag != 0 || total < ihl || l3 + total > f.len() {
                return Repair::NotL4;
            }
            (l3 + ihl, f[l3 + 9], sum(0, &f[l3 + 12..l3 + 20]))
        }
        ETH_P_IPV6 if f.len() >= l3 + 40 && f[l3] >> 4 == 6 => (l3 + 40, f[l3 + 6], sum(0, &f[l3 + 8..l3 + 40])),
        _ => return Repair::NotL4,
    };
    let end = match et {
        ETH_P_IPV4 => l3 + u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize,
        _ => l3 + 40 + u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize,
    };
    let at = match proto {
        IPPROTO_TCP => l4 + 16,
        IPPROTO_UDP => l4 + 6,
        _ => return Repair::NotL4,
    };
    if end > f.len() || at + 2 > end {
        return Repair::NotL4;
    }
    if proto == IPPROTO_UDP && et == ETH_P_IPV4 && f[at] == 0 && f[at + 1] == 0 {
        return Repair::Valid;
    }
    let mut acc = sum(pseudo, &[0, proto]);
    acc = sum(acc, &((end - l4) as u16).to_be_bytes());
    if fold(sum(acc, &f[l4..end])) == 0xffff {
        return Repair::Valid;
    }
    if [f[at], f[at + 1]] != fold(acc).to_ne_bytes() {
        return Repair::Invalid;
    }
    let v = field(sum(0, &f[l4..end]));
    f[at..at + 2].copy_from_slice(&v);
    Repair::Finished
}

/// Offset of the L3 header and its ethertype, past up to two VLAN tags.
fn l3_of(f: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    for _ in 0..3 {
        if off + 2 > f.len() {
            return None;
        }
        let et = u16::from_be_bytes([f[off], f[off + 1]]);
        if et == ETH_P_8021Q || et == ETH_P_8021AD {
            off += 4;
            continue;
        }
        return Some((off + 2, et));
    }
    None
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum L3 {
    V4,
    V6,
}

/// Cuts one GSO super-frame into wire segments, possibly over several receive bursts (the arena
/// may have fewer free slots than the super-frame has segments). Its buffer is allocated once per
/// port; segmenting allocates nothing.
pub struct Segmenter {
    buf: Vec<u8>,
    len: usize,
    l3: usize,
    l3_kind: L3,
    l4: usize,
    hlen: usize,
    proto: u8,
    mss: usize,
    next: usize,
    index: u32,
    ip_id: u16,
    seq: u32,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self::new()
    }
}

impl Segmenter {
    pub fn new() -> Segmenter {
        Segmenter {
            buf: vec![0u8; SUPER_MAX + 65536],
            len: 0,
            l3: 0,
            l3_kind: L3::V4,
            l4: 0,
            hlen: 0,
            proto: 0,
            mss: 0,
            next: 0,
            index: 0,
            ip_id: 0,
            seq: 0,
        }
    }

    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer a super-frame is loaded into (only while nothing is pending).
    pub fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Takes the super-frame in buf[..len] described by `h`. False (and counted as an offload
    /// error and an rx drop) when it cannot be segmented: unsupported GSO type, headers that do
    /// not parse, or segments that would not fit a slot of `cap` bytes.
    pub fn start(&mut self, len: usize, h: &VnetHdr, cap: usize, c: &mut Counters) -> bool {
        self.len = 0;
        self.next = 0;
        match self.parse(len, h, cap) {
            Some(()) => {
                self.len = len;
                self.next = self.hlen;
                self.index = 0;
                c.gso_frames += 1;
                true
            }
            None => {
                c.offload_errors += 1;
                c.rx_dropped += 1;
                false
            }
        }
    }

    fn parse(&mut self, len: usize, h: &VnetHdr, cap: usize) -> Option<()> {
        let f = &self.buf[..len];
        let (l3, et) = l3_of(f)?;
        let kind = match et {
            ETH_P_IPV4 => L3::V4,
            ETH_P_IPV6 => L3::V6,
            _ => return None,
        };
        let proto = match (h.gso_type & !GSO_ECN, kind) {
            (GSO_TCPV4, L3::V4) | (GSO_TCPV6, L3::V6) => IPPROTO_TCP,
            (GSO_UDP_L4, _) => IPPROTO_UDP,
            _ => return None, // UFO (IP fragmentation) and tunnel GSO are not produced by veth/TAP peers here
        };
        let l4 = h.csum_start as usize;
        let min_l3 = if kind == L3::V4 { 20 } else { 40 };
        if l4 < l3 + min_l3 || l4 + 20 > len {
            return None;
        }
        if kind == L3::V4 && (f[l3] >> 4 != 4 || l3 + ((f[l3] & 0x0f) as usize) * 4 != l4) {
            return None; // the L4 header must start where the IPv4 header (with options) ends
        }
        if kind == L3::V6 && f[l3] >> 4 != 6 {
            return None;
        }
        let l4_hlen = if proto == IPPROTO_TCP { ((f[l4 + 12] >> 4) as usize) * 4 } else { 8 };
        let hlen = l4 + l4_hlen;
        let mss = h.gso_size as usize;
        if l4_hlen < 8 || hlen >= len || mss == 0 || hlen + mss.min(len - hlen) > cap {
            return None;
        }
        self.l3 = l3;
        self.l3_kind = kind;
        self.l4 = l4;
        self.hlen = hlen;
        self.proto = proto;
        self.mss = mss;
        self.ip_id = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]);
        self.seq = u32::from_be_bytes([f[l4 + 4], f[l4 + 5], f[l4 + 6], f[l4 + 7]]);
        Some(())
    }

    /// Writes the next segments into slots first.. (at most `max`), filling their descriptors.
    /// Returns how many were written.
    pub fn drain(&mut self, area: &mut Area, first: usize, max: usize, in_port: u16, c: &mut Counters) -> usize {
        let mut got = 0;
        let (l3, l4, hlen) = (self.l3, self.l4, self.hlen);
        while got < max && self.next < self.len {
            let chunk = self.mss.min(self.len - self.next);
            let seg_len = hlen + chunk;
            let last = self.next + chunk >= self.len;
            let s = &mut area.slot_mut(first + got)[..seg_len];
            s[..hlen].copy_from_slice(&self.buf[..hlen]);
            s[hlen..].copy_from_slice(&self.buf[self.next..self.next + chunk]);
            let l4_len = seg_len - l4;
            let mut acc;
            match self.l3_kind {
                L3::V4 => {
                    s[l3 + 2..l3 + 4].copy_from_slice(&((seg_len - l3) as u16).to_be_bytes());
                    // IDs count up per segment, as the kernel's software GSO does (no FIXEDID in
                    // the virtio header).
                    s[l3 + 4..l3 + 6].copy_from_slice(&self.ip_id.wrapping_add(self.index as u16).to_be_bytes());
                    s[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
                    let ip = field(sum(0, &s[l3..l4]));
                    s[l3 + 10..l3 + 12].copy_from_slice(&ip);
                    acc = sum(0, &s[l3 + 12..l3 + 20]);
                }
                L3::V6 => {
                    s[l3 + 4..l3 + 6].copy_from_slice(&((seg_len - l3 - 40) as u16).to_be_bytes());
                    acc = sum(0, &s[l3 + 8..l3 + 40]);
                }
            }
            acc = sum(acc, &[0, self.proto]);
            acc = sum(acc, &(l4_len as u16).to_be_bytes());
            let csum_at = if self.proto == IPPROTO_TCP {
                let seq = self.seq.wrapping_add((self.next - hlen) as u32);
                s[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                if !last {
                    s[l4 + 13] &= !(TCP_FIN | TCP_PSH);
                }
                if self.index > 0 {
                    s[l4 + 13] &= !TCP_CWR;
                }
                l4 + 16
            } else {
                s[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4 + 6
            };
            s[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
            let v = field(sum(acc, &s[l4..]));
            s[csum_at..csum_at + 2].copy_from_slice(&v);
            area.set_rx(first + got, seg_len, in_port);
            c.rx_packets += 1;
            c.rx_bytes += seg_len as u64;
            c.gso_segments += 1;
            got += 1;
            self.index += 1;
            self.next += chunk;
        }
        got
    }
}

/// Delivers one received frame that came with virtio-net header `h` and already sits in
/// `area`'s slot `i` (`len` bytes): finishes a partial checksum. False when it had to be dropped
/// (counted). Super-frames go through a Segmenter instead.
pub fn finish_in_slot(area: &mut Area, i: usize, len: usize, h: &VnetHdr, c: &mut Counters) -> bool {
    if !h.needs_csum() {
        return true;
    }
    if finish_csum(&mut area.slot_mut(i)[..len], h) {
        c.csum_finished += 1;
        true
    } else {
        c.offload_errors += 1;
        c.rx_dropped += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csum_be(d: &[u8]) -> u16 {
        // Reference: big-endian word sum, the RFC 1071 definition.
        let mut s: u32 = 0;
        for w in d.chunks(2) {
            s += ((w[0] as u32) << 8) | *w.get(1).unwrap_or(&0) as u32;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn native_order_sum_matches_the_big_endian_definition() {
        for n in [0usize, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1499, 1500] {
            let d: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let mine = u16::from_be_bytes((!fold(sum(0, &d))).to_ne_bytes());
            assert_eq!(mine, csum_be(&d), "len {n}");
        }
    }

    fn verify(seg: &[u8], v6: bool) -> (u32, u8, usize) {
        let l3 = 14;
        let (l4, pseudo) = if v6 {
            let mut p = seg[l3 + 8..l3 + 40].to_vec();
            p.extend_from_slice(&[0, 0, 0, 6]);
            (l3 + 40, p)
        } else {
            assert_eq!(csum_be(&seg[l3..l3 + 20]), 0, "IPv4 header checksum");
            assert_eq!(u16::from_be_bytes([seg[l3 + 2], seg[l3 + 3]]) as usize, seg.len() - l3);
            let mut p = seg[l3 + 12..l3 + 20].to_vec();
            p.extend_from_slice(&[0, 6]);
            (l3 + 20, p)
        };
        if v6 {
            assert_eq!(u16::from_be_bytes([seg[l3 + 4], seg[l3 + 5]]) as usize, seg.len() - l4);
        }
        let l4_len = seg.len() - l4;
        let mut all = pseudo;
        all.extend_from_slice(&(l4_len as u16).to_be_bytes());
        all.extend_from_slice(&seg[l4..]);
        assert_eq!(csum_be(&all), 0, "TCP checksum");
        (u32::from_be_bytes([seg[l4 + 4], seg[l4 + 5], seg[l4 + 6], seg[l4 + 7]]), seg[l4 + 13], l4_len - 20)
    }

    fn super_frame(v6: bool, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&(if v6 { ETH_P_IPV6 } else { ETH_P_IPV4 }).to_be_bytes());
        if v6 {
            let mut ip = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
            ip.extend((0..32).map(|k| k as u8 + 1));
            f.extend(ip);
        } else {
            f.extend([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        }
        // TCP: ports, seq 0xfffffff0 (wraps), ack, doff 5, flags PSH|ACK|FIN|CWR, window
        f.extend([0x1f, 0x90, 0xc3, 0x50, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1, 0x50, 0x80 | 0x19, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..payload).map(|k| (k * 7 + 3) as u8));
        f
    }

    #[test]
    fn a_tcp_super_frame_becomes_valid_segments_over_several_bursts() {
        for v6 in [false, true] {
            let f = super_frame(v6, 2500);
            let l4 = if v6 { 54 } else { 34 };
            let h = VnetHdr { flags: F_NEEDS_CSUM, gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 }, hdr_len: (l4 + 20) as u16, gso_size: 1000, csum_start: l4 as u16, csum_offset: 16 };
            let mut seg = Segmenter::new();
            seg.buf_mut()[..f.len()].copy_from_slice(&f);
            let mut c = Counters::default();
            assert!(seg.start(f.len(), &h, 2048, &mut c));
            let mut mem = vec![0u8; 4 * 2048 + 4 * 16];
            let mut area = Area { mem: &mut mem, arena_off: 0, slot_size: 2048, desc_off: 4 * 2048 };
            // two slots free in the first burst, the rest in the next
            assert_eq!(seg.drain(&mut area, 0, 2, 1, &mut c), 2);
            assert_eq!(seg.drain(&mut area, 2, 2, 1, &mut c), 1);
            assert_eq!(seg.drain(&mut area, 3, 1, 1, &mut c), 0);
            let mut payload = Vec::new();
            for (k, want) in [(0usize, 1000usize), (1, 1000), (2, 500)] {
                let (len, _, _) = area.desc(k);
                let s = area.slot(k)[..len].to_vec();
                let (seq, flags, n) = verify(&s, v6);
                assert_eq!(n, want);
                assert_eq!(seq, 0xfffffff0u32.wrapping_add((k * 1000) as u32));
                assert_eq!(flags & TCP_FIN != 0, k == 2, "FIN only on the last segment");
                assert_eq!(flags & TCP_PSH != 0, k == 2, "PSH only on the last segment");
                assert_eq!(flags & TCP_CWR != 0, k == 0, "CWR only on the first segment");
                if !v6 {
                    assert_eq!(u16::from_be_bytes([s[18], s[19]]), 0x1234 + k as u16, "IPv4 ID counts up");
                }
                payload.extend_from_slice(&s[l4 + 20..]);
            }
            assert_eq!(payload, f[l4 + 20..].to_vec(), "payload reassembles byte-exact");
            assert_eq!((c.gso_frames, c.gso_segments, c.rx_packets), (1, 3, 3));
        }
    }

    #[test]
    fn a_partial_checksum_is_finished_and_bad_offsets_are_refused() {
        let mut f = super_frame(false, 333);
        // seed the field with the pseudo-header sum, as CHECKSUM_PARTIAL senders do
        let ip_len = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        let ip_sum = field(sum(0, &f[14..34]));
        f[24..26].copy_from_slice(&ip_sum);
        let l4_len = (f.len() - 34) as u16;
        let mut p = f[26..34].to_vec();
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&l4_len.to_be_bytes());
        let seed = fold(sum(0, &p)).to_ne_bytes();
        f[50..52].copy_from_slice(&seed);
        let h = VnetHdr { flags: F_NEEDS_CSUM, csum_start: 34, csum_offset: 16, ..Default::default() };
        assert!(finish_csum(&mut f, &h));
        verify(&f, false);
        let bad = VnetHdr { csum_start: 34, csum_offset: 400, ..h };
        assert!(!finish_csum(&mut f, &bad));
    }

    #[test]
    fn unsupported_or_malformed_super_frames_are_counted_not_delivered() {
        let f = super_frame(false, 2500);
        let mut seg = Segmenter::new();
        seg.buf_mut()[..f.len()].copy_from_slice(&f);
        let mut c = Counters::default();
        let ufo = VnetHdr { gso_type: 3, gso_size: 1000, csum_start: 34, csum_offset: 16, ..Default::default() };
        assert!(!seg.start(f.len(), &ufo, 2048, &mut c));
        let too_big = VnetHdr { gso_type: GSO_TCPV4, gso_size: 4000, csum_start: 34, csum_offset: 16, ..Default::default() };
        assert!(!seg.start(f.len(), &too_big, 2048, &mut c));
        let bad_l4 = VnetHdr { gso_type: GSO_TCPV4, gso_size: 1000, csum_start: 20, csum_offset: 16, ..Default::default() };
        assert!(!seg.start(f.len(), &bad_l4, 2048, &mut c));
        assert_eq!((c.offload_errors, c.rx_dropped, c.gso_frames), (3, 3, 0));
    }

    #[test]
    fn a_udp_gso_super_frame_becomes_datagrams_with_their_own_length_and_checksum() {
        let payload = 2500usize;
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
        f.extend([0x45, 0, 0, 0, 0, 7, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend([0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0]);
        f.extend((0..payload).map(|k| (k * 13 + 1) as u8));
        let h = VnetHdr { flags: F_NEEDS_CSUM, gso_type: GSO_UDP_L4, hdr_len: 42, gso_size: 1200, csum_start: 34, csum_offset: 6 };
        let mut seg = Segmenter::new();
        seg.buf_mut()[..f.len()].copy_from_slice(&f);
        let mut c = Counters::default();
        assert!(seg.start(f.len(), &h, 2048, &mut c));
        let mut mem = vec![0u8; 4 * 2048 + 4 * 16];
        let mut area = Area { mem: &mut mem, arena_off: 0, slot_size: 2048, desc_off: 4 * 2048 };
        assert_eq!(seg.drain(&mut area, 0, 4, 1, &mut c), 3);
        let mut data = Vec::new();
        for (k, want) in [(0usize, 1200usize), (1, 1200), (2, 100)] {
            let (len, _, _) = area.desc(k);
            let s = area.slot(k)[..len].to_vec();
            assert_eq!(csum_be(&s[14..34]), 0, "IPv4 header checksum");
            assert_eq!(u16::from_be_bytes([s[16], s[17]]) as usize, len - 14);
            assert_eq!(u16::from_be_bytes([s[38], s[39]]) as usize, 8 + want, "UDP length");
            let mut p = s[26..34].to_vec();
            p.extend_from_slice(&[0, 17]);
            p.extend_from_slice(&((8 + want) as u16).to_be_bytes());
            p.extend_from_slice(&s[34..]);
            assert_eq!(csum_be(&p), 0, "UDP checksum");
            data.extend_from_slice(&s[42..]);
        }
        assert_eq!(data, f[42..].to_vec());
    }

    #[test]
    fn repair_partial_finishes_a_seeded_field_and_leaves_valid_and_corrupt_frames_alone() {
        let mut f = super_frame(false, 300);
        let ip_len = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        let ip_sum = field(sum(0, &f[14..34]));
        f[24..26].copy_from_slice(&ip_sum);
        let mut p = f[26..34].to_vec();
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&((f.len() - 34) as u16).to_be_bytes());
        let seed = fold(sum(0, &p)).to_ne_bytes();
        f[50..52].copy_from_slice(&seed);
        assert_eq!(repair_partial(&mut f), Repair::Finished);
        verify(&f, false);
        assert_eq!(repair_partial(&mut f), Repair::Valid);
        f[60] ^= 0xff;
        assert_eq!(repair_partial(&mut f), Repair::Invalid);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(repair_partial(&mut arp), Repair::NotL4);
    }
}
