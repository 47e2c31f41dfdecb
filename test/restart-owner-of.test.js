// The worker that owns a flow key under fanout steering is computed twice: in the forwarding core
// (assembly/owner.ts ownerOf: steering and SNAT port allocation) and, to place saved flows at a
// restart, in TypeScript (src/daemon/flow-placement.ts ownerOf). They must agree on every key, or
// a restored flow lands in a worker its frames never reach. The core's is called through its
// inspection export owner_of (assembly/index.ts), over seeded random keys of both families and
// both directions of a flow: (client, 0) and (client, port) of the original direction, (backend,
// port) and (masquerade address, allocated port) of the reply.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ownerOf } from '../dist/src/daemon/flow-placement.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { mulberry32 } from '../dist/src/util/rng.js';

function randomAddr(r, family) {
  if (family === 4) return parseAddr([0, 0, 0, 0].map(() => Math.floor(r() * 256)).join('.')).bytes;
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = Math.floor(r() * 256);
  return b;
}

test('the TypeScript ownerOf (saved flows\' placement) and the core\'s (steering) agree over random IPv4 and IPv6 keys of both directions', (t) => {
  const core = Core.create({ batchMax: 8, flows: 64, affinitySlots: 64 });
  t.is(typeof core.exports.owner_of, 'function', 'the core exports owner_of (an inspection export)');
  const at = core.allocate(16);
  const wasmOwner = (addr, port, workers) => { core.u8.set(addr, at); return core.exports.owner_of(at, port, workers); };
  const r = mulberry32(0x5eed1234);   // seeded: a failure names a reproducible key
  const workerCounts = [1, 2, 3, 4, 5, 7, 8, 16, 64, 1000];
  let checked = 0;
  const mismatches = [];
  for (let i = 0; i < 20000; i++) {
    const family = i & 1 ? 6 : 4;
    const client = randomAddr(r, family), backend = randomAddr(r, family), snat = randomAddr(r, family);
    const cport = Math.floor(r() * 65536), bport = Math.floor(r() * 65536), nport = Math.floor(r() * 65536);
    const workers = workerCounts[i % workerCounts.length];
    // original direction: the client (port-less, or with its port when it is the SNAT address);
    // reply: the backend with its port, the masquerade address with the allocated port
    for (const [addr, port] of [[client, 0], [client, cport], [backend, bport], [snat, nport]]) {
      const want = wasmOwner(addr, port, workers), got = ownerOf(addr, 0, port, workers);
      checked++;
      if (want !== got && mismatches.length < 5) mismatches.push({ addr: Buffer.from(addr).toString('hex'), port, workers, core: want, ts: got });
    }
  }
  t.deepEqual(mismatches, []);
  t.is(checked, 80000);
  // an address not at the buffer's start is read where it is (placement reads records in place)
  const rec = new Uint8Array(40);
  const a = randomAddr(r, 6);
  rec.set(a, 17);
  t.is(ownerOf(rec, 17, 4242, 7), wasmOwner(a, 4242, 7));
  // and the keys do spread: every worker of 8 owns some of 1,000 random clients
  const seen = new Set();
  for (let i = 0; i < 1000; i++) seen.add(ownerOf(randomAddr(r, 4), 0, 0, 8));
  t.is(seen.size, 8);
});
