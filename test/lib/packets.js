// Test-only helpers shared by the golden, differential and fuzz tests: running frames through a
// Core and the reference model side by side, and readable diffs.
import * as L from '../../dist/assembly/layout.js';
import { reasonName, VERDICT_NAMES } from '../../dist/src/core/names.js';
import { toHex } from '../../dist/src/packet/build.js';

export { L };
// the Ir builders these tests use live in ir-fixture.js
export { MAC, backend, frontend, mkIr } from './ir-fixture.js';

export function verdictName(v) { return VERDICT_NAMES[v] ?? `verdict_${v}`; }

/** Normalised result for comparison and readable failure output. */
export function summarize(r) {
  return {
    verdict: verdictName(r.verdictCode ?? r.verdict),
    reason: reasonName(r.reasonCode ?? r.reason),
    outPort: r.outPort,
    hex: toHex(r.frame),
  };
}

const TRACE_FIELDS = ['stages', 'verdict', 'reason', 'outPort', 'front', 'backend', 'flow', 'ct', 'select', 'proto', 'family', 'l3', 'l4', 'hash'];

/** Trace record fields to compare: all of them for frames that passed parsing; for frames decided
 *  while parsing only the outcome (docs/core.md: the rest is whatever the parser had read). */
function traceView(tr) {
  const parsed = (tr.stages & L.TS_PARSED) !== 0;
  const o = {};
  for (const k of parsed ? TRACE_FIELDS : ['verdict', 'reason', 'outPort']) o[k] = tr[k];
  return o;
}

/**
 * Runs the same batch through the core and the model; returns pairs of summaries.
 * opts.trace: also compare trace records (CFG_TRACE = TRACE_ON); opts.dryRun: TRACE_DRY_RUN.
 */
export function runBoth(core, model, frames, now, inPort = 0, opts = {}) {
  const items = frames.map((f) => (f instanceof Uint8Array ? { frame: f, inPort } : { frame: f.frame, inPort: f.inPort ?? inPort }));
  const out = [];
  const traceFlags = (opts.trace || opts.dryRun ? L.TRACE_ON : 0) | (opts.dryRun ? L.TRACE_DRY_RUN : 0);
  for (let base = 0; base < items.length; base += core.batchMax) {
    const chunk = items.slice(base, base + core.batchMax);
    core.setCfg32(L.CFG_TRACE, traceFlags);
    let c;
    try { c = core.run(chunk, now); } finally { core.setCfg32(L.CFG_TRACE, 0); }
    const m = model.processBatch(chunk, now, { dryRun: !!opts.dryRun });
    for (let i = 0; i < chunk.length; i++) {
      const pair = { input: toHex(chunk[i].frame), core: summarize(c[i]), model: summarize(m[i]) };
      if (traceFlags) { pair.core.trace = traceView(core.traceRecord(i)); pair.model.trace = traceView(m[i].trace); }
      out.push(pair);
    }
  }
  return out;
}

/** First differing pair, formatted for an assertion message, or undefined. */
export function firstMismatch(pairs) {
  for (let i = 0; i < pairs.length; i++) {
    const { core, model, input } = pairs[i];
    if (core.verdict !== model.verdict || core.reason !== model.reason || core.outPort !== model.outPort || core.hex !== model.hex ||
      JSON.stringify(core.trace) !== JSON.stringify(model.trace)) {
      return `packet ${i}: input ${input}\n  core:  ${JSON.stringify(core)}\n  model: ${JSON.stringify(model)}`;
    }
  }
  return undefined;
}
