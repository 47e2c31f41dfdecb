// running.md's node recipe ("On a Kubernetes node: the host port") walked as written, in network
// namespaces: its config taken from the docs (the NIC eth0, the host port wdp-host with the node
// address, its pod, service and default routes), the node's router on the NIC's link, and pods
// attached by the wdp-cni plugin from the docs' network config list, made as ptp with host-local
// IPAM makes them. What the node's own processes do: the kubelet probing a pod by its pod IP, a
// hostNetwork client reaching a ClusterIP and its own NodePort, a pod reaching the node address
// (the kubelet's port) and the outside through the node's router.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, destroyTopology, startDaemon, curl, api, waitFor, ROOT, serviceYaml, sliceYaml } from './lib/topology.js';
import { startServer, ptpAdd, runningBlock } from './lib/cni-pods.js';
import { spawnNode } from './lib/topology.js';
import { ECHO_CLIENT, ECHO_PORT, ECHO_SERVER, report } from './lib/echo-traffic.js';

const gate = rootGate(test, { tools: ['curl'] });
const serial = gate.serial;

let topo, recipe, cni;
const pods = [];

test.before(async () => {
  if (!gate.ok) return;
  topo = buildTopology({ pods: [], kind: 'wh' });
  try {
    const { lab } = topo;
    recipe = parseYaml(runningBlock('## On a Kubernetes node: the host port', 'yaml'));
    const uplink = recipe.ports.find((p) => p.role === 'uplink');
    const host = recipe.ports.find((p) => p.role === 'host');
    const [nodeCidr] = host.hostAddresses;
    const router = host.hostRoutes.find((r) => r.prefix === 'default').via;
    // the NIC: the remote namespace's veth renamed, its far side the node's router (and a client)
    lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'r0', 'name', uplink.ifname]);
    lab.sysctl(topo.ns.dp, `net.ipv6.conf.${uplink.ifname}.disable_ipv6`, '0'); // a NIC's IPv6 is on
    lab.addr(topo.ns.remote, 'eth0', `${router}/${nodeCidr.split('/')[1]}`);
    lab.addr(topo.ns.remote, 'lo', '203.0.113.7/32'); // somewhere outside, behind the router
    // the recipe's default route names the router by its address, resolved by ARP on the uplink
    if (recipe.routes[0].via !== router) throw new Error(`the recipe's route is via ${recipe.routes[0].via}, its host route via ${router}`);
    // the socket's directory as after a boot: /run is a tmpfs, and the docs' systemd unit makes none
    recipe.api.listen = `unix:${join(topo.dir, 'run', recipe.api.listen.slice(recipe.api.listen.lastIndexOf('/') + 1))}`;
    Object.assign(recipe, { stateDir: topo.config.stateDir, logLevel: 'info', probeIntervalMs: 200 });
    writeFileSync(topo.configFile, stringify(recipe));
    topo.config = { ...recipe, api: { listen: recipe.api.listen.replace(/^unix:/, '') } }; // what the test's API helper connects to
    await startDaemon(topo);
    // the pods, attached by the plugin as the docs' network config list chains it
    cni = JSON.parse(runningBlock('**The CNI plugin.**', 'json'));
    const [ptp, wdp] = cni.plugins;
    for (const i of [0, 1]) {
      const ns = lab.namespace(`k${i}`);
      const ip = ptp.ipam.subnet.replace(/\d+\/\d+$/, String(20 + i));
      const hostIf = `veth${(process.pid + i).toString(16).padStart(8, '0').slice(-8)}`;
      const prevResult = ptpAdd(topo, ns, hostIf, ip, ptp.ipam.subnet, ptp.ipam.routes);
      const conf = { cniVersion: cni.cniVersion, name: cni.name, ...wdp, server: recipe.api.listen, prevResult };
      const r = await lab.execAsync(topo.ns.dp, 'env', ['-i', 'CNI_COMMAND=ADD', `CNI_CONTAINERID=ctr-wh${i}-${process.pid}`, `CNI_NETNS=/var/run/netns/${ns}`, 'CNI_IFNAME=eth0', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
        process.execPath, join(ROOT, 'bin/wdp-cni.js')], { input: JSON.stringify(conf), timeoutMs: 40000 });
      if (r.code !== 0) throw new Error(`ADD: ${r.stdout} ${r.stderr}`);
      await startServer(topo, ns, `pod-${i}`);
      pods.push({ ns, ip, name: `pod-${i}` });
    }
    const res = await api(topo, 'POST', '/api/v1/apply', [
      serviceYaml({ name: 'web', type: 'NodePort', clusterIP: '10.96.7.10', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30087, protocol: 'TCP' }] }),
      sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
    ]);
    if (res.status !== 200) throw new Error(`apply: ${res.text}`);
  } catch (e) { await destroyTopology(topo); topo = undefined; throw e; }
});
test.after.always(async () => { await destroyTopology(topo); });

const nodeIp = () => recipe.node.addresses[0];

serial('the kubelet probes each pod by its pod IP from the node\'s namespace (as its liveness and readiness probes do)', async (t) => {
  for (const p of pods) {
    const r = await waitFor(`${p.name} by its pod IP`, async () => { const x = await curl(topo, topo.ns.dp, `http://${p.ip}:8080/`, { timeout: 2 }); return x.code === 0 && x; }, 15000).catch(() => null);
    t.truthy(r, `${p.name} (${p.ip}) from the node: ${topo.daemonLog.slice(-2000)}`);
    if (!r) continue;
    t.is(r.body.trim(), p.name);
    t.is(r.headers['x-peer'].replace('::ffff:', ''), nodeIp(), 'from the node address');
  }
});

serial('a hostNetwork client reaches the ClusterIP and its own NodePort; a pod reaches the node address and the outside through the node\'s router', async (t) => {
  const { lab } = topo;
  for (const url of ['http://10.96.7.10/', `http://${nodeIp()}:30087/`]) {
    const r = await waitFor(url, async () => { const x = await curl(topo, topo.ns.dp, url, { timeout: 2 }); return x.code === 0 && x; }, 15000).catch(() => null);
    t.truthy(r, `${url} from the node`);
    if (r) t.regex(r.body, /^pod-[01]/);
  }
  // the kubelet's port on the node address, reached from a pod
  const kubelet = lab.spawn(topo.ns.dp, process.execPath, ['-e', `require('http').createServer((q, s) => s.end('kubelet ' + q.socket.remoteAddress)).listen(10250, () => console.log('ready'))`]);
  topo.podProcs.push(kubelet);
  await waitFor('the node\'s server', () => new Promise((r) => { let o = ''; kubelet.stdout.on('data', (d) => { o += d; if (o.includes('ready')) r(true); }); setTimeout(() => r(false), 3000); }));
  const k = await curl(topo, pods[0].ns, `http://${nodeIp()}:10250/`, { timeout: 3 });
  t.is(k.code, 0, `pod → node address: ${k.stderr}`);
  t.is(k.body.replace('::ffff:', ''), `kubelet ${pods[0].ip}`);
  // outside, behind the router (routes: 0.0.0.0/0 out of the uplink to the router's MAC)
  const out = lab.spawn(topo.ns.remote, process.execPath, ['-e', `require('http').createServer((q, s) => s.end('outside ' + q.socket.remoteAddress)).listen(8088, '203.0.113.7', () => console.log('ready'))`]);
  topo.podProcs.push(out);
  await waitFor('the outside server', () => new Promise((r) => { let o = ''; out.stdout.on('data', (d) => { o += d; if (o.includes('ready')) r(true); }); setTimeout(() => r(false), 3000); }));
  lab.exec(topo.ns.remote, 'ip', ['route', 'replace', '10.244.0.0/16', 'via', nodeIp()]);
  const o = await curl(topo, pods[1].ns, 'http://203.0.113.7:8088/', { timeout: 3 });
  t.is(o.code, 0, `pod → outside: ${o.stderr}`);
});

serial('the node\'s own connection to a LoadBalancer ingress IP and an external IP is served by wdp, as kube-proxy serves the node\'s own traffic to them', async (t) => {
  const res = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'lb', type: 'LoadBalancer', clusterIP: '10.96.7.20', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30088, protocol: 'TCP' }], extra: { externalIPs: ['198.51.100.9'] }, lbIngress: ['198.51.100.50'] }),
    sliceYaml({ name: 'lb-1', service: 'lb', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  t.is(res.status, 200, res.text);
  for (const url of ['http://198.51.100.50/', 'http://198.51.100.9/']) {
    const r = await waitFor(url, async () => { const x = await curl(topo, topo.ns.dp, url, { timeout: 2 }); return x.code === 0 && x; }, 10000).catch(() => null);
    t.truthy(r, `${url} from the node: ${JSON.stringify((await api(topo, 'GET', '/api/v1/counters')).json?.global ?? {}).slice(0, 600)}`);
    if (r) t.regex(r.body, /^pod-[01]/);
  }
});

serial('externalTrafficPolicy Local with no endpoint on this node (docs/api.md): the node itself reaches the endpoints through its NodePort (short-circuited), its connection to the LoadBalancer IP is dropped as the nftables proxier drops it before DNAT, and so is an outside client\'s', async (t) => {
  const res = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'lbl', type: 'LoadBalancer', clusterIP: '10.96.7.30', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30089, protocol: 'TCP' }], extra: { externalTrafficPolicy: 'Local', healthCheckNodePort: 32100 }, lbIngress: ['198.51.100.60'] }),
    sliceYaml({ name: 'lbl-1', service: 'lbl', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-b' })) }),
  ]);
  t.is(res.status, 200, res.text);
  const np = await waitFor('the NodePort from the node', async () => { const x = await curl(topo, topo.ns.dp, `http://${nodeIp()}:30089/`, { timeout: 2 }); return x.code === 0 && x; }, 10000).catch(() => null);
  t.truthy(np, 'the node reaches an endpoint on another node through its NodePort');
  if (np) t.regex(np.body, /^pod-[01]/);
  const before = (await api(topo, 'GET', '/api/v1/counters')).json.drops?.drop_etp_no_local ?? 0;
  const lb = await curl(topo, topo.ns.dp, 'http://198.51.100.60/', { timeout: 2 });
  t.not(lb.code, 0, 'the node\'s connection to the LB IP gets nothing');
  topo.lab.exec(topo.ns.remote, 'ip', ['route', 'replace', '198.51.100.0/24', 'via', nodeIp()]);
  const out = await curl(topo, topo.ns.remote, 'http://198.51.100.60/', { timeout: 2 });
  t.not(out.code, 0, 'an outside client gets nothing: no local endpoint');
  t.true(((await api(topo, 'GET', '/api/v1/counters')).json.drops?.drop_etp_no_local ?? 0) > before, 'dropped as drop_etp_no_local');
});

serial('a restart of wdp (SIGTERM, then SIGKILL) on the recipe\'s node keeps the node\'s own established connection through a ClusterIP and a pod\'s, and the pods\' ports', async (t) => {
  for (const p of pods) {
    const s = spawnNode(topo, p.ns, ECHO_SERVER, [p.name]);
    await waitFor(`${p.name} echo server`, () => s.out.includes('ready'));
  }
  const res = await api(topo, 'POST', '/api/v1/apply', [
    serviceYaml({ name: 'echo', clusterIP: '10.96.7.40', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }] }),
    sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'echo', port: ECHO_PORT, protocol: 'TCP' }], endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  t.is(res.status, 200, res.text);
  // the node's own client (a kubelet-like process) and a pod's, each two connections
  const clients = [[topo.ns.dp, 'the node'], [pods[1].ns, 'a pod']].map(([ns, who]) => {
    const c = spawnNode(topo, ns, ECHO_CLIENT, ['10.96.7.40', String(ECHO_PORT), '2']);
    c.who = who;
    return c;
  });
  const flowing = async (what) => {
    for (const c of clients) {
      const base = (await report(c)).map((x) => x.recv);
      const s = await waitFor(`${what}: ${c.who}'s echo answers`, async () => { const r = await report(c); return r.every((x, i) => x.recv >= base[i] + 3) && r; }, 30000).catch(() => null);
      t.truthy(s, `${what}: ${c.who}: ${JSON.stringify(await report(c))}`);
      if (s) t.true(s.every((x) => !x.closed && x.errors.length === 0 && x.pods.length === 1), `${what}: ${c.who}: ${JSON.stringify(s)}`);
    }
  };
  try {
    await flowing('before');
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      const d = topo.daemon;
      const exited = new Promise((r) => d.once('exit', r));
      d.kill(sig);
      await exited;
      await startDaemon(topo);
      await flowing(`after ${sig} and a new start`);
    }
    const ports = (await api(topo, 'GET', '/api/v1/ports')).json;
    const names = (Array.isArray(ports) ? ports : ports.items ?? ports.ports).map((p) => p.ifname);
    t.is(names.filter((n) => n.startsWith('veth')).length, pods.length, `the CNI pods' ports reopened: ${JSON.stringify(names)}`);
  } finally {
    for (const c of clients) c.stdin.write('stop\n');
  }
});

/** The node's management server: an SSH-like banner and echo on every address of the node. */
const SSHD = `require('net').createServer((s) => { s.write('SSH-2.0-wdp-walk\\r\\n'); s.on('data', (d) => s.write(d)); s.on('error', () => {}); }).listen(22, '::', () => console.log('ready'))`;

/** One session from `ns` to the node address: the banner, then an echo. */
async function ssh(ns, host) {
  const script = `const s = require('net').connect(22, ${JSON.stringify(host)}); let got = ''; s.setTimeout(3000, () => { console.log(JSON.stringify({ error: 'timeout', got })); process.exit(0); });
    s.on('data', (d) => { got += d; if (got.includes('SSH-2.0') && !got.includes('ping')) s.write('ping'); if (got.includes('ping')) { console.log(JSON.stringify({ got })); process.exit(0); } });
    s.on('error', (e) => { console.log(JSON.stringify({ error: e.code, got })); process.exit(0); });`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return { error: r.stderr || 'no output' }; }
}

serial('running.md\'s systemd unit for the node: after wdp stops, its ExecStopPost lines give the node its NIC back (IPv4 management, IPv6 on again); its ExecStartPre and a new start move the node behind wdp again', async (t) => {
  const { lab } = topo;
  const unit = runningBlock('**Management connectivity.**', 'ini');
  const lines = (key) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  /** One Exec line in the node's namespace, as systemd runs it ("-": its failure ignored). */
  const run = (line) => {
    const ignore = line.startsWith('-');
    const [cmd, ...args] = line.replace(/^-/, '').split(/\s+/);
    const r = lab.exec(topo.ns.dp, cmd, args);
    if (!ignore) t.is(r.code, 0, `${line}: ${r.stderr}`);
  };
  const sshd = lab.spawn(topo.ns.dp, process.execPath, ['-e', SSHD]);
  await waitFor('the node\'s sshd', () => new Promise((r) => { let o = ''; sshd.stdout.on('data', (d) => { o += d; if (o.includes('ready')) r(true); }); setTimeout(() => r(false), 3000); }));
  t.falsy((await ssh(topo.ns.remote, nodeIp())).error, 'management through wdp');
  const d = topo.daemon;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGTERM');
  await exited;
  for (const l of lines('ExecStopPost')) run(l);
  const back = await ssh(topo.ns.remote, nodeIp());
  t.falsy(back.error, `management with wdp stopped: ${JSON.stringify(back)}`);
  const nic = recipe.ports.find((p) => p.role === 'uplink').ifname;
  t.is(lab.exec(topo.ns.dp, 'cat', [`/proc/sys/net/ipv6/conf/${nic}/disable_ipv6`]).stdout.trim(), '0', `IPv6 on ${nic} again, as before wdp`);
  for (const l of lines('ExecStartPre')) run(l);
  await startDaemon(topo);
  const again = await waitFor('management through wdp again', async () => { const r = await ssh(topo.ns.remote, nodeIp()); return !r.error && r; }, 15000).catch(() => null);
  t.truthy(again, 'management through wdp after a new start');
});
