#!/usr/bin/env node
// The long mode of the random-seed fuzzer (test/lib/fuzz.js):
//   npm run fuzz -- --minutes 30            fresh seeds, one run after another, for 30 minutes
//   npm run fuzz -- --seed 1234 --frames 5e6   one run of a given seed (a failure's replay)
// Options: --minutes N (default 10), --seed N (first run; also WDP_FUZZ_SEED), --frames N per run
// (default 5 million), --no-model (skip the reference model: ~2-3x more frames a second).
// Prints a line a second and a summary; on the first failure prints it (with its seed) and exits 1.
// Needs the build (`npm run build`): it runs dist/ and build/core.wasm.
import { parseArgs } from 'node:util';
import { runFuzz, fuzzSeed, FuzzFailure } from '../test/lib/fuzz.js';

function usage(msg) {
  process.stderr.write(`${msg}\nusage: npm run fuzz -- [--minutes N] [--seed N] [--frames N] [--no-model]\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: { minutes: { type: 'string' }, seed: { type: 'string' }, frames: { type: 'string' }, 'no-model': { type: 'boolean' } },
    strict: true,
  }).values;
} catch (e) { usage(e.message); }

const minutes = Number(args.minutes ?? 10);
if (!(minutes > 0)) usage(`--minutes must be a positive number, got ${args.minutes}`);
const perRun = Number(args.frames ?? 5_000_000);
if (!(Number.isInteger(perRun) && perRun > 0)) usage(`--frames must be a positive integer, got ${args.frames}`);
let seed;
try { seed = fuzzSeed(args.seed !== undefined ? { WDP_FUZZ_SEED: args.seed } : process.env); } catch (e) { usage(e.message); }
const model = !args['no-model'];
const deadline = performance.now() + minutes * 60_000;
const t0 = performance.now();
let total = 0, runs = 0;

process.stdout.write(`fuzzing for ${minutes} min, ${perRun} frames a run, reference model ${model ? 'on' : 'off'}\n`);
while (performance.now() < deadline) {
  process.stdout.write(`run ${runs + 1}: seed ${seed}\n`);
  try {
    const s = runFuzz({
      seed, frames: perRun, deadline, model,
      progress: (p) => process.stdout.write(`  ${p.frames} frames, ${Math.round(p.frames / p.seconds)}/s\r`),
    });
    total += s.frames;
    runs++;
    process.stdout.write(`  ${s.frames} frames in ${s.seconds.toFixed(1)} s; ct new=${s.counters.ct_new} evicted=${s.counters.ct_evicted}; ${s.flips} flips ok\n`);
  } catch (e) {
    process.stdout.write('\n');
    process.stderr.write(`${e instanceof FuzzFailure ? e.message : `seed ${seed}: ${e.stack}`}\n`);
    process.stderr.write(`replay: npm run fuzz -- --seed ${seed} --frames ${perRun}${model ? '' : ' --no-model'}\n`);
    process.exit(1);
  }
  seed = fuzzSeed({});
}
const secs = (performance.now() - t0) / 1000;
process.stdout.write(`done: ${total} frames in ${runs} runs, ${secs.toFixed(0)} s (${Math.round(total / secs)} frames/s), no failure\n`);
