// A config-file port whose interface goes away and comes back (src/daemon/port-manager.ts
// checkLinks): while the interface is gone the port is closed and shown `state: absent` by the
// ports API, and nothing is forwarded through it; once an interface of that name exists again
// (a veth deleted and re-created, a pod namespace re-created) the port is reopened on it — same
// index, same worker, same config — and forwarding resumes without a restart. Each is logged
// once. AF_PACKET (a pod's veth, the client uplink), AF_XDP (a pod's veth) and TAP (the device
// deleted in its namespace: re-created by the daemon; the namespace deleted and re-created).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { e2eSuite, api, waitFor, serviceYaml, sliceYaml, readyEndpoints, curl, curlOk, addressPod, POD_SERVER } from './lib/topology.js';

// pod-a is a static neighbour (its MAC in the config): it stays programmed while its port is
// absent — what is routed to it is dropped and counted — and serves again once the port is back
// (its veth re-created with the same MAC); pod-x is learned, and learned afresh.
let podAMac;
const suite = e2eSuite(test, {
  kind: 'pb',
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }, { name: 'pod-x', attach: 'afxdp' }],
  configure(config) {
    const pod = suite.topo.pods[0];
    podAMac = suite.topo.lab.exec(pod.ns, 'cat', ['/sys/class/net/eth0/address']).stdout.trim();
    config.ports.find((p) => p.name === 'pod-a').pods = [{ ip: pod.ip, mac: podAMac }];
  },
});
const serial = suite.serial;

const portView = async (name) => (await api(suite.topo, 'GET', `/api/v1/ports/${name}`)).json;
const count = (re) => (suite.topo.daemonLog.match(re) ?? []).length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const logTail = () => suite.topo.daemonLog.slice(-3000);

/** A ClusterIP with pod `pod` as its only endpoint. */
async function serviceOn(pod, vip) {
  const name = `svc-${pod.name}`;
  await suite.apply([
    serviceYaml({ name, clusterIP: vip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    sliceYaml({ name: `${name}-1`, service: name, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([pod]) }),
  ]);
}

/** The service on `pod` at `vip` answers the client before its port's interface goes; its URL. */
async function serviceAnswers(t, pod, vip) {
  await serviceOn(pod, vip);
  const url = `http://${vip}/`;
  t.is((await curlOk(suite.topo, suite.topo.ns.client, url, 40)).code, 0, logTail());
  return url;
}

/** Port `name` goes absent (the API says so, the log says it once), and `url` is not answered. */
async function seesAbsent(t, name, url) {
  const v = await waitFor(`port ${name} reported absent`, async () => { const p = await portView(name); return p?.state === 'absent' ? p : undefined; }, 20000);
  t.is(v.origin, 'config');
  t.is(v.stats, undefined, 'no live stats for a closed port');
  await waitFor('the absence logged', () => new RegExp(`"port":"${name}"[^\\n]*a port's interface is gone`).test(suite.topo.daemonLog), 10000);
  const r = await curl(suite.topo, suite.topo.ns.client, url, { timeout: 2 });
  t.not(r.code, 0, `answered while the port is absent: ${r.body}`);
}

/** Port `name` comes back (up, with live stats, logged once) and `url` is answered by `pod`. */
async function seesBack(t, name, url, pod) {
  const v = await waitFor(`port ${name} reopened`, async () => { const p = await portView(name); return p?.state === 'up' ? p : undefined; }, 20000);
  t.truthy(v.stats, 'live stats again');
  await waitFor('the reopening logged', () => new RegExp(`"port":"${name}"[^\\n]*reopened`).test(suite.topo.daemonLog), 10000);
  const r = await curlOk(suite.topo, suite.topo.ns.client, url, 40);
  t.is(r.code, 0, `${r.stderr}\n${logTail()}`);
  t.regex(r.body, new RegExp(pod.name));
  await sleep(4500); // two more link checks: nothing logged again
  t.is(count(new RegExp(`"port":"${name}"[^\\n]*a port's interface is gone`, 'g')), 1, 'gone logged once');
  t.is(count(new RegExp(`"port":"${name}"[^\\n]*reopened`, 'g')), 1, 'reopened logged once');
}

for (const [podName, vip, index] of [['pod-a', '10.96.0.61', 0], ['pod-x', '10.96.0.62', 2]]) {
  serial(`${podName === 'pod-a' ? 'AF_PACKET' : 'AF_XDP'} config port: its veth deleted, forwarding stops and the API shows it absent; re-created, it is reopened and forwards again`, async (t) => {
    await suite.ready;
    const topo = suite.topo;
    const pod = topo.pods.find((p) => p.name === podName);
    const url = await serviceAnswers(t, pod, vip);
    const before = await portView(podName);
    t.is(before.state, 'up');
    topo.lab.exec(pod.ns, 'ip', ['link', 'del', 'eth0']);
    await seesAbsent(t, podName, url);
    if (podName === 'pod-a') {
      const c = (await api(topo, 'GET', '/api/v1/counters')).json;
      t.true((c.global.slowpath_port_absent ?? 0) > 0, 'what the static neighbour routes to the absent port is counted');
    }
    topo.lab.veth(pod.ns, 'eth0', topo.ns.dp, `v${index}`, podName === 'pod-a' ? { macA: podAMac } : {});
    addressPod(suite.topo.lab, pod);
    await seesBack(t, podName, url, pod);
    const after = await portView(podName);
    t.like(after, { index: before.index, worker: before.worker, type: before.type, ifname: before.ifname });
    if (podName === 'pod-a') {
      // the static neighbour is programmed with the MAC the re-created interface has
      t.not(after.mac, before.mac, 'a new veth, another MAC');
      const node = (await api(topo, 'GET', '/api/v1/nodeconfig')).json;
      t.like(node.spec.neighbours.find((n) => n.address === pod.ip), { port: before.index, mac: podAMac, localMac: after.mac }, JSON.stringify(node.spec.neighbours));
    }
  });
}

serial('AF_PACKET uplink: the client\'s veth deleted and re-created, the uplink is reopened and the client reaches the service again', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = topo.pods.find((p) => p.name === 'pod-a');
  const url = await serviceAnswers(t, pod, '10.96.0.63');
  topo.lab.exec(topo.ns.client, 'ip', ['link', 'del', 'eth0']);
  await waitFor('the uplink reported absent', async () => (await portView('client'))?.state === 'absent', 20000);
  topo.lab.veth(topo.ns.client, 'eth0', topo.ns.dp, 'c0');
  topo.lab.addr(topo.ns.client, 'eth0', '10.0.0.2/24');
  topo.lab.route(topo.ns.client, 'default', '10.0.0.1');
  await seesBack(t, 'client', url, pod);
});

serial('TAP config port: its device deleted in the pod\'s namespace is created again by the daemon (logged once); re-addressed, the pod is reached', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = topo.pods.find((p) => p.name === 'pod-b');
  const url = await serviceAnswers(t, pod, '10.96.0.64');
  const ifindex = (out) => parseInt(out, 10);
  const had = ifindex(topo.lab.exec(pod.ns, 'ip', ['-o', 'link', 'show', 'dev', pod.ifname]).stdout);
  topo.lab.exec(pod.ns, 'ip', ['link', 'del', pod.ifname]);
  const now = await waitFor('the TAP created again', () => {
    const r = topo.lab.exec(pod.ns, 'ip', ['-o', 'link', 'show', 'dev', pod.ifname]);
    return r.code === 0 && ifindex(r.stdout) !== had ? ifindex(r.stdout) : undefined;
  }, 20000);
  t.not(now, had);
  addressPod(suite.topo.lab, pod);
  await seesBack(t, 'pod-b', url, pod);
});

serial('TAP config port: its pod namespace deleted, the port is absent; the namespace re-created, the TAP is created in it and the pod is reached', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = topo.pods.find((p) => p.name === 'pod-b');
  const url = await serviceAnswers(t, pod, '10.96.0.65');
  const goneBefore = count(/"port":"pod-b"[^\n]*a port's interface is gone/g), backBefore = count(/"port":"pod-b"[^\n]*reopened/g);
  // the pod's processes go with its namespace (else they would keep the namespace alive)
  for (const c of topo.podProcs) if (c.spawnargs.includes(POD_SERVER) && c.spawnargs.includes('pod-b')) c.kill('SIGKILL');
  await sleep(200);
  // (from this namespace: a namespace added or deleted under `ip netns exec` is seen in its mounts only)
  execFileSync('ip', ['netns', 'del', pod.ns]);
  const v = await waitFor('pod-b reported absent', async () => { const p = await portView('pod-b'); return p?.state === 'absent' ? p : undefined; }, 20000);
  t.is(v.stats, undefined);
  t.is((await curl(topo, topo.ns.client, url, { timeout: 2 })).code !== 0, true, 'not answered while absent');
  execFileSync('ip', ['netns', 'add', pod.ns]);
  topo.lab.exec(pod.ns, 'ip', ['link', 'set', 'lo', 'up']);
  topo.lab.quietIpv6(pod.ns);
  await topo.lab.waitLink(pod.ns, pod.ifname, 20000).catch((e) => { throw new Error(`${e.message}\n${logTail()}`); });
  addressPod(suite.topo.lab, pod);
  const server = topo.lab.spawn(pod.ns, process.execPath, [POD_SERVER, pod.name, '--http', '8080']);
  topo.podProcs.push(server);
  await waitFor('pod-b up', async () => (await portView('pod-b'))?.state === 'up', 20000);
  const r = await curlOk(topo, topo.ns.client, url, 40);
  t.is(r.code, 0, `${r.stderr}\n${logTail()}`);
  t.regex(r.body, /pod-b/);
  t.is(count(/"port":"pod-b"[^\n]*a port's interface is gone/g), goneBefore + 1, 'gone logged once');
  t.is(count(/"port":"pod-b"[^\n]*reopened/g), backBefore + 1, 'reopened logged once');
});
