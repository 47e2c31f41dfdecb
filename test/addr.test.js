// Address codecs: parseAddr's dotted-quad fast path accepts exactly what node's isIPv4 accepts and
// yields the same bytes; parseMac's cache hands out copies.
import test from 'ava';
import fc from 'fast-check';
import { isIPv4, isIPv6 } from 'node:net';
import { ipv4Value, parseAddr, parseMac, writeAddr } from '../dist/src/util/addr.js';

test('parseAddr accepts exactly the IPv4/IPv6 strings node accepts; IPv4 bytes are the four parts', (t) => {
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('', '00', '01', '007', '1a', ' 1', '-1', '256', '1e2'));
  const quadish = fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.'));
  const other = fc.constantFrom('::1', 'fd00::10', '::ffff:1.2.3.4', '1.2.3.4.', '.1.2.3', '1..2.3', 'x', '', '1.2.3.4/32', '255.255.255.255', '0.0.0.0');
  fc.assert(fc.property(fc.oneof(quadish, other), (s) => {
    const ok = isIPv4(s) || isIPv6(s);
    let got = null;
    try { got = parseAddr(s); } catch { got = null; }
    t.is(got !== null, ok, JSON.stringify(s));
    if (got && isIPv4(s)) {
      t.is(got.family, 4);
      t.deepEqual(Array.from(got.bytes), [...s.split('.').map(Number), ...new Array(12).fill(0)]);
    }
    return true;
  }), { numRuns: 3000, seed: 21 });
});

test('parseMac: cached parses are copies; bad MACs still throw', (t) => {
  const a = parseMac('02:00:00:00:00:aa');
  a[0] = 0xff;
  t.deepEqual(Array.from(parseMac('02:00:00:00:00:aa')), [2, 0, 0, 0, 0, 0xaa]);
  t.throws(() => parseMac('02:00:00:00:00'), { message: /invalid MAC/ });
});

test('writeAddr writes parseAddr bytes in place and zero-pads IPv4', (t) => {
  const out = new Uint8Array(40).fill(0xee);
  t.is(writeAddr('10.1.2.3', out, 4), 4);
  t.deepEqual(Array.from(out.subarray(4, 20)), Array.from(parseAddr('10.1.2.3').bytes));
  t.is(out[3], 0xee); t.is(out[20], 0xee);
  t.is(writeAddr('fd00::1', out, 20), 6);
  t.deepEqual(Array.from(out.subarray(20, 36)), Array.from(parseAddr('fd00::1').bytes));
  t.throws(() => writeAddr('10.1.2', out, 0), { message: /invalid IP/ });
});

test('ipv4Value: the value of exactly the canonical dotted quads, -1 for everything else', (t) => {
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '007', '', 'a', '1 ', '-1', '256', '1e2'));
  const text = fc.oneof(fc.array(part, { minLength: 1, maxLength: 6 }).map((ps) => ps.join('.')), fc.string({ maxLength: 16 }));
  fc.assert(fc.property(text, (s) => {
    const canonical = isIPv4(s) && s.split('.').every((p) => String(Number(p)) === p);
    const v = ipv4Value(s);
    if (!canonical) { t.is(v, -1, s); return true; }
    t.is(v, s.split('.').reduce((acc, p) => acc * 256 + Number(p), 0), s);
    return true;
  }), { numRuns: 20000, seed: 5 });
  t.is(ipv4Value('255.255.255.255'), 4294967295);
  t.is(ipv4Value('0.0.0.0'), 0);
  t.is(ipv4Value('10.0.0.01'), -1);
});
