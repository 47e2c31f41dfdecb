// deploy/ read as an operator replacing kube-proxy reads it, without root and without a cluster:
// * the ClusterRole against the API paths the client code itself names — derived from src/kube/
//   (every `*_PATH` constant, how each is used: an informer's list and watch, a GET by name),
//   not from a copy in this test: a resource the code starts reading without a grant fails here
//   (deploy-manifests runs the watcher against a double enforcing the role; this catches a path
//   that run does not exercise), and the role's API groups/versions are the GA ones;
// * the DaemonSet's command as `wdp start` parses it (its own commander definition: an option it
//   does not know, or a missing required one, is refused) and the ConfigMap's config as the
//   daemon loads it (strict: an unknown key is refused), completed by those arguments;
// * what that config and the pod spec must agree on: the state directory on a host path (it
//   outlives the pod), the API socket on a host path (the node's CLI, the CNI plugin), kube-proxy's
//   healthz 10256 / metrics 127.0.0.1:10249 and the probes, the ports the capabilities allow;
//   and kube-proxy's DaemonSet conventions (system-node-critical, tolerate everything, one node
//   at a time and never two pods on one node, the node's own DNS resolver).
import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Command } from 'commander';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { kustomize } from './lib/kustomize.js';
import { registerDaemonCommands } from '../dist/src/daemon/cli.js';
import { loadConfigFile } from '../dist/src/daemon/config.js';
import { completeTemplate } from '../deploy/host-port/host-port-config.mjs';
import { ProxyHealth } from '../dist/src/kube/healthz.js';

const ROOT = new URL('..', import.meta.url).pathname;
const KUBE_SRC = join(ROOT, 'src/kube');
const BUILDS = ['deploy', 'deploy/host-port'];

/** Every file under `dir` (relative paths). */
const filesUnder = (dir, rel = '') => readdirSync(join(dir, rel), { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? filesUnder(dir, join(rel, e.name)) : [join(rel, e.name)]));

/** The Kubernetes API requests the client code makes, read from src/kube/*.ts: each exported
 * `NAME_PATH = '/api...'` constant as {group, version, resource}, with the verbs its uses imply —
 * `path: NAME_PATH` (a ResilientInformer: list and watch), `${NAME_PATH}/${name}` in a getJson
 * (get) — and every other '/api/...' or '/apis/...' literal of those files (there should be
 * none: a path written out elsewhere would escape this derivation). */
function apiRequestsOfSource() {
  const files = readdirSync(KUBE_SRC).filter((f) => f.endsWith('.ts')).map((f) => [f, readFileSync(join(KUBE_SRC, f), 'utf8')]);
  const consts = new Map();
  for (const [f, text] of files) {
    for (const [, name, path] of text.matchAll(/export const (\w+_PATH) = '([^']+)'/g)) consts.set(name, { path, file: f, verbs: new Set() });
  }
  const stray = [];
  for (const [f, text] of files) {
    for (const [name, c] of consts) {
      if (new RegExp(`\\bpath: ${name}\\b`).test(text)) { c.verbs.add('list'); c.verbs.add('watch'); }
      if (new RegExp(`getJson\\([^)]*\\$\\{${name}\\}/`).test(text)) c.verbs.add('get');
    }
    for (const [lit] of text.matchAll(/['`]\/apis?\/[^'`]*['`]/g)) {
      if (![...consts.values()].some((c) => lit.slice(1, -1) === c.path)) stray.push(`${f}: ${lit}`);
    }
  }
  const requests = [...consts].map(([name, c]) => {
    const m = /^\/api\/(v1)\/([a-z]+)$/.exec(c.path) ?? /^\/apis\/([a-z0-9.-]+)\/(v[0-9a-z]+)\/([a-z]+)$/.exec(c.path);
    if (!m) throw new Error(`${c.file}: ${name} = ${c.path} is not a cluster-wide collection path`);
    const [group, version, resource] = m.length === 3 ? ['', m[1], m[2]] : [m[1], m[2], m[3]];
    return { name, path: c.path, group, version, resource, verbs: [...c.verbs].sort() };
  });
  // every method the client sends: GET only (client.ts's requestOptions is the one place a
  // request's method is set)
  const methods = files.flatMap(([, text]) => [...text.matchAll(/method: '([A-Z]+)'/g)].map((m) => m[1]));
  return { requests, stray, methods };
}

test('the client code\'s API requests, derived from src/kube/: GETs only, each path a named constant, each constant used (list+watch or get), GA API versions', (t) => {
  const { requests, stray, methods } = apiRequestsOfSource();
  t.deepEqual([...new Set(methods)], ['GET'], 'the client only reads');
  t.deepEqual(stray, [], 'no API path written outside its constant');
  t.true(requests.length >= 4, requests.map((r) => r.path).join(', '));
  for (const r of requests) {
    t.true(r.verbs.length > 0, `${r.name} is requested somewhere`);
    t.regex(r.version, /^v\d+$/, `${r.path}: a GA version (no beta, no alpha)`);
  }
  // what kube-proxy 1.33+ reads: the GA versions of EndpointSlice and ServiceCIDR
  const by = Object.fromEntries(requests.map((r) => [r.resource, r]));
  t.is(by.endpointslices?.group, 'discovery.k8s.io');
  t.is(by.servicecidrs?.path, '/apis/networking.k8s.io/v1/servicecidrs');
  t.deepEqual(by.nodes?.verbs, ['get', 'list', 'watch'], 'its Node: read by name at start, then watched');
});

test('every YAML document under deploy/ parses without error or warning, and names a current API version (no beta or alpha, but kustomize\'s own)', (t) => {
  const yamls = filesUnder(join(ROOT, 'deploy')).filter((f) => /\.ya?ml$/.test(f));
  t.true(yamls.length >= 8, yamls.join(', '));
  const CURRENT = new Set(['v1', 'apps/v1', 'rbac.authorization.k8s.io/v1', 'kustomize.config.k8s.io/v1beta1']);
  for (const f of yamls) {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', f), 'utf8'));
    for (const d of docs) {
      t.deepEqual([...d.errors, ...d.warnings].map((e) => e.message), [], f);
      const o = d.toJS();
      t.true(CURRENT.has(o?.apiVersion), `${f}: apiVersion ${o?.apiVersion}`);
      t.is(o.apiVersion === 'kustomize.config.k8s.io/v1beta1', o.kind === 'Kustomization', `${f}: only a Kustomization is v1beta1`);
    }
  }
});

for (const dir of BUILDS) {
  const objects = kustomize(join(ROOT, dir));
  const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
  const [role] = objects.filter((o) => o.kind === 'ClusterRole');
  const [cm] = objects.filter((o) => o.kind === 'ConfigMap');
  const pod = ds.spec.template.spec;
  const wdp = pod.containers.find((c) => c.name === 'wdp');

  test(`${dir}/: the ClusterRole grants every request the client code makes (derived from src/kube/), in the right API group, and nothing more`, (t) => {
    const { requests } = apiRequestsOfSource();
    const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`)))));
    const needed = new Set(requests.flatMap((r) => r.verbs.map((v) => `${v} ${r.group}/${r.resource}`)));
    t.deepEqual([...needed].filter((n) => !granted.has(n)).sort(), [], 'every request granted');
    t.deepEqual([...granted].filter((g) => !needed.has(g)).sort(), [], 'every grant requested (no write verb, no wildcard)');
    for (const r of role.rules) t.deepEqual(r.nonResourceURLs ?? [], [], 'no non-resource URL');
  });

  test(`${dir}/: the DaemonSet's command is one \`wdp start\` accepts, and the ConfigMap's config, with those arguments, is one the daemon loads`, async (t) => {
    // the kubelet expands $(NODE_NAME) from the container's env: the pod's node
    const env = new Map(wdp.env.map((e) => [e.name, e]));
    t.is(env.get('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', 'NODE_NAME is the pod\'s node');
    const argv = wdp.command.map((a) => a.replace('$(NODE_NAME)', 'node-x'));
    // the daemon's argv: from `node <wdp.js> start` on (deploy/host-port/ runs it after `--`)
    const at = argv.findIndex((a, i) => a === 'start' && /\/bin\/wdp\.js$/.test(argv[i - 1] ?? '') && argv[i - 2] === 'node');
    t.true(at > 1, `node /opt/wdp/bin/wdp.js start in ${argv.join(' ')}`);
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerDaemonCommands(program);
    const start = program.commands.find((c) => c.name() === 'start').exitOverride();
    let opts;
    start.action((o) => { opts = o; });
    await program.parseAsync(argv.slice(at), { from: 'user' });
    t.truthy(opts, 'parsed');
    t.is(opts.hostnameOverride, 'node-x', '--hostname-override $(NODE_NAME)');
    // a refusal is an error here (the check can fail): an option `wdp start` does not know
    await t.throwsAsync(program.parseAsync([...argv.slice(at), '--no-such-flag'], { from: 'user' }), { message: /unknown option/ });

    // the config file: the ConfigMap key it names (deploy/host-port/: the template host-port.mjs
    // completes into the --config it passes on)
    const template = parseYaml(cm.data['wdp.yaml']);
    const raw = dir === 'deploy' ? template : completeTemplate(template, { addresses: ['192.168.100.2/24'], gateways: ['192.168.100.1'] });
    if (dir === 'deploy') {
      const mount = wdp.volumeMounts.find((m) => opts.config.startsWith(`${m.mountPath}/`));
      t.is(pod.volumes.find((v) => v.name === mount?.name)?.configMap?.name, cm.metadata.name, `${opts.config} is on the ConfigMap's volume`);
      t.is(posix.relative(mount.mountPath, opts.config), 'wdp.yaml');
    }
    const tmp = mkdtempSync(join(tmpdir(), 'wdp-deploy-operator-'));
    t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
    const file = join(tmp, 'wdp.yaml');
    writeFileSync(file, JSON.stringify(raw));
    // as `wdp start` merges --hostname-override before validation ("sets kubernetes.hostnameOverride")
    const cfg = loadConfigFile(file, (r) => { r.kubernetes = { ...r.kubernetes, hostnameOverride: opts.hostnameOverride }; });
    t.is(cfg.node.name, 'node-x', 'the node is the pod\'s node');
    t.truthy(cfg.kubernetes, 'watching the API server');
    t.is(cfg.kubernetes.kubeconfig, undefined, 'in-cluster credentials: the pod\'s service account');
    t.is(pod.serviceAccountName, objects.find((o) => o.kind === 'ServiceAccount').metadata.name);

    // the state directory: on a host path of the same path, writable (the saved state outlives the pod)
    const stateMount = wdp.volumeMounts.find((m) => m.mountPath === cfg.stateDir);
    t.truthy(stateMount, `stateDir ${cfg.stateDir} is a mount`);
    t.not(stateMount.readOnly, true);
    const stateVol = pod.volumes.find((v) => v.name === stateMount.name);
    t.is(stateVol.hostPath?.path, cfg.stateDir, 'a host path');
    t.is(stateVol.hostPath?.type, 'DirectoryOrCreate');
    // the API socket: on a host path (the CLI on the node, the CNI plugin the runtime runs)
    const sock = cfg.api.listen.replace(/^unix:/, '');
    t.true(cfg.api.listen.startsWith('unix:') || sock.startsWith('/'), 'a unix socket');
    const runMount = wdp.volumeMounts.find((m) => sock.startsWith(`${m.mountPath}/`));
    t.truthy(pod.volumes.find((v) => v.name === runMount?.name)?.hostPath, `${sock} is on a host path`);

    // kube-proxy's ports: healthz 0.0.0.0:10256 (kubelet and load balancers), metrics on loopback 10249
    t.is(cfg.kubernetes.healthzBindAddress, '0.0.0.0:10256');
    t.is(cfg.kubernetes.metricsBindAddress, '127.0.0.1:10249');
    const port = 10256;
    for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      t.truthy(wdp[p], `${p}`);
      t.is(wdp[p].httpGet.port, port, `${p} on healthz`);
      t.is(wdp[p].httpGet.host, '127.0.0.1', `${p}: the kubelet probes the host's network (hostNetwork)`);
    }
    t.is(wdp.startupProbe.httpGet.path, '/livez');
    // /livez listens only after the restore, which follows the wait for the Node: the startup
    // probe's budget covers that wait with room, and the liveness probe waits for it
    t.true(wdp.startupProbe.periodSeconds * wdp.startupProbe.failureThreshold >= cfg.kubernetes.nodeWaitSeconds + 120, 'the startup budget');
    t.falsy(wdp.livenessProbe.initialDelaySeconds, 'the startup probe holds the liveness probe');
    // what the readiness probe's path answers (src/kube/healthz.ts): not ready until the node
    // forwards (the rollout's gate), and still ready while the Node is being deleted or tainted
    // ToBeDeletedByClusterAutoscaler (that 503 is the load balancers' signal: as readiness it
    // would hold the rollout for as long as a node is drained)
    const answer = (forwarding, eligible) => {
      const h = new ProxyHealth(60_000, () => 1000, () => forwarding);
      h.nodeEligible = eligible;
      return h.answer(wdp.readinessProbe.httpGet.path === '/healthz')[0];
    };
    t.true(['/healthz', '/livez'].includes(wdp.readinessProbe.httpGet.path));
    t.is(answer(false, true), 503, 'not ready before the node forwards');
    t.is(answer(true, true), 200);
    t.is(answer(true, false), 200, 'ready while the Node is being deleted');

    // the ports the container may open: AF_PACKET needs NET_RAW; a TAP needs /dev/net/tun, which
    // only a privileged container has here
    const sc = wdp.securityContext;
    if (sc.privileged !== true) {
      t.deepEqual(cfg.ports.filter((p) => p.type !== 'afpacket').map((p) => p.name), [], 'AF_PACKET ports only without privilege');
      t.deepEqual([...sc.capabilities.add].sort(), ['NET_ADMIN', 'NET_RAW']);
      t.deepEqual(sc.capabilities.drop, ['ALL']);
    }
  });

  test(`${dir}/: the pod as kube-proxy's DaemonSet runs: host network, the node's DNS resolver, system-node-critical, every taint tolerated, one node at a time and never two pods on a node`, (t) => {
    t.true(pod.hostNetwork);
    // ClusterFirstWithHostNet sends the pod's lookups to the cluster DNS Service's cluster IP,
    // which this proxy is to serve: Default (or ClusterFirst, the same for a hostNetwork pod) is
    // the node's own resolver, as kube-proxy has
    t.true(['Default', 'ClusterFirst', undefined].includes(pod.dnsPolicy), `dnsPolicy ${pod.dnsPolicy}`);
    t.is(pod.priorityClassName, 'system-node-critical');
    t.true((pod.tolerations ?? []).some((x) => x.operator === 'Exists' && !x.key && !x.effect), 'tolerates every taint (NoSchedule, NoExecute, the not-ready and unreachable ones)');
    t.is(ds.metadata.namespace, 'kube-system');
    const u = ds.spec.updateStrategy;
    t.is(u.type, 'RollingUpdate');
    t.is(u.rollingUpdate?.maxUnavailable ?? 1, 1, 'one node at a time');
    t.is(u.rollingUpdate?.maxSurge ?? 0, 0, 'never two pods on one node: the healthz and metrics ports, the state lock, the interfaces');
    t.true(pod.terminationGracePeriodSeconds >= 30, 'a clean stop writes its checkpoint and table images');
  });
}
