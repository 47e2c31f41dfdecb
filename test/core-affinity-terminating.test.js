// sessionAffinity and a pinned pod that starts terminating (docs/core.md "Affinity table"):
// kube-proxy's service chain consults the affinity sets of the endpoints in that chain only — the
// ready ones, or the serving-terminating ones when none is ready — so a client pinned to a pod
// that starts terminating opens its next connections to a ready pod; only when every endpoint is
// terminating does the pin hold. The core and the reference model run side by side.
import test from 'ava';
import * as B from '../dist/src/packet/build.js';
import { backend, frontend, mkIr, MAC, L } from './lib/packets.js';
import { corePair, flipPair, runPair } from './lib/core-pair.js';

const OPTS = { flows: 256, batchMax: 64, affinitySlots: 64 };
const VIP = '10.96.0.1';
const CLIENT = '10.0.0.1';

const pair = (ir) => corePair(ir, OPTS);
const flip = flipPair;
const run = runPair;
const syn = (sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'TCP', sport, dport: 80, flags: 'S' });
const gen = (states) => {
  const bes = states.map((state, i) => backend({ id: i + 1, addr: `10.1.0.${i + 1}`, port: 8080, state }));
  return mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP', flags: L.FEF_AFFINITY, affinityTimeoutMs: 600_000 }, bes)], backends: bes });
};
const R = L.BES_READY, TS = L.BES_TERMINATING_SERVING;

test('a client pinned to a pod that starts terminating opens its next connections to a ready pod', (t) => {
  const s = pair(gen([R, R]));
  const [first] = run(t, s, [syn(1000)], 1000);
  const pinned = first.p.dst;
  t.is(run(t, s, [syn(1001)], 1001)[0].p.dst, pinned, 'pinned while both are ready');
  // the pinned pod terminates but still serves; the other is ready
  flip(s, gen(pinned === '10.1.0.1' ? [TS, R] : [R, TS]));
  const other = pinned === '10.1.0.1' ? '10.1.0.2' : '10.1.0.1';
  const rs = run(t, s, [syn(1002), syn(1003), syn(1004)], 1002);
  t.deepEqual(rs.map((r) => r.p.dst), [other, other, other], 'kube-proxy\'s chain has the ready pod only');
  t.is(rs[0].trace.select, L.TRSEL_MAGLEV, 'the pin did not hold: a fresh pick');
  t.is(rs[1].trace.select, L.TRSEL_AFFINITY, 'and the new pin holds');
});

test('when every pod is terminating the pin holds (the serving-terminating fallback)', (t) => {
  const s = pair(gen([R, R]));
  const pinned = run(t, s, [syn(1000)], 1000)[0].p.dst;
  flip(s, gen([TS, TS]));
  const rs = run(t, s, [syn(1001), syn(1002)], 1001);
  t.deepEqual(rs.map((r) => r.p.dst), [pinned, pinned]);
  t.is(rs[0].trace.select, L.TRSEL_AFFINITY);
});
