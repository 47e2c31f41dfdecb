// deploy/ walked on one node as an operator runs it, in network namespaces: the DaemonSet's command
// with $(NODE_NAME) expanded, under its securityContext (capabilities NET_ADMIN and NET_RAW only,
// no privilege escalation, a read-only root and /proc/sys, as a container runtime sets it up),
// with the ConfigMap's wdp.yaml — adapted only where a namespace cannot be the node: the host
// paths (/var/lib/wdp, /run/wdp) are the test's directories. Its credentials are the pod's, as
// the kubelet gives them: the service account's token and CA mounted at
// /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/_PORT naming the
// control-plane endpoint (the DaemonSet's commented env) — the API-server double over HTTPS with
// a certificate of that CA, requiring the token and enforcing deploy/base/clusterrole.yaml. The
// ConfigMap's interfaces (uplink eth1, pods wdp-pods) are the namespace's veths renamed. Then running.md's CNI
// steps: the plugin installed with its installer, its network config list taken from the docs,
// and a pod made exactly as the chain's first plugin (ptp with host-local IPAM) makes it, its veth
// at the kernel's default offloads. The DaemonSet's install-cni container run the same way on
// a test directory standing in for the host's root, and its plugin run from there by a "runtime"
// on a host without node. Last, deploy/host-port/ (built as kubectl apply -k builds it): its
// daemon, privileged, on the remote namespace's veth as the node's NIC, with the API server
// behind that NIC.
import test from 'ava';
import { readFileSync, writeFileSync, mkdirSync, symlinkSync, renameSync, existsSync, realpathSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, destroyTopology, curl, sleep, waitFor, ROOT } from './lib/topology.js';
import { startDoubleInNs } from './lib/apiserver-double-ns.js';
import { startServer, ptpAdd, runningBlock } from './lib/cni-pods.js';
import { runWdp } from './lib/wdp-cli.js';
import { ECHO_CLIENT, ECHO_PORT, ECHO_SERVER, report } from './lib/echo-traffic.js';
import { spawnNode, httpMany } from './lib/topology.js';
import { kustomize } from './lib/kustomize.js';
import { within } from './lib/bounded-wait.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { childDone } from './lib/child-done.js';

// nftables' `nft` from the system directories: under `npx ava` PATH starts with node_modules/.bin,
// whose `nft` is another package's tool (it prints nothing, so a check of the ruleset would pass)
const NFT = systemTool('nft') ?? 'nft';

const gate = rootGate(test, { tools: ['setpriv', 'unshare', 'curl', 'openssl', 'nft'] });
const serial = gate.serial;

const docs = (f) => parseAllDocuments(readFileSync(join(ROOT, 'deploy/base', f), 'utf8')).map((d) => d.toJS());
const [cm] = docs('configmap.yaml');
const [ds] = docs('daemonset.yaml');
const [role] = docs('clusterrole.yaml');
const container = ds.spec.template.spec.containers[0];
const RUNNING = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');

const NODE_IP = '192.168.100.2';
/** The control plane as deploy/host-port/'s node reaches it: behind its NIC (the remote namespace). */
const API_ON_NIC = '192.168.100.10';
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

let topo, double, apiSock, runDir, daemon, saDir, apiUrl;
const TOKEN = `wdp-sa-token-${process.pid}`;

/** The service account's token as the kubelet projects it (its atomic writer): the file
 * `token` links to `..data/token`, `..data` to a new timestamped directory swapped in by rename. */
function projectToken(token) {
  const ts = `..${Date.now()}_${Math.random().toString(36).slice(2)}`;
  mkdirSync(join(saDir, ts));
  writeFileSync(join(saDir, ts, 'token'), token);
  symlinkSync(ts, join(saDir, '..data_tmp'));
  renameSync(join(saDir, '..data_tmp'), join(saDir, '..data'));
  if (!existsSync(join(saDir, 'token'))) symlinkSync('..data/token', join(saDir, 'token'));
}

/** A CA and the API server's certificate from it for 127.0.0.1 and API_ON_NIC (openssl), in `dir`: ca.pem,
 * key.pem, cert.pem. */
function certificates(dir) {
  const o = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=kubernetes');
  o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'req.pem', '-subj', '/CN=kube-apiserver');
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=IP:127.0.0.1,IP:${API_ON_NIC}\n`);
  o('x509', '-req', '-in', 'req.pem', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext.cnf');
}
const daemonLog = { text: '' };

/** The DaemonSet's container started as the kubelet starts it: its command ($(NODE_NAME) set,
 * the image's paths mapped to this checkout and the config file, and `paths`: more container
 * paths mapped to the test's), under its securityContext. `c`: the container (the overlay's);
 * `api`: the API server's URL (the control-plane endpoint the pod's environment names). */
function startPod(c = container, paths = {}, api = apiUrl) {
  const image = { node: process.execPath, '/opt/wdp/bin/wdp.js': join(ROOT, 'bin/wdp.js'), '/etc/wdp/wdp.yaml': topo.configFile, ...paths };
  const argv = c.command.map((a) => a.replace('$(NODE_NAME)', 'node-a')).map((a) => image[a] ?? (a.startsWith('/opt/wdp/') ? join(ROOT, a.slice('/opt/wdp/'.length)) : a));
  const sc = c.securityContext;
  // privileged: every capability, /proc/sys writable; else the manifest's capabilities only
  const caps = sc.privileged ? '' : `--bounding-set -all,${sc.capabilities.add.map((x) => `+${x.toLowerCase()}`).join(',')} --inh-caps -all `;
  // a runtime mounts /proc/sys read-only in an unprivileged container; readOnlyRootFilesystem:
  // the root read-only, the volumes (here: the test's directory, under /tmp) writable
  const ro = sc.privileged ? '' : 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && ';
  const rootRo = sc.readOnlyRootFilesystem ? `mount --bind /tmp /tmp && mount -o remount,bind,ro / && ` : '';
  const nnp = sc.allowPrivilegeEscalation === false ? '--no-new-privs ' : '';
  // the service account's files where every pod has them (a tmpfs on /run: /var/run is /run here)
  const sa = 'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && '
    + `mount --bind ${saDir} /run/secrets/kubernetes.io/serviceaccount && `;
  const sh = `${sa}${ro}${rootRo}exec setpriv ${nnp}${caps}"$@"`;
  // the pod's environment: the control-plane endpoint (the DaemonSet's commented env)
  const { hostname, port } = new URL(api);
  const env = { ...process.env, KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port, NODE_NAME: 'node-a' };
  const d = topo.lab.spawn(topo.ns.dp, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', ...argv], { env });
  daemonLog.text = '';
  d.stdout.on('data', (x) => { daemonLog.text += x; });
  d.stderr.on('data', (x) => { daemonLog.text += x; });
  daemon = d;
  topo.daemon = d;
  return d;
}

/** The liveness (or readiness) probe as the kubelet sends it: GET http://host:port/path from the
 * node; true when it succeeds (the kubelet's rule: a status from 200 to 399). */
async function probe(which = 'livenessProbe') {
  const g = container[which].httpGet;
  const r = await topo.lab.execAsync(topo.ns.dp, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `http://${g.host}:${g.port}${g.path}`], { timeoutMs: 5000 });
  const code = Number(r.stdout);
  return code >= 200 && code < 400;
}

async function waitServing(d) {
  await waitFor('the daemon\'s liveness probe and API', async () => {
    if (d.exitCode !== null) throw new Error(`wdp exited ${d.exitCode}:\n${daemonLog.text}`);
    if (!await probe()) return false;
    return (await runWdp(['status'], `unix:${apiSock}`)).code === 0;
  }, 60000);
}

/** A Service `name` (ClusterIP `clusterIP`, or NodePort with `nodePort`) and its EndpointSlice
 * with `ips` ready on this node, created in the API server as kubectl and the EndpointSlice
 * controller would. */
async function kubeService(name, clusterIP, ips, { port = 80, targetPort = 8080, portName = 'http', nodePort } = {}) {
  await double('POST', SVC, {
    metadata: { name, namespace: 'default' },
    spec: { type: nodePort ? 'NodePort' : 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', ports: [{ name: portName, port, targetPort, ...(nodePort ? { nodePort } : {}), protocol: 'TCP' }] },
  });
  await double('POST', EPS, {
    metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4',
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node-a' })), ports: [{ name: portName, port: targetPort, protocol: 'TCP' }],
  });
}

/** The daemon up (started again if a test before left it down), the docs' list, the plugin's
 * entry pointed at this node's socket, the installed plugin's path. */
async function cniSetup() {
  if (!daemon || daemon.exitCode !== null) { startPod(); await waitServing(daemon); }
  const list = docsConflist();
  return { list, entry: { ...list.plugins[1], server: `unix:${apiSock}` }, plugin: join(topo.dir, 'cni-bin', 'wdp-cni') };
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
    // a node's NIC and veths have IPv6 on (the namespace's default here is off)
    for (const p of [uplink, pods]) lab.sysctl(topo.ns.dp, `net.ipv6.conf.${p.ifname}.disable_ipv6`, '0');
    await waitFor('link-local addresses', () => [uplink, pods].every((p) => / fe80::/.test(lab.exec(topo.ns.dp, 'ip', ['-6', '-o', 'addr', 'show', 'dev', p.ifname]).stdout)));
    const tls = join(topo.dir, 'tls');
    mkdirSync(tls);
    certificates(tls);
    saDir = join(topo.dir, 'serviceaccount');
    mkdirSync(saDir);
    projectToken(TOKEN);
    writeFileSync(join(saDir, 'ca.crt'), readFileSync(join(tls, 'ca.pem')));
    writeFileSync(join(saDir, 'namespace'), ds.metadata.namespace);
    ({ double, url: apiUrl } = await startDoubleInNs(topo, { rbac: join(ROOT, 'deploy/base/clusterrole.yaml'), tls, token: TOKEN }));
    // host paths: the test's directories
    const sock = cfg.api.listen.replace(/^unix:/, '');
    runDir = join(topo.dir, 'run');
    mkdirSync(runDir);
    apiSock = join(runDir, sock.slice(sock.lastIndexOf('/') + 1));
    cfg.api.listen = `unix:${apiSock}`;
    cfg.stateDir = join(topo.dir, 'state');
    writeFileSync(topo.configFile, stringify(cfg));
    await double('POST', '/api/v1/nodes', {
      metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: 'node-a' }] },
    });
    await kubeService('web', '10.96.0.50', [topo.pods[0].ip], { nodePort: 30080 });
    const pod = topo.pods[0];
    lab.up(pod.ns, 'eth0');
    lab.addr(pod.ns, 'eth0', `${pod.ip}/32`);
    lab.route(pod.ns, pods.gateways[0], undefined, 'eth0');
    lab.route(pod.ns, 'default', pods.gateways[0], 'eth0');
    await startServer(topo, pod.ns, pod.name);
  } catch (e) { await destroyTopology(topo); topo = undefined; throw e; }
});
test.after.always(async () => { await destroyTopology(topo); });

serial('the DaemonSet\'s container under its securityContext starts with the ConfigMap\'s config; the liveness probe answers; every request it makes is one deploy/base/clusterrole.yaml grants, and the role grants nothing it does not use', async (t) => {
  const d = startPod();
  await waitServing(d);
  // the capabilities it runs with are the manifest's, nothing more
  const status = readFileSync(`/proc/${d.pid}/status`, 'utf8');
  t.is(/CapEff:\s*([0-9a-f]+)/.exec(status)[1], (2n ** 12n + 2n ** 13n).toString(16).padStart(16, '0'), 'NET_ADMIN and NET_RAW only');
  t.true(await probe());
  t.true(await probe('readinessProbe'), 'ready: the node forwards');
  // running.md, "Preparing the node": the daemon turns IPv6 off on its AF_PACKET ports' interfaces
  // (the kernel originates nothing there) — with /proc/sys read-only too
  for (const p of parseYaml(cm.data['wdp.yaml']).ports) {
    t.is(topo.lab.exec(topo.ns.dp, 'ip', ['-6', '-o', 'addr', 'show', 'dev', p.ifname]).stdout, '', `no IPv6 address left on ${p.ifname}`);
  }
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
  t.deepEqual(daemonLog.text.split('\n').filter((l) => /"level":(40|50|60)/.test(l)), [], 'nothing the operator should look at: no warning, no error');
});

/** running.md's network configuration list for the chained plugin (the JSON under "The CNI plugin"). */
const docsConflist = () => JSON.parse(runningBlock('**The CNI plugin.**', 'json'));

/** ptp's veth for pod `ns` at `ip` (lib/cni-pods.js ptpAdd), its host end named as ptp names it
 * (`veth<8 hex>`, one per `tag`); returns { hostIf, result }. */
function ptpPod(ns, ip, subnet, ipamRoutes, tag = 0, v6 = {}) {
  const hostIf = `veth${((process.pid + tag * 7919) * 2654435761 % 0xffffffff >>> 0).toString(16).padStart(8, '0').slice(0, 8)}`;
  return { hostIf, result: ptpAdd(topo, ns, hostIf, ip, subnet, ipamRoutes, v6) };
}

/** The installed plugin run as a runtime runs a chained plugin: by path, with the runtime's
 * environment (libcni passes its own, plus CNI_*: here a PATH that holds nothing — the launcher
 * runs "with any PATH"), the list's entry with name, cniVersion and prevResult on stdin. */
async function runtimeCall(plugin, command, list, entry, { id, netns, prevResult }) {
  const conf = { cniVersion: list.cniVersion, name: list.name, ...entry, ...(prevResult ? { prevResult } : {}) };
  const r = await topo.lab.execAsync(topo.ns.dp, 'env', ['-i', `CNI_COMMAND=${command}`, `CNI_CONTAINERID=${id}`, `CNI_NETNS=/var/run/netns/${netns}`,
    'CNI_IFNAME=eth0', `CNI_PATH=${join(topo.dir, 'cni-bin')}`, 'PATH=/nonexistent', plugin], { input: JSON.stringify(conf), timeoutMs: 40000 });
  return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

serial('running.md\'s CNI steps on the DaemonSet\'s node: the plugin installed by its installer, the docs\' network config list (its server: the ConfigMap\'s API socket), a ptp pod attached with default offloads and served through its Service, CHECK, DEL', async (t) => {
  if (!daemon || daemon.exitCode !== null) { startPod(); await waitServing(daemon); }
  const { lab } = topo;
  const list = docsConflist();
  const [ptp, wdp] = list.plugins;
  t.is(ptp.type, 'ptp');
  t.is(wdp.type, 'wdp-cni');
  // the docs' server is a socket on the DaemonSet's /run/wdp host path: the daemon's, mapped here
  const docsSock = wdp.server.replace(/^unix:/, '');
  const cmSock = hostPathOf(parseYaml(cm.data['wdp.yaml']).api.listen.replace(/^unix:/, ''));
  t.is(docsSock, cmSock, 'the CNI plugin talks to the socket the ConfigMap\'s daemon listens on');
  const entry = { ...wdp, server: `unix:${join(runDir, docsSock.slice(docsSock.lastIndexOf('/') + 1))}` };
  mkdirSync(join(topo.dir, 'cni-bin'));
  const inst = await lab.execAsync(topo.ns.dp, process.execPath, [join(ROOT, 'bin/wdp-cni.js'), 'install', join(topo.dir, 'cni-bin')]);
  t.is(inst.code, 0, inst.stderr);
  const plugin = join(topo.dir, 'cni-bin', 'wdp-cni');
  const ns = lab.namespace('cp');
  const podIp = '10.244.1.20';
  const { hostIf, result } = ptpPod(ns, podIp, ptp.ipam.subnet, ptp.ipam.routes);
  const id = `ctr-wn-${process.pid}`;
  const add = await runtimeCall(plugin, 'ADD', list, entry, { id, netns: ns, prevResult: result });
  t.is(add.code, 0, `ADD: ${JSON.stringify(add.out)} ${add.stderr}`);
  t.deepEqual(add.out, result, 'the previous result passed on');
  t.is(lab.exec(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', hostIf]).stdout.includes('inet '), false, 'ptp\'s gateway address taken off the host end');
  await startServer(topo, ns, 'cni-pod');
  await kubeService('cni', '10.96.0.60', [podIp]);
  const who = await waitFor('the CNI pod through its Service', async () => { const r = await curl(topo, topo.ns.client, 'http://10.96.0.60/', { timeout: 2 }); return r.code === 0 && r.body.trim(); });
  t.is(who, 'cni-pod');
  // bulk both ways with the veth's default offloads (TSO/GSO, partial checksums)
  const n = 4 << 20;
  const down = await lab.execAsync(topo.ns.client, 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{size_download}', `http://10.96.0.60/bytes/${n}`], { timeoutMs: 30000 });
  t.is(down.stdout, String(n), down.stderr);
  const up = await lab.execAsync(ns, 'sh', ['-c', `head -c ${n} /dev/zero | curl -sS --max-time 20 --data-binary @- http://10.96.0.50/sink`], { timeoutMs: 30000 });
  t.regex(up.stdout, new RegExp(`^${n} `), up.stderr);
  const check = await runtimeCall(plugin, 'CHECK', list, entry, { id, netns: ns, prevResult: result });
  t.is(check.code, 0, JSON.stringify(check.out));
  const ports = await runWdp(['get', 'ports', '-o', 'wide'], `unix:${apiSock}`);
  t.regex(ports.stdout, new RegExp(`${hostIf}.*${list.name}/${id}/eth0|${list.name}.*${id}`), ports.stdout);
  const del = await runtimeCall(plugin, 'DEL', list, entry, { id, netns: ns });
  t.is(del.code, 0, JSON.stringify(del.out));
  const after = await runWdp(['get', 'ports', '-o', 'wide'], `unix:${apiSock}`);
  t.false(after.stdout.includes(hostIf), 'the port is gone');
  t.false(lab.exec(topo.ns.dp, NFT, ['list', 'ruleset']).stdout.includes(hostIf), 'the kernel has the veth back');
});

/** deploy/'s container that installs the CNI plugin and keeps it chained. */
const installCni = () => ds.spec.template.spec.containers.find((c) => c.name === 'install-cni');

/** The install-cni container run as the kubelet runs it: its command (the image's node and
 * bin/wdp-cni.js mapped to this checkout's), its securityContext (no capability, no privilege
 * escalation, the root read-only but for its volumes), its volumes — each a host path mounted at
 * `--host-root` + that path — the test's "host" directory `host` standing in for the host's root.
 * It keeps running (--watch): resolved once its output matches `until` (by default: the plugin
 * chained), then stopped as the kubelet stops it (SIGTERM) — { code, stdout, stderr }, or the
 * running child with `keep`. */
async function runInstallCni(host, { until = /chained wdp-cni into|wdp-cni already chained in/, keep = false } = {}) {
  const ic = installCni();
  const argv = ic.command;
  const hostRoot = argv[argv.indexOf('--host-root') + 1];
  for (const m of ic.volumeMounts) {
    const hp = ds.spec.template.spec.volumes.find((v) => v.name === m.name)?.hostPath;
    if (!hp || m.mountPath !== `${hostRoot}${hp.path}`) throw new Error(`install-cni's mount ${m.name} (${m.mountPath}) is not --host-root + its host path`);
    // hostPath type DirectoryOrCreate: the kubelet makes it
    mkdirSync(join(host, hp.path), { recursive: true });
  }
  const mapped = argv.map((a) => (a === 'node' ? process.execPath : a === '/opt/wdp/bin/wdp-cni.js' ? join(ROOT, 'bin/wdp-cni.js') : a === hostRoot ? host : a));
  const sc = ic.securityContext;
  const caps = (sc.capabilities?.add ?? []).map((c) => `,+${c.toLowerCase()}`).join('');
  const ro = sc.readOnlyRootFilesystem ? `mount --bind ${host} ${host} && mount -o remount,bind,ro / && ` : '';
  const nnp = sc.allowPrivilegeEscalation === false ? '--no-new-privs ' : '';
  const sh = `${ro}exec setpriv ${nnp}--bounding-set -all${caps} --inh-caps -all "$@"`;
  const child = topo.lab.spawn(topo.ns.dp, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', ...mapped]);
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  const exited = childDone(child).then(({ code, signal }) => code ?? signal);
  const seen = await Promise.race([
    waitFor(`install-cni to print ${until}`, () => until.test(out.stdout), 60000).then(() => true, () => false),
    exited.then(() => false),
  ]);
  if (keep && seen) return Object.assign(child, { out, exited });
  if (child.exitCode === null) child.kill('SIGTERM');
  const code = await exited;
  return { code: seen ? code : `did not print ${until} (exit ${code})`, ...out };
}

/** A container runtime on the host running the installed plugin: the host's /opt is the test's
 * host directory's, and the host has no node — the node binary and libstdc++ of this machine are
 * hidden (an empty file over each), PATH holds nothing; `env -i`, the CNI_* environment, the
 * list's entry on stdin. */
async function hostRuntimeCall(host, command, list, entry, { id, netns, prevResult }) {
  const conf = { cniVersion: list.cniVersion, name: list.name, ...entry, ...(prevResult ? { prevResult } : {}) };
  const libstdcxx = /libstdc\+\+\S* => (\S+)/.exec(execFileSync('ldd', [process.execPath], { encoding: 'utf8' }))?.[1];
  const hide = [realpathSync(process.execPath), ...(libstdcxx ? [realpathSync(libstdcxx)] : [])].map((f) => `mount --bind /dev/null ${f} && `).join('');
  const sh = `mount --bind ${join(host, 'opt')} /opt && ${hide}exec "$@"`;
  const r = await topo.lab.execAsync(topo.ns.dp, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', 'env', '-i', `CNI_COMMAND=${command}`, `CNI_CONTAINERID=${id}`,
    `CNI_NETNS=/var/run/netns/${netns}`, 'CNI_IFNAME=eth0', 'CNI_PATH=/opt/cni/bin', 'PATH=/nonexistent', '/opt/cni/bin/wdp-cni'], { input: JSON.stringify(conf), timeoutMs: 40000 });
  return { code: r.code, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

serial('deploy/\'s install-cni container, under its securityContext with its host-path volumes, installs the plugin on a host without node (node and libstdc++ hidden, PATH empty); with no network config list yet it keeps running beside the daemon and chains the plugin when the list appears; a runtime\'s ADD and DEL of a ptp pod through it; started again, it changes nothing', async (t) => {
  if (!daemon || daemon.exitCode !== null) { startPod(); await waitServing(daemon); }
  const ic = installCni();
  t.truthy(ic, 'the DaemonSet has an install-cni container');
  t.is(ic.image, container.image, 'the same image');
  t.deepEqual(ic.securityContext.capabilities, { drop: ['ALL'] });
  const host = join(topo.dir, 'host');
  mkdirSync(join(host, 'etc/cni/net.d'), { recursive: true });
  // the node's network before wdp: the docs' list without wdp-cni (the pods' veths by ptp), first
  // by name; a later file is not the runtime's and stays as it is
  const docsList = docsConflist();
  const primary = { ...docsList, plugins: docsList.plugins.filter((p) => p.type !== 'wdp-cni') };
  // no list yet (the primary plugin writes it once its agent runs, which may need the API server
  // through the kubernetes Service, i.e. wdp): the container keeps running, the daemon serves
  const waiting = await runInstallCni(host, { until: /wdp-cni not chained: no CNI network configuration/, keep: true });
  t.is(typeof waiting.pid, 'number', `install-cni keeps running without a list: ${JSON.stringify(waiting)}`);
  t.is(waiting.exitCode, null);
  t.true(await probe(), 'the daemon serves meanwhile (its liveness probe)');
  writeFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), JSON.stringify(primary));
  writeFileSync(join(host, 'etc/cni/net.d/99-other.conflist'), JSON.stringify({ ...primary, name: 'other' }));
  await waitFor('install-cni to chain the list once it is there', () => /chained wdp-cni into .*10-pods\.conflist/.test(waiting.out.stdout), 30000);
  waiting.kill('SIGTERM');
  t.is(await waiting.exited, 0, waiting.out.stderr);
  const first = waiting.out;
  const launcher = join(host, 'opt/cni/bin/wdp-cni');
  t.is(statSync(launcher).mode & 0o777, 0o755);
  const text = readFileSync(launcher, 'utf8');
  t.false(text.includes(topo.dir), 'the launcher names host paths, not where the container saw them');
  const list = JSON.parse(readFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), 'utf8'));
  t.deepEqual(list.plugins.map((p) => p.type), ['ptp', 'wdp-cni'], 'chained after ptp');
  const docsEntry = docsList.plugins.find((p) => p.type === 'wdp-cni');
  t.is(list.plugins[1].server, docsEntry.server, 'the docs\' server: the ConfigMap\'s API socket');
  t.deepEqual(JSON.parse(readFileSync(join(host, 'etc/cni/net.d/99-other.conflist'), 'utf8')), { ...primary, name: 'other' }, 'only the runtime\'s list is chained');
  // the kubelet starts it again at every start of the pod: nothing changes
  const again = await runInstallCni(host);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /already there/);
  t.regex(again.stdout, /already chained/);
  t.is(readFileSync(launcher, 'utf8'), text);
  t.deepEqual(JSON.parse(readFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), 'utf8')), list);
  // a runtime on that host: ADD of a pod made by ptp, served through its Service; DEL
  const entry = { ...list.plugins[1], server: `unix:${apiSock}` };
  const ns = topo.lab.namespace('ci');
  const podIp = '10.244.1.40';
  const { hostIf, result } = ptpPod(ns, podIp, list.plugins[0].ipam.subnet, list.plugins[0].ipam.routes, 40);
  const id = `ctr-wni-${process.pid}`;
  const version = await hostRuntimeCall(host, 'VERSION', list, entry, { id, netns: ns });
  t.is(version.code, 0, version.stderr);
  const add = await hostRuntimeCall(host, 'ADD', list, entry, { id, netns: ns, prevResult: result });
  t.is(add.code, 0, `ADD: ${JSON.stringify(add.out)} ${add.stderr}`);
  t.deepEqual(add.out, result);
  await startServer(topo, ns, 'installed-pod');
  await kubeService('installed', '10.96.0.65', [podIp]);
  const who = await waitFor('the pod through its Service', async () => { const r = await curl(topo, topo.ns.client, 'http://10.96.0.65/', { timeout: 2 }); return r.code === 0 && r.body.trim(); }).catch(() => null);
  t.is(who, 'installed-pod');
  const del = await hostRuntimeCall(host, 'DEL', list, entry, { id, netns: ns });
  t.is(del.code, 0, JSON.stringify(del.out));
  t.false((await runWdp(['get', 'ports'], `unix:${apiSock}`)).stdout.includes(hostIf), 'the port is gone');
});

serial('a restart of the DaemonSet\'s pod — SIGTERM, which it obeys well within terminationGracePeriodSeconds, then SIGKILL — keeps established connections to a pod on the ConfigMap\'s pod port and to a CNI pod, and the CNI pod\'s port', async (t) => {
  const { list, entry, plugin } = await cniSetup();
  const { lab } = topo;
  const ns = lab.namespace('cq');
  const podIp = '10.244.1.21';
  const { result } = ptpPod(ns, podIp, list.plugins[0].ipam.subnet, list.plugins[0].ipam.routes, 1);
  const id = `ctr-wn2-${process.pid}`;
  const add = await runtimeCall(plugin, 'ADD', list, entry, { id, netns: ns, prevResult: result });
  t.is(add.code, 0, JSON.stringify(add.out));
  for (const [pns, name] of [[topo.pods[0].ns, 'pod-b'], [ns, 'cni-pod2']]) {
    const s = spawnNode(topo, pns, ECHO_SERVER, [name]);
    topo.podProcs.push(s);
    await waitFor(`${name} echo server`, () => s.out.includes('ready'));
  }
  await kubeService('echo-b', '10.96.0.70', [topo.pods[0].ip], { port: ECHO_PORT, targetPort: ECHO_PORT, portName: 'echo' });
  await kubeService('echo-c', '10.96.0.71', [podIp], { port: ECHO_PORT, targetPort: ECHO_PORT, portName: 'echo' });
  await waitFor('the echo Services', async () => (await curl(topo, topo.ns.client, `telnet://10.96.0.71:${ECHO_PORT}`, { timeout: 1, extra: ['-o', '/dev/null'] })).code === 28, 20000);
  const clients = ['10.96.0.70', '10.96.0.71'].map((ip) => { const c = spawnNode(topo, topo.ns.client, ECHO_CLIENT, [ip, String(ECHO_PORT), '2']); topo.podProcs.push(c); return c; });
  const flowing = async (what) => {
    for (const c of clients) {
      const base = (await report(c)).map((x) => x.recv);
      const s = await waitFor(`${what}: echo answers`, async () => { const r = await report(c); return r.every((x, i) => x.recv >= base[i] + 3) && r; }, 30000);
      t.true(s.every((x) => !x.closed && x.errors.length === 0), `${what}: ${JSON.stringify(s)}`);
      t.is(new Set(s.flatMap((x) => x.pods)).size, 1, `${what}: one pod per Service`);
    }
  };
  await flowing('before the restarts');
  const grace = ds.spec.template.spec.terminationGracePeriodSeconds;
  const exited = new Promise((r) => daemon.once('exit', (code, sig) => r({ code, sig })));
  daemon.kill('SIGTERM');
  const stop = await within(exited, grace * 1000, () => ({ late: true }));
  t.deepEqual(stop, { code: 0, sig: null }, `the stop ended within terminationGracePeriodSeconds (${grace} s)`);
  startPod();
  await waitServing(daemon);
  await flowing('after SIGTERM and a new start');
  // (the restored checkpoint is written over at once, consumed: its line follows shortly)
  const st = await waitFor('wdp status with the checkpoint after the restore', async () => { const r = await runWdp(['status'], `unix:${apiSock}`); return /^last checkpoint /m.test(r.stdout) && r; });
  t.regex(st.stdout, /restored in \d+ ms: .* [1-9]\d* flows/, st.stdout);
  // running.md's `$ wdp status` example, line for line, its values aside (a line the example
  // does not have, "  not restored: ...", may come between)
  const example = /\$ wdp status\n([\s\S]*?)```/.exec(RUNNING)[1].trim().split('\n');
  const shape = (line) => new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '\\S+').replace(/\d+/g, '\\d+')}$`);
  const lines = st.stdout.trim().split('\n').filter((l) => !l.startsWith('  not restored: '));
  t.is(lines.length, example.length, st.stdout);
  example.forEach((l, i) => t.regex(lines[i] ?? '', shape(l), `wdp status line ${i + 1}`));
  t.regex((await runWdp(['get', 'ports'], `unix:${apiSock}`)).stdout, new RegExp(result.interfaces[0].name));
  daemon.kill('SIGKILL');
  await new Promise((r) => (daemon.exitCode !== null || daemon.signalCode ? r() : daemon.once('exit', r)));
  // a runtime asking the network's STATUS (a list of spec 1.1.0) while wdp is away: not ready
  const v11 = { ...list, cniVersion: '1.1.0' };
  const away = await runtimeCall(plugin, 'STATUS', v11, entry, {});
  t.is(away.code, 1, JSON.stringify(away.out));
  t.is(away.out?.code, 50, 'STATUS: not available while the daemon is away');
  startPod();
  await waitServing(daemon);
  const back = await runtimeCall(plugin, 'STATUS', v11, entry, {});
  t.is(back.code, 0, `STATUS once the daemon serves: ${JSON.stringify(back.out)}`);
  await flowing('after SIGKILL and a new start');
  for (const c of clients) c.stdin.write('stop\n');
});

serial('the service account\'s token rotated by the kubelet (the old one no longer accepted): the watch goes on with the new one, and kubectl-like changes arrive (a Service and its slice created, its port edited, both deleted)', async (t) => {
  if (!daemon || daemon.exitCode !== null) { startPod(); await waitServing(daemon); }
  const fresh = `${TOKEN}-rotated`;
  projectToken(fresh);
  await double('POST', `/__double/token?value=${encodeURIComponent(fresh)}`);
  await double('POST', '/__double/drop-watches'); // every watch reconnects, with whatever token it has
  await kubeService('late', '10.96.0.80', [topo.pods[0].ip]);
  const who = await waitFor('the Service created after the rotation', async () => { const r = await curl(topo, topo.ns.client, 'http://10.96.0.80/', { timeout: 2 }); return r.code === 0 && r.body.trim(); }, 60000).catch(() => null);
  t.is(who, 'pod-b', daemonLog.text.split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-5).join('\n'));
  // kubectl edit (the Service's port 80 -> 81), then kubectl delete of its slice and of itself
  const svc = await double('GET', `${SVC}/late`);
  svc.spec.ports[0].port = 81;
  await double('PUT', `${SVC}/late`, svc);
  const moved = await waitFor('the edited port', async () => (await curl(topo, topo.ns.client, 'http://10.96.0.80:81/', { timeout: 2 })).code === 0, 20000).catch(() => false);
  t.true(moved, 'served on the new port');
  t.not((await curl(topo, topo.ns.client, 'http://10.96.0.80:80/', { timeout: 2 })).code, 0, 'the old port is not');
  await double('DELETE', `${EPS}/late-1`);
  const refused = await waitFor('no endpoints: refused', async () => (await curl(topo, topo.ns.client, 'http://10.96.0.80:81/', { timeout: 2 })).code === 7, 20000).catch(() => false);
  t.true(refused, 'without endpoints a connection is refused (TCP reset), as kube-proxy rejects');
  await double('DELETE', `${SVC}/late`);
  const gone = await waitFor('the Service gone', async () => !/\blate\b/.test((await runWdp(['get', 'services'], `unix:${apiSock}`)).stdout), 20000).catch(() => false);
  t.true(gone);
});

serial('pods started together (a node booting, a Deployment scaled up): the runtime\'s concurrent ADDs all attach, each pod is served through one Service; their concurrent DELs all detach', async (t) => {
  const { list, entry, plugin } = await cniSetup();
  const { lab } = topo;
  const N = 10;
  const burst = Array.from({ length: N }, (_, i) => {
    const ns = lab.namespace(`cb${i}`);
    const ip = `10.244.1.${100 + i}`;
    const { hostIf, result } = ptpPod(ns, ip, list.plugins[0].ipam.subnet, list.plugins[0].ipam.routes, 10 + i);
    return { ns, ip, hostIf, result, id: `ctr-wnb${i}-${process.pid}`, name: `burst-${i}` };
  });
  const adds = await Promise.all(burst.map((b) => runtimeCall(plugin, 'ADD', list, entry, { id: b.id, netns: b.ns, prevResult: b.result })));
  adds.forEach((a, i) => t.is(a.code, 0, `ADD ${i}: ${JSON.stringify(a.out)} ${a.stderr}`));
  const ports = JSON.parse((await runWdp(['get', 'ports', '-o', 'json'], `unix:${apiSock}`)).stdout);
  const items = Array.isArray(ports) ? ports : ports.items ?? ports.ports;
  const mine = items.filter((p) => burst.some((b) => b.hostIf === p.ifname));
  t.is(mine.length, N, 'a port per pod');
  t.is(new Set(mine.map((p) => p.index)).size, N, 'each its own index');
  for (const b of burst) await startServer(topo, b.ns, b.name);
  await kubeService('burst', '10.96.0.90', burst.map((b) => b.ip));
  await waitFor('the burst Service', async () => (await curl(topo, topo.ns.client, 'http://10.96.0.90/', { timeout: 2 })).code === 0, 20000);
  const answers = await httpMany(topo, topo.ns.client, 'http://10.96.0.90/', 120, { timeoutMs: 2000 });
  t.deepEqual([...new Set(answers.map((a) => a.pod || a.error))].sort(), burst.map((b) => b.name).sort(), 'every pod answers, nothing fails');
  const dels = await Promise.all(burst.map((b) => runtimeCall(plugin, 'DEL', list, entry, { id: b.id, netns: b.ns })));
  dels.forEach((d, i) => t.is(d.code, 0, `DEL ${i}: ${JSON.stringify(d.out)}`));
  const after = await runWdp(['get', 'ports'], `unix:${apiSock}`);
  t.false(burst.some((b) => after.stdout.includes(b.hostIf)), after.stdout);
  const rules = lab.exec(topo.ns.dp, NFT, ['list', 'ruleset']).stdout;
  t.false(burst.some((b) => rules.includes(b.hostIf)), 'every veth handed back to the kernel');
});

serial('a dual-stack pod (ptp with an IPv6 range too, IPv6 on at the veth\'s host end as on a node): ADD leaves its host end no address and no route of either family — /proc/sys read-only in the DaemonSet\'s container', async (t) => {
  const { list, entry, plugin } = await cniSetup();
  const { lab } = topo;
  const ns = lab.namespace('cd');
  const routes = [...list.plugins[0].ipam.routes, { dst: '::/0' }];
  const { hostIf, result } = ptpPod(ns, '10.244.1.30', list.plugins[0].ipam.subnet, routes, 30, { ip6: 'fd00:244:1::1e', subnet6: 'fd00:244:1::/64' });
  t.regex(lab.exec(topo.ns.dp, 'ip', ['-6', 'route', 'show', 'dev', hostIf]).stdout, /fd00:244:1::1e/, 'ptp\'s host route to the pod');
  const id = `ctr-wnd-${process.pid}`;
  const add = await runtimeCall(plugin, 'ADD', list, entry, { id, netns: ns, prevResult: result });
  t.is(add.code, 0, JSON.stringify(add.out));
  for (const fam of ['-4', '-6']) {
    t.is(lab.exec(topo.ns.dp, 'ip', [fam, '-o', 'addr', 'show', 'dev', hostIf]).stdout, '', `no ${fam} address on ${hostIf}`);
    t.is(lab.exec(topo.ns.dp, 'ip', [fam, 'route', 'show', 'dev', hostIf]).stdout, '', `no ${fam} route through ${hostIf}: the node's traffic to the pod goes through wdp`);
  }
  const del = await runtimeCall(plugin, 'DEL', list, entry, { id, netns: ns });
  t.is(del.code, 0, JSON.stringify(del.out));
});

// ---- deploy/host-port/: the overlay that gives the node's own stack its path through wdp ----------

/** The installed plugin on the test's host (install-cni run when a test before has not). */
async function installedOnHost() {
  const host = join(topo.dir, 'host');
  if (!existsSync(join(host, 'opt/cni/bin/wdp-cni'))) {
    mkdirSync(join(host, 'etc/cni/net.d'), { recursive: true });
    const l = docsConflist();
    writeFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), JSON.stringify({ ...l, plugins: l.plugins.filter((p) => p.type !== 'wdp-cni') }));
    const r = await runInstallCni(host);
    if (r.code !== 0) throw new Error(`install-cni: ${r.stderr}`);
  }
  return { host, list: JSON.parse(readFileSync(join(host, 'etc/cni/net.d/10-pods.conflist'), 'utf8')) };
}

serial('deploy/host-port/ (kubectl apply -k): its daemon, privileged, moves the NIC\'s network to the host port — the kubelet probes a CNI pod by its IP, a hostNetwork client reaches its ClusterIP, the node reaches the outside; a stop gives the NIC its network back; after a SIGKILL of the pod the next start takes the node\'s network as saved', async (t) => {
  // the overlay as kubectl apply -k builds it (its references: test walk-node-daemonset-manifests)
  const objects = kustomize(join(ROOT, 'deploy/host-port'));
  const [hds] = objects.filter((o) => o.kind === 'DaemonSet');
  const [hcm] = objects.filter((o) => o.kind === 'ConfigMap');
  const c = hds.spec.template.spec.containers.find((x) => x.name === 'wdp');
  const installer = (d) => d.spec.template.spec.containers.find((x) => x.name === 'install-cni');
  t.deepEqual(installer(hds), installer(ds), 'the CNI plugin installed as by deploy/');
  const at = (flag) => c.command[c.command.indexOf(flag) + 1];

  // the node: deploy/'s daemon stopped; the NIC the ConfigMap names (the remote namespace's veth)
  // with the node's address and default route, its router behind it
  if (daemon && daemon.exitCode === null) { daemon.kill('SIGTERM'); await new Promise((r) => daemon.once('exit', r)); }
  const { lab } = topo;
  const tmpl = parseYaml(hcm.data['wdp.yaml']);
  const nic = tmpl.ports.find((p) => p.role === 'uplink').ifname;
  lab.exec(topo.ns.dp, 'ip', ['link', 'set', 'r0', 'name', nic]);
  lab.sysctl(topo.ns.dp, `net.ipv6.conf.${nic}.disable_ipv6`, '0');
  // dual-stack: an IPv4 and an IPv6 address, a default route of each family via the router
  const node6 = 'fd00:100::2/64';
  lab.addr(topo.ns.dp, nic, `${NODE_IP}/24`);
  lab.addr(topo.ns.dp, nic, node6);
  lab.route(topo.ns.dp, 'default', '192.168.100.1');
  lab.route(topo.ns.dp, 'default', 'fd00:100::1');
  lab.addr(topo.ns.remote, 'eth0', '192.168.100.1/24'); // the router
  lab.addr(topo.ns.remote, 'eth0', 'fd00:100::1/64');
  await startServer(topo, topo.ns.remote, 'outside');
  /** The node's addresses on the NIC, and the default routes (the first five words: "default via GW dev IF"). */
  const nicState = () => {
    const a = lab.exec(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', nic, 'scope', 'global']).stdout;
    const route = (fam) => lab.exec(topo.ns.dp, 'ip', [fam, 'route', 'show', 'default']).stdout.trim().split(/\s+/).slice(0, 5).join(' ');
    return { addrs: [`${NODE_IP}/24`, node6].filter((x) => a.includes(` ${x} `)), routes: [route('-4'), route('-6')] };
  };
  const onNic = { addrs: [`${NODE_IP}/24`, node6], routes: [`default via 192.168.100.1 dev ${nic}`, `default via fd00:100::1 dev ${nic}`] };
  t.deepEqual(nicState(), onNic);
  // host paths: the test's directories (as for deploy/'s daemon)
  const stateDir = join(topo.dir, 'state-host-port');
  mkdirSync(stateDir);
  Object.assign(tmpl, { stateDir, api: { ...tmpl.api, listen: `unix:${apiSock}` } });
  const template = join(topo.dir, 'host-port-template.yaml');
  writeFileSync(template, stringify(tmpl));
  const paths = { [at('--template')]: template, [at('--config')]: join(topo.dir, 'host-port.yaml'), [at('--saved')]: join(stateDir, 'host-nic.json') };
  // the API server behind the NIC, as a control plane on another host: from here on the one the
  // test changes objects in (the Node, the Service)
  const remote = await startDoubleInNs(topo, { ns: topo.ns.remote, listen: `${API_ON_NIC}:0`, rbac: join(ROOT, 'deploy/base/clusterrole.yaml'), tls: join(topo.dir, 'tls'), token: readFileSync(join(saDir, 'token'), 'utf8') });
  double = remote.double;
  // a dual-stack Node: the kubelet's --node-ip names both of the NIC's addresses (an address of
  // the NIC that is not the Node's is carried by the host port, but not reached through wdp)
  await double('POST', '/api/v1/nodes', {
    metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
    status: { addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'InternalIP', address: node6.split('/')[0] }, { type: 'Hostname', address: 'node-a' }] },
  });
  const start = async () => { const d = startPod(c, paths, remote.url); await waitServing(d); return d; };
  /** The node's own connection to a server outside, over IPv4 and IPv6: what answers each. */
  const outside = async () => Promise.all(['http://192.168.100.10:8080/', 'http://[fd00:100::10]:8080/'].map((u) =>
    waitFor(`the node's stack: ${u}`, async () => { const r = await curl(topo, topo.ns.dp, u, { timeout: 2 }); return r.code === 0 && r.body.trim(); }, 10000).catch(() => null)));

  await start();
  await waitFor('the NIC flushed once the host port has the node\'s network', () => !nicState().addrs.length);
  t.deepEqual(daemonLog.text.split('\n').filter((l) => /"level":(40|50|60)/.test(l)), [], 'no warning, no error');
  const onTap = lab.exec(topo.ns.dp, 'ip', ['-o', 'addr', 'show', 'dev', 'wdp-host']).stdout;
  t.true([`${NODE_IP}/24`, node6].every((a) => onTap.includes(` ${a} `)), `the node's addresses on the host port: ${onTap}`);
  // a pod attached by the installed plugin; its Service
  const { host, list } = await installedOnHost();
  const entry = { ...list.plugins.find((p) => p.type === 'wdp-cni'), server: `unix:${apiSock}` };
  const ns = lab.namespace('hp');
  const podIp = '10.244.1.50';
  const { result } = ptpPod(ns, podIp, list.plugins[0].ipam.subnet, list.plugins[0].ipam.routes, 50);
  const add = await hostRuntimeCall(host, 'ADD', list, entry, { id: `ctr-wnh-${process.pid}`, netns: ns, prevResult: result });
  t.is(add.code, 0, `ADD: ${JSON.stringify(add.out)} ${add.stderr}`);
  await startServer(topo, ns, 'hp-pod');
  await kubeService('hp', '10.96.0.75', [podIp]);
  const fromNode = async (url) => waitFor(`the node's stack: ${url}`, async () => { const r = await curl(topo, topo.ns.dp, url, { timeout: 2 }); return r.code === 0 && r.body.trim(); }).catch(() => null);
  t.is(await fromNode(`http://${podIp}:8080/`), 'hp-pod', 'the kubelet\'s probe of the pod by its IP');
  t.is(await fromNode('http://10.96.0.75/'), 'hp-pod', 'a hostNetwork client through the ClusterIP');
  t.deepEqual(await outside(), ['outside', 'outside'], 'the node\'s own connections to the outside, through the host port');
  // a stop (the DaemonSet rolled, the pod deleted): the NIC has the node's network back
  const grace = hds.spec.template.spec.terminationGracePeriodSeconds;
  let exited = new Promise((r) => daemon.once('exit', (code, sig) => r({ code, sig })));
  daemon.kill('SIGTERM');
  t.deepEqual(await within(exited, grace * 1000, () => ({ late: true })), { code: 0, sig: null });
  t.deepEqual(nicState(), onNic, 'the NIC\'s addresses and default routes back');
  t.false(lab.exec(topo.ns.dp, NFT, ['list', 'tables']).stdout.includes('netdev wdp'), 'the kernel no longer kept off the NIC');
  t.deepEqual(await outside(), ['outside', 'outside'], 'the node reaches the outside through its NIC');
  // SIGKILL of every process of the pod (the kubelet after the grace period, the OOM killer): the
  // NIC is left without the node's network; the next start takes it as saved
  await start();
  await waitFor('the NIC flushed', () => !nicState().addrs.length);
  const children = readFileSync(`/proc/${daemon.pid}/task/${daemon.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  exited = new Promise((r) => daemon.once('exit', r));
  for (const pid of [daemon.pid, ...children]) process.kill(pid, 'SIGKILL');
  await exited;
  await waitFor('the killed daemon gone', () => children.every((pid) => !existsSync(`/proc/${pid}`)));
  t.deepEqual(nicState().addrs, [], 'nothing gave the NIC its addresses back');
  await start();
  t.regex(daemonLog.text, /the NIC has no address: the node's network as saved/);
  t.is(await fromNode('http://10.96.0.75/'), 'hp-pod', 'the node\'s stack through the host port again');
  t.deepEqual(await outside(), ['outside', 'outside']);
  exited = new Promise((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  t.is(await exited, 0);
  t.deepEqual(nicState(), onNic);
});
