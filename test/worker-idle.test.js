// A forwarding worker's idle wait with native ports (an AF_PACKET port on a veth in a namespace the
// test creates, the real addon and its waker): the wait returns undefined — no promise built,
// nothing for the worker's loop to await — once the poll returned, and a promise only when the
// event loop's turn is due. No timing: the waits end by a posted wake (the waker's `taken` counter
// says so) with a timeout far longer than the test.
import test from 'ava';
import { NetnsLab } from '../dist/src/netns.js';
import { AfPacketPort, nativeAddon, nativeAvailable } from '../dist/src/ports/native.js';
import { WorkerIdle } from '../dist/src/daemon/worker-idle.js';
import { WakeReceiver, WakeSender, wakeSignalBuffer } from '../dist/src/daemon/worker-wake.js';
import { rootOnly, destroyLab } from './lib/native-area.js';

const { isRoot, rootTest } = rootOnly(test, 'worker-idle', 'an AF_PACKET port on a veth in a network namespace');
let lab, ns;
test.before(() => {
  if (!isRoot) return;
  const avail = nativeAvailable();
  if (!avail.ok) throw new Error(`native addon unavailable as root: ${avail.reason}`);
  lab = new NetnsLab('wi');
  ns = lab.namespace('a');
  const peer = lab.namespace('b');
  lab.veth(ns, 'wia', peer, 'wib');
});
test.after.always(() => destroyLab(lab));

rootTest('with native ports a wait ended by a wake returns no promise; only the event loop turn does', async (t) => {
  const addon = nativeAddon();
  const waker = addon.wakerOpen();
  const port = new AfPacketPort({ ifname: 'wia', netns: ns, index: 0 });
  t.teardown(() => { port.close(); addon.wakerClose(waker); });
  const signal = wakeSignalBuffer();
  const sender = new WakeSender(signal);
  sender.useWaker(waker);
  const idle = new WorkerIdle(addon, waker, new WakeReceiver(signal));
  idle.setPorts([port]);
  // the first wait is due its event-loop turn (none yet): a promise
  sender.wake();
  const first = idle.wait(performance.now());
  t.true(first instanceof Promise);
  await first;
  t.is(addon.wakerStats(waker).taken, 1, 'ended by the wake');
  // right after: the wait ends in the poll and hands back nothing to await (but when the machine
  // stalled this thread past the event loop's turn: then a promise, which is fine)
  let none = 0;
  for (let i = 2; i <= 21; i++) {
    sender.wake();
    const p = idle.wait(performance.now());
    if (p === undefined) none++; else await p;
    t.is(addon.wakerStats(waker).taken, i, 'ended by the wake, not by its timeout');
  }
  t.true(none >= 10, `${none} of 20 waits without a promise`);
});
