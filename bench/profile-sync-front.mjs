#!/usr/bin/env node
// Standalone harness for the main thread's front of a daemon's first full sync: from the request
// body's bytes to validated, conflict-checked objects (cold, as the daemon's first sync is: one
// fresh process per run). The same body as `wdp bench control` (one JSON array), delivered in
// 64 KiB chunks as the HTTP server hands them over.
//
//   npm run build
//   node bench/profile-sync-front.mjs [--dist DIR]... [--services 10000] [--endpoints 10] [--runs 5] [--json]
//
// Each --dist is a build's dist/ (A/B: they alternate fresh processes). A build with the body
// reader (src/model/json-array-reader.ts) parses and validates each chunk as it comes, so its
// "after the last byte" is only what is left then; a build without it does everything after the
// last byte (copy, depth scan, parse, validation). Figures: the main thread's own CPU
// (/proc/self/task/<pid>/schedstat; compare medians), and the process's (GC threads included).
import { readFileSync, existsSync } from 'node:fs';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { abOptions, runAlternating } from './ab-builds.mjs';

const argv = process.argv.slice(2);
const { services, endpoints } = abOptions(argv);
const FIELDS = ['main_cpu_while_arriving_ms', 'main_cpu_after_last_byte_ms', 'main_cpu_ms', 'process_cpu_after_last_byte_ms', 'process_cpu_ms'];

if (process.env.WDP_SYNC_FRONT_CHILD) await child(process.env.WDP_SYNC_FRONT_CHILD);
else runAlternating({ script: fileURLToPath(import.meta.url), argv, childVar: 'WDP_SYNC_FRONT_CHILD', fields: FIELDS });

async function child(dist) {
  const imp = (p) => import(pathToFileURL(`${dist}/${p}`).href);
  const { makeServiceSet } = await imp('src/bench/peers/service-set.js');
  const { benchObjects } = await imp('src/bench/control.js');
  const { parseManifestSources } = await imp('src/model/load.js');
  const schema = await imp('src/model/schema.js');
  const { AddressIndex } = await imp('src/model/conflicts.js');
  const reader = existsSync(`${dist}/src/model/json-array-reader.js`) ? (await imp('src/model/json-array-reader.js')).JsonArrayReader : null;
  const body = Buffer.from(JSON.stringify(benchObjects(makeServiceSet({ services, endpoints }))));
  const chunks = [];
  for (let i = 0; i < body.length; i += 65536) chunks.push(Buffer.from(body.subarray(i, i + 65536)));
  const main = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  const proc = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const index = new AddressIndex({ node: () => null, services: () => [], slices: () => [], sliceCount: () => 0 });
  const m0 = main(), p0 = proc();
  let objs, m1, p1;
  if (reader) {
    const verdicts = [];
    const r = new reader(body.length, true, (o) => { verdicts.push(schema.validateObject(o)); });
    for (const c of chunks) r.push(c);
    m1 = main(); p1 = proc(); // the last byte is in: what is left
    const { parsed } = r.finish();
    if (!parsed) throw new Error('the body reader stepped aside');
    objs = schema.validatedAll(verdicts);
  } else {
    const copied = [];
    for (const c of chunks) copied.push(c); // (fastify's reader: the chunks kept as they come)
    m1 = main(); p1 = proc();
    const text = Buffer.concat(copied, body.length).toString('utf8');
    objs = schema.validateAll(parseManifestSources(text).objs);
  }
  if (index.check(objs, new Map(), new Set(), null).length) throw new Error('conflicts in the bench set');
  const m2 = main(), p2 = proc();
  console.log(JSON.stringify({
    main_cpu_while_arriving_ms: m1 - m0, main_cpu_after_last_byte_ms: m2 - m1, main_cpu_ms: m2 - m0,
    process_cpu_after_last_byte_ms: p2 - p1, process_cpu_ms: p2 - p0,
  }));
}
