// Host-side views of core state: flow listing hides entries past their timeout (expiry in the core
// is lazy), unless asked; the listing clock follows the caller's batch clock.
import test from 'ava';
import { Core } from '../dist/src/core/host.js';
import { backend, frontend, mkIr } from './lib/ir-fixture.js';
import { frame } from '../dist/src/packet/build.js';

function oneService() {
  const bes = [backend({ id: 1, service: 'ns/a', addr: '10.0.1.1', port: 8053, dstMac: '02:00:00:00:00:11', srcMac: '02:00:00:00:00:01' })];
  return mkIr({ frontends: [frontend({ id: 1, service: 'ns/a', portName: 'dns', addr: '10.96.0.10', port: 53, proto: 'UDP' }, bes)], backends: bes });
}

test('flows(): expired entries are hidden unless includeExpired; ages follow the batch clock', (t) => {
  const core = Core.create({ flows: 64, timeouts: { udpMs: 5000 } });
  core.applyIr(oneService());
  const T0 = 1_000_000;
  const [r] = core.run([frame({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'UDP', sport: 4000, dport: 53, payload: 'q' })], T0);
  t.is(r.verdict, 'forward');
  const live = core.flows();
  t.is(live.length, 1, 'listed right after the batch (synthetic clock followed)');
  t.like(live[0], { client: '10.0.0.2', clientPort: 4000, vip: '10.96.0.10', vipPort: 53, backend: '10.0.1.1', backendPort: 8053, state: 'udp', service: undefined });
  t.true(live[0].idleMs < 1000);
  t.is(core.flows({}, T0 + 5001).length, 0, 'past the UDP timeout: not listed');
  t.is(core.flows({ includeExpired: true }, T0 + 5001).length, 1, 'still in the table until expiry frees it');
  t.is(core.flows({ service: 'ns/a' }, T0 + 1).length, 1);
  t.is(core.flows({ service: 'ns/b' }, T0 + 1).length, 0);
});
