// End to end, issue 14: sessionAffinity ClientIP with a short timeout through `wdp start` in
// namespaces. The client sticks to one pod while its affinity entry lives; after each expiry the
// next connection is picked afresh (kube-proxy: a new random pick), so over several expiries the
// same client reaches more than one pod. (Before the fix it re-hashed (client, service) and came
// back to the same pod forever.)
import test from 'ava';
import { e2eSuite, httpMany, curlOk, serviceYaml, sliceYaml, sleep } from './lib/topology.js';

const suite = e2eSuite(test, { kind: 'saf', pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
const { serial, apply } = suite;
let topo;
test.before(() => { topo = suite.topo; });

serial('sessionAffinity timeout: sticky while the entry lives, a fresh pick after each expiry (3 backends, 1 s timeout)', async (t) => {
  await apply([
    serviceYaml({
      name: 'aff', clusterIP: '10.96.8.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      extra: { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } } },
    }),
    sliceYaml({
      name: 'aff-1', service: 'aff', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
    }),
  ]);
  // first contact may race neighbour resolution
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.8.10/')).code, 0);
  const picks = [];
  // 3 pods: 8 epochs all landing on one pod by chance is (1/3)^7 < 0.05%
  for (let epoch = 0; epoch < 8; epoch++) {
    await sleep(2500); // > 1 s timeout: the entry has expired
    const res = await httpMany(topo, topo.ns.client, 'http://10.96.8.10/', 4, { timeoutMs: 3000 });
    const failed = res.filter((r) => r.error);
    t.is(failed.length, 0, JSON.stringify(failed));
    const pods = [...new Set(res.map((r) => r.pod))];
    t.is(pods.length, 1, `epoch ${epoch}: new connections within the timeout stick to one pod (${pods})`);
    picks.push(pods[0]);
  }
  t.true(new Set(picks).size > 1, `over 8 expiries the client reached more than one pod: ${picks}`);
});

// A pin holds only while its pod is in the set the Service selects from now (kube-proxy's chain
// consults the affinity of its own endpoints): pinned to a pod that is remote (node-b), the client
// stays there under internalTrafficPolicy Cluster and leaves it once the policy turns Local.
serial('sessionAffinity and internalTrafficPolicy Cluster -> Local: a pin on a remote pod stops holding', async (t) => {
  const svc = (extra) => serviceYaml({
    name: 'aff-itp', clusterIP: '10.96.8.20', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    extra: { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }, ...extra },
  });
  const slice = (remoteIp) => sliceYaml({
    name: 'aff-itp-1', service: 'aff-itp', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: p.ip === remoteIp ? 'node-b' : 'node-a' })),
  });
  const pods = async () => {
    const res = await httpMany(topo, topo.ns.client, 'http://10.96.8.20/', 3, { timeoutMs: 3000 });
    t.deepEqual(res.filter((r) => r.error), []);
    return [...new Set(res.map((r) => r.pod))];
  };
  await apply([svc({}), slice(null)]);
  t.is((await curlOk(topo, topo.ns.client, 'http://10.96.8.20/')).code, 0);
  const [pinned] = await pods();
  // the pinned pod moves to node-b: still in the cluster-wide set, the pin holds
  await apply([slice(topo.pods.find((p) => p.name === pinned).ip)]);
  t.deepEqual(await pods(), [pinned], 'pinned under internalTrafficPolicy Cluster');
  await apply([svc({ internalTrafficPolicy: 'Local' })]);
  const after = await pods();
  t.is(after.length, 1, `the new pin holds (${after})`);
  t.not(after[0], pinned, 'the remote pod is not in the local set');
});
