#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// First: the V8 flags wdp runs with, before any of wdp is loaded (bin/v8-flags.js)
import './v8-flags.js';

// `wdp start` loads only the daemon's modules (src/daemon/start-main.ts), everything else the CLI
// with every command (src/wdp.ts)
const cli = new URL(process.argv[2] === 'start' ? '../dist/src/daemon/start-main.js' : '../dist/src/wdp.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error('wdp: not built yet — run `npm install` (or `npm run build`) in the wdp directory first');
  process.exit(1);
}
await import(cli.href);
