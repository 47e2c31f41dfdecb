// A restart with another number of workers: saved flows go to the worker that handles their frames
// now, or are left out and counted — never restored into a worker their frames do not reach.
//   * one worker -> two sharing fanout ports: steering hands every frame to the owner of its key,
//     which depends on the number of workers; each restored flow must be in the core steering
//     gives both its directions to (else the owner sees a flow it has not got: a new pick, a reset,
//     a masqueraded reply dropped), and a masqueraded flow whose two directions now key to
//     different workers (its SNAT port was allocated under the old count) is counted workerChanged;
//   * two workers -> one: everything goes to the one (nothing lost as workerGone).
// The cores are the forwarding core in-process (as core-steer does), the checkpoint a real file
// read by the daemon's FlowCheckpointer; the dataplane hands each worker its records as
// WorkerDataplane.importFlows does.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import * as L from '../dist/assembly/layout.js';
import { frame } from '../dist/src/packet/build.js';
import { parseFrame } from '../dist/src/packet/parse.js';
import { exportFlows, importFlows } from '../dist/src/core/flow-export.js';
import { writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { FlowCheckpointer } from '../dist/src/daemon/restart.js';
import { addImportStats } from '../dist/src/daemon/worker-dataplane.js';
import { CLIENT_MAC, LOCAL_MAC, irFrom, mkCore } from './lib/core-fixture.js';

const T0 = 1000;
const SNAT = '192.168.0.100';
const PORTS = [{ index: 0, name: 'uplink', mac: '02:00:00:00:00:01' }, { index: 1, name: 'pods', mac: '02:00:00:00:00:02' }];
const silent = pino({ level: 'silent' });

const ir = () => irFrom({
  frontends: [
    { id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2, 3] },
    { id: 2, addr: SNAT, port: 30080, proto: 'TCP', kind: 'NodePort', flags: L.FEF_MASQUERADE, backends: [1, 2, 3] },
    { id: 3, addr: '10.96.0.11', port: 53, proto: 'UDP', backends: [1, 2, 3] },
  ],
  backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }],
  snatV4: SNAT,
});

/** Runs `frames` through `core` at `now`; the outputs. */
function run(core, frames, now) {
  frames.forEach((f, i) => core.writeFrame(i, f.frame, f.inPort));
  core.process(frames.length, now);
  return frames.map((_, i) => ({ verdict: core.descriptor(i).verdict, frame: core.readFrame(i) }));
}

/** The worker steering gives `f` to among `cores` (each told it is one of cores.length). */
function ownerOf(cores, f) {
  if (cores.length === 1) return 0;
  cores[0].writeFrame(0, f.frame, f.inPort);
  return cores[0].steer(0, 1) === 1 ? cores[0].descriptor(0).verdict : 0;
}

/** Client frames to the three frontends from 40 clients: a ClusterIP and a masqueraded NodePort
 * TCP connection each, and a UDP flow. */
function clientFrames(flags) {
  const out = [];
  for (let c = 0; c < 40; c++) {
    const client = `10.0.${c >> 4}.${(c & 15) + 2}`;
    out.push({ frame: frame({ src: client, dst: '10.96.0.10', proto: 'TCP', sport: 40000 + c, dport: 80, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
    out.push({ frame: frame({ src: client, dst: SNAT, proto: 'TCP', sport: 41000 + c, dport: 30080, flags, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
    out.push({ frame: frame({ src: client, dst: '10.96.0.11', proto: 'UDP', sport: 42000 + c, dport: 53, srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 0 });
  }
  return out;
}
const replyTo = (out) => { const p = parseFrame(out.frame); return { frame: frame({ src: p.dst, dst: p.src, proto: p.proto === 17 ? 'UDP' : 'TCP', sport: p.dport, dport: p.sport, flags: 'SA', srcMac: p.dstMac, dstMac: p.srcMac }), inPort: 1 }; };

/** Opens the flows on `cores` (each frame on its owner), answered by the backends. Returns each
 * client frame's backend and the translated frame the backend saw. */
function open(cores) {
  const syns = clientFrames('S');
  const seen = syns.map((f) => { const w = ownerOf(cores, f); return { w, out: run(cores[w], [f], T0)[0] }; });
  for (const s of seen) {
    const r = replyTo(s.out);
    const back = run(cores[ownerOf(cores, r)], [r], T0 + 1)[0];
    if (back.verdict !== L.V_FORWARD) throw new Error('a reply was not forwarded while opening');
  }
  return seen.map((s) => parseFrame(s.out.frame));
}

/** Saves `cores`' flows as a checkpoint file, restores it through the FlowCheckpointer into
 * `into` (the new configuration's cores); the restore summary. */
async function restart(cores, into, placement, portsOf = () => PORTS, savedPortsOf = () => PORTS) {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-wc-`));
  try {
    writeCheckpoint(dir, { savedAt: Date.now(), reason: 'stop', neighbours: [], workers: cores.map((c, worker) => ({ ...exportFlows(c, savedPortsOf(worker), T0 + 2), worker })) });
    const cp = new FlowCheckpointer(dir, silent, 0);
    const dataplane = {
      async importFlows(saved, extraAgeMs) {
        const total = { flows: 0, affinity: 0, staleBackends: 0, dropped: {} };
        for (const w of saved) {
          if (!into[w.worker]) addImportStats(total, { flows: 0, affinity: 0, staleBackends: 0, dropped: { workerGone: w.flows.length / L.CT_SIZE } });
          else addImportStats(total, importFlows(into[w.worker], w, portsOf(w.worker), extraAgeMs));
        }
        return total;
      },
    };
    await cp.restoreFlows(dataplane, [], placement);
    return cp.summary();
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** The clients' next frames after the restore, each to its owner now: how many found their flow
 * (and kept its backend), how many made a new one; the backends' replies to the masqueraded
 * ones that were restored, each to its owner: how many were reverse-translated. */
function after(cores, before) {
  const newBefore = cores.map((c) => c.counters().global.ct_new);
  const next = clientFrames('A');
  let kept = 0, moved = 0;
  const outs = next.map((f, i) => {
    const o = run(cores[ownerOf(cores, f)], [f], T0 + 10)[0];
    if (o.verdict === L.V_FORWARD && parseFrame(o.frame).dst === before[i].dst && parseFrame(o.frame).sport === before[i].sport) kept++; else moved++;
    return o;
  });
  const created = cores.reduce((n, c, w) => n + c.counters().global.ct_new - newBefore[w], 0);
  const replyBefore = cores.map((c) => c.counters().reasons.fwd_reply ?? 0);
  const masq = outs.filter((o, i) => i % 3 === 1 && o.verdict === L.V_FORWARD && parseFrame(o.frame).src === SNAT);
  for (const o of masq) { const r = replyTo(o); run(cores[ownerOf(cores, r)], [r], T0 + 11); }
  const replied = cores.reduce((n, c, w) => n + (c.counters().reasons.fwd_reply ?? 0) - replyBefore[w], 0);
  return { kept, moved, created, masq: masq.length, replied };
}

test('one worker -> two fanout workers: every restored flow is in the worker steering gives its frames; a masqueraded flow whose reply keys elsewhere is counted workerChanged', async (t) => {
  const one = [mkCore(ir(), { flows: 4096 })];
  const before = open(one);
  const two = [0, 1].map((self) => mkCore(ir(), { flows: 4096, steer: { workers: 2, self } }));
  const s = await restart(one, two, { workers: 2, steering: true });
  t.log(JSON.stringify({ flows: s.flows, dropped: s.dropped }));
  const changed = s.dropped.workerChanged ?? 0;
  t.is(s.flows + changed, 120, 'every saved flow restored or counted');
  t.true(changed > 0 && changed < 40, `some masqueraded flows' replies key to the other worker now: ${changed}`);
  const perCore = two.map((c) => c.counters().global.ct_active);
  t.true(perCore.every((n) => n > 0), `both workers got flows: ${perCore}`);
  const a = after(two, before);
  t.is(a.created, changed, 'a client frame finds its flow in the worker that gets it, but for the flows left out');
  t.is(a.kept, 120 - changed, 'and keeps its backend and translation');
  t.is(a.replied, a.masq, 'every masqueraded reply reaches the worker with its flow');
});

test('two fanout workers -> one: the flows of both are restored into it, none lost as workerGone', async (t) => {
  const two = [0, 1].map((self) => mkCore(ir(), { flows: 4096, steer: { workers: 2, self } }));
  const before = open(two);
  t.true(two.every((c) => c.counters().global.ct_active > 0));
  const one = [mkCore(ir(), { flows: 4096 })];
  const s = await restart(two, one, { workers: 1, steering: false });
  t.is(s.flows, 120);
  t.deepEqual(s.dropped, {});
  const a = after(one, before);
  t.is(a.created, 0);
  t.is(a.kept, 120);
  t.is(a.replied, a.masq);
});

test('the same number of fanout workers: every flow goes back to the worker that saved it', async (t) => {
  const two = [0, 1].map((self) => mkCore(ir(), { flows: 4096, steer: { workers: 2, self } }));
  const before = open(two);
  const counts = two.map((c) => c.counters().global.ct_active);
  const again = [0, 1].map((self) => mkCore(ir(), { flows: 4096, steer: { workers: 2, self } }));
  const s = await restart(two, again, { workers: 2, steering: true });
  t.is(s.flows, 120);
  t.deepEqual(s.dropped, {});
  t.deepEqual(again.map((c) => c.counters().global.ct_active), counts);
  const a = after(again, before);
  t.is(a.created, 0);
  t.is(a.kept, 120);
});

test('ports of their own (worker: N), moved to the other worker: each flow goes to the worker that has its client\'s port now, its affinity with it', async (t) => {
  // worker 0 had uplink-a and pods-a, worker 1 uplink-b and pods-b; now the other way round
  const SPLIT = [{ index: 0, name: 'uplink-a', mac: '02:00:00:00:00:01' }, { index: 1, name: 'pods-a', mac: '02:00:00:00:00:02' }, { index: 2, name: 'uplink-b', mac: '02:00:00:00:00:03' }, { index: 3, name: 'pods-b', mac: '02:00:00:00:00:04' }];
  const had = (w) => SPLIT.slice(2 * w, 2 * w + 2), has = (w) => had(1 - w);
  const sticky = irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 'TCP', backends: [1, 2, 3], flags: L.FEF_AFFINITY, affinityTimeoutMs: 600000 }], backends: [{ id: 1, addr: '10.1.0.1', port: 8080 }, { id: 2, addr: '10.1.0.2', port: 8080 }, { id: 3, addr: '10.1.0.3', port: 8080 }] });
  const saved = [0, 1].map(() => mkCore(sticky, { flows: 4096 }));
  saved.forEach((c, w) => {
    const syns = [];
    for (let k = 0; k < 20; k++) syns.push({ frame: frame({ src: `10.0.${w}.${k + 2}`, dst: '10.96.0.10', proto: 'TCP', sport: 40000 + k, dport: 80, flags: 'S', srcMac: CLIENT_MAC, dstMac: LOCAL_MAC }), inPort: 2 * w });
    run(c, syns, T0);
  });
  const into = [0, 1].map(() => mkCore(sticky, { flows: 4096 }));
  const workerOf = new Map(SPLIT.map((p, i) => [p.name, i < 2 ? 1 : 0]));
  const s = await restart(saved, into, { workers: 2, steering: false, portWorker: (name) => workerOf.get(name) }, has, had);
  t.is(s.flows, 40);
  t.is(s.affinity, 40);
  t.deepEqual(s.dropped, {}, 'none lost as portGone');
  t.deepEqual(into.map((c) => c.counters().global.ct_active), [20, 20]);
  // worker 1 now has uplink-a: the clients worker 0 saved (10.0.0.x), with their affinity
  const rec = exportFlows(into[1], SPLIT, T0 + 3);
  t.true([...Array(rec.flows.length / L.CT_SIZE).keys()].every((i) => rec.flows[i * L.CT_SIZE + L.CT_CLIENT + 2] === 0), 'worker 1 holds the 10.0.0.x clients');
  t.is(rec.affinity.length / L.AFF_SIZE, 20, 'and their affinity entries');
});
