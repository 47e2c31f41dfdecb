// Transparent huge pages for the core's table sets (src/core/hugepages.ts), opt-in: with
// hugePages: true the sets are marked MADV_HUGEPAGE through the native addon, and a full table
// write then really is backed by 2 MiB pages (AnonHugePages in this process's smaps grows); by
// default nothing is advised. The native addon is built by `npm install`; THP "never" is
// reported, not failed.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Core } from '../dist/src/core/host.js';
import { adviseHugePages, thpMode } from '../dist/src/core/hugepages.js';
import { nativeAddon, nativeAvailable } from '../dist/src/ports/native.js';
import { compileAll } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { benchObjects } from '../dist/src/bench/control.js';
import { makeServiceSet } from '../dist/src/bench/peers/service-set.js';

// AnonHugePages is this process's: the measuring tests run serially, and what each one advised
// stays referenced until the file ends, so memory a collector frees meanwhile cannot make a later
// measurement shrink (it did: -10 MB when the previous test's core was collected mid-measurement)
const keepAlive = [];
const anonHugeKb = () => Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
const usable = () => nativeAvailable().ok && thpMode() !== 'never';

test('the native addon advises only whole 2 MiB pages and rejects what is not memory', (t) => {
  t.true(nativeAvailable().ok, `the native addon is built by npm install: ${nativeAvailable().reason}`);
  const addon = nativeAddon();
  t.is(addon.adviseHugePages(new Uint8Array(4096)), 0, 'a buffer smaller than a huge page holds none');
  const big = new Uint8Array(8 << 20);
  const n = addon.adviseHugePages(big);
  t.true(n >= 6 << 20 && n <= 8 << 20 && n % (2 << 20) === 0, `8 MiB holds 3 or 4 whole huge pages, advised ${n}`);
  const err = t.throws(() => addon.adviseHugePages('not memory'));
  t.is(err.code, 'EINVAL');
});

test('hugePages: true marks the table sets and says so; by default nothing is advised', (t) => {
  for (const off of [Core.create({ flows: 1024 }), Core.create({ flows: 1024, hugePages: false })]) {
    t.is(off.hugePages.advisedBytes, 0);
    t.regex(off.hugePages.reason, /not requested/);
  }
  // sets of > 4 MiB each hold whole 2 MiB pages wherever they start
  const on = Core.create({ flows: 1024, hugePages: true, capacities: { maglevWords: 1 << 20 } });
  t.is(on.hugePages.mode, thpMode());
  if (!usable()) {
    t.is(on.hugePages.advisedBytes, 0);
    t.truthy(on.hugePages.reason, 'without the addon or with THP never, the status says why');
    return;
  }
  t.is(on.hugePages.reason, undefined);
  t.true(on.hugePages.advisedBytes >= 2 << 20, `advised ${on.hugePages.advisedBytes} bytes`);
  t.is(adviseHugePages(new ArrayBuffer(1024)).advisedBytes, 0);
  const tiny = Core.create({ flows: 64, hugePages: true, capacities: { frontends: 16, backends: 16, maglevWords: 1024, cidrs: 4, routes: 4 } });
  t.is(tiny.hugePages.advisedBytes, 0);
  t.regex(tiny.hugePages.reason, /hold no whole 2 MiB page/, 'sets smaller than a huge page say so');
});

test.serial('a full table write into an advised core is backed by huge pages (AnonHugePages grows)', (t) => {
  if (!usable()) { t.is(Core.create({ flows: 1024, hugePages: true }).hugePages.advisedBytes, 0); return; }
  const c = compileAll(validateAll(benchObjects(makeServiceSet({ services: 3000, endpoints: 10 }))));
  const before = anonHugeKb();
  const core = Core.create({ flows: 1024, hugePages: true });
  keepAlive.push(core, c);
  core.applyIr(c.ir);
  t.is(core.tables.ir.frontends.size, 3000);
  const grown = anonHugeKb() - before;
  // 3000 services: two table sets of ~3 MB of Maglev words each, plus backends: several huge pages
  t.true(grown >= 4096, `AnonHugePages grew by ${grown} kB (advised ${core.hugePages.advisedBytes} bytes)`);
});

test.serial('a big compile slab is on huge pages; small slabs are not advised', async (t) => {
  const { slabAllocator } = await import('../dist/src/compiler/slab.js');
  if (!usable()) { t.is(slabAllocator(8 << 20)(16, 1).length, 16); return; }
  const before = anonHugeKb();
  const big = slabAllocator(8 << 20);
  keepAlive.push(big);
  for (let i = 0; i < 1000; i++) big(1024, 4).fill(i); // ~4 MB of Maglev-table-sized arrays, touched
  const grown = anonHugeKb() - before;
  t.true(grown >= 2048, `AnonHugePages grew by ${grown} kB after touching 4 MB of an 8 MiB slab`);
  const before2 = anonHugeKb();
  const small = slabAllocator(1 << 20);
  for (let i = 0; i < 1000; i++) small(1024, 1).fill(i); // 1 MB slabs: never advised
  t.is(anonHugeKb() - before2, 0);
});
