// kube-proxy's --masquerade-all (NodeConfig masqueradeAll): the nftables proxier's internal chain
// marks every new flow to a ClusterIP for masquerade ("ip daddr <ClusterIP> <proto> dport <port>
// jump mark-for-masquerade"), pods' too, instead of only those the local-traffic detector does not
// take for pods. The rule matches the ClusterIP as destination: traffic short-circuited to the
// cluster-wide endpoints from an externalTrafficPolicy Local NodePort is not masqueraded by it.
import test from 'ava';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import * as B from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { backend, frontend, mkIr, runBoth, firstMismatch, MAC, L } from './lib/packets.js';
import { corePair } from './lib/core-pair.js';

const node = (extra) => ({
  apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: ['192.168.0.1'], clusterCIDRs: ['10.244.0.0/16'], ...extra },
});
const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { type: 'NodePort', clusterIP: '10.96.0.1', externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }] } };

test('compiler: with masqueradeAll a ClusterIP masquerades every source; without it, those outside the pods', (t) => {
  for (const [all, want] of [[true, L.FEF_MASQUERADE], [false, L.FEF_MASQUERADE_OUTSIDE]]) {
    const c = new Compiler();
    c.change({ upsert: validateAll([node(all ? { masqueradeAll: true } : {}), svc]) });
    const fronts = [...c.ir.frontends.values()];
    const cip = fronts.find((f) => f.kind === 'ClusterIP'), np = fronts.find((f) => f.kind === 'NodePort');
    t.is(cip.flags & (L.FEF_MASQUERADE | L.FEF_MASQUERADE_OUTSIDE), want, `masqueradeAll ${all}`);
    t.is(np.flags & L.FEF_MASQUERADE, 0, 'the eTP Local NodePort keeps its clients\' addresses');
  }
});

test('core = model: pods to the ClusterIP are masqueraded; pods short-circuited from the Local NodePort and outside clients are not', (t) => {
  const local = backend({ id: 1, addr: '10.244.1.5', port: 8080, outPort: 11 });
  const remote = backend({ id: 2, addr: '10.244.2.5', port: 8080, outPort: 12 });
  const fronts = [
    frontend({ id: 1, addr: '10.96.0.1', port: 80, flags: L.FEF_MASQUERADE }, [local, remote]),
    frontend({ id: 2, addr: '192.168.0.1', port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL, clusterFront: 1 }, [local]),
  ];
  const routes = [
    { prefix: '0.0.0.0/0', outPort: 5, dstMac: MAC.rtDst, srcMac: MAC.rtSrc },
    { prefix: '10.244.0.0/16', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'pod' },
    { prefix: '192.168.0.1/32', outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00', localSource: 'node' },
  ];
  const s = corePair(mkIr({ frontends: fronts, backends: [local, remote], routes, snatV4: '192.168.0.1' }), { flows: 1024, batchMax: 64, affinitySlots: 64 });
  const pod = '10.244.1.7', outside = '203.0.113.9';
  const syn = (src, dst, dport, sport) => B.frame({ srcMac: MAC.client, dstMac: MAC.node, proto: 'TCP', src, dst, sport, dport, flags: 'S' });
  const frames = [];
  for (let i = 0; i < 8; i++) {
    frames.push(syn(pod, '10.96.0.1', 80, 20000 + i));
    frames.push(syn(pod, '192.168.0.1', 30080, 21000 + i));
    frames.push(syn(outside, '192.168.0.1', 30080, 22000 + i));
  }
  const pairs = runBoth(s.core, s.model, frames, 1000, 3, { trace: true });
  t.is(firstMismatch(pairs), undefined, 'core = model');
  for (let i = 0; i < frames.length; i++) {
    const o = parseFrame(B.fromHex(pairs[i].core.hex));
    t.is(pairs[i].core.reason, 'fwd_nat');
    const want = ['192.168.0.1', pod, outside][i % 3];
    t.is(o.src, want, ['pod to the ClusterIP: masqueraded', 'pod short-circuited from the NodePort: its own address', 'outside client: its own address'][i % 3]);
  }
});
