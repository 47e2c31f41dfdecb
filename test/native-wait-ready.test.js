// The addon's waitReady, a forwarding worker's idle wait: it returns a mask of the readable ports
// (bit k for position k of the handles), and when an AF_XDP port's RX ring already holds frames it
// returns at once without poll(2). That is observed through the waker: a poll finds a woken
// waker readable and resets it (wakerStats `taken`), a wait answered from the ring leaves it
// alone. No timing: every wait has a timeout far longer than the test needs. Needs root.
import test from 'ava';
import { AfPacketPort, AfXdpPort, nativeAddon, nativeAvailable, readyBit } from '../dist/src/ports/native.js';
import { rootOnly, destroyLab, vethPairLab, makeArea, putTx } from './lib/native-area.js';

const { isRoot, rootTest } = rootOnly(test, 'native-wait-ready', 'network namespaces, CAP_NET_ADMIN, CAP_BPF');
const ETHERTYPE = 0x88b5;
const MAC_A = '02:0b:00:00:00:0a', MAC_B = '02:0b:00:00:00:0b';
const LONG_MS = 5000;

function frame(dst, src, seq) {
  const f = new Uint8Array(64);
  f.set([...dst, ...src, ETHERTYPE >> 8, ETHERTYPE & 0xff]);
  f[14] = seq;
  return f;
}
const mac = (s) => s.split(':').map((h) => parseInt(h, 16));

let lab, nsA, nsB;
test.before(() => {
  if (isRoot) ({ lab, nsA, nsB } = vethPairLab('wr', 'wra', 'wrb', { macA: MAC_A, macB: MAC_B }));
});
test.after.always(() => destroyLab(lab));

test('readyBit: one bit for each of the first 30 positions, bit 30 shared by the rest', (t) => {
  t.is(readyBit(0), 1);
  t.is(readyBit(29), 1 << 29);
  t.is(readyBit(30), 1 << 30);
  t.is(readyBit(31), 1 << 30);
  t.is(readyBit(4000), 1 << 30);
});

rootTest('a mask of the readable ports; frames in an AF_XDP RX ring return the wait without a poll', (t) => {
  const addon = nativeAddon();
  const waker = addon.wakerOpen();
  const a = new AfPacketPort({ ifname: 'wra', netns: nsA, index: 0 });
  const x = new AfXdpPort({ ifname: 'wrb', netns: nsB, index: 1 });
  t.teardown(() => { a.close(); x.close(); addon.wakerClose(waker); });
  const handles = Uint32Array.from([a.handle, x.handle]);
  const rx = makeArea(16, 2048);
  const tx = makeArea(4, 2048);

  // nothing sent: a woken waker ends the wait (taken by the poll), no port readable
  addon.wake(waker);
  t.is(addon.waitReady(handles, LONG_MS, waker), 0);
  t.is(addon.wakerStats(waker).taken, 1);

  // a frame to the AF_XDP port: bit 1
  putTx(tx, 0, frame(mac(MAC_B), mac(MAC_A), 1), 0);
  t.is(a.txBurst(tx, 1), 1);
  t.is(addon.waitReady(handles, LONG_MS, waker) & readyBit(1), readyBit(1));

  // the frame still in the ring: the wait returns at once and leaves a pending wake for the next
  addon.wake(waker);
  t.is(addon.waitReady(handles, LONG_MS, waker), readyBit(1));
  t.is(addon.wakerStats(waker).taken, 1, 'no poll: the waker was left readable');

  // taken from the ring: the next wait polls (and takes the wake)
  t.is(x.rxBurst(rx, 0, 16), 1);
  t.is(addon.waitReady(handles, LONG_MS, waker), 0);
  t.is(addon.wakerStats(waker).taken, 2);

  // a frame to the AF_PACKET port: bit 0 (its readiness comes from the poll)
  putTx(tx, 0, frame(mac(MAC_A), mac(MAC_B), 2), 1);
  t.is(x.txBurst(tx, 1), 1);
  let mask = 0;
  for (let i = 0; i < 20 && !(mask & readyBit(0)); i++) mask = addon.waitReady(handles, LONG_MS, waker);
  t.is(mask, readyBit(0));
});

test('a handle list that is not a Uint32Array-sized buffer is a clear error', (t) => {
  const avail = nativeAvailable();
  if (!avail.ok) { t.pass(`addon unavailable: ${avail.reason}`); return; }
  const addon = nativeAddon();
  t.throws(() => addon.waitReady(new Uint8Array(3), 0), { message: /Uint32Array/ });
  t.throws(() => addon.waitReady([1, 2], 0), { message: /ArrayBuffer or a typed array/ });
});
