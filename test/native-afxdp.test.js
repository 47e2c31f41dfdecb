// AF_XDP ports: an XDP program (assembled and loaded by the addon with bpf(2)) redirects a veth's
// frames to AF_XDP sockets (copy mode on veth). Frames sent by an AF_PACKET peer arrive
// byte-exact; frames sent with txBurst arrive byte-exact at the peer; the program is attached
// while the port is open and gone after close; where XDP cannot be used (here: the interface
// already has an XDP program) openAfXdpOrPacket falls back to AF_PACKET and says why. Needs root.
import test from 'ava';
import { release } from 'node:os';
import { run } from '../dist/src/netns.js';
import { AfPacketPort, AfXdpPort, nativeAddon, openAfXdpOrPacket } from '../dist/src/ports/native.js';
import { rootOnly, destroyLab, vethPairLab, makeArea, putTx, receive, ofEthertype } from './lib/native-area.js';

const { isRoot, rootTest } = rootOnly(test, 'native-afxdp', 'network namespaces, CAP_NET_ADMIN, CAP_BPF');
const ETHERTYPE = 0x88b5;
const MAC_A = '02:0a:00:00:00:0a', MAC_B = '02:0a:00:00:00:0b';

function frame(len, seq) {
  const f = new Uint8Array(len);
  f.set([2, 0x0a, 0, 0, 0, 0x0b, 2, 0x0a, 0, 0, 0, 0x0a, ETHERTYPE >> 8, ETHERTYPE & 0xff]);
  new DataView(f.buffer).setUint32(14, seq);
  for (let i = 18; i < len; i++) f[i] = (i * 29 + seq * 3) & 0xff;
  return f;
}

let lab, nsA, nsB;
test.before(() => {
  if (isRoot) ({ lab, nsA, nsB } = vethPairLab('nx', 'va', 'vb', { macA: MAC_A, macB: MAC_B }));
});
test.after.always(() => destroyLab(lab));

/** Opens an AF_XDP port on vb. The kernel releases the previous test's socket and XDP program
 * asynchronously after close(), so a bind right after it can still find queue 0 busy: retry that
 * (bounded) rather than fail on a race the test is not about. */
function openXdp(opts) {
  const deadline = Date.now() + 3000;
  for (;;) {
    try { return new AfXdpPort(opts); } catch (e) {
      if (e.code !== 'EBUSY' || Date.now() > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

const xdpAttached = () => /prog\/xdp .*name wdp_xsk/.test(run('ip', ['-n', nsB, '-d', 'link', 'show', 'vb']).stdout);

rootTest('frames arrive byte-exact in both directions; the XDP program lives exactly as long as the port', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const x = openXdp({ ifname: 'vb', netns: nsB, index: 1 });
  t.teardown(() => { a.close(); x.close(); });
  t.is(x.kind, 'af_xdp');
  t.is(x.deviceMac, MAC_B);
  t.is(x.zeroCopy, false, 'veth offers no zero-copy: the kernel bound copy mode (XDP_OPTIONS)');
  t.true(xdpAttached(), 'program attached while open');

  const lens = [60, 61, 128, 999, 1514];
  const rounds = 40; // 200 frames: more than one burst, across the fill ring's reuse
  let sent = 0;
  const got = [];
  const rx = makeArea(256, 2048);
  for (let r = 0; r < rounds; r++) {
    const tx = makeArea(8, 2048);
    lens.forEach((len, k) => putTx(tx, k, frame(len, r * 8 + k), 0));
    sent += a.txBurst(tx, lens.length);
    got.push(...ofEthertype(receive(x, rx, lens.length, 3000), ETHERTYPE));
  }
  t.is(sent, rounds * lens.length);
  t.is(got.length, sent);
  got.forEach((g, i) => {
    const r = Math.floor(i / lens.length), k = i % lens.length;
    t.deepEqual(g.bytes, frame(lens[k], r * 8 + k), `frame ${i}`);
    t.is(g.inPort, 1);
  });

  const tx = makeArea(8, 2048);
  [64, 700, 1514].forEach((len, k) => putTx(tx, k, frame(len, 1000 + k), 1));
  putTx(tx, 3, frame(80, 2000), 7); // for another port: not sent
  t.is(x.txBurst(tx, 4), 3);
  const back = ofEthertype(receive(a, makeArea(16, 2048), 3, 3000), ETHERTYPE);
  t.deepEqual(back.map((g) => g.len), [64, 700, 1514]);
  back.forEach((g, k) => t.deepEqual(g.bytes, frame([64, 700, 1514][k], 1000 + k)));
  const s = x.stats();
  t.is(s.rxPackets, sent);
  t.is(s.txPackets, 3);

  x.close();
  t.false(xdpAttached(), 'closing the port detaches the program');
});

rootTest('otherHost false: unicast frames addressed to another MAC are left to the kernel (not redirected); those to the port\'s own MAC, broadcast and multicast arrive; by default all arrive', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  t.teardown(() => a.close());
  const dsts = [[2, 0x0a, 0, 0, 0, 0x0b], [2, 0x0a, 0, 0, 0, 0x0c], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [1, 0, 0x5e, 0, 0, 0xfb]]; // own, other, broadcast, multicast
  for (const [otherHost, want] of [[false, [0, 2, 3]], [undefined, [0, 1, 2, 3]]]) {
    const x = openXdp({ ifname: 'vb', netns: nsB, index: 1, ...(otherHost === undefined ? {} : { otherHost }) });
    try {
      const tx = makeArea(8, 2048);
      dsts.forEach((dst, k) => { const f = frame(80, k); f.set(dst, 0); putTx(tx, k, f, 0); });
      t.is(a.txBurst(tx, dsts.length), dsts.length);
      const rx = makeArea(64, 2048);
      const got = ofEthertype([...receive(x, rx, want.length, 3000), ...receive(x, rx, 1, 200)], ETHERTYPE);
      t.deepEqual(got.map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(14)).sort(), want, `otherHost ${otherHost}`);
    } finally { x.close(); }
  }
});

rootTest('otherHost false with a `mac` other than the interface\'s: frames to that MAC (the one the port answers ARP/ND with) are redirected, those to the interface\'s left to the kernel', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  t.teardown(() => a.close());
  const x = openXdp({ ifname: 'vb', netns: nsB, index: 1, mac: '02:0a:00:00:00:0c', otherHost: false });
  t.teardown(() => x.close());
  const dsts = [[2, 0x0a, 0, 0, 0, 0x0c], [2, 0x0a, 0, 0, 0, 0x0b], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]; // advertised, the interface's, broadcast
  const tx = makeArea(8, 2048);
  dsts.forEach((dst, k) => { const f = frame(80, k); f.set(dst, 0); putTx(tx, k, f, 0); });
  t.is(a.txBurst(tx, dsts.length), dsts.length);
  const rx = makeArea(64, 2048);
  const got = ofEthertype([...receive(x, rx, 2, 3000), ...receive(x, rx, 1, 200)], ETHERTYPE);
  t.deepEqual(got.map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(14)).sort(), [0, 2]);
});

rootTest('where XDP cannot be used, openAfXdpOrPacket falls back to AF_PACKET and says why', (t) => {
  const first = openXdp({ ifname: 'vb', netns: nsB, index: 1 });
  t.teardown(() => first.close());
  const r = openAfXdpOrPacket({ ifname: 'vb', netns: nsB, index: 2 });
  t.teardown(() => r.port.close());
  t.is(r.port.kind, 'af_packet');
  t.regex(r.fallback ?? '', /another AF_XDP socket or XDP program/);
  t.throws(() => new AfXdpPort({ ifname: 'nope0', netns: nsB, index: 3 }), { code: 'ENODEV' });
});

rootTest('a burst larger than the rings: kernel drops are counted, what arrives is intact, the port recovers', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const x = openXdp({ ifname: 'vb', netns: nsB, index: 1, rxRing: 1024 });
  t.teardown(() => { a.close(); x.close(); });
  const tx = makeArea(256, 2048);
  let sent = 0;
  for (let r = 0; r < 12; r++) { // 3072 frames, nothing drained: more than a 1024-frame ring holds
    for (let k = 0; k < 256; k++) putTx(tx, k, frame(100, r * 256 + k), 0);
    sent += a.txBurst(tx, 256);
  }
  const got = ofEthertype(receive(x, makeArea(256, 2048), sent, 3000), ETHERTYPE);
  const s = x.stats();
  t.true(got.length > 0 && got.length < sent, `got ${got.length} of ${sent}`);
  t.is(s.kernelDrops, sent - got.length, JSON.stringify(s));
  for (const g of got) t.deepEqual(g.bytes, frame(100, new DataView(g.bytes.buffer).getUint32(14)));
  const tx2 = makeArea(4, 2048);
  putTx(tx2, 0, frame(200, 99999), 0);
  t.is(a.txBurst(tx2, 1), 1);
  const after = ofEthertype(receive(x, makeArea(16, 2048), 1, 3000), ETHERTYPE);
  t.deepEqual(after.map((g) => g.len), [200], 'frames flow again');
});

/** An AF_PACKET port on va and an AF_XDP port on vb (closed at the test's end), and a tx area of
 * `n` frames `frameAt(k)` for vb's port to send. */
function burstPair(t, n, frameAt) {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const x = openXdp({ ifname: 'vb', netns: nsB, index: 1 });
  t.teardown(() => { a.close(); x.close(); });
  const tx = makeArea(n, 2048);
  for (let k = 0; k < n; k++) putTx(tx, k, frameAt(k), 1);
  return { a, x, tx };
}

rootTest('one txBurst of 200 frames: all of them leave (a copy-mode kick sends at most its budget; the port kicks until the ring drains)', (t) => {
  const N = 200;
  const { a, x, tx } = burstPair(t, N, (k) => frame(100, 5000 + k));
  t.is(x.txBurst(tx, N), N);
  const got = ofEthertype(receive(a, makeArea(256, 2048), N, 3000), ETHERTYPE);
  t.is(got.length, N, 'every frame of the one burst arrived, no second burst needed');
  got.forEach((g, k) => t.deepEqual(g.bytes, frame(100, 5000 + k)));
  t.is(x.stats().txErrors, 0);
});

/** Whether this kernel lets an AF_XDP socket send more than 32 frames per copy-mode kick
 * (XDP_MAX_TX_SKB_BUDGET, Linux 6.17). */
function kernelHasTxBudget() {
  const [maj, min] = release().split('.').map((x) => parseInt(x, 10));
  return maj > 6 || (maj === 6 && min >= 17);
}

rootTest('one txBurst of 256 frames (a whole batch) is one transmit kick where the kernel takes a larger budget, at most 8 (32 a kick) elsewhere; txKicks counts them, rxFrames the frames received', (t) => {
  const N = 256;
  const { a, x, tx } = burstPair(t, N, (k) => frame(80, 7000 + k));
  const kicks0 = x.stats().txKicks;
  t.is(x.txBurst(tx, N), N);
  const kicks = x.stats().txKicks - kicks0;
  if (kernelHasTxBudget()) t.is(kicks, 1, `kernel ${release()}: XDP_MAX_TX_SKB_BUDGET 256, one sendto for the batch`);
  else t.true(kicks >= 1 && kicks <= 10, `kernel ${release()}: 32 frames a kick, got ${kicks} kicks`);
  const rx0 = nativeAddon().rxFrames();
  const got = ofEthertype(receive(a, makeArea(N, 2048), N, 3000), ETHERTYPE);
  t.is(got.length, N, 'every frame of the burst arrived');
  t.true(nativeAddon().rxFrames() - rx0 >= N, 'the process-wide received-frames counter counts them');
  got.forEach((g, k) => t.deepEqual(g.bytes, frame(80, 7000 + k)));
  t.is(x.stats().txErrors, 0);
});

rootTest('rxRing: the default 4096-frame RX ring holds the 3072-frame burst a 1024-frame ring drops; bad sizes are refused by name', (t) => {
  for (const bad of [100, 32, 32768, 0]) {
    const e = t.throws(() => new AfXdpPort({ ifname: 'vb', netns: nsB, index: 1, rxRing: bad }), { code: 'EINVAL' });
    t.regex(e.message, /rxRing must be a power of two in 64\.\.16384/);
  }
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const x = openXdp({ ifname: 'vb', netns: nsB, index: 1 });
  t.teardown(() => { a.close(); x.close(); });
  const tx = makeArea(256, 2048);
  let sent = 0;
  for (let r = 0; r < 12; r++) { // the same 3072 frames, nothing drained
    for (let k = 0; k < 256; k++) putTx(tx, k, frame(100, r * 256 + k), 0);
    sent += a.txBurst(tx, 256);
  }
  const got = ofEthertype(receive(x, makeArea(256, 2048), sent, 3000), ETHERTYPE);
  t.is(x.stats().kernelDrops, 0, JSON.stringify(x.stats()));
  t.is(got.length, sent);
  got.forEach((g, k) => t.deepEqual(g.bytes, frame(100, k)));
});

rootTest('xdpMode: the program runs where asked (generic: xdpgeneric on the link, native: the driver hook) and frames arrive byte-exact either way; a bad mode is refused by name', (t) => {
  const e = t.throws(() => new AfXdpPort({ ifname: 'vb', netns: nsB, index: 1, xdpMode: 'offload' }), { code: 'EINVAL' });
  t.regex(e.message, /xdpMode must be "native" or "generic"/);
  for (const mode of ['generic', 'native']) {
    const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
    const x = openXdp({ ifname: 'vb', netns: nsB, index: 1, xdpMode: mode });
    try {
      const link = run('ip', ['-n', nsB, '-d', 'link', 'show', 'vb']).stdout;
      t.is(/\bxdpgeneric\b/.test(link), mode === 'generic', link);
      const tx = makeArea(8, 2048);
      [60, 1514].forEach((len, k) => putTx(tx, k, frame(len, 7000 + k), 0));
      t.is(a.txBurst(tx, 2), 2);
      const got = ofEthertype(receive(x, makeArea(16, 2048), 2, 3000), ETHERTYPE);
      t.deepEqual(got.map((g) => g.bytes), [frame(60, 7000), frame(1514, 7001)], mode);
    } finally { a.close(); x.close(); }
  }
});

rootTest('two AF_XDP ports on one two-queue veth, one queue each, sharing one XDP program: every frame arrives once, on either port, intact; bad queues and a non-AF_XDP port to share are refused', (t) => {
  // a second pair with two queues on each side (created inside the namespaces)
  lab.veth(nsA, 'qa', nsB, 'qb', { queues: 2 });
  const macQb = JSON.parse(run('ip', ['-n', nsB, '-j', 'link', 'show', 'qb']).stdout)[0].address;
  run('ip', ['-n', nsA, 'addr', 'add', '10.77.0.1/24', 'dev', 'qa']);
  run('ip', ['-n', nsA, 'neigh', 'replace', '10.77.0.2', 'lladdr', macQb, 'dev', 'qa', 'nud', 'permanent']);

  t.throws(() => new AfXdpPort({ ifname: 'qb', netns: nsB, index: 1, queues: [2] }), { code: 'EINVAL', message: /queues \[2\] must be distinct receive queues of the interface \(0\.\.1\)/ });
  const ap = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  t.teardown(() => ap.close());
  t.throws(() => new AfXdpPort({ ifname: 'qb', netns: nsB, index: 1, shareWith: ap }), { code: 'EINVAL', message: /not an AF_XDP port/ });

  const x0 = openXdp({ ifname: 'qb', netns: nsB, index: 1, queues: [0] });
  const x1 = new AfXdpPort({ ifname: 'qb', netns: nsB, index: 2, queues: [1], shareWith: x0 });
  t.teardown(() => { x1.close(); x0.close(); });
  t.is((run('ip', ['-n', nsB, '-d', 'link', 'show', 'qb']).stdout.match(/prog\/xdp/g) ?? []).length, 1, 'one program for both ports');
  // 64 UDP sockets: each gets its own random transmit hash, so the sender's veth spreads them
  // over its two queues, which are the receiver's two queues
  const N = 64;
  const script = `const d = require('dgram'); let left = ${N};
    for (let i = 0; i < ${N}; i++) { const s = d.createSocket('udp4'); const b = Buffer.alloc(32, i); b.writeUInt32BE(0x77770000 + i, 0);
      s.send(b, 9999, '10.77.0.2', () => { s.close(); if (--left === 0) process.exit(0); }); }`;
  run('ip', ['netns', 'exec', nsA, process.execPath, '-e', script]);
  const udp = (frames) => frames.filter((f) => f.len >= 42 + 32 && f.bytes[12] === 8 && f.bytes[23] === 17 && new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint16(36) === 9999);
  const got = [[], []];
  const area = makeArea(256, 2048);
  const deadline = Date.now() + 5000;
  while (got[0].length + got[1].length < N && Date.now() < deadline) {
    [x0, x1].forEach((x, k) => got[k].push(...udp(receive(x, area, 1, 20)).map((f) => ({ ...f, bytes: f.bytes.slice() }))));
  }
  t.true(got[0].length > 0 && got[1].length > 0, `frames per port: ${got[0].length}, ${got[1].length}`);
  const seqs = [...got[0], ...got[1]].map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(42) - 0x77770000).sort((a, b) => a - b);
  t.deepEqual(seqs, Array.from({ length: N }, (_, i) => i), 'each datagram once');
  for (const f of [...got[0], ...got[1]]) {
    const i = new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(42) - 0x77770000;
    t.deepEqual([...f.bytes.slice(46, 74)], new Array(28).fill(i));
  }
  x1.close();
  t.is((run('ip', ['-n', nsB, '-d', 'link', 'show', 'qb']).stdout.match(/prog\/xdp/g) ?? []).length, 1, 'the joining port closed: the program stays with the first');
});
