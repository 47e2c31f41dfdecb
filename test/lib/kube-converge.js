// The Kubernetes watcher's convergence fuzzer (test/kube-converge-fuzz.test.js): random but
// API-valid sequences of Services, EndpointSlices, Node and ServiceCIDR writes, and API-server
// faults (410 Gone, dropped watches, the server down for a while), driven through the API-server
// double into the real watcher (src/kube/) and an in-thread core — then, once everything has
// settled, the dataplane compared with what a FRESH watcher and core, given only the final
// objects, serve. The incremental path (partial syncs, informer resumes and re-lists, the
// compiler's incremental recompile, the core's table diffs) must end where a fresh start does.
//
// The periodic full sync is pushed out of the run (syncPeriod 1 h): it would repair what a
// partial sync got wrong, and hide it. What is compared (compare()):
// * the core's Ir, ids left out: per frontend (service, port name, kind, address, port,
//   protocol) its flags, affinity, source ranges, the backends it spreads over (address, port,
//   state, node, zone) and its Maglev table as the backend in each slot; the routes (service
//   CIDRs, local-source entries); the SNAT addresses;
// * per address a client can send to (every frontend of either side, a sample of other
//   addresses: unused cluster IPs, external and LB pools, node addresses on random ports, service
//   CIDR space), from an outside and an in-cluster source, a few source ports: the verdict,
//   reason, frontend and backend the core's trace gives.
//
// Node changes reach the core as the daemon takes them (onNode → its NodeConfig); here the
// NodeConfig is built from the watcher's update alone (addresses, NodePort addresses, node IPs,
// pod CIDRs, zone) plus the service CIDRs (onServiceCIDRs).
import { Writable } from 'node:stream';
import pino from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiServerDouble } from './apiserver-double.js';
import { createControlPlane } from '../../dist/src/api/server.js';
import { LocalDataplane } from '../../dist/src/core/dataplane.js';
import { KubeWatcher } from '../../dist/src/kube/watcher.js';
import { parseConfig } from '../../dist/src/daemon/config.js';
import * as L from '../../dist/assembly/layout.js';
import { mulberry32 } from '../../dist/src/util/rng.js';

export const NODE = 'node-a';
const HEADLESS = 'service.kubernetes.io/headless';
const PROXY_NAME = 'service.kubernetes.io/service-proxy-name';

/** The seed: WDP_KUBEFUZZ_SEED when set (decimal or 0x…), else a fresh one. */
export function kubeFuzzSeed(env = process.env) {
  const v = env.WDP_KUBEFUZZ_SEED;
  if (v === undefined || v === '') return Math.floor(Math.random() * 2 ** 31);
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`WDP_KUBEFUZZ_SEED must be an integer >= 0, not ${JSON.stringify(v)}`);
  return n;
}

/** mulberry32: small, seedable, good enough to pick test inputs. */
export function rng(seed) {
  const next = mulberry32(seed);
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    some: (xs, max = xs.length) => { const out = xs.filter(() => next() < 0.5); return out.slice(0, max); },
  };
  return r;
}

// ---- objects ------------------------------------------------------------------------------------

const NAMESPACES = ['default', 'team'];
export const SLOTS = 6; // Service names per namespace (svc0..svc5); slot i owns its addresses
const slotIndex = (ns, i) => NAMESPACES.indexOf(ns) * SLOTS + i; // 0..11, unique over the cluster
const clusterV4 = (g, gen) => `10.96.${gen}.${10 + g}`;
const clusterV6 = (g, gen) => `fd00:96::${gen}:${(10 + g).toString(16)}`;
const extV4 = (g, k) => `198.51.100.${g * 8 + k + 1}`;
const extV6 = (g, k) => `2001:db8:e::${(g * 8 + k + 1).toString(16)}`;
const lbV4 = (g, k) => `203.0.113.${g * 8 + k + 1}`;
const lbV6 = (g, k) => `2001:db8:1b::${(g * 8 + k + 1).toString(16)}`;
const nodePortOf = (g, p) => 30000 + g * 10 + p;
const podV4 = (k) => `10.244.${1 + (k % 3)}.${10 + k}`;
const podV6 = (k) => `fd00:244:${1 + (k % 3)}::${(10 + k).toString(16)}`;
const PORT_NAMES = ['http', 'dns', 'metrics'];
const PROTOS = ['TCP', 'UDP', 'SCTP'];
const ZONES = ['zone-a', 'zone-b'];

/** Service ports: 1-3, distinct names (named when more than one) and distinct (port, protocol). */
function genPorts(r, type, g) {
  const n = 1 + r.int(3);
  const out = [];
  for (let p = 0; p < n; p++) {
    const proto = r.pick(PROTOS);
    const port = r.chance(0.5) ? 80 + p : r.pick([53, 443, 8080 + p, 9000 + p]);
    if (out.some((o) => o.port === port && o.protocol === proto)) continue;
    const targetPort = r.chance(0.3) ? r.pick(['web', 'metrics']) : r.pick([8080, 8081, 9090, port]);
    const sp = { protocol: proto, port, targetPort };
    if (n > 1 || r.chance(0.7)) sp.name = PORT_NAMES[p];
    if (type === 'NodePort' || type === 'LoadBalancer') sp.nodePort = nodePortOf(g, p);
    out.push(sp);
  }
  return out;
}

/**
 * A random Service for slot (ns, i), valid as the API server would store it; `prev` (the stored
 * object) keeps what the API server does not let an update change: the cluster IPs, the family
 * policy while it keeps them.
 */
export function genService(r, ns, i, prev, gen = 0) {
  const g = slotIndex(ns, i);
  const name = `svc${i}`;
  const type = r.pick(['ClusterIP', 'ClusterIP', 'ClusterIP', 'NodePort', 'NodePort', 'LoadBalancer', 'LoadBalancer', 'ExternalName']);
  const labels = { app: name };
  if (r.chance(0.05)) labels[PROXY_NAME] = 'other-proxy';
  if (r.chance(0.04)) labels[HEADLESS] = '';
  const spec = { type, sessionAffinity: 'None', internalTrafficPolicy: 'Cluster' };
  if (type === 'ExternalName') {
    spec.externalName = `${name}.example.com`;
    if (r.chance(0.5)) spec.ports = genPorts(r, 'ClusterIP', g);
    return { metadata: { name, namespace: ns, labels }, spec, status: { loadBalancer: {} } };
  }
  const p = prev?.spec;
  const prevHasIP = p && p.type !== 'ExternalName' && Array.isArray(p.clusterIPs) && p.clusterIPs.length;
  let clusterIPs, families, policy;
  if (prevHasIP) {
    clusterIPs = [...p.clusterIPs]; families = [...p.ipFamilies]; policy = p.ipFamilyPolicy;
    // (upgrade to dual-stack, or back: the API server allows both on an update)
    if (clusterIPs[0] !== 'None' && clusterIPs.length === 1 && r.chance(0.15)) {
      const v6 = clusterIPs[0].includes(':');
      clusterIPs.push(v6 ? clusterV4(g, gen) : clusterV6(g, gen)); families.push(v6 ? 'IPv4' : 'IPv6'); policy = 'PreferDualStack';
    } else if (clusterIPs.length === 2 && r.chance(0.15)) { clusterIPs = [clusterIPs[0]]; families = [families[0]]; policy = 'SingleStack'; }
  } else if (type === 'ClusterIP' && r.chance(0.12)) {
    clusterIPs = ['None']; families = [r.pick(['IPv4', 'IPv6'])]; policy = 'SingleStack';
  } else {
    const shape = r.pick(['4', '4', '6', '46', '64']);
    clusterIPs = [...shape].map((f) => (f === '4' ? clusterV4(g, gen) : clusterV6(g, gen)));
    families = [...shape].map((f) => (f === '4' ? 'IPv4' : 'IPv6'));
    policy = shape.length === 2 ? r.pick(['PreferDualStack', 'RequireDualStack']) : 'SingleStack';
  }
  const headless = clusterIPs[0] === 'None';
  const t = headless ? 'ClusterIP' : type;
  spec.type = t;
  Object.assign(spec, { clusterIP: clusterIPs[0], clusterIPs, ipFamilies: families, ipFamilyPolicy: policy });
  // (most updates keep the ports, or the slices written for them would rarely match)
  spec.ports = p?.ports?.length && r.chance(0.7) ? p.ports.map((sp) => {
    const q = { ...sp };
    if (t === 'NodePort' || t === 'LoadBalancer') q.nodePort = nodePortOf(g, PORT_NAMES.indexOf(sp.name ?? 'http')); else delete q.nodePort;
    return q;
  }) : genPorts(r, t, g);
  if (r.chance(0.85)) spec.selector = { app: name };
  if (r.chance(0.25)) spec.internalTrafficPolicy = 'Local';
  if (r.chance(0.15)) spec.trafficDistribution = 'PreferClose';
  if (!headless && r.chance(0.25)) {
    spec.sessionAffinity = 'ClientIP';
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: r.pick([10, 10800, 60]) } };
  }
  const fams = families.map((f) => f === 'IPv6');
  if (!headless && r.chance(0.3)) spec.externalIPs = r.some([0, 1, 2], 2).map((k) => (r.pick(fams) ? extV6(g, k) : extV4(g, k)));
  if (spec.externalIPs?.length === 0) delete spec.externalIPs;
  const external = t === 'NodePort' || t === 'LoadBalancer' || spec.externalIPs;
  if (external) spec.externalTrafficPolicy = r.chance(0.35) ? 'Local' : 'Cluster';
  let status = { loadBalancer: {} };
  if (t === 'LoadBalancer') {
    if (r.chance(0.2)) { spec.allocateLoadBalancerNodePorts = false; for (const sp of spec.ports) delete sp.nodePort; }
    if (spec.externalTrafficPolicy === 'Local') spec.healthCheckNodePort = 32000 + g;
    if (r.chance(0.2)) spec.loadBalancerSourceRanges = r.pick([['10.0.0.0/8'], ['192.0.2.0/24', '2001:db8::/32'], ['0.0.0.0/0']]);
    if (r.chance(0.8)) {
      const ingress = r.some([0, 1, 2], 2).map((k) => {
        const e = { ip: r.pick(fams) ? lbV6(g, k) : lbV4(g, k) };
        if (r.chance(0.6)) e.ipMode = r.pick(['VIP', 'Proxy']);
        return e;
      });
      if (ingress.length) status = { loadBalancer: { ingress } };
    }
  }
  return { metadata: { name, namespace: ns, labels }, spec, status };
}

/** A random EndpointSlice `svc{i}-{k}` for Service svc{i} of `ns` (which may not exist yet). */
export function genSlice(r, ns, i, k, svc) {
  const v6 = svc?.spec?.ipFamilies ? r.pick(svc.spec.ipFamilies) === 'IPv6' : r.chance(0.3);
  const ports = [];
  const svcPorts = [...(svc?.spec?.ports ?? [{ name: 'http', protocol: r.pick(PROTOS) }])];
  if (r.chance(0.2)) svcPorts.push({ name: r.pick(PORT_NAMES), protocol: r.pick(PROTOS) });
  for (const sp of svcPorts) {
    if (ports.some((q) => (q.name ?? '') === (sp.name ?? ''))) continue;
    if (r.chance(0.1)) continue; // a port the slice lacks
    ports.push({ ...(sp.name ? { name: sp.name } : {}), port: r.pick([8080, 8081, 9090, 5353]), protocol: sp.protocol ?? 'TCP' });
  }
  const n = 1 + r.int(5);
  const endpoints = [];
  const used = new Set();
  for (let e = 0; e < n; e++) {
    const a = r.int(8);
    if (used.has(a)) continue;
    used.add(a);
    const cond = r.pick([
      { ready: true, serving: true, terminating: false }, { ready: true, serving: true, terminating: false },
      { ready: false, serving: true, terminating: true }, { ready: false, serving: false, terminating: true },
      { ready: false, serving: false, terminating: false }, {},
    ]);
    const ep = { addresses: [v6 ? podV6(a) : podV4(a)], conditions: cond };
    if (r.chance(0.85)) ep.nodeName = r.pick([NODE, NODE, 'node-b']);
    if (r.chance(0.6)) ep.zone = r.pick(ZONES);
    if (r.chance(0.3)) ep.hints = { forZones: [{ name: r.pick(ZONES) }] };
    ep.targetRef = { kind: 'Pod', namespace: ns, name: `pod-${a}` };
    endpoints.push(ep);
  }
  // (a manually managed slice can be relabelled to another Service: it moves)
  const owner = r.chance(0.08) ? `svc${(i + 1) % SLOTS}` : `svc${i}`;
  const labels = { 'kubernetes.io/service-name': owner, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' };
  if (svc?.metadata?.labels?.[PROXY_NAME]) labels[PROXY_NAME] = svc.metadata.labels[PROXY_NAME];
  if (svc?.metadata?.labels?.[HEADLESS] !== undefined || svc?.spec?.clusterIP === 'None') { if (r.chance(0.8)) labels[HEADLESS] = ''; }
  return { metadata: { name: `svc${i}-${k}`, namespace: ns, labels }, addressType: v6 ? 'IPv6' : 'IPv4', endpoints, ports };
}

export function genNode(r) {
  const addresses = [{ type: 'InternalIP', address: r.pick(['192.168.100.2', '192.168.100.3']) }];
  if (r.chance(0.5)) addresses.push({ type: 'InternalIP', address: r.pick(['fd00:100::2', 'fd00:100::3']) });
  if (r.chance(0.3)) addresses.push({ type: 'ExternalIP', address: '192.0.2.200' });
  if (r.chance(0.2)) addresses.reverse();
  addresses.push({ type: 'Hostname', address: NODE });
  const labels = {};
  if (r.chance(0.7)) labels['topology.kubernetes.io/zone'] = r.pick(ZONES);
  const spec = { podCIDR: '10.244.1.0/24', podCIDRs: r.chance(0.5) ? ['10.244.1.0/24', 'fd00:244:1::/64'] : ['10.244.1.0/24'] };
  if (r.chance(0.15)) spec.taints = [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1', effect: 'NoSchedule' }];
  return { metadata: { name: NODE, labels }, spec, status: { addresses } };
}

export function genServiceCIDR(r, name) {
  const pools = { kubernetes: [['10.96.0.0/16', 'fd00:96::/108'], ['10.96.0.0/16']], extra: [['10.97.0.0/16'], ['10.96.0.0/24', 'fd00:97::/112']] };
  return { metadata: { name }, spec: { cidrs: r.pick(pools[name]) } };
}

// ---- the incremental side and the fresh side ------------------------------------------------------

function memoryLogger() {
  const lines = [];
  const stream = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) { try { lines.push(JSON.parse(l)); } catch { /* */ } } cb(); } });
  return { log: pino({ level: 'info' }, stream), lines };
}

function kubeConfigSection() {
  return parseConfig({
    node: { name: NODE, addresses: [] }, ports: [{ name: 'p', type: 'tap', ifname: 't0', role: 'pod' }],
    // syncPeriod 1 h: no periodic full sync repairs what the partial syncs got wrong
    kubernetes: { minSyncPeriod: '30ms', syncPeriod: '1h', healthzBindAddress: '127.0.0.1:0', metricsBindAddress: '127.0.0.1:0', healthCheckBindAddress: 'off', listPageSize: 3 },
  }).kubernetes;
}

/** A watcher + control plane + in-thread core on `double`, its Node updates applied as NodeConfig. */
export async function startSide(double, { hostIPv6 = true } = {}) {
  const dp = new LocalDataplane();
  const cp = await createControlPlane({ dataplane: dp, listen: '127.0.0.1:0', healthz: false });
  const kc = new KubeConfig();
  kc.loadFromString(double.kubeconfig());
  const { log, lines } = memoryLogger();
  const side = { dp, cp, lines, node: null, cidrs: [], applied: '', wanted: '', chain: Promise.resolve(), applyErrors: [] };
  const program = () => {
    if (!side.node) return;
    const u = side.node;
    const spec = { nodeName: NODE, nodeAddresses: u.addresses, podCIDRs: u.podCIDRs };
    if (u.nodePortAddresses.length) spec.nodePortAddresses = u.nodePortAddresses;
    if (u.primary.length) spec.nodeIPs = u.primary;
    if (u.zone) spec.zone = u.zone;
    if (side.cidrs.length) spec.serviceCIDRs = side.cidrs;
    const obj = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: NODE }, spec };
    const text = JSON.stringify(obj);
    side.wanted = text;
    side.chain = side.chain.then(() => cp.core.apply([obj])).then(() => { side.applied = text; }, (e) => { side.applyErrors.push(`${e.message} ${text}`); side.applied = text; });
  };
  side.watcher = await KubeWatcher.start({
    config: kubeConfigSection(), nodeName: NODE, configuredAddresses: [], kubeConfig: kc,
    control: cp.core, metrics: cp.metrics, counters: () => dp.counters(), log, hostIPv6,
    onNode: (u) => { side.node = u; program(); },
    configuredServiceCIDRs: [], onServiceCIDRs: (c) => { side.cidrs = c; program(); },
    informer: { backoffInitialMs: 30, backoffMaxMs: 300, watchTimeoutSeconds: [300, 400] },
  });
  side.stop = async () => { await side.watcher.stop(); await side.chain.catch(() => {}); await cp.close(); };
  return side;
}

const served = (o) => { const l = o.metadata?.labels ?? {}; return !(HEADLESS in l) && !(PROXY_NAME in l); };

/** Why `side` has not caught up with the double yet ('' when it has). */
export function lag(side, double) {
  const w = side.watcher;
  const check = (inf, resource, filter) => {
    const want = new Map();
    for (const [, o] of double.state[resource]) if (filter(o)) want.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion);
    const have = new Map(inf.list().map((o) => [`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion]));
    if (!inf.synced) return `${resource} not listed`;
    if (want.size !== have.size) return `${resource}: ${have.size} of ${want.size}`;
    for (const [k, rv] of want) if (have.get(k) !== rv) return `${resource} ${k} at ${have.get(k)}, not ${rv}`;
    return '';
  };
  const why = check(w.informers.services, 'services', served) || check(w.informers.slices, 'endpointslices', served)
    || check(w.informers.node, 'nodes', (o) => o.metadata.name === NODE) || check(w.informers.serviceCIDRs, 'servicecidrs', () => true);
  if (why) return why;
  const s = w.sync;
  if (s.pending.size || s.running || s.timer) return 'sync pending';
  if (side.applied !== side.wanted) return 'node config pending';
  return '';
}

/** Waits until `side` has caught up with the double (twice in a row, 60 ms apart). */
export async function settle(side, double, { timeoutMs = 20000 } = {}) {
  const end = Date.now() + timeoutMs;
  let quiet = 0, why = '';
  while (Date.now() < end) {
    why = lag(side, double);
    if (!why) { quiet++; if (quiet >= 2) return; } else quiet = 0;
    await new Promise((res) => setTimeout(res, 60));
  }
  // (what the informers and the double's watches are doing: a watcher that stopped following)
  const inf = side.watcher.informers;
  const state = Object.entries(inf).map(([k, i]) => `${k} ${JSON.stringify(i.stats)} rv ${i.resourceVersion} emptyWatches ${i.watch?.emptyWatches}`).join('; ');
  const watches = [...double.watchers].map((w) => `${w.resource} since ${w.since} live ${w.live} sent ${w.sent}${w.frozen ? ' frozen' : ''}`).join('; ');
  const logs = side.lines.filter((l) => l.level >= 40).slice(-8).map((l) => `${l.msg} ${l.resource ?? ''} ${l.error ?? ''}`).join(' | ');
  throw new Error(`did not settle in ${timeoutMs} ms: ${why}\n  informers: ${state}\n  double: rv ${double.rv}, compacted at ${double.compactedRv}, open watches: ${watches || 'none'}, failures ${JSON.stringify(double.failures)}, watches from ${JSON.stringify(Object.fromEntries(Object.entries(double.stats.watchFrom).map(([k, v]) => [k, v.slice(-6)])))}\n  last warnings: ${logs}`);
}

// ---- the comparison ---------------------------------------------------------------------------------

const feKey = (f) => `${f.service} ${f.portName || '-'} ${f.kind} ${f.addr.includes(':') ? `[${f.addr}]` : f.addr}:${f.port}/${f.proto}`;

/** The core's Ir without ids: what the tables mean. */
export function irView(side) {
  const ir = side.dp.core.ir;
  const be = (id) => { const b = ir.backends.get(id); return b ? `${b.addr}:${b.port} s${b.state} ${b.nodeName ?? ''} ${b.zone ?? ''}` : `?${id}`; };
  const fronts = {};
  for (const f of ir.frontends.values()) {
    const slots = [];
    for (let s = 0; s < f.maglev.length; s++) {
      const v = f.maglev[s];
      const id = f.maglevIndexed ? f.backends[v] : v;
      const b = ir.backends.get(id);
      slots.push(b ? `${b.addr}:${b.port}` : `?${id}`);
    }
    // (run-length: the table is long)
    const rle = [];
    for (const x of slots) { const l = rle[rle.length - 1]; if (l && l[0] === x) l[1]++; else rle.push([x, 1]); }
    const cf = f.clusterFront ? ir.frontends.get(f.clusterFront) : undefined;
    fronts[feKey(f)] = {
      flags: f.flags, affinityTimeoutMs: f.affinityTimeoutMs, sourceRanges: [...f.sourceRanges].sort(),
      backends: f.backends.map(be).sort(), maglev: rle.map(([x, n]) => `${x}*${n}`).join(' '),
      clusterFront: cf ? feKey(cf) : f.clusterFront ? `?${f.clusterFront}` : null,
    };
  }
  const routes = ir.routes.map((r) => JSON.stringify(r)).sort();
  return { fronts, routes, snat: [ir.snatV4, ir.snatV6, ir.hairpinV4, ir.hairpinV6] };
}

/** The addresses and ports to send to: every frontend of either side, plus a fixed sample. */
function probes(views, r) {
  const set = new Map();
  const add = (addr, port, proto) => set.set(`${addr}|${port}|${proto}`, { addr, port, proto });
  for (const v of views) for (const k of Object.keys(v.fronts)) {
    const m = /^\S+ \S+ \S+ \[?([^\]]+?)\]?:(\d+)\/(\w+)$/.exec(k);
    if (m) add(m[1], Number(m[2]), m[3]);
  }
  for (let g = 0; g < NAMESPACES.length * SLOTS; g++) {
    for (const proto of PROTOS) {
      const port = r.pick([80, 81, 53, 443]);
      add(r.pick([clusterV4(g, 0), clusterV4(g, 1)]), port, proto);
      add(r.pick([clusterV6(g, 0), clusterV6(g, 1)]), port, proto);
      add(r.pick([extV4(g, 0), extV4(g, 1), lbV4(g, 0), lbV4(g, 1)]), port, proto);
      add(r.pick([extV6(g, 0), lbV6(g, 1)]), port, proto);
      add(r.pick(['192.168.100.2', '192.168.100.3', 'fd00:100::2', '192.0.2.200']), nodePortOf(g, r.int(3)), proto);
    }
  }
  for (const a of ['10.96.77.7', '10.97.1.1', 'fd00:96::ffff', 'fd00:97::1', '10.244.1.10', '8.8.8.8']) add(a, 80, 'TCP');
  return [...set.values()];
}

async function traces(side, list) {
  const out = {};
  for (const p of list) {
    const v6 = p.addr.includes(':');
    for (const src of v6 ? ['2001:db8:9::2', 'fd00:244:1::77'] : ['10.0.0.2', '10.244.1.77']) {
      for (const sport of [40000, 40123, 51515]) {
        const t = await side.dp.trace({ src, dst: p.addr, proto: p.proto, sport, dport: p.port });
        // an affinity miss mixes the batch clock into the Maglev hash (assembly/select.ts): on
        // those frontends the backend is any of the set the Ir comparison checks
        const fe = t.frontend ? side.dp.core.ir.frontends.get(t.frontend.id) : undefined;
        if (fe && fe.flags & L.FEF_AFFINITY && t.backend) t.backend = { addr: 'affinity', port: 0 };
        out[`${p.addr}:${p.port}/${p.proto} from ${src}:${sport}`] = `${t.verdict} ${t.reason} ${t.frontend ? `${t.frontend.service} ${t.frontend.kind} ${t.frontend.portName}` : '-'} -> ${t.backend ? `${t.backend.addr}:${t.backend.port}` : '-'}`;
      }
    }
  }
  return out;
}

/** The differences between two sides (an empty list when they serve the same). */
export async function compare(inc, fresh, r) {
  const a = irView(inc), b = irView(fresh);
  const diffs = [];
  for (const k of new Set([...Object.keys(a.fronts), ...Object.keys(b.fronts)])) {
    const x = JSON.stringify(a.fronts[k]), y = JSON.stringify(b.fronts[k]);
    if (x !== y) diffs.push(`frontend ${k}: incremental ${x ?? 'absent'}, fresh ${y ?? 'absent'}`);
  }
  const ra = new Set(a.routes), rb = new Set(b.routes);
  for (const x of ra) if (!rb.has(x)) diffs.push(`route only incremental: ${x}`);
  for (const x of rb) if (!ra.has(x)) diffs.push(`route only fresh: ${x}`);
  if (JSON.stringify(a.snat) !== JSON.stringify(b.snat)) diffs.push(`snat: incremental ${JSON.stringify(a.snat)}, fresh ${JSON.stringify(b.snat)}`);
  const list = probes([a, b], r);
  const ta = await traces(inc, list), tb = await traces(fresh, list);
  for (const k of Object.keys(ta)) if (ta[k] !== tb[k]) diffs.push(`packet to ${k}: incremental ${ta[k]}, fresh ${tb[k]}`);
  const sa = JSON.stringify(inc.watcher.sync.skippedObjects()), sb = JSON.stringify(fresh.watcher.sync.skippedObjects());
  if (sa !== sb) diffs.push(`skipped objects: incremental ${sa}, fresh ${sb}`);
  // every object generated is one the API server accepts (and none clash): one left out is a
  // conversion the model refuses — and an update left out keeps its previous version forwarding
  else if (sa !== '[]') diffs.push(`skipped objects (both sides): ${sa}`);
  return { diffs, probes: list.length };
}

// ---- the run ------------------------------------------------------------------------------------------

/**
 * The random operations: each a { what, run(double) } whose choices are all made when it is
 * generated (so a list of them replays without the generator: minimisation drops entries).
 */
export function genOp(r, storm = false) {
  const ns = r.pick(NAMESPACES), i = r.int(SLOTS);
  const key = `${ns}/svc${i}`;
  // objects are made when the op runs, from a seed drawn now: against the objects as they are
  // then (a slice for the Service's ports as they are, an update keeping its cluster IPs), so a
  // minimised sequence stays API-valid; `obj` is the last one made (for the report)
  const sub = r.int(2 ** 31);
  // (a storm: a fault one op in three)
  const roll = storm && r.chance(0.33) ? 0.85 + r.next() * 0.15 : r.next();
  const svcNow = (d) => d.state.services.get(key);
  if (roll < 0.26) {
    const op = { what: `apply Service ${key}`, run: (d) => { op.obj = genService(rng(sub), ns, i, svcNow(d)); d.apply('services', op.obj); } };
    return op;
  }
  if (roll < 0.31) {
    // deleted and created again: a new uid, maybe new cluster IPs (gen 1) and a new shape
    const op = { what: `recreate Service ${key}`, run: (d) => { const q = rng(sub); op.obj = genService(q, ns, i, undefined, q.int(2)); if (d.state.services.has(key)) d.delete('services', ns, `svc${i}`); d.create('services', op.obj); } };
    return op;
  }
  if (roll < 0.35) return { what: `delete Service ${key}`, run: (d) => { if (d.state.services.has(key)) d.delete('services', ns, `svc${i}`); } };
  const k = r.int(3);
  const sk = `${key}-${k}`;
  if (roll < 0.60) {
    const op = { what: `apply EndpointSlice ${sk}`, run: (d) => { op.obj = genSlice(rng(sub), ns, i, k, svcNow(d)); d.apply('endpointslices', op.obj); } };
    return op;
  }
  if (roll < 0.64) {
    const op = { what: `recreate EndpointSlice ${sk}`, run: (d) => { op.obj = genSlice(rng(sub), ns, i, k, svcNow(d)); if (d.state.endpointslices.has(sk)) d.delete('endpointslices', ns, `svc${i}-${k}`); d.create('endpointslices', op.obj); } };
    return op;
  }
  if (roll < 0.74) return { what: `delete EndpointSlice ${sk}`, run: (d) => { if (d.state.endpointslices.has(sk)) d.delete('endpointslices', ns, `svc${i}-${k}`); } };
  if (roll < 0.80) { const o = genNode(r); return { what: `apply Node (${o.status.addresses.map((a) => a.address).join(' ')}, zone ${o.metadata.labels['topology.kubernetes.io/zone'] ?? '-'}${o.spec.taints ? ', tainted' : ''})`, obj: o, run: (d) => d.apply('nodes', o) }; }
  if (roll < 0.85) {
    const name = r.pick(['kubernetes', 'extra']);
    if (r.chance(0.3)) return { what: `delete ServiceCIDR ${name}`, run: (d) => { if (d.state.servicecidrs.has(name)) d.delete('servicecidrs', undefined, name); } };
    const o = genServiceCIDR(r, name);
    return { what: `apply ServiceCIDR ${name} ${o.spec.cidrs.join(',')}`, obj: o, run: (d) => d.apply('servicecidrs', o) };
  }
  if (roll < 0.89) return { what: 'fault: history compacted, watches expired (410 Gone: re-list)', fault: true, run: (d) => { d.compact(); d.expireWatches(); } };
  if (roll < 0.93) return { what: 'fault: watch connections dropped', fault: true, run: (d) => { d.dropWatches(); } };
  if (roll < 0.96) return { what: 'fault: API server down', fault: true, run: (d) => { d.failRequests(1e9, 503, 'any'); d.dropWatches(); } };
  if (roll < 0.98) return { what: 'fault: API server back', fault: true, run: (d) => { d.failures = []; } };
  return { what: 'fault: down, history compacted meanwhile', fault: true, run: (d) => { d.failRequests(1e9, 503, 'any'); d.dropWatches(); d.compact(); } };
}

/** The starting objects (the first phase's list): a Node and the "kubernetes" ServiceCIDR. */
export function seedObjects(r) {
  return [
    { what: 'apply Node (initial)', run: (d) => d.apply('nodes', genNode(r)) },
    { what: 'apply ServiceCIDR kubernetes (initial)', run: (d) => d.apply('servicecidrs', { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16', 'fd00:96::/108'] } }) },
  ];
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/**
 * Runs `phases` (lists of ops) against a new double and an incremental side; after each phase
 * the API server is brought back, the side settles and a fresh side is compared with it.
 * Returns the first phase whose comparison differs ({ phase, diffs }) or null.
 */
export async function runPhases(phases, { seed, hostIPv6 = true, gapMs = (op) => op.gap ?? 0, log = () => {}, onlyLast = false } = {}) {
  // (every other seed without the watch cache: lists with resourceVersion 0 are paged too)
  const double = new ApiServerDouble({ bookmarkIntervalMs: 700, watchCache: (seed >>> 1) % 2 === 0 });
  await double.listen();
  let inc;
  try {
    inc = await startSide(double, { hostIPv6 });
    const r = rng(seed ^ 0x5bd1e995);
    for (let p = 0; p < phases.length; p++) {
      for (const op of phases[p]) {
        try { op.run(double); } catch (e) { log(`op ${op.what} failed: ${e.message}`); }
        const g = gapMs(op);
        if (g) await sleep(g);
      }
      double.failures = []; // (the server comes back before the phase is judged)
      await settle(inc, double);
      if (onlyLast && p < phases.length - 1) continue;
      const fresh = await startSide(double, { hostIPv6 });
      try {
        await settle(fresh, double);
        const { diffs, probes: n } = await compare(inc, fresh, r);
        const ir = inc.dp.core.ir;
        log(`phase ${p}: ${phases[p].length} ops, ${double.state.services.size} services, ${double.state.endpointslices.size} slices; ${ir.frontends.size} frontends, ${ir.backends.size} backends, ${inc.watcher.sync.skippedObjects().length} skipped, ${inc.watcher.sync.stats.partial} partial syncs; ${n} probes, ${diffs.length} differences`);
        if (process.env.WDP_KUBEFUZZ_VERBOSE) log(JSON.stringify(inc.watcher.sync.skippedObjects()));
        const errs = [...inc.applyErrors, ...fresh.applyErrors];
        if (errs.length) diffs.push(...errs.map((e) => `node config apply failed: ${e}`));
        if (diffs.length) return { phase: p, diffs };
      } finally { await fresh.stop(); }
    }
    return null;
  } finally {
    await inc?.stop();
    await double.close();
  }
}

/** The seeded run's phases: `count` phases of 1..8 ops, the first with the seed objects. */
export function genPhases(seed, count) {
  const r = rng(seed);
  // one seed in four a storm: faults one op in three, hardly a pause between ops
  const storm = seed % 4 === 1;
  const phases = [];
  for (let p = 0; p < count; p++) {
    const ops = p === 0 ? seedObjects(r) : [];
    const n = 1 + r.int(8);
    for (let k = 0; k < n; k++) {
      const op = genOp(r, storm);
      // a pause after it: none (batched with the next), short, or long enough for a sync; a
      // fault's long enough for the informers to meet it
      op.gap = op.fault ? (storm ? r.int(150) : 100 + r.int(400)) : storm ? r.pick([0, 0, 0, 5]) : r.pick([0, 0, 0, 10, 40, 120]);
      ops.push(op);
    }
    phases.push(ops);
  }
  return phases;
}

/** A failing run made smaller: the phases up to the failing one (each settled, the last judged),
 * whole phases dropped, then single ops, while it still fails. */
export async function minimise(phases, failingPhase, { seed, hostIPv6, log = () => {}, deadline }) {
  let ps = phases.slice(0, failingPhase + 1).map((p) => [...p]);
  const fails = async (list) => {
    try { return await runPhases(list, { seed, hostIPv6, onlyLast: true }); } catch (e) { log(`minimise: run error ${e.message}`); return null; }
  };
  let last = await fails(ps);
  if (!last) return { phases: ps, diffs: null, note: 'did not fail again (timing-dependent)' };
  for (let i = ps.length - 2; i >= 0 && Date.now() < deadline; i--) {
    const tryPs = ps.filter((_, j) => j !== i);
    const res = await fails(tryPs);
    if (res) { ps = tryPs; last = res; log(`minimise: ${ps.length} phases`); }
  }
  let changed = true;
  while (changed && Date.now() < deadline) {
    changed = false;
    for (let i = ps.length - 1; i >= 0; i--) {
      for (let k = ps[i].length - 1; k >= 0 && Date.now() < deadline; k--) {
        const tryPs = ps.map((p, j) => (j === i ? p.filter((_, m) => m !== k) : p)).filter((p) => p.length);
        const res = await fails(tryPs);
        if (res) { ps = tryPs; last = res; changed = true; log(`minimise: ${ps.flat().length} ops`); break; }
      }
    }
  }
  return { phases: ps, diffs: last.diffs };
}
