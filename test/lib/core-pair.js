// A Wasm core and the reference model over the same Ir, driven side by side: every frame must give
// the same bytes, verdict and trace record in both (core = model); used by the core tests that
// flip generations under open flows.
import { Core } from '../../dist/src/core/host.js';
import { ReferenceModel } from '../../dist/src/reference/model.js';
import * as B from '../../dist/src/packet/build.js';
import { parseFrame } from '../../dist/src/packet/parse.js';
import { runBoth, firstMismatch } from './packets.js';

export function corePair(ir, opts) {
  const core = Core.create(opts);
  core.applyIr(ir);
  return { core, model: new ReferenceModel(ir, opts) };
}
/** A new generation in both. */
export function flipPair(s, ir) { s.core.applyIr(ir); s.model.setIr(ir); }
/** Runs frames (in on port 3) through both, asserts core = model (with trace records), returns the
 * core's results with the forwarded frames parsed (`p`). */
export function runPair(t, s, frames, now) {
  const pairs = runBoth(s.core, s.model, frames, now, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined, 'core = model');
  return pairs.map((p) => ({ ...p.core, p: p.core.verdict === 'forward' ? parseFrame(B.fromHex(p.core.hex)) : undefined }));
}
