#!/usr/bin/env node
// Writes the reasons table of docs/core.md (between its reasons:begin / reasons:end markers) from
// assembly/reasons.ts (built: run `npm run build:ts` first). `--check`: only compare, exit 1 when
// the docs are stale (test/reasons.test.js does the same check).
import { readFileSync, writeFileSync } from 'node:fs';
import { reasonsMarkdown } from '../dist/assembly/reasons.js';

const path = new URL('../docs/core.md', import.meta.url);
const BEGIN = '<!-- reasons:begin (generated from assembly/reasons.ts by scripts/docs-reasons.mjs) -->';
const END = '<!-- reasons:end -->';
const text = readFileSync(path, 'utf8');
const a = text.indexOf(BEGIN), b = text.indexOf(END);
if (a < 0 || b < a) { console.error('docs/core.md: reasons markers missing'); process.exit(2); }
const next = text.slice(0, a + BEGIN.length) + '\n' + reasonsMarkdown() + '\n' + text.slice(b);
if (process.argv.includes('--check')) {
  if (next !== text) { console.error('docs/core.md reasons table is stale: node scripts/docs-reasons.mjs'); process.exit(1); }
} else if (next !== text) {
  writeFileSync(path, next);
}
