// A config-file port shared by every worker (`workers: 2`, AF_XDP with `fanout: true`, veths with
// two queues) whose veth is deleted and re-created (src/daemon/port-manager.ts checkLinks): it is
// closed in both workers while absent and reopened in both, in worker order — worker 0 attaches
// the XDP program to the new interface on queue 0, worker 1 joins it on queue 1 — and a service on
// the pod behind it answers again without a restart.
import test from 'ava';
import { e2eSuite, api, waitFor, serviceYaml, sliceYaml, readyEndpoints, curlOk, addressPod } from './lib/topology.js';

const suite = e2eSuite(test, {
  kind: 'pbf',
  queues: 2,
  pods: [{ name: 'pod-a', attach: 'afxdp' }],
  configure(config) {
    config.workers = 2;
    for (const p of config.ports) { p.type = 'afxdp'; p.fanout = true; }
  },
});

const portView = async (name) => (await api(suite.topo, 'GET', `/api/v1/ports/${name}`)).json;
const opens = () => suite.topo.daemonLog.match(/"worker":\d,"port":"pod-a","mode":"\w+","queues":\[\d\],"msg":"AF_XDP port open"/g) ?? [];

suite.serial('a fanout AF_XDP port whose veth is re-created is reopened in both workers, on their queues, and forwards again', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = topo.pods[0];
  await suite.apply([
    serviceYaml({ name: 'back', clusterIP: '10.96.0.71', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    sliceYaml({ name: 'back-1', service: 'back', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([pod]) }),
  ]);
  const url = 'http://10.96.0.71/';
  t.is((await curlOk(topo, topo.ns.client, url, 40)).code, 0, topo.daemonLog.slice(-2000));
  // (a line reaches the pipe after the API answers with what it reports: each awaited)
  await waitFor('the start\'s two opens logged', () => opens().length >= 2, 10000).catch(() => undefined);
  t.is(opens().length, 2, 'opened in both workers at start');
  topo.lab.exec(pod.ns, 'ip', ['link', 'del', 'eth0']);
  await waitFor('pod-a absent', async () => (await portView('pod-a'))?.state === 'absent', 20000);
  topo.lab.veth(pod.ns, 'eth0', topo.ns.dp, 'v0', { queues: 2 });
  addressPod(topo.lab, pod);
  await waitFor('pod-a up', async () => (await portView('pod-a'))?.state === 'up', 20000);
  await waitFor('both reopens logged', () => opens().length >= 4, 10000).catch(() => undefined);
  const again = opens().slice(2);
  t.deepEqual(again.map((l) => /"worker":(\d)/.exec(l)[1] + /"queues":\[(\d)\]/.exec(l)[1]), ['00', '11'], topo.daemonLog.slice(-3000));
  const r = await curlOk(topo, topo.ns.client, url, 40);
  t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.regex(r.body, /pod-a/);
});
