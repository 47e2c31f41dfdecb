// src/kube/families.ts: what one family's proxier of kube-proxy keeps of the API's objects (the
// watcher programs that when the host runs fewer than both families: kube-proxier-families).
import test from 'ava';
import { serviceInFamilies, serviceInFamiliesAtAll, sliceInFamilies, cidrsInFamilies, familyShape, familiesCanCut } from '../dist/src/kube/families.js';

const svc = (spec, status) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'default' }, spec, ...(status ? { status } : {}) });
const ds = () => svc({
  type: 'LoadBalancer', clusterIP: 'fd00:96::1', clusterIPs: ['fd00:96::1', '10.96.0.1'], ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'PreferDualStack',
  externalIPs: ['2001:db8::1', '192.0.2.1'], loadBalancerSourceRanges: [' 10.0.0.0/8', 'fd00::/8'], ports: [{ port: 80 }],
}, { loadBalancer: { ingress: [{ ip: '2001:db8::9' }, { hostname: 'lb.example' }, { ip: '192.0.2.9' }] } });

test('both families: every object whole, the same object', (t) => {
  const s = ds();
  t.is(serviceInFamilies(s, ['IPv4', 'IPv6']), s);
  t.true(sliceInFamilies({ addressType: 'IPv6' }, ['IPv4', 'IPv6']));
  t.deepEqual(cidrsInFamilies(['10.0.0.0/8', 'fd00::/8'], ['IPv6', 'IPv4']), ['10.0.0.0/8', 'fd00::/8']);
});

test('one family: a dual-stack Service single-stack of it, with its external IPs, source ranges and ingress IPs (hostname entries kept)', (t) => {
  const v4 = serviceInFamilies(ds(), ['IPv4']);
  t.deepEqual(v4.spec, { ...ds().spec, clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', externalIPs: ['192.0.2.1'], loadBalancerSourceRanges: [' 10.0.0.0/8'] });
  t.deepEqual(v4.status.loadBalancer.ingress, [{ hostname: 'lb.example' }, { ip: '192.0.2.9' }]);
  const v6 = serviceInFamilies(ds(), ['IPv6']);
  t.deepEqual(v6.spec.clusterIPs, ['fd00:96::1']);
  t.deepEqual(v6.spec.externalIPs, ['2001:db8::1']);
  t.deepEqual(v6.spec.loadBalancerSourceRanges, ['fd00::/8']);
  t.deepEqual(ds().spec.clusterIPs, ['fd00:96::1', '10.96.0.1'], 'the input is not changed');
});

test('one family: lists left empty go; a Service without a cluster IP of it is none of its; one without any cluster IP address is left to the model', (t) => {
  const only6 = svc({ clusterIP: 'fd00:96::2', clusterIPs: ['fd00:96::2'], externalIPs: ['2001:db8::2'] });
  t.is(serviceInFamilies(only6, ['IPv4']), null);
  t.false(serviceInFamiliesAtAll(only6, ['IPv4']));
  const v4 = serviceInFamilies(svc({ clusterIP: '10.96.0.2', externalIPs: ['2001:db8::2'], loadBalancerSourceRanges: ['fd00::/8'] }, { loadBalancer: { ingress: [{ ip: '2001:db8::3' }] } }), ['IPv4']);
  t.false('externalIPs' in v4.spec);
  t.false('loadBalancerSourceRanges' in v4.spec);
  t.false('status' in v4);
  // a ClusterIP Service external through its external IPs alone, none of them of the family: its
  // externalTrafficPolicy goes with them (the model refuses it on a Service with no external
  // address; found by test/kube-converge-fuzz.test.js)
  const ext6 = serviceInFamilies(svc({ type: 'ClusterIP', clusterIP: '10.96.0.2', externalIPs: ['2001:db8::2'], externalTrafficPolicy: 'Local' }), ['IPv4']);
  t.false('externalTrafficPolicy' in ext6.spec);
  const np = serviceInFamilies(svc({ type: 'NodePort', clusterIP: '10.96.0.2', externalIPs: ['2001:db8::2'], externalTrafficPolicy: 'Local' }), ['IPv4']);
  t.is(np.spec.externalTrafficPolicy, 'Local', 'a NodePort keeps it: its node ports are external');
  const headless = svc({ clusterIP: 'None', clusterIPs: ['None'] });
  t.is(serviceInFamilies(headless, ['IPv4']), headless);
  t.true(serviceInFamiliesAtAll(headless, ['IPv6']));
  const bad = svc({ clusterIP: '10.96.0.3', externalIPs: ['not-an-ip'] });
  t.deepEqual(serviceInFamilies(bad, ['IPv4']).spec.externalIPs, ['not-an-ip'], 'what is no address is left for the model to refuse');
});

test('slices: one of the other address type is none of its; FQDN left to the model', (t) => {
  t.false(sliceInFamilies({ addressType: 'IPv6' }, ['IPv4']));
  t.true(sliceInFamilies({ addressType: 'IPv4' }, ['IPv4']));
  t.true(sliceInFamilies({ addressType: 'FQDN' }, ['IPv6']));
});

test('familyShape: a copy cut for the families in force matches the API object under them; a whole copy or one cut for others does not', (t) => {
  const cut = serviceInFamilies(ds(), ['IPv4']);
  t.is(familyShape(cut, null), familyShape(ds(), ['IPv4']));
  t.not(familyShape(ds(), null), familyShape(ds(), ['IPv4']));
  t.not(familyShape(cut, null), familyShape(ds(), null));
  t.is(familyShape(ds(), null), familyShape(ds(), ['IPv6', 'IPv4']));
  // the node's primary IP changed family: the copy cut for the other family has as many entries,
  // and must still be told apart (found by test/kube-converge-fuzz.test.js)
  t.not(familyShape(serviceInFamilies(ds(), ['IPv6']), null), familyShape(ds(), ['IPv4']));
  t.not(familyShape(cut, null), familyShape(ds(), ['IPv6']));
});

test('familiesCanCut: only a Service with more than one cluster IP, or external IPs, source ranges or ingress entries', (t) => {
  t.true(familiesCanCut(ds()));
  t.false(familiesCanCut(svc({ clusterIP: '10.96.0.4', clusterIPs: ['10.96.0.4'], ports: [{ port: 80 }] })));
  t.false(familiesCanCut(svc({ clusterIP: '10.96.0.4', externalIPs: [] }, { loadBalancer: { ingress: [] } })));
  t.true(familiesCanCut(svc({ clusterIP: '10.96.0.4', externalIPs: ['192.0.2.4'] })));
  t.true(familiesCanCut(svc({ clusterIP: '10.96.0.4' }, { loadBalancer: { ingress: [{ ip: '192.0.2.5' }] } })));
});

test('one family: IPv4 addresses with leading zeros (ParseIPSloppy, as the model reads them) are of IPv4', (t) => {
  const s = svc({ clusterIP: '10.96.0.010', clusterIPs: ['10.96.0.010', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    externalIPs: ['192.0.2.010', '2001:db8::10'], loadBalancerSourceRanges: ['010.0.0.0/8', 'fd00::/8'], ports: [{ port: 80 }] },
  { loadBalancer: { ingress: [{ ip: '192.0.2.011' }, { ip: '2001:db8::11' }] } });
  t.true(serviceInFamiliesAtAll(s, ['IPv4']));
  const v4 = serviceInFamilies(s, ['IPv4']);
  t.deepEqual(v4?.spec.clusterIPs, ['10.96.0.010']);
  t.deepEqual(v4.spec.ipFamilies, ['IPv4']);
  t.deepEqual(v4.spec.externalIPs, ['192.0.2.010']);
  t.deepEqual(v4.spec.loadBalancerSourceRanges, ['010.0.0.0/8']);
  t.deepEqual(v4.status.loadBalancer.ingress, [{ ip: '192.0.2.011' }]);
  const v6 = serviceInFamilies(s, ['IPv6']);
  t.deepEqual(v6.spec.clusterIPs, ['fd00:96::10']);
  t.deepEqual(v6.spec.externalIPs, ['2001:db8::10']);
  t.deepEqual(v6.spec.loadBalancerSourceRanges, ['fd00::/8']);
  t.deepEqual(v6.status.loadBalancer.ingress, [{ ip: '2001:db8::11' }]);
  t.is(serviceInFamilies(svc({ clusterIP: '10.96.0.012', clusterIPs: ['10.96.0.012'] }), ['IPv6']), null);
  t.deepEqual(cidrsInFamilies(['010.0.0.0/8', 'fd00::/8'], ['IPv6']), ['fd00::/8']);
});
