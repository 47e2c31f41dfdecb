// Table images (src/core/table-image.ts): a restarted core forwards from the tables as they were
// before the control plane has compiled anything, the saved flows imported with the image's ids;
// the control plane's catch-up compile (other ids after incremental changes) is then written over
// it and every live flow keeps its backend; a catch-up of the same compile is byte-identical to
// the image; a damaged, foreign or stale image is refused with its reason. In-process: the
// control plane over a LocalDataplane, as the daemon runs it over its workers.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { exportFlows, importFlows } from '../dist/src/core/flow-export.js';
import { captureImage, decodeImage, imageProblem, ImageResume, layoutHash } from '../dist/src/core/table-image.js';
import { makeServiceSet } from '../dist/src/bench/peers/service-set.js';
import { benchObjects, serviceObject, sliceObject } from '../dist/src/bench/control.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';

const PORTS = [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:aa' }, { index: 1, name: 'pods', mac: '02:77:64:70:00:01' }];
const WHO = { worker: 0, workers: 1, revision: 'r:7', inputsHash: 'h1', announced: [] };
const CLIENT = '192.168.200.7';
// 1,500 Services x 10 endpoints: more than the writer's first capacities (the restore's regrow path)
const svcs = makeServiceSet({ services: 1500, endpoints: 10 });
// the saved state in the store's order (kind, then namespace/name), as a restart reads it
const storeOrder = (objs) => [...objs].sort((a, b) => (a.kind + ' ' + a.metadata.namespace + '/' + a.metadata.name).localeCompare(b.kind + ' ' + b.metadata.namespace + '/' + b.metadata.name));

const NO_NEXT_HOP = { outPort: L.PORT_NONE, dstMac: '00:00:00:00:00:00', srcMac: '00:00:00:00:00:00' };
/** A default route out of port 1, and the local-traffic detector's entries: the pod CIDR, and
 * the node's own address when `node` is given. */
const detectorRoutes = (node) => [
  { prefix: '0.0.0.0/0', outPort: 1, dstMac: '02:00:00:00:77:01', srcMac: '02:00:00:00:00:cc' },
  { prefix: '10.244.0.0/16', ...NO_NEXT_HOP, localSource: 'pod' },
  ...(node ? [{ prefix: `${node}/32`, ...NO_NEXT_HOP, localSource: 'node' }] : []),
];

const syn = (s, sport) => frame({ src: CLIENT, dst: s.clusterIP, proto: 'TCP', sport, dport: s.port, flags: 'S', seq: 1 });
const ack = (s, sport) => frame({ src: CLIENT, dst: s.clusterIP, proto: 'TCP', sport, dport: s.port, flags: 'A', seq: 2, ack: 2 });
const reply = (s, backendAddr, sport) => frame({ src: backendAddr, dst: CLIENT, proto: 'TCP', sport: 8080, dport: sport, flags: 'SA', seq: 9, ack: 2 });

/** An established connection to each of `picked` through `core`: the backend each went to. */
function connect(core, picked, now) {
  return picked.map((s, i) => {
    const sport = 20000 + i;
    const [r] = core.run([syn(s, sport)], now, 0);
    if (r.reason !== 'fwd_nat') throw new Error(`SYN to ${s.clusterIP}: ${r.reason}`);
    const backendAddr = parseFrame(r.frame).dst;
    core.run([reply(s, backendAddr, sport)], now, 1);
    core.run([ack(s, sport)], now, 0);
    return { s, sport, backendAddr };
  });
}

/** The connection goes on to its backend, and its replies translate back to the VIP. */
function goesOn(t, core, c, now) {
  const [r] = core.run([ack(c.s, c.sport)], now, 0);
  t.is(r.reason, 'fwd_nat', `${c.s.clusterIP}:${c.sport}`);
  t.is(parseFrame(r.frame).dst, c.backendAddr);
  const [b] = core.run([reply(c.s, c.backendAddr, c.sport)], now, 1);
  t.is(b.reason, 'fwd_reply');
  t.is(parseFrame(b.frame).src, c.s.clusterIP);
}

test('an image forwards old and new connections before the control plane compiles; the catch-up renumbers ids and every flow keeps its backend', async (t) => {
  // the old process: a full sync, then incremental changes (so its ids are not the restart's 1..n)
  const a = new LocalDataplane({ flows: 4096 });
  const cpA = new ControlPlaneCore(a, null);
  await cpA.apply(benchObjects(svcs));
  const gone = svcs.slice(0, 40);
  await cpA.remove(gone.flatMap((s) => [serviceObject(s), sliceObject(s)]));
  const moved = svcs.slice(100, 140).map((s) => ({ ...s, endpoints: [{ addr: `10.255.0.${s.name.slice(4) % 250 + 1}`, port: 8080 }, ...s.endpoints.slice(1)] }));
  await cpA.apply(moved.map((s) => sliceObject(s)));
  const back = gone.slice(0, 20);  // re-added: new ids from the freed ones
  await cpA.apply(back.flatMap((s) => [serviceObject(s), sliceObject(s)]));
  const movedNames = new Set(moved.map((s) => s.name));
  const live = [...svcs.slice(40).filter((s) => !movedNames.has(s.name)), ...moved, ...back];
  const picked = [moved[3], back[5], svcs[700], svcs[1499], moved[30]];
  const conns = connect(a.core, picked, 1000);
  const image = captureImage(a.core, WHO);
  const saved = exportFlows(a.core, PORTS, 1500);
  t.is(saved.flows.length, picked.length * L.CT_SIZE);

  // the new process: image loaded, flows imported with the image's ids — no compile yet
  const b = new LocalDataplane({ flows: 4096 });
  const { meta, payload } = decodeImage(image);
  t.is(imageProblem(meta, { moduleHash: b.core.moduleHash, worker: 0, workers: 1, revision: 'r:7', inputsHash: 'h1' }), null);
  const resume = new ImageResume(b.core, meta, payload);
  t.is(b.core.ir.frontends.size, 0);     // nothing compiled: forwarding from the image alone
  const stats = importFlows(b.core, saved, PORTS, 500, 50, resume.ids());
  t.deepEqual(stats, { flows: picked.length, affinity: 0, staleBackends: 0, dropped: {} });
  for (const c of conns) goesOn(t, b.core, c, 60);
  // a new connection to a Service the old process had, and none to one it had removed
  const fresh = connect(b.core, [svcs[900]], 61)[0];
  t.true(svcs[900].endpoints.some((e) => e.addr === fresh.backendAddr));
  const [none] = b.core.run([syn(gone[30], 30000)], 61, 0);
  t.not(none.reason, 'fwd_nat');

  // the control plane catches up: the saved state in the store's order, compiled from scratch
  const cpB = new ControlPlaneCore(b, null);
  await cpB.apply(storeOrder(benchObjects(live)));
  const r = resume.afterApply();
  t.truthy(r);
  t.false(r.equal);                      // ids renumbered: 1..n in the store's order
  t.true(r.remapped > 0);
  t.is(r.unmatched, 0);
  t.is(resume.afterApply(), undefined);  // once
  for (const c of [...conns, fresh]) goesOn(t, b.core, c, 70);
  // each flow names the ids the new tables give its Service and backend
  for (const f of b.core.flows({}, 70)) {
    const fe = b.core.ir.frontends.get(f.frontendId);
    t.is(fe.addr, f.vip);
    t.is(b.core.ir.backends.get(f.backendId).addr, f.backend);
  }
  t.is(b.core.counters().global.ct_reselect ?? 0, 0);
});

test('the catch-up compile of the same saved state is byte-identical to the image (a nondeterministic compile fails this)', async (t) => {
  const objs = storeOrder(benchObjects(svcs));
  // a process that restored the saved state (one full compile into a fresh core) writes the image
  const a = new LocalDataplane({ flows: 1024 });
  await new ControlPlaneCore(a, null).apply(objs);
  const image = captureImage(a.core, WHO);
  // the next one loads it and compiles the same state
  const b = new LocalDataplane({ flows: 1024 });
  const { meta, payload } = decodeImage(image);
  const resume = new ImageResume(b.core, meta, payload);
  await new ControlPlaneCore(b, null).apply(objs);
  const r = resume.afterApply();
  t.true(r.equal, 'the new tables differ from the image');
  t.is(r.remapped, 0);
  // and a third capture (the catch-up's own tables) is the same image but for the save time
  const again = decodeImage(captureImage(b.core, WHO));
  t.true(again.payload.equals(payload));
  t.deepEqual({ ...again.meta, savedAt: 0 }, { ...meta, savedAt: 0 });
});

test('a damaged, foreign or stale image is refused with its reason', async (t) => {
  const a = new LocalDataplane({ flows: 256 });
  await new ControlPlaneCore(a, null).apply(benchObjects(svcs.slice(0, 20)));
  const image = captureImage(a.core, WHO);
  const want = { moduleHash: a.core.moduleHash, worker: 0, workers: 1, revision: 'r:7', inputsHash: 'h1' };
  t.is(imageProblem(decodeImage(image).meta, want), null);
  const flipped = Buffer.from(image); flipped[flipped.length - 100] ^= 1;
  t.throws(() => decodeImage(flipped), { message: /checksum mismatch/ });
  t.throws(() => decodeImage(image.subarray(0, image.length - 1)), { message: /truncated or trailing/ });
  t.throws(() => decodeImage(Buffer.from('WDPFLOWS' + 'x'.repeat(40))), { message: /magic/ });
  // format 1 held u32 backend ids in the Maglev words: refused, the catch-up writes the tables
  const v1 = Buffer.from(image); v1.writeUInt32LE(1, 8);
  t.throws(() => decodeImage(v1), { message: /format version 1; this wdp reads version 2/ });
  const { meta } = decodeImage(image);
  t.regex(imageProblem(meta, { ...want, revision: 'r:8' }), /saved state changed/);
  t.regex(imageProblem(meta, { ...want, revision: null }), /no revision/);
  t.regex(imageProblem(meta, { ...want, inputsHash: 'h2' }), /node configuration changed/);
  // the digests of the node config and of the ports apart: the refusal says which changed
  const split = { ...meta, inputsHash: 'n1/p1' };
  t.is(imageProblem(split, { ...want, inputsHash: 'n1/p1' }), null);
  const ports = imageProblem(split, { ...want, inputsHash: 'n1/p2' });
  t.regex(ports, /^the ports changed since it was written \(a port added or removed/);
  t.notRegex(ports, /node configuration/);
  t.regex(imageProblem(split, { ...want, inputsHash: 'n2/p1' }), /^the node configuration changed[^;]*$/);
  t.regex(imageProblem(split, { ...want, inputsHash: 'n2/p2' }), /node configuration changed.*; the ports changed/);
  t.regex(imageProblem(meta, { ...want, moduleHash: want.moduleHash ^ 1 }), /another build/);
  t.regex(imageProblem(meta, { ...want, worker: 1, workers: 2 }), /worker 0 of 1/);
  t.regex(imageProblem({ ...meta, layoutHash: layoutHash() ^ 1 }, want), /another table layout/);
  t.regex(imageProblem({ ...meta, offsets: [...meta.offsets.slice(0, 5), meta.offsets[5] + 64] }, want), /laid out differently/);
  t.regex(imageProblem({ ...meta, lengths: [...meta.lengths.slice(0, 2), 1 << 30, ...meta.lengths.slice(3)] }, want), /overruns/);
});

test('startFromImage: a flow import that fails after the load keeps the image\'s tables, says so, and never throws; the file is gone either way', async (t) => {
  const { startFromImage, writeImageFile } = await import('../dist/src/daemon/table-image-file.js');
  const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-image-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = new LocalDataplane({ flows: 4096 });
  await new ControlPlaneCore(a, null).apply(benchObjects(svcs.slice(0, 50)));
  const conns = connect(a.core, [svcs[7]], 1000);
  writeImageFile(dir, 0, captureImage(a.core, WHO));
  const b = new LocalDataplane({ flows: 4096 });
  const broken = { flows: new Uint8Array(L.CT_SIZE + 1), affinity: new Uint8Array(0), frontends: [], backends: [] };
  const { resume, result } = startFromImage(b.core, 0, 1, { dir, revision: 'r:7', inputsHash: 'h1', flows: broken, extraAgeMs: 0, neighbours: [] }, PORTS);
  t.true(result.used);
  t.truthy(resume);
  t.regex(result.problem ?? '', /saved flows were not imported: .*whole entries/);
  t.false(existsSync(join(dir, 'tables.0.img')));
  // the image's tables are in place: a new connection to a saved service is translated
  const [r] = b.core.run([syn(svcs[7], 31000)], 2000, 0);
  t.is(r.reason, 'fwd_nat');
  t.is(conns.length, 1);
});

// Between the image's load and the catch-up apply the control plane's view of the tables (the Ir)
// is empty while the core forwards from the image: the conntrack listing checks a flow's ids
// against the image's own tables then, as the core does (assembly/stale.ts backendHolds,
// heldFrontId) — the old process's listing, not every flow with ids 0 and backendLeft.
test('while the tables are the image, the conntrack listing checks ids on the image: the old process\'s ids and backendLeft; a service filter is refused (the image has no names)', async (t) => {
  const { Core } = await import('../dist/src/core/host.js');
  const { backend, frontend, mkIr } = await import('./lib/packets.js');
  const ROUTES = detectorRoutes();
  const b7 = backend({ id: 7, addr: '10.244.1.5', port: 8080 }), b9 = backend({ id: 9, addr: '10.244.2.5', port: 8080 });
  const b11 = backend({ id: 11, addr: '10.244.3.5', port: 8080 }), b12 = backend({ id: 12, addr: '10.244.3.6', port: 8080 });
  const f5 = frontend({ id: 5, addr: '10.96.0.1', port: 80 }, [b7, b9]);
  // a NodePort with externalTrafficPolicy Local: a pod's flow is short-circuited to f5 (its cluster front)
  const f6 = frontend({ id: 6, addr: '192.168.0.1', port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL, clusterFront: 5 }, [b7]);
  const f8 = (bes) => frontend({ id: 8, addr: '10.96.0.2', port: 80 }, bes);
  const f10 = frontend({ id: 10, addr: '10.96.0.3', port: 80 }, [b12]);
  const a = Core.create({ flows: 64, batchMax: 8 });
  a.applyIr(mkIr({ frontends: [f5, f6, f8([b11]), f10], backends: [b7, b9, b11, b12], routes: ROUTES }));
  const open = (src, dst, dport, sport) => {
    const [r] = a.run([frame({ src, dst, proto: 'TCP', sport, dport, flags: 'S', seq: 1 })], 1000, 0);
    t.is(r.reason, 'fwd_nat', `${src} -> ${dst}:${dport}`);
  };
  open(CLIENT, '10.96.0.1', 80, 1001);
  open('10.244.1.7', '192.168.0.1', 30080, 1002);
  open(CLIENT, '10.96.0.2', 80, 1003);
  open(CLIENT, '10.96.0.3', 80, 1004);
  // b11 leaves its Service, f10 is deleted with b12: their open connections are kept
  a.applyIr(mkIr({ frontends: [f5, f6, f8([])], backends: [b7, b9], routes: ROUTES }));
  const view = (flows) => Object.fromEntries(flows.map((f) => [`${f.client}:${f.clientPort}`, { frontendId: f.frontendId, backendId: f.backendId, backendLeft: f.backendLeft ?? false }]));
  const before = view(a.flows({}, 1010));
  t.like(before, {
    [`${CLIENT}:1001`]: { frontendId: 5, backendLeft: false },
    '10.244.1.7:1002': { frontendId: 5, backendId: 7, backendLeft: false },
    [`${CLIENT}:1003`]: { frontendId: 8, backendId: 0, backendLeft: true },
    [`${CLIENT}:1004`]: { frontendId: 0, backendId: 0, backendLeft: true },
  });
  const image = captureImage(a, WHO);
  const saved = exportFlows(a, PORTS, 1010);

  const b = Core.create({ flows: 64, batchMax: 8 });
  const { meta, payload } = decodeImage(image);
  const resume = new ImageResume(b, meta, payload);
  t.is(importFlows(b, saved, PORTS, 0, 50, resume.ids()).flows, 4);
  t.is(b.ir.frontends.size, 0, 'nothing compiled yet');
  t.deepEqual(view(b.flows({}, 50)), before, 'the listing from the image = the old process\'s');
  t.deepEqual(view(b.flows({ frontendId: 5 }, 50)), { [`${CLIENT}:1001`]: before[`${CLIENT}:1001`], '10.244.1.7:1002': before['10.244.1.7:1002'] });
  t.throws(() => b.flows({ service: 'default/svc' }, 50), { message: /service.*table image/ });
  // the catch-up: the listing checks ids on the control plane's tables again
  b.applyIr(mkIr({ frontends: [f5, f6, f8([])], backends: [b7, b9], routes: ROUTES }));
  t.truthy(resume.afterApply());
  const after = view(b.flows({}, 60));
  // the catch-up re-finds frontends by VIP and port, the short-circuited flow's as the core
  // records it: its cluster front f5 (not the NodePort f6 its VIP and port name)
  t.deepEqual(after, before);
  t.is(b.flows({ service: 'default/svc' }, 60).length, 3, 'a service filter works again (f10\'s flow has no frontend)');
});

// The catch-up compile may number everything anew: a flow the old process had short-circuited to
// its Service's cluster front (a pod's or the node's to an externalTrafficPolicy Local NodePort)
// is found by its (VIP, port) — the NodePort's — and must then be the new cluster front's, as the
// running core records such a flow (assembly/pipeline.ts newFlow): listed, traced and counted
// under it, on its old backend (here one the NodePort's own set lacks).
test('the catch-up gives a flow short-circuited to its cluster front (externalTrafficPolicy Local, a pod or the node) the new cluster front\'s id, as the core records it; an outside client\'s stays the NodePort\'s', async (t) => {
  const { Core } = await import('../dist/src/core/host.js');
  const { backend, frontend, mkIr } = await import('./lib/packets.js');
  const ROUTES = detectorRoutes('192.168.0.1');
  /** ClusterIP `cf` over both endpoints, an externalTrafficPolicy Local NodePort `np` over the local one. */
  const irOf = (cf, np, localId, remoteId) => {
    const local = backend({ id: localId, addr: '10.244.1.5', port: 8080 }), remote = backend({ id: remoteId, addr: '10.244.2.5', port: 8080 });
    return mkIr({
      frontends: [frontend({ id: cf, addr: '10.96.0.1', port: 80 }, [local, remote]),
        frontend({ id: np, addr: '192.168.0.1', port: 30080, kind: 'NodePort', flags: L.FEF_EXTERNAL, clusterFront: cf }, [local])],
      backends: [local, remote], routes: ROUTES, snatV4: '192.168.0.1',
    });
  };
  const toNodePort = (src, sport, flags = 'S') => frame({ src, dst: '192.168.0.1', proto: 'TCP', sport, dport: 30080, flags, seq: 1 });
  // a pod and the node to the remote endpoint (a port found on a scratch core), an outside
  // client (to the local one: the NodePort's only)
  const scratch = Core.create({ flows: 64, batchMax: 8 });
  scratch.applyIr(irOf(5, 6, 7, 9));
  const conns = ['10.244.1.7', '192.168.0.1', CLIENT].map((src) => {
    let sport = 1000;
    while (src !== CLIENT && parseFrame(scratch.run([toNodePort(src, sport)], 1000, 0)[0].frame).dst !== '10.244.2.5') sport++;
    return { src, sport };
  });
  const a = Core.create({ flows: 64, batchMax: 8 });
  a.applyIr(irOf(5, 6, 7, 9));
  for (const c of conns) {
    const [r] = a.run([toNodePort(c.src, c.sport)], 1000, 0);
    t.is(r.reason, 'fwd_nat');
    c.dst = parseFrame(r.frame).dst;
  }
  t.deepEqual(conns.map((c) => c.dst), ['10.244.2.5', '10.244.2.5', '10.244.1.5']);
  const fronts = (core, now) => conns.map((c) => core.flows({ client: c.src }, now).find((f) => f.clientPort === c.sport).frontendId);
  t.deepEqual(fronts(a, 1001), [5, 5, 6], 'live: the pod\'s and the node\'s flows are the cluster front\'s');

  const b = Core.create({ flows: 64, batchMax: 8 });
  const { meta, payload } = decodeImage(captureImage(a, WHO));
  const resume = new ImageResume(b, meta, payload);
  t.is(importFlows(b, exportFlows(a, PORTS, 1001), PORTS, 0, 50, resume.ids()).flows, 3);
  t.deepEqual(fronts(b, 50), [5, 5, 6], 'from the image: the old process\'s ids');
  // the catch-up compile numbers everything anew
  b.applyIr(irOf(15, 12, 3, 4));
  t.truthy(resume.afterApply());
  t.deepEqual(fronts(b, 60), [15, 15, 12], 'after the catch-up: the new cluster front\'s id');
  // the connections go on to their backends, traced and counted under those frontends
  b.setCfg32(L.CFG_TRACE, L.TRACE_ON);
  const hits = conns.map((c) => { const [r] = b.run([toNodePort(c.src, c.sport, 'A')], 61, 0); return [r.reason, parseFrame(r.frame).dst, b.traceRecord(0).front]; });
  b.setCfg32(L.CFG_TRACE, 0);
  t.deepEqual(hits, conns.map((c, i) => ['fwd_nat', c.dst, i < 2 ? 15 : 12]));
  t.like(b.counters().frontends, { 15: { packets: 2 }, 12: { packets: 1 } });
  t.is(b.counters().global.ct_new, 0);
});

// The same for the affinity entries the catch-up re-places: one keyed by a ClusterPolicy
// frontend (the cluster front while both traffic policies are Local), which shares the
// ClusterIP's (VIP, port), goes to the new ClusterPolicy frontend — under the ClusterIP, whose set
// is the local endpoints only, it would pin the pod's ClusterIP connections to a remote one.
/** A core `a` over a ClusterIP `ci` (local endpoint), a ClusterPolicy `cp` (both) and an
 * externalTrafficPolicy Local NodePort `np` (local), with a pod pinned through the NodePort (the
 * ClusterPolicy frontend's fresh pick) to the remote endpoint; and its image's resume in core `b`
 * with the flows imported. `irOf(ci, cp, np, localId, remoteId, cpRemote = true)`. */
async function clusterPolicyPin(t) {
  const { Core } = await import('../dist/src/core/host.js');
  const { backend, frontend, mkIr } = await import('./lib/packets.js');
  const ROUTES = detectorRoutes();
  const aff = { flags: L.FEF_AFFINITY, affinityTimeoutMs: 60_000 };
  const irOf = (ci, cp, np, localId, remoteId, cpRemote = true) => {
    const local = backend({ id: localId, addr: '10.244.1.5', port: 8080 }), remote = backend({ id: remoteId, addr: '10.244.2.5', port: 8080 });
    return mkIr({
      frontends: [frontend({ id: ci, addr: '10.96.0.1', port: 80, ...aff }, [local]),
        frontend({ id: cp, addr: '10.96.0.1', port: 80, kind: 'ClusterPolicy', ...aff }, cpRemote ? [local, remote] : [local]),
        frontend({ id: np, addr: '192.168.0.1', port: 30080, kind: 'NodePort', ...aff, flags: L.FEF_EXTERNAL | L.FEF_AFFINITY, clusterFront: cp }, [local])],
      backends: [local, remote], routes: ROUTES,
    });
  };
  const syn = (src, dst, dport, sport) => frame({ src, dst, proto: 'TCP', sport, dport, flags: 'S', seq: 1 });
  let pod;
  for (let i = 2; i < 250 && !pod; i++) {
    const s = Core.create({ flows: 64, batchMax: 8 });
    s.applyIr(irOf(5, 6, 8, 7, 9));
    if (parseFrame(s.run([syn(`10.244.1.${i}`, '192.168.0.1', 30080, 1000)], 1000, 0)[0].frame).dst === '10.244.2.5') pod = `10.244.1.${i}`;
  }
  t.truthy(pod);
  const a = Core.create({ flows: 64, batchMax: 8 });
  a.applyIr(irOf(5, 6, 8, 7, 9));
  t.is(parseFrame(a.run([syn(pod, '192.168.0.1', 30080, 1000)], 1000, 0)[0].frame).dst, '10.244.2.5');
  const b = Core.create({ flows: 64, batchMax: 8 });
  const { meta, payload } = decodeImage(captureImage(a, WHO));
  const resume = new ImageResume(b, meta, payload);
  t.like(importFlows(b, exportFlows(a, PORTS, 1001), PORTS, 0, 50, resume.ids()), { flows: 1, affinity: 1 });
  return { b, resume, irOf, syn, pod };
}

test('the catch-up re-places an affinity entry of a ClusterPolicy cluster front under the new ClusterPolicy frontend, not the ClusterIP sharing its VIP and port', async (t) => {
  const { b, resume, irOf, syn, pod } = await clusterPolicyPin(t);
  b.applyIr(irOf(15, 12, 3, 4, 11));
  t.like(resume.afterApply(), { equal: false, affinity: 1, affinityDropped: 0 });
  // the pod's next NodePort connection: its pin; its ClusterIP ones: the local endpoint only
  t.is(parseFrame(b.run([syn(pod, '192.168.0.1', 30080, 2000)], 60, 0)[0].frame).dst, '10.244.2.5');
  t.is(b.counters().global.aff_hit, 1, 'the pin decided');
  for (let sport = 3000; sport < 3008; sport++) t.is(parseFrame(b.run([syn(pod, '10.96.0.1', 80, sport)], 61, 0)[0].frame).dst, '10.244.1.5', `ClusterIP ${sport}`);
});

// A pin holds only while its backend is in its frontend's set (src/core/affinity-pins.ts): the
// catch-up checks the entries it re-places against the new sets. The apply over the image does
// not check them itself: they still carry the image's ids, which may name other frontends now.
test('the catch-up keeps a re-placed pin whose backend is in the new set, even when its old frontend id is now another frontend\'s', async (t) => {
  const { b, resume, irOf, syn, pod } = await clusterPolicyPin(t);
  // the image's ClusterPolicy id 6 is the ClusterIP (local endpoint only) now
  b.applyIr(irOf(6, 5, 3, 4, 11));
  t.like(resume.afterApply(), { equal: false, affinity: 1, affinityDropped: 0 });
  t.is(parseFrame(b.run([syn(pod, '192.168.0.1', 30080, 2000)], 60, 0)[0].frame).dst, '10.244.2.5');
  t.is(b.counters().global.aff_hit, 1, 'the pin decided');
});

test('the catch-up drops a pin whose backend left its frontend\'s set while the daemon was down', async (t) => {
  const { b, resume, irOf, syn, pod } = await clusterPolicyPin(t);
  // the remote endpoint still exists but the ClusterPolicy frontend no longer selects it
  b.applyIr(irOf(15, 12, 3, 4, 11, false));
  t.like(resume.afterApply(), { equal: false, affinity: 0, affinityDropped: 1 });
  t.is(parseFrame(b.run([syn(pod, '192.168.0.1', 30080, 2000)], 60, 0)[0].frame).dst, '10.244.1.5');
  t.is(b.counters().global.aff_hit, 0);
});
