// A checkpoint whose checksums hold but whose metadata the start cannot use — a neighbour or a
// port, frontend or backend reference that does not parse (another build's writer, a tool's
// edit) — is refused and kept aside like a damaged one, and the daemon starts with empty tables.
// Accepted, the bad neighbour failed the start itself ("invalid IP address"), and every start
// after it: the file stays.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startPods, startDaemon, destroyTopology, logged } from './lib/topology.js';
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from '../dist/src/daemon/checkpoint.js';
import { FlowCheckpointer } from '../dist/src/daemon/restart.js';
import { NeighbourTable } from '../dist/src/daemon/l2.js';

const { serial } = rootGate(test);
const GOOD_NEIGHBOUR = { addr: '10.244.1.11', family: 4, port: 2, mac: '02:aa:00:00:00:0b', source: 'learned', portName: 'pod-a' };
const worker = (extra = {}) => ({
  worker: 0, flows: new Uint8Array(0), affinity: new Uint8Array(0),
  frontends: [{ id: 1, addr: '10.96.0.10', port: 80, proto: 6 }], backends: [{ id: 1, addr: '10.244.1.11', port: 8080 }],
  snatV4: '192.168.0.1', snatV6: null, ports: [{ index: 2, name: 'pod-a', mac: '02:00:00:00:00:02' }], ...extra,
});
const ckpt = (neighbours, w = worker()) => ({ savedAt: Date.now(), reason: 'stop', neighbours, workers: [w] });

/** readCheckpoint of `c` written to a fresh directory: its problem and whether it was kept aside. */
function read(c) {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-meta-`));
  try {
    writeCheckpoint(dir, c);
    const l = readCheckpoint(dir);
    return { ...l, movedAside: !existsSync(join(dir, CHECKPOINT_FILE)) && !!l.keptAs && existsSync(l.keptAs) };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('a good checkpoint with neighbours and references is read as written', (t) => {
  const l = read(ckpt([GOOD_NEIGHBOUR, { ...GOOD_NEIGHBOUR, addr: 'fd00::b', family: 6 }]));
  t.is(l.problem, undefined);
  t.is(l.checkpoint.neighbours.length, 2);
  t.is(l.checkpoint.workers[0].frontends[0].addr, '10.96.0.10');
});

test('a neighbour, a reference or an address that does not parse refuses the checkpoint with the reason, kept aside', (t) => {
  const cases = [
    [ckpt([{ ...GOOD_NEIGHBOUR, addr: 'bogus' }]), /neighbour 0/],
    [ckpt([GOOD_NEIGHBOUR, { ...GOOD_NEIGHBOUR, mac: 'zz' }]), /neighbour 1/],
    [ckpt([{ ...GOOD_NEIGHBOUR, family: 6 }]), /neighbour 0/],
    [ckpt([{ ...GOOD_NEIGHBOUR, portName: undefined }]), /neighbour 0/],
    [ckpt([], worker({ ports: [{ index: 2, name: 'pod-a', mac: 'nope' }] })), /port of worker 0/],
    [ckpt([], worker({ frontends: [{ id: 1, addr: '10.96.0.300', port: 80, proto: 6 }] })), /frontend reference of worker 0/],
    [ckpt([], worker({ backends: [{ id: 1, addr: '10.244.1.11', port: 70000 }] })), /backend reference of worker 0/],
    [ckpt([], worker({ snatV4: 'fd00::1' })), /snatV4 of worker 0/],
  ];
  for (const [c, why] of cases) {
    const l = read(c);
    t.is(l.checkpoint, null);
    t.regex(l.problem ?? '', /metadata is malformed/);
    t.regex(l.problem ?? '', why);
    t.true(l.movedAside, 'kept aside for inspection');
  }
});

test('the start\'s use of a checkpoint with a bad neighbour on an existing port does not throw', (t) => {
  const dir = mkdtempSync(join(tmpdir(), `wdp-t${process.pid}-meta-`));
  try {
    writeCheckpoint(dir, ckpt([{ ...GOOD_NEIGHBOUR, addr: 'bogus' }]));
    const cp = new FlowCheckpointer(dir, pino({ level: 'silent' }), 0);
    const table = new NeighbourTable();
    // what startDaemon does with them (src/daemon/daemon.ts)
    t.notThrows(() => { for (const n of cp.savedNeighbours((name) => (name === 'pod-a' ? 2 : undefined))) table.set(n); });
    t.is(cp.summary().from, 'rejected');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

let topo;
test.after.always(async () => { await destroyTopology(topo); });

serial('`wdp start` on a checkpoint with a neighbour that does not parse starts with empty tables, the file kept aside', async (t) => {
  topo = buildTopology({ pods: [{ name: 'pod-a', attach: 'afpacket' }] });
  const port = topo.config.ports.findIndex((p) => p.name === 'pod-a');
  t.true(port >= 0);
  writeCheckpoint(topo.config.stateDir, ckpt([{ ...GOOD_NEIGHBOUR, port, addr: '10.244.1.999' }]));
  await startDaemon(topo);
  await startPods(topo);
  await logged(topo, /flow checkpoint refused: starting with empty conntrack and affinity tables/);
  await logged(topo, /metadata is malformed \(neighbour 0/);
  const kept = /"keptAs":"([^"]+)"/.exec(topo.daemonLog)?.[1];
  t.truthy(kept);
  t.true(existsSync(kept));
  t.true(readFileSync(kept).length > 64);
});
