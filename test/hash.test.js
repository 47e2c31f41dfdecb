// The layout hash exists once per language: assembly/hash.ts in the core, src/core/hash.ts in
// TypeScript (flow selection in the reference model and tests, the service map's slots, the
// compiler's Maglev permutations). They must agree bit for bit; here the core's hash of each
// frame (written to its descriptor) is compared with the TypeScript one.
import test from 'ava';
import fc from 'fast-check';
import { Core } from '../dist/src/core/host.js';
import { flowHash, hashWords, hashMix, hashFinish, HASH_START } from '../dist/src/core/hash.js';
import { parseAddr } from '../dist/src/util/addr.js';
import { frame } from '../dist/src/packet/build.js';

const v4 = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((o) => o.join('.'));
const v6 = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((w) => ['fd00', ...w.slice(1).map((x) => x.toString(16))].join(':'));

test('the core and src/core/hash.ts give every frame the same flow hash (IPv4 and IPv6, TCP, UDP, SCTP)', (t) => {
  const core = Core.create({ batchMax: 64 });
  let compared = 0;
  fc.assert(fc.property(
    fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }),
    fc.constantFrom('TCP', 'UDP', 'SCTP'),
    ([src, dst], sport, dport, proto) => {
      const [r] = core.run([frame({ src, dst, proto, sport, dport, flags: proto === 'TCP' ? 'S' : undefined })]);
      const got = core.descriptor(0).hash;
      const want = flowHash(parseAddr(src).bytes, parseAddr(dst).bytes, sport, dport, { TCP: 6, UDP: 17, SCTP: 132 }[proto]);
      compared++;
      return r.reason !== 'drop_truncated_l4' && got === want;
    },
  ), { numRuns: 300, seed: 13 });
  t.is(compared, 300);
});

test('hashWords is hashMix over the words then hashFinish, and tells words apart', (t) => {
  const words = [0x6d61676c, 0xffffffff, 0, 0x80000000, 12345];
  let h = HASH_START;
  for (const w of words) h = hashMix(h, w | 0);
  t.is(hashWords(words), hashFinish(h));
  t.not(hashWords([1, 2]), hashWords([2, 1]));
  t.true(hashWords(words) >= 0 && hashWords(words) <= 0xffffffff);
});
