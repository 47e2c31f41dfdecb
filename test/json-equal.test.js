// jsonEqual (how an apply tells "unchanged" from "configured"): equal exactly when the two JSON
// values serialise the same once keys are sorted, checked against that reference on random JSON.
import test from 'ava';
import fc from 'fast-check';
import { jsonEqual } from '../dist/src/util/json-equal.js';

/** The reference: JSON text with every object's keys sorted (undefined members dropped, undefined
 * array elements null, as JSON.stringify does). */
function sortedJson(x) {
  return JSON.stringify(x, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

/** A copy of `x` with every object's keys in reverse order (same content). */
function reordered(x) {
  if (Array.isArray(x)) return x.map(reordered);
  if (x && typeof x === 'object') return Object.fromEntries(Object.keys(x).reverse().map((k) => [k, reordered(x[k])]));
  return x;
}

test('jsonEqual agrees with comparing key-sorted JSON text, on random values and on near copies', (t) => {
  const json = fc.jsonValue({ maxDepth: 4 });
  // a value and a mutation of it: most pairs differ in one place deep down, not at the top
  const nearPair = json.chain((v) => fc.tuple(fc.constant(v), fc.oneof(fc.constant(reordered(v)), json, fc.constant(JSON.parse(JSON.stringify(v).replace(/1/, '2'))))));
  fc.assert(fc.property(fc.oneof(fc.tuple(json, json), nearPair), ([a, b]) => {
    t.is(jsonEqual(a, b), sortedJson(a) === sortedJson(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }), { numRuns: 3000 });
});

test('jsonEqual: key order does not matter, a missing, extra or changed member does, undefined members are absent', (t) => {
  const slice = { kind: 'EndpointSlice', metadata: { name: 'a', namespace: 'd', labels: { x: '1' } }, endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }], ports: [{ port: 80 }] };
  t.true(jsonEqual(slice, reordered(slice)));
  t.false(jsonEqual(slice, { ...slice, endpoints: [{ addresses: ['10.0.0.2'], conditions: { ready: true } }] }));
  t.false(jsonEqual(slice, { ...slice, extra: 1 }));
  t.false(jsonEqual({ ...slice, extra: 1 }, slice));
  t.false(jsonEqual({ a: null }, {}));
  t.false(jsonEqual({ a: [] }, { a: {} }));
  t.false(jsonEqual([1, 2], [1, 2, 3]));
  t.false(jsonEqual({ a: 1, b: 2 }, { a: 1, c: 2 }));
  t.true(jsonEqual({ a: 1, b: undefined }, { a: 1 }));
  t.true(jsonEqual([undefined], [null]));
  t.false(jsonEqual('1', 1));
});

test('jsonEqual walks a deeply nested value without overflowing the stack', (t) => {
  const deep = () => { let v = []; for (let i = 0; i < 200_000; i++) v = [v]; return v; };
  t.true(jsonEqual(deep(), deep()));
  const a = deep(), b = deep();
  let x = b; for (let i = 0; i < 150_000; i++) x = x[0];
  x.push(1);
  t.false(jsonEqual(a, b));
});
