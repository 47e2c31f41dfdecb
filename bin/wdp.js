#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// Feedback (the types an operation has seen) from a function's first call on, not only from its
// ~8th: the compiler's once-per-table paths (the first node name, the first next hop) run in a
// function's first calls, and without feedback there the optimised code of a daemon's first full
// sync deoptimised at them in the next one ("insufficient type feedback"; docs/running.md). Costs a
// feedback vector for functions called only a few times. Set before any of wdp is loaded.
setFlagsFromString('--no-lazy-feedback-allocation');
// `wdp start` loads only the daemon's modules (src/daemon/start-main.ts), everything else the CLI
const cli = new URL(process.argv[2] === 'start' ? '../dist/src/daemon/start-main.js' : '../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error('wdp: not built yet — run `npm install` (or `npm run build`) in the wdp directory first');
  process.exit(1);
}
await import(cli.href);
