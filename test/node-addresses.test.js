// NodeAddresses (src/daemon/node-addresses.ts): the node's addresses and the Node's facts as the
// daemon's NodeConfig takes them, and their transitions — the Node read or taken as last seen,
// a NodeConfig applied through the API adopted, the daemon's own program not adopted back — with
// the config file's fallbacks applied from the config, never kept among the Node's facts.
import test from 'ava';
import { NodeAddresses, nodeAddressesKey, addressKey } from '../dist/src/daemon/node-addresses.js';

const facts = (addresses, more = {}) => ({ addresses, primary: [addresses[0]], podCIDRs: [], zone: '', ...more });
const cluster = (over = {}) => ({ configured: [], podCIDRs: [], nodePortFilter: ['primary'], ...over });

test('without a cluster: the configured addresses, NodePorts on every one, node.zone and node.podCIDRs', (t) => {
  const a = new NodeAddresses({ configured: ['192.168.1.2'], zone: 'z1', podCIDRs: ['10.244.0.0/24'] });
  t.deepEqual(a.addresses, ['192.168.1.2']);
  t.is(a.nodePortAddresses, undefined);
  t.is(a.nodePortSpec(), undefined);
  t.is(a.zone, 'z1');
  t.deepEqual(a.podCIDRsSpec(), ['10.244.0.0/24']);
  t.deepEqual(a.nodeIPs, []);
  t.is(a.facts, null);
  t.is(new NodeAddresses({ configured: [], podCIDRs: [] }).podCIDRsSpec(), undefined, 'none configured: no podCIDRs');
});

test('in a cluster the Node read: every Node address a node address, NodePorts on the primary IP, its zone and pod CIDRs over the config\'s', (t) => {
  const saved = [];
  const a = new NodeAddresses(cluster({ zone: 'zc', podCIDRs: ['10.9.0.0/24'] }), (f) => saved.push(f));
  a.takeNode(null);
  t.deepEqual(saved, [], 'nothing known, nothing changed');
  t.deepEqual(a.addresses, []);
  t.deepEqual(a.podCIDRsSpec(), ['10.9.0.0/24'], 'no Node pod CIDRs: the config\'s');
  t.is(a.zone, 'zc');
  a.takeNode({ name: 'n', eligible: true, ...facts(['192.168.1.2', '192.168.1.3'], { podCIDRs: ['10.244.1.0/24'], zone: 'zn' }) });
  t.deepEqual(a.addresses, ['192.168.1.2', '192.168.1.3']);
  t.deepEqual(a.nodePortAddresses, ['192.168.1.2']);
  t.deepEqual(a.nodeIPs, ['192.168.1.2']);
  t.deepEqual(a.podCIDRsSpec(), ['10.244.1.0/24']);
  t.is(a.zone, 'zn');
  t.deepEqual(a.facts, facts(['192.168.1.2', '192.168.1.3'], { podCIDRs: ['10.244.1.0/24'], zone: 'zn' }), 'what the Node said, its name and eligibility left out');
  t.is(saved.length, 1);
  a.takeNode(facts(['192.168.1.2', '192.168.1.3'], { podCIDRs: ['10.244.1.0/24'], zone: 'zn' }));
  t.is(saved.length, 1, 'the same facts again: not saved again');
  a.takeNode(facts(['192.168.1.2']));
  t.deepEqual(a.podCIDRsSpec(), ['10.9.0.0/24'], 'the Node dropped its pod CIDRs: the config\'s again');
  t.is(a.zone, 'zc', 'the Node dropped its zone: the config\'s again');
  t.deepEqual(saved.at(-1), facts(['192.168.1.2']), 'the facts saved are the Node\'s alone, no fallback among them');
});

test('node.addresses configured with a nodePortAddresses filter: the configured ones, plus the Node\'s the filter selects', (t) => {
  const a = new NodeAddresses(cluster({ configured: ['192.168.1.5'], nodePortFilter: ['0.0.0.0/0'] }));
  a.takeNode(facts(['192.168.1.2']));
  t.deepEqual(a.addresses, ['192.168.1.5', '192.168.1.2']);
  t.deepEqual(a.nodePortAddresses, ['192.168.1.5', '192.168.1.2']);
  t.deepEqual(a.facts.addresses, ['192.168.1.2'], 'the configured address is not the Node\'s');
  const b = new NodeAddresses(cluster({ configured: ['192.168.1.5'], nodePortFilter: [] }));
  b.takeNode(facts(['192.168.1.2']));
  t.deepEqual(b.addresses, ['192.168.1.5'], 'without a filter the configured addresses alone');
  t.deepEqual(b.facts.addresses, ['192.168.1.2'], '...and the Node\'s kept as what it said');
});

test('a NodeConfig applied through the API is adopted; the node change of the daemon\'s own program is not; a Node read later wins again', (t) => {
  const a = new NodeAddresses(cluster());
  a.takeNode(facts(['192.168.1.2', '192.168.1.3']));
  t.true(a.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']));
  t.deepEqual(a.addresses, ['192.168.1.2', '192.168.1.9']);
  t.deepEqual(a.nodePortSpec(), ['192.168.1.9']);
  t.true(a.adoptApplied(['192.168.1.9', '192.168.1.2'], ['192.168.1.9'], ['node-a']), 'the same set in another order: adopted (a family\'s first address is its masquerade source)');
  t.deepEqual(a.addresses, ['192.168.1.9', '192.168.1.2']);
  t.false(a.adoptApplied(['192.168.1.9', '192.168.1.2'], ['192.168.1.9'], ['node-a']), 'the same list again: nothing changes');
  a.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']);
  // the daemon's own program, built before a Node update was read during its apply
  a.ownProgram({ nodeAddresses: ['192.168.1.2', '192.168.1.9'], nodePortAddresses: ['192.168.1.9'] });
  a.takeNode(facts(['192.168.1.2', '192.168.1.4']));
  t.false(a.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']), 'its own program\'s change is not adopted back');
  t.deepEqual(a.addresses, ['192.168.1.2', '192.168.1.4'], 'the Node update read meanwhile stays');
  a.ownProgramDone();
  t.true(a.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']), 'once done, the same addresses from the API are adopted');
});

test('an applied NodeConfig without NodePort addresses keeps the list in force; one naming every node address is adopted only when a list was in force', (t) => {
  const a = new NodeAddresses(cluster());
  a.takeNode(facts(['192.168.1.2', '192.168.1.3']));
  a.adoptApplied(['192.168.1.2', '192.168.1.3', '192.168.1.7'], undefined, ['node-a']);
  t.deepEqual(a.nodePortSpec(), ['192.168.1.2'], 'no nodePortAddresses in the applied config: the cluster\'s selection stays');
  a.adoptApplied(['192.168.1.2', '192.168.1.3'], ['192.168.1.2', '192.168.1.3'], ['node-a']);
  t.deepEqual(a.nodePortSpec(), ['192.168.1.2', '192.168.1.3']);
  const b = new NodeAddresses({ configured: ['192.168.1.2'], podCIDRs: [] });
  t.false(b.adoptApplied(['192.168.1.2'], ['192.168.1.2'], ['node-a']), 'without a cluster, every node address is what unset means');
  t.is(b.nodePortSpec(), undefined);
  t.true(b.adoptApplied(['192.168.1.2', '192.168.1.3'], ['192.168.1.3'], ['node-a']));
  t.deepEqual(b.nodePortSpec(), ['192.168.1.3']);
  b.adoptApplied(['192.168.1.2'], undefined, ['node-a']);
  t.deepEqual(b.nodePortSpec(), [], 'NodePort addresses no longer node addresses are left out of the spec');
});

test('the names a NodeConfig was applied as go with its adopted addresses; none (the daemon\'s own in place of a deleted one) drops them; a Node read later drops them too', (t) => {
  const b = new NodeAddresses({ configured: ['192.168.1.2'], podCIDRs: [] });
  t.deepEqual(b.appliedAs, []);
  t.deepEqual(b.ownSpec(), { nodeAddresses: ['192.168.1.2'], nodePortAddresses: undefined });
  t.false(b.adoptApplied(['192.168.1.2'], undefined, []), 'nothing adopted, nothing to drop');
  t.true(b.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']));
  t.deepEqual(b.appliedAs, ['node-a']);
  t.deepEqual(b.ownSpec(), { nodeAddresses: ['192.168.1.2'], nodePortAddresses: undefined }, 'what a delete programs: node.addresses, NodePorts on each');
  t.deepEqual(b.addresses, ['192.168.1.2', '192.168.1.9'], 'ownSpec drops nothing');
  t.false(b.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a', 'node-b']), 'another name for the same addresses: the lists stay');
  t.deepEqual(b.appliedAs, ['node-a', 'node-b']);
  t.false(b.adoptApplied([], undefined, ['node-c']), 'one without node addresses changes none');
  t.deepEqual(b.appliedAs, ['node-c']);
  t.true(b.adoptApplied(['192.168.1.2'], undefined, []), 'the daemon\'s own in place: the adopted addresses dropped');
  t.deepEqual(b.addresses, ['192.168.1.2']);
  t.is(b.nodePortSpec(), undefined);
  t.deepEqual(b.appliedAs, []);
  const a = new NodeAddresses(cluster());
  a.takeNode(facts(['192.168.1.2', '192.168.1.3']));
  a.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']);
  t.deepEqual(a.ownSpec().nodeAddresses, ['192.168.1.2', '192.168.1.3'], 'in a cluster: the Node\'s selection');
  a.takeNode(facts(['192.168.1.2', '192.168.1.4']));
  t.deepEqual(a.appliedAs, [], 'the Node read later wins: nothing adopted any more');
  // the host's addresses read again unchanged (an `ip monitor` event for another reason) are
  // nothing new: an adoption stays; a changed list wins
  const h = new NodeAddresses(cluster({ nodePortFilter: ['192.168.1.0/24'] }));
  t.true(h.takeHostAddresses(['192.168.1.7']));
  h.takeNode(facts(['192.168.1.2']));
  h.adoptApplied(['192.168.1.2', '192.168.1.9'], ['192.168.1.9'], ['node-a']);
  t.false(h.takeHostAddresses(['192.168.1.7']));
  t.deepEqual([h.addresses, h.appliedAs], [['192.168.1.2', '192.168.1.9'], ['node-a']]);
  t.true(h.takeHostAddresses(['192.168.1.8']));
  t.deepEqual(h.appliedAs, []);
});

test('keys: a set of addresses in any order and form; NodePort addresses absent = every node address', (t) => {
  t.is(addressKey(['10.0.0.2', '10.0.0.1']), addressKey(['10.0.0.1', '10.0.0.2']));
  t.is(nodeAddressesKey(['fd00::0002', '10.0.0.1'], undefined), nodeAddressesKey(['10.0.0.1', 'fd00::2'], ['fd00::2', '10.0.0.1', '10.0.0.1']));
  t.not(nodeAddressesKey(['10.0.0.1', '10.0.0.2'], ['10.0.0.1']), nodeAddressesKey(['10.0.0.1', '10.0.0.2'], undefined));
});

test('in a cluster on a host without IPv6: NodePorts on the addresses of kube-proxy\'s one proxier family only; every Node address stays a node address', (t) => {
  const dual = facts(['192.168.1.2', 'fd00:1::2'], { primary: ['192.168.1.2', 'fd00:1::2'] });
  const withV6 = new NodeAddresses(cluster({ hostIPv6: true }));
  withV6.takeNode(dual);
  t.deepEqual(withV6.nodePortAddresses, ['192.168.1.2', 'fd00:1::2']);
  const without = new NodeAddresses(cluster({ hostIPv6: false }));
  without.takeNode(dual);
  t.deepEqual(without.nodePortAddresses, ['192.168.1.2']);
  t.deepEqual(without.addresses, ['192.168.1.2', 'fd00:1::2']);
  const v6primary = new NodeAddresses(cluster({ hostIPv6: false }));
  v6primary.takeNode(facts(['fd00:1::2', '192.168.1.2'], { primary: ['fd00:1::2', '192.168.1.2'] }));
  t.deepEqual(v6primary.nodePortAddresses, ['fd00:1::2'], 'the primary IP\'s family');
});
