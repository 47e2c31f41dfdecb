// Live trace, capture and replay without a daemon: the filter, the worker's observer around a
// real core (what a worker does between rx and tx), replay against the same frames run through
// a core by hand, and the `wdp replay` command.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Core } from '../dist/src/core/host.js';
import { compileAll } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { parseManifests } from '../dist/src/model/load.js';
import { frame } from '../dist/src/packet/build.js';
import { encodePcap, parsePcap } from '../dist/src/ports/pcap.js';
import { parseFilter } from '../dist/src/observe/filter.js';
import { WorkerObserver } from '../dist/src/observe/worker-observer.js';
import { replay } from '../dist/src/observe/replay.js';
import { WDP } from './lib/topology.js';

const ROOT = new URL('../', import.meta.url).pathname;
const stateText = ['examples/node.yaml', 'examples/clusterip-dns.yaml'].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n---\n');
const objects = () => parseManifests(stateText, 'state');
const VIP = '10.96.0.10';

function coreWithState() {
  const core = Core.create({ batchMax: 64 });
  core.applyIr(compileAll(validateAll(objects()), { maglevWorker: 'never' }).ir);
  return core;
}

const udp = (sport, dst = VIP, dport = 53) => frame({ src: '10.0.0.2', dst, proto: 'UDP', sport, dport });

test('filters: checked field by field, addresses canonical', (t) => {
  t.deepEqual(parseFilter({ src: '10.0.0.2', host: 'fd00::0001', dport: 53, proto: 'udp' }), { filter: { src: '10.0.0.2', host: 'fd00::1', dport: 53, proto: 'UDP' }, problems: [] });
  const bad = parseFilter({ src: '10.0.0.256', dport: 70000, proto: 'GRE', nope: 1, service: '' });
  t.is(bad.filter, undefined);
  t.is(bad.problems.length, 5, bad.problems.join('\n'));
  t.deepEqual(parseFilter('x').problems, ['filter must be an object']);
});

test('observer: a live trace reports only matching frames, with the same verdicts as an untraced batch', (t) => {
  const traced = coreWithState(), plain = coreWithState();
  const events = [];
  const obs = new WorkerObserver(3, (e) => events.push(e));
  t.false(obs.active);
  obs.start({ kind: 'trace', session: 7, filter: { dport: 53, sport: 40001 }, rate: 1000 });
  t.true(obs.active);
  const frames = [udp(40000), udp(40001), udp(40002), udp(40001, '10.96.0.99')];
  frames.forEach((f, i) => { traced.writeFrame(i, f, 0); plain.writeFrame(i, f, 0); });
  obs.before(traced, frames.length);
  traced.process(frames.length, 5000);
  obs.after(traced, frames.length);
  plain.process(frames.length, 5000);
  for (let i = 0; i < frames.length; i++) {
    t.deepEqual(traced.descriptor(i), plain.descriptor(i));
    t.deepEqual(traced.readFrame(i), plain.readFrame(i));
  }
  t.is(events.length, 1);
  t.is(events[0].session, 7);
  const [a, b] = events[0].trace;
  t.is(events[0].trace.length, 2);
  t.is(a.worker, 3);
  t.deepEqual(a.input, { src: '10.0.0.2', dst: VIP, proto: 'UDP', sport: 40001, dport: 53 });
  t.is(a.conntrack, 'new');
  t.is(a.frontend.service, 'kube-system/kube-dns');
  t.is(a.flow.clientPort, 40001);
  t.is(a.output.dst, a.backend.addr);
  t.true(Number.isInteger(a.maglevSlot));
  t.is(b.input.dst, '10.96.0.99');
  t.is(b.frontend, undefined, 'not a service address');
  t.is(b.verdict, ['drop', 'forward', 'reject', 'to_host'][plain.descriptor(3).verdict]);
  // stopped: nothing more, and the core runs untraced again
  t.true(obs.stop(7));
  t.false(obs.active);
  t.is(traced.cfg32(0x0c), 0);
});

test('observer: the rate cap bounds what a session reports; capture copies in/out frames of its port', (t) => {
  const core = coreWithState();
  const events = [];
  const obs = new WorkerObserver(0, (e) => events.push(e));
  obs.start({ kind: 'trace', session: 1, filter: {}, rate: 3 });
  obs.start({ kind: 'capture', session: 2, filter: { proto: 'UDP' }, port: 0, direction: 'in', snaplen: 20 });
  const n = 10;
  for (let i = 0; i < n; i++) core.writeFrame(i, udp(41000 + i), 0);
  obs.before(core, n);
  core.process(n, 6000);
  obs.after(core, n);
  const trace = events.find((e) => e.session === 1), cap = events.find((e) => e.session === 2);
  t.is(trace.trace.length, 3);
  t.is(cap.frames.length, n);
  t.true(cap.frames.every((f) => f.dir === 'in' && f.data.length === 20 && f.origLen === udp(1).length));
});

test('replay: the same verdicts and frames as the core run by hand; -w on the command line writes them', (t) => {
  const frames = [udp(42000), udp(42001), udp(42000), frame({ src: '10.0.0.2', dst: VIP, proto: 'TCP', sport: 42002, dport: 53, flags: 'S' })];
  const records = frames.map((data, i) => ({ tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n, data }));
  const res = replay(objects(), records);
  const core = coreWithState();
  const byHand = frames.map((f, i) => core.run([f], 1000 + i)[0]);
  t.is(res.length, frames.length);
  res.forEach((r, i) => {
    t.is(r.event.verdict, byHand[i].verdict);
    t.deepEqual(r.frame, byHand[i].frame);
  });
  t.is(res[0].event.conntrack, 'new');
  t.is(res[2].event.conntrack, 'hit_orig', 'the second packet of a flow hits the entry the first made');

  const dir = mkdtempSync(join(tmpdir(), 'wdp-replay-'));
  try {
    writeFileSync(join(dir, 'in.pcap'), encodePcap(records));
    writeFileSync(join(dir, 'state.yaml'), stateText);
    const r = spawnSync(process.execPath, [WDP, 'replay', join(dir, 'in.pcap'), '-f', join(dir, 'state.yaml'), '-w', join(dir, 'out.pcap'), '-o', 'json'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.trim().split('\n').length, frames.length);
    const out = parsePcap(readFileSync(join(dir, 'out.pcap'))).records;
    const sent = res.filter((x) => x.event.verdict === 'forward' || x.event.verdict === 'reject');
    t.deepEqual(out.map((x) => Buffer.from(x.data).toString('hex')), sent.map((x) => Buffer.from(x.frame).toString('hex')));
    // bad state: a clear error, no partial output
    writeFileSync(join(dir, 'bad.yaml'), 'kind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 99999}]}\n');
    const bad = spawnSync(process.execPath, [WDP, 'replay', join(dir, 'in.pcap'), '-f', join(dir, 'bad.yaml')], { encoding: 'utf8' });
    t.is(bad.status, 1);
    t.regex(bad.stderr, /^error: /);
    t.is(bad.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
