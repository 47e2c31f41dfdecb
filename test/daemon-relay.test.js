// The python3 relay port backend (`wdp start --ports relay`), the fallback when the native addon
// is not built: same daemon, same ports (a TAP moved into the pod namespace and an AF_PACKET veth),
// real curl and UDP through a ClusterIP.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import {
  canUseNetns, buildTopology, startPods, startDaemon, destroyTopology, api, curl, udpAsk, serviceYaml, sliceYaml, sleep, logged,
} from './lib/topology.js';

const python = spawnSync('python3', ['-c', 'import socket; socket.AF_PACKET'], { stdio: 'ignore' }).status === 0;
const ok = canUseNetns() && python;

(ok ? test : test.skip)('relay ports forward TCP and UDP through a ClusterIP', async (t) => {
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }] });
  t.teardown(() => destroyTopology(topo));
  await startDaemon(topo, ['--ports', 'relay']);
  // (the start's lines can reach the pipe after its API answers)
  await logged(topo, /"kind":"relay-tap"/);
  await logged(topo, /"kind":"relay-afpacket"/);
  await startPods(topo);
  const r = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'web', clusterIP: '10.96.5.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }], endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true } })) }),
  ]);
  t.is(r.status, 200, r.text);
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const c = await curl(topo, topo.ns.client, 'http://10.96.5.10/', { timeout: 3 });
    if (c.code === 0) seen.add(c.body.trim()); else await sleep(200);
  }
  t.deepEqual([...seen].sort(), ['pod-a', 'pod-b'], topo.daemonLog.slice(-2000));
  const u = await udpAsk(topo, topo.ns.client, '10.96.5.10', 53, 'relay');
  t.is(u.from, '10.96.5.10');
  t.regex(u.reply ?? '', /^pod-[ab]:relay$/);
});
