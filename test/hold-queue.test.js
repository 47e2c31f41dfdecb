// The hold queue's bounds, release order, expiry and port removal (src/daemon/hold-queue.ts).
import test from 'ava';
import { HoldQueue } from '../dist/src/daemon/hold-queue.js';

const frame = (tag, len = 64) => { const f = new Uint8Array(len); f.fill(tag); return f; };
/** Every released frame, as { tag, len, port }. */
function drain(q, slot = 2048) {
  const out = [];
  const dst = new Uint8Array(slot);
  for (let r = q.takeReleased(dst, 0); r >= 0; r = q.takeReleased(dst, 0)) {
    const len = r & 0xffff, port = Math.floor(r / 0x10000);
    out.push({ tag: dst[0], len, port, same: dst.subarray(0, len).every((b) => b === dst[0]) });
  }
  return out;
}

test('frames wait for their address and come back oldest first, bytes, length and port intact', (t) => {
  const q = new HoldQueue({ slotBytes: 2048 });
  t.is(q.hold('10.0.0.1', frame(1, 60), 0, 60, 3, 100), 'held');
  t.is(q.hold('10.0.0.2', frame(9, 70), 0, 70, 4, 101), 'held');
  t.is(q.hold('10.0.0.1', frame(2, 1514), 0, 1514, 5, 102), 'held');
  t.is(q.waiting, 3);
  t.deepEqual(drain(q), [], 'nothing released yet');
  t.is(q.release('10.0.0.1'), 2);
  t.is(q.waiting, 1);
  t.is(q.releasedPending, 2);
  t.deepEqual(drain(q), [{ tag: 1, len: 60, port: 3, same: true }, { tag: 2, len: 1514, port: 5, same: true }]);
  t.is(q.release('10.0.0.1'), 0, 'released once');
  t.is(q.release('10.0.0.3'), 0, 'an address with nothing held');
});

test('a frame is copied from where it lies: later changes to the source do not reach it', (t) => {
  const q = new HoldQueue({ slotBytes: 256 });
  const area = new Uint8Array(1024);
  area.fill(7, 512, 600);
  q.hold('a', area, 512, 88, 1, 0);
  area.fill(0);
  q.release('a');
  t.deepEqual(drain(q, 256), [{ tag: 7, len: 88, port: 1, same: true }]);
});

test('at most perAddress frames per address and `frames` in all; over the bound is refused', (t) => {
  const q = new HoldQueue({ slotBytes: 2048, perAddress: 3, frames: 5 });
  for (let i = 0; i < 3; i++) t.is(q.hold('a', frame(i), 0, 64, 1, i), 'held');
  t.is(q.hold('a', frame(3), 0, 64, 1, 3), 'overflow', 'a fourth for one address');
  t.is(q.hold('b', frame(4), 0, 64, 1, 4), 'held');
  t.is(q.hold('c', frame(5), 0, 64, 1, 5), 'held');
  t.is(q.hold('d', frame(6), 0, 64, 1, 6), 'overflow', 'the total');
  t.is(q.waiting, 5);
  // a released slot is free again once taken
  q.release('b');
  t.is(q.hold('d', frame(6), 0, 64, 1, 7), 'overflow', 'released but not yet taken still holds its slot');
  t.is(drain(q).length, 1);
  t.is(q.hold('d', frame(6), 0, 64, 1, 8), 'held');
});

test('the byte bound caps the slots; a frame larger than a slot is refused', (t) => {
  const q = new HoldQueue({ slotBytes: 4096, bytes: 16384, frames: 256 });
  t.is(q.capacity, 4);
  t.is(q.hold('a', frame(1, 5000), 0, 5000, 1, 0), 'overflow');
  const d = new HoldQueue({ slotBytes: 2048 });
  t.is(d.capacity, 256, 'the defaults: 256 frames of 2 KiB = 512 KiB, under 1 MiB');
  t.is(d.perAddress, 3);
  t.is(d.holdMs, 3000);
});

test('frames held longer than holdMs are dropped; younger ones stay', (t) => {
  const q = new HoldQueue({ slotBytes: 2048, holdMs: 3000 });
  q.hold('a', frame(1), 0, 64, 1, 1000);
  q.hold('a', frame(2), 0, 64, 1, 2500);
  q.hold('b', frame(3), 0, 64, 1, 3900);
  t.is(q.expire(4000), 0, 'exactly 3 s is not over');
  t.is(q.expire(4001), 1);
  t.is(q.expire(5600), 1);
  t.is(q.waiting, 1);
  t.is(q.hold('a', frame(4), 0, 64, 1, 5600), 'held', 'the address has room again');
  q.release('a');
  t.deepEqual(drain(q).map((f) => f.tag), [4]);
  t.is(q.expire(100000), 1);
  t.is(q.waiting, 0);
  t.is(q.release('b'), 0, 'expired ones are not released');
});

test('a port removed drops the frames received on it, held or released, and keeps the others in order', (t) => {
  const q = new HoldQueue({ slotBytes: 2048 });
  q.hold('a', frame(1), 0, 64, 1, 0);
  q.hold('a', frame(2), 0, 64, 2, 1);
  q.hold('a', frame(3), 0, 64, 1, 2);
  q.hold('b', frame(4), 0, 64, 2, 3);
  q.release('a');
  t.is(q.dropPort(2), 2);
  t.is(q.waiting, 0);
  t.is(q.release('b'), 0);
  t.deepEqual(drain(q).map((f) => [f.tag, f.port]), [[1, 1], [3, 1]]);
  // every slot came back: the whole capacity holds again
  const c = q.capacity;
  let held = 0;
  for (let i = 0; i < c; i++) if (q.hold(`x${i}`, frame(1), 0, 64, 1, 0) === 'held') held++;
  t.is(held, c);
});

test('the free slots never leak over many hold / release / expire rounds', (t) => {
  const q = new HoldQueue({ slotBytes: 128, frames: 8, perAddress: 3 });
  let now = 0;
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 5; k++) q.hold(`a${(round + k) % 4}`, frame(k, 16), 0, 16, k % 2, now++);
    if (round % 3 === 0) q.expire(now + 5000);
    else { q.release(`a${round % 4}`); drain(q, 128); }
    if (round % 7 === 0) q.dropPort(1);
  }
  q.expire(now + 10000); drain(q, 128);
  t.is(q.waiting, 0);
  let held = 0;
  for (let i = 0; i < 8; i++) if (q.hold(`z${i}`, frame(1, 16), 0, 16, 0, now) === 'held') held++;
  t.is(held, 8);
});

test('a frame taken and held again keeps its first hold time: holdMs bounds its whole wait', (t) => {
  const q = new HoldQueue({ slotBytes: 256, holdMs: 3000 });
  const dst = new Uint8Array(256);
  q.hold('a', frame(1), 0, 64, 1, 1000);
  q.release('a');   // e.g. its backend removed: decided again, the next pick is another unresolved one
  t.is(q.takeReleased(dst, 0) & 0xffff, 64);
  t.is(q.takenArrivedAt, 1000, 'the time it was first held comes with it');
  t.is(q.hold('b', dst, 0, 64, 1, q.takenArrivedAt), 'held');
  t.is(q.expire(3900), 0);
  t.is(q.expire(4001), 1, '3 s after it first arrived, not after it was held again');
});

test('the core clock wraps (32-bit ms, ~49.7 days): frames held just before still expire, and come back oldest first', (t) => {
  const q = new HoldQueue({ slotBytes: 256, holdMs: 3000, perAddress: 1 });
  q.hold('a', frame(1), 0, 64, 1, 0xffffff00);   // 256 ms before the wrap
  t.is(q.expire(0x100), 0, '512 ms old');
  t.is(q.expire(3000), 1, 'over 3 s old across the wrap');
  t.is(q.hold('a', frame(2), 0, 64, 1, 3000), 'held', 'the address has its quota back');
  const r = new HoldQueue({ slotBytes: 256 });
  r.hold('b', frame(1), 0, 64, 1, 0xffffff00);
  r.hold('b', frame(2), 0, 64, 1, 0x100);
  r.release('b');
  t.deepEqual(drain(r, 256).map((f) => f.tag), [1, 2], 'oldest first across the wrap');
});

test('frames held at the same time come back in the order they were held, whichever slots they took (a datagram\'s fragments: first fragment first)', (t) => {
  const q = new HoldQueue({ slotBytes: 256, frames: 8, perAddress: 8 });
  // slots 0..2 taken and freed again in reverse: the free stack now hands out 0, 1, 2 in another
  // order than the holds below arrive in
  for (const tag of [1, 2, 3]) q.hold('x', frame(tag), 0, 64, 1, 5);
  q.release('x');
  const dst = new Uint8Array(256);
  q.takeReleased(dst, 0); q.takeReleased(dst, 0); q.takeReleased(dst, 0);
  for (const tag of [10, 11, 12, 13]) t.is(q.hold('frag', frame(tag), 0, 64, 2, 100), 'held');
  q.release('frag');
  t.deepEqual(drain(q, 256).map((f) => f.tag), [10, 11, 12, 13]);
});
