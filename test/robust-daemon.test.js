// Robustness of a real `wdp start` process in network namespaces, bounded in time and count:
//   * hostile API bodies (wrong types, huge, YAML alias bombs, prototype keys, bad encodings,
//     deep nesting) while traffic flows: each is refused with a 4xx, the daemon keeps forwarding
//     (a prober's requests through it all succeed) and the applied state is unchanged;
//   * applies at a steady rate (endpoints rotating over four pods) while new connections keep
//     arriving: none fails, and none is answered by a pod that was ready in neither the generation
//     before nor the one after (times: the apply sent / acknowledged, the request sent / answered);
//   * a flood of spoofed SYNs (answered by the pods) and bare ACKs into a 64-flow conntrack table
//     while established TCP connections keep exchanging data: they must lose nothing;
//   * SIGKILL in the middle of a stream of applies, then restart, several times: the restored
//     state is the last acknowledged apply (or the one in flight when the kill hit), Service and
//     EndpointSlice of the same apply, and traffic goes to that apply's endpoints.
// Known bugs are `test.failing`, with the issue that will fix them (none open now: 14.8, SYN/ACK
// floods locking conntrack, and 14, a SYN reusing a closed flow's ports going to its old, terminating
// backend, are fixed and their tests plain). Needs root (namespaces) and python3 (the flood); skipped otherwise.
// Takes ~2.5 min, most of it waiting (apply streams, the flood, restarts, API timeouts).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import {
  buildTopology, startPods, startDaemon, destroyTopology, api, curlOk, httpMany, sliceYaml, sleep,
} from './lib/topology.js';
import { rootGate } from './lib/root-gate.js';

const gate = rootGate(test);
const floodGate = rootGate(test, { tools: ['python3'] });
const root = gate.ok;
const { serial } = gate;
const AGENT = new URL('./lib/traffic-agent.js', import.meta.url).pathname;
const FLOOD = new URL('./lib/tcp-flood.py', import.meta.url).pathname;
const ECHO_PORT = 7070;
const NORMAL_FLOWS = 16384;
const WEB_VIP = '10.96.20.10', ROT_VIP = '10.96.20.20', KILL_VIP = '10.96.20.30', REUSE_VIP = '10.96.20.40';

let topo;
let podsUp = false;

const svc = (name, clusterIP, ports, annotations) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', ...(annotations ? { annotations } : {}) },
  spec: { type: 'ClusterIP', clusterIP, ports },
});
const HTTP = { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' };
const ECHO = { name: 'echo', port: ECHO_PORT, targetPort: ECHO_PORT, protocol: 'TCP' };
const ready = (p) => ({ addresses: [p.ip], conditions: { ready: true } });
const terminating = (p) => ({ addresses: [p.ip], conditions: { ready: false, serving: true, terminating: true } });

async function apply(objs) {
  const r = await api(topo, 'POST', '/api/v1/apply', objs);
  if (r.status !== 200) throw new Error(`apply failed ${r.status}: ${r.text}`);
  return r;
}

/** Services and EndpointSlices as the API returns them (what "the state" means here). */
async function stateOf() {
  const s = await api(topo, 'GET', '/api/v1/services');
  const e = await api(topo, 'GET', '/api/v1/endpointslices');
  const names = (l) => (l.json?.items ?? []).map((o) => o.metadata.name).sort();
  return { services: s.json?.items, slices: e.json?.items, names: { services: names(s), slices: names(e) } };
}

/** Starts a traffic agent client mode in `ns` (bounded by its own MAX_MS argument); resolves once
 * it prints `readyWord`. stop() ends it (SIGTERM) and resolves with what it printed. */
async function startAgent(ns, args, readyWord) {
  const child = topo.lab.spawn(ns, process.execPath, [AGENT, ...args]);
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 30000;
  while (!out.includes(readyWord)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`traffic agent ${args[0]} did not start (${child.exitCode}): ${err}`);
    await sleep(50);
  }
  return {
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      try { return JSON.parse(out.trim().split('\n').pop()); } catch { throw new Error(`traffic agent ${args[0]} failed (${child.exitCode}): ${err}`); }
    },
  };
}

/** GETs until every pod in `want` has answered (backends resolved, neighbours learned). */
async function untilAllAnswer(vip, want, tries = 60) {
  const seen = new Set();
  for (let i = 0; i < tries && seen.size < want.length; i++) {
    const r = await curlOk(topo, topo.ns.client, `http://${vip}/`, 5);
    if (r?.code === 0) seen.add(r.body.trim());
  }
  return [...seen].sort();
}

async function restartDaemon(signal) {
  const d = topo.daemon;
  if (d && d.exitCode === null && d.signalCode === null) {
    const exited = new Promise((r) => d.once('exit', r));
    d.kill(signal);
    await exited;
  }
  await startDaemon(topo);
}

test.before(async () => {
  if (!root) return;
  topo = buildTopology({ kind: 'rb', pods: ['p0', 'p1', 'p2', 'p3', 'p4'].map((name) => ({ name, attach: 'afpacket' })) });
  // the probers open up to ~600 connections a second and closed flows linger 10 s: room for them
  topo.config.conntrack = { flows: NORMAL_FLOWS };
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await startDaemon(topo);
  await startPods(topo);
  // a TCP echo server in every pod, for long-lived connections
  await Promise.all(topo.pods.map((pod) => new Promise((resolve, reject) => {
    const child = topo.lab.spawn(pod.ns, process.execPath, [AGENT, 'echo-server', String(ECHO_PORT)]);
    topo.podProcs.push(child);
    const timer = setTimeout(() => reject(new Error(`echo server in ${pod.name} not ready`)), 10000);
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) { clearTimeout(timer); resolve(); } });
  })));
  await apply([
    svc('web', WEB_VIP, [HTTP, ECHO]),
    sliceYaml({ name: 'web-1', service: 'web', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: ECHO_PORT, protocol: 'TCP' }], endpoints: topo.pods.map(ready) }),
  ]);
  podsUp = (await untilAllAnswer(WEB_VIP, topo.pods)).length === topo.pods.length;
});
test.after.always(async () => { await destroyTopology(topo); });

// ---- hostile API bodies ------------------------------------------------------------------------

const big = (n) => 'x'.repeat(n);
const HOSTILE = [
  ['a number', '5'], ['a string', '"Service"'], ['null', 'null'], ['true', 'true'],
  ['kind only', [{ kind: 'Service' }]],
  ['metadata a number', [{ apiVersion: 'v1', kind: 'Service', metadata: 5, spec: {} }]],
  ['kind an object', [{ apiVersion: [], kind: {}, metadata: { name: 'x' } }]],
  ['spec a string', [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x', namespace: 'default' }, spec: 'x' }]],
  ['ports an object', [svc('x', '10.96.99.1', { port: 80 })]],
  ['port a string', [svc('x', '10.96.99.1', [{ port: '80', protocol: 'TCP' }])]],
  ['port Infinity (1e400)', `[{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"default"},"spec":{"clusterIP":"10.96.99.1","ports":[{"port":1e400}]}}]`],
  ['port negative zero and fraction', [svc('x', '10.96.99.1', [{ port: -0 }, { port: 80.5 }])]],
  ['clusterIP a number', [svc('x', 167772161, [{ port: 80 }])]],
  ['endpoints a string', [{ ...sliceYaml({ name: 'x-1', service: 'x', ports: [], endpoints: [] }), endpoints: 'all' }]],
  ['addresses a string', [sliceYaml({ name: 'x-1', service: 'x', ports: [], endpoints: [{ addresses: '10.0.0.1' }] })]],
  ['addresses numbers', [sliceYaml({ name: 'x-1', service: 'x', ports: [], endpoints: [{ addresses: [1, 2] }] })]],
  ['conditions a string', [sliceYaml({ name: 'x-1', service: 'x', ports: [], endpoints: [{ addresses: ['10.244.1.11'], conditions: 'yes' }] })]],
  ['labels an array', [{ ...sliceYaml({ name: 'x-1', service: 'x', ports: [], endpoints: [] }), metadata: { name: 'x-1', namespace: 'default', labels: [] } }]],
  ['a 1 MB name', [svc(big(1 << 20), '10.96.99.1', [{ port: 80 }])]],
  ['__proto__ keys', '[{"__proto__":{"polluted":true},"kind":"Service","apiVersion":"v1","metadata":{"__proto__":{"name":"x"}},"spec":{"__proto__":{"clusterIP":"10.96.99.1"}}}]'],
  ['constructor.prototype keys', [{ constructor: { prototype: { polluted: true } }, kind: 'Service', apiVersion: 'v1' }]],
  ['truncated JSON', '[{"apiVersion":"v1","kind":"Serv'],
  ['invalid UTF-8', Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x5d]).toString('latin1')],
  ['NUL bytes', '[{"kind":"Service\u0000","metadata":{"name":"x\u0000"}}]'],
  ['an unknown kind', [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'default' } }]],
  ['a valid service next to a broken one (atomic: neither applies)', [svc('atomic', '10.96.99.2', [HTTP]), svc('x', '10.96.99.3', [{ port: 0 }])]],
];

/** YAML documents (content-type application/yaml): alias bombs and tags. */
function yamlBomb(levels, width) {
  let s = `a0: &a0 [${Array(width).fill('"lol"').join(',')}]\n`;
  for (let i = 1; i < levels; i++) s += `a${i}: &a${i} [${Array(width).fill(`*a${i - 1}`).join(',')}]\n`;
  return s;
}
const HOSTILE_YAML = [
  ['a billion-laughs alias bomb', yamlBomb(10, 10)],
  ['a wide alias fan-out', `a: &a ${JSON.stringify(big(1000))}\nb: [${Array(100000).fill('*a').join(',')}]\n`],
  ['a !!js/function tag', 'kind: !!js/function "function () { process.exit(1) }"\n'],
  ['a recursive alias', 'a: &a [*a]\n'],
  ['tabs and garbage', '\t- : : -\n\t\t{[}\n'],
];

/** POST /api/v1/apply with `body` as `contentType`, giving up after `timeoutMs` (api() is JSON
 * with a fixed 10 s). */
function post(body, contentType = 'application/json', timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: topo.config.api.listen, method: 'POST', path: '/api/v1/apply', timeout: timeoutMs, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''; res.on('data', (d) => { text += d; }); res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.end(body);
  });
}

/** Sends `cases` while a prober runs through the daemon; returns what each got and the prober's
 * results. `send(c)` returns { status } or throws. */
async function underTraffic(t, cases, send) {
  const prober = await startAgent(topo.ns.client, ['http-prober', `http://${WEB_VIP}/`, '120000', '2', '20'], 'started');
  await sleep(300);
  const got = [];
  for (const c of cases) {
    let status;
    try { status = (await send(c)).status; } catch (e) { status = `error: ${e.message}`; }
    const alive = topo.daemon.exitCode === null && topo.daemon.signalCode === null;
    got.push({ what: c[0], status, alive });
    if (!alive) break;
  }
  await sleep(300);
  const probes = await prober.stop();
  return { got, probes };
}

serial('hostile API bodies (wrong types, huge, YAML bombs, prototype keys, bad encodings) while traffic flows: 4xx each, forwarding never stops, state unchanged', async (t) => {
  t.true(podsUp, 'all pods answer before the test');
  const before = await stateOf();
  const cases = [
    ...HOSTILE.map(([what, body]) => [what, body, 'json']),
    ...HOSTILE_YAML.map(([what, body]) => [what, body, 'yaml']),
    ['20 MiB body (over the limit)', `[${JSON.stringify(big(20 << 20))}]`, 'json'],
    ['12 MiB list of 40k broken services', JSON.stringify(Array.from({ length: 40000 }, (_, i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' }, spec: { clusterIP: 'nope', ports: [{ port: 'x', junk: big(200) }] } }))), 'json'],
  ];
  const { got, probes } = await underTraffic(t, cases, (c) => (c[2] === 'yaml' ? post(c[1], 'application/yaml') : api(topo, 'POST', '/api/v1/apply', c[1])));
  // 30 broken requests at once
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => api(topo, 'POST', '/api/v1/apply', HOSTILE[i % HOSTILE.length][1]).then((r) => r.status, (e) => `error: ${e.message}`)));
  const failed = probes.filter((p) => p.error);
  t.log(`${got.length} hostile bodies + a burst of 30; ${probes.length} requests through the daemon meanwhile, ${failed.length} failed`);
  t.log(got.map((g) => `${g.what}: ${g.status}`).join('; '));
  for (const g of got) {
    t.true(g.alive, `the daemon died on ${g.what}:\n${topo.daemonLog.slice(-3000)}`);
    // over the body limit the server may answer 413 and close before the client has sent it all
    const refusedEarly = g.what.includes('over the limit') && /EPIPE|ECONNRESET/.test(String(g.status));
    t.true(refusedEarly || (typeof g.status === 'number' && g.status >= 400 && g.status < 500), `${g.what}: got ${g.status}, want a 4xx`);
  }
  t.true(burst.every((s) => typeof s === 'number' && s >= 400 && s < 500), `burst: ${burst.join(' ')}`);
  t.is(failed.length, 0, `requests lost while the API was under attack: ${JSON.stringify(failed.slice(0, 5))}`);
  t.true(probes.length > 20, 'the prober ran');
  t.deepEqual(await stateOf(), before, 'the applied state is unchanged');
  t.is((await api(topo, 'GET', '/healthz')).status, 200);
});

// ---- steady applies ----------------------------------------------------------------------------

/** Generation g of the rotating service (a rolling update over five pods): pods g and g+1 ready,
 * pod g-1 terminating (still listed: its existing connections may finish), the rest not listed. */
function rotGen(g) {
  const P = topo.pods, n = P.length, at = (k) => P[((k % n) + n) % n];
  const readySet = [at(g), at(g + 1)];
  const term = g > 0 ? [at(g - 1)] : [];
  const endpoints = [...readySet.map(ready), ...term.map(terminating)];
  return {
    ready: readySet.map((p) => p.name),
    listed: [...readySet, ...term].map((p) => p.name),
    objs: [svc('rot', ROT_VIP, [HTTP], { 'wdp-test/generation': String(g) }), sliceYaml({ name: 'rot-1', service: 'rot', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints })],
  };
}

/** For every answered request: the pods the generations possibly in force during it list
 * (`key` = 'listed') or have ready (`key` = 'ready'). Generation j may be in force from when its
 * apply was sent until the next one was acknowledged. */
function outside(probes, gens, key) {
  const bad = [];
  for (const p of probes) {
    if (p.error) continue;
    const allowed = new Set();
    gens.forEach((gen, j) => {
      const from = gen.sent, to = j + 1 < gens.length ? gens[j + 1].acked : Infinity;
      if (from <= p.t1 && p.t0 <= to) gen[key].forEach((name) => allowed.add(name));
    });
    if (!allowed.has(p.pod)) bad.push({ ...p, allowed: [...allowed] });
  }
  return bad;
}

serial('applies at a steady rate while new connections arrive: none answered by a pod in neither the old nor the new generation', async (t) => {
  t.true(podsUp, 'all pods answer before the test');
  // every pod once ready, so all are resolved before the clock starts
  await apply([svc('rot', ROT_VIP, [HTTP]), sliceYaml({ name: 'rot-1', service: 'rot', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: topo.pods.map(ready) })]);
  t.is((await untilAllAnswer(ROT_VIP, topo.pods)).length, topo.pods.length);
  const gens = [];
  const first = rotGen(0);
  await apply(first.objs);
  gens.push({ sent: -Infinity, acked: Date.now(), ready: first.ready, listed: first.listed });
  const DURATION = 8000, EVERY = 200;
  const prober = await startAgent(topo.ns.client, ['http-prober', `http://${ROT_VIP}/`, String(DURATION + 60000), '3'], 'started');
  const end = Date.now() + DURATION;
  const refused = [];
  for (let g = 1; Date.now() < end; g++) {
    const next = rotGen(g);
    const sent = Date.now();
    const r = await api(topo, 'POST', '/api/v1/apply', next.objs);
    if (r.status !== 200) refused.push(`${g}: ${r.status} ${r.text}`);
    gens.push({ sent, acked: Date.now(), ready: next.ready, listed: next.listed });
    await sleep(Math.max(0, EVERY - (Date.now() - sent)));
  }
  const probes = await prober.stop();
  const violations = outside(probes, gens, 'listed');
  const errors = probes.filter((p) => p.error);
  const perPod = {};
  for (const p of probes) if (!p.error) perPod[p.pod] = (perPod[p.pod] ?? 0) + 1;
  t.log(`${gens.length - 1} applies in ${(DURATION / 1000).toFixed(0)} s; ${probes.length} new connections (${JSON.stringify(perPod)}), ${errors.length} failed (${[...new Set(errors.map((e) => e.error))].join(', ') || '-'}), ${violations.length} answered by a pod in neither generation`);
  // Failed connections used to be excused when their client port had last been answered by a pod
  // no longer ready (the port-reuse bug, issue 14, and the reused-id bug of test/diff-swap.test.js);
  // both are fixed, so every failed connection now fails the test, and a new connection must go to
  // a pod ready in a generation in force while it ran (terminating pods only keep old connections;
  // every generation here has ready pods).
  const failed = errors.map((p) => {
    const gi = gens.findLastIndex((g) => g.acked <= p.t0);
    return `${p.error} port ${p.cport} at +${p.t0 - gens[1].sent} ms; generation ${gi} ready ${gens[gi]?.ready}`;
  });
  const notReady = outside(probes, gens, 'ready');
  t.log(`new connections answered by a pod that was only terminating: ${notReady.length}`);
  t.deepEqual(refused, [], 'every apply acknowledged');
  t.true(gens.length > 10, 'applies kept coming');
  t.true(probes.length > 50, 'connections kept coming');
  t.deepEqual(violations.slice(0, 5), [], 'no connection answered by a pod in neither generation');
  t.deepEqual(notReady.slice(0, 5), [], 'no new connection answered by a pod that was only terminating');
  t.deepEqual(failed, [], 'no connection failed while the endpoints rotated');
});

// Issue 14 (fixed; was test.failing, Kubernetes semantics): a SYN that reuses the 5-tuple of a
// closed flow still in conntrack (closing entries live 10 s) was sent to that flow's old backend
// even when it was now only terminating and ready endpoints existed. Linux conntrack (kube-proxy)
// treats such a SYN as a new connection and load-balances it again; Kubernetes sends new
// connections to terminating endpoints only when no endpoint is ready. Now the core does the same
// (docs/core.md "Original-direction hit" step 2). Forced here with a fixed client port.
serial('(issue 14) a new connection reusing a closed connection\'s client port goes to a ready pod, not to the old, now terminating one', async (t) => {
  const [p0, p1] = topo.pods;
  const objs = (endpoints) => [svc('reuse', REUSE_VIP, [HTTP]), sliceYaml({ name: 'reuse-1', service: 'reuse', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints })];
  await apply(objs([ready(p0)]));
  t.deepEqual(await untilAllAnswer(REUSE_VIP, [p0]), ['p0']);
  const PORT = 45123;
  const [first] = await httpMany(topo, topo.ns.client, `http://${REUSE_VIP}/`, 1, { localPort: PORT });
  t.is(first.pod, 'p0', JSON.stringify(first));
  await apply(objs([terminating(p0), ready(p1)]));
  const [second] = await httpMany(topo, topo.ns.client, `http://${REUSE_VIP}/`, 1, { localPort: PORT });
  t.log(`first connection from port ${PORT}: ${first.pod}; after p0 turned terminating, a new one from the same port: ${second.pod ?? second.error}`);
  t.is(second.pod, 'p1', 'the new connection goes to the ready pod');
});

// ---- SYN / ACK flood into a small conntrack table ----------------------------------------------

let flood;   // the flood run's observations, shared with the known-bug test after it

floodGate.serial('a SYN and ACK flood into a 64-flow conntrack table: established TCP connections keep exchanging data, nothing lost', async (t) => {
  t.true(podsUp, 'all pods answer before the test');
  topo.config.conntrack = { flows: 64 };
  writeFileSync(topo.configFile, JSON.stringify(topo.config));
  await restartDaemon('SIGTERM');
  try {
    await floodRun(t);
  } finally {
    // the tests after this one run with the usual table (the flood may have locked this one)
    topo.config.conntrack = { flows: NORMAL_FLOWS };
    writeFileSync(topo.configFile, JSON.stringify(topo.config));
    await restartDaemon('SIGTERM');
  }
});

async function floodRun(t) {
  t.is((await untilAllAnswer(WEB_VIP, topo.pods)).length, topo.pods.length, 'all pods answer after the restart with a small table');
  await sleep(500);
  const c0 = (await api(topo, 'GET', '/api/v1/counters')).json;
  const echo = await startAgent(topo.ns.client, ['echo-clients', WEB_VIP, String(ECHO_PORT), '4', '120000'], 'connected');
  // new connections, about six a second (closed flows linger 10 s: faster would fill 64 flows alone)
  const prober = await startAgent(topo.ns.client, ['http-prober', `http://${WEB_VIP}/`, '120000', '2', '300'], 'started');
  await sleep(1500);
  const floodStart = Date.now();
  const syn = await topo.lab.execAsync(topo.ns.client, 'python3', [FLOOD, 'syn', WEB_VIP, '80', '20000', '8000', '10.0.0', '100'], { timeoutMs: 60000 });
  const ack = await topo.lab.execAsync(topo.ns.client, 'python3', [FLOOD, 'ack', WEB_VIP, '80', '10000', '8000', '10.0.0', '100'], { timeoutMs: 60000 });
  const floodEnd = Date.now();
  await sleep(3000);   // the connections must keep going after the flood too
  const [conns, probes] = await Promise.all([echo.stop(), prober.stop()]);
  const c1 = (await api(topo, 'GET', '/api/v1/counters')).json;
  flood = { probes, floodStart, floodEnd };
  const delta = (k) => (c1.reasons?.[k] ?? 0) - (c0.reasons?.[k] ?? 0);
  const gdelta = (k) => (c1.global?.[k] ?? 0) - (c0.global?.[k] ?? 0);
  // round trips of a connection within [from, to) (whole seconds inside the range only)
  const within = (c, from, to) => Object.entries(c.perSecond).map(([sec, n]) => [Number(sec) * 1000, n])
    .filter(([ms]) => ms >= from && ms + 1000 <= to).reduce((a, [, n]) => a + n, 0);
  t.log(`flood: ${syn.stdout.trim()} SYNs, ${ack.stdout.trim()} ACKs over ${((floodEnd - floodStart) / 1000).toFixed(1)} s; ct_new +${gdelta('ct_new')}, evicted +${gdelta('ct_evicted')}, drop_ct_full +${delta('drop_ct_full')}, active ${c1.global?.ct_active}`);
  for (const c of conns) t.log(`connection ${c.id}: ${c.roundTrips} round trips (${within(c, floodStart, floodEnd)} during the flood, ${within(c, floodEnd, Infinity)} after), open=${c.open}${c.error ? ` (${c.error})` : ''}, largest gap ${c.maxGapMs} ms`);
  t.is(syn.code, 0, syn.stderr);
  t.is(ack.code, 0, ack.stderr);
  t.true(delta('drop_ct_full') + gdelta('ct_evicted') > 0, 'the flood filled the table (evictions or drop_ct_full)');
  for (const c of conns) {
    t.true(c.open, `connection ${c.id} broke: ${c.error}`);
    t.true(within(c, floodStart, floodEnd) > 0, `connection ${c.id}: no round trip during the flood`);
    t.true(within(c, floodEnd, Infinity) > 0, `connection ${c.id}: no round trip after the flood`);
  }
  t.true(topo.daemon.exitCode === null, 'the daemon survived the flood');
}

// Issue 14.8 (fixed; was test.failing): a backend's SYN-ACK made a flow established before the
// client's ACK, and a bare ACK created an established flow, never evicted and living 6 hours, so the
// spoofed SYNs the pods answer filled the table and new connections were dropped (drop_ct_full).
// Now only a handshake completed in both directions establishes a flow, and the flood's
// unconfirmed flows are evicted first (docs/core.md "TCP states").
floodGate.serial('(issue 14.8) new connections keep succeeding during and after a SYN/ACK flood', (t) => {
  if (!flood) { t.fail('the flood test did not run'); return; }
  const during = flood.probes.filter((p) => p.t0 >= flood.floodStart && p.t0 <= flood.floodEnd);
  const after = flood.probes.filter((p) => p.t0 > flood.floodEnd);
  t.log(`new connections during the flood: ${during.length}, failed ${during.filter((p) => p.error).length}; after: ${after.length}, failed ${after.filter((p) => p.error).length}`);
  t.true(during.length > 0 && after.length > 0);
  t.deepEqual(during.filter((p) => p.error), [], 'during the flood');
  t.deepEqual(after.filter((p) => p.error), [], 'after the flood');
});

// ---- SIGKILL during a stream of applies ---------------------------------------------------------

function killGen(seq) {
  const P = topo.pods;
  const eps = [P[seq % P.length], P[(seq + 1) % P.length]];
  return {
    pods: eps.map((p) => p.name).sort(),
    objs: [svc('kill', KILL_VIP, [HTTP], { 'wdp-test/seq': String(seq) }), sliceYaml({ name: 'kill-1', service: 'kill', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: eps.map(ready) })],
  };
}

serial('SIGKILL during a stream of applies, then restart, 4 times: the state is the last acknowledged apply, and traffic follows it', async (t) => {
  t.true(podsUp, 'all pods answer before the test');
  let seq = 0;
  const results = [];
  await apply(killGen(0).objs);
  const namesBefore = (await stateOf()).names;
  for (let cycle = 0; cycle < 4; cycle++) {
    let lastAcked, inFlight;
    const d = topo.daemon;
    const exited = new Promise((r) => d.once('exit', (code, sig) => r(sig)));
    // the kill lands at a random moment of the stream (a few applies in)
    const killAfter = 300 + Math.floor(Math.random() * 1200);
    const killer = setTimeout(() => d.kill('SIGKILL'), killAfter);
    for (;;) {
      seq++;
      // the slice's endpoints move with seq too: Service and slice of one apply belong together
      const { objs } = killGen(seq);
      objs[1].endpoints.forEach((e, i) => { e.hostname = `s${seq}-${i}`; });
      inFlight = seq;
      try {
        const r = await api(topo, 'POST', '/api/v1/apply', objs);
        if (r.status !== 200) { t.fail(`apply ${seq}: ${r.status} ${r.text}`); break; }
        lastAcked = seq;
        inFlight = undefined;
      } catch {
        break;   // the daemon is gone
      }
    }
    clearTimeout(killer);
    t.is(await exited, 'SIGKILL');
    await startDaemon(topo);
    const st = (await api(topo, 'GET', '/api/v1/state')).json;
    const s = (await api(topo, 'GET', '/api/v1/namespaces/default/services/kill')).json;
    const e = (await api(topo, 'GET', '/api/v1/namespaces/default/endpointslices/kill-1')).json;
    const svcSeq = Number(s?.metadata?.annotations?.['wdp-test/seq']);
    const sliceSeq = Number(/^s(\d+)-/.exec(e?.endpoints?.[0]?.hostname ?? '')?.[1]);
    const r = { cycle, killAfter, lastAcked, inFlight, restored: svcSeq, restoredFrom: st?.restoredFrom, problems: st?.restoreProblems?.length ?? 0 };
    results.push(r);
    t.log(`kill ${r.cycle + 1} after ${r.killAfter} ms: last acked ${r.lastAcked}, in flight ${r.inFlight ?? '-'}, restored ${r.restored} (from ${r.restoredFrom}${r.problems ? `: ${st.restoreProblems.join('; ')}` : ''})`);
    t.is(svcSeq, sliceSeq, `cycle ${cycle}: Service and EndpointSlice come from the same apply`);
    t.true(svcSeq === lastAcked || (inFlight !== undefined && svcSeq === inFlight), `cycle ${cycle}: restored apply ${svcSeq}, last acknowledged ${lastAcked}, in flight ${inFlight}`);
    // the SQLite store: a commit is atomic, a kill leaves the last commit (src/state/store.ts)
    t.is(st?.restoredFrom, 'store', `cycle ${cycle}: restored from ${st?.restoredFrom}`);
    t.false((st?.restoreProblems ?? []).some((p) => /corrupt|invalid|checksum/i.test(p)), `cycle ${cycle}: ${JSON.stringify(st?.restoreProblems)}`);
    t.deepEqual((await stateOf()).names, namesBefore, 'every other object survived');
    const want = killGen(svcSeq).pods;
    const seen = await untilAllAnswer(KILL_VIP, want, 40);
    t.deepEqual(seen, want, `cycle ${cycle}: traffic goes to apply ${svcSeq}'s endpoints`);
  }
  t.is(results.length, 4);
});

// ---- deep nesting (last: it may take the daemon down) -------------------------------------------

// Issue 18: a body of a million or more nested arrays or objects (2-8 MB, under the 16 MiB limit)
// blocked the daemon's event loop for more than 10 s and ran it out of heap at 4M. Nesting depth is
// now bounded on the text, before any parser runs (src/model/limits.ts).
serial('deeply nested bodies (100k to 4M levels) while traffic flows: 4xx each, forwarding never stops', async (t) => {
  const cases = [100_000, 4_000_000].map((n) => [`${n} nested arrays`, '['.repeat(n) + ']'.repeat(n)]);
  cases.push(['1M nested objects', '{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000)]);
  cases.push(['1M nested YAML flow sequences', '['.repeat(1_000_000) + ']'.repeat(1_000_000), 'yaml']);
  // 5 s per body is plenty for a 4xx; longer only makes the known failure slower
  const { got, probes } = await underTraffic(t, cases, (c) => post(c[1], c[2] === 'yaml' ? 'application/yaml' : 'application/json', 5000));
  const lost = probes.filter((p) => p.error);
  t.log(got.map((g) => `${g.what}: ${g.status}${g.alive ? '' : ' (daemon died)'}`).join('; '));
  t.log(`${probes.length} requests through the daemon meanwhile, ${lost.length} lost (${[...new Set(lost.map((p) => p.error))].join(', ') || '-'})`);
  for (const g of got) {
    t.true(g.alive, `the daemon died on ${g.what}`);
    t.true(typeof g.status === 'number' && g.status >= 400 && g.status < 500, `${g.what}: got ${g.status}`);
  }
  t.deepEqual(lost.slice(0, 5), [], 'requests lost');
});
