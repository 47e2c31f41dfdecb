// The native byte scan of an apply body (native/src/json_scan.rs, used by
// src/model/json-array-reader.ts when the addon has it) must leave the reader with exactly the
// answer of its own loop: for random bodies — valid arrays and Lists, strings full of quotes,
// backslashes and brackets, nesting near and past the limit, stray and missing bytes — cut into
// random chunks.
import test from 'ava';
import { JsonArrayReader, useNativeJsonScan } from '../dist/src/model/json-array-reader.js';
import { MAX_DEPTH } from '../dist/src/model/limits.js';

/** A small deterministic PRNG (mulberry32): the same bodies every run. */
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['"', '\\', '\\"', '\\\\', '{', '}', '[', ']', ',', ':', ' ', 'a', 'items', 'ü', '😀', '\\u0041'];
function randomString(r) {
  let s = '';
  for (let k = Math.floor(r() * 6); k > 0; k--) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}
function randomValue(r, depth) {
  const x = r();
  if (depth > 3 || x < 0.3) return randomString(r);
  if (x < 0.4) return Math.floor(r() * 1000);
  if (x < 0.45) return r() < 0.5;
  if (x < 0.5) return null;
  if (x < 0.7) return Array.from({ length: Math.floor(r() * 3) }, () => randomValue(r, depth + 1));
  const o = {};
  for (let k = Math.floor(r() * 3); k > 0; k--) o[randomString(r)] = randomValue(r, depth + 1);
  return o;
}
function randomBody(r) {
  const items = Array.from({ length: Math.floor(r() * 6) }, () => {
    const o = { kind: r() < 0.1 ? 'ServiceList' : 'Service', metadata: { name: randomString(r) }, spec: randomValue(r, 0) };
    if (r() < 0.1) { const d = MAX_DEPTH - 4 + Math.floor(r() * 8); o.deep = JSON.parse('['.repeat(d) + ']'.repeat(d)); }
    return o;
  });
  const space = () => [' ', '\n', '\r\n\t', ''][Math.floor(r() * 4)];
  let text = r() < 0.8
    ? `${space()}[${space()}${items.map((o) => JSON.stringify(o)).join(`${space()},${space()}`)}${space()}]${space()}`
    : JSON.stringify({ kind: 'List', items, ...(r() < 0.3 ? { metadata: { x: randomString(r) } } : {}) });
  // sometimes broken: a byte dropped, doubled or changed
  const x = r();
  if (x < 0.1 && text.length) { const at = Math.floor(r() * text.length); text = text.slice(0, at) + text.slice(at + 1); }
  else if (x < 0.2 && text.length) { const at = Math.floor(r() * text.length); text = text.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)] + text.slice(at); }
  return text;
}

function read(bytes, r) {
  const reader = new JsonArrayReader(bytes.length);
  for (let i = 0; i < bytes.length;) {
    const size = r() < 0.3 ? 1 : 1 + Math.floor(r() * 64);
    reader.push(bytes.subarray(i, i + size));
    i += size;
  }
  const out = reader.finish();
  return out.parsed ? { objs: out.parsed.objs, texts: out.parsed.texts && { text: Buffer.isBuffer(out.parsed.texts.text) ? out.parsed.texts.text.toString('latin1') : out.parsed.texts.text, spans: out.parsed.texts.spans } } : { text: out.text };
}

const hasNative = useNativeJsonScan('auto');
useNativeJsonScan('auto');

test.serial('the native scan gives the reader the answer of its own loop, for random bodies in random chunks', (t) => {
  if (!hasNative) { t.pass('the native addon is not built here: the reader uses its own loop only'); return; }
  const r = rng(18);
  let parsed = 0;
  for (let k = 0; k < 3000; k++) {
    const bytes = Buffer.from(randomBody(r));
    const seed = Math.floor(r() * 2 ** 31);
    useNativeJsonScan('never');
    const own = read(bytes, rng(seed));
    useNativeJsonScan('auto');
    const nat = read(bytes, rng(seed));
    t.deepEqual(nat, own, `body ${k}: ${bytes.toString().slice(0, 200)}`);
    if (own.objs) parsed++;
  }
  t.true(parsed > 600, `only ${parsed} of the bodies were parsed on the way`);
});

test.serial('the native scan stops at a nesting past the limit and at a span too large, as the loop does', (t) => {
  if (!hasNative) { t.pass('the native addon is not built here'); return; }
  for (const text of [
    `[{"a":${'['.repeat(MAX_DEPTH)}${']'.repeat(MAX_DEPTH)}}]`,
    `[{"a":"${'x'.repeat(400_000)}"}]`,
    '[{"a":1} {"b":2}]',
    '[{"a":1},]',
  ]) {
    const bytes = Buffer.from(text);
    useNativeJsonScan('never');
    const own = read(bytes, rng(1));
    useNativeJsonScan('auto');
    t.deepEqual(read(bytes, rng(1)), own);
    t.truthy(own.text, 'the whole text is parsed instead');
  }
});
