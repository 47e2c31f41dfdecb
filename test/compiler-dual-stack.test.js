// What the compiler produces for dual-stack Services where kube-proxy decides per IP family (one
// proxier per family behind the metaproxier, each with its own local-traffic detector).
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import * as L from '../dist/assembly/layout.js';

const node = (extra = {}) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: ['192.168.0.1', 'fd00:1::1'], ...extra },
});
const service = {
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' },
  spec: { clusterIPs: ['10.96.0.1', 'fd00:96::1'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
};

/** The masquerade flags of the service's ClusterIP frontends, by family. */
function masq(nodeSpec) {
  const c = new Compiler();
  c.change({ upsert: validateAll([node(nodeSpec), service]) });
  const out = {};
  for (const f of c.ir.frontends.values()) {
    if (f.kind !== 'ClusterIP') continue;
    out[`v${f.family}`] = (f.flags & L.FEF_MASQUERADE_OUTSIDE ? 'outside' : '') + (f.flags & L.FEF_MASQUERADE ? 'all' : '') || 'none';
  }
  return out;
}

test('ClusterIP masquerade of off-cluster clients follows the local-traffic detector of the ClusterIP\'s own family (kube-proxy getLocalDetectors: a family without a CIDR gets the no-op detector)', (t) => {
  t.deepEqual(masq({}), { v4: 'none', v6: 'none' }, 'no detector');
  t.deepEqual(masq({ clusterCIDRs: ['10.244.0.0/16'] }), { v4: 'outside', v6: 'none' }, 'an IPv4 cluster CIDR only');
  t.deepEqual(masq({ clusterCIDRs: ['fd00:244::/56'] }), { v4: 'none', v6: 'outside' }, 'an IPv6 cluster CIDR only');
  t.deepEqual(masq({ clusterCIDRs: ['10.244.0.0/16', 'fd00:244::/56'] }), { v4: 'outside', v6: 'outside' }, 'one per family');
  t.deepEqual(masq({ detectLocalMode: 'NodeCIDR', clusterCIDRs: ['10.244.0.0/16'], podCIDRs: ['fd00:244:1::/64'] }), { v4: 'none', v6: 'outside' }, 'NodeCIDR: the pod CIDRs decide');
  t.deepEqual(masq({ detectLocalMode: 'PodPort', podPorts: [2] }), { v4: 'outside', v6: 'outside' }, 'pod ports detect pods of both families');
  t.deepEqual(masq({ clusterCIDRs: ['10.244.0.0/16'], masqueradeAll: true }), { v4: 'all', v6: 'all' }, '--masquerade-all: every family');
});
