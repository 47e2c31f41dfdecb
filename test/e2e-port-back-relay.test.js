// Config-file ports whose interface goes away and comes back (src/daemon/port-manager.ts
// checkLinks), with the python relay ports (`--ports relay`, no native addon): an AF_PACKET pod
// port's veth deleted (absent) and re-created, a TAP deleted in its pod's namespace (created again
// by the daemon); each is reopened with a new relay and its pod is reached again. A TAP the relay
// could not move into its namespace is not left behind. The native ports: e2e-port-back.
import test from 'ava';
import { buildTopology, startDaemon, startPods, destroyTopology, api, waitFor, serviceYaml, sliceYaml, readyEndpoints, curlOk, addressPod, rootGate } from './lib/topology.js';

const gate = rootGate(test);

gate.serial('relay ports: an AF_PACKET port\'s veth and a TAP deleted and re-created are reopened and reached again', async (t) => {
  const topo = buildTopology({ kind: 'pbr', pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }] });
  try {
    await startDaemon(topo, ['--ports', 'relay']);
    await startPods(topo);
    const view = async (name) => (await api(topo, 'GET', `/api/v1/ports/${name}`)).json;
    const reopenedLogged = (name) => topo.daemonLog.split('\n').some((l) => l.includes(`"port":"${name}"`) && l.includes('port reopened on it'));
    for (const [pod, vip] of [[topo.pods[0], '10.96.0.81'], [topo.pods[1], '10.96.0.82']]) {
      const url = `http://${vip}/`;
      const applied = await api(topo, 'POST', '/api/v1/apply', [
        serviceYaml({ name: `s-${pod.name}`, clusterIP: vip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
        sliceYaml({ name: `s-${pod.name}-1`, service: `s-${pod.name}`, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([pod]) }),
      ]);
      t.is(applied.status, 200, applied.text);
      t.is((await curlOk(topo, topo.ns.client, url, 40)).code, 0, topo.daemonLog.slice(-2000));
      t.regex((await view(pod.name)).kind, /^relay-/);
      if (pod.attach === 'afpacket') {
        topo.lab.exec(pod.ns, 'ip', ['link', 'del', 'eth0']);
        await waitFor(`${pod.name} absent`, async () => (await view(pod.name)).state === 'absent', 20000);
        topo.lab.veth(pod.ns, 'eth0', topo.ns.dp, 'v0');
      } else {
        topo.lab.exec(pod.ns, 'ip', ['link', 'del', pod.ifname]);
      }
      await waitFor(`${pod.name} reopened`, async () => reopenedLogged(pod.name) && (await view(pod.name)).state === 'up', 20000);
      await topo.lab.waitLink(pod.ns, pod.ifname, 10000);
      addressPod(topo.lab, pod);
      const r = await curlOk(topo, topo.ns.client, url, 40);
      t.is(r.code, 0, `${r.stderr}\n${topo.daemonLog.slice(-3000)}`);
      t.regex(r.body, new RegExp(pod.name));
    }
    // a TAP the relay created but could not move into its namespace is not left behind (its
    // helper would keep the name: the next try, into a namespace that exists, would find it busy)
    const tap = (netns) => ({ name: 'pod-z', type: 'tap', ifname: 'tapz', role: 'pod', gateways: ['10.244.0.1'], netns });
    const bad = await api(topo, 'POST', '/api/v1/ports', tap(`${topo.lab.tag}-none`));
    t.is(bad.status, 422, bad.text); // (the namespace is looked for before the TAP is made)
    // (were the helper started, it is stopped: its TAP goes when it has exited)
    await waitFor('no TAP left in the daemon\'s namespace', () => topo.lab.exec(topo.ns.dp, 'ip', ['link', 'show', 'tapz']).code !== 0, 20000);
    const ns = topo.lab.namespace('z');
    const good = await api(topo, 'POST', '/api/v1/ports', tap(ns));
    t.is(good.status, 201, good.text);
  } finally { await destroyTopology(topo); }
});
