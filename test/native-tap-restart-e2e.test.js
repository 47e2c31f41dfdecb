// Pods survive a daemon restart: TAP pod ports are persistent (TUNSETPERSIST) and re-attached on
// start, so SIGTERM + start of `wdp start` leaves the pod's interface (same ifindex), addresses and
// routes as they were, and traffic through a ClusterIP flows again afterwards.
import test from 'ava';
import { e2eSuite, curlOk, serviceYaml, sliceYaml, startDaemon } from './lib/topology.js';
import { run } from '../dist/src/netns.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-t', attach: 'tap' }, { name: 'pod-p', attach: 'afpacket' }], kind: 'rs' });
const { serial, apply } = suite;
const VIP = '10.96.8.1';

/** What the pod sees of its interface: index, addresses, routes (kernel-generated lines kept). */
function podView(topo, pod) {
  const link = run('ip', ['-n', pod.ns, '-o', 'link', 'show', pod.ifname]);
  const addrs = run('ip', ['-n', pod.ns, '-o', 'addr', 'show', 'dev', pod.ifname]).stdout
    .split('\n').filter(Boolean).map((l) => l.replace(/\s+valid_lft.*$/, '').trim());
  const routes = ['-4', '-6'].flatMap((f) => run('ip', [f, '-n', pod.ns, 'route', 'show', 'dev', pod.ifname]).stdout.split('\n').filter(Boolean))
    .map((l) => l.replace(/\s*linkdown/, '').trim());
  return { exists: link.code === 0, ifindex: link.stdout.split(':')[0], addrs, routes };
}

async function stopDaemon(topo) {
  const d = topo.daemon;
  d.kill('SIGTERM');
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon did not stop within 20 s')), 20000);
    d.once('exit', () => { clearTimeout(timer); resolve(); });
  });
}

serial('SIGTERM and restart: the TAP pod keeps its interface, addresses and routes, and traffic flows again', async (t) => {
  const topo = suite.topo;
  const tapPod = topo.pods.find((p) => p.attach === 'tap');
  await apply([
    serviceYaml({ name: 'web', clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [tapPod.ip], conditions: { ready: true }, nodeName: 'node-a' }] }),
  ]);
  const before = podView(topo, tapPod);
  t.true(before.exists);
  t.true(before.addrs.some((a) => a.includes(`${tapPod.ip}/32`)), JSON.stringify(before.addrs));
  t.true(before.routes.some((r) => r.startsWith('default via 10.244.0.1')), JSON.stringify(before.routes));
  const first = await curlOk(topo, topo.ns.client, `http://${VIP}/`);
  t.is(first.code, 0, first.stderr);
  t.is(first.body, 'pod-t\n');

  await stopDaemon(topo);
  const down = podView(topo, tapPod);
  t.deepEqual(down, before, 'the daemon is gone, the pod\'s interface, addresses and routes are not');

  await startDaemon(topo);
  const after = podView(topo, tapPod);
  t.deepEqual(after, before, 'the restarted daemon re-attached to the same device');
  const again = await curlOk(topo, topo.ns.client, `http://${VIP}/`);
  t.is(again.code, 0, `${again.stderr}\n${topo.daemonLog.slice(-2000)}`);
  t.is(again.body, 'pod-t\n');
});
