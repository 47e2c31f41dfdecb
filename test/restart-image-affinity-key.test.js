// A table image's sessionAffinity entries under their Service port's key (assembly/select.ts
// affinityKey: the port's ClusterIP frontend, whichever frontend selected; docs/core.md
// "sessionAffinity per service port"). An entry saved keyed by the frontend it was made through
// (a NodePort, as a wdp before the shared key wrote them) is never looked up by a core that keys
// by the ClusterIP: the restore re-keys it — the import with the image's ids (ImageIds) on the
// image's own tables, the catch-up's re-placement (table-image.ts remapIds) on the new ones —
// so the client keeps its pin. The entry is written the old way directly into the saving core's
// table (rehomeAffinity), pinned to another endpoint than the one first picked; each check counts
// an affinity hit (the Maglev pick depends on the source port).
// Also: the flow checkpoint's import without an image (IrIds: the path a previous version's
// image takes, refused for its other module and layout) re-keys it too.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { LocalDataplane } from '../dist/src/core/dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { exportFlows, importFlows, rehomeAffinity } from '../dist/src/core/flow-export.js';
import { captureImage, decodeImage, ImageResume } from '../dist/src/core/table-image.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';

const PORTS = [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:aa' }, { index: 1, name: 'pods', mac: '02:77:64:70:00:01' }];
const WHO = { worker: 0, workers: 1, revision: 'r:1', inputsHash: 'h1', announced: [] };
const NODE = '192.168.0.1', CIP = '10.96.0.10', CLIENT = '172.20.0.9';
const EPS = ['10.244.1.5', '10.244.2.5', '10.244.3.5'];
const OPTS = { flows: 1024, affinitySlots: 1024 };

const nodeConfig = { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'node-a' },
  spec: { nodeAddresses: [NODE], routes: [{ prefix: '0.0.0.0/0', port: 1, nextHopMac: '02:00:00:00:77:01', localMac: '02:77:64:70:00:01' }] } };
const service = (name, clusterIP, nodePort) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' },
  spec: { type: 'NodePort', clusterIP, sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080, nodePort }] } });
const slice = (name, addrs) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', ports: [{ port: 8080 }],
  endpoints: addrs.map((a) => ({ addresses: [a] })), metadata: { name: `${name}-1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': name } } });
const WEB = [service('web', CIP, 30080), slice('web', EPS)];
// a Service before 'web' in the first process's order: the catch-up compile (without it) numbers
// web's frontends and backends otherwise
const OTHER = [service('aaa', '10.96.0.20', 30090), slice('aaa', ['10.244.9.1', '10.244.9.2'])];

const syn = (sport) => frame({ src: CLIENT, dst: NODE, proto: 'TCP', sport, dport: 30080, flags: 'S', seq: 1 });
const nodePortId = (core) => [...core.ir.frontends.values()].find((f) => f.port === 30080 && f.addr === NODE).id;
const clusterIpId = (core) => [...core.ir.frontends.values()].find((f) => f.addr === CIP).id;
const affEntries = (core) => {
  const out = [];
  for (let i = 0; i < core.map.affSlots; i++) {
    const s = core.map.aff + i * L.AFF_SIZE, front = core.dv.getUint32(s + L.AFF_FRONT, true);
    if (front) out.push({ front, back: core.dv.getUint32(s + L.AFF_BACKEND, true) });
  }
  return out;
};

/** The first process: a client pinned through the NodePort, its entry then re-written keyed by the
 * NodePort frontend (the old way) and pinned to another endpoint than the NodePort's pick. */
async function savedWithOldKey(t, objs) {
  const a = new LocalDataplane(OPTS);
  await new ControlPlaneCore(a, null).apply(objs);
  const [r] = a.core.run([syn(40000)], 1000, 0);
  t.is(r.reason, 'fwd_nat');
  const picked = parseFrame(r.frame).dst;
  t.deepEqual(affEntries(a.core).map((e) => e.front), [clusterIpId(a.core)], 'the core keys the pin by the ClusterIP');
  const np = nodePortId(a.core), pinned = EPS.find((x) => x !== picked);
  const pinnedId = [...a.core.ir.backends.values()].find((b) => b.addr === pinned).id;
  rehomeAffinity(a.core, () => ({ front: np, back: pinnedId }));
  t.deepEqual(affEntries(a.core), [{ front: np, back: pinnedId }]);
  return { image: captureImage(a.core, WHO), saved: exportFlows(a.core, PORTS, 1002), picked, pinned };
}

function holds(t, core, pinned, sport, now, what) {
  const before = core.counters().global.aff_hit ?? 0;
  const [r] = core.run([syn(sport)], now, 0);
  t.is(r.reason, 'fwd_nat', what);
  t.is(parseFrame(r.frame).dst, pinned, `${what}: the client stays on its pinned endpoint`);
  t.is((core.counters().global.aff_hit ?? 0) - before, 1, `${what}: an affinity hit`);
}

for (const catchUp of ['the same compile (equal)', 'a renumbering compile']) {
  test(`table image: an affinity entry keyed by the NodePort frontend is re-keyed by the ClusterIP; the pin holds before and after the catch-up (${catchUp})`, async (t) => {
    const renumber = catchUp !== 'the same compile (equal)';
    const first = renumber ? [...OTHER, nodeConfig, ...WEB] : [nodeConfig, ...WEB];
    const { image, saved, pinned } = await savedWithOldKey(t, first);
    const b = new LocalDataplane(OPTS);
    const { meta, payload } = decodeImage(image);
    const resume = new ImageResume(b.core, meta, payload);
    const stats = importFlows(b.core, saved, PORTS, 500, 50, resume.ids());
    t.is(stats.affinity, 1, JSON.stringify(stats));
    holds(t, b.core, pinned, 41000, 60, 'from the image');
    await new ControlPlaneCore(b, null).apply([nodeConfig, ...WEB]);
    const r = resume.afterApply();
    t.is(r.equal, !renumber);
    if (renumber) t.deepEqual([r.affinity, r.affinityDropped], [1, 0]);
    t.deepEqual(affEntries(b.core).map((e) => e.front), [clusterIpId(b.core)], 'keyed by the ClusterIP after the catch-up');
    holds(t, b.core, pinned, 41001, 70, 'after the catch-up');
  });
}

test('flow checkpoint without an image (a previous version\'s image is refused): the NodePort-keyed entry is re-keyed by the ClusterIP and holds', async (t) => {
  const { saved, pinned } = await savedWithOldKey(t, [...OTHER, nodeConfig, ...WEB]);
  const b = new LocalDataplane(OPTS);
  await new ControlPlaneCore(b, null).apply([nodeConfig, ...WEB]);
  const stats = importFlows(b.core, saved, PORTS, 500, 50);
  t.is(stats.affinity, 1, JSON.stringify(stats));
  t.deepEqual(affEntries(b.core).map((e) => e.front), [clusterIpId(b.core)]);
  holds(t, b.core, pinned, 41000, 60, 'after the import');
});

test('catch-up: an entry keyed by the NodePort frontend when the renumbering compile comes (written after the import) is re-placed under the new ClusterIP id and holds', async (t) => {
  const { image, saved, pinned } = await savedWithOldKey(t, [...OTHER, nodeConfig, ...WEB]);
  const b = new LocalDataplane(OPTS);
  const { meta, payload } = decodeImage(image);
  const resume = new ImageResume(b.core, meta, payload);
  importFlows(b.core, saved, PORTS, 500, 50, resume.ids());
  // the image's NodePort id: the core's Ir is still empty, the image is the first process's
  // compile, which another compile of the same objects in the same order repeats
  const [entry] = affEntries(b.core);
  const twin = new LocalDataplane(OPTS);
  await new ControlPlaneCore(twin, null).apply([...OTHER, nodeConfig, ...WEB]);
  const np = nodePortId(twin.core);
  rehomeAffinity(b.core, () => ({ front: np, back: entry.back }));
  t.deepEqual(affEntries(b.core), [{ front: np, back: entry.back }]);
  await new ControlPlaneCore(b, null).apply([nodeConfig, ...WEB]);
  const r = resume.afterApply();
  t.false(r.equal);
  t.deepEqual([r.affinity, r.affinityDropped], [1, 0]);
  t.deepEqual(affEntries(b.core).map((e) => e.front), [clusterIpId(b.core)], 'keyed by the ClusterIP after the catch-up');
  holds(t, b.core, pinned, 41001, 70, 'after the catch-up');
});
