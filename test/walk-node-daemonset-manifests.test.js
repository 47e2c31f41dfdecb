// deploy/ and deploy/host-port/ as `kubectl apply -k` builds them (test/lib/kustomize.js: kustomize
// is not installed), checked without root: the references between the objects (volumes, the
// ConfigMap and its keys, the init container's host paths and the installer's own reading of its
// arguments), what the API server would refuse, the image holding what the commands run, and the
// overlay's config template completed for a node (deploy/host-port/host-port-config.mjs) accepted
// by the daemon's own config loader. (Run as the kubelet runs them: test walk-node-daemonset.)
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { kustomize } from './lib/kustomize.js';
import { loadConfigFile } from '../dist/src/daemon/config.js';
import { parseInstallArgs } from '../dist/src/cni/install.js';
import { canonicalCidr, completeTemplate } from '../deploy/host-port/host-port-config.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const builds = { 'deploy/': kustomize(join(ROOT, 'deploy')), 'deploy/host-port/': kustomize(join(ROOT, 'deploy/host-port')) };
const DOCKERFILE = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');

/** A file of the image at `path` (/opt/wdp/...): copied by the Dockerfile, and in this checkout. */
function inImage(path) {
  const rel = posix.relative('/opt/wdp', path);
  const copied = [...DOCKERFILE.matchAll(/^COPY --from=build \/opt\/wdp\/(\S+) /gm)].some(([, from]) => new RegExp(`^${from.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`).test(rel));
  return copied && existsSync(join(ROOT, rel));
}

for (const [name, objects] of Object.entries(builds)) {
  test(`kubectl apply -k ${name}: every mount is a volume of the pod, every ConfigMap volume one of the build, every path a command names is on a volume or in the image`, (t) => {
    const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
    const pod = ds.spec.template.spec;
    for (const c of [...pod.initContainers ?? [], ...pod.containers]) {
      for (const m of c.volumeMounts ?? []) t.truthy(pod.volumes.find((v) => v.name === m.name), `${c.name}: volume ${m.name}`);
      const sc = c.securityContext ?? {};
      t.false(sc.privileged === true && sc.allowPrivilegeEscalation === false, `${c.name}: the API server refuses privileged without privilege escalation`);
      t.is(c.image, pod.containers[0].image, `${c.name}: one image`);
      // the container's paths: not the installer's host paths (its --host-root and what is under it)
      const hostPaths = new Set(c.command.filter((x, i) => ['--host-root', '--prefix', '--bin-dir', '--conf-dir'].includes(c.command[i - 1])));
      for (const a of c.command.filter((x) => x.startsWith('/') && !hostPaths.has(x))) {
        const m = (c.volumeMounts ?? []).find((v) => a === v.mountPath || a.startsWith(`${v.mountPath}/`));
        if (!m) { t.true(inImage(a), `${c.name}: ${a} is in the image`); continue; }
        const v = pod.volumes.find((x) => x.name === m.name);
        if (v.configMap) {
          const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap.name);
          t.truthy(cm, `${c.name}: ConfigMap ${v.configMap.name}`);
          t.true(Object.hasOwn(cm.data, posix.relative(m.mountPath, a)), `${c.name}: ${a} is a key of ${v.configMap.name}`);
        }
      }
    }
    for (const v of pod.volumes.filter((x) => x.configMap)) t.truthy(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap.name), v.name);
  });

  test(`kubectl apply -k ${name}: the install-cni container's host paths, as the installer reads its arguments, are each mounted at --host-root + that path, writable; its server is the ConfigMap's API socket`, (t) => {
    const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
    const [cm] = objects.filter((o) => o.kind === 'ConfigMap');
    const pod = ds.spec.template.spec;
    const ic = pod.containers.find((c) => c.name === 'install-cni');
    t.falsy(pod.initContainers?.find((c) => c.name === 'install-cni'), 'not an init container: the daemon must not wait for the primary CNI plugin\'s list');
    const argv = ic.command.slice(ic.command.indexOf('install') + 1);
    const a = parseInstallArgs(argv, 'wdp-cni.js');
    t.truthy(a.prefix);
    t.true(Number(a.watch) > 0, 'it keeps the plugin chained (--watch)');
    for (const p of [a.binDir, a.prefix, a.confDir]) {
      const m = ic.volumeMounts.find((x) => x.mountPath === posix.join(a.hostRoot, p));
      t.truthy(m, `${p} mounted at ${posix.join(a.hostRoot, p)}`);
      t.is(pod.volumes.find((v) => v.name === m.name).hostPath?.path, p, `${m.name} is the host's ${p}`);
      t.not(m.readOnly, true);
    }
    t.is(a.server, parseYaml(cm.data['wdp.yaml']).api.listen, 'the plugin talks to the daemon\'s socket');
    t.deepEqual(ic.securityContext.capabilities, { drop: ['ALL'] });
  });
}

test('deploy/host-port/: the command runs host-port.mjs around the daemon; its template (the ConfigMap\'s key) on the ConfigMap, the saved network on a host path, the completed config on a writable volume and the daemon\'s --config', (t) => {
  const objects = builds['deploy/host-port/'];
  const [ds] = objects.filter((o) => o.kind === 'DaemonSet');
  const pod = ds.spec.template.spec;
  const c = pod.containers.find((x) => x.name === 'wdp');
  const volOf = (path) => { const m = c.volumeMounts.filter((v) => path.startsWith(`${v.mountPath}/`)).sort((x, y) => y.mountPath.length - x.mountPath.length)[0]; return m && { m, v: pod.volumes.find((x) => x.name === m.name) }; };
  const sep = c.command.indexOf('--');
  const at = (flag, from = 0) => c.command[c.command.indexOf(flag, from) + 1];
  t.true(c.securityContext.privileged, 'the host port\'s TAP: /dev/net/tun, /proc/sys writable');
  t.truthy(volOf(at('--template')).v.configMap);
  t.truthy(volOf(at('--saved')).v.hostPath, 'the node\'s network outlives the pod');
  t.not(volOf(at('--saved')).m.readOnly, true);
  t.truthy(volOf(at('--config')).v.emptyDir, 'writable: the root is read-only');
  t.is(at('--config', sep), at('--config'));
  t.deepEqual(c.command.slice(sep + 1, sep + 4), ['node', '/opt/wdp/bin/wdp.js', 'start']);
  t.true(c.command.includes('$(NODE_NAME)') && c.env.some((e) => e.name === 'NODE_NAME'));
});

test('deploy/host-port/\'s template completed with a node\'s network is a config the daemon loads: the NIC\'s addresses on the host port, its default routes, the uplink\'s routes via the gateway; what the template sets stays', (t) => {
  const [cm] = builds['deploy/host-port/'].filter((o) => o.kind === 'ConfigMap');
  const template = parseYaml(cm.data['wdp.yaml']);
  const net = { addresses: ['192.168.100.2/24', 'fd00:100::2/64'], gateways: ['192.168.100.1', 'fd00:100::1'] };
  const dir = mkdtempSync(join(tmpdir(), 'wdp-host-port-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wdp.yaml');
  writeFileSync(file, JSON.stringify(completeTemplate(template, net)));
  const cfg = loadConfigFile(file, (raw) => { raw.kubernetes = { ...raw.kubernetes, hostnameOverride: 'node-x' }; });
  const host = cfg.ports.find((p) => p.role === 'host');
  const uplink = cfg.ports.find((p) => p.role === 'uplink');
  t.deepEqual(host.hostAddresses, net.addresses);
  t.deepEqual(host.hostRoutes.filter((r) => r.prefix === 'default').map((r) => r.via), net.gateways);
  t.deepEqual(cfg.routes.map((r) => [r.prefix, r.port, r.via]), [['0.0.0.0/0', uplink.name, '192.168.100.1'], ['::/0', uplink.name, 'fd00:100::1']]);
  t.deepEqual(template, parseYaml(cm.data['wdp.yaml']), 'the template itself unchanged');
  // set in the template: stays
  const own = structuredClone(template);
  own.ports.find((p) => p.role === 'host').hostAddresses = ['10.1.1.1/16'];
  own.routes = [{ prefix: '0.0.0.0/0', port: 'uplink', via: '10.1.0.254' }];
  const done = completeTemplate(own, net);
  t.deepEqual(done.ports.find((p) => p.role === 'host').hostAddresses, ['10.1.1.1/16']);
  t.deepEqual(done.routes.map((r) => r.via), ['10.1.0.254', 'fd00:100::1']);
  t.throws(() => completeTemplate({ ports: [{ name: 'uplink', role: 'uplink', ifname: 'eth0' }] }, net), { message: /no host port/ });
  // the host port's addresses compared with what `ip` shows, however the template writes them
  t.is(canonicalCidr('FD00:100:0::2/64'), 'fd00:100::2/64');
  t.is(canonicalCidr('192.168.100.2/24'), '192.168.100.2/24');
});
