// loadBalancerSourceRanges as the API server accepts them and kube-proxy reads them
// (pkg/proxy/serviceport.go: each entry TrimSpace'd, then ParseCIDRSloppy, which keeps the prefix of
// an address with host bits set): " 10.0.0.0/8 " and "10.1.2.3/8" are 10.0.0.0/8. Refused, such a
// Service would be skipped by the watcher in a cluster and not served at all.
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll, validateObject } from '../dist/src/model/schema.js';
import { serviceForModel } from '../dist/src/kube/objects.js';

// a LoadBalancer Service as the API server hands it to the watcher
const apiService = (ranges) => ({
  metadata: { name: 'web', namespace: 'shop', resourceVersion: '7' },
  spec: {
    type: 'LoadBalancer', clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
    ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }],
    externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', sessionAffinity: 'None',
    loadBalancerSourceRanges: ranges,
  },
  status: { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'VIP' }] } },
});

test('padded and host-bit source ranges are accepted and programmed as their prefixes', (t) => {
  const raw = serviceForModel(apiService([' 203.0.113.0/24', '10.1.2.3/8 ', '2001:db8::1/32', '198.51.100.7/32']));
  const v = validateObject(raw);
  t.true(v.ok, v.ok ? '' : v.errors.map((e) => e.message).join('; '));
  t.deepEqual(v.obj.sourceRanges, ['203.0.113.0/24', '10.0.0.0/8', '2001:db8::/32', '198.51.100.7/32']);
  const c = new Compiler();
  c.change({ upsert: validateAll([raw]) });
  const lb = [...c.ir.frontends.values()].find((f) => f.kind === 'LoadBalancer');
  t.deepEqual(lb.sourceRanges, ['203.0.113.0/24', '10.0.0.0/8', '198.51.100.7/32'], 'the IPv4 ranges guard the IPv4 LB IP');
});

test('what is no CIDR at all is still refused, with its field', (t) => {
  for (const bad of ['10.1.2.3', '10.0.0.0/33', 'fe80::/10%eth0', '', 'x/8']) {
    const v = validateObject(serviceForModel(apiService(['10.0.0.0/8', bad])));
    t.false(v.ok, JSON.stringify(bad));
    if (!v.ok) t.deepEqual(v.errors.map((e) => e.field), ['spec.loadBalancerSourceRanges[1]'], JSON.stringify(bad));
  }
});

// the node IP a range is checked against (kube-proxy's per-family nodeIP, allowFromNode)
test('NodeConfig nodeIPs: one per family, canonical; default the first node address of the family, else loopback', (t) => {
  const nc = (spec) => ({ apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' }, spec });
  const named = validateObject(nc({ nodeAddresses: ['192.168.0.1', '192.168.0.2'], nodeIPs: ['fd00:0:0::2', '192.168.0.2'] }));
  t.true(named.ok);
  t.like(named.obj, { nodeIPv4: '192.168.0.2', nodeIPv6: 'fd00::2' });
  const dflt = validateObject(nc({ nodeAddresses: ['fd00::9', '192.168.0.1', '192.168.0.2'] }));
  t.like(dflt.obj, { nodeIPv4: '192.168.0.1', nodeIPv6: 'fd00::9' });
  t.like(validateObject(nc({})).obj, { nodeIPv4: '127.0.0.1', nodeIPv6: '::1' });
  const two = validateObject(nc({ nodeIPs: ['192.168.0.1', '192.168.0.2'] }));
  t.false(two.ok);
  if (!two.ok) t.deepEqual(two.errors.map((e) => e.field), ['spec.nodeIPs[1]']);
  const bad = validateObject(nc({ nodeIPs: ['192.168.0.300'] }));
  t.false(bad.ok);
  if (!bad.ok) t.deepEqual(bad.errors.map((e) => e.field), ['spec.nodeIPs[0]']);
});
