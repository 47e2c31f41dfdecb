// IP fragments (docs/core.md "Fragments"): a first fragment's ports are remembered by (src, dst,
// proto, IP ID) and the later fragments of its datagram follow its flow, translated at L3 only,
// in both directions, IPv4 and IPv6. A later fragment that arrives before its first fragment (or
// after CFG_TO_FRAG) is dropped with drop_fragment: not held. Later fragments of a datagram whose
// first fragment waits for its backend's neighbour wait with it (drop_no_route, D_AUX). The fragment table is bounded and
// overwrites the oldest entry of a full bucket. Every scenario runs through the core and the
// reference model side by side (byte-for-byte frames and trace records).
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { frame, l4Bytes } from '../dist/src/packet/build.js';
import { verifyChecksums } from '../dist/src/packet/checksum.js';
import { formatAddr } from '../dist/src/util/addr.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC } from './lib/packets.js';
import * as L from '../dist/assembly/layout.js';

const T0 = 1000;
const V4 = { vip: '10.96.0.10', be: '10.1.0.1', client: '10.0.0.5' };
const V6 = { vip: 'fd00:96::10', be: 'fd00:1::1', client: 'fd00::5' };

function setup(fam, opts = {}, { endpoints = true, outPort = 1 } = {}) {
  const a = fam === 4 ? V4 : V6;
  const b = backend({ id: 1, addr: a.be, port: 5353, outPort });
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: a.vip, port: 53, proto: 'UDP' }, endpoints ? [b] : [])], backends: [b] });
  const o = { batchMax: 64, affinitySlots: 64, flows: 64, ...opts };
  const core = Core.create(o);
  core.applyIr(ir);
  return { core, model: new ReferenceModel(ir, o), a };
}

/** The fragments (Ethernet frames) of one UDP datagram with `size` payload bytes, each carrying
 *  at most `chunk` bytes of the L4 datagram (a multiple of 8). */
function fragments({ src, dst, sport, dport, size, id, chunk = 1480, fromBackend = false }) {
  const payload = Uint8Array.from({ length: size }, (_, i) => (i * 7 + id) & 0xff);
  const { l4 } = l4Bytes({ src, dst, proto: 'UDP', sport, dport, payload });
  const out = [];
  const macs = fromBackend ? { srcMac: MAC.beDst, dstMac: MAC.beSrc } : { srcMac: MAC.client, dstMac: MAC.node };
  for (let off = 0; off < l4.length; off += chunk) {
    const part = l4.subarray(off, Math.min(l4.length, off + chunk));
    const more = off + chunk < l4.length;
    const spec = { ...macs, src, dst, proto: 'UDP', rawL4: part };
    if (src.includes(':')) spec.v6Ext = [{ type: 44, offset: off / 8, more, id }];
    else Object.assign(spec, { id, mf: more, fragOffset: off / 8 });
    out.push({ frame: frame(spec), inPort: fromBackend ? 1 : 3 });
  }
  return out;
}

/** Reassembles forwarded fragments (Ethernet, no VLAN) into one unfragmented frame, so its
 *  addresses, ports and UDP checksum can be checked. */
function reassemble(frames) {
  const parts = [];
  let src, dst;
  for (const f of frames) {
    const v6 = f[12] === 0x86;
    if (v6) {
      src = formatAddr(f.subarray(22, 38), 6); dst = formatAddr(f.subarray(38, 54), 6);
      const off = ((f[56] << 8) | f[57]) & 0xfff8;
      parts.push([off, f.subarray(62, 54 + ((f[18] << 8) | f[19]))]);
    } else {
      src = formatAddr(f.subarray(26, 30), 4); dst = formatAddr(f.subarray(30, 34), 4);
      const ihl = (f[14] & 15) * 4;
      const off = (((f[20] << 8) | f[21]) & 0x1fff) * 8;
      parts.push([off, f.subarray(14 + ihl, 14 + ((f[16] << 8) | f[17]))]);
    }
  }
  parts.sort((x, y) => x[0] - y[0]);
  const l4 = Buffer.concat(parts.map(([, p]) => p));
  return { src, dst, sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), whole: frame({ src, dst, proto: 'UDP', rawL4: l4 }) };
}

function both(t, s, frames, now) {
  const pairs = runBoth(s.core, s.model, frames, now, 0, { trace: true });
  const m = firstMismatch(pairs);
  if (m) t.fail(m);
  return pairs;
}

for (const fam of [4, 6]) {
  test(`IPv${fam}: a 3000-byte UDP request and its 3000-byte answer, fragmented, are translated whole in both directions`, (t) => {
    const s = setup(fam);
    const { a } = s;
    const req = fragments({ src: a.client, dst: a.vip, sport: 40000, dport: 53, size: 3000, id: 0x4242 });
    t.is(req.length, 3);
    const r1 = both(t, s, req, T0);
    t.deepEqual(r1.map((p) => p.core.reason), ['fwd_nat', 'fwd_nat', 'fwd_nat']);
    const fwd = reassemble(r1.map((p) => Buffer.from(p.core.hex, 'hex')));
    t.like(fwd, { src: a.client, dst: a.be, sport: 40000, dport: 5353 });
    t.deepEqual(verifyChecksums(fwd.whole), [], 'the reassembled request has a valid UDP checksum');
    // the answer, fragmented by the backend; its fragments arrive in one batch, in order
    const ans = fragments({ src: a.be, dst: a.client, sport: 5353, dport: 40000, size: 3000, id: 0x99, fromBackend: true });
    const r2 = both(t, s, ans, T0 + 1);
    t.deepEqual(r2.map((p) => p.core.reason), ['fwd_reply', 'fwd_reply', 'fwd_reply']);
    const back = reassemble(r2.map((p) => Buffer.from(p.core.hex, 'hex')));
    t.like(back, { src: a.vip, dst: a.client, sport: 53, dport: 40000 });
    t.deepEqual(verifyChecksums(back.whole), [], 'the reassembled answer has a valid UDP checksum');
    // every fragment went to the backend's port / the client's port, TTL decremented once
    t.true(r1.every((p) => p.core.outPort === 1) && r2.every((p) => p.core.outPort === 3));
    t.true(r1.every((p) => p.core.trace.flow === r1[0].core.trace.flow && p.core.trace.flow !== 0));
  });

  test(`IPv${fam}: out of order: a later fragment before its first is dropped (drop_fragment), the ones after the first pass`, (t) => {
    const s = setup(fam);
    const { a } = s;
    const [f0, f1, f2] = fragments({ src: a.client, dst: a.vip, sport: 40001, dport: 53, size: 3000, id: 7 });
    t.deepEqual(both(t, s, [f2, f0, f1], T0).map((p) => p.core.reason), ['drop_fragment', 'fwd_nat', 'fwd_nat']);
    // the same datagram's missing fragment, retransmitted later (still within CFG_TO_FRAG)
    t.deepEqual(both(t, s, [f2], T0 + 4000).map((p) => p.core.reason), ['fwd_nat']);
    // past CFG_TO_FRAG (5 s) the first fragment is forgotten
    t.deepEqual(both(t, s, [f1], T0 + 5001).map((p) => p.core.reason), ['drop_fragment']);
    t.is(s.core.counters().reasons.drop_fragment, 2);
  });

  test(`IPv${fam}: a datagram whose backend's neighbour is not resolved yet: its later fragments wait with its first (drop_no_route, the backend in the descriptor), not drop_fragment; resolved, all of them pass in order`, (t) => {
    const s = setup(fam, {}, { outPort: L.PORT_NONE });
    const { a } = s;
    const fr = fragments({ src: a.client, dst: a.vip, sport: 40003, dport: 53, size: 3000, id: 11 });
    const held = both(t, s, fr, T0);
    t.deepEqual(held.map((p) => p.core.reason), ['drop_no_route', 'drop_no_route', 'drop_no_route']);
    // the worker's hold queue keys each frame by the backend its descriptor names
    t.deepEqual(fr.map((_, i) => s.core.dv.getUint32(s.core.descOffset(i) + L.D_AUX, true)), [1, 1, 1]);
    t.is(s.core.counters().reasons.drop_fragment ?? 0, 0);
    // the neighbour resolved (the backend gets its port): the held frames are decided again, in order
    const b = backend({ id: 1, addr: a.be, port: 5353, outPort: 1 });
    const ir = mkIr({ frontends: [frontend({ id: 1, addr: a.vip, port: 53, proto: 'UDP' }, [b])], backends: [b] });
    s.core.applyIr(ir);
    // (the model has no flow or fragment state to carry over: none was created)
    const r = both(t, { core: s.core, model: new ReferenceModel(ir, { batchMax: 64, affinitySlots: 64, flows: 64 }) }, fr, T0 + 10);
    t.deepEqual(r.map((p) => p.core.reason), ['fwd_nat', 'fwd_nat', 'fwd_nat']);
    t.like(reassemble(r.map((p) => Buffer.from(p.core.hex, 'hex'))), { src: a.client, dst: a.be, sport: 40003, dport: 5353 });
  });

  test(`IPv${fam}: a later fragment toward a service never starts a flow: the first fragment was rejected, the rest drop`, (t) => {
    const s = setup(fam, {}, { endpoints: false });
    const { a } = s;
    const fr = fragments({ src: a.client, dst: a.vip, sport: 40002, dport: 53, size: 2000, id: 9 });
    t.deepEqual(both(t, s, fr, T0).map((p) => p.core.reason), ['reject_no_endpoints', 'drop_fragment']);
  });
}

test('the fragment table is bounded: a full bucket overwrites its oldest entry (core and model alike)', (t) => {
  // 8 entries = 2 buckets of 4: 40 datagrams' first fragments, then their second fragments
  const s = setup(4, { fragments: 8 });
  const firsts = [], seconds = [];
  for (let i = 0; i < 40; i++) {
    const [f0, f1] = fragments({ src: V4.client, dst: V4.vip, sport: 41000 + i, dport: 53, size: 2000, id: 100 + i });
    firsts.push(f0); seconds.push(f1);
  }
  for (let i = 0; i < 40; i++) both(t, s, [firsts[i]], T0 + i);
  const rs = both(t, s, seconds, T0 + 40).map((p) => p.core.reason);
  const passed = rs.filter((r) => r === 'fwd_nat').length;
  // each bucket keeps its 4 newest; which datagram lands in which bucket is the hash's choice (the
  // model computes the same), so: exactly 8 remembered, the newest among them, most old ones gone
  t.is(passed, 8, `8 first fragments are remembered: ${rs.join(',')}`);
  t.is(rs[39], 'fwd_nat');
  t.true(rs.slice(0, 24).filter((r) => r === 'fwd_nat').length <= 2, rs.join(','));
});

test('with the fragment table off (fragments: 0) every later fragment drops, first fragments still pass', (t) => {
  const s = setup(4, { fragments: 0 });
  const fr = fragments({ src: V4.client, dst: V4.vip, sport: 40003, dport: 53, size: 2000, id: 11 });
  t.deepEqual(both(t, s, fr, T0).map((p) => p.core.reason), ['fwd_nat', 'drop_fragment']);
});

test('dry-run trace remembers no first fragment', (t) => {
  const s = setup(6);
  const [f0, f1] = fragments({ src: V6.client, dst: V6.vip, sport: 40004, dport: 53, size: 2000, id: 12 });
  const pairs = runBoth(s.core, s.model, [f0, f1], T0, 0, { dryRun: true });
  t.is(firstMismatch(pairs), undefined);
  t.deepEqual(pairs.map((p) => p.core.reason), ['fwd_nat', 'drop_fragment']);
});
