// The table writer fed what a forwarding worker gets: the compiler's diffs over a random history
// (a first full sync, then incremental changes whose freed frontend and backend ids come back for
// other Services), each sent by column or as objects, received and applied as the worker does
// (applyReceived: the Ir patched in place — backends into a BackendStore — then the tables), from
// tables far too small so that they grow. Some applies are refused (a bad record appended to the
// diff): nothing may change then, in the tables, the writer's own records or the worker's Ir, and
// the compiler's change is rolled back as the daemon does. Now and then the worker restarts from a
// table image of its tables, caught up by the whole Ir, and goes on with the next diffs. After every step the tables are exactly
// the worker's Ir (both sets, the service map with its ClusterIP catch-alls, the entries), the
// worker's Ir is the compiler's, and a core that gets the final Ir in one apply finds the same.
import test from 'ava';
import fc from 'fast-check';
import { Core } from '../dist/src/core/host.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { encodeDiff } from '../dist/src/ir/diff-wire.js';
import { encodeBackendColumns } from '../dist/src/ir/backend-columns.js';
import { encodeFrontendColumns, frontendObjects } from '../dist/src/ir/frontend-columns.js';
import { applyReceived, keepBackendsAsReceived } from '../dist/src/daemon/worker-apply.js';
import { captureImage, decodeImage, ImageResume } from '../dist/src/core/table-image.js';
import { emptyIr } from '../dist/src/ir/ir.js';
import { diffIr } from '../dist/src/ir/diff.js';
import { checkCore } from './lib/table-check.js';
import { model, objectArb, stepArb } from './lib/service-batch-gen.js';

const SMALL = { frontends: 2, backends: 2, maglevWords: 64, cidrs: 1, routes: 1 };

/** The diff as a worker receives it: by column (whatever its size) or as objects. */
function wireOf(d, byColumn) {
  const w = encodeDiff(d);
  if (byColumn) {
    w.frontendsUpsert = encodeFrontendColumns(Array.isArray(w.frontendsUpsert) ? w.frontendsUpsert : frontendObjects(w.frontendsUpsert));
    w.backendsUpsert = encodeBackendColumns(d.backendsUpsert);
  }
  return structuredClone(w);
}

/** Plain, comparable form of an Ir (ids kept; a record's fields in name order). */
const text = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
function plain(ir) {
  return {
    fronts: [...ir.frontends.values()].sort((a, b) => a.id - b.id).map((f) => text({ ...f, maglev: Array.from(f.maglev), backends: Array.from(f.backends) })),
    backs: [...ir.backends.values()].sort((a, b) => a.id - b.id).map(text),
  };
}

// a frontend the writer refuses (its address), listed after the diff's valid ones
const BAD_FRONTEND = { service: 'x/y', portName: '', kind: 'ClusterIP', addr: 'not-an-address', port: 1, proto: 'TCP', family: 4, flags: 0,
  affinityTimeoutMs: 0, sourceRanges: [], backends: [], maglev: new Uint8Array(0), maglevIndexed: true, clusterFront: 0 };

const stepsArb = fc.array(fc.record({ step: stepArb, byColumn: fc.boolean(), refuse: fc.constantFrom(false, false, false, 'frontend', 'backend'), restart: fc.constantFrom(false, false, false, false, true) }), { maxLength: 10 });
const WHO = { worker: 0, workers: 1, revision: 'r', inputsHash: 'h', announced: [] };

/** A worker restarted from a table image of `core`: it forwards from the image until the catch-up
 * (the whole Ir `ir` as one diff, same ids) rewrites everything; its writer's records, ClusterIP
 * catch-alls and totals are then rebuilt from that rewrite. */
function restarted(core, ir, byColumn) {
  const { meta, payload } = decodeImage(captureImage(core, WHO));
  const next = Core.create({ flows: 64, capacities: SMALL });
  keepBackendsAsReceived(next);
  const resume = new ImageResume(next, meta, payload);
  applyReceived(next, wireOf(diffIr(emptyIr(), ir), byColumn));
  // (byte-identical only when the image's capacities suffice for a rewrite: incremental growth may
  // have left less headroom than a rewrite asks for; the ids are the same either way)
  const r = resume.afterApply();
  if (!r || r.remapped !== 0) throw new Error(`the catch-up ${r ? `remapped ${r.remapped} flows` : 'did not happen'}`);
  return next;
}

test('compiled diffs applied as a worker applies them keep the tables exactly the Ir, across growth, id reuse, refused applies and restarts from a table image', (t) => {
  let applied = 0, refusedApplies = 0, reused = 0, restarts = 0;
  fc.assert(fc.property(fc.array(objectArb, { minLength: 1, maxLength: 10 }), fc.boolean(), stepsArb, (batch, firstByColumn, steps) => {
    const c = new Compiler({ maglevWorker: 'never' });
    let core = Core.create({ flows: 64, capacities: SMALL });
    keepBackendsAsReceived(core);
    const freed = new Set(); // frontend and backend ids an applied diff removed
    const all = [{ step: { upsert: batch, remove: [] }, byColumn: firstByColumn, refuse: false, restart: false }, ...steps];
    for (const { step, byColumn, refuse, restart } of all) {
      if (restart) { core = restarted(core, c.ir, byColumn); restarts++; checkCore(t, core, core.ir); }
      let ch;
      // (removals of what exists: a removal of an absent object refuses the whole change)
      const have = new Set([...c.listServices(), ...c.listSlices()].map((o) => `${o.kind}/${o.key}`));
      const remove = step.remove.filter((r) => have.has(`${r.kind}/${r.namespace}/${r.name}`));
      try { ch = c.change({ upsert: model(step.upsert), remove }); } catch (e) { if (e.name !== 'ValidationError') throw e; continue; }
      const wire = wireOf(ch.diff, byColumn);
      if (refuse) {
        // a record the writer refuses, after valid ones: the worker's Ir is patched first, then undone
        const b = wire.backendsUpsert;
        if (refuse === 'backend' && Array.isArray(b) && b.length) b.push({ ...b[0], id: 4001, dstMac: 'nonsense' });
        else if (refuse === 'backend' && !Array.isArray(b) && b.n > 0) b.addrs = 'x' + b.addrs.slice(1); // its first address
        else {
          const fs = Array.isArray(wire.frontendsUpsert) ? wire.frontendsUpsert : frontendObjects(wire.frontendsUpsert);
          wire.frontendsUpsert = [...fs, { ...BAD_FRONTEND, id: 1 + (fs.length ? fs[fs.length - 1].id : 0) }];
        }
        const before = plain(core.ir), gen = core.generation;
        t.throws(() => applyReceived(core, wire));
        t.is(core.generation, gen, 'a refused apply flips nothing');
        t.deepEqual(plain(core.ir), before, 'a refused apply leaves the worker\'s Ir');
        ch.rollback();
        refusedApplies++;
      } else {
        applyReceived(core, wire);
        applied++;
        for (const f of ch.diff.frontendsUpsert) if (freed.delete(`f${f.id}`)) reused++;
        ch.diff.backendsUpsert.forEach((b) => { if (freed.delete(`b${b.id}`)) reused++; });
        for (const id of ch.diff.frontendsRemove) freed.add(`f${id}`);
        for (const id of ch.diff.backendsRemove) freed.add(`b${id}`);
      }
      t.deepEqual(plain(core.ir), plain(c.ir), 'the worker\'s Ir is the compiler\'s');
      checkCore(t, core, core.ir);
    }
    // a core given the final Ir in one apply (a regrow from empty) finds the same frontends
    const once = Core.create({ flows: 64, capacities: SMALL });
    once.applyIr(c.ir);
    checkCore(t, once, c.ir);
    return true;
  }), { numRuns: 400, seed: 2718 });
  t.log(`applied ${applied}, refused applies ${refusedApplies}, freed ids reused ${reused}, restarts ${restarts}`);
  t.true(applied > 400, `applied ${applied}`);
  t.true(refusedApplies > 50, `refused applies ${refusedApplies}`);
  t.true(reused > 20, `freed ids reused ${reused}`);
  t.true(restarts > 100, `restarts ${restarts}`);
});
