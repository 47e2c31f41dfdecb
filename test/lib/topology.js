// Helpers for the e2e tests (test/e2e-*.test.js, test/daemon-*.test.js).
// The topology itself lives in dist/src/demo/topology.js (shared with `wdp demo`); this file
// adds the client-side helpers the tests need.
import { canUseNetns } from '../../dist/src/netns.js';
import { join } from 'node:path';
export {
  buildTopology, startPods, startDaemon, destroyTopology, api, sleep, NODE_V4, NODE_V6, POD_SERVER, WDP_BIN as WDP,
} from '../../dist/src/demo/topology.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export { canUseNetns, join };

/** curl from a namespace; returns { code, body, headers }. Never throws on HTTP failure. */
export async function curl(topo, ns, url, { timeout = 5, extra = [] } = {}) {
  const r = await topo.lab.execAsync(ns, 'curl', ['-sS', '-D', '-', '--max-time', String(timeout), '-g', ...extra, url], { timeoutMs: (timeout + 5) * 1000 });
  const [head, ...rest] = r.stdout.split('\r\n\r\n');
  const headers = {};
  for (const line of (head ?? '').split('\r\n').slice(1)) { const i = line.indexOf(':'); if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim(); }
  return { code: r.code, body: rest.join('\r\n\r\n'), headers, stderr: r.stderr };
}

/** One UDP request/response from a namespace using node (no extra tools needed). */
export async function udpAsk(topo, ns, host, port, payload, { timeoutMs = 2000, bindPort } = {}) {
  const script = `
    const s = require('dgram').createSocket(${JSON.stringify(host.includes(':') ? 'udp6' : 'udp4')});
    ${bindPort ? `s.bind(${bindPort});` : ''}
    const t = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, ${timeoutMs});
    s.on('message', (m, r) => { clearTimeout(t); console.log(JSON.stringify({ reply: m.toString(), from: r.address, port: r.port })); process.exit(0); });
    s.on('error', (e) => { clearTimeout(t); console.log(JSON.stringify({ error: e.code || e.message })); process.exit(0); });
    s.send(${JSON.stringify(payload)}, ${port}, ${JSON.stringify(host)});`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: timeoutMs + 5000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { return { error: `no output (${r.code}): ${r.stderr}` }; }
}

export function serviceYaml({ name, clusterIP, ports, type = 'ClusterIP', extra = {}, lbIngress }) {
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { type, clusterIP, ports, ...extra } };
  if (lbIngress) svc.status = { loadBalancer: { ingress: lbIngress.map((ip) => ({ ip })) } };
  return svc;
}

export function sliceYaml({ name, service, addressType = 'IPv4', ports, endpoints }) {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType, ports, endpoints,
  };
}
