// Shared by the kube-e2e-services and kube-e2e-gaps tests: Services and EndpointSlices as the API
// server and the EndpointSlice controller write them, their create-or-replace and delete through
// the API-server double, and the clients' questions (which pod answered). `kit(() => topo,
// () => double)` binds the calls to a test file's topology and double, set in its before().
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDoubleInNs } from './apiserver-double-ns.js';
import { buildTopology, curl, destroyTopology, httpMany, NODE_V4, POD_SERVER, sleep, startDaemon, startPods, waitFor } from './topology.js';

export const READY = { ready: true, serving: true, terminating: false };
export const STARTING = { ready: false, serving: false, terminating: false }; // created, not ready yet
export const TERMINATING = { ready: false, serving: true, terminating: true }; // deleted, still serving (delay-shutdown)

export const SVC = '/api/v1/namespaces/default/services';
export const EPS = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

export function service(name, { lbIP, ...spec }, labels) {
  return {
    metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
    spec: { sessionAffinity: 'None', selector: { app: name }, ...spec },
    status: { loadBalancer: lbIP ? { ingress: [{ ip: lbIP, ipMode: 'VIP' }] } : {} },
  };
}
/** spec fields of a Service with a cluster IP (defaults the API server fills in). */
export const cluster = (ip, ports, extra = {}) => ({
  type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
  internalTrafficPolicy: 'Cluster', ports: ports.map((p) => ({ protocol: 'TCP', ...p })), ...extra,
});
/** An EndpointSlice of `svc`: endpoints [pod, conditions, node?] (a pod, or an address: no targetRef). */
export function slice(name, svc, ports, endpoints, labels = {}) {
  return {
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...labels } },
    addressType: 'IPv4',
    ports: ports.map((p) => ({ protocol: 'TCP', ...p })),
    endpoints: endpoints.map(([pod, conditions, nodeName = 'node-a']) => (typeof pod === 'string'
      ? { addresses: [pod], conditions, nodeName }
      : { addresses: [pod.ip], conditions, nodeName, targetRef: { kind: 'Pod', namespace: 'default', name: pod.name } })),
  };
}

export function kit(topology, apiDouble) {
  const double = (...a) => apiDouble()(...a);
  return {
    /** Create or replace (as `kubectl apply` would, without a resourceVersion). */
    async put(path, obj) {
      try { return await double('PUT', `${path}/${obj.metadata.name}`, obj); } catch (e) {
        if (!/: 404 /.test(e.message)) throw e;
        return double('POST', path, obj);
      }
    },
    del: (path, name) => double('DELETE', `${path}/${name}`),
    /** One GET from `ns`: the answering pod's name, or null (refused, timed out: "not served"). */
    async who(ns, url, timeout = 2) {
      const r = await curl(topology(), ns, url, { timeout });
      return r.code === 0 && r.body.trim() ? r.body.trim() : null;
    },
    /** Polls (bounded) until `fn()` equals `want`; returns the last value. */
    async until(want, fn, tries = 40) {
      let last;
      for (let i = 0; i < tries; i++) {
        last = await fn();
        if (JSON.stringify(last) === JSON.stringify(want)) return last;
        await sleep(250);
      }
      return last;
    },
    /** A hostNetwork pod's server (HTTP and UDP on `port`) in `ns`, answering `name`; killed at
     * the test's teardown. */
    async hostServer(t, ns, name, port) {
      const child = topology().lab.spawn(ns, process.execPath, [POD_SERVER, name, '--http', String(port), '--udp', String(port)]);
      t.teardown(() => { if (child.exitCode === null) child.kill(); });
      let out = '';
      child.stdout.on('data', (x) => { out += x; });
      await waitFor(`${name}'s hostNetwork server`, () => out.includes('ready'), 10000);
    },
    /** The pods that answered n GETs from `ns` (errors as their code), sorted. */
    async pods(ns, url, n = 16) {
      const r = await httpMany(topology(), ns, url, n, { timeoutMs: 2000 });
      return [...new Set(r.map((x) => x.pod || x.error))].sort();
    },
  };
}

/** One node as the kube-e2e scenarios run it: `wdp start` in its namespace fed by the API-server
 * double, pod-a (TAP) and pod-b on this node (node-a), pod-c and pod-d (AF_PACKET; where they are
 * said to run is each test's slices'), the node's own stack behind the host port, the Node object
 * with NODE_V4 as its InternalIP. `configure(topo)` may change the config before it is written;
 * `started(topo)` runs once the pods serve. Everything is removed if the set-up fails. */
export async function kubeNode(kind, { configure, started } = {}) {
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'afpacket' }, { name: 'pod-d', attach: 'afpacket' }], kind });
  try {
    const { kubeconfig, double } = await startDoubleInNs(topo);
    topo.config.node = { name: 'node-a' }; // its addresses: the Node's
    topo.config.kubernetes = {
      kubeconfig, minSyncPeriod: '100ms', syncPeriod: '5s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: 'off', nodeWaitSeconds: 20,
      clusterCIDRs: ['10.244.0.0/16'], healthCheckBindAddress: '0.0.0.0',
    };
    // the node's own stack behind the host port: healthCheckNodePort servers, hostNetwork pods and clients
    topo.config.ports.push({
      name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
      hostAddresses: [`${NODE_V4}/24`], hostRoutes: [{ prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: '10.244.0.0/16', via: '10.244.0.1' }],
    });
    await configure?.(topo);
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await double('POST', '/api/v1/nodes', {
      metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: NODE_V4 }, { type: 'Hostname', address: 'node-a' }] },
    });
    await startDaemon(topo);
    await startPods(topo);
    await started?.(topo);
    return { topo, double };
  } catch (e) {
    await destroyTopology(topo);
    throw e;
  }
}

/** Stops the daemon (SIGTERM; resolves with its exit code) and points its config at an API server
 * that is away (nothing listens where the kubeconfig points), for the next start. */
export async function stopWithApiAway(topo) {
  const exited = new Promise((res) => topo.daemon.once('exit', (code) => res(code)));
  topo.daemon.kill('SIGTERM');
  const code = await exited;
  const away = join(topo.dir, 'kubeconfig-away');
  writeFileSync(away, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'd',
    clusters: [{ name: 'd', cluster: { server: 'http://127.0.0.1:9', 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
  }));
  topo.config.kubernetes.kubeconfig = away;
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  return code;
}
