// Test-only helpers shared by the golden, differential and fuzz tests: compact Ir construction,
// running frames through a Core and the reference model side by side, and readable diffs.
import * as L from '../../dist/assembly/layout.js';
import { buildMaglev } from './maglev-reference.js';
import { reasonName, VERDICT_NAMES } from '../../dist/src/core/names.js';
import { toHex } from '../../dist/src/packet/build.js';

export { L };

export const MAC = {
  client: '02:00:00:00:0c:01',   // the client's MAC (source of client frames)
  node: '02:00:00:00:00:aa',     // our MAC on the client side (destination of client frames)
  beDst: '02:00:00:00:be:01',    // backend's MAC
  beSrc: '02:00:00:00:00:bb',    // our MAC on the backend side
  rtDst: '02:00:00:00:77:01',
  rtSrc: '02:00:00:00:00:cc',
};

/** A backend: { id, addr, port, state?, outPort?, dstMac?, srcMac?, service? }. */
export function backend(b) {
  return {
    id: b.id, service: b.service ?? 'default/svc', addr: b.addr, family: b.addr.includes(':') ? 6 : 4, port: b.port,
    state: b.state ?? L.BES_READY, outPort: b.outPort ?? 1, dstMac: b.dstMac ?? MAC.beDst, srcMac: b.srcMac ?? MAC.beSrc,
  };
}

/**
 * A frontend over `backends` (IrBackend objects). The Maglev table spreads over the READY ones,
 * or — when none is ready and some are serving-terminating — over those with FEF_FALLBACK set
 * (the compiler's rule). `m` overrides the table size (prime).
 */
export function frontend(f, backends, m = 251) {
  const ready = backends.filter((b) => b.state === L.BES_READY);
  const term = backends.filter((b) => b.state === L.BES_TERMINATING_SERVING);
  let flags = f.flags ?? 0;
  let active = ready;
  if (!ready.length && term.length && f.fallback !== false) { active = term; flags |= L.FEF_FALLBACK; }
  if (f.sourceRanges?.length) flags |= L.FEF_SOURCE_RANGES;
  const maglev = f.maglev ?? buildMaglev(active.map((b) => b.id), active.map((b) => `${b.addr}:${b.port}`), m);
  return {
    id: f.id, service: f.service ?? 'default/svc', portName: f.portName ?? '', kind: f.kind ?? 'ClusterIP',
    addr: f.addr, family: f.addr.includes(':') ? 6 : 4, port: f.port, proto: f.proto ?? 'TCP', flags,
    affinityTimeoutMs: f.affinityTimeoutMs ?? (flags & L.FEF_AFFINITY ? 10_800_000 : 0),
    sourceRanges: f.sourceRanges ?? [], backends: active.map((b) => b.id), maglev,
  };
}

/** { frontends: IrFrontend[], backends: IrBackend[], routes?, snatV4?, snatV6? } -> Ir */
export function mkIr({ frontends = [], backends = [], routes = [], snatV4, snatV6 } = {}) {
  return {
    frontends: new Map(frontends.map((f) => [f.id, f])),
    backends: new Map(backends.map((b) => [b.id, b])),
    routes, snatV4, snatV6,
  };
}

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
