// A worker patches its Ir in place by each diff (O(diff)) and can undo the patch exactly.
import test from 'ava';
import fc from 'fast-check';
import { patchIrInPlace } from '../dist/src/daemon/ir-patch.js';
import { emptyIr } from '../dist/src/ir/ir.js';
import { frontend, backend } from './lib/ir-fixture.js';
const snapshot = (ir) => JSON.stringify({ f: [...ir.frontends], b: [...ir.backends], r: ir.routes, v4: ir.snatV4, v6: ir.snatV6 });

test('patchIrInPlace applies a diff like a rebuild and its undo restores the Ir exactly', (t) => {
  const idArb = fc.integer({ min: 1, max: 12 });
  const diffArb = fc.record({
    fu: fc.uniqueArray(idArb), fr: fc.uniqueArray(idArb), bu: fc.uniqueArray(idArb), br: fc.uniqueArray(idArb),
    routes: fc.boolean(), snat: fc.option(fc.constantFrom('192.168.1.1', undefined), { nil: null }),
  });
  fc.assert(fc.property(fc.array(diffArb, { maxLength: 6 }), diffArb, (history, last) => {
    const ir = emptyIr();
    const model = { f: new Map(), b: new Map() };
    const toDiff = (g, gen) => ({
      frontendsUpsert: g.fu.map((id) => frontend({ id, addr: `10.96.0.${id + gen}`, port: 80, proto: 'TCP' }, [])), frontendsRemove: g.fr.filter((id) => !g.fu.includes(id)),
      backendsUpsert: g.bu.map((id) => backend({ id, addr: `10.244.0.${id + gen}`, port: 8080 })), backendsRemove: g.br.filter((id) => !g.bu.includes(id)),
      ...(g.routes ? { routes: [{ prefix: `10.${gen}.0.0/16`, outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02' }] } : {}),
      ...(g.snat !== null ? { snat: { v4: g.snat } } : {}),
    });
    history.forEach((g, gen) => {
      const d = toDiff(g, gen);
      patchIrInPlace(ir, d);
      for (const id of d.frontendsRemove) model.f.delete(id);
      for (const f of d.frontendsUpsert) model.f.set(f.id, f);
      for (const id of d.backendsRemove) model.b.delete(id);
      for (const b of d.backendsUpsert) model.b.set(b.id, b);
    });
    t.deepEqual([...ir.frontends.keys()], [...model.f.keys()].sort((a, b) => a - b));
    t.deepEqual([...ir.backends.keys()], [...model.b.keys()].sort((a, b) => a - b));
    const before = snapshot(ir);
    const undo = patchIrInPlace(ir, toDiff(last, 99));
    undo();
    t.is(snapshot(ir), before);
    return true;
  }), { numRuns: 200, seed: 3 });
});

test('a worker\'s BackendStore patched by column lists and objects matches a Map, and each undo restores it exactly', async (t) => {
  const { BackendStore } = await import('../dist/src/ir/backend-store.js');
  const { BackendColumnList, encodeBackendColumns } = await import('../dist/src/ir/backend-columns.js');
  const be = (id, gen) => ({ ...backend({ id, addr: id % 3 ? `10.244.${gen}.${id}` : `fd00::${gen}:${id}`, port: 8000 + gen }), portName: gen % 2 ? 'http' : '', ...(id % 2 ? { nodeName: `n${gen}` } : {}) });
  const idArb = fc.integer({ min: 1, max: 40 });
  const stepArb = fc.record({ up: fc.array(idArb, { maxLength: 30 }), rm: fc.uniqueArray(idArb, { maxLength: 8 }), byColumn: fc.boolean(), fail: fc.boolean() });
  fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 8 }), (steps) => {
    const ir = { ...emptyIr(), backends: new BackendStore() };
    const model = new Map();
    const state = () => [...ir.backends].map(([id, b]) => [id, JSON.stringify(b)]);
    steps.forEach((s, gen) => {
      const objs = s.up.map((id) => be(id, gen)); // an id listed twice: the later row wins
      const rm = s.rm.filter((id) => !s.up.includes(id));
      const list = s.byColumn ? new BackendColumnList(structuredClone(encodeBackendColumns(objs))) : objs;
      const before = state();
      const undo = patchIrInPlace(ir, { frontendsUpsert: [], frontendsRemove: [], backendsUpsert: list, backendsRemove: rm });
      if (s.fail) { undo(); t.deepEqual(state(), before); return; }
      for (const id of rm) model.delete(id);
      for (const b of objs) model.set(b.id, b);
      t.is(ir.backends.size, model.size);
      t.deepEqual([...ir.backends.keys()], [...model.keys()].sort((a, b) => a - b));
      for (const [id, b] of model) t.deepEqual(ir.backends.get(id), b);
      t.false(ir.backends.has(0));
    });
    return true;
  }), { numRuns: 150, seed: 5 });
});
