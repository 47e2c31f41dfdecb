#!/usr/bin/env node
// Standalone harness for the main thread's front of a daemon's first full sync: from the request
// body's bytes to validated, conflict-checked objects handed to the store's writer thread (cold,
// as the daemon's first sync is: one fresh process per run). The same body as `wdp bench control` (one JSON array), delivered in
// 64 KiB chunks as the HTTP server hands them over.
//
//   npm run build
//   node bench/profile-sync-front.mjs [--dist DIR]... [--services 10000] [--endpoints 10] [--runs 5] [--json]
//
// Each --dist is a build's dist/ (A/B: they alternate fresh processes). A build with the body
// reader (src/model/json-array-reader.ts) parses and validates each chunk as it comes, so its
// "after the last byte" is only what is left then; a build without it does everything after the
// last byte (copy, depth scan, parse, validation). After the checks the objects are staged in a
// fresh store (StateStore.stage: what the main thread does before the writer thread inserts them;
// its thread prestarted and idle, as in the daemon), each as its place in the body's text, as
// the control plane passes them. Figures: the main thread's own CPU
// (/proc/self/task/<pid>/schedstat; compare medians), the process's (GC threads included), and
// the heap the checked objects keep (heap used after a full GC, before and after; not timed).
import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pathToFileURL } from 'node:url';
import { abOptions, harness } from './ab-builds.mjs';

const { services, endpoints } = abOptions();
const FIELDS = ['main_cpu_while_arriving_ms', 'main_cpu_after_last_byte_ms', 'main_cpu_ms', 'process_cpu_after_last_byte_ms', 'process_cpu_ms', 'heap_retained_mb'];

await harness({ url: import.meta.url, childVar: 'WDP_SYNC_FRONT_CHILD', fields: FIELDS, child });

async function child(imp, dist) {
  // the V8 flags that build's bin/wdp.js sets for the daemon, before any of wdp is loaded (where
  // a function's first calls leave feedback, and when it is optimised, decide what TurboFan
  // compiles); a build from before bin/v8-flags.js set only this one
  try { await import(pathToFileURL(join(dist, '..', 'bin', 'v8-flags.js')).href); } catch { setFlagsFromString('--no-lazy-feedback-allocation'); }
  const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
  const { benchObjects } = await imp('src/bench/control.js');
  const { parseManifestSources } = await imp('src/model/load.js');
  const schema = await imp('src/model/schema.js');
  const { AddressIndex } = await imp('src/model/conflicts.js');
  const { StateStore } = await imp('src/state/store.js');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-sync-front-'));
  const store = new StateStore(dir);
  store.open();
  store.prestartWriter();
  await store.checkpoint(); // (answered once the thread booted and opened its connection)
  const reader = existsSync(`${dist}/src/model/json-array-reader.js`) ? (await imp('src/model/json-array-reader.js')).JsonArrayReader : null;
  const body = Buffer.from(JSON.stringify(benchObjects(makeServiceSet({ services, endpoints }))));
  const chunks = [];
  for (let i = 0; i < body.length; i += 65536) chunks.push(Buffer.from(body.subarray(i, i + 65536)));
  const main = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  const proc = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const index = new AddressIndex({ node: () => null, services: () => [], slices: () => [], sliceCount: () => 0 });
  // the heap the checked objects keep (raw and model), after a full GC on either side (measured
  // outside the CPU figures): what every later scavenge and mark of the sync copies or visits
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const heap = () => { gc(); return process.memoryUsage().heapUsed / 1e6; };
  const h0 = heap();
  const m0 = main(), p0 = proc();
  let objs, texts, m1, p1;
  if (reader) {
    const verdicts = [];
    const r = new reader(body.length, true, (o) => { verdicts.push(schema.validateObject(o)); });
    for (const c of chunks) r.push(c);
    m1 = main(); p1 = proc(); // the last byte is in: what is left
    const { parsed } = r.finish();
    if (!parsed) throw new Error('the body reader stepped aside');
    objs = schema.validatedAll(verdicts);
    texts = parsed.texts;
  } else {
    const copied = [];
    for (const c of chunks) copied.push(c); // (fastify's reader: the chunks kept as they come)
    m1 = main(); p1 = proc();
    const text = Buffer.concat(copied, body.length).toString('utf8');
    const r = parseManifestSources(text);
    objs = schema.validateAll(r.objs);
    texts = r.texts;
  }
  if (index.check(objs, new Map(), new Set(), null).length) throw new Error('conflicts in the bench set');
  const staged = store.stage({
    upsert: objs.map((o, i) => ({ kind: o.kind, key: o.kind === 'NodeConfig' ? '' : o.key, raw: o.raw, source: texts && { text: texts.text, start: texts.spans[2 * i], end: texts.spans[2 * i + 1] } })),
    remove: [],
  });
  const m2 = main(), p2 = proc();
  const h1 = heap();
  await staged.commit();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({
    main_cpu_while_arriving_ms: m1 - m0, main_cpu_after_last_byte_ms: m2 - m1, main_cpu_ms: m2 - m0,
    process_cpu_after_last_byte_ms: p2 - p1, process_cpu_ms: p2 - p0, heap_retained_mb: h1 - h0,
  }));
}
