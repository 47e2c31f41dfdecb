// A config-file pod port whose veth is missing when the daemon starts (a daemon stopped while a
// pod's veth was gone, restarted before it is back): the daemon comes up (API, health) with the
// port `absent` — warned once, what the port's static neighbour is sent is dropped and counted
// (slowpath_port_absent) — and once the veth is created the link check opens the port and traffic
// reaches the pod without a restart (src/daemon/port-manager.ts missingAtStart, checkLinks). The
// topology is built in network namespaces this file creates (test/lib/topology.js), removed after
// even on failure.
import test from 'ava';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startDaemon, destroyTopology, api, waitFor, logged, serviceYaml, sliceYaml, readyEndpoints, curl, curlOk, addressPod, POD_SERVER } from './lib/topology.js';
import { writeFileSync } from 'node:fs';

const gate = rootGate(test);
const POD_MAC = '02:00:00:5a:00:0b';

gate.serial('a pod port whose veth is missing at start: the daemon comes up with it absent; the veth created, traffic reaches the pod without a restart', async (t) => {
  const topo = buildTopology({ kind: 'as', pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  try {
    const pod = topo.pods[0];
    // pod-a is a static neighbour (its MAC in the config): routed to while its port is absent
    topo.config.ports.find((p) => p.name === 'pod-a').pods = [{ ip: pod.ip, mac: POD_MAC }];
    writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
    // the pod's veth is gone before the daemon starts (both ends go with it)
    topo.lab.exec(topo.ns.dp, 'ip', ['link', 'del', 'v0']);
    await startDaemon(topo);
    t.is((await api(topo, 'GET', '/healthz')).status, 200);
    const absent = (await api(topo, 'GET', '/api/v1/ports/pod-a')).json;
    t.like(absent, { state: 'absent', origin: 'config', ifname: 'v0' }, JSON.stringify(absent));
    t.truthy(absent.absentSince);
    t.is((await api(topo, 'GET', '/api/v1/ports/client')).json?.state, 'up');
    await logged(topo, /"port":"pod-a"[^\n]*"ifname":"v0"[^\n]*does not exist at start: port absent/);

    const vip = '10.96.0.71', url = `http://${vip}/`;
    const apply = await api(topo, 'POST', '/api/v1/apply', [
      serviceYaml({ name: 'late', clusterIP: vip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
      sliceYaml({ name: 'late-1', service: 'late', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([pod]) }),
    ]);
    t.is(apply.status, 200, apply.text);
    const r0 = await curl(topo, topo.ns.client, url, { timeout: 2 });
    t.not(r0.code, 0, `answered while the port is absent: ${r0.body}`);
    const c = (await api(topo, 'GET', '/api/v1/counters')).json;
    t.true((c.global.slowpath_port_absent ?? 0) > 0, 'what the static neighbour is sent on the absent port is counted');

    // the veth appears (with the pod's MAC): opened by the link check, no restart
    topo.lab.veth(pod.ns, 'eth0', topo.ns.dp, 'v0', { macA: POD_MAC });
    addressPod(topo.lab, pod);
    const server = topo.lab.spawn(pod.ns, process.execPath, [POD_SERVER, pod.name, '--http', '8080']);
    topo.podProcs.push(server);
    const up = await waitFor('pod-a opened', async () => { const v = (await api(topo, 'GET', '/api/v1/ports/pod-a')).json; return v?.state === 'up' ? v : undefined; }, 20000);
    t.is(up.absentSince, undefined);
    t.truthy(up.stats, 'live stats');
    await logged(topo, /"port":"pod-a"[^\n]*port reopened on it/);
    const r = await curlOk(topo, topo.ns.client, url, 40);
    t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-3000)}`);
    t.regex(r.body, /pod-a/);
    t.is((topo.daemonLog.match(/does not exist at start/g) ?? []).length, 1, 'warned once');
    t.is(topo.daemon.exitCode, null, 'the same daemon, never restarted');
  } finally {
    await destroyTopology(topo);
  }
});

gate.serial('the uplink\'s interface missing at start fails the start, naming the port and interface', async (t) => {
  const topo = buildTopology({ kind: 'au', pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  try {
    topo.lab.exec(topo.ns.dp, 'ip', ['link', 'del', 'r0']);
    const e = await t.throwsAsync(startDaemon(topo));
    t.regex(e.message, /daemon exited with 1/);
    t.regex(topo.daemonLog, /port "remote" \(role uplink\): interface "r0" does not exist/);
  } finally {
    await destroyTopology(topo);
  }
});

gate.serial('every port missing at start: the daemon still comes up (health, API) with every port absent, and says so', async (t) => {
  const topo = buildTopology({ kind: 'aa', pods: [] });
  try {
    const goneNs = `${topo.ns.dp}-gone`;
    topo.config.ports = [
      { name: 'pod-v', type: 'afpacket', ifname: 'v9', role: 'pod', gateways: ['10.244.0.1'] },
      { name: 'pod-t', type: 'tap', ifname: 'tap9', role: 'pod', gateways: ['10.244.0.1'], netns: goneNs },
    ];
    writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
    await startDaemon(topo);
    t.is((await api(topo, 'GET', '/healthz')).status, 200);
    const ports = (await api(topo, 'GET', '/api/v1/ports')).json.items;
    t.deepEqual(ports.map((p) => [p.name, p.state]), [['pod-v', 'absent'], ['pod-t', 'absent']]);
    await logged(topo, /every port is absent/);
    await logged(topo, /"port":"pod-t"[^\n]*"netns":"[^"]+-gone"[^\n]*network namespace does not exist at start/);
  } finally {
    await destroyTopology(topo);
  }
});
