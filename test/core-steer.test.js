// Several workers on one interface (assembly/steer.ts, src/daemon/steering.ts): two cores, each
// told it is one of two workers, frames spread over them at random (as PACKET_FANOUT would) and
// handed over through the steering rings. Every frame of a flow — DNAT only, masqueraded, hairpin,
// ICMP errors quoting it — must be processed by the one core that holds its conntrack entry.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frame, ipPacket, icmpError } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { Steering, steerRingsFor } from '../dist/src/daemon/steering.js';
import { CLIENT_MAC, LOCAL_MAC, irFrom, mkCore } from './lib/core-fixture.js';

const T0 = 1000;
const SNAT = '192.168.0.100';

function setup(extra = {}) {
  const backends = [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }];
  return irFrom({
    frontends: [
      { id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2, 3], ...extra },
      { id: 2, addr: SNAT, port: 30080, proto: 'TCP', kind: 'NodePort', flags: L.FEF_MASQUERADE, backends: [1, 2, 3] },
      { id: 3, addr: '10.96.0.11', port: 53, proto: 'UDP', backends: [1, 2, 3] },
    ],
    backends, snatV4: SNAT,
  });
}

/** Two workers: cores, rings, steering; `deliver(frames)` spreads frames over them at random, runs
 * one steered round (read, hand over, receive, process) and returns each output with its core. */
function twoWorkers(ir, seed = 1) {
  const rings = steerRingsFor(2);
  const cores = [0, 1].map((self) => mkCore(ir, { steer: { workers: 2, self }, batchMax: 256, flows: 4096 }));
  const steer = cores.map((c, self) => new Steering(c, { workers: 2, self, rings, slotSize: L.DEFAULT_SLOT_SIZE }));
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 16; };
  const deliver = (frames, now) => {
    const share = [[], []];
    for (const f of frames) share[rnd() & 1].push(f);
    const counts = [0, 1].map((w) => {
      share[w].forEach((f, i) => cores[w].writeFrame(i, f.frame, f.inPort));
      return steer[w].dispatch(0, share[w].length);
    });
    const out = [];
    for (const w of [0, 1]) {
      // what stayed is in slots 0..counts[w]-1: move it behind what the other worker handed over
      const kept = [];
      for (let i = 0; i < counts[w]; i++) kept.push({ frame: cores[w].readFrame(i), inPort: cores[w].descriptor(i).inPort });
      const got = steer[w].receive(256);
      kept.forEach((k, i) => cores[w].writeFrame(got + i, k.frame, k.inPort));
      const n = got + kept.length;
      cores[w].process(n, now);
      for (let i = 0; i < n; i++) {
        const d = cores[w].descriptor(i);
        out.push({ worker: w, verdict: d.verdict, frame: cores[w].readFrame(i), outPort: d.outPort });
      }
    }
    return out;
  };
  return { cores, steer, deliver };
}

test('DNAT and masqueraded TCP flows from many clients: every reply reaches the worker with the flow', (t) => {
  const ir = setup();
  const { cores, steer, deliver } = twoWorkers(ir);
  const syns = [];
  for (let c = 0; c < 40; c++) {
    const client = `10.0.${c >> 4}.${(c & 15) + 2}`;
    for (let k = 0; k < 3; k++) {
      const sport = 40000 + c * 7 + k;
      syns.push({ frame: frame({ src: client, dst: '10.96.0.10', proto: 'TCP', sport, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
      syns.push({ frame: frame({ src: client, dst: SNAT, proto: 'TCP', sport, dport: 30080, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
    }
  }
  const out = deliver(syns, T0);
  t.is(out.length, syns.length);
  t.true(out.every((o) => o.verdict === L.V_FORWARD), 'every SYN forwarded');
  const byWorker = [0, 0];
  for (const o of out) byWorker[o.worker]++;
  t.true(byWorker[0] > 20 && byWorker[1] > 20, `both workers own flows: ${byWorker}`);
  // replies from the backends, as they would come back (to the client, or to SNAT:port)
  const replies = out.map((o) => {
    const p = parseFrame(o.frame);
    return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: p.dport, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1, owner: o.worker };
  });
  const back = deliver(replies, T0 + 1);
  t.is(back.length, replies.length);
  const notReply = back.filter((o) => o.verdict !== L.V_FORWARD || o.frame.length === 0 || parseFrame(o.frame).sport === 8080);
  t.deepEqual(notReply.length, 0, 'every reply was reverse-translated (none routed untranslated)');
  const fwdReply = cores.reduce((a, c) => a + (c.counters().reasons.fwd_reply ?? 0), 0);
  t.is(fwdReply, replies.length);
  const newFlows = cores.reduce((a, c) => a + c.counters().global.ct_new, 0);
  t.is(newFlows, syns.length, 'no flow created twice');
  t.true(steer[0].stats.handedOff + steer[1].stats.handedOff > 0);
  t.is(steer[0].stats.ringFull + steer[1].stats.ringFull, 0);
});

test('the node reaching a Service whose backend is the node (hairpin address): its answers reach the worker with the flow', (t) => {
  const HAIRPIN = '169.254.42.1';
  const ir = irFrom({ frontends: [{ id: 1, addr: '10.96.0.20', port: 80, proto: 'TCP', backends: [1] }], backends: [{ id: 1, addr: SNAT, port: 8081 }], snatV4: SNAT, hairpinV4: HAIRPIN });
  const { cores, deliver } = twoWorkers(ir, 7);
  const syns = [];
  for (let k = 0; k < 60; k++) syns.push({ frame: frame({ src: SNAT, dst: '10.96.0.20', proto: 'TCP', sport: 41000 + k, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
  const out = deliver(syns, T0);
  t.true(out.every((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).src === HAIRPIN), 'every SYN translated to the hairpin address');
  t.true(new Set(out.map((o) => o.worker)).size === 2, 'both workers own some');
  const replies = out.map((o) => {
    const p = parseFrame(o.frame);
    return { frame: frame({ src: p.dst, dst: p.src, proto: 'TCP', sport: p.dport, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 0 };
  });
  const back = deliver(replies, T0 + 1);
  t.true(back.every((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).src === '10.96.0.20'), 'every answer reverse-translated by the worker with its flow');
  t.is(cores.reduce((a, c) => a + (c.counters().reasons.fwd_reply ?? 0), 0), replies.length);
});

test('sessionAffinity: all connections of a client go to one worker (one affinity table decides)', (t) => {
  const ir = setup({ flags: L.FEF_AFFINITY, affinityTimeoutMs: 10_800_000 });
  const { deliver } = twoWorkers(ir, 7);
  const frames = [];
  for (let k = 0; k < 60; k++) frames.push({ frame: frame({ src: '10.0.9.9', dst: '10.96.0.10', proto: 'TCP', sport: 30000 + k * 13, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
  const out = deliver(frames, T0);
  t.is(new Set(out.map((o) => o.worker)).size, 1);
  t.is(new Set(out.map((o) => parseFrame(o.frame).dst)).size, 1, 'one backend for the client');
});

test('ARP goes to worker 0; one worker alone steers nothing; SNAT ports are the allocating worker\'s', (t) => {
  const ir = setup();
  const core1 = mkCore(ir, { steer: { workers: 2, self: 1 } });
  const arp = new Uint8Array(42);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]);
  core1.writeFrame(0, arp, 0);
  t.is(core1.steer(0, 1), 1);
  t.is(core1.descriptor(0).verdict, 0);
  const alone = mkCore(ir);
  alone.writeFrame(0, frame({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 1234, dport: 80, flags: 'S' }), 0);
  t.is(alone.steer(0, 1), 0);
  t.is(alone.descriptor(0).verdict, L.STEER_LOCAL);
  t.throws(() => mkCore(ir, { steer: { workers: 2, self: 2 } }), { instanceOf: RangeError });
});

test('ICMPv6 Packet Too Big quoting the first fragment of a masqueraded UDP datagram (fragment header in the quote) reaches the worker with the flow and is translated', (t) => {
  const SNAT6 = 'fd00:ff::1';
  const ir = irFrom({
    frontends: [{ id: 1, addr: 'fd00:96::b', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE, backends: [1, 2] }],
    backends: [{ id: 1, addr: 'fd00:1::1', port: 5353 }, { id: 2, addr: 'fd00:1::2', port: 5353 }], snatV6: SNAT6,
  });
  const { cores, deliver } = twoWorkers(ir, 3);
  const queries = [];
  for (let k = 0; k < 60; k++) queries.push({ frame: frame({ src: `fd00::${k + 2}`, dst: 'fd00:96::b', proto: 'UDP', sport: 41000 + k, dport: 53, payload: 'q', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
  const out = deliver(queries, T0);
  t.true(out.every((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).src === SNAT6), 'every query masqueraded');
  t.is(new Set(out.map((o) => o.worker)).size, 2, 'both workers own some');
  // a router on the backend side: Packet Too Big about the first fragment of each datagram as sent
  const errors = out.map((o) => {
    const p = parseFrame(o.frame);
    const inner = ipPacket({ src: p.src, dst: p.dst, proto: 'UDP', sport: p.sport, dport: p.dport, ttl: 63, payload: new Uint8Array(64), v6Ext: [{ type: 44, more: true }] });
    return { frame: icmpError({ src: 'fd00:1::fe', dst: SNAT6, kind: 'packet_too_big', mtu: 1280, inner, srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 };
  });
  const back = deliver(errors, T0 + 1);
  const translated = back.filter((o) => o.verdict === L.V_FORWARD && parseFrame(o.frame).dst.startsWith('fd00::'));
  t.is(translated.length, errors.length, 'every error translated to its client by the worker with the flow');
  t.is(cores.reduce((a, c) => a + (c.counters().reasons.fwd_icmp_error ?? 0), 0), errors.length);
});
