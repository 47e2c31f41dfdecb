// BackendTable (the compiler's column store of backends) behaves as a Map<number, IrBackend>, and
// its rows (a full compile's diff lists) read the same backends as real ones — until the table moves on.
import test from 'ava';
import fc from 'fast-check';
import { BackendTable } from '../dist/src/compiler/backend-table.js';
import { L } from '../dist/src/ir/ir.js';

const backendArb = fc.record({
  id: fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.constantFrom(4095, 4096, 4097, 8191, 8192, 12289)),
  service: fc.constantFrom('default/a', 'default/b', 'shop/web'),
  portName: fc.constantFrom('', 'http', 'dns'),
  addr: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::5'),
  family: fc.constantFrom(4, 6),
  port: fc.integer({ min: 1, max: 65535 }),
  state: fc.constantFrom(L.BES_READY, L.BES_TERMINATING_SERVING, L.BES_NOT_SERVING),
  outPort: fc.constantFrom(L.PORT_NONE, 1, 2),
  dstMac: fc.constantFrom('00:00:00:00:00:00', '02:00:00:00:00:01'),
  srcMac: fc.constantFrom('00:00:00:00:00:00', '02:00:00:00:00:aa'),
  nodeName: fc.option(fc.constantFrom('node-a', 'node-b'), { nil: undefined }),
  zone: fc.option(fc.constantFrom('z1'), { nil: undefined }),
}).map((b) => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)));

test('set / get / delete / iterate agree with a Map', (t) => {
  fc.assert(fc.property(fc.array(fc.oneof(backendArb, fc.integer({ min: 1, max: 3000 }), fc.constantFrom(4096, 8192)), { maxLength: 60 }), (ops) => {
    const bt = new BackendTable(), m = new Map();
    for (const op of ops) {
      if (typeof op === 'number') { t.is(bt.delete(op), m.delete(op)); continue; }
      bt.set(op.id, op); m.set(op.id, op);
    }
    t.is(bt.size, m.size);
    const sorted = [...m.entries()].sort((a, b) => a[0] - b[0]);
    t.deepEqual([...bt.entries()], sorted);
    for (const [id, b] of sorted) { t.true(bt.has(id)); t.deepEqual(bt.get(id), b); }
    t.false(bt.has(0)); t.is(bt.get(99999), undefined);
    return true;
  }), { numRuns: 300, seed: 8 });
});

test('rows list the table\'s backends without objects, build them on demand, and refuse stale reads', (t) => {
  const bt = new BackendTable();
  const b = (id, addr) => ({ id, service: 'default/a', portName: 'http', addr, family: 4, port: 8080, state: L.BES_READY, outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:aa', nodeName: 'n' });
  bt.set(1, b(1, '10.0.0.1')); bt.set(2, b(2, '10.0.0.2'));
  const diff = { frontendsUpsert: [], frontendsRemove: [], backendsUpsert: bt.rows([2, 1]), backendsRemove: [] };
  t.is(diff.backendsUpsert.length, 2);
  const seen = [];
  diff.backendsUpsert.forEach((x) => seen.push(`${x.id} ${x.addr}`));
  t.deepEqual(seen, ['2 10.0.0.2', '1 10.0.0.1']);
  t.deepEqual(diff.backendsUpsert.slice(0, 1), [b(2, '10.0.0.2')]);
  t.deepEqual(JSON.parse(JSON.stringify(diff)).backendsUpsert, [b(2, '10.0.0.2'), b(1, '10.0.0.1')]);
  const stale = { frontendsUpsert: [], frontendsRemove: [], backendsUpsert: bt.rows([1]), backendsRemove: [] };
  bt.set(3, b(3, '10.0.0.3'));
  t.throws(() => stale.backendsUpsert.slice(), { message: /after the compiler changed again/ });
  t.throws(() => stale.backendsUpsert.forEach(() => {}), { message: /after the compiler changed again/ });
});

test('rows over the range 1..n (a fresh compile) read ids 1..n', (t) => {
  const bt = new BackendTable();
  for (let id = 1; id <= 3; id++) bt.set(id, { id, service: 'default/a', portName: '', addr: `10.0.0.${id}`, family: 4, port: 80, state: L.BES_READY, outPort: 1, dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:aa' });
  const diff = { frontendsUpsert: [], frontendsRemove: [], backendsUpsert: bt.rows(3), backendsRemove: [] };
  t.is(diff.backendsUpsert.length, 3);
  const seen = [];
  diff.backendsUpsert.forEach((x) => seen.push(x.id));
  t.deepEqual(seen, [1, 2, 3]);
  t.deepEqual(diff.backendsUpsert.slice(0, 2).map((b) => b.addr), ['10.0.0.1', '10.0.0.2']);
  t.deepEqual([...diff.backendsUpsert].map((b) => b.id), [1, 2, 3]);
});

test('putRun and set check every id the same way: one out of 1..16777215 is refused, also inside a chunk already open', (t) => {
  const hop = null, ep = { nodeName: 'node-a' };
  const run = (ids) => ({ n: ids.length, id: ids, addr: ids.map(() => '10.0.0.1'), family: ids.map(() => 4), port: ids.map(() => 80), state: ids.map(() => L.BES_READY), hop: ids.map(() => hop), ep: ids.map(() => ep) });
  const owner = { service: 'default/a', portName: 'http' };
  for (const bad of [0, 1.5, -1, NaN, 0x1000000, 2 ** 32 + 1]) {
    const bt = new BackendTable();
    const v = bt.version;
    // (id 1 opens chunk 0 first: the bad id falls in it, or past the range)
    t.throws(() => bt.putRun(owner, run([1, bad])), { instanceOf: RangeError, message: /out of range 1\.\.16777215/ }, String(bad));
    t.not(bt.version, v, 'a table a run wrote part of moved on');
    t.deepEqual(bt.idArray(), [1], `${bad}: nothing stored for it`);
    t.throws(() => bt.set(bad, { id: bad, service: 'default/a', portName: 'http', addr: '10.0.0.1', family: 4, port: 80, state: L.BES_READY, outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' }), { instanceOf: RangeError }, String(bad));
    t.is(bt.size, 1);
  }
  const bt = new BackendTable();
  bt.putRun(owner, run([1, 4095, 4096, 0xffffff]));
  t.deepEqual(bt.idArray(), [1, 4095, 4096, 0xffffff]);
  t.like(bt.get(4096), { nodeName: 'node-a', addr: '10.0.0.1', port: 80 });
});
