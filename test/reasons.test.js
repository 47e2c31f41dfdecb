// What each verdict reason means is defined once, in assembly/reasons.ts: every REASON_* code of
// layout.ts has exactly one entry there, and docs/core.md's list and the Prometheus help texts are
// the ones derived from it.
import test from 'ava';
import { readFileSync } from 'node:fs';
import * as L from '../dist/assembly/layout.js';
import { REASON_NAMES } from '../dist/src/core/names.js';
import { REASON_TABLE, reasonsMarkdown, reasonNameOf } from '../dist/assembly/reasons.js';
import { ControlPlaneMetrics } from '../dist/src/api/metrics.js';
import { Compiler } from '../dist/src/compiler/compiler.js';

test('every reason code has exactly one entry in the reason table, with the verdict its name says', (t) => {
  const codes = Object.entries(L).filter(([k]) => k.startsWith('REASON_') && k !== 'REASON_COUNT' && k !== 'REASON_NONE');
  t.true(codes.length >= 29);
  for (const [name, code] of codes) {
    const entries = REASON_TABLE.filter((r) => r.code === code);
    t.is(entries.length, 1, `${name} (${code}) has one entry`);
    const [e] = entries;
    if (!e) continue;
    t.true(e.description.length > 10 && /\.$/.test(e.description), `${name}: a sentence`);
    t.true(['info', 'notice', 'warning', 'error'].includes(e.severity), `${name}: severity`);
    const prefix = { forward: 'fwd_', reject: 'reject_', to_host: 'host_', drop: 'drop_' }[e.verdict];
    t.true(reasonNameOf(code).startsWith(prefix), `${name}: verdict ${e.verdict} matches the name`);
  }
  t.is(REASON_TABLE.length, codes.length, 'no entry without a REASON_* constant');
  t.true(REASON_TABLE.every((r) => r.code > 0 && r.code < L.REASON_COUNT));
  t.is(REASON_NAMES[L.REASON_DROP_RST_NO_ENDPOINTS], 'drop_rst_no_endpoints');
});

test("docs/core.md's reasons list is the one the reason table renders", (t) => {
  const doc = readFileSync(new URL('../docs/core.md', import.meta.url), 'utf8');
  const m = /<!-- reasons:begin[^>]*-->\n([\s\S]*?)\n<!-- reasons:end -->/.exec(doc);
  t.truthy(m, 'reasons markers in docs/core.md');
  t.is(m?.[1], reasonsMarkdown(), 'stale: run node scripts/docs-reasons.mjs');
});

test('the Prometheus help of the reason counters names every reason with its meaning', async (t) => {
  const text = await new ControlPlaneMetrics(new Compiler(), () => 0).render(null);
  const help = (metric) => new RegExp(`^# HELP ${metric} (.*)$`, 'm').exec(text)?.[1] ?? '';
  const drops = help('wdp_drops_total'), all = help('wdp_verdict_reasons_total');
  t.true(drops.startsWith('Dropped packets by reason.'));
  for (const r of REASON_TABLE) {
    const name = reasonNameOf(r.code);
    if (r.reserved) { t.false(drops.includes(name) || all.includes(name), `${name} is reserved`); continue; }
    const where = r.verdict === 'drop' ? drops : all;
    t.true(where.includes(`${name}: ${r.description}`), `${name} and its meaning in the help text`);
  }
});
