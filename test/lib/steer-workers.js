// Several cores as several workers sharing one interface (assembly/steer.ts, src/daemon/steering.ts),
// for tests: frames are placed on a worker as the kernel's fanout might, handed over where the
// core's steer() says, and processed.
import * as L from '../../dist/assembly/layout.js';
import { parseAddr } from '../../dist/src/util/addr.js';
import { ownerOf } from '../../dist/src/daemon/flow-placement.js';
import { parseFrame } from '../../dist/src/packet/parse.js';
import { Steering, steerRingsFor } from '../../dist/src/daemon/steering.js';
import { mkCore } from './core-fixture.js';
import { retiredSweepBuffer } from '../../dist/src/core/retired-sweep.js';

/** The fanout program's choice (src/ports/fanout-program.ts) for one IPv4 address: `'src'` (an
 * uplink) or `'dst'` (a pod port); IPv6 and `'random'` frames go to a worker at random. */
export function placer(workers, seed = 3) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 16; };
  return (f, by) => {
    if (workers === 1) return 0;
    const p = parseFrame(f.frame);
    if (by === 'random' || !p.src || p.src.includes(':')) return rnd() % workers;
    return ownerOf(parseAddr(by === 'src' ? p.src : p.dst).bytes, 0, 0, workers);
  };
}

/** `workers` cores over `ir` (an Ir, or a function making one: each core then has its own, as a
 * daemon's workers do — an apply patches a worker's Ir in place) with core options `opts`; run(frames, now, by) places each frame
 * ({ frame, inPort }) by `by` (placer), hands over what another owns, processes, and returns each
 * processed frame's { worker, verdict, reason, frame }. `steer`: each worker's Steering; `readElsewhere()`:
 * how many frames left the worker they were placed on (each once, however many hand-overs). */
export function workersOf(ir, workers, opts = {}, seed = 3) {
  const rings = steerRingsFor(workers);
  // the block a daemon's workers age the retired set's filter by (src/core/retired-sweep.ts)
  const retiredSweep = retiredSweepBuffer(workers);
  const cores = Array.from({ length: workers }, (_, self) => mkCore(typeof ir === 'function' ? ir() : ir, { steer: { workers, self, retiredSweep }, batchMax: 256, flows: 4096, ...opts }));
  const steer = cores.map((c, self) => new Steering(c, { workers, self, rings, slotSize: L.DEFAULT_SLOT_SIZE }));
  const place = placer(workers, seed);
  let elsewhere = 0;
  const run = (frames, now, by = 'random') => {
    const share = cores.map(() => []);
    for (const f of frames) share[place(f, by)].push(f);
    const counts = cores.map((c, w) => { share[w].forEach((f, i) => c.writeFrame(i, f.frame, f.inPort)); const kept = steer[w].dispatch(0, share[w].length); elsewhere += share[w].length - kept; return kept; });
    const out = [];
    const turn = (c, w, kept) => {
      const got = steer[w].receive(256);
      kept.forEach((k, i) => c.writeFrame(got + i, k.frame, k.inPort));
      c.process(got + kept.length, now);
      for (let i = 0; i < got + kept.length; i++) { const d = c.descriptor(i); out.push({ worker: w, verdict: d.verdict, reason: d.reason, frame: c.readFrame(i) }); }
    };
    cores.forEach((c, w) => {
      const kept = [];
      for (let i = 0; i < counts[w]; i++) kept.push({ frame: c.readFrame(i), inPort: c.descriptor(i).inPort });
      turn(c, w, kept);
    });
    // a frame handed over for a second look may be handed on once more (steering.ts receive)
    for (let round = 0; round < 2 && steer.some((s) => s.pending()); round++) cores.forEach((c, w) => { if (steer[w].pending()) turn(c, w, []); });
    return out;
  };
  return { cores, run, steer, readElsewhere: () => elsewhere };
}
