// A full compile from empty (its own path: one-pass grouping, claims taken while indexing,
// candidates by column, putRun) against the incremental path fed the same batch: for random
// batches whose Services clash on cluster IPs, node ports, external IPs and LB ingress addresses,
// list objects twice, hold unlabelled slices, slices of absent Services and Services without
// slices, both refuse with the same errors in the same order or both accept with the same
// warnings and the same Ir, ids included. Then the same random incremental changes on both give the
// same answers at every step: the fresh path left the claims, the model's maps and the records as
// the incremental path would have.
import test from 'ava';
import fc from 'fast-check';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { maglevIds } from '../dist/src/ir/ir.js';
import { model, objectArb, stepArb } from './lib/service-batch-gen.js';

// an unrelated Service applied first: the same batch then takes the incremental path. It claims
// nothing the generators make and has no slice; its frontends are left out of the comparison.
const BYSTANDER = 'default/zz-bystander';
const bystander = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'zz-bystander', namespace: 'default' }, spec: { clusterIP: '10.97.0.1', ports: [{ name: 'http', port: 80 }] } };

/** What a change answers: its errors, or its warnings (the bystander's left out). */
function answer(c, batch) {
  try {
    const ch = c.change(batch);
    return { ok: true, warnings: ch.warnings.filter((w) => !w.includes('zz-bystander')) };
  } catch (e) {
    if (e.name !== 'ValidationError') throw e;
    return { ok: false, errors: e.errors };
  }
}

/** The Ir without ids (each id replaced by what it names), the bystander's frontends left out. */
function canonical(ir) {
  const be = (id) => { const b = ir.backends.get(id); return b ? `${b.service}|${b.portName}|${b.addr}|${b.port}` : `missing ${id}`; };
  const fe = (id) => { const f = ir.frontends.get(id); return f ? `${f.service}|${f.portName}|${f.kind}|${f.addr}` : `missing ${id}`; };
  const fronts = [...ir.frontends.values()].filter((f) => f.service !== BYSTANDER).map((f) => JSON.stringify({
    ...f, id: undefined, backends: f.backends.map(be), maglev: Array.from(maglevIds(f), be), clusterFront: f.clusterFront ? fe(f.clusterFront) : undefined,
  })).sort();
  const backs = [...ir.backends.values()].map((b) => JSON.stringify({ ...b, id: undefined })).sort();
  return { fronts, backs, routes: ir.routes, snatV4: ir.snatV4, snatV6: ir.snatV6 };
}

/** Each record's id by what it names; frontend ids less `shift` (the bystander's own frontend took
 * id 1 before the incremental compiler saw the batch: its ids are the fresh ones plus one). */
function idsOf(ir, shift) {
  const fronts = [...ir.frontends.values()].filter((f) => f.service !== BYSTANDER).map((f) => `${f.service}|${f.portName}|${f.kind}|${f.addr} ${f.id - shift}`).sort();
  const backs = [...ir.backends.values()].map((b) => `${b.service}|${b.portName}|${b.addr}|${b.port} ${b.id}`).sort();
  return { fronts, backs };
}

function sameState(t, fresh, inc, what) {
  t.deepEqual(canonical(fresh.ir), canonical(inc.ir), `${what}: the Ir`);
  // the same ids too: the full compile numbers them as the incremental path does from there
  t.deepEqual(idsOf(fresh.ir, 0), idsOf(inc.ir, 1), `${what}: the ids`);
  const svcs = (c) => c.listServices().filter((s) => s.key !== BYSTANDER);
  t.deepEqual(svcs(fresh).map((s) => s.key), svcs(inc).map((s) => s.key), `${what}: the Services`);
  t.deepEqual(fresh.listSlices().map((s) => s.key), inc.listSlices().map((s) => s.key), `${what}: the slices`);
  t.deepEqual(fresh.getNode()?.raw ?? null, inc.getNode()?.raw ?? null, `${what}: the node`);
  for (const s of svcs(inc)) t.deepEqual(fresh.warningsOf(s.key), inc.warningsOf(s.key), `${what}: warnings of ${s.key}`);
}

test('a full compile from empty answers a random batch as the incremental path does, and leaves the state it would leave', (t) => {
  let accepted = 0, refused = 0, clashes = 0, laterRefused = 0;
  fc.assert(fc.property(fc.array(objectArb, { minLength: 1, maxLength: 12 }), fc.array(stepArb, { maxLength: 6 }), (batch, steps) => {
    const fresh = new Compiler({ maglevWorker: 'never' });
    const inc = new Compiler({ maglevWorker: 'never' });
    inc.change({ upsert: model([bystander]) });
    const a = answer(fresh, { upsert: model(batch) }), b = answer(inc, { upsert: model(batch) });
    t.deepEqual(a, b, 'the first batch');
    if (!a.ok) {
      refused++;
      if (a.errors.some((e) => e.message.includes('already allocated'))) clashes++;
      t.is(fresh.serviceCount() + fresh.sliceCount() + fresh.ir.frontends.size + fresh.ir.backends.size, 0, 'a refused full compile keeps nothing');
      return;
    }
    accepted++;
    sameState(t, fresh, inc, 'after the batch');
    steps.forEach((s, k) => {
      const change = { upsert: model(s.upsert), remove: s.remove };
      const x = answer(fresh, change), y = answer(inc, change);
      t.deepEqual(x, y, `step ${k}`);
      if (!x.ok) laterRefused++;
      sameState(t, fresh, inc, `after step ${k}`);
    });
  }), { numRuns: 400, seed: 1818 });
  // both outcomes, clashes among them, and refusals by the claims the full compile left
  t.true(accepted > 60, `accepted ${accepted}`);
  t.true(refused > 60, `refused ${refused}`);
  t.true(clashes > 30, `clashes ${clashes}`);
  t.true(laterRefused > 30, `later refusals ${laterRefused}`);
});
