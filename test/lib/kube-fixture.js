// The watcher's test frame: the API-server double on loopback, a control plane over an in-thread
// core (LocalDataplane), and the real watcher (src/kube/) between them, with short periods.
import { Writable } from 'node:stream';
import { createServer } from 'node:net';
import pino from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiServerDouble } from './apiserver-double.js';
import { createControlPlane } from '../../dist/src/api/server.js';
import { LocalDataplane } from '../../dist/src/core/dataplane.js';
import { KubeWatcher } from '../../dist/src/kube/watcher.js';
import { parseConfig } from '../../dist/src/daemon/config.js';

/** A logger whose lines (parsed) the test can read. */
export function memoryLogger() {
  const lines = [];
  const stream = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: pino({ level: 'debug' }, stream), lines };
}

/** The kubernetes: section as the daemon config validates it, with test-friendly defaults;
 * `addresses` are the config's node.addresses (they decide the nodePortAddresses default). */
export function kubeSection(over = {}, addresses = []) {
  return parseConfig({
    node: { name: 'node-a', addresses }, ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }],
    kubernetes: { minSyncPeriod: '50ms', syncPeriod: '2s', healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0', healthCheckBindAddress: '127.0.0.1', listPageSize: 3, ...over },
  }).kubernetes;
}

export async function startKube(t, { config = {}, informer = {}, double: doubleOpts = {}, existing, seed, nodeName = 'node-a', configuredAddresses = [], configuredServiceCIDRs, hostIPv6, serviceProxyName, stateDir, dataplane } = {}) {
  const double = existing ?? new ApiServerDouble(doubleOpts);
  if (!existing) await double.listen();
  if (seed) seed(double);
  const dp = dataplane ?? new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false, ...(stateDir ? { stateDir } : {}) });
  const kc = new KubeConfig();
  kc.loadFromString(double.kubeconfig());
  const { log, lines } = memoryLogger();
  const nodeUpdates = [];
  const serviceCIDRUpdates = [];
  const watcher = await KubeWatcher.start({
    config: kubeSection(config, configuredAddresses), nodeName, configuredAddresses, serviceProxyName, kubeConfig: kc,
    control: cp.core, metrics: cp.metrics, counters: () => dp.counters(), log,
    onNode: (u) => nodeUpdates.push(u),
    configuredServiceCIDRs, onServiceCIDRs: (c) => serviceCIDRUpdates.push(c), hostIPv6,
    informer: { backoffInitialMs: 50, backoffMaxMs: 400, watchTimeoutSeconds: [30, 40], ...informer },
  });
  let stopped = false;
  const stop = async () => { if (stopped) return; stopped = true; await watcher.stop(); await cp.close(); };
  t.teardown(async () => { await stop(); if (!existing) await double.close(); });
  return { double, dp, cp, watcher, lines, nodeUpdates, serviceCIDRUpdates, compiler: cp.core.compiler, stop };
}

/** Polls `fn` until it returns a truthy value (bounded: generous for a loaded 2-core VM). */
export async function until(fn, { timeoutMs = 15000, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Waits until the double holds a live watch of `resource`: the double's expireWatches() and
 * errorWatches() reach only the watches open at that moment, and an informer whose list has just
 * been taken may not have sent its watch request yet. */
export function watchOpen(double, resource) {
  return until(() => [...double.watchers].some((w) => w.resource === resource && w.live), { what: `the ${resource} watch open` });
}

// ---- objects as the API server returns them (defaults filled in) ----------------------------------

export function apiService(name, clusterIP, { ports = [{ name: 'http', port: 80, targetPort: 8080 }], ns = 'default', type = 'ClusterIP', extra = {}, status } = {}) {
  return {
    metadata: { name, namespace: ns, labels: { app: name }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}' } },
    spec: {
      type, clusterIP, clusterIPs: [clusterIP], ipFamilies: [clusterIP.includes(':') ? 'IPv6' : 'IPv4'], ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
      ports: ports.map((p) => ({ protocol: 'TCP', ...p })),
      selector: { app: name },
      ...extra,
    },
    status: status ?? { loadBalancer: {} },
  };
}

export function apiSlice(name, service, addrs, { ns = 'default', port = 8080, portName = 'http', nodeName = 'node-a', ready = true, trigger } = {}) {
  return {
    metadata: {
      name, namespace: ns,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ...(trigger ? { annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': trigger } } : {}),
    },
    addressType: 'IPv4',
    endpoints: addrs.map((a) => ({
      addresses: [a], conditions: { ready, serving: ready, terminating: false }, nodeName,
      targetRef: { kind: 'Pod', namespace: ns, name: `pod-${a}`, uid: 'x' },
    })),
    ports: [{ name: portName, port, protocol: 'TCP' }],
  };
}

export function apiNode(name, { addresses = [{ type: 'InternalIP', address: '192.168.100.2' }], podCIDRs = ['10.244.1.0/24'], deleting = false, taints } = {}) {
  return {
    metadata: { name, ...(deleting ? { deletionTimestamp: new Date().toISOString() } : {}) },
    spec: { podCIDR: podCIDRs[0], podCIDRs, ...(taints ? { taints } : {}) },
    status: { addresses: [...addresses, { type: 'Hostname', address: name }] },
  };
}

/** Where a TCP SYN from a client to addr:port goes, per the in-thread core. */
export async function traceTo(dp, addr, port, sport = 40000) {
  return dp.trace({ src: '10.0.0.2', dst: addr, proto: 'TCP', sport, dport: port });
}

/** A TCP port free on 127.0.0.1 right now (a healthCheckNodePort for a test Service), below the
 * ephemeral range: a port the kernel handed out for `listen(0)` and then freed can be handed out
 * again to the next `listen(0)` (the fixture's healthz and metrics servers), which then answers in
 * the Service's place. */
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const s = createServer();
    const ok = await new Promise((r) => { s.once('error', () => r(false)); s.listen(port, '127.0.0.1', () => r(true)); });
    if (ok) { await new Promise((r) => s.close(r)); return port; }
  }
  throw new Error('no free TCP port in 20000-29999 on 127.0.0.1');
}
