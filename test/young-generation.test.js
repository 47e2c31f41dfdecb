// promoteYoungGeneration (src/util/young-generation.ts): two young-generation collections on this
// thread, synchronously — without node's --expose-gc, and without exposing `gc` to this context.
import test from 'ava';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { promoteYoungGeneration } from '../dist/src/util/young-generation.js';

test('runs two scavenges now, synchronously, and leaves no gc() in the caller\'s context', async (t) => {
  const seen = [];
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) seen.push(e.detail.kind); });
  obs.observe({ entryTypes: ['gc'] });
  t.teardown(() => obs.disconnect());
  const keep = Array.from({ length: 50_000 }, (_, i) => ({ i })); // survivors to promote
  await new Promise((r) => setTimeout(r, 100)); // (entries are delivered asynchronously: the earlier ones are in)
  const minorBefore = seen.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length;
  promoteYoungGeneration();
  await new Promise((r) => setTimeout(r, 100)); // (entries are delivered asynchronously)
  t.true(seen.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length - minorBefore >= 2, `gc kinds seen: ${seen.join(',')}`);
  t.is(keep.length, 50_000);
  t.is(typeof globalThis.gc, 'undefined', 'the extension stays out of this context');
});

test('leaves no gc() in worker threads or vm contexts made afterwards (the flag it sets is process-wide)', async (t) => {
  // A store writer thread that replaces a stopped one, a restarted dataplane worker: every thread
  // started after a large apply would otherwise have a global gc().
  const { Worker } = await import('node:worker_threads');
  const { runInNewContext } = await import('node:vm');
  promoteYoungGeneration();
  t.is(runInNewContext('typeof gc'), 'undefined', 'a vm context made after it');
  const w = new Worker('require("node:worker_threads").parentPort.postMessage(typeof gc)', { eval: true });
  t.teardown(() => w.terminate());
  const seen = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  t.is(seen, 'undefined', 'a worker thread started after it');
});
