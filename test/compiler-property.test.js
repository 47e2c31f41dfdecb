// Property tests of the incremental compiler: for random histories of Service / EndpointSlice /
// NodeConfig changes,
//   * the Ir maintained incrementally equals a full recompile of the final model (same ids),
//   * replaying the emitted IrDiffs onto an empty Ir reproduces it (the diffs are complete),
//   * a fresh compiler fed only the final model builds the same Ir up to id renaming,
//   * a rolled-back change leaves no trace, a refused change changes nothing,
//   * the same history gives the same Ir and ids (determinism).
import test from 'ava';
import fc from 'fast-check';
import { Compiler, compileAll } from '../dist/src/compiler/compiler.js';
import { backendKeyCmp, ipv4KeyRank } from '../dist/src/compiler/maglev.js';
import { validateObject } from '../dist/src/model/schema.js';
import { emptyIr, maglevIds } from '../dist/src/ir/ir.js';
import { buildMaglev } from './lib/maglev-reference.js';

const SVCS = 4, SLICES = 5;

const svcArb = fc.record({
  i: fc.integer({ min: 0, max: SVCS - 1 }),
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'Headless', 'ExternalName'),
  ports: fc.subarray([0, 1, 2], { minLength: 1 }),
  namedTarget: fc.boolean(),
  dual: fc.boolean(),
  affinity: fc.option(fc.integer({ min: 1, max: 20000 })),
  extLocal: fc.boolean(),
  intLocal: fc.boolean(),
  externalIPs: fc.subarray([0, 1]),
  ranges: fc.subarray(['203.0.113.0/24', '198.51.100.0/25', '2001:db8:1::/48']),
  maglev: fc.constantFrom(undefined, '251', '509'),
});

const PORTS = [
  (named) => ({ name: 'http', protocol: 'TCP', port: 80, targetPort: named ? 'web' : 8080 }),
  () => ({ name: 'dns', protocol: 'UDP', port: 53, targetPort: 53 }),
  () => ({ name: 'alt', protocol: 'TCP', port: 81, targetPort: 8080 }),
];

function serviceRaw(g) {
  const meta = { name: `s${g.i}`, namespace: 'default', ...(g.maglev ? { annotations: { 'wdp.io/maglev-table-size': g.maglev } } : {}) };
  if (g.type === 'ExternalName') return { apiVersion: 'v1', kind: 'Service', metadata: meta, spec: { type: 'ExternalName', externalName: 'x.example.com' } };
  const ports = g.ports.map((p) => PORTS[p](g.namedTarget));
  if (g.type === 'Headless') return { apiVersion: 'v1', kind: 'Service', metadata: meta, spec: { clusterIP: 'None', ports } };
  const external = g.type !== 'ClusterIP';
  const spec = {
    type: g.type,
    clusterIP: `10.96.0.${10 + g.i}`,
    clusterIPs: g.dual ? [`10.96.0.${10 + g.i}`, `fd00:96::${10 + g.i}`] : [`10.96.0.${10 + g.i}`],
    ipFamilies: g.dual ? ['IPv4', 'IPv6'] : ['IPv4'],
    ports: ports.map((p, k) => (external ? { ...p, nodePort: 30000 + g.i * 10 + k } : p)),
    ...(g.affinity ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: g.affinity } } } : {}),
    ...(external || g.externalIPs.length ? { externalTrafficPolicy: g.extLocal ? 'Local' : 'Cluster' } : {}),
    internalTrafficPolicy: g.intLocal ? 'Local' : 'Cluster',
    externalIPs: g.externalIPs.map((k) => (k === 0 ? `198.51.100.${100 + g.i}` : `2001:db8::${100 + g.i}`)),
    ...(g.type === 'LoadBalancer' || g.externalIPs.length ? { loadBalancerSourceRanges: g.ranges } : {}),
  };
  const status = g.type === 'LoadBalancer' ? { loadBalancer: { ingress: [{ ip: `192.0.2.${g.i + 1}` }, { ip: `2001:db8:2::${g.i + 1}` }] } } : undefined;
  return { apiVersion: 'v1', kind: 'Service', metadata: meta, spec, ...(status ? { status } : {}) };
}

const endpointArb = fc.record({
  a: fc.integer({ min: 0, max: 5 }),
  ready: fc.constantFrom(true, false, undefined),
  serving: fc.constantFrom(true, false, undefined),
  terminating: fc.constantFrom(true, false, undefined),
  node: fc.constantFrom('node-a', 'node-b', undefined),
  zone: fc.constantFrom('z1', undefined),
});
const sliceArb = fc.record({
  j: fc.integer({ min: 0, max: SLICES - 1 }),
  svc: fc.option(fc.integer({ min: 0, max: SVCS - 1 }), { freq: 6 }),
  v6: fc.boolean(),
  endpoints: fc.array(endpointArb, { maxLength: 5 }),
  ports: fc.subarray([0, 1, 2, 3]),
});
const SLICE_PORTS = [
  { name: 'http', protocol: 'TCP', port: 8080 },
  { name: 'dns', protocol: 'UDP', port: 53 },
  { name: 'alt', protocol: 'TCP', port: 8081 },
  { name: 'web', protocol: 'TCP', port: 9090 },
];
const HOST = [1, 10, 100, 2, 12, 3];
function sliceRaw(g) {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `es${g.j}`, namespace: 'default', ...(g.svc !== null ? { labels: { 'kubernetes.io/service-name': `s${g.svc}` } } : {}) },
    addressType: g.v6 ? 'IPv6' : 'IPv4',
    endpoints: g.endpoints.map((e) => ({
      // last parts 1 / 10 / 100: one address a prefix of another, the Maglev key order's hard case
      addresses: [g.v6 ? `fd00:244:${e.a % 2}::${HOST[e.a]}` : `10.244.${e.a % 2}.${HOST[e.a]}`],
      conditions: { ...(e.ready !== undefined ? { ready: e.ready } : {}), ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) },
      ...(e.node ? { nodeName: e.node } : {}), ...(e.zone ? { zone: e.zone } : {}),
    })),
    ports: g.ports.map((k) => SLICE_PORTS[k]),
  };
}
const nodeArb = fc.record({
  addrs: fc.subarray(['192.168.0.1', 'fd00:1::1']),
  routes: fc.subarray([0, 1, 2]),
  neighbour: fc.boolean(),
  masq: fc.boolean(),
});
function nodeRaw(g) {
  const routes = [
    { prefix: '10.244.0.0/24', port: 1, nextHopMac: '02:00:00:00:00:11', localMac: '02:00:00:00:00:01' },
    { prefix: '10.244.0.0/16', port: 2, nextHopMac: '02:00:00:00:00:12', localMac: '02:00:00:00:00:02' },
    { prefix: 'fd00:244::/32', port: 2, nextHopMac: '02:00:00:00:00:13', localMac: '02:00:00:00:00:02' },
  ];
  return {
    apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
    spec: {
      nodeAddresses: g.addrs,
      routes: g.routes.map((k) => routes[k]),
      neighbours: g.neighbour ? [{ address: '10.244.1.2', port: 3, mac: '02:00:00:00:00:33', localMac: '02:00:00:00:00:03' }] : [],
      ...(g.masq ? { masquerade: { ipv4: '192.168.0.99' } } : {}),
    },
  };
}

const actionArb = fc.oneof(
  { weight: 4, arbitrary: svcArb.map((g) => ({ op: 'upsert', raw: serviceRaw(g) })) },
  { weight: 5, arbitrary: sliceArb.map((g) => ({ op: 'upsert', raw: sliceRaw(g) })) },
  { weight: 1, arbitrary: nodeArb.map((g) => ({ op: 'upsert', raw: nodeRaw(g) })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: SVCS - 1 }).map((i) => ({ op: 'remove', ref: { kind: 'Service', namespace: 'default', name: `s${i}` } })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: SLICES - 1 }).map((j) => ({ op: 'remove', ref: { kind: 'EndpointSlice', namespace: 'default', name: `es${j}` } })) },
  { weight: 1, arbitrary: fc.constant({ op: 'remove', ref: { kind: 'NodeConfig', name: 'node-a' } }) },
);
// a step is one change batch of 1-3 actions (the API applies multi-object bodies as one change)
const historyArb = fc.array(fc.array(actionArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 25 });

/** Plain-data form of an Ir with ids (for exact comparison). */
function plain(ir) {
  return {
    frontends: [...ir.frontends.values()].sort((a, b) => a.id - b.id).map((f) => ({ ...f, maglev: Array.from(f.maglev) })),
    backends: [...ir.backends.values()].sort((a, b) => a.id - b.id),
    routes: ir.routes, snatV4: ir.snatV4, snatV6: ir.snatV6,
  };
}

/** Id-free form: every id replaced by what it stands for. */
function canonical(ir) {
  const be = (id) => { const b = ir.backends.get(id); return b ? `${b.service}|${b.addr}|${b.port}` : `missing ${id}`; };
  const fe = (id) => { const f = ir.frontends.get(id); return f ? `${f.service}|${f.portName}|${f.kind}|${f.addr}` : `missing ${id}`; };
  const fronts = [...ir.frontends.values()].map((f) => JSON.stringify({
    ...f, id: undefined, backends: [...f.backends.map(be)].sort(), maglev: Array.from(maglevIds(f), be),
    clusterFront: f.clusterFront ? fe(f.clusterFront) : undefined, // an id: compared by what it names
  })).sort();
  const backs = [...ir.backends.values()].map((b) => JSON.stringify({ ...b, id: undefined })).sort();
  return { fronts, backs, routes: ir.routes, snatV4: ir.snatV4, snatV6: ir.snatV6 };
}

function replay(mirror, d) {
  for (const id of d.frontendsRemove) { if (!mirror.frontends.has(id)) throw new Error(`diff removes unknown frontend ${id}`); mirror.frontends.delete(id); }
  for (const id of d.backendsRemove) { if (!mirror.backends.has(id)) throw new Error(`diff removes unknown backend ${id}`); mirror.backends.delete(id); }
  for (const f of d.frontendsUpsert) mirror.frontends.set(f.id, f);
  for (const b of d.backendsUpsert) mirror.backends.set(b.id, b);
  if (d.routes) mirror.routes = d.routes;
  if (d.snat) { mirror.snatV4 = d.snat.v4; mirror.snatV6 = d.snat.v6; if (d.snat.v4 === undefined) delete mirror.snatV4; if (d.snat.v6 === undefined) delete mirror.snatV6; }
}

function toBatch(actions) {
  const upsert = [], remove = [];
  for (const a of actions) {
    if (a.op === 'remove') { remove.push(a.ref); continue; }
    const r = validateObject(a.raw);
    if (!r.ok) throw new Error(`generator produced an invalid object: ${r.errors.map((e) => e.message).join('; ')}`);
    upsert.push(r.obj);
  }
  return { upsert, remove };
}

/** Runs a history; returns the compiler and the final model objects. */
function run(history, check) {
  const c = new Compiler();
  const mirror = emptyIr();
  let applied = 0, refused = 0;
  for (const actions of history) {
    const before = plain(c.ir);
    let ch;
    try { ch = c.change(toBatch(actions)); } catch (e) {
      if (e.name !== 'ValidationError') throw e;
      refused++;
      check?.refused(before, plain(c.ir));
      continue;
    }
    applied++;
    replay(mirror, ch.diff);
    check?.step(c, mirror, ch);
  }
  return { c, mirror, applied, refused };
}

test('incremental compile equals full recompile, diffs replay to the same Ir, refused changes change nothing', (t) => {
  let totalApplied = 0, totalRefused = 0, nonEmpty = 0;
  fc.assert(fc.property(historyArb, (history) => {
    const { c, mirror, applied, refused } = run(history, {
      refused(before, after) { t.deepEqual(after, before); },
      step(comp, m) { t.deepEqual(plain(m), plain(comp.ir)); },
    });
    totalApplied += applied; totalRefused += refused;
    if (c.ir.frontends.size) nonEmpty++;
    // same ids: full recompile of the final model with the incremental id assignment
    t.deepEqual(plain(c.recompileAll()), plain(c.ir));
    t.deepEqual(plain(mirror), plain(c.ir));
    // fresh compiler, only the final model: same Ir up to id renaming
    const objs = [
      ...c.listServices(), ...c.listSlices(), ...(c.getNode() ? [c.getNode()] : []),
    ];
    const fresh = compileAll(objs);
    t.deepEqual(canonical(fresh.ir), canonical(c.ir));
    // ... and the same model, kept so that it recompiles to what it holds (the full compile builds
    // its records by merging sorted lists, not through the model's maps)
    t.deepEqual(fresh.snapshot(), c.snapshot());
    t.is(fresh.serviceCount(), c.serviceCount());
    t.is(fresh.sliceCount(), c.sliceCount());
    t.deepEqual(plain(fresh.recompileAll()), plain(fresh.ir));
    for (const s of c.listServices()) t.deepEqual(fresh.warningsOf(s.key), c.warningsOf(s.key));
    // some services first, the others in the next change: from empty, slices of the missing ones
    // (before, between and after the present ones in key order) name a service the batch does not
    // hold, and the second change must find them
    for (const first of [(i) => false, (i) => i % 2 === 0, (i) => i % 2 === 1]) {
      const svcs = c.listServices();
      const split = compileAll([...svcs.filter((_, i) => first(i)), ...c.listSlices(), ...(c.getNode() ? [c.getNode()] : [])]);
      const rest = svcs.filter((_, i) => !first(i));
      if (rest.length) split.change({ upsert: rest });
      t.deepEqual(canonical(split.ir), canonical(c.ir));
    }
    // every frontend's Maglev table only names its active backends, and every active backend exists
    for (const f of c.ir.frontends.values()) {
      const set = new Set(f.backends);
      for (const id of f.backends) if (!c.ir.backends.has(id)) return false;
      t.true(f.maglevIndexed, 'the compiler makes index tables');
      for (const x of maglevIds(f)) if (!set.has(x)) return false;
      if ((f.maglev.length === 0) !== (f.backends.length === 0)) return false;
      // the compiler's table (built without key strings) is the reference table over "addr:port"
      const keys = f.backends.map((id) => `${c.ir.backends.get(id).addr}:${c.ir.backends.get(id).port}`);
      t.deepEqual(keys, [...keys].sort(), 'backends are listed in Maglev key order');
      if (f.backends.length) t.deepEqual(Array.from(maglevIds(f)), Array.from(buildMaglev(f.backends, keys, f.maglev.length)));
      t.true(f.maglev.BYTES_PER_ELEMENT === (f.backends.length <= 256 ? 1 : 2), 'one byte a slot up to 256 backends');
    }
    return true;
  }), { numRuns: 150, seed: 4242 });
  // the generator must exercise both paths, or the property proves little
  t.true(totalApplied > 500, `applied ${totalApplied}`);
  t.true(totalRefused > 10, `refused ${totalRefused}`);
  t.true(nonEmpty > 30, `non-empty final states ${nonEmpty}`);
});

test('rollback restores the exact previous state, ids included', (t) => {
  fc.assert(fc.property(historyArb, fc.array(actionArb, { minLength: 1, maxLength: 3 }), (history, extra) => {
    const { c } = run(history);
    const before = plain(c.ir);
    // the model too: what the API lists and persists, and per-service bookkeeping
    const model = () => ({
      snapshot: c.snapshot(), services: c.serviceCount(), slices: c.sliceCount(),
      ids: c.listServices().map((s) => [s.key, c.frontendIdsOf(s.key), c.backendIdsOf(s.key)]),
    });
    const modelBefore = model();
    let ch;
    try { ch = c.change(toBatch(extra)); } catch (e) {
      if (e.name !== 'ValidationError') throw e;
      t.deepEqual(model(), modelBefore, 'a refused batch changes nothing');
      return true;
    }
    ch.rollback();
    t.deepEqual(plain(c.ir), before);
    t.deepEqual(plain(c.recompileAll()), before);
    t.deepEqual(model(), modelBefore);
    return true;
  }), { numRuns: 100, seed: 7 });
});

test('the same history gives the same Ir and the same ids', (t) => {
  fc.assert(fc.property(historyArb, (history) => {
    const a = run(history).c, b = run(history).c;
    t.deepEqual(plain(a.ir), plain(b.ir));
    return true;
  }), { numRuns: 50, seed: 99 });
});

test('undoDiff applied after diff restores the previous dataplane state', (t) => {
  fc.assert(fc.property(historyArb, fc.array(actionArb, { minLength: 1, maxLength: 3 }), (history, extra) => {
    const { c, mirror } = run(history);
    const before = plain(mirror);
    let ch;
    try { ch = c.change(toBatch(extra)); } catch (e) { if (e.name === 'ValidationError') return true; throw e; }
    replay(mirror, ch.diff);
    replay(mirror, ch.undoDiff);
    t.deepEqual(plain(mirror), before);
    return true;
  }), { numRuns: 100, seed: 11 });
});

test('backendKeyCmp orders (addr, port) exactly as the strings "addr:port" sort', (t) => {
  const part = fc.constantFrom('1', '10', '100', '2', '0', 'fd00', 'a', '', '255');
  const addr = fc.array(part, { minLength: 1, maxLength: 4 }).chain((ps) => fc.constantFrom(ps.join('.'), ps.join(':'), ps.join('::')));
  const port = fc.constantFrom(1, 8, 9, 10, 80, 99, 100, 443, 8080, 9999, 10000, 65535);
  const sign = (x) => (x < 0 ? -1 : x > 0 ? 1 : 0);
  fc.assert(fc.property(addr, port, addr, port, (a, ap, b, bp) => {
    const x = `${a}:${ap}`, y = `${b}:${bp}`;
    t.is(sign(backendKeyCmp(a, ap, b, bp)), x < y ? -1 : x > y ? 1 : 0, `${x} vs ${y}`);
    return true;
  }), { numRuns: 5000, seed: 11 });
});

test('ipv4KeyRank orders IPv4 addresses as their "addr:port" key strings sort (ties: the ports, by backendKeyCmp)', (t) => {
  // octets that straddle digit counts and prefixes: 1/10/100/19/2/25/250/255/0/9/99
  const octet = fc.oneof(fc.constantFrom(0, 1, 2, 9, 10, 19, 25, 99, 100, 199, 2, 250, 255), fc.integer({ min: 0, max: 255 }));
  const addr = fc.tuple(octet, octet, octet, octet);
  const port = fc.constantFrom(1, 8, 80, 443, 8080, 9, 10000, 65535);
  const sign = (x) => (x < 0 ? -1 : x > 0 ? 1 : 0);
  // b shares a's first k octets (k = 4: the same address, the ports decide)
  fc.assert(fc.property(addr, port, addr, port, fc.integer({ min: 0, max: 4 }), (a, ap, b0, bp, k) => {
    const b = [...a.slice(0, k), ...b0.slice(k)];
    const as = a.join('.'), bs = b.join('.');
    const au = ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]), bu = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]); // int32, as the compiler has them
    const x = `${as}:${ap}`, y = `${bs}:${bp}`;
    const d = ipv4KeyRank(au) - ipv4KeyRank(bu);
    t.is(d === 0, as === bs, `${as} vs ${bs}: equal ranks only for equal addresses`);
    t.is(sign(d || backendKeyCmp(as, ap, bs, bp)), x < y ? -1 : x > y ? 1 : 0, `${x} vs ${y}`);
    return true;
  }), { numRuns: 20000, seed: 12 });
});

// The daemon applies its NodeConfig before the first sync: from a node-only state a batch takes
// the full compile's path (compiler.ts), which must give what the incremental path gives — the
// same Ir as a recompile and as a fresh compile, diffs that replay to it, and a rollback / undoDiff
// back to exactly the node-only state (its routes and SNAT addresses included).
test('from a node config alone, a batch compiles, diffs, rolls back and undoes like any change', (t) => {
  const batchArb = fc.array(fc.oneof(
    { weight: 4, arbitrary: svcArb.map((g) => ({ op: 'upsert', raw: serviceRaw(g) })) },
    { weight: 5, arbitrary: sliceArb.map((g) => ({ op: 'upsert', raw: sliceRaw(g) })) },
    { weight: 1, arbitrary: nodeArb.map((g) => ({ op: 'upsert', raw: nodeRaw(g) })) },
    { weight: 1, arbitrary: fc.constant({ op: 'remove', ref: { kind: 'NodeConfig', name: 'node-a' } }) },
  ), { minLength: 1, maxLength: 8 });
  let applied = 0, withServices = 0;
  fc.assert(fc.property(nodeArb, batchArb, (node, actions) => {
    const c = new Compiler();
    const mirror = emptyIr();
    replay(mirror, c.change(toBatch([{ op: 'upsert', raw: nodeRaw(node) }])).diff);
    const before = plain(c.ir), snapshotBefore = c.snapshot();
    let ch;
    try { ch = c.change(toBatch(actions)); } catch (e) {
      if (e.name !== 'ValidationError') throw e;
      t.deepEqual(plain(c.ir), before, 'a refused batch changes nothing');
      t.deepEqual(c.snapshot(), snapshotBefore);
      return true;
    }
    applied++;
    if (c.serviceCount()) withServices++;
    const m2 = mirror; // the node config's routes and SNAT addresses
    replay(m2, ch.diff);
    t.deepEqual(plain(m2), plain(c.ir), 'the diffs replay to the Ir');
    t.deepEqual(plain(c.recompileAll()), plain(c.ir), 'a recompile with the same ids gives the Ir');
    const fresh = compileAll([...c.listServices(), ...c.listSlices(), ...(c.getNode() ? [c.getNode()] : [])]);
    t.deepEqual(canonical(fresh.ir), canonical(c.ir), 'a fresh compile of the model gives the Ir');
    replay(m2, ch.undoDiff);
    t.deepEqual(plain(m2), before, 'the undoDiff takes the dataplane back to the node config alone');
    const later = [...c.listServices()];
    ch.rollback();
    t.deepEqual(plain(c.ir), before, 'rollback: the Ir of the node config alone');
    t.deepEqual(c.snapshot(), snapshotBefore, 'rollback: the model of the node config alone');
    t.is(c.serviceCount(), 0);
    // and the compiler works on from there: the same batch again gives the same Ir
    if (later.length) {
      const again = c.change(toBatch(actions));
      t.deepEqual(canonical(c.ir), canonical(fresh.ir));
      again.rollback();
    }
    return true;
  }), { numRuns: 300, seed: 1812 });
  t.true(applied > 100, `applied ${applied}`);
  t.true(withServices > 50, `with services ${withServices}`);
});
