// deploy/ as an operator applies it: the ConfigMap's wdp.yaml read by the daemon's own loader with
// the DaemonSet's command-line flags, and the DaemonSet's mounts, probe and command consistent
// with that config; every `wdp ...` command line the manifests' comments suggest is one the CLI
// takes (flags included).
import test from 'ava';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, posix } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../dist/src/daemon/config.js';

const ROOT = new URL('../', import.meta.url).pathname;
const WDP = join(ROOT, 'bin/wdp.js');
const docs = (f) => parseAllDocuments(readFileSync(join(ROOT, 'deploy/base', f), 'utf8')).map((d) => d.toJS());
const [cm] = docs('configmap.yaml');
const [ds] = docs('daemonset.yaml');
const pod = ds.spec.template.spec;
const container = pod.containers[0];

/** The DaemonSet's command with $(NODE_NAME) expanded as the kubelet does. */
function command(nodeName) {
  return container.command.map((a) => a.replace('$(NODE_NAME)', nodeName));
}

/** The file `path` (inside the container) comes from which volume: { volume, sub } or undefined. */
function mountOf(path) {
  const m = container.volumeMounts.filter((v) => path === v.mountPath || path.startsWith(`${v.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  return m && { mount: m, volume: pod.volumes.find((v) => v.name === m.name), sub: posix.relative(m.mountPath, path) };
}

test('the ConfigMap is loaded by the daemon\'s config loader with the DaemonSet\'s flags: the node is named by the pod\'s node, paths are mounted', (t) => {
  const argv = command('node-x');
  const at = (flag) => argv[argv.indexOf(flag) + 1];
  t.is(argv[0], 'node');
  t.true(argv.includes('start'));
  const configPath = at('--config');
  const cfgMount = mountOf(configPath);
  t.truthy(cfgMount, `${configPath} is on a volume`);
  t.is(cfgMount.volume.configMap?.name, cm.metadata.name, 'the config volume is the ConfigMap');
  t.true(Object.hasOwn(cm.data, cfgMount.sub), `the ConfigMap has the key ${cfgMount.sub}`);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-deploy-'));
  try {
    const file = join(dir, 'wdp.yaml');
    writeFileSync(file, cm.data[cfgMount.sub]);
    // what `wdp start --hostname-override` does to the file before validation (src/daemon/cli.ts)
    const cfg = loadConfigFile(file, (raw) => { raw.kubernetes = { ...raw.kubernetes, hostnameOverride: at('--hostname-override') }; });
    t.is(cfg.node.name, 'node-x');
    t.truthy(cfg.kubernetes);
    t.is(cfg.kubernetes.kubeconfig, undefined, 'in-cluster credentials');
    // writable paths the daemon uses: on volumes, not the read-only root filesystem
    t.true(container.securityContext.readOnlyRootFilesystem);
    const state = mountOf(cfg.stateDir);
    t.truthy(state?.volume.hostPath, `stateDir ${cfg.stateDir} on a host path (survives restarts)`);
    t.not(state.mount.readOnly, true);
    const sock = cfg.api.listen.replace(/^unix:/, '');
    t.true(sock.startsWith('/'), 'the API is a unix socket');
    t.truthy(mountOf(dirname(sock))?.volume.hostPath, 'the API socket on a host path, for the CLI on the node');
    // the liveness probe reaches the watcher's healthz listener
    const [bindHost, bindPort] = [cfg.kubernetes.healthzBindAddress.replace(/:\d+$/, ''), Number(cfg.kubernetes.healthzBindAddress.split(':').pop())];
    t.is(container.livenessProbe.httpGet.port, bindPort);
    t.true(['0.0.0.0', container.livenessProbe.httpGet.host].includes(bindHost));
    t.true(pod.hostNetwork, 'a probe to 127.0.0.1 reaches the node\'s loopback');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the DaemonSet\'s command is accepted by `wdp start`: a bad flag (exit 1) or a config error (exit 2) would stop it before anything starts', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-deploy-'));
  try {
    const file = join(dir, 'wdp.yaml');
    writeFileSync(file, cm.data['wdp.yaml']);
    const argv = command('node-x').slice(2).map((a) => (a === '/etc/wdp/wdp.yaml' ? file : a));
    const env = { ...process.env }; delete env.KUBERNETES_SERVICE_HOST;
    const r = spawnSync(process.execPath, [WDP, ...argv], { encoding: 'utf8', timeout: 60000, env });
    // outside a cluster the start stops at the credentials (status 1): the config passed validation
    t.is(r.status, 1, r.stderr);
    t.regex(r.stderr, /kubernetes: not running in a cluster/);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('every `wdp ...` command line in deploy/ is one the CLI takes', (t) => {
  let n = 0;
  for (const f of readdirSync(join(ROOT, 'deploy'), { recursive: true }).filter((x) => /(\.ya?ml|\.mjs|Dockerfile)$/.test(x))) {
    const text = readFileSync(join(ROOT, 'deploy', f), 'utf8');
    for (const m of text.matchAll(/`wdp ([^`]+)`/g)) {
      n++;
      const words = m[1].split(/\s+/);
      const sub = words.filter((w, i) => !w.startsWith('-') && !(words[i - 1] ?? '').startsWith('-'))[0];
      const help = spawnSync(process.execPath, [WDP, ...(sub ? [sub] : []), '--help'], { encoding: 'utf8' }).stdout
        + spawnSync(process.execPath, [WDP, '--help'], { encoding: 'utf8' }).stdout;
      for (const flag of words.filter((w) => w.startsWith('--'))) t.true(help.includes(flag), `${f}: \`wdp ${m[1]}\`: no option ${flag}`);
    }
  }
  t.true(n > 0);
});

test('kubectl apply -k deploy/: the base\'s kustomization lists every manifest in deploy/base/, each a Kubernetes object with a kind and a name', (t) => {
  const [k] = docs('kustomization.yaml');
  const manifests = readdirSync(join(ROOT, 'deploy/base')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  t.deepEqual([...k.resources].sort(), manifests);
  for (const f of manifests) {
    for (const o of docs(f)) {
      t.truthy(o.apiVersion && o.kind && o.metadata?.name, `${f}: ${JSON.stringify(o).slice(0, 100)}`);
      if (!['ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) t.is(o.metadata.namespace, 'kube-system', `${f}: ${o.kind}`);
    }
  }
});

test('deploy/host-port/host-port.mjs --help prints its usage (exit 0); without its arguments it refuses with the usage (exit 2)', (t) => {
  const script = join(ROOT, 'deploy/host-port/host-port.mjs');
  const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8', timeout: 30000 });
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /^usage: node host-port\.mjs --template FILE --config FILE --saved FILE -- COMMAND\.\.\./);
  const none = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30000 });
  t.is(none.status, 2);
  t.regex(none.stderr, /^host-port: usage: /);
});
