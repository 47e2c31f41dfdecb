// deploy/ walked on one node as an operator runs it, in network namespaces: the DaemonSet's command
// with $(NODE_NAME) expanded, under its securityContext (capabilities NET_ADMIN and NET_RAW only,
// no privilege escalation, a read-only root and /proc/sys, as a container runtime sets it up),
// with the ConfigMap's wdp.yaml — adapted only where a namespace cannot be the node: the host
// paths (/var/lib/wdp, /run/wdp) are the test's directories, and the in-cluster credentials are
// a kubeconfig for the API-server double, which enforces deploy/clusterrole.yaml. The ConfigMap's
// interfaces (uplink eth1, pods wdp-pods) are the namespace's veths renamed. Then running.md's CNI
// steps: the plugin installed with its installer, its network config list taken from the docs,
// and a pod made exactly as the chain's first plugin (ptp with host-local IPAM) makes it, its veth
// at the kernel's default offloads.
import test from 'ava';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, destroyTopology, curl, sleep, waitFor, ROOT } from './lib/topology.js';
import { startDoubleInNs } from './lib/apiserver-double-ns.js';
import { startServer } from './lib/cni-pods.js';
import { runWdp } from './lib/wdp-cli.js';

const gate = rootGate(test, { tools: ['setpriv', 'unshare', 'curl'] });
const serial = gate.serial;

const docs = (f) => parseAllDocuments(readFileSync(join(ROOT, 'deploy', f), 'utf8')).map((d) => d.toJS());
const [cm] = docs('configmap.yaml');
const [ds] = docs('daemonset.yaml');
const [role] = docs('clusterrole.yaml');
const container = ds.spec.template.spec.containers[0];
const RUNNING = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');

const NODE_IP = '192.168.100.2';
const SVC = '/api/v1/namespaces/default/services';
const EPS = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

/** The host path a container path is mounted from (the DaemonSet's volumes), and the test's
 * directory standing in for it. */
function hostPathOf(path) {
  const pod = ds.spec.template.spec;
  const m = container.volumeMounts.filter((v) => path === v.mountPath || path.startsWith(`${v.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const hp = pod.volumes.find((v) => v.name === m?.name)?.hostPath?.path;
  return hp && hp + path.slice(m.mountPath.length);
}

let topo, double, apiSock, runDir, daemon;
const daemonLog = { text: '' };

/** The DaemonSet's container started as the kubelet starts it: its command ($(NODE_NAME) set,
 * the image's paths mapped to this checkout and the config file), under its securityContext. */
function startPod() {
  const argv = container.command.map((a) => a.replace('$(NODE_NAME)', 'node-a'))
    .map((a) => (a === 'node' ? process.execPath : a === '/opt/wdp/bin/wdp.js' ? join(ROOT, 'bin/wdp.js') : a === '/etc/wdp/wdp.yaml' ? topo.configFile : a));
  const sc = container.securityContext;
  const caps = sc.capabilities.add.map((c) => `+${c.toLowerCase()}`).join(',');
  // a runtime mounts /proc/sys read-only in an unprivileged container; readOnlyRootFilesystem:
  // the root read-only, the volumes (here: the test's directory, under /tmp) writable
  const ro = sc.privileged ? '' : 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && ';
  const rootRo = sc.readOnlyRootFilesystem ? `mount --bind /tmp /tmp && mount -o remount,bind,ro / && ` : '';
  const nnp = sc.allowPrivilegeEscalation === false ? '--no-new-privs ' : '';
  const sh = `${ro}${rootRo}exec setpriv ${nnp}--bounding-set -all,${caps} --inh-caps -all "$@"`;
  const d = topo.lab.spawn(topo.ns.dp, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', ...argv]);
  daemonLog.text = '';
  d.stdout.on('data', (x) => { daemonLog.text += x; });
  d.stderr.on('data', (x) => { daemonLog.text += x; });
  daemon = d;
  topo.daemon = d;
  return d;
}

/** The liveness probe as the kubelet sends it: GET http://host:port/path from the node. */
async function probe() {
  const g = container.livenessProbe.httpGet;
  return curl(topo, topo.ns.dp, `http://${g.host}:${g.port}${g.path}`, { timeout: 2 });
}

async function waitServing(d) {
  await waitFor('the daemon\'s liveness probe and API', async () => {
    if (d.exitCode !== null) throw new Error(`wdp exited ${d.exitCode}:\n${daemonLog.text}`);
    const p = await probe();
    if (p.code !== 0 || !/^HTTP|healthy/.test(p.body)) return false;
    return (await runWdp(['status'], `unix:${apiSock}`)).code === 0;
  }, 60000);
}

test.before(async () => {
  if (!gate.ok) return;
  topo = buildTopology({ pods: [{ name: 'pod-b', attach: 'afpacket' }], kind: 'wn' });
  try {
    const { lab } = topo;
    const cfg = parseYaml(cm.data['wdp.yaml']);
    const [uplink, pods] = cfg.ports;
    // the ConfigMap names the node's interfaces: the namespace's veths take those names
    lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'c0', 'name', uplink.ifname]);
    lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'v0', 'name', pods.ifname]);
    ({ double } = await startDoubleInNs(topo, { rbac: join(ROOT, 'deploy/clusterrole.yaml') }));
    // host paths: the test's directories
    const sock = cfg.api.listen.replace(/^unix:/, '');
    runDir = join(topo.dir, 'run');
    mkdirSync(runDir);
    apiSock = join(runDir, sock.slice(sock.lastIndexOf('/') + 1));
    cfg.api.listen = `unix:${apiSock}`;
    cfg.stateDir = join(topo.dir, 'state');
    // the pod's service-account credentials: a kubeconfig for the double
    cfg.kubernetes.kubeconfig = join(topo.dir, 'kubeconfig');
    writeFileSync(topo.configFile, stringify(cfg));
    await double('POST', '/api/v1/nodes', {
      metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: 'node-a' }] },
    });
    await double('POST', SVC, {
      metadata: { name: 'web', namespace: 'default' },
      spec: { type: 'NodePort', clusterIP: '10.96.0.50', clusterIPs: ['10.96.0.50'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }] },
    });
    await double('POST', EPS, {
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4',
      endpoints: [{ addresses: [topo.pods[0].ip], conditions: { ready: true }, nodeName: 'node-a' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const pod = topo.pods[0];
    lab.up(pod.ns, 'eth0');
    lab.addr(pod.ns, 'eth0', `${pod.ip}/32`);
    lab.route(pod.ns, pods.gateways[0], undefined, 'eth0');
    lab.route(pod.ns, 'default', pods.gateways[0], 'eth0');
    await startServer(topo, pod.ns, pod.name);
  } catch (e) { await destroyTopology(topo); topo = undefined; throw e; }
});
test.after.always(async () => { await destroyTopology(topo); });

serial('the DaemonSet\'s container under its securityContext starts with the ConfigMap\'s config; the liveness probe answers; every request it makes is one deploy/clusterrole.yaml grants, and the role grants nothing it does not use', async (t) => {
  const d = startPod();
  await waitServing(d);
  // the capabilities it runs with are the manifest's, nothing more
  const status = readFileSync(`/proc/${d.pid}/status`, 'utf8');
  t.is(/CapEff:\s*([0-9a-f]+)/.exec(status)[1], (2n ** 12n + 2n ** 13n).toString(16).padStart(16, '0'), 'NET_ADMIN and NET_RAW only');
  t.is((await probe()).code, 0);
  // a client on the uplink reaches the Service by its ClusterIP and the node's NodePort
  for (const url of ['http://10.96.0.50/', `http://${NODE_IP}:30080/`]) {
    const r = await waitFor(url, async () => { const x = await curl(topo, topo.ns.client, url, { timeout: 2 }); return x.code === 0 && x.body.trim() === 'pod-b' && x; });
    t.is(r.body.trim(), 'pod-b', url);
  }
  await sleep(1500); // a bookmark round and the watches' restarts
  const stats = await double('GET', '/__double/stats');
  t.is(stats.forbidden, 0, `forbidden: ${JSON.stringify(stats.requests.filter((r) => !role.rules.some((x) => x.resources.includes(r.resource) && x.verbs.includes(r.verb))))}`);
  const used = new Set(stats.requests.map((r) => `${r.group}/${r.resource}:${r.verb}`));
  const granted = role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`))));
  t.deepEqual(granted.filter((g) => !used.has(g)), [], 'every grant is used');
  t.notRegex(daemonLog.text, /"level":(50|60)/, 'no error logged');
});

