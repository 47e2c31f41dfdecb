// A route's link-local next hop (`via`) is asked for from the port's own link-local address (the
// modified EUI-64 of its MAC, src/daemon/l2.ts) and the port answers neighbour solicitations for
// that address: a `via` equal to it names the port itself, which no neighbour answers for — the
// config refuses it on the route's `via`, naming the port and its address.
import test from 'ava';
import { parseConfig, ConfigError } from '../dist/src/daemon/config.js';
import { eui64LinkLocal } from '../dist/src/daemon/l2.js';

const MAC = '02:00:00:00:00:0a';
const cfg = (routes) => ({
  node: { name: 'node-a', addresses: ['192.168.100.2'] },
  ports: [
    { name: 'gw', type: 'afpacket', ifname: 'g0', role: 'uplink', mac: MAC, gateways: ['192.168.50.2'] },
    { name: 'other', type: 'afpacket', ifname: 'g1', role: 'uplink', mac: '02:00:00:00:00:0b', gateways: ['192.168.60.2'] },
  ],
  routes,
});
function problems(routes) {
  try { parseConfig(cfg(routes), 'x.yaml'); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; }
  return '';
}

test('a link-local via equal to the route\'s port\'s own EUI-64 link-local address is refused on routes[i].via', (t) => {
  const own = eui64LinkLocal(MAC);
  t.is(own, 'fe80::ff:fe00:a');
  const upper = own.toUpperCase().replace('FE80::', 'FE80:0:0:0:0:');
  const m = problems([
    { prefix: '::/0', port: 'gw', via: own },
    { prefix: 'fd00:1::/64', port: 'gw', via: `${upper}%gw` },
  ]);
  t.regex(m, /routes\[0\]\.via: must be another host's address, not port "gw"'s own link-local address fe80::ff:fe00:a \(the modified EUI-64 of its mac 02:00:00:00:00:0a\)/);
  t.regex(m, /routes\[1\]\.via: must be another host's address, not port "gw"'s own link-local address/);
  t.is(m.split('\n').length, 1 + 2, 'one line per problem, nothing else');
});

test('another port\'s link-local address, or another one on the port, is a neighbour\'s: accepted', (t) => {
  const c = parseConfig(cfg([
    { prefix: '::/0', port: 'gw', via: eui64LinkLocal('02:00:00:00:00:0b') },
    { prefix: 'fd00:1::/64', port: 'gw', via: 'fe80::1' },
  ]), 'x.yaml');
  t.is(c.routes.length, 2);
});

// Without `mac:` the port's MAC is known only when it opens (a NIC's own, a TAP's made-up one):
// the port manager refuses a route via the link-local address that MAC gives, naming the route.
test('a port without mac: a route via the link-local address of the MAC it opens with is refused when the port is prepared', async (t) => {
  const { PortManager } = await import('../dist/src/daemon/port-manager.js');
  const { stableMac } = await import('../dist/src/daemon/link-commands.js');
  const { default: pino } = await import('pino');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-ll-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const own = eui64LinkLocal(stableMac('wdp/node-a/p0'));   // the TAP's made-up MAC (port-manager.ts madeUpMac)
  const config = (via) => parseConfig({
    node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir,
    ports: [{ name: 'p0', type: 'tap', ifname: 't-p0', role: 'uplink', gateways: ['192.168.50.2'] }],
    routes: [{ prefix: 'fd00:9::/64', port: 'p0', via }],
  }, 'x.yaml');
  const err = t.throws(() => new PortManager(config(own), pino({ level: 'silent' })));
  t.regex(err.message, /routes\[0\]\.via: must be another host's address, not port "p0"'s own link-local address fe80::/);
  t.notThrows(() => new PortManager(config('fe80::1'), pino({ level: 'silent' })));
});
