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
import { parseFilter, compileFilter, emptyTuple, readTuple, tupleMatches, hasTupleFields, reasonMatches } from '../dist/src/observe/filter.js';
import { matchCount } from '../dist/src/observe/core-filter.js';
import * as L from '../dist/assembly/layout.js';
import { REASON_NAMES, VERDICT_NAMES } from '../dist/src/core/names.js';
import { WorkerObserver } from '../dist/src/observe/worker-observer.js';
import { replay } from '../dist/src/observe/replay.js';
import { WDP, waitFor } from './lib/topology.js';

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
  const obs = new WorkerObserver(3, traced, (e) => events.push(e));
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
  t.is(traced.cfg32(L.CFG_TRACE), 0);
  t.is(traced.dv.getUint32(traced.traceFilterBase + L.TF_ACTIVE, true), 0, 'no filter left active in the core');
  // the stopped filter is still in its slot, with budget: only TF_ACTIVE keeps the core from it
  const base = traced.traceFilterBase;
  traced.dv.setUint32(base + L.TF_FILTERS + L.TFF_BUDGET, 10, true);
  traced.dv.setUint32(base + L.TF_MATCHES, 0, true);
  traced.writeFrame(0, udp(40001), 0);
  traced.process(1, 5001);
  t.is(matchCount(traced.dv, base), 0, 'no session: the core records nothing');
  traced.dv.setUint32(base + L.TF_ACTIVE, 1, true);
  traced.writeFrame(0, udp(40001), 0);
  traced.process(1, 5002);
  t.is(matchCount(traced.dv, base), 1, 'the same filter active: recorded');
  traced.dv.setUint32(base + L.TF_ACTIVE, 0, true);
});

test('observer: the rate cap bounds what a session reports; capture copies in/out frames of its port', (t) => {
  const core = coreWithState();
  const events = [];
  const obs = new WorkerObserver(0, core, (e) => events.push(e));
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
  // the bucket is empty: the next batch at once reports nothing
  events.length = 0;
  for (let i = 0; i < n; i++) core.writeFrame(i, udp(41000 + i), 0);
  obs.before(core, n);
  core.process(n, 6001);
  obs.after(core, n);
  t.is(events.find((e) => e.session === 1), undefined);
});

test('observer: capture sees what the port sends after the slow path (answers, injected frames, rejects)', (t) => {
  const core = coreWithState();
  const events = [];
  const obs = new WorkerObserver(0, core, (e) => events.push(e));
  obs.start({ kind: 'capture', session: 4, filter: {}, port: 0, direction: 'out', snaplen: 65535 });
  t.true(obs.capturing);
  // a TCP SYN to a ClusterIP port the Service does not define: the core answers with an ICMP port unreachable
  core.writeFrame(0, frame({ src: '10.0.0.2', dst: VIP, proto: 'TCP', sport: 43000, dport: 81, flags: 'S' }), 0);
  core.writeFrame(1, udp(43001), 0);
  obs.before(core, 2);
  core.process(2, 7000);
  obs.after(core, 2);
  t.is(core.descriptor(0).verdict, L.V_REJECT);
  // the slow path answers frame 1 in place out of port 0 (as an ARP/ND reply is), a probe is injected
  const answer = frame({ src: '10.96.0.10', dst: '10.0.0.2', proto: 'UDP', sport: 53, dport: 43001 });
  core.writeFrame(1, answer, 0);
  core.dv.setUint16(core.descOffset(1) + L.D_OUT_PORT, 0, true);
  core.dv.setUint8(core.descOffset(1) + L.D_VERDICT, L.V_FORWARD);
  const probe = frame({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'UDP', sport: 1, dport: 2 });
  core.writeFrame(2, probe, 0);
  core.dv.setUint16(core.descOffset(2) + L.D_OUT_PORT, 0, true);
  core.dv.setUint8(core.descOffset(2) + L.D_VERDICT, L.V_FORWARD);
  obs.sent(core, 3);
  const frames = events.filter((e) => e.session === 4).flatMap((e) => e.frames);
  t.is(frames.length, 3);
  t.true(frames.every((f) => f.dir === 'out'));
  t.is(frames[0].data[14 + 9], 1, 'the reject is ICMP');
  t.is(frames[0].data[14 + 20], 3, 'destination unreachable');
  t.is(frames[0].data[14 + 21], 3, 'port unreachable');
  t.deepEqual(Buffer.from(frames[1].data), Buffer.from(answer));
  t.deepEqual(Buffer.from(frames[2].data), Buffer.from(probe));
});

// ---- the core's filter against the JS filter it replaces -----------------------------------
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}
const pick = (r, a) => a[Math.floor(r() * a.length)];

function randomFrame(r) {
  const kind = r();
  if (kind < 0.05) return { f: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), port: 0 };
  if (kind < 0.1) return { f: frame({ src: 'fd00::1', dst: pick(r, ['fd00:244::5', 'fd00::2']), proto: pick(r, ['UDP', 'TCP']), sport: pick(r, [53, 40001]), dport: pick(r, [53, 40002]), flags: 'S' }), port: pick(r, [0, 1, 2]) };
  const proto = pick(r, ['UDP', 'TCP', 'TCP', 'ICMP']);
  const reply = r() < 0.2;
  const spec = reply
    ? { src: pick(r, ['10.244.1.10', '10.244.2.11']), dst: pick(r, ['10.0.0.2', '10.0.0.3']), proto, sport: 53, dport: pick(r, [40000, 40001, 40002]) }
    : { src: pick(r, ['10.0.0.2', '10.0.0.3', '192.168.1.5']), dst: pick(r, [VIP, VIP, '10.96.0.99', '10.244.1.10', '8.8.8.8']), proto, sport: pick(r, [40000, 40001, 40002]), dport: pick(r, [53, 53, 9153, 81]) };
  if (proto === 'TCP') spec.flags = pick(r, ['S', 'A', 'SA', 'R']);
  if (proto === 'ICMP') { delete spec.sport; delete spec.dport; spec.icmpType = 8; }
  if (r() < 0.05) spec.ttl = 1;
  let f = frame(spec);
  if (r() < 0.05) f = f.slice(0, 14 + Math.floor(r() * 40));   // truncated: decided while parsing
  return { f, port: pick(r, [0, 0, 1, 2]) };
}

function randomFilter(r) {
  const f = {};
  const fields = {
    src: () => pick(r, ['10.0.0.2', '10.0.0.0/24', '10.244.0.0/16', '192.168.1.5', 'fd00::/16']),
    dst: () => pick(r, [VIP, '10.96.0.0/12', '10.244.1.10', '10.0.0.2', '0.0.0.0/0']),
    host: () => pick(r, ['10.0.0.2', '10.244.1.10', '10.244.0.0/16', 'fd00::1']),
    sport: () => pick(r, [53, 40001]), dport: () => pick(r, [53, 40001, 9153]), port: () => pick(r, [53, 40002]),
    proto: () => pick(r, ['TCP', 'UDP', 'ICMP']), inPort: () => pick(r, [0, 1, 2]),
    service: () => pick(r, ['kube-system/kube-dns', 'default/none']), backend: () => pick(r, ['10.244.1.10', '10.244.2.11', '10.0.0.9']),
    reason: () => pick(r, ['fwd_nat', 'fwd_reply', 'drop', 'forward', 'reject', 'to_host', 'drop_ttl_exceeded', 'reject_invalid_port', 'drop_truncated_l4']),
  };
  const keys = Object.keys(fields);
  const n = Math.floor(r() * 3) + (r() < 0.1 ? 0 : 1);
  for (let k = 0; k < n; k++) { const key = pick(r, keys); f[key] = fields[key](); }
  const p = parseFilter(f);
  if (p.problems.length) throw new Error(p.problems.join('; '));
  return p.filter;
}

/** What the JS filter (before the core took it over) reports for the frames of one batch. */
function jsMatches(core, filter, inputs, n) {
  const c = compileFilter(filter), out = [];
  for (let i = 0; i < n; i++) {
    const d = core.descriptor(i), rec = core.traceRecord(i);
    const after = readTuple(core.u8, core.slotOffset(i), Math.min(d.len, core.slotSize), emptyTuple());
    const sent = d.verdict === L.V_FORWARD || d.verdict === L.V_REJECT;
    if (hasTupleFields(filter) && !tupleMatches(c, inputs[i]) && !(sent && tupleMatches(c, after))) continue;
    if (filter.inPort !== undefined && filter.inPort !== d.inPort) continue;
    if (!reasonMatches(filter, REASON_NAMES[rec.reason], VERDICT_NAMES[rec.verdict])) continue;
    if (filter.service !== undefined && core.ir.frontends.get(rec.front)?.service !== filter.service) continue;
    if (filter.backend !== undefined && core.ir.backends.get(rec.backend)?.addr !== filter.backend) continue;
    out.push(i);
  }
  return out;
}

test('core filter: reports exactly the frames the JS filter matches (random frames, up to 4 filters at once)', (t) => {
  const seed = Number(process.env.WDP_FILTER_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`seed ${seed} (WDP_FILTER_SEED=${seed} replays it)`);
  const r = rng(seed);
  const withCore = coreWithState(), byJs = coreWithState();
  const events = [];
  const obs = new WorkerObserver(0, withCore, (e) => events.push(e));
  let checked = 0, matched = 0;
  for (let round = 0; round < 60; round++) {
    const filters = Array.from({ length: 1 + Math.floor(r() * L.TF_SLOTS) }, () => randomFilter(r));
    filters.forEach((filter, k) => obs.start({ kind: 'trace', session: 100 + k, filter, rate: 10000 }));
    const n = 1 + Math.floor(r() * 64);
    const batch = Array.from({ length: n }, () => randomFrame(r));
    const inputs = batch.map(({ f }) => readTuple(f, 0, f.length, emptyTuple()));
    batch.forEach(({ f, port }, i) => { withCore.writeFrame(i, f, port); byJs.writeFrame(i, f, port); });
    events.length = 0;
    const now = 10000 + round * 10;
    obs.before(withCore, n);
    withCore.process(n, now);
    obs.after(withCore, n);
    byJs.setCfg32(L.CFG_TRACE, L.TRACE_ON);
    byJs.process(n, now);
    byJs.setCfg32(L.CFG_TRACE, 0);
    filters.forEach((filter, k) => {
      const want = jsMatches(byJs, filter, inputs, n);
      const got = events.filter((e) => e.session === 100 + k).flatMap((e) => e.trace);
      const show = (i) => `${inputs[i].family ? `${inputs[i].proto} ${inputs[i].sport}->${inputs[i].dport}` : 'non-IP'} ${REASON_NAMES[byJs.descriptor(i).reason]}`;
      t.is(got.length, want.length, `seed ${seed} round ${round} filter ${JSON.stringify(filter)}: want ${want.map(show).join(', ')}`);
      got.forEach((ev, j) => {
        const i = want[j];
        t.is(ev.reason, REASON_NAMES[byJs.descriptor(i).reason], `seed ${seed} round ${round} filter ${JSON.stringify(filter)} match ${j}`);
        if (inputs[i].family) t.is(ev.input.src, inputs[i].family === 4 ? `${inputs[i].addrs.slice(0, 4).join('.')}` : ev.input.src);
      });
      checked += n; matched += want.length;
    });
    filters.forEach((_, k) => obs.stop(100 + k));
  }
  t.true(matched > 20 && matched < checked, `${matched} of ${checked} frame x filter pairs matched`);
});

test('core filter: a fifth live trace is refused; filters on names follow table changes', (t) => {
  const core = coreWithState();
  const events = [];
  const obs = new WorkerObserver(0, core, (e) => events.push(e));
  for (let k = 0; k < L.TF_SLOTS; k++) obs.start({ kind: 'trace', session: k + 1, filter: { dport: 1000 + k }, rate: 10 });
  t.throws(() => obs.start({ kind: 'trace', session: 99, filter: {}, rate: 10 }), { message: /at most 4 live traces/ });
  for (let k = 0; k < L.TF_SLOTS; k++) obs.stop(k + 1);
  // a service that does not exist yet: nothing matches, then its frames do once it is applied
  obs.start({ kind: 'trace', session: 5, filter: { service: 'default/web' }, rate: 100 });
  const run = (now) => { core.writeFrame(0, udp(44000, '10.96.0.20', 80), 0); obs.before(core, 1); core.process(1, now); obs.after(core, 1); };
  run(8000);
  t.is(events.length, 0);
  const web = parseManifests(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{port: 80, protocol: UDP, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 8080, protocol: UDP}]
endpoints: [{addresses: [10.244.1.10], conditions: {ready: true}}]
`, 'web');
  core.applyIr(compileAll(validateAll([...objects(), ...web]), { maglevWorker: 'never' }).ir);
  run(8001);
  t.is(events.length, 1);
  t.is(events[0].trace[0].frontend.service, 'default/web');
});

test('filters: prefixes are canonical networks; unknown reasons refused', (t) => {
  t.deepEqual(parseFilter({ src: '10.0.0.7/24', dst: 'fd00::1/128', host: '10.1.2.3/32' }).filter, { src: '10.0.0.0/24', dst: 'fd00::1', host: '10.1.2.3' });
  t.deepEqual(parseFilter({ src: '10.0.0.0/33' }).problems, ['filter.src: must be an IPv4 or IPv6 address or prefix (ADDR/LEN)']);
  t.regex(parseFilter({ reason: 'drop_nope' }).problems[0], /unknown reason "drop_nope"/);
  t.deepEqual(parseFilter({ reason: 'reject' }).problems, []);
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

test('replay --in-port takes a port name from --ports (wdp get ports output or the daemon config), or an index', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wdp-replay-ports-'));
  try {
    // a SYN to a ClusterIP port the Service does not define: the ICMP port unreachable leaves through the in port
    const syn = frame({ src: '10.0.0.2', dst: VIP, proto: 'TCP', sport: 45000, dport: 81, flags: 'S' });
    writeFileSync(join(dir, 'in.pcap'), encodePcap([{ tsNs: 1_700_000_000_000_000_000n, data: syn }]));
    writeFileSync(join(dir, 'state.yaml'), stateText);
    writeFileSync(join(dir, 'ports.yaml'), 'items:\n  - {name: uplink, index: 0}\n  - {name: client, index: 3}\n');
    writeFileSync(join(dir, 'wdp.yaml'), 'node: {name: n}\nports:\n  - {name: uplink, type: afpacket, ifname: eth0, role: uplink}\n  - {name: pod-a, type: tap, ifname: tap0, role: pod}\n');
    const run = (...extra) => spawnSync(process.execPath, [WDP, 'replay', join(dir, 'in.pcap'), '-f', join(dir, 'state.yaml'), '-o', 'json', ...extra], { encoding: 'utf8' });
    const outPort = (r) => JSON.parse(r.stdout.trim().split('\n')[0]).outPort;
    const byName = run('--in-port', 'client', '--ports', join(dir, 'ports.yaml'));
    t.is(byName.status, 0, byName.stderr);
    t.is(JSON.parse(byName.stdout).reason, 'reject_invalid_port');
    t.is(outPort(byName), 3);
    const byConfig = run('--in-port', 'pod-a', '--ports', join(dir, 'wdp.yaml'));
    t.is(byConfig.status, 0, byConfig.stderr);
    t.is(outPort(byConfig), 1);
    const byIndex = run('--in-port', '2');
    t.is(byIndex.status, 0, byIndex.stderr);
    t.is(outPort(byIndex), 2);
    const unknown = run('--in-port', 'nope', '--ports', join(dir, 'ports.yaml'));
    t.is(unknown.status, 1);
    t.regex(unknown.stderr, /^error: --in-port "nope": no such port in .*ports\.yaml \(ports: uplink \(0\), client \(3\)\)/);
    t.is(unknown.stdout, '');
    const noFile = run('--in-port', 'client');
    t.is(noFile.status, 1);
    t.regex(noFile.stderr, /--in-port "client" is a port name: give the ports with --ports FILE/);
    writeFileSync(join(dir, 'junk.yaml'), 'kind: Service\n');
    t.regex(run('--in-port', 'client', '--ports', join(dir, 'junk.yaml')).stderr, /no ports found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live trace API: a fifth live trace at once is refused (429), and a slot frees when one ends', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { registerObserveRoutes } = await import('../dist/src/api/observe-routes.js');
  const running = new Set();
  const app = Fastify();
  registerObserveRoutes(app, {
    async observe(req) { running.add(req); return { async stop() { running.delete(req); } }; },
    async ports() { return []; },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const url = `http://127.0.0.1:${app.server.address().port}/api/v1/trace/live`;
    const post = (durationMs) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ durationMs }) });
    // the replies stream until their duration ends: started, not awaited
    const long = Array.from({ length: L.TF_SLOTS }, (_, k) => post(k === 0 ? 1500 : 4000).then((r) => r.text().then((text) => ({ status: r.status, text }))));
    for (let i = 0; i < 200 && running.size < L.TF_SLOTS; i++) await new Promise((r) => setTimeout(r, 20));
    t.is(running.size, L.TF_SLOTS);
    const refused = await post(1000);
    t.is(refused.status, 429);
    t.regex(await refused.text(), /at most 4 live traces run at once \(4 running\)/);
    const first = await long[0];   // the first one ends ...
    t.regex(first.text, /"reason":"duration"/);
    const again = await post(100);
    t.is(again.status, 200, '... and its slot is free again');
    await again.text();
    for (const r of await Promise.all(long)) t.is(r.status, 200);
    t.is(running.size, 0, 'every session stopped');
  } finally {
    await app.close();
  }
});

test('live trace API: the status and headers are sent once the session runs, before anything matches', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { request } = await import('node:http');
  const { registerObserveRoutes } = await import('../dist/src/api/observe-routes.js');
  let started = 0, stopped = 0;
  const app = Fastify();
  // a session whose filter matches nothing for as long as the test runs: no event ever
  registerObserveRoutes(app, {
    async observe() { started++; return { async stop() { stopped++; } }; },
    async ports() { return []; },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  let req;
  try {
    // the status line and headers, waited for (bounded: the session itself runs a minute)
    const answered = new Promise((resolve, reject) => {
      req = request({ host: '127.0.0.1', port: app.server.address().port, method: 'POST', path: '/api/v1/trace/live', headers: { 'content-type': 'application/json' } }, resolve);
      req.on('error', reject);
      req.end(JSON.stringify({ durationMs: 60_000 }));
    });
    const res = await Promise.race([answered, new Promise((resolve) => { setTimeout(resolve, 20_000, null).unref(); })]);
    t.is(started, 1);
    t.truthy(res, 'no status while nothing matched: a client cannot tell the trace runs');
    t.is(res?.statusCode, 200);
    t.is(res?.headers['content-type'], 'application/x-ndjson');
    req.destroy();
    await waitFor('the session stopped when the client went away', () => stopped === 1, 20_000);
  } finally {
    req?.destroy();
    await app.close();
  }
});
