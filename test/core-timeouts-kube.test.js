// The default conntrack timeouts are kube-proxy's (pkg/proxy/apis/config/v1alpha1/defaults.go:
// --conntrack-tcp-timeout-established 24 h, --conntrack-tcp-timeout-close-wait 1 h; UDP keeps the
// kernel's 30 s / 120 s): a connection left idle for hours lives as long through wdp as through
// kube-proxy. A default core and a default reference model run side by side.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { ReferenceModel } from '../dist/src/reference/model.js';
import { frame } from '../dist/src/packet/build.js';
import { DEFAULT_TIMEOUTS } from '../dist/src/core/timeouts.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';

const VIP = '10.96.0.10';
const BE = '10.1.0.1';
const CLIENT = '10.0.0.5';
const HOUR = 3600_000;
const T0 = 1000;

const orig = (flags, sport = 40000) => ({ frame: frame({ srcMac: MAC.client, dstMac: MAC.node, src: CLIENT, dst: VIP, proto: 'TCP', sport, dport: 80, flags }), inPort: 3 });
const reply = (flags, dport = 40000) => ({ frame: frame({ srcMac: MAC.beDst, dstMac: MAC.beSrc, src: BE, dst: CLIENT, proto: 'TCP', sport: 8080, dport, flags }), inPort: 1 });

function setup() {
  const b = backend({ id: 1, addr: BE, port: 8080, outPort: 1 });
  const ir = mkIr({ frontends: [frontend({ id: 1, addr: VIP, port: 80, proto: 'TCP' }, [b])], backends: [b] });
  const o = { batchMax: 64, affinitySlots: 64, flows: 64 };
  const core = Core.create(o);
  core.applyIr(ir);
  return { core, model: new ReferenceModel(ir, o) };
}

function both(t, s, frames, now) {
  const pairs = runBoth(s.core, s.model, frames, now);
  const m = firstMismatch(pairs);
  if (m) t.fail(m);
  return pairs.map((p) => p.core.reason);
}

test('the defaults are kube-proxy\'s: established 24 h, half-closed (CLOSE_WAIT) 1 h, UDP 30 s / 120 s', (t) => {
  t.is(DEFAULT_TIMEOUTS.tcpEstablishedMs, 24 * HOUR);
  t.is(DEFAULT_TIMEOUTS.tcpHalfClosedMs, HOUR);
  t.is(DEFAULT_TIMEOUTS.udpMs, 30_000);
  t.is(DEFAULT_TIMEOUTS.udpRepliedMs, 120_000);
});

test('an established connection idle for 23 h keeps its flow; after 24 h it is forgotten', (t) => {
  const s = setup();
  t.deepEqual(both(t, s, [orig('S')], T0), ['fwd_nat']);
  both(t, s, [reply('SA')], T0 + 1);
  both(t, s, [orig('A')], T0 + 2);
  t.is(s.core.flows({}, T0 + 2)[0].state, 'tcp_established');
  // 23 h of silence (a database connection pool overnight), then the client speaks: the same flow
  const idle = T0 + 2 + 23 * HOUR;
  t.deepEqual(both(t, s, [orig('PA')], idle), ['fwd_nat']);
  t.like(s.core.counters().global, { ct_hit: 3, ct_new: 1, ct_expired: 0 });
  t.is(s.core.flows({}, idle).length, 1);
  // and past 24 h of silence the flow is gone, as kube-proxy's conntrack entry would be
  const gone = idle + 24 * HOUR + 1000;
  t.is(s.core.flows({}, gone).length, 0);
  both(t, s, [orig('PA')], gone);
  t.like(s.core.counters().global, { ct_expired: 1, ct_new: 2 });
});

test('a timeout the core\'s 32-bit ms clock cannot hold is refused with its name, never wrapped', (t) => {
  const o = { batchMax: 64, affinitySlots: 64, flows: 64 };
  // 50 days: written as u32 it would wrap to ~7 h 35 min and expire connections far too early
  t.throws(() => Core.create({ ...o, timeouts: { tcpEstablishedMs: 50 * 24 * HOUR } }), { instanceOf: RangeError, message: /tcpEstablishedMs/ });
  t.throws(() => Core.create({ ...o, timeouts: { udpMs: -1 } }), { instanceOf: RangeError, message: /udpMs/ });
  t.throws(() => Core.create({ ...o, timeouts: { sctpMs: 1.5 } }), { instanceOf: RangeError, message: /sctpMs/ });
  // the largest it holds is taken as given
  t.is(Core.create({ ...o, timeouts: { tcpEstablishedMs: 0xffffffff } }).flowTimeouts()[L.CTS_TCP_EST], 0xffffffff);
});
