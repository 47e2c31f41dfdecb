// End to end: UDP datagrams larger than the MTU through a ClusterIP, IPv4 and IPv6, with `wdp start`
// in its own namespace (docs/core.md "Fragments"). The client's kernel fragments a 3000-byte
// request, wdp translates every fragment (the later ones by the first fragment's flow), the pod's
// kernel reassembles it and its echo answer (3006 bytes, fragmented by the pod's kernel) comes back
// whole from the VIP. Before the fragment table, only first fragments passed and these were lost.
import test from 'ava';
import { e2eSuite, api, udpAsk, serviceYaml, sliceYaml } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });
const VIP = '10.96.0.30';
const VIP6 = 'fd00:96::30';

async function dnsService() {
  await apply([
    serviceYaml({ name: 'big', clusterIP: VIP, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({
      name: 'big-1', service: 'big', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
    }),
    serviceYaml({ name: 'big6', clusterIP: VIP6, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }], extra: { ipFamilies: ['IPv6'] } }),
    sliceYaml({
      name: 'big6-1', service: 'big6', addressType: 'IPv6', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip6], conditions: { ready: true }, nodeName: 'node-a' })),
    }),
  ]);
}

/** One request of `size` bytes; a few tries (the first may race the backend's neighbour resolution). */
async function ask(host, size, tag) {
  const payload = `${tag}:`.padEnd(size, 'x');
  let r;
  for (let i = 0; i < 8; i++) {
    r = await udpAsk(topo, topo.ns.client, host, 53, payload, { timeoutMs: 2000 });
    if (r.reply) break;
  }
  return { r, payload };
}

for (const [fam, vip] of [[4, VIP], [6, VIP6]]) {
  serial(`IPv${fam}: 3000-byte UDP requests and their 3006-byte answers through a ClusterIP, fragmented both ways`, async (t) => {
    await dnsService();
    const c0 = (await api(topo, 'GET', '/api/v1/counters')).json;
    for (let i = 0; i < 6; i++) {
      const { r, payload } = await ask(vip, 3000, `big${fam}-${i}`);
      t.truthy(r.reply, `no answer to request ${i}: ${JSON.stringify(r)}\n${topo.daemonLog.slice(-2000)}`);
      if (!r.reply) return;
      t.is(r.from, vip);
      t.is(r.port, 53);
      const [pod, ...rest] = r.reply.split(':');
      t.regex(pod, /^pod-[ab]$/);
      t.is(rest.join(':'), payload, 'the whole datagram made it to the pod and back');
    }
    const c1 = (await api(topo, 'GET', '/api/v1/counters')).json;
    const fwd = (k) => (c1.reasons[k] ?? 0) - (c0.reasons[k] ?? 0);
    // each request: at least 3 fragments out, 3 back (plus neighbour traffic, which is not counted here)
    t.true(fwd('fwd_nat') >= 18 && fwd('fwd_reply') >= 18, `fwd_nat +${fwd('fwd_nat')}, fwd_reply +${fwd('fwd_reply')}`);
    t.is(fwd('drop_fragment'), 0, 'no fragment was dropped');
  });
}

serial('a small datagram still works and the VIP answers from port 53 (no fragments)', async (t) => {
  await dnsService();
  const { r } = await ask(VIP, 100, 'small');
  t.truthy(r.reply, JSON.stringify(r));
  t.is(r.from, VIP);
});
