// Ports whose interface goes away while the daemon runs (src/daemon/port-manager.ts checkLinks): a pod
// deleted without a CNI DEL reaching the daemon (it came while the daemon restarted) leaves its
// runtime port behind; once its veth is gone the port is removed as a DEL would — its pod address
// can be attached again on a new pod's veth, and traffic reaches the new pod. A config-file port
// whose interface goes is logged, once, and kept (absent; e2e-port-back: reopened when it is back).
import test from 'ava';
import { e2eSuite, api, waitFor, serviceYaml, sliceYaml, readyEndpoints, curlOk } from './lib/topology.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }] });
const serial = suite.serial;

const portNames = async () => (await api(suite.topo, 'GET', '/api/v1/ports')).json.items.map((p) => p.name);

/** A pod behind a veth whose host end is in the dataplane's namespace (what ptp leaves), with `ip`. */
function vethPod(i, ip) {
  const topo = suite.topo;
  const ns = topo.lab.namespace(`g${i}`);
  const hostIf = `gv${i}`;
  topo.lab.veth(ns, 'eth0', topo.ns.dp, hostIf);
  topo.lab.up(ns, 'eth0');
  topo.lab.addr(ns, 'eth0', `${ip}/32`);
  topo.lab.route(ns, '10.244.0.1', undefined, 'eth0');
  topo.lab.route(ns, 'default', '10.244.0.1', 'eth0');
  return { ns, hostIf };
}

serial('a runtime port whose veth is gone is removed (as a CNI DEL would); its pod address then serves from a new pod\'s port', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const ip = '10.244.3.10';
  const first = vethPod(1, ip);
  const add = (name, ifname) => api(topo, 'POST', '/api/v1/ports', { name, type: 'afpacket', ifname, role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip }] });
  t.is((await add('gone-1', first.hostIf)).status, 201);
  t.true((await portNames()).includes('gone-1'));
  // the pod is deleted without a DEL: its namespace (and so its veth) goes
  topo.lab.exec(first.ns, 'ip', ['link', 'del', 'eth0']);
  await waitFor('the runtime port removed', async () => !(await portNames()).includes('gone-1'), 15000);
  // (the log line may reach the test's pipe after the API already answers without the port)
  await waitFor('the removal logged', () => /runtime port removed: its interface is gone/.test(topo.daemonLog), 10000);
  // a new pod gets the same address (host-local hands it out again) on a new veth
  const second = vethPod(2, ip);
  t.is((await add('gone-2', second.hostIf)).status, 201);
  const server = topo.lab.spawn(second.ns, process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('second\\n')).listen(8080, '${ip}')`]);
  try {
    await suite.apply([
      serviceYaml({ name: 'gone', clusterIP: '10.96.0.77', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      sliceYaml({ name: 'gone-1', service: 'gone', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([{ ip }]) }),
    ]);
    const r = await curlOk(topo, topo.ns.client, 'http://10.96.0.77/', 40);
    t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-2000)}`);
    t.is(r.body, 'second\n');
  } finally { server.kill(); }
});

serial('a config-file port whose interface is gone is logged once and kept', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const podA = topo.pods.find((p) => p.name === 'pod-a');
  topo.lab.exec(podA.ns, 'ip', ['link', 'del', podA.ifname]);
  await waitFor('the config port\'s interface reported gone', () => /a port's interface is gone/.test(topo.daemonLog), 15000);
  await new Promise((r) => setTimeout(r, 4500)); // two more checks
  t.is(topo.daemonLog.match(/a port's interface is gone/g).length, 1, 'once');
  const view = (await api(topo, 'GET', '/api/v1/ports/pod-a')).json;
  t.is(view?.state, 'absent', 'kept, shown absent (test/e2e-port-back: reopened when its interface is back)');
});
