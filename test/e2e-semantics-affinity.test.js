// End to end, issue 14: sessionAffinity ClientIP with a short timeout through `wdp start` in
// namespaces. The client sticks to one pod while its affinity entry lives; after each expiry the
// next connection is picked afresh (kube-proxy: a new random pick), so over several expiries the
// same client reaches more than one pod. (Before the fix it re-hashed (client, service) and came
// back to the same pod forever.)
import test from 'ava';
import { e2eSuite, httpMany, curlOk, serviceYaml, sliceYaml, sleep, NODE_V4 } from './lib/topology.js';

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
  // 3 pods: 8 epochs all landing on one pod by chance is (1/3)^7 < 0.05%. Once a second pod has
  // been picked (and stickiness checked over at least 3 epochs) more epochs cannot fail the test:
  // it goes on only while every pick was the same pod, up to the 8 (a fixed 8 took ~20 s a run)
  for (let epoch = 0; epoch < 8 && !(epoch >= 3 && new Set(picks).size > 1); epoch++) {
    await sleep(2500); // > 1 s timeout: the entry has expired
    const res = await httpMany(topo, topo.ns.client, 'http://10.96.8.10/', 4, { timeoutMs: 3000 });
    const failed = res.filter((r) => r.error);
    t.is(failed.length, 0, JSON.stringify(failed));
    const pods = [...new Set(res.map((r) => r.pod))];
    t.is(pods.length, 1, `epoch ${epoch}: new connections within the timeout stick to one pod (${pods})`);
    picks.push(pods[0]);
  }
  t.true(new Set(picks).size > 1, `over ${picks.length} expiries the client reached more than one pod: ${picks}`);
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

/** One node process in `ns` that GETs each url in turn (a fresh connection each, milliseconds
 * apart, so a short affinity timeout cannot lapse between them); the pods that answered, or
 * `error:<code>`. */
async function podsInTurn(ns, urls, timeoutMs = 3000) {
  const script = `
    const http = require('http');
    const urls = ${JSON.stringify(urls)};
    (async () => {
      const out = [];
      for (const url of urls) {
        const u = new URL(url);
        out.push(await new Promise((resolve) => {
          const req = http.get({ host: u.hostname, port: u.port || 80, path: u.pathname, agent: false, timeout: ${timeoutMs} }, (res) => {
            let body = ''; res.on('data', (d) => body += d); res.on('end', () => resolve(body.trim()));
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', (e) => resolve('error:' + (e.code || e.message)));
        }));
      }
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 + urls.length * (timeoutMs + 500) });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { throw new Error(`podsInTurn failed (${r.code}): ${r.stderr}`); }
}

// kube-proxy keeps one affinity set per endpoint, which every chain of the port consults for its
// own endpoints (writeServiceToEndpointRules): with externalTrafficPolicy Local a client pinned
// through the ClusterIP to a pod of this node stays on it through the NodePort; pinned to a pod
// of another node, the NodePort picks among this node's and the client is pinned there (the
// ClusterIP follows). docs/core.md "sessionAffinity per service port".
serial('sessionAffinity ClientIP with externalTrafficPolicy Local: through the ClusterIP then the NodePort, the same local pod', async (t) => {
  const remote = topo.pods[2];
  await apply([
    serviceYaml({
      name: 'aff-etp', type: 'NodePort', clusterIP: '10.96.8.30', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30180, protocol: 'TCP' }],
      extra: { externalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 2 } } },
    }),
    sliceYaml({
      name: 'aff-etp-1', service: 'aff-etp', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: p === remote ? 'node-b' : 'node-a' })),
    }),
  ]);
  const cluster = 'http://10.96.8.30/', nodePort = `http://${NODE_V4}:30180/`;
  t.is((await curlOk(topo, topo.ns.client, cluster)).code, 0);
  t.is((await curlOk(topo, topo.ns.client, nodePort)).code, 0);
  // each epoch after the pin expired: a fresh pick through the ClusterIP, then the NodePort, then
  // the ClusterIP again. Separate pins (the NodePort's own) would agree by chance in at most 1 of
  // 2 local pods an epoch: 5 epochs all agreeing is < 1 in 30
  const remoteSeen = [];
  for (let epoch = 0; epoch < 5; epoch++) {
    await sleep(3500); // > 2 s timeout: the pin has expired
    const [viaCluster, viaNodePort, again] = await podsInTurn(topo.ns.client, [cluster, nodePort, cluster]);
    t.regex(viaCluster, /^pod-/, `epoch ${epoch}`);
    t.not(viaNodePort, remote.name, `epoch ${epoch}: the NodePort never follows a pin to another node's pod`);
    t.regex(viaNodePort, /^pod-/, `epoch ${epoch}`);
    if (viaCluster !== remote.name) t.is(viaNodePort, viaCluster, `epoch ${epoch}: pinned through the ClusterIP to ${viaCluster}, the same pod through the NodePort`);
    else remoteSeen.push(epoch);
    t.is(again, viaNodePort, `epoch ${epoch}: the ClusterIP follows the latest pin`);
  }
  t.log(`epochs pinned to the remote pod first: ${remoteSeen.length ? remoteSeen : 'none'}`);
});
