// Neighbour probing that cannot starve (ProbeRing) and learned neighbours that age out and are
// re-verified like the kernel's (NeighbourCache).
import test from 'ava';
import { ProbeRing } from '../dist/src/daemon/probe-ring.js';
import { NeighbourCache } from '../dist/src/daemon/neighbour-cache.js';

const addr = (i) => `10.244.${i >> 8}.${i & 255}`;

test('every unresolved address is probed within ceil(N / max) rounds, however many never answer', (t) => {
  const ring = new ProbeRing();
  const N = 100, MAX = 32;
  for (let i = 0; i < N; i++) ring.hold(addr(i));
  const seen = new Set();
  for (let round = 0; round < Math.ceil(N / MAX); round++) for (const x of ring.take(MAX, () => true)) seen.add(x.addr);
  t.is(seen.size, N, 'the old "first 32 of the set" never reached the 33rd');
  // and it keeps going round: the next round starts where the last stopped
  const next = ring.take(MAX, () => true).map((x) => x.addr);
  t.is(next.length, MAX);
});

test('addresses added while probing join the rotation; skipped (already learned) ones do not block others', (t) => {
  const ring = new ProbeRing();
  for (let i = 0; i < 40; i++) ring.hold(addr(i));
  ring.take(32, () => true);
  ring.hold('10.9.9.9');
  const learned = new Set([addr(32), addr(33)]);
  const r2 = ring.take(32, (a) => !learned.has(a)).map((x) => x.addr);
  t.deepEqual(r2.slice(0, 6), [34, 35, 36, 37, 38, 39].map(addr), 'the round starts where the last stopped, skipping learned ones');
  t.false(r2.includes('10.9.9.9'), 'a new address queues behind those waiting longer');
  const r3 = ring.take(32, (a) => !learned.has(a)).map((x) => x.addr);
  t.true(r3.includes('10.9.9.9'));
});

test('hold/release count holders; dropPort forgets a port\'s own pods only', (t) => {
  const ring = new ProbeRing();
  ring.hold('10.244.1.1'); ring.hold('10.244.1.1');
  ring.release('10.244.1.1');
  t.true(ring.has('10.244.1.1'));
  ring.release('10.244.1.1');
  t.false(ring.has('10.244.1.1'));
  ring.hold('10.244.1.2', [3]); ring.hold('10.244.1.3');
  ring.dropPort(3);
  t.false(ring.has('10.244.1.2'));
  t.true(ring.has('10.244.1.3'));
  t.deepEqual(ring.take(5, () => true), [{ addr: '10.244.1.3' }]);
});

const n = (a, mac = '02:aa:00:00:00:01', port = 1) => ({ addr: a, family: 4, port, mac, source: 'learned' });

test('neighbour states: reachable -> stale -> probe (unicast, retransMs apart, maxProbes) -> failed', (t) => {
  const c = new NeighbourCache({ reachableMs: 30000, retransMs: 1000, maxProbes: 3 });
  t.true(c.confirm(n('10.244.1.11'), 1000));
  t.false(c.confirm(n('10.244.1.11'), 2000), 'same port and MAC: nothing to report');
  t.is(c.state('10.244.1.11', 20000), 'reachable');
  t.deepEqual(c.tick(20000, 32), { probe: [], failed: [] });
  t.is(c.state('10.244.1.11', 32000), 'stale');
  let r = c.tick(32000, 32);
  t.is(r.probe.length, 1);
  t.is(c.state('10.244.1.11', 32000), 'probe');
  t.is(c.tick(32500, 32).probe.length, 0, 'not before retransMs');
  t.is(c.tick(33000, 32).probe.length, 1);
  t.is(c.tick(34000, 32).probe.length, 1);
  r = c.tick(35000, 32);
  t.deepEqual(r.failed.map((x) => x.addr), ['10.244.1.11']);
  t.false(c.has('10.244.1.11'));
});

test('an answer while probing makes the neighbour reachable again; a moved neighbour is reported', (t) => {
  const c = new NeighbourCache({ reachableMs: 30000, retransMs: 1000, maxProbes: 3 });
  c.confirm(n('10.244.1.11'), 0);
  c.tick(30000, 32);
  t.false(c.confirm(n('10.244.1.11'), 30100));
  t.is(c.state('10.244.1.11', 30100), 'reachable');
  t.deepEqual(c.tick(40000, 32), { probe: [], failed: [] });
  t.true(c.confirm(n('10.244.1.11', '02:aa:00:00:00:02'), 41000), 'new MAC');
  t.true(c.confirm(n('10.244.1.11', '02:aa:00:00:00:02', 2), 41000), 'new port');
});

test('unicast probes are bounded per tick and every stale neighbour gets its turn; forgetPort', (t) => {
  const c = new NeighbourCache({ reachableMs: 1000, retransMs: 1000, maxProbes: 3 });
  for (let i = 0; i < 50; i++) c.confirm(n(addr(i), '02:aa:00:00:00:01', i % 2), 0);
  const first = c.tick(2000, 32).probe.map((x) => x.addr);
  t.is(first.length, 32);
  const second = c.tick(2100, 32).probe.map((x) => x.addr);
  t.is(new Set([...first, ...second]).size, 50, 'the 18 left over are probed in the next tick');
  t.is(c.forgetPort(1).length, 25);
  t.is(c.size, 25);
  // wrap of the core's u32 millisecond clock
  const w = new NeighbourCache({ reachableMs: 1000, retransMs: 1000, maxProbes: 3 });
  w.confirm(n('10.1.1.1'), 0xffffff00);
  t.is(w.state('10.1.1.1', 0x100), 'reachable');
  t.is(w.state('10.1.1.1', 0x400), 'stale');
});
