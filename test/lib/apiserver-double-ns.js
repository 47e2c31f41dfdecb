// The API-server double (apiserver-double.js) as a child process in a test topology's dataplane
// namespace, where a daemon under test reaches it on loopback: a kubeconfig for the daemon, and a
// request helper over the double's control socket (the same REST paths as the API).
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPods, startDaemon } from '../../dist/src/demo/topology.js';

const DOUBLE = fileURLToPath(new URL('./apiserver-double.js', import.meta.url));

/** The EndpointSlice `web-abc` of Service default/web the kube tests seed: `pods` ready on node-a,
 * port http 8080/TCP. */
export const webSlice = (pods) => ({
  metadata: { name: 'web-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

/** Starts the double in `topo.ns.dp` on loopback (or in `ns`, listening on `listen`); resolves
 * with { kubeconfig, url, double(method, path, body) }. `rbac`: a ClusterRole manifest the double
 * enforces; `tls`: a directory with key.pem and cert.pem (HTTPS); `token`: the bearer token it
 * requires (apiserver-double.js). */
export async function startDoubleInNs(topo, { rbac, tls, token, ns = topo.ns.dp, listen = '127.0.0.1:0' } = {}) {
  const controlSock = join(topo.dir, ns === topo.ns.dp ? 'double.sock' : `double-${ns}.sock`);
  const child = topo.lab.spawn(ns, process.execPath, [DOUBLE, '--listen', listen, '--control', controlSock, '--bookmark-ms', '1000',
    ...(rbac ? ['--rbac', rbac] : []), ...(tls ? ['--tls', tls] : []), ...(token ? ['--token', token] : [])]);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('the API-server double did not start')), 15000);
    child.stdout.on('data', (d) => { out += d; const m = /"url":"([^"]+)"/.exec(out); if (m) { clearTimeout(t); resolve(m[1]); } });
    child.on('exit', (c) => reject(new Error(`the API-server double exited ${c}`)));
  });
  const kubeconfig = join(topo.dir, ns === topo.ns.dp ? 'kubeconfig' : `kubeconfig-${ns}`);
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'd',
    clusters: [{ name: 'd', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'd', user: {} }], contexts: [{ name: 'd', context: { cluster: 'd', user: 'd' } }],
  }));
  const double = (method, path, body) => new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: controlSock, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => { if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)); else resolve(JSON.parse(text)); });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
  return { kubeconfig, url, double };
}

/** Seeds the double with the Node `node`, the Service `service` (default/web) and its slice
 * (webSlice of the topology's pods), then starts the daemon and the pods. */
export async function seedWebAndStart(topo, double, { node, service }) {
  await double('POST', '/api/v1/nodes', node);
  await double('POST', '/api/v1/namespaces/default/services', service);
  await double('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', webSlice(topo.pods));
  await startDaemon(topo);
  await startPods(topo);
}
