// Helpers for the e2e tests (test/e2e-*.test.js, test/daemon-*.test.js).
// The topology itself lives in dist/src/demo/topology.js (shared with `wdp demo`); this file
// adds the client-side helpers the tests need.
import { canUseNetns } from '../../dist/src/netns.js';
import { rootGate } from './root-gate.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { buildTopology, startPods, startDaemon, destroyTopology, api, NODE_V4, NODE_V6 } from '../../dist/src/demo/topology.js';
export {
  buildTopology, startPods, startDaemon, destroyTopology, api, sleep, addressPod, NODE_V4, NODE_V6, POD_SERVER, WDP_BIN as WDP,
} from '../../dist/src/demo/topology.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export { canUseNetns, join, rootGate };

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

/** `n` sequential HTTP GETs from one node process inside `ns` (one namespace entry instead of n
 * curl processes: ~10x faster). Each result: { pod, peer, localPort, cport } or { error, cport }
 * (cport: the client's own port, when the kernel had picked one). `localPort` binds every request
 * to that client port (node sets SO_REUSEADDR), to reuse a 5-tuple on purpose. */
export async function httpMany(topo, ns, url, n, { timeoutMs = 3000, localPort } = {}) {
  const script = `
    const http = require('http');
    const u = new URL(${JSON.stringify(url)});
    const out = [];
    (async () => {
      for (let i = 0; i < ${n}; i++) {
        out.push(await new Promise((resolve) => {
          let cport;
          const req = http.get({ host: u.hostname.replace(/^\\[|\\]$/g, ''), port: u.port || 80, path: u.pathname, agent: false, timeout: ${timeoutMs}${localPort ? `, localPort: ${Number(localPort)}` : ''} }, (res) => {
            let body = ''; res.on('data', (d) => body += d);
            res.on('end', () => resolve({ pod: body.trim(), peer: String(res.headers['x-peer'] || '').replace('::ffff:', ''), localPort: res.headers['x-local-port'], cport }));
          });
          req.on('socket', (s) => s.on('connect', () => { cport = s.localPort; }));
          req.on('timeout', () => { cport ??= req.socket?.localPort; req.destroy(new Error('timeout')); });
          req.on('error', (e) => resolve({ error: e.code || e.message, cport }));
        }));
      }
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 + n * (timeoutMs + 500) });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { throw new Error(`httpMany failed (${r.code}): ${r.stderr}`); }
}

/** Several UDP request/responses from one node process; each from a fresh socket, or bound to
 * the given local port (same 5-tuple = same conntrack flow). */
export async function udpMany(topo, ns, host, port, asks, { timeoutMs = 2000 } = {}) {
  const script = `
    const dgram = require('dgram');
    const asks = ${JSON.stringify(asks)};
    (async () => {
      const out = [];
      for (const a of asks) {
        out.push(await new Promise((resolve) => {
          const s = dgram.createSocket(${JSON.stringify(host.includes(':') ? 'udp6' : 'udp4')});
          const done = (v) => { clearTimeout(t); s.close(); resolve(v); };
          const t = setTimeout(() => done({ timeout: true }), ${timeoutMs});
          s.on('message', (m, r) => done({ reply: m.toString(), from: r.address, port: r.port }));
          s.on('error', (e) => done({ error: e.code || e.message }));
          const send = () => s.send(a.payload, ${port}, ${JSON.stringify(host)});
          if (a.bindPort) s.bind(a.bindPort, send); else send();
        }));
      }
      console.log(JSON.stringify(out));
    })();`;
  const r = await topo.lab.execAsync(ns, process.execPath, ['-e', script], { timeoutMs: 10000 + asks.length * (timeoutMs + 500) });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch { throw new Error(`udpMany failed (${r.code}): ${r.stderr}`); }
}

/** The shared frame of an e2e test file: skips (with the reason) when not root, builds the topology
 * with `opts`, starts the daemon and the pod servers before the tests and destroys everything after
 * them, even on failure. `suite.topo` is set once the before hook has run. `opts.configure(config)`
 * may change the daemon's config before it starts. */
/** The node's own stack behind a host port (as test/e2e-host.test.js): the node addresses on its
 * TAP; pods, the IPv4 service range and the IPv6 services via wdp. */
export function hostPort() {
  return {
    name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
    hostAddresses: [`${NODE_V4}/24`, `${NODE_V6}/64`],
    hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }, { prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: 'fd00:96::/64', via: 'fd00:100::1' }],
  };
}

export function e2eSuite(test, opts) {
  const gate = rootGate(test);
  const root = gate.ok;
  const suite = {
    root,
    serial: gate.serial,
    topo: undefined,
    async apply(objs) {
      const r = await api(suite.topo, 'POST', '/api/v1/apply', objs);
      if (r.status !== 200) throw new Error(`apply failed ${r.status}: ${r.text}`);
      return r.json;
    },
  };
  // ava runs a file's before hooks concurrently: a later hook that needs the daemon awaits this
  let up;
  suite.ready = new Promise((resolve, reject) => { up = { resolve, reject }; });
  suite.ready.catch(() => undefined);
  test.before(async () => {
    if (!root) { up.resolve(); return; }
    const topo = buildTopology(opts);
    suite.topo = topo;
    try {
      if (opts.configure) {
        opts.configure(topo.config);
        writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
      }
      await startDaemon(topo);
      await startPods(topo);
    } catch (e) {
      await destroyTopology(topo);
      up.reject(e);
      throw e;
    }
    up.resolve();
  });
  test.after.always(async () => { await destroyTopology(suite.topo); });
  return suite;
}

/** Whether `ip` is answered by ARP on `dev` in `ns`: its neighbour entry flushed, a datagram sent
 * through a /32 route on `dev` makes the kernel ask; an entry with a MAC (REACHABLE/STALE) after
 * 1.5 s means someone answered. The route is removed again. */
export async function arpAnswered(topo, ns, dev, ip) {
  await topo.lab.execAsync(ns, 'ip', ['neigh', 'flush', 'to', ip]);
  await topo.lab.execAsync(ns, 'ip', ['route', 'replace', `${ip}/32`, 'dev', dev]);
  await topo.lab.execAsync(ns, process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); s.send('x', 9, '${ip}', () => setTimeout(() => process.exit(0), 1500));`]);
  const r = await topo.lab.execAsync(ns, 'ip', ['neigh', 'show', 'to', ip, 'dev', dev]);
  await topo.lab.execAsync(ns, 'ip', ['route', 'del', `${ip}/32`, 'dev', dev]);
  return /lladdr/.test(r.stdout);
}

/** curl until it answers: the first request to a new backend may race its neighbour resolution. */
export async function curlOk(topo, ns, url, tries = 20) {
  let last;
  for (let i = 0; i < tries; i++) {
    last = await curl(topo, ns, url, { timeout: 3 });
    if (last.code === 0 && last.body) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

/** EndpointSlice endpoints for `pods` ({ip}), ready, on node-a. */
export function readyEndpoints(pods) {
  return pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' }));
}

/** The Services of startTwoWorkerTopology's tests: w0 (ClusterIP 10.96.4.10) on pod-a and pod-b
 * (worker 0's pods), w1 (NodePort 30400, ClusterIP 10.96.4.11) on pod-c (worker 1's). */
export function twoWorkerServices(topo) {
  const [a, b, c] = topo.pods;
  return [
    serviceYaml({ name: 'w0', clusterIP: '10.96.4.10', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'w0-1', service: 'w0', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([a, b]) }),
    serviceYaml({ name: 'w1', type: 'NodePort', clusterIP: '10.96.4.11', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30400, protocol: 'TCP' }] }),
    sliceYaml({ name: 'w1-1', service: 'w1', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: readyEndpoints([c]) }),
  ];
}

/** The two-worker topology (daemon-workers, e2e-observe): a client, a remote and three pods; the
 * daemon runs `workers: 2` with ports 0 client, 2 pod-a, 3 pod-b on worker 0 and 1 remote, 4 pod-c
 * on worker 1, and the pods serve. On failure everything is removed before the error is thrown. */
export async function startTwoWorkerTopology() {
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'tap' }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: 'tap' }] });
  try {
    const worker = [0, 1, 0, 0, 1];
    topo.config.workers = 2;
    topo.config.ports.forEach((p, i) => { p.worker = worker[i]; });
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await startDaemon(topo);
    await startPods(topo);
    return topo;
  } catch (e) {
    await destroyTopology(topo);
    throw e;
  }
}

/** Runs `node -e script args…` inside namespace `ns`; its stdout and stderr collect in child.out. */
export function spawnNode(topo, ns, script, args) {
  const child = topo.lab.spawn(ns, process.execPath, ['-e', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.out = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.out += d; });
  return child;
}

/** Polls `fn` every 100 ms until it returns something truthy (returned), or throws naming `what`. */
export async function waitFor(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) { const v = await fn(); if (v) return v; await new Promise((r) => setTimeout(r, 100)); }
  throw new Error(`timed out waiting for ${what}`);
}

/** The daemon's log once `re` (not /g) matches in it, else throws naming `what`. The daemon's
 * lines reach its pipe asynchronously (pino's default destination writes from the thread pool),
 * so a line can arrive after the API already answers with what it reports: a test waits for the
 * line it reads. */
export function logged(topo, re, what = `the daemon to log ${re}`, timeoutMs = 20000) {
  return waitFor(what, () => re.test(topo.daemonLog) && topo.daemonLog, timeoutMs);
}
