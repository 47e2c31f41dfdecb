// The cost of steer() (assembly/steer.ts) on the frames its kept-flow rules touch: replies from
// pods to clients that landed on their destination's worker (a pod port's fanout places them
// so), half of them from a backend another worker would own by source — the frames that pay the
// source's hash, the retired-set probe and the route lookup. Two builds of the core alternate
// batch by batch in one process (same load for both). The new build gets a retired set (a
// LoadBalancer frontend applied and deleted first), the worst case after any Service deletion;
// a build without the retired-set exports (--no-retire-b) gets none. --workers N with
// --elsewhere: the replies landed on a worker that is neither their destination's nor their
// source's (more than two workers: IPv6 on an uplink, AF_XDP queues), which pay a flow lookup,
// the source's hash and the probe before their hand-over. --filtered-a: the new build's set past
// its exact part (STEER_RETIRED_MAX + 88 addresses retired: the older ones in the filter).
//   node bench/steer-ab.mjs [--wasm a.wasm] [--ab b.wasm] [--no-retire-b] [--workers 2] [--elsewhere] [--filtered-a] [--batches 20000]
import * as L from '../dist/assembly/layout.js';
import { Core } from '../dist/src/core/host.js';
import { irFrom } from '../test/lib/ir-fixture.js';
import { frame } from '../dist/src/packet/build.js';
import { ownerOf } from '../dist/src/daemon/flow-placement.js';
import { parseAddr } from '../dist/src/util/addr.js';

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i < 0 ? d : process.argv[i + 1]; };
const wasmA = arg('wasm', new URL('../build/core.wasm', import.meta.url).pathname);
const wasmB = arg('ab', undefined);
const batches = Number(arg('batches', 20000));
const retireB = !process.argv.includes('--no-retire-b');
const SELF = 0, WORKERS = Number(arg('workers', 2)), N = 256;
const elsewhere = process.argv.includes('--elsewhere'), filteredA = process.argv.includes('--filtered-a');

const backends = Array.from({ length: 64 }, (_, i) => ({ id: i + 1, addr: `10.1.${i >> 4}.${(i & 15) + 2}`, port: 8080 }));
const routes = [{ prefix: '10.96.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', serviceCidr: true },
  { prefix: '10.0.0.0/8', outPort: 0, dstMac: '02:00:00:00:77:01', srcMac: '02:00:00:00:00:cc' }];
const fronts = Array.from({ length: 100 }, (_, i) => ({ id: i + 1, addr: `10.96.${i >> 8}.${i & 255}`, port: 80, proto: 'TCP', backends: backends.map((b) => b.id) }));
const withLb = () => irFrom({ frontends: [...fronts, { id: 101, kind: 'LoadBalancer', addr: '192.0.2.10', port: 80, proto: 'TCP', backends: [1] }], backends, routes });
const plain = () => irFrom({ frontends: fronts, backends, routes });

const many = Array.from({ length: L.STEER_RETIRED_MAX + 88 }, (_, i) => ({ id: 200 + i, kind: 'LoadBalancer', addr: `198.18.${i >> 8}.${i & 255}`, port: 80, proto: 'TCP', backends: [1] }));

function core(wasmPath, retire, filtered) {
  const c = Core.create({ wasmPath, batchMax: N, flows: 4096, steer: { workers: WORKERS, self: SELF } });
  if (retire) { c.applyIr(withLb()); c.applyIr(plain()); } else c.applyIr(plain());
  if (filtered) { c.applyIr(irFrom({ frontends: [...fronts, ...many], backends, routes })); c.applyIr(plain()); }
  return c;
}

// replies landed on their owner (the client's worker is SELF), or --elsewhere on neither theirs
// nor their source's
const owner = (a) => ownerOf(parseAddr(a).bytes, 0, 0, WORKERS);
const clients = [];
for (let i = 0; clients.length < 512; i++) { const a = `10.0.${i >> 8}.${i & 255}`; if ((owner(a) === SELF) !== elsewhere) clients.push(a); }
const srcs = elsewhere ? backends.filter((b) => owner(b.addr) !== SELF) : backends;
const frames = Array.from({ length: N }, (_, i) => frame({ src: srcs[i % srcs.length].addr, dst: clients[i % clients.length], proto: 'TCP', sport: 8080, dport: 40000 + i, flags: 'A', srcMac: '02:00:00:00:be:01', dstMac: '02:00:00:00:00:bb' }));
const bySrcElsewhere = frames.filter((_, i) => owner(srcs[i % srcs.length].addr) !== SELF).length;

const cores = [core(wasmA, true, filteredA), ...(wasmB ? [core(wasmB, retireB, false)] : [])];
for (const c of cores) frames.forEach((f, i) => c.writeFrame(i, f, 1));
const times = cores.map(() => []);
for (let b = 0; b < batches; b++) {
  for (let k = 0; k < cores.length; k++) {
    const c = cores[(b + k) % cores.length];
    const t0 = process.hrtime.bigint();
    c.steer(0, N);
    times[(b + k) % cores.length].push(Number(process.hrtime.bigint() - t0) / N);
  }
}
const med = (xs) => { const s = [...xs].sort((x, y) => x - y); return s[s.length >> 1]; };
console.log(JSON.stringify({ frames_per_batch: N, workers: WORKERS, landed_elsewhere: elsewhere, by_source_elsewhere: bySrcElsewhere, batches,
  a: { wasm: wasmA, retired: true, filtered: filteredA, median_ns_per_frame: +med(times[0]).toFixed(2) },
  ...(wasmB ? { b: { wasm: wasmB, retired: retireB, median_ns_per_frame: +med(times[1]).toFixed(2) } } : {}) }));
