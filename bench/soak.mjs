#!/usr/bin/env node
// Soak of the real daemon as an operator runs it: `wdp start` in its own network namespace with
// three pods (two TAP, one AF_PACKET veth), a client and a remote namespace, fed either by the
// Kubernetes API-server double (test/lib/apiserver-double.js, `--feed kube`, the default: a
// kubeconfig pointing at it, the daemon's informers watching it) or by the control API (`--feed
// api`: `POST /api/v1/apply` / `/api/v1/delete`, as `wdp apply` / `wdp delete` send them).
// While bounded TCP connects and UDP datagrams flow through the Services (ClusterIP from the
// client namespace, NodePort from the remote one), rounds of changes churn them: Services created,
// deleted and recreated under an old name, endpoints flipping ready / serving-terminating /
// not serving, slices replaced by new ones, a port added and removed, node ports changed, session
// affinity on and off, a type switched; runtime pod ports (a TAP in a spare namespace, an
// AF_PACKET port on a spare veth) added and removed through `POST/DELETE /api/v1/ports` as the CNI
// plugin does (`--no-port-churn`: not); the double cuts the watches (dropped connections, 410
// ERROR events, history compacted), and the daemon is restarted (SIGTERM) `--restarts` times.
//
// After every round it samples (table below): the daemon's RSS, threads and open fds (/proc), its
// main thread's V8 heap after a full GC, external memory, active handles (timers, sockets, ...) and
// event-loop delay (p99 / max since the last sample), from a probe preloaded with NODE_OPTIONS
// (--import; `--no-probe` leaves it out) — and through it each worker thread's V8 heap after a GC
// and its Wasm memories' sizes — RSS by kind of mapping (/proc/PID/smaps: Wasm memories' resident
// pages, the brk heap, other anonymous memory, files, AF_PACKET rings), the state directory's SQLite
// store and WAL sizes, conntrack entries, Prometheus series (all, and those naming a Service that
// no longer exists), and the log (bytes, warn and error lines). At the end traffic stops and, once
// every flow has timed out (udpSeconds 5, TCP close 10 s), conntrack is read again. The verdict:
// each resource's growth per 1,000 changes (least squares over the last daemon run's samples after
// its first quarter, and over its second half), flagged when above its bound; whether RSS levelled
// off over the second half (a high-water mark) or went on growing (a leak); plus absolute checks
// (series of deleted Services, flows left after every flow timed out, error lines).
//
// Options for what the default leaves out: `--workers N` (every port an AF_PACKET port in one
// PACKET_FANOUT group per interface, the pods too; clients from 6 and 4 source addresses so flows
// spread; each worker's counters sampled: frames handed over, taken, ring full, not forwarded),
// `--dual-stack` (Services RequireDualStack with an IPv6 slice beside each IPv4 one, traffic to the
// IPv6 ClusterIP and NodePort too), `--restart-signal SIGTERM|SIGKILL|mixed`, `--long-lived N` (a
// Service `keep` never changed, N TCP connections per client kind held open all run long with an
// echo every 500 ms — broken, silent, moved to another pod and the largest gap are reported — their
// flows checked in the daemon's tables after each restart and at the end, and new connections to it
// that must all succeed), `--host-port` (the dataplane namespace plays the node: its stack behind a
// host port; with --long-lived, a hostNetwork client of `keep` and a management connection from
// outside to the node's own server held). After each restart the daemon's Services and slices are
// compared with every acknowledged change (and at the end).
//
//   sudo node bench/soak.mjs --minutes 4 [--feed kube|api] [--restarts 2] [--seed 1] [--json FILE]
//        [--log FILE] (the daemon's log) [--heap-snapshots DIR] (two, of the last daemon run: each thread's, workers' named -w<threadId>; RSS stays ~200 MiB higher after them) [--no-probe]
//        [--workers 2] [--dual-stack] [--restart-signal SIGKILL] [--long-lived 8] [--host-port]
//
// Needs root (network namespaces, TAPs) and a build (npm run build). Every loop is bounded by
// --minutes (and --rounds); namespaces, processes and the temp dir are removed at the end, also
// on failure or Ctrl-C.
import { loadavg, cpus } from 'node:os';
import { readFileSync, readdirSync, statSync, writeFileSync, existsSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname, basename } from 'node:path';
import { buildTopology, startPods, startDaemon, destroyTopology, api, sleep, NODE_V4, NODE_V6 } from '../dist/src/demo/topology.js';
import { startDoubleInNs } from '../test/lib/apiserver-double-ns.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i < 0 ? dflt : argv[i + 1]; };
const MINUTES = Number(opt('minutes', 3));
const FEED = opt('feed', 'kube');
const RESTARTS = Number(opt('restarts', 2));
const MAX_ROUNDS = Number(opt('rounds', 10_000));
const JSON_OUT = opt('json', '');
const LOG_OUT = opt('log', '');
const PROBE = !argv.includes('--no-probe');
const HEAP_DIR = opt('heap-snapshots', '');
const PORT_CHURN = !argv.includes('--no-port-churn');
const WORKERS = Number(opt('workers', 1));              // >1: every port an AF_PACKET fanout port shared by the workers
const IPV6 = argv.includes('--dual-stack');              // Services dual-stack (IPv4 + IPv6 slices), traffic over both families
const SIGNAL = opt('restart-signal', 'SIGTERM');         // SIGTERM | SIGKILL | mixed (alternating, SIGKILL first)
const LONG_LIVED = Number(opt('long-lived', 0));         // TCP connections held open through the whole run (echo every 500 ms)
const HOST_PORT = argv.includes('--host-port');          // the node's own stack (the dataplane namespace) behind a host port; with --long-lived its connections held too
let seed = Number(opt('seed', 1)) >>> 0 || 1;
if (!(MINUTES > 0) || !['kube', 'api'].includes(FEED) || !(WORKERS >= 1) || !['SIGTERM', 'SIGKILL', 'mixed'].includes(SIGNAL) || !(LONG_LIVED >= 0) || (HOST_PORT && WORKERS > 1)) {
  console.error('usage: soak.mjs --minutes N [--feed kube|api] [--restarts R] [--rounds N] [--seed S] [--json FILE] [--log FILE] [--heap-snapshots DIR] [--no-probe] [--no-port-churn]\n' +
    '        [--workers N] [--dual-stack] [--restart-signal SIGTERM|SIGKILL|mixed] [--long-lived N] [--host-port] (not with --workers: a host port is a TAP)');
  process.exit(2);
}
if (process.getuid?.() !== 0) { console.error('soak.mjs needs root (network namespaces, TAP ports)'); process.exit(2); }

const rnd = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed / 2 ** 32; };
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];

// ---- the probe (preloaded into the daemon's main thread, and from there into its worker threads) -------
// Writes its sample to $WDP_SOAK_PROBE whenever $WDP_SOAK_PROBE.req holds a number it has not
// answered: a full GC first (V8's gc exposed at run time), so heapUsed is what is live. The main
// thread's Worker is wrapped so every worker thread (forwarding workers, the store's writer) loads
// the probe before its own module: there it records the Wasm memories its thread instantiates and
// answers in $WDP_SOAK_PROBE.w<threadId> (its heap after a GC, Wasm memory bytes; a heap snapshot
// of the thread when one is asked for) — on its event loop, which a forwarding worker runs at
// least every 20 ms while idle.
const PROBE_SOURCE = `
import { isMainThread, threadId } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { setFlagsFromString, writeHeapSnapshot, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
const file = isMainThread ? process.env.WDP_SOAK_PROBE : globalThis.__wdpSoakProbe;
delete process.env.WDP_SOAK_PROBE; delete process.env.NODE_OPTIONS;   // not for the daemon's children
const mems = [];
if (!isMainThread && file) {
  const Instance = WebAssembly.Instance;
  WebAssembly.Instance = function (m, i) { const inst = new Instance(m, i); if (inst.exports.memory instanceof WebAssembly.Memory) mems.push(inst.exports.memory); return inst; };
  WebAssembly.Instance.prototype = Instance.prototype;
}
if (isMainThread && file) {
  setFlagsFromString('--expose-gc');
  const wt = createRequire(import.meta.url)('node:worker_threads');
  const Worker = wt.Worker, self = import.meta.url;
  wt.Worker = class extends Worker {
    constructor(what, opts = {}) {
      if (opts.eval) { super(what, opts); return; }
      const url = what instanceof URL ? what.href : String(what).startsWith('file:') ? String(what) : 'file://' + what;
      super('globalThis.__wdpSoakProbe = ' + JSON.stringify(file) + '; import(' + JSON.stringify(self) + ').then(() => import(' + JSON.stringify(url) + '))', { ...opts, eval: true });
    }
  };
  syncBuiltinESMExports();
}
if (file) {
  const gc = runInNewContext('gc');
  const out = isMainThread ? file : file + '.w' + threadId;
  const eld = monitorEventLoopDelay({ resolution: 10 }); eld.enable();
  let answered = -1;
  const tick = () => {
    let req, snap; try { [req, snap] = JSON.parse(readFileSync(file + '.req', 'utf8')); } catch { return; }
    if (!(req > answered)) return;
    answered = req;
    gc();
    if (snap) writeHeapSnapshot(isMainThread ? snap : snap.replace(/\\.heapsnapshot$/, '') + '-w' + threadId + '.heapsnapshot');
    const o = { req, pid: process.pid, thread: threadId, eldP99: eld.percentile(99) / 1e6, eldMax: eld.max / 1e6 };
    eld.reset();
    if (isMainThread) {
      const m = process.memoryUsage();
      const handles = {};
      for (const r of process.getActiveResourcesInfo()) handles[r] = (handles[r] ?? 0) + 1;
      Object.assign(o, { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, handles });
    } else {
      const h = getHeapStatistics();
      Object.assign(o, { heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, external: h.external_memory, wasm: mems.map((m) => m.buffer.byteLength) });
    }
    writeFileSync(out + '.tmp', JSON.stringify(o)); renameSync(out + '.tmp', out);
  };
  setInterval(tick, 100).unref();
}
`;

// ---- objects ------------------------------------------------------------------------------------------
const NS = 'default';
// extra client addresses (--workers N: the owner of a flow is keyed by its client's address)
const CLIENTS = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'];
const REMOTES = ['192.168.100.10', '192.168.100.11', '192.168.100.12', '192.168.100.13'];
const CONDITIONS = [
  { ready: true, serving: true, terminating: false },
  { ready: true, serving: true, terminating: false },
  { ready: false, serving: true, terminating: true },
  { ready: false, serving: false, terminating: true },
  { ready: false, serving: false, terminating: false },
];
function serviceObj(s) {
  const ports = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', ...(s.nodePort ? { nodePort: s.nodePort } : {}) },
    { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP', ...(s.nodePort ? { nodePort: s.nodePort } : {}) }];
  if (s.alt) ports.push({ name: 'alt', port: 81, targetPort: 9090, protocol: 'TCP', ...(s.nodePort ? { nodePort: s.nodePort + 500 } : {}) });
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: NS },
    spec: {
      type: s.nodePort ? 'NodePort' : 'ClusterIP', clusterIP: s.ip, ...families(s),
      internalTrafficPolicy: 'Cluster', ...(s.nodePort ? { externalTrafficPolicy: 'Cluster' } : {}), ports,
      sessionAffinity: s.affinity ? 'ClientIP' : 'None', ...(s.affinity ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } } } : {}),
    },
    ...(FEED === 'kube' ? { status: { loadBalancer: {} } } : {}),
  };
}
function families(s) {
  return s.ip6 ? { clusterIPs: [s.ip, s.ip6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }
    : { clusterIPs: [s.ip], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' };
}
/** A slice's writes: its IPv4 slice, and with --dual-stack its IPv6 twin (`<name>-6`). */
function sliceWrites(op, s, sl, pods) {
  const w = [[op, sliceObj(s, sl, pods, 'IPv4')]];
  if (s.ip6) w.push([op, sliceObj(s, sl, pods, 'IPv6')]);
  return w;
}
function sliceObj(s, sl, pods, family) {
  const v6 = family === 'IPv6';
  const ports = [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }];
  if (s.alt) ports.push({ name: 'alt', port: 9090, protocol: 'TCP' });
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: v6 ? `${sl.name}-6` : sl.name, namespace: NS, labels: { 'kubernetes.io/service-name': s.name } }, addressType: family,
    endpoints: sl.eps.map((e) => ({ addresses: [v6 ? pods[e.pod].ip6 : pods[e.pod].ip], conditions: CONDITIONS[e.cond], nodeName: 'node-a' })), ports,
  };
}

// ---- the churn model ----------------------------------------------------------------------------------
class Churn {
  constructor(pods) {
    this.pods = pods;
    this.live = new Map();         // name -> { name, ip, nodePort, alt, affinity, slices: [{ name, eps }] }
    this.deleted = [];             // names of deleted Services (recreated now and then)
    this.ever = new Set();
    this.seq = 0; this.sliceSeq = 0;
    this.freeIps = Array.from({ length: 250 }, (_, i) => `10.96.60.${i + 2}`);
    this.freePorts = Array.from({ length: 400 }, (_, i) => 30100 + i);
  }
  eps() { return this.pods.map((_, pod) => ({ pod, cond: Math.floor(rnd() * CONDITIONS.length) })).filter(() => rnd() < 0.8); }
  newSlice(s) { return { name: `${s.name}-${(this.sliceSeq++).toString(36)}`, eps: this.eps() }; }
  takePort() { return this.freePorts.splice(Math.floor(rnd() * this.freePorts.length), 1)[0]; }
  create(name = `soak-${this.seq++}`) {
    const ip = this.freeIps.shift();
    const s = { name, ip, ip6: IPV6 ? `fd00:96::60:${ip.split('.')[3]}` : null, nodePort: rnd() < 0.3 ? this.takePort() : 0, alt: rnd() < 0.3, affinity: rnd() < 0.2, slices: [] };
    s.slices.push(this.newSlice(s));
    this.live.set(name, s); this.ever.add(name);
    return [['put', serviceObj(s)], ...s.slices.flatMap((sl) => sliceWrites('put', s, sl, this.pods))];
  }
  remove(s) {
    this.live.delete(s.name); this.deleted.push(s.name);
    this.freeIps.push(s.ip); if (s.nodePort) this.freePorts.push(s.nodePort);
    return [...s.slices.flatMap((sl) => sliceWrites('del', s, sl, this.pods)), ['del', serviceObj(s)]];
  }
  /** One round's writes: [op, object] in order. */
  round() {
    const w = [];
    const svcs = () => [...this.live.values()];
    for (let i = 0; i < 4; i++) w.push(...this.create());
    if (this.deleted.length && rnd() < 0.7) {                  // recreated under an old name
      const name = this.deleted.splice(Math.floor(rnd() * this.deleted.length), 1)[0];
      w.push(...this.create(name));
    }
    for (let i = 0; i < 6; i++) {                               // endpoints flip
      const s = pick(svcs()); const sl = pick(s.slices);
      sl.eps = this.eps(); w.push(...sliceWrites('put', s, sl, this.pods));
    }
    for (let i = 0; i < 2; i++) {                               // a slice replaced by a new one
      const s = pick(svcs()); const old = s.slices.shift();
      const sl = this.newSlice(s); s.slices.push(sl);
      w.push(...sliceWrites('put', s, sl, this.pods), ...sliceWrites('del', s, old, this.pods));
    }
    { const s = pick(svcs()); if (s.slices.length < 3) { const sl = this.newSlice(s); s.slices.push(sl); w.push(...sliceWrites('put', s, sl, this.pods)); } }
    for (let i = 0; i < 2; i++) {                               // a port added or removed
      const s = pick(svcs()); s.alt = !s.alt;
      w.push(['put', serviceObj(s)], ...s.slices.flatMap((sl) => sliceWrites('put', s, sl, this.pods)));
    }
    for (let i = 0; i < 2; i++) {                               // node port changed / type switched
      const s = pick(svcs());
      if (s.nodePort && rnd() < 0.7) { const old = s.nodePort; s.nodePort = this.takePort(); this.freePorts.push(old); }
      else if (s.nodePort) { this.freePorts.push(s.nodePort); s.nodePort = 0; } else s.nodePort = this.takePort();
      w.push(['put', serviceObj(s)]);
    }
    for (let i = 0; i < 2; i++) { const s = pick(svcs()); s.affinity = !s.affinity; w.push(['put', serviceObj(s)]); }
    while (this.live.size > 24) w.push(...this.remove(this.live.values().next().value));
    return w;
  }
  /** Services with a serving endpoint (for traffic). */
  serving() { return [...this.live.values()].filter((s) => s.slices.some((sl) => sl.eps.some((e) => CONDITIONS[e.cond].serving))); }
}

// ---- feeds ----------------------------------------------------------------------------------------------
const restPath = (o, named) => {
  const base = o.kind === 'Service' ? `/api/v1/namespaces/${NS}/services` : `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
  return named ? `${base}/${o.metadata.name}` : base;
};
function kubeFeed(double) {
  const exists = new Set();
  return async (writes) => {
    for (const [op, o] of writes) {
      const key = `${o.kind}/${o.metadata.name}`;
      if (op === 'del') { await double('DELETE', restPath(o, true)); exists.delete(key); continue; }
      const { apiVersion, kind, ...body } = o;
      if (exists.has(key)) await double('PUT', restPath(o, true), body); else { await double('POST', restPath(o, false), body); exists.add(key); }
    }
  };
}
function apiFeed(topo) {
  return async (writes) => {
    // consecutive writes of one kind of operation go in one request, as `wdp apply -f DIR` sends them
    for (let i = 0; i < writes.length;) {
      const op = writes[i][0]; const batch = []; const names = new Set();
      const key = (o) => `${o.kind}/${o.metadata.name}`;
      while (i < writes.length && writes[i][0] === op && batch.length < 8 && !names.has(key(writes[i][1]))) { names.add(key(writes[i][1])); batch.push(writes[i++][1]); }
      const r = await api(topo, 'POST', op === 'put' ? '/api/v1/apply' : '/api/v1/delete', batch);
      if (r.status !== 200) throw new Error(`${op} failed ${r.status}: ${r.text.slice(0, 300)}`);
    }
  };
}

/** Whether the daemon is being restarted (from the signal until it shows its state again), and how many times it was. */
const RESTART = { down: false, epoch: 0 };

// ---- traffic (bounded: one short batch per iteration, until stopped) -------------------------------------
const TRAFFIC_SCRIPT = `
const http = require('http'), dgram = require('dgram');
const [kind, host, port, n, local] = process.argv.slice(1); const out = { ok: 0, fail: 0, why: {} };
(async () => {
  for (let i = 0; i < Number(n); i++) {
    const ok = await new Promise((resolve) => {
      if (kind === 'tcp') {
        const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: 1500, ...(local ? { localAddress: local } : {}) }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode === 200 || 'http' + res.statusCode)); });
        req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' }))); req.on('error', (e) => resolve(e.code || 'error'));
      } else {
        const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4'); if (local) s.bind(0, local); const t = setTimeout(() => { s.close(); resolve('timeout'); }, 1500);
        s.on('message', () => { clearTimeout(t); s.close(); resolve(true); }); s.on('error', (e) => { clearTimeout(t); s.close(); resolve(e.code || 'error'); });
        s.send('soak', Number(port), host);
      }
    });
    if (ok === true) out.ok++; else { out.fail++; out.why[ok] = (out.why[ok] ?? 0) + 1; }
  }
  console.log(JSON.stringify(out));
})();`;
function startTraffic(topo, churn) {
  const stats = { tcpOk: 0, tcpFail: 0, udpOk: 0, udpFail: 0, tcp6Ok: 0, tcp6Fail: 0, udp6Ok: 0, udp6Fail: 0, stableOk: 0, stableFail: 0, stableAtRestartOk: 0, stableAtRestartFail: 0, runs: 0, why: {} };
  let stop = false;
  const one = async (ns, kind, host, port, n, local = '', as = kind) => {
    const epoch = RESTART.epoch;
    const r = await topo.lab.execAsync(ns, process.execPath, ['-e', TRAFFIC_SCRIPT, kind, host, String(port), String(n), local], { timeoutMs: 20_000 });
    try {
      const o = JSON.parse(r.stdout.trim().split('\n').pop());
      // a batch that overlapped a restart: its failures are the restart's downtime, counted apart
      if (as === 'stable' && (RESTART.down || RESTART.epoch !== epoch)) as = 'stableAtRestart';
      stats[`${as}Ok`] += o.ok; stats[`${as}Fail`] += o.fail;
      for (const [k, v] of Object.entries(o.why)) stats.why[`${as} ${k}`] = (stats.why[`${as} ${k}`] ?? 0) + v;
    } catch { /* the client did not start in time (load) */ }
  };
  const loop = (async () => {
    while (!stop) {
      const live = churn.serving();
      if (!live.length) { await sleep(200); continue; }
      const s = pick(live);
      stats.runs++;
      // several client addresses with several workers (the owner of a flow is keyed by its client)
      const src = WORKERS > 1 ? pick(CLIENTS) : '';
      await Promise.all([
        one(topo.ns.client, 'tcp', s.ip, 80, 4, src),
        one(topo.ns.client, 'udp', s.ip, 53, 4, src),
        s.nodePort ? one(topo.ns.remote, 'tcp', NODE_V4, s.nodePort, 2) : undefined,
        s.ip6 ? one(topo.ns.client, 'tcp', s.ip6, 80, 2, '', 'tcp6') : undefined,
        s.ip6 ? one(topo.ns.client, 'udp', s.ip6, 53, 2, '', 'udp6') : undefined,
        s.ip6 && s.nodePort ? one(topo.ns.remote, 'tcp', NODE_V6, s.nodePort, 1, '', 'tcp6') : undefined,
        // the Service that is never changed (--long-lived): every new connection to it must succeed
        ...(LONG_LIVED ? [one(topo.ns.client, 'tcp', KEEP.ip, 80, 2, src, 'stable'), one(topo.ns.remote, 'tcp', NODE_V4, KEEP.nodePort + 1, 1, '', 'stable'),
          ...(IPV6 ? [one(topo.ns.client, 'tcp', KEEP.ip6, 80, 1, '', 'stable')] : []),
          ...(HOST_PORT ? [one(topo.ns.dp, 'tcp', KEEP.ip, 80, 1, '', 'stable'), one(topo.ns.dp, 'tcp', NODE_V4, KEEP.nodePort + 1, 1, '', 'stable')] : [])] : []),
      ]);
    }
  })();
  return { stats, stop: async () => { stop = true; await loop; } };
}

// ---- long-lived connections (--long-lived N) ------------------------------------------------------------
// A Service `keep` (ClusterIP 10.96.61.1 [fd00:96::61:1], NodePort 31500, TCP 7 -> 7007 on every
// pod, never churned) and a line echo server in every pod answering `<pod> <line>`. Holders (one
// process in the client namespace, one in the remote one) open N connections each and send a line
// every 500 ms on each; a connection that closes or errors is broken (never reopened), one whose
// echoes come from another pod moved, and the largest gap between two echoes is kept.
const KEEP = { name: 'keep', ip: '10.96.61.1', ip6: IPV6 ? 'fd00:96::61:1' : null, nodePort: 31500 };   // above the churn's node ports (30100..30499, +500 for its third port)
const ECHO_SCRIPT = `
const net = require('net'); const name = process.argv[1];
net.createServer((s) => { let buf = ''; s.on('error', () => {}); s.on('data', (d) => { buf += d; let k; while ((k = buf.indexOf('\\n')) >= 0) { s.write(name + ' ' + buf.slice(0, k) + '\\n'); buf = buf.slice(k + 1); } }); })
  .listen({ port: 7007, host: '::' }, () => console.log('ready'));`;
const HOLD_SCRIPT = `
const net = require('net'); const targets = JSON.parse(process.argv[1]);
const conns = targets.map((t, i) => {
  const c = { i, t, pod: null, moved: 0, sent: 0, got: 0, last: Date.now(), maxGap: 0, state: 'connecting', why: null, buf: '' };
  c.sock = net.connect({ host: t.host, port: t.port, ...(t.local ? { localAddress: t.local } : {}) });
  c.sock.setNoDelay(true);
  c.sock.on('connect', () => { c.state = 'open'; c.last = Date.now(); });
  c.sock.on('data', (d) => { c.buf += d; let k; while ((k = c.buf.indexOf('\\n')) >= 0) { const pod = c.buf.slice(0, k).split(' ')[0]; c.buf = c.buf.slice(k + 1);
    if (c.pod && pod !== c.pod) c.moved++; c.pod = pod; c.got++; const now = Date.now(); c.maxGap = Math.max(c.maxGap, now - c.last); c.last = now; } });
  c.sock.on('error', (e) => { c.why = c.why || e.code || e.message; });
  c.sock.on('close', () => { if (c.state !== 'closing') { c.state = 'broken'; c.why = c.why || 'closed'; } });
  return c;
});
setInterval(() => { for (const c of conns) if (c.state === 'open') c.sock.write(c.sent++ + '\\n'); }, 500);
const report = () => { const now = Date.now(); console.log(JSON.stringify(conns.map((c) => ({ i: c.i, host: c.t.host, port: c.t.port, local: c.t.local, state: c.state, why: c.why, pod: c.pod,
  moved: c.moved, sent: c.sent, got: c.got, maxGapMs: c.maxGap, sinceMs: now - c.last })))); };
setInterval(report, 1000);
process.on('SIGTERM', () => { for (const c of conns) { if (c.state === 'open') c.state = 'closing'; c.sock.destroy(); } report(); process.exit(0); });`;
function keepWrites(pods) {
  const s = { ...KEEP, alt: false, affinity: false, slices: [{ name: 'keep-0', eps: pods.map((_, pod) => ({ pod, cond: 0 })) }] };
  const svc = serviceObj(s);
  svc.spec.ports = [{ name: 'echo', port: 7, targetPort: 7007, protocol: 'TCP', nodePort: KEEP.nodePort }, { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: KEEP.nodePort + 1 }];
  const slices = sliceWrites('put', s, s.slices[0], pods).map(([op, o]) => [op, { ...o, ports: [{ name: 'echo', port: 7007, protocol: 'TCP' }, { name: 'http', port: 8080, protocol: 'TCP' }] }]);
  return [['put', svc], ...slices];
}
async function startEcho(topo) {
  const where = [...topo.pods, ...(HOST_PORT ? [{ name: 'node', ns: topo.ns.dp }] : [])];
  await Promise.all(where.map((pod) => new Promise((resolve, reject) => {
    const child = topo.lab.spawn(pod.ns, process.execPath, ['-e', ECHO_SCRIPT, pod.name]);
    topo.podProcs.push(child);
    const timer = setTimeout(() => reject(new Error(`echo server in ${pod.name} not ready`)), 10_000);
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
  })));
}
function startHolders(topo, n) {
  const per = (list, k) => Array.from({ length: n }, (_, i) => list[i % list.length]).map(k);
  const sets = [
    [topo.ns.client, per(WORKERS > 1 ? CLIENTS : [''], (local) => ({ host: KEEP.ip, port: 7, local }))],
    [topo.ns.remote, per(WORKERS > 1 ? REMOTES : [''], (local) => ({ host: NODE_V4, port: KEEP.nodePort, local }))],
  ];
  if (IPV6) sets.push([topo.ns.client, per([''], () => ({ host: KEEP.ip6, port: 7 }))], [topo.ns.remote, per([''], () => ({ host: NODE_V6, port: KEEP.nodePort }))]);
  // the host port: the node's own stack as a client of the Service (a hostNetwork client) and as a
  // server reached from outside (management, as SSH), through wdp
  if (HOST_PORT) sets.push([topo.ns.dp, per([''], () => ({ host: KEEP.ip, port: 7 }))], [topo.ns.remote, per([''], () => ({ host: NODE_V4, port: 7007 }))]);
  const holders = sets.map(([ns, targets]) => {
    const child = topo.lab.spawn(ns, process.execPath, ['-e', HOLD_SCRIPT, JSON.stringify(targets)]);
    const h = { child, last: [], out: '' };
    child.stdout.on('data', (d) => { h.out += d; let k; while ((k = h.out.indexOf('\n')) >= 0) { try { h.last = JSON.parse(h.out.slice(0, k)); } catch { /* partial */ } h.out = h.out.slice(k + 1); } });
    return h;
  });
  const status = () => {
    const all = holders.flatMap((h) => h.last);
    return { conns: all.length, open: all.filter((c) => c.state === 'open').length, broken: all.filter((c) => c.state === 'broken'),
      moved: all.reduce((a, c) => a + c.moved, 0), maxGapMs: Math.max(0, ...all.map((c) => c.maxGapMs)), stalled: all.filter((c) => c.state === 'open' && c.sinceMs > 5000), all };
  };
  const stop = async () => {
    for (const h of holders) h.child.kill('SIGTERM');
    await Promise.all(holders.map((h) => new Promise((r) => { if (h.child.exitCode !== null) return r(); const t = setTimeout(r, 3000); h.child.once('exit', () => { clearTimeout(t); r(); }); })));
    return status();
  };
  return { status, stop };
}

/** The held connections' flows (the `keep` Service's echo port, by ClusterIP and NodePort) as the
 * daemon lists them, summed over its workers: one per connection, none twice (a flow in two workers'
 * tables = its two directions met different workers, or a restored flow went to the wrong one). */
async function heldFlows(topo, held) {
  const items = (await api(topo, 'GET', '/api/v1/conntrack?service=default/keep&limit=1000')).json?.items ?? [];
  const mine = items.filter((f) => f.proto === 'TCP' && (f.vipPort === 7 || f.vipPort === KEEP.nodePort) && !/closing|half_closed/.test(f.state));
  const seen = new Map();
  for (const f of mine) { const k = `${f.client}:${f.clientPort}>${f.vip}:${f.vipPort}`; seen.set(k, (seen.get(k) ?? 0) + 1); }
  const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
  const viaWdp = held.all.filter((c) => c.state === 'open' && !(HOST_PORT && c.port === 7007)).length;   // the management connection is bridged, not a flow
  return { listed: mine.length, distinct: seen.size, twice, heldOpen: viaWdp, states: [...new Set(mine.map((f) => f.state))] };
}

// ---- the daemon's state against the acknowledged changes -----------------------------------------------
/** What differs between the daemon's Services and EndpointSlices (`soak-*`) and the churn model's:
 * a Service missing or extra, its cluster IPs, ports, node port or affinity; a slice missing or
 * extra, or its endpoints (address and ready/serving/terminating). Kube feed: retried for 10 s (the
 * informers catch up). */
async function stateCheck(topo, churn) {
  let diffs = [];
  // the kube feed converges once its watches are back: after cuts a watcher waits up to 30 s
  // before it watches again (client-go's reflector backoff, src/kube), so the check waits 35 s
  for (let attempt = 0; attempt < (FEED === 'kube' ? 70 : 1); attempt++) {
    if (attempt) await sleep(500);
    diffs = [];
    const svcs = (await api(topo, 'GET', '/api/v1/services?limit=1000')).json?.items ?? [];
    const slices = (await api(topo, 'GET', '/api/v1/endpointslices?limit=1000')).json?.items ?? [];
    const have = new Map(svcs.filter((x) => x.metadata.name.startsWith('soak-')).map((x) => [x.metadata.name, x]));
    const haveSl = new Map(slices.filter((x) => x.metadata.name.startsWith('soak-')).map((x) => [x.metadata.name, x]));
    const wantSl = new Map();
    for (const [name, m] of churn.live) {
      const want = serviceObj(m).spec; const got = have.get(name)?.spec;
      have.delete(name);
      if (!got) { diffs.push(`service ${name} missing`); continue; }
      const key = (sp) => JSON.stringify([sp.clusterIPs ?? [sp.clusterIP], sp.type, (sp.ports ?? []).map((p) => [p.name, p.port, p.protocol, String(p.targetPort), p.nodePort ?? 0]).sort(), sp.sessionAffinity ?? 'None']);
      if (key(want) !== key(got)) diffs.push(`service ${name}: ${key(got)} for ${key(want)}`);
      for (const sl of m.slices) for (const [, o] of sliceWrites('put', m, sl, churn.pods)) wantSl.set(o.metadata.name, o);
    }
    for (const name of have.keys()) diffs.push(`service ${name} deleted but present`);
    const eps = (o) => JSON.stringify((o.endpoints ?? []).map((e) => [e.addresses, !!e.conditions?.ready, !!e.conditions?.serving, !!e.conditions?.terminating]).sort());
    for (const [name, o] of wantSl) {
      const got = haveSl.get(name); haveSl.delete(name);
      if (!got) diffs.push(`slice ${name} missing`); else if (eps(got) !== eps(o)) diffs.push(`slice ${name}: ${eps(got)} for ${eps(o)}`);
    }
    for (const name of haveSl.keys()) diffs.push(`slice ${name} deleted but present`);
    if (!diffs.length) break;
  }
  return diffs;
}

// ---- sampling ----------------------------------------------------------------------------------------
const procField = (pid, field) => { try { const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? Number(m[1]) : null; } catch { return null; } };
const fdCount = (pid) => { try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return null; } };
const fdKinds = (pid) => {
  const k = {};
  try { for (const f of readdirSync(`/proc/${pid}/fd`)) { let l; try { l = readlinkSync(`/proc/${pid}/fd/${f}`); } catch { continue; } const t = /^(\w+):/.exec(l)?.[1] ?? (l.startsWith('/') ? 'file' : l); k[t] = (k[t] ?? 0) + 1; } } catch { /* gone */ }
  return k;
};
const fileSize = (p) => { try { return statSync(p).size; } catch { return 0; } };

async function probeSample(file, req, snap) {
  if (!PROBE) return null;
  writeFileSync(`${file}.req`, JSON.stringify([req, snap]));
  for (let i = 0; i < (snap ? 600 : 60); i++) {
    try { const o = JSON.parse(readFileSync(file, 'utf8')); if (o.req === req) return o; } catch { /* not yet */ }
    await sleep(50);
  }
  return null;
}

/** The other threads' answers to request `req` (those with a probe: every worker thread), by thread id.
 * A thread that has exited leaves its last answer behind; it is left out once the others answered. */
async function threadSamples(file, req) {
  if (!PROBE) return null;
  const dir = dirname(file), prefix = basename(file) + '.w';
  let got = {};
  for (let i = 0; i < 60; i++) {
    got = {}; let waiting = 0;
    for (const f of readdirSync(dir)) {
      if (!f.startsWith(prefix) || f.endsWith('.tmp')) continue;
      try { const o = JSON.parse(readFileSync(join(dir, f), 'utf8')); if (o.req === req) got[o.thread] = o; else waiting++; } catch { waiting++; }
    }
    if (!waiting) break;
    await sleep(50);
  }
  return got;
}

/** RSS by kind of mapping (/proc/PID/smaps): Wasm linear memories (V8 reserves each one's address
 * space whole with its guard region: an anonymous read-write mapping of the memory's size right
 * before an inaccessible one, together 4 GiB and more), the main thread's brk heap (malloc), other
 * anonymous mappings (V8 heap pages, other threads' malloc arenas, stacks), files (code, the
 * SQLite store's mappings) and sockets (AF_PACKET rings: 4 MiB per port and worker). */
function smapsRss(pid) {
  const r = { wasm: 0, wasmEach: [], brk: 0, anon: 0, file: 0, rings: 0 };
  let text; try { text = readFileSync(`/proc/${pid}/smaps`, 'utf8'); } catch { return null; }
  const maps = [];
  let cur = null;
  for (const line of text.split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (h) { cur = { start: BigInt('0x' + h[1]), end: BigInt('0x' + h[2]), perms: h[3], kind: h[4] === '[heap]' ? 'brk' : h[4].startsWith('socket:') ? 'rings' : h[4].startsWith('/') ? 'file' : 'anon', rss: 0 }; maps.push(cur); continue; }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m && cur) cur.rss = Number(m[1]) * 1024;
  }
  for (let i = 0; i < maps.length; i++) {
    const a = maps[i], b = maps[i + 1];
    if (a.kind === 'anon' && a.perms.startsWith('rw') && b && b.kind === 'anon' && b.perms.startsWith('---') && b.start === a.end && b.end - a.start >= 4n << 30n) {
      r.wasm += a.rss; r.wasmEach.push(mib(a.rss));
    } else r[a.kind] += a.rss;
  }
  return { wasmMiB: mib(r.wasm), wasmEachMiB: r.wasmEach, brkMiB: mib(r.brk), anonMiB: mib(r.anon), fileMiB: mib(r.file), ringsMiB: mib(r.rings) };
}

function logStats(text) {
  let warn = 0, error = 0; const errors = [];
  for (const line of text.split('\n')) {
    const m = /"level":(\d+)/.exec(line);
    if (!m) continue;
    const lv = Number(m[1]);
    if (lv >= 50) { error++; if (errors.length < 20) errors.push(line.slice(0, 400)); } else if (lv >= 40) warn++;
  }
  return { warn, error, errors };
}

function seriesStats(text, liveNames) {
  let series = 0, perService = 0, dead = 0; const deadNames = new Set();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /service="([^"]+)"/.exec(line);
    if (!m) { series++; continue; }
    perService++;
    if (!liveNames.has(m[1])) { dead++; deadNames.add(m[1]); }
  }
  return { series, perService, dead, deadNames: [...deadNames].slice(0, 5) };
}

// ---- main ----------------------------------------------------------------------------------------------
const kib = (b) => Math.round(b / 1024);
const mib = (b) => b == null ? null : Math.round(b / 2 ** 20 * 10) / 10;

async function main() {
  const t0 = Date.now();
  const deadline = t0 + MINUTES * 60_000;
  // several workers: every port an AF_PACKET port in one fanout group per interface (a TAP fd is one queue)
  const tapOr = WORKERS > 1 ? 'afpacket' : 'tap';
  const topo = buildTopology({ pods: [{ name: 'pod-a', attach: tapOr }, { name: 'pod-b', attach: 'afpacket' }, { name: 'pod-c', attach: tapOr }], kind: 'sk' });
  if (HOST_PORT) {
    // the node's own stack: the dataplane namespace, its node address on a TAP wdp bridges with the remote uplink
    topo.config.ports.push({ name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'],
      hostAddresses: [`${NODE_V4}/24`, `${NODE_V6}/64`],
      hostRoutes: [{ prefix: '10.244.0.0/16', via: '10.244.0.1' }, { prefix: '10.96.0.0/12', via: '10.244.0.1' }, { prefix: 'fd00:96::/64', via: 'fd00:100::1' }] });
  }
  if (WORKERS > 1) {
    topo.config.workers = WORKERS;
    for (const p of topo.config.ports) p.fanout = true;
    for (const a of CLIENTS.slice(1)) topo.lab.addr(topo.ns.client, 'eth0', `${a}/24`);
    for (const a of REMOTES.slice(1)) topo.lab.addr(topo.ns.remote, 'eth0', `${a}/24`);
  }
  const samples = [];
  let traffic;
  try {
    const probeFile = join(topo.dir, 'probe.json');
    const probeModule = join(topo.dir, 'soak-probe.mjs');
    writeFileSync(probeModule, PROBE_SOURCE);
    topo.config.conntrack = { flows: 4096, udpSeconds: 5, checkpointSeconds: 30 };
    let double;
    if (FEED === 'kube') {
      let kubeconfig;
      ({ kubeconfig, double } = await startDoubleInNs(topo));
      topo.config.node = { name: 'node-a' };
      topo.config.kubernetes = { kubeconfig, minSyncPeriod: '100ms', syncPeriod: '10s', healthzBindAddress: '127.0.0.1:10256', metricsBindAddress: '127.0.0.1:10249', nodeWaitSeconds: 20, clusterCIDRs: ['10.244.0.0/16'] };
      await double('POST', '/api/v1/nodes', { metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: NODE_V4 }, ...(IPV6 ? [{ type: 'InternalIP', address: NODE_V6 }] : []), { type: 'Hostname', address: 'node-a' }] } });
    }
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    const start = async () => {
      if (PROBE) { process.env.NODE_OPTIONS = `--import ${probeModule}`; process.env.WDP_SOAK_PROBE = probeFile; }
      try { await startDaemon(topo); } finally { delete process.env.NODE_OPTIONS; delete process.env.WDP_SOAK_PROBE; }
    };
    await start();
    await startPods(topo);
    const churn = new Churn(topo.pods);
    // runtime ports (as the CNI plugin attaches pods): a TAP in a spare namespace and an AF_PACKET
    // port on a spare veth, added and removed in turn (--no-port-churn: not)
    const spare = PORT_CHURN ? { ns: topo.lab.namespace('sp') } : null;
    if (spare) topo.lab.veth(spare.ns, 'eth0', topo.ns.dp, 'vsp');
    let portChanges = 0;
    const portChurn = async (round) => {
      if (!spare) return;
      const tap = { name: 'soak-tap', type: 'tap', ifname: 'tapsp', netns: spare.ns, role: 'pod', gateways: ['10.244.0.1'] };
      const afp = { name: 'soak-afp', type: 'afpacket', ifname: 'vsp', role: 'pod', gateways: ['10.244.0.1'] };
      if (WORKERS > 1) afp.fanout = true;
      for (const p of WORKERS > 1 ? [afp] : [tap, afp]) {
        const present = round % 2 === (p === tap || WORKERS > 1 ? 1 : 0);
        const r = present ? await api(topo, 'POST', '/api/v1/ports', p) : await api(topo, 'DELETE', `/api/v1/ports/${p.name}`);
        if (r.status === 200 || r.status === 201) portChanges++;
        else if (!(r.status === 404 && !present)) console.error(`port ${p.name} ${present ? 'add' : 'remove'}: ${r.status} ${r.text.slice(0, 200)}`);
      }
    };
    const feed = FEED === 'kube' ? kubeFeed(double) : apiFeed(topo);
    let holders = null;
    if (LONG_LIVED) {
      await startEcho(topo);
      await feed(keepWrites(topo.pods));
      for (let i = 0; i < 100 && !(await api(topo, 'GET', '/api/v1/services?limit=1000')).json?.items?.some((x) => x.metadata.name === 'keep'); i++) await sleep(100);
      holders = startHolders(topo, LONG_LIVED);
    }
    let logBefore = 0;   // log bytes of earlier daemon runs
    let segment = 0, changes = 0, req = 0;
    const liveInDaemon = async () => { const r = await api(topo, 'GET', '/api/v1/services?limit=1000'); return new Set((r.json?.items ?? []).map((s) => `${s.metadata.namespace}/${s.metadata.name}`)); };
    let convergeMs = null;
    const converge = async () => {
      const want = new Set([...churn.live.keys()].map((n) => `${NS}/${n}`));
      const c0 = Date.now();
      for (let i = 0; i < 100; i++) {
        const have = await liveInDaemon();
        const soak = new Set([...have].filter((n) => n.startsWith(`${NS}/soak-`)));
        if (soak.size === want.size && [...want].every((n) => soak.has(n))) { convergeMs = Date.now() - c0; return true; }
        await sleep(100);
      }
      convergeMs = Date.now() - c0;
      return false;
    };
    const sample = async (label, snap) => {
      const pid = topo.daemon.pid;
      const p = await probeSample(probeFile, ++req, snap);
      const th = await threadSamples(probeFile, req);
      const sm = smapsRss(pid);
      // the forwarding workers: threads that instantiated a Wasm memory
      const fw = th ? Object.values(th).filter((o) => o.wasm?.length) : [];
      const others = th ? Object.values(th).filter((o) => !o.wasm?.length) : [];
      const metrics = (await api(topo, 'GET', '/metrics')).text;
      const live = await liveInDaemon();
      const ct = Number(/^wdp_conntrack_entries (\d+)/m.exec(metrics)?.[1] ?? NaN);
      const st = topo.config.stateDir;
      const files = existsSync(st) ? readdirSync(st) : [];
      const store = files.filter((f) => /\.(db|sqlite)$/.test(f)).reduce((a, f) => a + fileSize(join(st, f)), 0);
      const wal = files.filter((f) => /-wal$/.test(f)).reduce((a, f) => a + fileSize(join(st, f)), 0);
      const stateAll = files.reduce((a, f) => a + fileSize(join(st, f)), 0);
      const ls = logStats(topo.daemonLog);
      const ss = seriesStats(metrics, live);
      // several workers: each one's own counters (steering: frames handed over and taken, ring full)
      const cn = WORKERS > 1 ? (await api(topo, 'GET', '/api/v1/counters')).json : null;
      const workers = cn?.workers?.map((w) => ({ rx: w.global.rx_packets ?? 0, ctNew: w.global.ct_new ?? 0, ct: w.global.ct_active ?? 0, handed: w.global.steer_handed_off ?? 0,
        received: w.global.steer_received ?? 0, ringFull: w.global.steer_ring_full ?? 0, notForwarded: Object.fromEntries(Object.entries(w.reasons ?? {}).filter(([k, v]) => /^(drop|reject)_/.test(k) && v)) })) ?? null;
      const hs = holders?.status();
      const s = {
        label, t: Math.round((Date.now() - t0) / 1000), segment, snapshot: !!snap, changes, load: loadavg()[0], convergeMs,
        rssMiB: mib((procField(pid, 'VmRSS') ?? 0) * 1024), threads: procField(pid, 'Threads'), fds: fdCount(pid), fdKinds: fdKinds(pid),
        heapMiB: mib(p?.heapUsed), externalMiB: mib(p?.external), handles: p ? Object.values(p.handles).reduce((a, b) => a + b, 0) : null, handleKinds: p?.handles,
        eldP99: p ? Math.round(p.eldP99 * 10) / 10 : null, eldMax: p ? Math.round(p.eldMax) : null,
        storeKiB: kib(store), walKiB: kib(wal), stateKiB: kib(stateAll), stateFiles: files.length, ct,
        series: ss.series, svcSeries: ss.perService, deadSeries: ss.dead, deadNames: ss.deadNames, services: live.size,
        logKiB: kib(logBefore + topo.daemonLog.length), warn: ls.warn, error: ls.error, errors: ls.errors,
        wasmRssMiB: sm?.wasmMiB, wasmEachMiB: sm?.wasmEachMiB, brkMiB: sm?.brkMiB, anonMiB: sm?.anonMiB, fileMiB: sm?.fileMiB, ringsMiB: sm?.ringsMiB,
        wHeapMiB: th ? mib(fw.reduce((a, o) => a + o.heapUsed, 0)) : null, wHeapEachMiB: fw.map((o) => mib(o.heapUsed)),
        wWasmMiB: th ? mib(fw.reduce((a, o) => a + o.wasm.reduce((x, y) => x + y, 0), 0)) : null, wWasmEachMiB: fw.map((o) => o.wasm.map(mib)),
        heapTotalMiB: mib(p?.heapTotal), wHeapTotalEachMiB: fw.map((o) => mib(o.heapTotal)), wExternalEachMiB: fw.map((o) => mib(o.external)),
        oHeapMiB: th ? mib(others.reduce((a, o) => a + o.heapUsed, 0)) : null, threadsProbed: th ? Object.keys(th).length : null,
        workers, heldOpen: hs?.open ?? null, heldBroken: hs ? hs.broken.length : null, heldGapMs: hs?.maxGapMs ?? null,
      };
      samples.push(s);
      printRow(s);
      return s;
    };
    printHeader();
    await sample('start');
    traffic = startTraffic(topo, churn);
    const restartAt = Array.from({ length: RESTARTS }, (_, i) => t0 + (deadline - t0) * (i + 1) / (RESTARTS + 1.5));
    let round = 0, notConverged = 0;
    const restarts = [];
    const snapped = {};
    while (Date.now() < deadline && round < MAX_ROUNDS) {
      round++;
      const writes = churn.round();
      await feed(writes);
      changes += writes.length;
      await portChurn(round);
      if (FEED === 'kube') {
        if (round % 3 === 0) await double('POST', '/__double/drop-watches');
        if (round % 7 === 0) await double('POST', '/__double/expire-watches');
        if (round % 10 === 0) await double('POST', '/__double/compact');
      }
      if (!(await converge())) notConverged++;
      if (restartAt.length && Date.now() >= restartAt[0]) {
        restartAt.shift();
        logBefore += topo.daemonLog.length;
        const d = topo.daemon;
        const sig = SIGNAL === 'mixed' ? (segment % 2 === 0 ? 'SIGKILL' : 'SIGTERM') : SIGNAL;
        const before = holders?.status();
        const down0 = Date.now();
        RESTART.down = true; RESTART.epoch++;
        d.kill(sig);
        await new Promise((r) => { const t = setTimeout(r, 20_000); d.once('exit', () => { clearTimeout(t); r(); }); });
        const oldLog = topo.daemonLog;
        segment++;
        await start();
        const downMs = Date.now() - down0;
        topo.prevLogs = (topo.prevLogs ?? '') + oldLog;
        await converge();
        RESTART.down = false; RESTART.epoch++;
        const restore = (await api(topo, 'GET', '/api/v1/generation')).json?.restore ?? null;
        const mismatches = await stateCheck(topo, churn);
        // the held connections 10 s after the restart: every one open and echoing again
        if (holders) await sleep(10_000);
        const after = holders?.status();
        const flows = holders ? await heldFlows(topo, after) : null;
        const r = { segment, signal: sig, downMs, flows, restoredFlows: restore?.flows ?? restore?.restoredFlows ?? null, restore, mismatches,
          heldBefore: before && { open: before.open, broken: before.broken.length }, heldAfter: after && { open: after.open, broken: after.broken.length, stalled: after.stalled.length } };
        restarts.push(r);
        console.log(`restart ${segment} (${sig}): up again after ${downMs} ms; restore ${JSON.stringify(restore)?.slice(0, 300)}; state differing from the acknowledged changes: ${mismatches.length}${mismatches.length ? ` (${mismatches.slice(0, 4).join('; ')})` : ''}` +
          (after ? `; held connections open ${before.open} -> ${after.open}, broken ${after.broken.length}, not echoing for 5 s ${after.stalled.length}; their flows ${JSON.stringify(flows)}` : ''));
        await sample(`restart ${segment}`);
        continue;
      }
      // heap snapshots (--heap-snapshots DIR): once the last daemon run is warm, and at its end
      const snapAt = HEAP_DIR && segment === RESTARTS && !snapped.first && Date.now() > deadline - (deadline - t0) / (RESTARTS + 1.5) * 0.6 ? 'first'
        : HEAP_DIR && snapped.first && !snapped.last && Date.now() > deadline - 8000 ? 'last' : null;
      if (snapAt) snapped[snapAt] = join(HEAP_DIR, `soak-${snapAt}.heapsnapshot`);
      await sample(`round ${round}`, snapAt ? snapped[snapAt] : undefined);
    }
    if (snapped.first) console.log(`heap snapshots: ${snapped.first} ${snapped.last ?? '(no last one: the run ended first)'}`);
    await traffic.stop();
    const tr = traffic.stats; traffic = undefined;
    // the held connections: each still open and echoing (checked before they are closed)
    const held = holders ? holders.status() : null;
    if (held) held.flows = await heldFlows(topo, held);
    if (holders) { await holders.stop(); holders = null; }
    const finalMismatches = await stateCheck(topo, churn);
    // every flow times out: UDP 5 s, TCP closing 10 s (unconfirmed ones 60 s: none expected)
    await sleep(15_000);
    const end = await sample('idle 15s');
    const left = (await api(topo, 'GET', '/api/v1/conntrack?limit=1000')).json?.items ?? [];
    end.flowsLeft = left.slice(0, 8).map((f) => JSON.stringify(f));
    end.listedFlows = left.length;
    // the packets not forwarded, by reason (over the last daemon run)
    const metricsEnd = (await api(topo, 'GET', '/metrics')).text;
    end.notForwarded = Object.fromEntries([...metricsEnd.matchAll(/^wdp_verdict_reasons_total\{reason="((?:drop|reject|host)_[^"]+)"\} (\d+)/gm)].filter((m) => m[2] !== '0').map((m) => [m[1], Number(m[2])]));
    end.stateDir = Object.fromEntries(readdirSync(topo.config.stateDir).map((f) => [f, kib(fileSize(join(topo.config.stateDir, f)))]));
    // the daemon's clean stop (its stop path is soaked too)
    const d = topo.daemon;
    d.kill('SIGTERM');
    const exitCode = await new Promise((r) => { const t = setTimeout(() => r('timeout'), 20_000); d.once('exit', (c, sig) => { clearTimeout(t); r(c ?? sig); }); });
    const allLog = (topo.prevLogs ?? '') + topo.daemonLog;
    console.log(`runtime ports added and removed: ${portChanges}`);
    const verdict = judge(samples, { changes, rounds: round, traffic: tr, notConverged, exitCode, end, log: logStats(allLog), logText: allLog, topo, held, restarts, finalMismatches });
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ samples, verdict }, null, 2));
    if (LOG_OUT) writeFileSync(LOG_OUT, allLog);
  } finally {
    if (traffic) await traffic.stop().catch(() => undefined);
    await destroyTopology(topo);
  }
}

const COLS = [
  ['label', 10], ['t', 4], ['changes', 7], ['rssMiB', 6], ['heapMiB', 7], ['externalMiB', 6], ['fds', 4], ['threads', 4], ['handles', 4],
  ['eldP99', 6], ['eldMax', 6], ['storeKiB', 6], ['walKiB', 6], ['ct', 5], ['series', 6], ['svcSeries', 5], ['deadSeries', 5], ['services', 4], ['logKiB', 6], ['warn', 4], ['error', 4], ['convergeMs', 6], ['load', 4],
  ['wasmRssMiB', 6], ['brkMiB', 6], ['anonMiB', 6], ['wHeapMiB', 6], ['wWasmMiB', 6],
  ...(LONG_LIVED ? [['heldOpen', 4], ['heldBroken', 4], ['heldGapMs', 6]] : []),
];
const HEAD = { label: 'sample', t: 't s', changes: 'changes', rssMiB: 'RSS MiB', heapMiB: 'heap MiB', externalMiB: 'ext MiB', fds: 'fds', threads: 'thr', handles: 'hdl',
  eldP99: 'eld p99', eldMax: 'eld max', storeKiB: 'db KiB', walKiB: 'wal KiB', ct: 'flows', series: 'series', svcSeries: 'svc', deadSeries: 'dead', services: 'svcs', logKiB: 'log KiB', warn: 'warn', error: 'err', convergeMs: 'seen ms', load: 'load', wasmRssMiB: 'wasmRS', brkMiB: 'brk', anonMiB: 'anon', wHeapMiB: 'wHeap', wWasmMiB: 'wWasm', heldOpen: 'held', heldBroken: 'brkn', heldGapMs: 'gap ms' };
function printHeader() { console.log(COLS.map(([k, w]) => String(HEAD[k]).padStart(w)).join(' ')); }
function printRow(s) { console.log(COLS.map(([k, w]) => String(s[k] == null ? '—' : typeof s[k] === 'number' && !Number.isInteger(s[k]) ? s[k].toFixed(1) : s[k]).padStart(w)).join(' ')); }

/** Least-squares slope of y over x. */
function slope(pts) {
  const n = pts.length; if (n < 3) return null;
  const mx = pts.reduce((a, p) => a + p[0], 0) / n, my = pts.reduce((a, p) => a + p[1], 0) / n;
  let num = 0, den = 0; for (const [x, y] of pts) { num += (x - mx) * (y - my); den += (x - mx) ** 2; }
  return den ? num / den : null;
}

// growth per 1,000 changes above which a resource is flagged (the noise a steady daemon shows)
// (the WAL is judged by its largest size instead: it rises between checkpoints by design)
const BOUNDS = { rssMiB: 8, heapMiB: 1, externalMiB: 1, fds: 2, threads: 0.5, handles: 2, storeKiB: 64, series: 5, logKiB: 200 };
// where RSS lives (shown, not judged: their sum is): Wasm memories' resident pages, the brk heap,
// other anonymous mappings; the worker threads' V8 heaps after a GC and their Wasm memories' sizes
const RSS_PARTS = ['rssMiB', 'wasmRssMiB', 'brkMiB', 'anonMiB', 'fileMiB', 'ringsMiB'];
const SHOWN = ['wasmRssMiB', 'brkMiB', 'anonMiB', 'fileMiB', 'ringsMiB', 'wHeapMiB', 'wWasmMiB', 'oHeapMiB'];

function judge(samples, run) {
  const lastSeg = samples.filter((s) => s.segment === samples[samples.length - 1].segment && s.label.startsWith('round'));
  const used = lastSeg.slice(Math.floor(lastSeg.length / 4));
  const half = lastSeg.slice(Math.floor(lastSeg.length / 2));
  // a heap snapshot's own memory (~85 MiB of malloc in the main thread, ~40 MiB another thread) stays
  // resident after it: RSS and its parts are fitted over the samples before the first one
  const firstSnap = samples.findIndex((s) => s.snapshot);
  const beforeSnap = (xs) => (firstSnap < 0 ? xs : xs.filter((s) => samples.indexOf(s) < firstSnap));
  console.log('');
  console.log(`load: ${execFileSync('uptime').toString().trim()} (${cpus().length} CPUs)`);
  console.log(`feed ${FEED}; ${run.rounds} rounds, ${run.changes} changes (object writes), ${samples.filter((s) => s.label.startsWith('restart')).length} restarts; ` +
    `traffic: TCP ${run.traffic.tcpOk} ok / ${run.traffic.tcpFail} failed, UDP ${run.traffic.udpOk} ok / ${run.traffic.udpFail} failed, ` +
    `${IPV6 ? `IPv6: TCP ${run.traffic.tcp6Ok} ok / ${run.traffic.tcp6Fail} failed, UDP ${run.traffic.udp6Ok} ok / ${run.traffic.udp6Fail} failed, ` : ''}` +
    `${LONG_LIVED ? `to the unchanged Service ${run.traffic.stableOk} ok / ${run.traffic.stableFail} failed (around restarts ${run.traffic.stableAtRestartOk} ok / ${run.traffic.stableAtRestartFail} failed) ` : ''}` +
    `(${JSON.stringify(run.traffic.why)}: refused/unreachable = a Service whose endpoints had all stopped serving, or not programmed yet; ` +
    `timeouts = also flows on endpoints that just went away); rounds whose state the daemon did not show within 10 s: ${run.notConverged}`);
  console.log(`growth per 1,000 changes over the last daemon run (${used.length} samples, changes ${used[0]?.changes}..${used[used.length - 1]?.changes}):`);
  console.log(`  (and over its second half: ${half.length} samples, changes ${half[0]?.changes}..${half[half.length - 1]?.changes}; a high-water mark levels off there, a leak goes on)`);
  const verdict = { growth: {}, growthSecondHalf: {}, flagged: [], checks: {} };
  const per1000 = (xs, k) => { const g = slope(xs.filter((s) => s[k] != null).map((s) => [s.changes, s[k]])); return g == null ? null : Math.round(g * 1000 * 100) / 100; };
  const fmt = (x) => (x == null ? '—' : String(x)).padStart(9);
  for (const [k, bound] of [...Object.entries(BOUNDS), ...SHOWN.map((k) => [k, null])]) {
    const fit = RSS_PARTS.includes(k) ? beforeSnap : (xs) => xs;
    const pts = fit(used).filter((s) => s[k] != null);
    if (bound == null && !pts.length) continue;
    const g = per1000(fit(used), k), g2 = per1000(fit(half), k);
    verdict.growth[k] = g; verdict.growthSecondHalf[k] = g2;
    const flag = bound != null && g != null && g > bound;
    if (flag) verdict.flagged.push(k);
    const still = bound != null && g2 != null && g2 > bound;
    console.log(`  ${k.padEnd(12)} ${fmt(g)}  second half ${fmt(g2)}  ${bound == null ? '(shown)  ' : `(bound ${bound})`}${flag ? '  GROWS' : ''}${flag || still ? (still ? ', still over the second half' : ', levelled off over the second half') : ''}  first ${pts[0]?.[k]} last ${pts[pts.length - 1]?.[k]}`);
  }
  // RSS over the last daemon run's second half against its second quarter (the first is the
  // start's own peak): a high-water mark levels off (the second half's slope under 1 MiB per 1,000
  // changes, or its peak within 2 MiB of the second quarter's), a leak goes on
  {
    const n = lastSeg.length;
    const q2 = beforeSnap(lastSeg.slice(Math.floor(n / 4), Math.floor(n / 2))), second = beforeSnap(half);
    const peak = (xs) => Math.max(...xs.map((s) => s.rssMiB));
    const g2 = per1000(second, 'rssMiB');
    if (q2.length >= 3 && second.length >= 3 && g2 != null) {
      const continued = g2 > 1 && peak(second) > peak(q2) + 2;
      verdict.rssSecondHalf = { perThousand: g2, secondQuarterPeakMiB: peak(q2), secondHalfPeakMiB: peak(second), continued };
      console.log(`RSS over the second half: ${continued ? 'STILL GROWING' : 'levelled off'} — ${g2} MiB per 1,000 changes, peak ${peak(second)} MiB (second quarter's ${peak(q2)} MiB)` +
        `${firstSnap >= 0 ? '; samples after the first heap snapshot left out' : ''}`);
    } else console.log(`RSS over the second half: too few samples (${second.length}) to tell`);
  }
  const end = run.end;
  verdict.checks = {
    deadSeries: end.deadSeries, deadNames: end.deadNames,
    flowsAfterTimeouts: end.ct,
    errorLines: run.log.error, warnLines: run.log.warn,
    stopExit: run.exitCode,
    logBytesPerChange: Math.round(end.logKiB * 1024 / Math.max(1, run.changes)),
  };
  console.log(`checks: Prometheus series naming deleted Services ${end.deadSeries}${end.deadNames.length ? ` (${end.deadNames.join(', ')})` : ''}; ` +
    `flows 15 s after the last packet (all timed out) ${end.ct} counted, ${end.listedFlows} listed; log ${verdict.checks.logBytesPerChange} B per change, ${run.log.warn} warn and ${run.log.error} error lines; clean stop exit ${run.exitCode}`);
  for (const e of run.log.errors) console.log(`  error: ${e}`);
  for (const f of end.flowsLeft ?? []) console.log(`  flow left: ${f}`);
  // the warnings, by message
  const msgs = new Map();
  for (const line of run.logText.split('\n')) { const m = /"level":(4\d|5\d|60).*?"msg":"([^"]{0,120})/.exec(line); if (m) msgs.set(m[2], (msgs.get(m[2]) ?? 0) + 1); }
  for (const [m, n] of [...msgs].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  warn/error x${n}: ${m}`);
  const last = samples[samples.length - 1];
  console.log(`packets not forwarded by the last daemon run, by reason: ${JSON.stringify(end.notForwarded)}`);
  console.log(`state directory (KiB): ${JSON.stringify(end.stateDir)}`);
  console.log(`fds by kind at the end: ${JSON.stringify(last.fdKinds)}; handles: ${JSON.stringify(last.handleKinds)}`);
  const walMax = Math.max(...samples.map((s) => s.walKiB));
  verdict.checks.walMaxKiB = walMax;
  const conv = samples.map((s) => s.convergeMs).filter((x) => x != null).sort((a, b) => a - b);
  verdict.checks.seenMs = { p50: conv[Math.floor(conv.length / 2)], max: conv[conv.length - 1] };
  const walEnd = samples[samples.length - 1].walKiB;
  console.log(`largest WAL ${walMax} KiB, at the end ${walEnd} KiB (the store checkpoints from 4 MiB, makes an apply wait for one once the WAL has not started again for 16 MiB, and cuts the file back to 4 MiB); a round's changes shown by the daemon's API after ` +
    `p50 ${verdict.checks.seenMs.p50} ms, max ${verdict.checks.seenMs.max} ms${FEED === 'kube' ? ' (the watches are cut every 3rd round: the informers\' restart backoff)' : ''}`);
  let badExtra = false;
  if (run.held) {
    const h = run.held;
    verdict.checks.held = { conns: h.conns, open: h.open, broken: h.broken.map((c) => `${c.host}:${c.port}${c.local ? ` from ${c.local}` : ''} ${c.why} after ${c.got} echoes`), moved: h.moved, stalled: h.stalled.length, maxGapMs: h.maxGapMs };
    console.log(`long-lived connections: ${h.conns} held, ${h.open} open and echoing at the end, ${h.broken.length} broken, ${h.stalled.length} open but silent for 5 s, ${h.moved} echoes from another pod; largest gap between two echoes ${h.maxGapMs} ms`);
    for (const b of verdict.checks.held.broken.slice(0, 10)) console.log(`  broken: ${b}`);
    console.log(`  their flows in the daemon's tables: ${JSON.stringify(h.flows)}`);
    const flowBad = (f) => f && (f.twice.length > 0 || f.distinct !== f.heldOpen);
    badExtra ||= flowBad(h.flows) || run.restarts.some((r) => flowBad(r.flows));
    badExtra ||= h.broken.length > 0 || h.stalled.length > 0 || h.moved > 0 || h.open !== h.conns || run.traffic.stableFail > 0;
  }
  verdict.checks.restarts = run.restarts;
  verdict.checks.stateMismatches = run.finalMismatches;
  const restartMismatches = run.restarts.reduce((a, r) => a + r.mismatches.length, 0);
  console.log(`state against the acknowledged changes: ${restartMismatches} differences after the restarts (${run.restarts.map((r) => r.signal).join(', ') || 'none'}), ${run.finalMismatches.length} at the end${run.finalMismatches.length ? `: ${run.finalMismatches.slice(0, 4).join('; ')}` : ''}`);
  badExtra ||= restartMismatches > 0 || run.finalMismatches.length > 0;
  if (last.workers) {
    verdict.checks.workers = last.workers;
    for (const [i, w] of last.workers.entries()) console.log(`  worker ${i}: rx ${w.rx}, flows created ${w.ctNew}, handed over ${w.handed}, taken ${w.received}, ring full ${w.ringFull}, not forwarded ${JSON.stringify(w.notForwarded)}`);
    badExtra ||= last.workers.some((w) => w.ringFull > 0 || !(w.rx > 0));
  }
  const bad = badExtra || verdict.flagged.length || end.deadSeries || run.log.error || run.exitCode !== 0 || end.ct > 0 || walMax > 5 * 4096;
  console.log(`VERDICT: ${bad ? 'FAIL' : 'ok'}${verdict.flagged.length ? ` — grows: ${verdict.flagged.join(', ')}` : ''}`);
  return verdict;
}

await main();
