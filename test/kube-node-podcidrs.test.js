// A Node's pod CIDRs as the daemon's NodeConfig takes them: the API server accepts a pod CIDR with
// host bits set (its validation parses CIDRs sloppily), and kube-proxy's detect-local reads the
// network it names (net.ParseCIDR: host bits cleared). The NodeConfig refuses host bits, so
// nodeInfo clears them: a Node so written must not make every program of the node config (the
// start's first one included) fail.
import test from 'ava';
import { nodeInfo } from '../dist/src/kube/node.js';
import { validateObject } from '../dist/src/model/schema.js';

test('pod CIDRs with host bits are taken as their networks; what is not a CIDR is left out', (t) => {
  const n = nodeInfo({ metadata: { name: 'n' }, spec: { podCIDRs: ['10.244.1.5/24', 'FD00:10:244:1::7/64', 'nonsense', '10.9.0.0'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.1.2' }] } });
  t.deepEqual(n.podCIDRs, ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  const r = validateObject({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node' }, spec: { nodeName: 'n', nodeAddresses: n.addresses, podCIDRs: n.podCIDRs } });
  t.true(r.ok, JSON.stringify(r.errors));
  t.deepEqual(nodeInfo({ metadata: { name: 'n' }, spec: { podCIDR: '10.244.2.1/24' } }).podCIDRs, ['10.244.2.0/24'], 'the older single field too');
});
