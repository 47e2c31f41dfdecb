// deploy/ checked as the API server would take it, without one: `kubectl kustomize` (where kubectl
// is installed) builds both kustomizations as test/lib/kustomize.js does; every object of both
// builds is decoded strictly against the Kubernetes API types (the OpenAPI models of
// @kubernetes/client-node: unknown fields, wrong types, missing required fields) and checked
// against the API server's validation rules these manifests meet (names, host paths, capabilities,
// probes, selectors, quantities, RBAC verbs); and the ClusterRole grants exactly what the watcher
// and the start's read of its Node ask for, run against the API-server double enforcing it.
import test from 'ava';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { kustomize } from './lib/kustomize.js';
import { startKube, until, apiService, apiSlice, apiNode, memoryLogger } from './lib/kube-fixture.js';
import { readNodeOnce } from '../dist/src/kube/watcher.js';

const ROOT = new URL('..', import.meta.url).pathname;
const MODELS = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen/models');
const BUILDS = ['deploy', 'deploy/host-port'];

/** The fields of an API type that its OpenAPI schema requires (the model's .d.ts: no `?`). */
const requiredCache = new Map();
function requiredFields(type) {
  if (!requiredCache.has(type)) {
    const dts = readFileSync(join(MODELS, `${type}.d.ts`), 'utf8');
    requiredCache.set(type, [...dts.matchAll(/^\s+'(\w+)': /gm)].map((m) => m[1]));
  }
  return requiredCache.get(type);
}

/** Strict decoding of `value` as the API type `type` (kubectl apply --validate=strict's checks):
 * problems as "path: what". */
function decode(value, type, path, problems) {
  const where = path || '(object)';
  const is = (ok, what) => { if (!ok) problems.push(`${where}: ${what}, not ${JSON.stringify(value)}`); return ok; };
  if (type === 'any') return;
  if (type === 'string' || type === 'Date') { is(typeof value === 'string', 'a string'); return; }
  if (type === 'number') { is(Number.isInteger(value), 'an integer'); return; }
  if (type === 'boolean') { is(typeof value === 'boolean', 'a boolean'); return; }
  if (type === 'IntOrString') { is(Number.isInteger(value) || typeof value === 'string', 'an integer or a string'); return; }
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) { if (is(Array.isArray(value), 'a list')) value.forEach((v, i) => decode(v, arr[1], `${path}[${i}]`, problems)); return; }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
  if (map) { if (is(isObject, 'a map')) for (const [k, v] of Object.entries(value)) decode(v, map[1], `${path}.${k}`, problems); return; }
  const model = k8s[type];
  if (!model?.getAttributeTypeMap) { problems.push(`${where}: no API type ${type}`); return; }
  if (!is(isObject, `an object (${type})`)) return;
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) problems.push(`${path ? `${path}.` : ''}${k}: unknown field (${type})`);
    else decode(v, fields.get(k), path ? `${path}.${k}` : k, problems);
  }
  for (const k of requiredFields(type)) if (!(k in value)) problems.push(`${path ? `${path}.` : ''}${k}: required (${type})`);
}

const API_VERSION = { ServiceAccount: 'v1', ConfigMap: 'v1', DaemonSet: 'apps/v1', ClusterRole: 'rbac.authorization.k8s.io/v1', ClusterRoleBinding: 'rbac.authorization.k8s.io/v1' };
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/;
// capability(7) names as the container runtimes take them (without CAP_)
const CAPABILITIES = new Set(['ALL', 'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM']);
const HOST_PATH_TYPES = new Set(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']);
const RBAC_VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', '*']);

/** The API server's validation rules (k8s.io/kubernetes pkg/apis/.../validation) these manifests meet. */
function validate(o, problems) {
  const p = (path, what) => problems.push(`${path}: ${what}`);
  if (!DNS_SUBDOMAIN.test(o.metadata?.name ?? '')) p('metadata.name', 'not a DNS subdomain');
  if (o.kind === 'DaemonSet') {
    const spec = o.spec, pod = spec.template.spec;
    const labels = spec.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {})) if (labels[k] !== v) p('spec.selector', `does not match the template's labels (${k})`);
    if (!['RollingUpdate', 'OnDelete'].includes(spec.updateStrategy?.type ?? 'RollingUpdate')) p('spec.updateStrategy.type', 'RollingUpdate or OnDelete');
    if (pod.priorityClassName === 'system-node-critical' && o.metadata.namespace !== 'kube-system') p('spec.template.spec.priorityClassName', 'system-node-critical only in kube-system');
    if (pod.dnsPolicy && !['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'].includes(pod.dnsPolicy)) p('dnsPolicy', pod.dnsPolicy);
    for (const [i, tol] of (pod.tolerations ?? []).entries()) {
      if (tol.operator === 'Exists' && tol.value) p(`tolerations[${i}]`, 'value must be empty when operator is Exists');
      if (tol.key === undefined && tol.operator !== 'Exists') p(`tolerations[${i}]`, 'an empty key needs operator Exists');
    }
    const volumes = new Map();
    for (const v of pod.volumes ?? []) {
      if (!DNS_LABEL.test(v.name)) p(`volumes ${v.name}`, 'not a DNS label');
      if (volumes.has(v.name)) p(`volumes ${v.name}`, 'duplicate');
      volumes.set(v.name, v);
      const sources = Object.keys(v).filter((k) => k !== 'name');
      if (sources.length !== 1) p(`volumes ${v.name}`, `exactly one volume source (${sources})`);
      if (v.hostPath) {
        if (!posix.isAbsolute(v.hostPath.path)) p(`volumes ${v.name}.hostPath.path`, 'absolute');
        if (!HOST_PATH_TYPES.has(v.hostPath.type ?? '')) p(`volumes ${v.name}.hostPath.type`, v.hostPath.type);
      }
    }
    const containers = [...pod.initContainers ?? [], ...pod.containers];
    const names = new Set();
    for (const c of containers) {
      const at = (f) => `containers ${c.name}.${f}`;
      if (!DNS_LABEL.test(c.name) || names.has(c.name)) p(at('name'), 'a unique DNS label');
      names.add(c.name);
      if (!c.image) p(at('image'), 'required in a pod template');
      if (c.imagePullPolicy && !['Always', 'IfNotPresent', 'Never'].includes(c.imagePullPolicy)) p(at('imagePullPolicy'), c.imagePullPolicy);
      const env = new Set((c.env ?? []).map((e) => e.name));
      for (const e of c.env ?? []) if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(e.name)) p(at(`env ${e.name}`), 'not a valid variable name');
      for (const a of [...c.command ?? [], ...c.args ?? []]) for (const [, ref] of a.matchAll(/\$\(([^)]+)\)/g)) if (!env.has(ref)) p(at('command'), `$(${ref}) is not an env of the container (left as written)`);
      const mounts = new Set();
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name)) p(at(`volumeMounts ${m.mountPath}`), `no volume ${m.name}`);
        if (!posix.isAbsolute(m.mountPath) || mounts.has(m.mountPath)) p(at(`volumeMounts ${m.mountPath}`), 'a unique absolute path');
        mounts.add(m.mountPath);
        if (m.mountPropagation && !['None', 'HostToContainer', 'Bidirectional'].includes(m.mountPropagation)) p(at('mountPropagation'), m.mountPropagation);
        if (m.mountPropagation === 'Bidirectional' && c.securityContext?.privileged !== true) p(at('mountPropagation'), 'Bidirectional needs a privileged container');
      }
      const sc = c.securityContext ?? {};
      if (sc.privileged === true && sc.allowPrivilegeEscalation === false) p(at('securityContext'), 'cannot set allowPrivilegeEscalation to false and privileged to true');
      for (const cap of [...sc.capabilities?.add ?? [], ...sc.capabilities?.drop ?? []]) if (!CAPABILITIES.has(cap)) p(at('securityContext.capabilities'), `unknown capability ${cap}`);
      for (const [kind, q] of Object.entries({ ...c.resources?.requests, ...c.resources?.limits })) if (!QUANTITY.test(String(q))) p(at(`resources ${kind}`), `not a quantity: ${q}`);
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        const pr = c[probe];
        if (!pr) continue;
        const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((h) => pr[h]);
        if (handlers.length !== 1) p(at(probe), 'exactly one handler');
        const port = pr.httpGet?.port ?? pr.tcpSocket?.port;
        if (port !== undefined && !(Number.isInteger(port) ? port >= 1 && port <= 65535 : /^[a-z0-9-]{1,15}$/.test(port))) p(at(`${probe}.port`), String(port));
        if (pr.httpGet && !String(pr.httpGet.path ?? '/').startsWith('/')) p(at(`${probe}.httpGet.path`), 'starts with /');
        if (probe !== 'readinessProbe' && (pr.successThreshold ?? 1) !== 1) p(at(`${probe}.successThreshold`), 'must be 1');
      }
    }
  }
  if (o.kind === 'ClusterRole') {
    for (const [i, r] of o.rules.entries()) {
      for (const v of r.verbs) if (!RBAC_VERBS.has(v)) p(`rules[${i}].verbs`, `unknown verb ${v}`);
      if (!r.apiGroups?.length || !r.resources?.length) p(`rules[${i}]`, 'apiGroups and resources (a non-resource rule has no place in this role)');
    }
  }
}

for (const dir of BUILDS) {
  const objects = kustomize(join(ROOT, dir));

  test(`kubectl apply -k ${dir}/: every object decodes strictly as its API type and passes the API server's validation`, (t) => {
    t.true(objects.length >= 5);
    for (const o of objects) {
      const problems = [];
      t.is(o.apiVersion, API_VERSION[o.kind], `${o.kind}: apiVersion`);
      decode(o, `V1${o.kind}`, '', problems);
      validate(o, problems);
      t.deepEqual(problems, [], `${dir}: ${o.kind} ${o.metadata?.name}`);
    }
    const [binding] = objects.filter((o) => o.kind === 'ClusterRoleBinding');
    t.truthy(objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === binding.roleRef.name), 'the binding names the ClusterRole of the build');
    t.is(binding.roleRef.apiGroup, 'rbac.authorization.k8s.io');
    const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
    for (const s of binding.subjects) {
      t.truthy(objects.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === s.name && o.metadata.namespace === s.namespace), `subject ${s.namespace}/${s.name}`);
    }
    t.is(ds.spec.template.spec.serviceAccountName, binding.subjects[0].name, 'the pod runs as the bound service account');
  });

  test(`kubectl kustomize ${dir}/ builds (and as test/lib/kustomize.js builds it)`, (t) => {
    const r = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', timeout: 60000 });
    if (r.error?.code === 'ENOENT') { t.pass('kubectl is not installed: the helper\'s build stands for it'); return; }
    t.is(r.status, 0, r.stderr);
    const built = parseAllDocuments(r.stdout).map((d) => d.toJS());
    const key = (o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    t.deepEqual(built.map(key).sort(), objects.map(key).sort());
    for (const o of built) t.deepEqual(objects.find((x) => key(x) === key(o)), o, key(o));
  });
}

test('the decoder refuses what the API server refuses: an unknown field, a wrong type, a missing required field', (t) => {
  const [ds] = kustomize(join(ROOT, 'deploy')).filter((o) => o.kind === 'DaemonSet');
  const bad = structuredClone(ds);
  bad.spec.template.spec.containers[0].livenessProbe.httpGet.prot = 1;
  bad.spec.template.spec.hostNetwork = 'true';
  delete bad.spec.selector;
  const problems = [];
  decode(bad, 'V1DaemonSet', '', problems);
  t.deepEqual(problems.sort(), [
    'selector: required (V1DaemonSetSpec)',
    'spec.template.spec.containers[0].livenessProbe.httpGet.prot: unknown field (V1HTTPGetAction)',
    'spec.template.spec.hostNetwork: a boolean, not "true"',
  ].map((x) => (x.startsWith('selector') ? `spec.${x}` : x)).sort());
});

test('deploy/base/clusterrole.yaml grants exactly what wdp asks the API server for: the watcher\'s lists and watches and the start\'s read of its Node, nothing refused, nothing unused', async (t) => {
  const role = parseYaml(readFileSync(join(ROOT, 'deploy/base/clusterrole.yaml'), 'utf8'));
  const k = await startKube(t, {
    double: { rbac: role.rules },
    seed: (d) => {
      d.create('services', apiService('a', '10.96.47.1'));
      d.create('endpointslices', apiSlice('a-1', 'a', ['10.244.47.1']));
      d.create('nodes', apiNode('node-a'));
    },
  });
  await until(() => k.compiler.serviceCount() === 1 && k.compiler.sliceCount() === 1 && k.double.watchers.size === 4, { what: 'listed, programmed and watching' });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(k.double.kubeconfig());
  t.truthy(await readNodeOnce(kc, 'node-a', memoryLogger().log), 'the start reads its Node');
  const asked = new Set(k.double.stats.requests.map((r) => `${r.verb} ${r.group}/${r.resource}`));
  t.is(k.double.stats.forbidden, 0, `nothing refused: ${[...asked]}`);
  const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`)))));
  t.deepEqual([...granted].sort(), [...asked].sort(), 'every grant is used, every request granted');
  t.false([...granted].some((g) => g.includes('*')), 'no wildcard');
});

test('deploy/: the DaemonSet\'s probes reach the ConfigMap\'s healthz listener; the CLI in the container finds the daemon\'s API socket', (t) => {
  for (const dir of BUILDS) {
    const objects = kustomize(join(ROOT, dir));
    const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
    const [cm] = objects.filter((o) => o.kind === 'ConfigMap');
    const cfg = parseYaml(cm.data['wdp.yaml']);
    const c = ds.spec.template.spec.containers.find((x) => x.name === 'wdp');
    const port = Number(cfg.kubernetes.healthzBindAddress.split(':').pop());
    t.is(c.livenessProbe.httpGet.port, port, `${dir}: liveness`);
    t.is(c.livenessProbe.httpGet.path, '/livez');
    t.truthy(c.readinessProbe, `${dir}: a readiness probe (the rollout waits for the restore; /healthz is 503 until the node forwards)`);
    t.is(c.readinessProbe.httpGet.port, port, `${dir}: readiness`);
    t.is(c.readinessProbe.httpGet.path, '/livez', 'not /healthz: its node eligibility would hold a rollout while a node is drained');
    const server = c.env.find((e) => e.name === 'WDP_SERVER')?.value;
    t.is(server, cfg.api.listen.startsWith('unix:') ? cfg.api.listen : `unix:${cfg.api.listen}`, `${dir}: WDP_SERVER is the API socket`);
  }
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  t.regex(dockerfile, /ln -s \/opt\/wdp\/bin\/wdp\.js \/usr\/local\/bin\/wdp\b/, 'the image has wdp on the PATH (README "Using it")');
  t.true(existsSync(join(ROOT, 'bin/wdp.js')));
});

test('deploy/base/kustomization.yaml\'s commented images: entry, uncommented as running.md says, names the image of both builds', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-deploy-images-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'deploy'), join(dir, 'deploy'), { recursive: true });
  const kf = join(dir, 'deploy/base/kustomization.yaml');
  const text = readFileSync(kf, 'utf8');
  t.regex(text, /^# images:\n#   - \{name: wdp, newName: registry\.example\.com\/wdp, newTag: 0\.1\.0\}$/m);
  writeFileSync(kf, text.replace(/^# (images:|  - \{name: wdp)/gm, '$1'));
  for (const build of ['deploy', 'deploy/host-port']) {
    const objects = kustomize(join(dir, build));
    t.truthy(objects.length);
    const r = spawnSync('kubectl', ['kustomize', join(dir, build)], { encoding: 'utf8', timeout: 60000 });
    if (r.error?.code === 'ENOENT') { t.pass('kubectl is not installed'); continue; }
    t.is(r.status, 0, r.stderr);
    const [ds] = parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((o) => o.kind === 'DaemonSet');
    t.deepEqual([...new Set(ds.spec.template.spec.containers.map((c) => c.image))], ['registry.example.com/wdp:0.1.0'], build);
  }
});
