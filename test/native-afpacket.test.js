// AF_PACKET ports through a veth pair between two namespaces this file creates: frames sent with
// txBurst on one end arrive byte-exact in the other end's arena; ring overflow is counted; error
// paths give coded errors. Needs root (namespaces, CAP_NET_RAW); skipped with a reason otherwise.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { run } from '../dist/src/netns.js';
import { rootOnly, destroyLab, vethPairLab, makeArea, putTx, getRx, receive, openWithoutCaps } from './lib/native-area.js';
import { AfPacketPort, NativePort, nativeAddon, wait } from '../dist/src/ports/native.js';
import { numberedFrame } from './lib/frames.js';

const { isRoot, rootTest } = rootOnly(test, 'native-afpacket', 'network namespaces, CAP_NET_RAW');

const ETHERTYPE = 0x88b5; // IEEE local experimental: nothing else on the link uses it
const MAC_A = '02:0a:00:00:00:01';
const MAC_B = '02:0b:00:00:00:02';

const frame = (len, seq, tag = 0) => numberedFrame(len, seq, { dst: MAC_B, src: MAC_A, ethertype: ETHERTYPE, tag });

const ours = (rx) => rx.filter((f) => f.len >= 19 && f.bytes[12] === ETHERTYPE >> 8 && f.bytes[13] === (ETHERTYPE & 0xff));

let lab, nsA, nsB;
test.before(() => {
  if (isRoot) ({ lab, nsA, nsB } = vethPairLab('na', 'va', 'vb', { macA: MAC_A, macB: MAC_B }));
});
test.after.always(() => destroyLab(lab));

rootTest('addon descriptor constants match assembly/layout.ts', (t) => {
  const layout = nativeAddon().layout;
  for (const k of ['DESC_SIZE', 'D_LEN', 'D_IN_PORT', 'D_OUT_PORT', 'D_VERDICT', 'V_FORWARD', 'V_REJECT']) t.is(layout[k], L[k], k);
});

for (const ringVersion of [3, 2]) {
rootTest(`TPACKET_V${ringVersion}: txBurst frames arrive byte-exact in the peer arena, only those for this port`, (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 3 });
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 7, blockSize: 1 << 16, blockCount: 4, ringVersion });
  t.teardown(() => { a.close(); b.close(); });
  t.is(a.deviceMac, MAC_A);
  t.deepEqual([...b.mac], [2, 0x0b, 0, 0, 0, 2]);
  t.true(a.fd >= 0 && b.fd >= 0);

  const tx = makeArea();
  const sent = [];
  let i = 0;
  for (const len of [60, 61, 64, 128, 500, 1000, 1514]) { const f = frame(len, i); putTx(tx, i++, f, 3); sent.push(f); }
  const rej = frame(90, 100); putTx(tx, i++, rej, 3, L.V_REJECT); sent.push(rej);
  putTx(tx, i++, frame(70, 200), 4);                           // another port's frame
  putTx(tx, i++, frame(70, 201), 3, L.V_DROP);                  // dropped by the core
  putTx(tx, i++, frame(70, 202), 3, L.V_TO_HOST);               // slow path, not ours to send
  putTx(tx, i++, frame(70, 203), 3, L.V_FORWARD, 4000);         // D_LEN beyond the slot
  t.is(a.txBurst(tx, i), sent.length);
  const sa = a.stats();
  t.is(sa.txPackets, sent.length);
  t.is(sa.txBytes, sent.reduce((s, f) => s + f.length, 0));
  t.is(sa.txErrors, 1);
  t.is(sa.oversize, 1);

  const rx = makeArea();
  const got = receive(b, rx, sent.length);
  t.is(got.length, sent.length);
  t.deepEqual(ours(got).length, got.length, 'no foreign frames on the link');
  got.forEach((g, k) => {
    t.is(g.inPort, 7);
    t.is(g.len, sent[k].length);
    t.deepEqual(g.bytes, sent[k], `frame ${k} byte-exact`);
  });
  const sb = b.stats();
  t.is(sb.rxPackets, sent.length);
  t.is(sb.rxBytes, sa.txBytes);
  t.is(sb.rxDropped, 0);
  // nothing more arrives: the extra descriptors really were not sent
  t.is(receive(b, rx, 1, 200).length, 0);
});


rootTest(`TPACKET_V${ringVersion}: 802.1Q-tagged frames arrive with their tag (the kernel strips it into metadata; the port puts it back)`, (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: `/var/run/netns/${nsA}`, index: 0 }); // namespace given as a path
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, ringVersion });
  t.teardown(() => { a.close(); b.close(); });
  const tagged = [];
  for (const [tpid, tci] of [[0x8100, 0x0064], [0x8100, 0xe00a], [0x88a8, 0x0123]]) {
    const inner = frame(100, tci);
    const f = new Uint8Array(inner.length + 4);
    f.set(inner.subarray(0, 12), 0);
    f.set([tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff], 12);
    f.set(inner.subarray(12), 16);
    tagged.push(f);
  }
  const tx = makeArea(4, 256);
  tagged.forEach((f, k) => putTx(tx, k, f, 0));
  t.is(a.txBurst(tx, tagged.length), tagged.length);
  const rx = makeArea(16, 2048);
  const got = receive(b, rx, tagged.length);
  t.is(got.length, tagged.length);
  got.forEach((g, k) => t.deepEqual(g.bytes, tagged[k], `tagged frame ${k}`));
});

rootTest(`TPACKET_V${ringVersion}: a burst larger than the RX ring: kernel drops are counted, the rest arrive intact, the ring recovers`, (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  // 2 x 4 KiB blocks: room for a few dozen 200-byte frames (V3) or 8 frame slots (V2, 1 KiB)
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, blockSize: 4096, blockCount: 2, blockTimeoutMs: 1, ringVersion, frameSize: 1024 });
  t.teardown(() => { a.close(); b.close(); });
  t.is(nativeAddon().info(b.handle).ringBytes, 8192);
  const N = 600;
  const tx = makeArea(N, 256);
  for (let k = 0; k < N; k++) putTx(tx, k, frame(200, k), 0);
  t.is(a.txBurst(tx, N), N);

  const rx = makeArea(256, 2048);
  const got = [];
  let drops = 0;
  const deadline = Date.now() + 5000;
  while (got.length + drops < N && Date.now() < deadline) {
    wait([b], 20);
    const n = b.rxBurst(rx, 0, 256);
    for (let k = 0; k < n; k++) got.push(getRx(rx, k));
    drops = b.stats().kernelDrops;
  }
  t.log(`received ${got.length}, kernel drops ${drops}`);
  t.true(got.length > 0 && got.length < N, 'the ring could not hold the burst');
  t.true(drops > 0);
  t.is(got.length + drops, N, 'every frame is either received or counted as dropped');
  t.is(b.stats().rxDropped, drops);
  let last = -1;
  for (const g of got) {
    const seq = new DataView(g.bytes.buffer).getUint32(14);
    t.true(seq > last, 'in order');
    last = seq;
    t.deepEqual(g.bytes, frame(200, seq));
  }
  // after the overflow the ring works normally again (5 frames fit even the 8-slot V2 ring)
  for (let k = 0; k < 5; k++) putTx(tx, k, frame(250, 10000 + k), 0);
  t.is(a.txBurst(tx, 5), 5);
  const again = receive(b, rx, 5);
  t.is(again.length, 5);
  again.forEach((g, k) => t.deepEqual(g.bytes, frame(250, 10000 + k)));
});

rootTest(`TPACKET_V${ringVersion}: frames larger than a slot are dropped and counted as oversize`, (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, blockSize: 1 << 16, blockCount: 4, ringVersion });
  t.teardown(() => { a.close(); b.close(); });
  const tx = makeArea(8, 2048);
  const lens = [100, 300, 128, 129, 1500];
  lens.forEach((len, k) => putTx(tx, k, frame(len, k), 0));
  t.is(a.txBurst(tx, lens.length), lens.length);
  const rx = makeArea(16, 128);
  const deadline = Date.now() + 3000;
  const got = [];
  while (got.length + b.stats().oversize < lens.length && Date.now() < deadline) {
    wait([b], 20);
    const n = b.rxBurst(rx, 0, 16);
    for (let k = 0; k < n; k++) got.push(getRx(rx, k));
  }
  t.deepEqual(got.map((g) => g.len), [100, 128]);
  t.deepEqual(got[0].bytes, frame(100, 0));
  t.deepEqual(got[1].bytes, frame(128, 2));
  const s = b.stats();
  t.is(s.oversize, 3);
  t.is(s.rxDropped, 3);
  t.is(s.rxPackets, 2);
});
}

rootTest('TPACKET_V2 without offloads: frames longer than the ring frame slot are counted as oversize, not delivered cut', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, ringVersion: 2, frameSize: 256, offloads: false });
  t.teardown(() => { a.close(); b.close(); });
  const tx = makeArea(4, 2048);
  [120, 600, 150].forEach((len, k) => putTx(tx, k, frame(len, k), 0));
  t.is(a.txBurst(tx, 3), 3);
  const got = receive(b, makeArea(16, 2048), 2);
  t.deepEqual(got.map((g) => g.len), [120, 150]);
  t.deepEqual(got[1].bytes, frame(150, 2));
  t.is(b.stats().oversize, 1);
});

rootTest('TPACKET_V2 with offloads (default): a frame longer than the ring frame slot arrives whole, in order (read from the socket queue)', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, ringVersion: 2, frameSize: 256 });
  t.teardown(() => { a.close(); b.close(); });
  const tx = makeArea(4, 2048);
  [120, 600, 150].forEach((len, k) => putTx(tx, k, frame(len, k), 0));
  t.is(a.txBurst(tx, 3), 3);
  const got = receive(b, makeArea(16, 2048), 3);
  t.deepEqual(got.map((g) => g.len), [120, 600, 150]);
  got.forEach((g, k) => t.deepEqual(g.bytes, frame([120, 600, 150][k], k)));
  t.is(b.stats().oversize, 0);
});

for (const ringVersion of [3, 2]) {
rootTest(`TPACKET_V${ringVersion}: otherHost false drops unicast frames addressed to another MAC and keeps those to its own (the interface's when it opened, even once that is changed), broadcast and multicast; by default all arrive`, (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 3 });
  t.teardown(() => a.close());
  const dsts = { own: MAC_B, other: '02:0c:00:00:00:03', broadcast: 'ff:ff:ff:ff:ff:ff', multicast: '01:00:5e:00:00:fb' };
  const sendAll = () => {
    const tx = makeArea();
    Object.values(dsts).forEach((dst, k) => putTx(tx, k, numberedFrame(80, k, { dst, src: MAC_A, ethertype: ETHERTYPE }), 3));
    t.is(a.txBurst(tx, 4), 4);
  };
  const seqs = (frames) => ours(frames).map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(14)).sort();
  const check = (b, want, what) => {
    sendAll();
    const got = receive(b, makeArea(), want.length);
    t.deepEqual(seqs([...got, ...receive(b, makeArea(), 1, 200)]), want, `${what}: ${want.map((k) => Object.keys(dsts)[k])}`);
  };
  for (const [otherHost, want] of [[false, [0, 2, 3]], [undefined, [0, 1, 2, 3]]]) {
    const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 7, ringVersion, ...(otherHost === undefined ? {} : { otherHost }) });
    try {
      check(b, want, `otherHost ${otherHost}`);
      if (otherHost === false) {
        // the interface's MAC changed under the open port (a late udev policy): the port still
        // takes the frames to the MAC it opened with, which it answers ARP with
        lab.mac(nsB, 'vb', dsts.other);
        try { check(b, [0, 2, 3], 'MAC changed after open'); } finally { lab.mac(nsB, 'vb', MAC_B); }
      }
    } finally { b.close(); }
  }
});
}

rootTest('otherHost false with a `mac` other than the interface\'s: the frames to that MAC (the one the port answers ARP/ND with) arrive, those to the interface\'s are another host\'s', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 3 });
  t.teardown(() => a.close());
  const advertised = '02:0c:00:00:00:04';
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 7, mac: advertised, otherHost: false });
  t.teardown(() => b.close());
  const tx = makeArea();
  [advertised, MAC_B, 'ff:ff:ff:ff:ff:ff'].forEach((dst, k) => putTx(tx, k, numberedFrame(80, k, { dst, src: MAC_A, ethertype: ETHERTYPE }), 3));
  t.is(a.txBurst(tx, 3), 3);
  const got = [...receive(b, makeArea(), 2), ...receive(b, makeArea(), 1, 200)];
  t.deepEqual(ours(got).map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(14)).sort(), [0, 2]);
});

rootTest('PACKET_FANOUT: two sockets in one group share the traffic', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const group = (process.pid % 60000) + 1;
  const b1 = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1, fanout: { group, mode: 'lb' } });
  const b2 = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 2, fanout: { group, mode: 'lb' } });
  t.teardown(() => { a.close(); b1.close(); b2.close(); });
  const N = 40;
  const tx = makeArea(N, 256);
  for (let k = 0; k < N; k++) putTx(tx, k, frame(80, k), 0);
  t.is(a.txBurst(tx, N), N);
  const rx = makeArea(64, 2048);
  let n1 = 0, n2 = 0;
  const deadline = Date.now() + 3000;
  while (n1 + n2 < N && Date.now() < deadline) {
    const ready = wait([b1, b2], 20);
    for (const p of ready) { const n = p.rxBurst(rx, 0, 64); if (p === b1) n1 += n; else n2 += n; }
  }
  t.is(n1 + n2, N);
  t.true(n1 > 0 && n2 > 0, `both members receive (${n1}/${n2})`);
});

rootTest('wait() times out with nothing readable and reports a port with pending frames', (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1 });
  t.teardown(() => { a.close(); b.close(); });
  t.deepEqual(wait([b], 30), []);
  const tx = makeArea(1, 256);
  putTx(tx, 0, frame(64, 1), 0);
  t.is(a.txBurst(tx, 1), 1);
  let ready = [];
  for (let k = 0; k < 100 && ready.length === 0; k++) ready = wait([a, b], 50);
  t.deepEqual(ready, [b]);
});

rootTest('error paths: missing interface, long name, bad namespace, bad area, closed port', (t) => {
  const e1 = t.throws(() => new AfPacketPort({ ifname: 'nosuch0', netns: nsB, index: 0 }));
  t.is(e1.code, 'ENODEV');
  t.regex(e1.message, /nosuch0/);
  const e2 = t.throws(() => new AfPacketPort({ ifname: 'a-very-long-ifname', index: 0 }));
  t.is(e2.code, 'ENAMETOOLONG');
  t.regex(e2.message, /a-very-long-ifname/);
  const e3 = t.throws(() => new AfPacketPort({ ifname: 'vb', netns: `${nsB}-missing`, index: 0 }));
  t.is(e3.code, 'ENOENT');
  const e4 = t.throws(() => new AfPacketPort({ ifname: 'vb', netns: nsB, index: 0, blockSize: 5000 }));
  t.is(e4.code, 'EINVAL');
  t.throws(() => new AfPacketPort({ ifname: 'vb', netns: nsB, index: 0, ringVersion: 2, frameSize: 100 }), { code: 'EINVAL' });
  t.throws(() => new AfPacketPort({ ifname: 'vb', netns: nsB, index: 0, ringVersion: 1 }), { code: 'EINVAL' });
  t.throws(() => new AfPacketPort({ ifname: 'vb', netns: nsB, index: 70000 }), { code: 'EINVAL' });

  const b = new AfPacketPort({ ifname: 'vb', netns: nsB, index: 1 });
  const small = makeArea(4, 256);
  const e5 = t.throws(() => b.rxBurst(small, 1000, 10)); // slots 1000.. lie beyond the memory
  t.is(e5.code, 'ERANGE');
  t.throws(() => b.txBurst({ ...small, memory: 'nope' }, 1), { code: 'EINVAL' });
  b.close();
  b.close(); // idempotent on the object
  for (const f of [() => b.rxBurst(small, 0, 1), () => b.txBurst(small, 1), () => b.stats(), () => wait([b], 0)]) {
    const e = t.throws(f);
    t.is(e.code, 'ECLOSED');
  }
  t.throws(() => nativeAddon().close(b.handle), { code: 'ECLOSED' });
  t.throws(() => NativePort.fromHandle(b.handle, { index: 0 }), { code: 'ECLOSED' });
});

rootTest('without CAP_NET_RAW the error names the capability', (t) => {
  const { status, stderr, out } = openWithoutCaps("new m.AfPacketPort({ ifname: 'lo', index: 0 })");
  t.is(status, 0, stderr);
  t.is(out?.code, 'EPERM', JSON.stringify(out));
  t.regex(out.message, /CAP_NET_RAW/);
});
