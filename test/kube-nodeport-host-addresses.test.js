// The host's interface addresses that kubernetes.nodePortAddresses CIDRs select NodePort addresses
// from, as kube-proxy's GetNodeIPs (docs/core.md Known differences (12)): which addresses count
// (src/daemon/host-addresses.ts: loopback, IPv6 link-local and wdp's own ports' interfaces left
// out, the host port's configured hostAddresses in), how the selection takes them
// (src/kube/nodeport-addresses.ts: a list of CIDRs does, `primary` and an empty list do not) and
// how the daemon's node addresses follow them (src/daemon/node-addresses.ts takeHostAddresses).
// The watch (ip monitor address) in a namespace of its own; the daemon end to end:
// test/kube-e2e-host-nodeport.test.js.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { HostAddressWatch, hostAddressesOf, ownedInterfaces, readHostAddresses } from '../dist/src/daemon/host-addresses.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';
import { memoryLogger } from './lib/kube-fixture.js';
import { nodePortAddresses, selectNodeAddresses, selectsFromHost } from '../dist/src/kube/nodeport-addresses.js';
import { NodeAddresses } from '../dist/src/daemon/node-addresses.js';

// `ip -j addr show` as iproute2 6 prints it (fields the reading does not use left out)
const link = (ifname, addrs) => ({ ifname, flags: ['UP'], addr_info: addrs.map(([family, local, extra = {}]) => ({ family, local, prefixlen: 24, ...extra })) });
const IP_ADDR = JSON.stringify([
  link('lo', [['inet', '127.0.0.1'], ['inet6', '::1']]),
  link('eth0', [['inet', '192.168.100.9']]),                                  // wdp's uplink
  link('wdp-host', [['inet', '192.168.100.2'], ['inet', '192.168.100.77'], ['inet6', 'fd00:100::2']]),   // the host port's TAP
  link('eth1', [['inet', '10.1.1.5'], ['inet6', 'fe80::1'], ['inet6', '2001:DB8:0:0::5'], ['inet', '10.1.1.6', { address: '10.1.1.1' }]]),
  link('docker0', [['inet', '172.17.0.1']]),
  link('lo2', [['inet', '127.0.0.53']]),
  { ifname: 'noaddr', flags: [] },
]);
const PORTS = [
  { name: 'uplink', type: 'afpacket', ifname: 'eth0', role: 'uplink' },
  { name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', hostAddresses: ['192.168.100.2/24', '10.9.9.9/24'] },
  { name: 'pod', type: 'tap', ifname: 'eth1', role: 'pod', netns: 'pod-ns' },   // a TAP in a pod's namespace: not the host's eth1
];

test('ownedInterfaces: AF_PACKET/AF_XDP ports and TAPs in the host\'s namespace; the host port\'s configured addresses', (t) => {
  t.deepEqual(ownedInterfaces(PORTS), { ifnames: ['eth0', 'wdp-host'], hostAddresses: ['192.168.100.2/24', '10.9.9.9/24'] });
  t.deepEqual(ownedInterfaces([{ type: 'afxdp', ifname: 'ens5', role: 'uplink' }]), { ifnames: ['ens5'], hostAddresses: [] });
});

test('hostAddressesOf: every interface\'s addresses but loopback, IPv6 link-local and wdp\'s ports\'; the host port\'s configured hostAddresses in; canonical, sorted, once', (t) => {
  t.deepEqual(hostAddressesOf(IP_ADDR, ownedInterfaces(PORTS)), ['10.1.1.5', '10.1.1.6', '10.9.9.9', '172.17.0.1', '192.168.100.2', '2001:db8::5']);
  // nothing owned: the TAP's addresses would be read back (the node addresses wdp put there)
  t.deepEqual(hostAddressesOf(IP_ADDR, { ifnames: [], hostAddresses: [] }),
    ['10.1.1.5', '10.1.1.6', '172.17.0.1', '192.168.100.2', '192.168.100.77', '192.168.100.9', '2001:db8::5', 'fd00:100::2']);
  t.deepEqual(hostAddressesOf('[]', { ifnames: [], hostAddresses: ['127.0.0.1/8'] }), [], 'a loopback hostAddress is not one either');
  t.throws(() => hostAddressesOf('not json', ownedInterfaces(PORTS)));
  t.throws(() => hostAddressesOf('{"a":1}', ownedInterfaces(PORTS)), { message: /not a list/ });
});

const node = { addresses: ['192.168.100.2', 'fd00:100::2'], primary: ['192.168.100.2', 'fd00:100::2'] };
const HOST = ['10.1.1.5', '172.17.0.1', '192.168.100.2', '192.168.100.50', '198.51.100.50', '2001:db8::5'];

test('a list of CIDRs selects among the host\'s addresses and the Node\'s, per family as kube-proxy\'s proxiers', (t) => {
  t.true(selectsFromHost(['192.168.100.0/24']));
  t.true(selectsFromHost(['0.0.0.0/0']));
  t.false(selectsFromHost(['primary']));
  t.false(selectsFromHost([]));
  t.deepEqual(nodePortAddresses(node, [], ['192.168.100.0/24'], HOST), ['192.168.100.2', 'fd00:100::2', '192.168.100.50', '2001:db8::5'],
    'IPv4 inside the CIDR; IPv6, which the list names no CIDR of, every address (MatchAll)');
  t.deepEqual(nodePortAddresses(node, [], ['192.168.100.0/24', '2001:db8::/64'], HOST), ['192.168.100.2', '192.168.100.50', '2001:db8::5']);
  t.deepEqual(nodePortAddresses(node, [], ['0.0.0.0/0', '::/0'], HOST), ['192.168.100.2', 'fd00:100::2', '10.1.1.5', '172.17.0.1', '192.168.100.50', '198.51.100.50', '2001:db8::5'],
    'a zero CIDR: every address of the family, the host\'s too');
  t.deepEqual(nodePortAddresses(null, [], ['198.51.100.0/24'], HOST), ['198.51.100.50', '2001:db8::5'], 'the Node not known yet: the host\'s alone');
  t.deepEqual(nodePortAddresses(node, ['192.168.100.9'], ['192.168.100.0/24', '::/0'], ['192.168.100.50']), ['192.168.100.9', '192.168.100.2', 'fd00:100::2', '192.168.100.50'],
    'beside node.addresses');
});

test('`primary` and an empty list take nothing from the host: the Node\'s primary IP, the configured addresses', (t) => {
  t.deepEqual(nodePortAddresses(node, [], ['primary'], HOST), ['192.168.100.2', 'fd00:100::2']);
  t.deepEqual(nodePortAddresses({ addresses: ['192.168.100.2'], primary: ['192.168.100.2'] }, [], ['primary'], HOST), ['192.168.100.2'],
    'a family without a primary IP: every Node address of it (none here), not the host\'s');
  t.deepEqual(nodePortAddresses(node, ['192.168.100.2'], [], HOST), ['192.168.100.2']);
});

test('a host address a list selects is a node address too (answered for on the uplinks); one it does not select is not', (t) => {
  t.deepEqual(selectNodeAddresses(node, [], ['192.168.100.0/24', 'fd00:100::/64'], HOST), {
    addresses: ['192.168.100.2', 'fd00:100::2', '192.168.100.50'], nodePortAddresses: ['192.168.100.2', 'fd00:100::2', '192.168.100.50'],
  });
});

test('NodeAddresses: the host\'s addresses taken select again, with the Node as last taken; a Node update keeps them; outside a cluster they change nothing', (t) => {
  const a = new NodeAddresses({ configured: [], podCIDRs: [], nodePortFilter: ['192.168.100.0/24', 'fd00:100::/64'] });
  t.true(a.takeHostAddresses(['192.168.100.50']), 'the Node not known: the host\'s address in the CIDR');
  t.deepEqual(a.nodePortAddresses, ['192.168.100.50']);
  a.takeNode({ ...node, podCIDRs: [], zone: '' });
  t.deepEqual(a.addresses, ['192.168.100.2', 'fd00:100::2', '192.168.100.50']);
  t.deepEqual(a.nodePortSpec(), ['192.168.100.2', 'fd00:100::2', '192.168.100.50']);
  t.false(a.takeHostAddresses(['192.168.100.50', '198.51.100.50']), 'an address outside the CIDRs changes nothing');
  t.true(a.takeHostAddresses(['198.51.100.50']), 'the address gone from the host');
  t.deepEqual(a.addresses, ['192.168.100.2', 'fd00:100::2']);
  t.deepEqual(a.nodePortAddresses, ['192.168.100.2', 'fd00:100::2']);
  t.true(a.takeHostAddresses(['192.168.100.2', '192.168.100.51']));
  a.takeNode({ addresses: ['192.168.100.3'], primary: ['192.168.100.3'], podCIDRs: [], zone: '' });
  t.deepEqual(a.addresses, ['192.168.100.3', '192.168.100.2', '192.168.100.51'], 'the Node\'s new address, and the host\'s in the CIDR');
  // a host without IPv6 runs the primary IP's family's proxier only
  const v4 = new NodeAddresses({ configured: [], podCIDRs: [], nodePortFilter: ['0.0.0.0/0'], hostIPv6: false });
  v4.takeNode({ ...node, podCIDRs: [], zone: '' });
  v4.takeHostAddresses(['10.1.1.5', '2001:db8::5']);
  t.deepEqual(v4.nodePortAddresses, ['192.168.100.2', '10.1.1.5']);
  const none = new NodeAddresses({ configured: ['192.168.1.2'], podCIDRs: [] });
  t.false(none.takeHostAddresses(['192.168.1.50']));
  t.deepEqual(none.addresses, ['192.168.1.2']);
  t.is(none.nodePortAddresses, undefined);
});

// ---- the watch in a namespace of its own ------------------------------------------------------
const { test: rootTest } = rootGate(test);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

rootTest('HostAddressWatch: an address added or removed in its namespace is reported once read; wdp\'s own interfaces\' are not; the monitor started again when it dies', async (t) => {
  const lab = new NetnsLab('ha');
  t.teardown(() => lab.destroy());
  const ns = lab.namespace('h');
  lab.veth(ns, 'eth1', ns, 'port0');
  const seen = [];
  const { log, lines } = memoryLogger();
  const owned = () => ({ ifnames: ['port0'], hostAddresses: [] });
  const initial = readHostAddresses(ns, owned());
  t.deepEqual(initial, []);
  const w = new HostAddressWatch(ns, owned, (a) => seen.push(a), log, initial);
  t.teardown(() => w.stop());
  w.start();
  const waitSeen = async (want, what) => {
    for (let i = 0; i < 100 && JSON.stringify(seen.at(-1)) !== JSON.stringify(want); i++) await sleep(100);
    t.deepEqual(seen.at(-1), want, what);
  };
  await sleep(300);   // (the monitor subscribed)
  lab.addr(ns, 'eth1', '192.168.100.50/32');
  lab.addr(ns, 'port0', '192.168.100.60/32');
  await waitSeen(['192.168.100.50'], 'the host\'s address, not the port\'s');
  const reported = seen.length;
  lab.addr(ns, 'port0', '192.168.100.61/32');
  await sleep(600);
  t.is(seen.length, reported, 'a change on a port\'s interface alone is no change of the host\'s');
  // the monitor (the one process in the namespace) dies: started again after 1 s, with a read
  const nsPids = () => execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  const pids = nsPids();
  t.true(pids.length >= 1, 'the monitor runs in the namespace');
  for (const p of pids) process.kill(Number(p), 'SIGKILL');
  lab.exec(ns, 'ip', ['addr', 'del', '192.168.100.50/32', 'dev', 'eth1']);
  await waitSeen([], 'the change made while no monitor ran is read at its restart');
  t.true(lines.some((l) => /ip monitor address\) stopped/.test(l.msg)), 'logged');
  lab.addr(ns, 'eth1', '10.1.1.5/24');
  await waitSeen(['10.1.1.5'], 'the restarted monitor follows');
  w.stop();
  for (let i = 0; i < 50 && nsPids().length; i++) await sleep(100);
  t.deepEqual(nsPids(), [], 'stopped: no monitor left');
});

rootTest('HostAddressWatch: the monitor ends with a daemon killed outright (setpriv --pdeathsig), not at its next event', async (t) => {
  const lab = new NetnsLab('hk');
  t.teardown(() => lab.destroy());
  const ns = lab.namespace('h');
  lab.veth(ns, 'eth1', ns, 'port0');
  const MODULE = new URL('../dist/src/daemon/host-addresses.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e',
    `const m = await import(${JSON.stringify(MODULE)}); const log = { info() {}, warn() {} };
     new m.HostAddressWatch(${JSON.stringify(ns)}, () => ({ ifnames: [], hostAddresses: [] }), () => {}, log, []).start();
     console.log('watching'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const nsPids = () => execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  // (while the monitor starts, the exec that puts it in the namespace can be seen beside it: wait for one)
  for (let i = 0; i < 100 && (!out.includes('watching') || nsPids().length !== 1); i++) await sleep(100);
  t.is(nsPids().length, 1, `the monitor runs in the namespace: ${out}`);
  child.kill('SIGKILL');
  for (let i = 0; i < 50 && nsPids().length; i++) await sleep(100);
  t.deepEqual(nsPids(), [], 'no monitor left once the daemon is killed, with no address event since');
});
