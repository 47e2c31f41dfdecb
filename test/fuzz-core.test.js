// Malformed input against the Wasm core: truncations of valid frames at every length, bogus
// IHL / total length / payload length / TCP data offset, zero-length and oversize frames, random
// bytes, and 200k random bit flips of valid frames (including ICMP errors quoting live flows, so
// the inner-packet code sees garbage too). For every batch:
//   * no trap (an exception from process() fails the test);
//   * no write outside a frame's own slot: every slot is pre-filled with a canary, and after the
//     batch the bytes past max(input length, output length) must still be the canary; unused
//     slots, unused descriptors and the trace area (trace off) must be untouched;
//   * every frame gets a valid verdict and a reason, with a consistent out port and length;
//   * the core's counters equal the tally of the descriptors (rx = sum of verdicts = sum of
//     reasons, per reason exact);
//   * the reference model, fed the same frames, gives the same verdict, reason, out port and bytes.
import test from 'ava';
import { mulberry32 } from '../dist/src/util/rng.js';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import * as B from '../dist/src/packet/build.js';
import { REASON_NAMES, VERDICT_NAMES, reasonName } from '../dist/src/core/names.js';
import { reasonInfo } from '../dist/assembly/reasons.js';
import { backend, frontend, mkIr, summarize, MAC, L } from './lib/packets.js';

const SLOT = 2048;
const BATCH = 64;
const CANARY = 0xa5;


function fuzzIr() {
  const bes = [
    backend({ id: 1, addr: '10.1.0.1', port: 8080, outPort: 1 }),
    backend({ id: 2, addr: '10.1.0.2', port: 8080, outPort: 2 }),
    backend({ id: 3, addr: 'fd00:1::1', port: 8080, outPort: 1 }),
    backend({ id: 4, addr: '10.1.0.3', port: 5353, outPort: 1 }),
    backend({ id: 5, addr: 'fd00:1::3', port: 7001, outPort: 2 }),
  ];
  const b = (ids) => bes.filter((x) => ids.includes(x.id));
  return mkIr({
    frontends: [
      frontend({ id: 1, addr: '10.96.0.1', port: 80, proto: 'TCP', flags: L.FEF_AFFINITY }, b([1, 2])),
      frontend({ id: 2, addr: 'fd00:96::1', port: 80, proto: 'TCP' }, b([3])),
      frontend({ id: 3, addr: '10.96.0.2', port: 53, proto: 'UDP', flags: L.FEF_MASQUERADE }, b([4])),
      frontend({ id: 4, addr: 'fd00:96::2', port: 7000, proto: 'SCTP' }, b([5])),
      frontend({ id: 5, addr: '10.96.0.3', port: 53, proto: 'UDP' }, []),
      frontend({ id: 6, addr: 'fd00:96::3', port: 80, proto: 'TCP' }, []),
    ],
    backends: bes,
    routes: [{ prefix: '172.16.0.0/12', outPort: 4, dstMac: MAC.rtDst, srcMac: MAC.rtSrc }],
    snatV4: '10.255.0.1', snatV6: 'fd00:ff::1',
  });
}

/** Valid frames covering every parser and NAT path; replies/ICMP errors match flows the client
 *  frames create when run first. */
function validFrames() {
  const c = { srcMac: MAC.client, dstMac: MAC.node };
  const be = { srcMac: MAC.beDst, dstMac: MAC.beSrc };
  const fr = [
    B.frame({ ...c, src: '10.0.0.1', dst: '10.96.0.1', proto: 'TCP', sport: 1000, dport: 80, flags: 'S', tcpOptions: Uint8Array.from([2, 4, 5, 180]) }),
    B.frame({ ...c, src: '10.0.0.1', dst: '10.96.0.2', proto: 'UDP', sport: 1001, dport: 53, payload: 'abcdefgh' }),
    B.frame({ ...c, src: 'fd00::1', dst: 'fd00:96::1', proto: 'TCP', sport: 1002, dport: 80, flags: 'PA', payload: 'hello' }),
    B.frame({ ...c, src: 'fd00::1', dst: 'fd00:96::2', proto: 'SCTP', sport: 1003, dport: 7000, payload: 'data!' }),
    B.frame({ ...c, src: '10.0.0.1', dst: '10.96.0.3', proto: 'UDP', sport: 1004, dport: 53, payload: new Uint8Array(700), df: true }),
    B.frame({ ...c, src: 'fd00::1', dst: 'fd00:96::3', proto: 'TCP', sport: 1005, dport: 80, flags: 'S' }),
    B.frame({ ...c, src: '10.0.0.1', dst: '10.96.0.1', proto: 'TCP', sport: 1006, dport: 80, flags: 'S', vlan: 9 }),
    B.frame({ ...c, src: '10.0.0.1', dst: '10.96.0.2', proto: 'UDP', sport: 1007, dport: 53, ipOptions: [1, 1, 1, 1, 7, 3, 4], mf: true }),
    B.frame({ ...c, src: 'fd00::1', dst: 'fd00:96::1', proto: 'TCP', sport: 1008, dport: 80, v6Ext: [{ type: 0 }, { type: 43, bytes: 16 }, { type: 44, more: true }] }),
    B.frame({ ...c, src: '10.0.0.1', dst: '172.16.5.5', proto: 'ICMP' }),
    B.frame({ ...c, src: '10.0.0.1', dst: '172.16.5.5', proto: 47, payload: 'gre' }),
    B.arpRequest({ senderMac: MAC.client, senderIp: '10.0.0.1', targetIp: '10.0.0.2' }),
    B.neighborSolicitation({ senderMac: MAC.client, senderIp: 'fe80::1', targetIp: 'fd00::2' }),
    // replies and ICMP errors for the flows above (backend 1 or 2 for frontend 1: both tried)
    B.frame({ ...be, src: '10.1.0.1', dst: '10.0.0.1', proto: 'TCP', sport: 8080, dport: 1000, flags: 'SA' }),
    B.frame({ ...be, src: '10.1.0.2', dst: '10.0.0.1', proto: 'TCP', sport: 8080, dport: 1000, flags: 'SA' }),
    B.frame({ ...be, src: 'fd00:1::1', dst: 'fd00::1', proto: 'TCP', sport: 8080, dport: 1002, flags: 'A' }),
    B.icmpError({ ...be, src: '10.1.0.1', dst: '10.0.0.1', inner: B.ipPacket({ src: '10.0.0.1', dst: '10.1.0.1', proto: 'TCP', sport: 1000, dport: 8080, ttl: 63 }), quoteLen: 28 }),
    B.icmpError({ ...be, src: '10.1.0.2', dst: '10.0.0.1', kind: 'time_exceeded', inner: B.ipPacket({ src: '10.0.0.1', dst: '10.1.0.2', proto: 'TCP', sport: 1000, dport: 8080, ttl: 63, payload: 'xx' }) }),
    B.icmpError({ ...be, src: 'fd00:1::1', dst: 'fd00::1', kind: 'packet_too_big', mtu: 1280, inner: B.ipPacket({ src: 'fd00::1', dst: 'fd00:1::1', proto: 'TCP', sport: 1002, dport: 8080, ttl: 63, payload: 'hello' }) }),
    B.icmpError({ ...be, src: 'fd00:1::1', dst: 'fd00::1', kind: 'packet_too_big', mtu: 1280, inner: B.ipPacket({ src: 'fd00::1', dst: 'fd00:1::1', proto: 'TCP', sport: 1002, dport: 8080, ttl: 63, payload: 'hello', v6Ext: [{ type: 0 }, { type: 44, more: true }] }) }),
    B.icmpError({ ...c, src: '10.0.0.1', dst: '10.96.0.1', inner: B.ipPacket({ src: '10.96.0.1', dst: '10.0.0.1', proto: 'TCP', sport: 80, dport: 1000, ttl: 63 }) }),
  ];
  return fr;
}

class Harness {
  constructor(t) {
    this.t = t;
    this.ir = fuzzIr();
    // egress MTUs (docs/core.md "Egress MTU"): some frames exceed them (answered or dropped)
    const portMtu = { 1: 720, 2: 64, 4: 100 };
    this.core = Core.create({ flows: 4096, batchMax: BATCH, slotSize: SLOT, portMtu });
    this.core.applyIr(this.ir);
    this.model = new ReferenceModel(this.ir, { flows: 4096, slotSize: SLOT, portMtu });
    this.tally = { verdicts: [0, 0, 0, 0], reasons: new Array(L.REASON_COUNT).fill(0), rx: 0 };
    this.now = 1000;
    this.failures = 0;
  }

  fail(msg) {
    this.failures++;
    if (this.failures <= 5) this.t.fail(msg);
  }

  /** Runs up to BATCH frames as one batch with canaries; checks everything listed at the top. */
  batch(frames, inPort = 3) {
    const { core } = this;
    const u8 = core.u8;
    const arena = core.map.arena, desc = core.map.desc, trace = core.map.trace;
    u8.fill(CANARY, arena, arena + BATCH * SLOT);
    u8.fill(CANARY, desc, desc + BATCH * L.DESC_SIZE);
    u8.fill(CANARY, trace, trace + BATCH * L.TRACE_SIZE);
    frames.forEach((f, i) => core.writeFrame(i, f, inPort));
    core.process(frames.length, this.now);
    const mres = this.model.processBatch(frames.map((frame) => ({ frame, inPort })), this.now);
    const hex = (f) => Buffer.from(f).toString('hex').slice(0, 400);
    for (let i = 0; i < frames.length; i++) {
      const d = core.descriptor(i);
      const inLen = Math.min(frames[i].length, SLOT);
      const what = () => `frame ${hex(frames[i])} (len ${frames[i].length})`;
      if (d.verdict > 3) { this.fail(`bad verdict ${d.verdict} for ${what()}`); continue; }
      if (!d.reason || !REASON_NAMES[d.reason]) this.fail(`bad reason ${d.reason} for ${what()}`);
      else if (reasonInfo(d.reason)?.verdict !== VERDICT_NAMES[d.verdict]) this.fail(`reason ${REASON_NAMES[d.reason]} with verdict ${d.verdict} (table: ${reasonInfo(d.reason)?.verdict}) for ${what()}`);
      if ((d.verdict === L.V_DROP || d.verdict === L.V_TO_HOST) && d.outPort !== L.PORT_NONE) this.fail(`out port ${d.outPort} on ${d.verdict} for ${what()}`);
      if (d.verdict === L.V_FORWARD && d.outPort === L.PORT_NONE) this.fail(`forward to PORT_NONE for ${what()}`);
      if (d.verdict === L.V_REJECT && d.outPort !== inPort) this.fail(`reject not to in_port for ${what()}`);
      const outLen = d.verdict === L.V_REJECT ? d.len : inLen;
      if (d.verdict === L.V_REJECT && (d.len < 14 || d.len > SLOT)) this.fail(`reject length ${d.len} for ${what()}`);
      if (d.verdict !== L.V_REJECT && d.len !== Math.min(frames[i].length, 0xffff)) this.fail(`length changed to ${d.len} for ${what()}`);
      const from = core.slotOffset(i) + Math.max(inLen, outLen), to = core.slotOffset(i) + SLOT;
      for (let k = from; k < to; k++) if (u8[k] !== CANARY) { this.fail(`slot ${i} written at +${k - core.slotOffset(i)} past its frame: ${what()}`); break; }
      this.tally.verdicts[d.verdict]++;
      this.tally.reasons[d.reason]++;
      this.tally.rx++;
      const c = summarize({ verdictCode: d.verdict, reasonCode: d.reason, outPort: d.outPort, frame: core.readFrame(i) });
      const m = summarize(mres[i]);
      if (c.verdict !== m.verdict || c.reason !== m.reason || c.outPort !== m.outPort || c.hex !== m.hex) {
        this.fail(`core and model differ for ${what()}\n  core  ${JSON.stringify(c)}\n  model ${JSON.stringify(m)}`);
      }
    }
    for (let k = core.slotOffset(frames.length); k < arena + BATCH * SLOT; k++) if (u8[k] !== CANARY) { this.fail(`unused slot area written at ${k - arena}`); break; }
    for (let k = desc + frames.length * L.DESC_SIZE; k < desc + BATCH * L.DESC_SIZE; k++) if (u8[k] !== CANARY) { this.fail('unused descriptor written'); break; }
    for (let k = trace; k < trace + BATCH * L.TRACE_SIZE; k++) if (u8[k] !== CANARY) { this.fail('trace area written with trace off'); break; }
    this.now += 3;
  }

  run(frames, inPort) {
    for (let i = 0; i < frames.length; i += BATCH) this.batch(frames.slice(i, i + BATCH), inPort);
  }

  checkCounters() {
    const c = this.core.counters();
    const t = this.t;
    t.is(c.global.rx_packets, this.tally.rx, 'rx_packets = frames processed');
    t.is(c.global.forward + c.global.reject + c.global.to_host + c.global.drop, this.tally.rx, 'verdict counters add up');
    t.deepEqual([c.global.drop, c.global.forward, c.global.reject, c.global.to_host], this.tally.verdicts, 'per-verdict counters');
    let sum = 0;
    for (let r = 1; r < L.REASON_COUNT; r++) {
      const name = REASON_NAMES[r];
      if (!name) { t.is(this.tally.reasons[r], 0, `reserved reason ${r} used`); continue; }
      sum += c.reasons[name];
      if (c.reasons[name] !== this.tally.reasons[r]) t.fail(`reason ${name}: counter ${c.reasons[name]} vs descriptors ${this.tally.reasons[r]}`);
    }
    t.is(sum, this.tally.rx, 'reason counters add up to rx_packets');
    t.is(this.tally.reasons[0], 0, 'no frame without a reason');
    t.is(this.failures, 0, `${this.failures} frame checks failed`);
  }
}

test('truncations of valid frames at every length', (t) => {
  const h = new Harness(t);
  const valid = validFrames();
  h.run(valid);
  for (const f of valid) {
    const cuts = [];
    for (let n = 0; n < f.length; n++) cuts.push(f.subarray(0, n));
    h.run(cuts);
  }
  h.checkCounters();
  // a cut inside L4 is caught by the IP length check first (total length > bytes present)
  for (const r of [L.REASON_DROP_TRUNCATED_L2, L.REASON_DROP_TRUNCATED_L3, L.REASON_DROP_BAD_IP_LENGTH]) t.true(h.tally.reasons[r] > 0, `${reasonName(r)} never produced`);
});

test('bogus IHL, lengths, data offsets; zero-length and oversize frames', (t) => {
  const h = new Harness(t);
  const valid = validFrames();
  h.run(valid);
  const frames = [];
  for (const f of valid) {
    const l3 = f[12] === 0x81 ? 18 : 14;
    const et = (f[l3 - 2] << 8) | f[l3 - 1];
    if (et === 0x0800) {
      for (let ihl = 0; ihl < 16; ihl++) { const g = f.slice(); g[l3] = 0x40 | ihl; frames.push(g); }
      for (const tot of [0, 1, 19, 20, 21, f.length - l3 - 1, f.length - l3, f.length - l3 + 1, 0xffff]) { const g = f.slice(); g[l3 + 2] = tot >> 8; g[l3 + 3] = tot & 0xff; frames.push(g); }
      const l4 = l3 + (f[l3] & 15) * 4;
      if (f[l3 + 9] === 6) for (let doff = 0; doff < 16; doff++) { const g = f.slice(); g[l4 + 12] = doff << 4; frames.push(g); }
    } else if (et === 0x86dd) {
      for (const pl of [0, 1, 7, 8, f.length - l3 - 41, f.length - l3 - 40, f.length - l3 - 39, 0xffff]) { const g = f.slice(); g[l3 + 4] = (pl >> 8) & 0xff; g[l3 + 5] = pl & 0xff; frames.push(g); }
      for (let v = 0; v < 16; v++) { const g = f.slice(); g[l3] = (v << 4) | (g[l3] & 15); frames.push(g); }
    }
    // padded with Ethernet trailer bytes: the IP length decides
    const padded = new Uint8Array(f.length + 37); padded.set(f); padded.fill(0xee, f.length); frames.push(padded);
  }
  frames.push(new Uint8Array(0), new Uint8Array(1), new Uint8Array(SLOT), new Uint8Array(SLOT + 1), new Uint8Array(4000), new Uint8Array(0xffff));
  const big = B.frame({ src: '10.0.0.1', dst: '10.96.0.3', proto: 'UDP', sport: 9, dport: 53, payload: new Uint8Array(SLOT - 14 - 28) });
  frames.push(big); // exactly a slot: reject must not grow it past the slot
  const bigV6 = B.frame({ src: 'fd00::1', dst: 'fd00:96::3', proto: 'TCP', sport: 9, dport: 80, payload: new Uint8Array(SLOT - 14 - 60) });
  frames.push(bigV6);
  h.run(frames);
  h.run([new Uint8Array(60)], L.PORT_NONE);
  h.checkCounters();
  for (const r of [L.REASON_DROP_BAD_IHL, L.REASON_DROP_BAD_IP_LENGTH, L.REASON_DROP_BAD_L4_HEADER, L.REASON_DROP_OVERSIZE, L.REASON_DROP_BAD_IP_VERSION, L.REASON_DROP_BAD_PORT]) {
    t.true(h.tally.reasons[r] > 0, `${reasonName(r)} never produced`);
  }
});

test('random bytes and random ethertypes', (t) => {
  const h = new Harness(t);
  const rnd = mulberry32(12345);
  const frames = [];
  for (let i = 0; i < 20000; i++) {
    const len = rnd() < 0.9 ? Math.floor(rnd() * 120) : Math.floor(rnd() * 2200);
    const f = new Uint8Array(len);
    for (let k = 0; k < len; k++) f[k] = Math.floor(rnd() * 256);
    if (len >= 14 && rnd() < 0.7) {
      const et = [0x0800, 0x86dd, 0x8100, 0x0806][Math.floor(rnd() * 4)];
      f[12] = et >> 8; f[13] = et & 0xff;
      if (et === 0x0800 && len > 14) f[14] = 0x45;
      if (et === 0x86dd && len > 14) f[14] = 0x60;
      if (et === 0x8100 && len >= 18) { f[16] = 0x08; f[17] = 0; }
    }
    frames.push(f);
  }
  h.run(frames);
  h.checkCounters();
});

test('200k random bit flips of valid frames (also through trace and dry-run)', (t) => {
  const h = new Harness(t);
  const valid = validFrames();
  h.run(valid);
  const rnd = mulberry32(777);
  const N = 200_000;
  let batch = [];
  for (let i = 0; i < N; i++) {
    const g = valid[Math.floor(rnd() * valid.length)].slice();
    const flips = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < flips; k++) {
      // bias the flips toward the headers, where the parser branches
      const at = rnd() < 0.8 ? Math.floor(rnd() * Math.min(g.length, 80)) : Math.floor(rnd() * g.length);
      g[at] ^= 1 << Math.floor(rnd() * 8);
    }
    batch.push(g);
    if (batch.length === BATCH) { h.batch(batch); batch = []; }
    if (i % 50_000 === 0) h.run(valid);   // keep flows alive so replies / ICMP errors match
  }
  if (batch.length) h.batch(batch);
  h.checkCounters();
  // trace on and dry-run go through the same parsing with extra writes: no trap, sane records
  const sample = [];
  for (let i = 0; i < 2000; i++) { const g = valid[i % valid.length].slice(); g[Math.floor(rnd() * Math.min(g.length, 80))] ^= 1 << (i % 8); sample.push(g); }
  const before = h.core.counters().global.rx_packets;
  for (const dry of [true, false]) {
    const res = h.core.trace(sample, 3, dry);
    t.is(res.length, sample.length);
    t.true(res.every((r) => r.trace.verdict === r.verdictCode && r.trace.reason === r.reasonCode));
  }
  t.is(h.core.counters().global.rx_packets, before + sample.length, 'dry-run counts nothing, live trace counts');
});
