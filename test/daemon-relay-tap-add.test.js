// A relay TAP port added at runtime (`wdp start --ports relay`, POST /api/v1/ports) is set up with
// `ip` (moved into its pod's namespace, brought up, its MTU read) off the forwarding worker's
// thread: while that set-up is held, the ports the worker already serves keep forwarding. The `ip`
// the daemon runs here is a stub on PATH that holds `ip -n NS link set tapz up` until the test
// lets it go (bounded: 60 s), and passes everything else to the real one.
import test from 'ava';
import { existsSync } from 'node:fs';
import { holdingIpStub } from './lib/ip-stub.js';
import { buildTopology, startDaemon, startPods, destroyTopology, api, waitFor, serviceYaml, sliceYaml, readyEndpoints, curl, curlOk, rootGate } from './lib/topology.js';

const gate = rootGate(test, { tools: ['python3', 'curl'] });

gate.serial('relay ports: traffic keeps flowing while another relay TAP port\'s ip set-up is held', async (t) => {
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  const stub = holdingIpStub('link set tapz up');
  let adding;
  try {
    const path = process.env.PATH;
    process.env.PATH = `${stub.dir}:${path}`;   // the daemon (and only it) runs the stub
    try { await startDaemon(topo, ['--ports', 'relay']); } finally { process.env.PATH = path; }
    await startPods(topo);
    const applied = await api(topo, 'POST', '/api/v1/apply', [
      serviceYaml({ name: 'web', clusterIP: '10.96.6.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints(topo.pods) }),
    ]);
    t.is(applied.status, 200, applied.text);
    t.is((await curlOk(topo, topo.ns.client, 'http://10.96.6.10/', 40)).code, 0, topo.daemonLog.slice(-2000));

    const ns = topo.lab.namespace('z');
    adding = api(topo, 'POST', '/api/v1/ports', { name: 'pod-z', type: 'tap', ifname: 'tapz', role: 'pod', gateways: ['10.244.0.1'], netns: ns });
    adding.catch(() => undefined);
    await waitFor('the TAP\'s bring-up held', () => existsSync(stub.reached), 20000);
    // held: pod-a is still reached through the service, new connections and all
    for (let i = 0; i < 3; i++) {
      const c = await curl(topo, topo.ns.client, 'http://10.96.6.10/', { timeout: 3 });
      t.is(c.code, 0, `request ${i} while the set-up is held: ${c.stderr ?? ''}\n${topo.daemonLog.slice(-2000)}`);
      t.regex(c.body ?? '', /pod-a/);
    }
    stub.release();
    const added = await adding;
    t.is(added.status, 201, added.text);
    t.is(added.json?.kind, 'relay-tap', added.text);
    t.regex(topo.lab.exec(ns, 'ip', ['-o', 'link', 'show', 'tapz']).stdout, /[<,]UP[,>]/);
  } finally {
    stub.release();
    await adding?.catch(() => undefined);
    await destroyTopology(topo);
    stub.remove();
  }
});
