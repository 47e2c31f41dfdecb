#!/usr/bin/env node
// Runs the control API fuzzer (test/lib/api-fuzz.js) against a real `wdp start` in a network
// namespace it creates: `node bench/fuzz-api.mjs [--seed N] [--iterations N] [--restart-every N]
// [--from I] [--cli]` (--cli: the CLI fuzzer, test/lib/cli-fuzz.js, against the same daemon).
// Prints each problem (seed, case index, request, what broke) grouped by kind; exit 1 if any.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from '../dist/src/netns.js';
import { FuzzDaemon, fuzz } from '../test/lib/api-fuzz.js';
import { fuzzCli } from '../test/lib/cli-fuzz.js';

const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : def; };
const seed = arg('--seed', Math.floor(Math.random() * 2 ** 31));
const iterations = arg('--iterations', 500);
const restartEvery = arg('--restart-every', 100);
const from = arg('--from', 0);
console.log(`seed ${seed}, cases ${from}..${from + iterations - 1}, restart every ${restartEvery}`);
const lab = new NetnsLab('fz');
const dir = mkdtempSync(join(tmpdir(), 'wdp-fuzz-api-'));
const d = new FuzzDaemon(lab.namespace('dp'), dir);
let problems = [];
try {
  await d.start();
  const t0 = Date.now();
  const cli = process.argv.includes('--cli');
  const r = cli ? await fuzzCli({ seed, iterations, server: `unix:${d.sock}`, dir, start: from, onCase: (i) => { if (i % 20 === 0) console.error(`cli case ${i} (${((Date.now() - t0) / 1000).toFixed(0)} s)`); } }) : await fuzz(d, { seed, iterations, restartEvery, start: from, onCase: (i) => { if (i % 100 === 0) console.error(`case ${i} (${((Date.now() - t0) / 1000).toFixed(0)} s)`); } });
  problems = r.problems;
  console.log(JSON.stringify(Object.fromEntries(Object.entries(r.stats).sort())));
} finally {
  await d.stop();
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
const groups = new Map();
for (const p of problems) { const k = p.what.replace(/\d{3}/, (m) => m); if (!groups.has(k)) groups.set(k, []); groups.get(k).push(p); }
for (const [k, ps] of groups) {
  console.log(`\n== ${k}: ${ps.length}`);
  for (const p of ps.slice(0, 4)) console.log(`  seed ${p.seed} case ${p.i}: ${p.request.slice(0, 700)}\n    -> ${p.extra}`);
}
console.log(`\n${problems.length} problems in ${iterations} cases (seed ${seed})`);
process.exit(problems.length ? 1 : 0);
