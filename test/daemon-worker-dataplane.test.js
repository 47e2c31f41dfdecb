// WorkerDataplane: the Dataplane interface over forwarding worker threads, without ports (so no
// root needed): diffs are applied in every worker, trace/counters/conntrack are answered by the
// workers, a worker that cannot start is a clear error, and a closed dataplane refuses requests.
import test from 'ava';
import { WorkerDataplane } from '../dist/src/daemon/worker-dataplane.js';
import { ControlPlaneCore } from '../dist/src/api/controlplane.js';
import { twoPodObjects } from './lib/two-pod-objects.js';
import { makeServiceSet } from '../dist/src/bench/peers/service-set.js';
import { benchObjects } from '../dist/src/bench/control.js';

const init = (worker, workers, extra = {}) => ({
  worker, workers, ports: [], nodeAddresses: ['192.168.100.2'], core: { flows: 1024 }, probeIntervalMs: 1000, portBackend: 'relay', ...extra,
});

const objects = twoPodObjects;

test('diffs reach every worker; trace, counters and conntrack come from the workers', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  const r = await cp.apply(objects);
  t.true(r.generation >= 1);
  t.is(dp.generation(), r.generation);
  const tr = await dp.trace({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 });
  t.is(tr.verdict, 'forward');
  t.is(tr.output.dport, 8080);
  t.true(['10.244.1.11', '10.244.1.12'].includes(tr.output.dst));
  t.true([1, 2].includes(tr.outPort));
  const none = await dp.trace({ src: '10.0.0.2', dst: '10.96.0.99', proto: 'TCP', sport: 40000, dport: 80 });
  t.not(none.verdict, 'forward');
  const c = await dp.counters();
  t.is(c.generation, r.generation);
  t.is(c.global.rx_packets, 0, 'trace is a dry run: no counters move');
  t.deepEqual(Object.keys(c.frontends).length, 1);
  t.deepEqual(await dp.conntrack(), []);
  t.deepEqual(await dp.ports(), []);
  // removing the service empties the tables in both workers
  await cp.remove([objects[1]]);
  const gone = await dp.trace({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 });
  t.not(gone.verdict, 'forward');
});

test('a diff by column is copied to every worker but the last, which takes its buffers: every worker forwards every service', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)]);
  t.teardown(() => dp.close());
  // what each worker's port was posted: the message and its transfer list
  const posts = dp.workers.map((h) => {
    const seen = [], post = h.port.postMessage.bind(h.port);
    h.port.postMessage = (m, transfer) => { if (m.type === 'apply') seen.push({ diff: m.diff, transfer }); return post(m, transfer); };
    return seen;
  });
  const svcs = makeServiceSet({ services: 200, endpoints: 5 }); // 1000 backends, 200 frontends: by column
  const cp = new ControlPlaneCore(dp, null);
  await cp.apply(benchObjects(svcs));
  const [first, last] = posts.map((seen) => seen.at(-1));
  t.false(Array.isArray(last.diff.backendsUpsert), 'backends went by column');
  t.false(Array.isArray(last.diff.frontendsUpsert), 'frontends went by column');
  t.true(last.transfer.length > 0, 'the last worker takes the columns\' buffers');
  t.is(first.transfer, undefined, 'the first worker gets a copy');
  t.is(last.diff.backendsUpsert.id.byteLength, 0, 'moved: the main thread no longer holds them');
  t.is(last.diff.frontendsUpsert.maglev1.byteLength, 0);
  // both workers hold the whole diff, and the compiler's own tables are intact (a later change)
  for (const s of [svcs[0], svcs[137], svcs[199]]) {
    for (const h of dp.workers) {
      const tr = await dp.request(h, { type: 'trace', spec: { src: '10.0.0.2', dst: s.clusterIP, proto: 'TCP', sport: 40000, dport: 80 } });
      t.is(tr.verdict, 'forward', `worker ${h.index}, ${s.name}`);
      t.true(s.endpoints.some((e) => e.addr === tr.output.dst), `worker ${h.index}, ${s.name}: one of its endpoints`);
    }
  }
  const moved = { ...svcs[137], endpoints: [{ addr: '10.255.255.1', port: 8080 }] };
  await cp.apply(benchObjects([moved]).slice(1));
  for (const h of dp.workers) {
    const tr = await dp.request(h, { type: 'trace', spec: { src: '10.0.0.2', dst: moved.clusterIP, proto: 'TCP', sport: 40001, dport: 80 } });
    t.is(tr.output.dst, '10.255.255.1', `worker ${h.index}`);
  }
});

test('a diff one worker refuses is undone on the workers that took it: all stay on the previous tables', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)]);
  t.teardown(() => dp.close());
  // worker 1 refuses the first apply (what a failed table regrow would do); worker 0 takes it
  const real = dp.request.bind(dp);
  let refuse = true;
  dp.request = (h, msg, ...rest) => {
    if (msg.type === 'apply' && h === dp.workers[1] && refuse) { refuse = false; return Promise.reject(new Error('worker 1: table regrow failed')); }
    return real(h, msg, ...rest);
  };
  const cp = new ControlPlaneCore(dp, null);
  const err = await t.throwsAsync(cp.apply(objects));
  t.regex(err.message, /dataplane refused the change.*worker 1: table regrow failed/);
  // trace runs on worker 0, the one that had taken the diff: it must have been put back
  const tr = await dp.trace({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 });
  t.not(tr.verdict, 'forward', 'worker 0 still programs the refused change');
  t.is(cp.compiler.serviceCount(), 0);
  // the same request again: both workers take it
  const r = await cp.apply(objects);
  t.true(r.generation >= 1);
  t.is((await dp.trace({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'TCP', sport: 40000, dport: 80 })).verdict, 'forward');
});

test('a worker that cannot load the core fails start() with the reason', async (t) => {
  const e = await t.throwsAsync(WorkerDataplane.start([init(0, 1, { core: { wasmPath: '/nonexistent/core.wasm' } })]));
  t.regex(e.message, /worker 0: .*cannot read the forwarding core at \/nonexistent\/core\.wasm/);
});

test('a port that cannot be opened fails start() naming the port', async (t) => {
  const port = { index: 0, name: 'ghost', type: 'afpacket', ifname: 'nope-if-0', mac: '02:00:00:00:00:01', role: 'uplink', gateways: [], learn: false, probe: [] };
  const e = await t.throwsAsync(WorkerDataplane.start([init(0, 1, { ports: [port], portBackend: 'native' })]));
  t.regex(e.message, /worker 0: /);
  t.regex(e.message, /ghost|nope-if-0|native/);
});

test('a saved runtime port (optional) that cannot be opened is left out, not a failed start', async (t) => {
  const port = { index: 3, name: 'gone-pod', type: 'afpacket', ifname: 'nope-if-3', mac: '02:00:00:00:00:03', role: 'pod', gateways: [], learn: true, probe: [], optional: true };
  const logs = [];
  const dp = await WorkerDataplane.start([init(0, 1, { ports: [port] })], { onLog: (level, msg, data) => logs.push({ level, msg, ...data }) });
  t.teardown(() => dp.close());
  t.deepEqual(await dp.ports(), []);
  t.like(logs.find((l) => /saved runtime port not opened/.test(l.msg)), { level: 'warn', port: 'gone-pod' });
});

test('after close() every request is refused with a clear error', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 1)]);
  await dp.close();
  await t.throwsAsync(dp.counters(), { message: /not running/ });
  await t.throwsAsync(dp.apply({ frontendsUpsert: [], frontendsRemove: [], backendsUpsert: [], backendsRemove: [] }, {}), { message: /closed/ });
  await dp.close(); // idempotent
});

test('a NodeConfig with other node addresses re-points every worker\'s ARP/ND answers (onNodeChange)', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  const seen = [];
  cp.onNodeChange((node) => seen.push(node ? node.addresses : null));
  await cp.apply(objects.slice(1)); // Services and slices only: the node config did not change
  t.deepEqual(seen, []);
  const node = (addresses) => ({ ...objects[0], spec: { ...objects[0].spec, nodeAddresses: addresses } });
  await cp.apply([node(['192.168.100.2', '192.168.100.9'])]);
  t.deepEqual(seen, [['192.168.100.2', '192.168.100.9']]);
  await cp.apply([node(['192.168.100.2', '192.168.100.9'])]); // unchanged: no call
  await cp.apply([node(['192.168.100.2', '192.168.100.9'])], { dryRun: true });
  t.is(seen.length, 1);
  // what the daemon does with it: every worker answers for the new set, and only for it
  t.deepEqual(await dp.setNodeAddresses(seen[0]), [['192.168.100.2', '192.168.100.9'], ['192.168.100.2', '192.168.100.9']]);
  t.deepEqual(await dp.setNodeAddresses(['fd00:100::0002']), [['fd00:100::2'], ['fd00:100::2']]);
  await cp.remove([objects[0]]);
  t.deepEqual(seen, [['192.168.100.2', '192.168.100.9'], null], 'a removed NodeConfig is reported as null');
});

test('the daemon\'s own NodeConfig, queued behind a user\'s apply, is read when its turn comes: it keeps the user\'s node addresses (apply of a function)', async (t) => {
  // The daemon re-programs its NodeConfig (a learned neighbour, a port removed) while a user's
  // NodeConfig apply may be ahead of it in the control plane's queue. The daemon adopts a
  // NodeConfig's node addresses through onNodeChange; its own apply must be built after that,
  // or it overwrites the user's acknowledged addresses with the ones it held when it queued.
  const dp = await WorkerDataplane.start([init(0, 2)]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  const node = (addresses) => ({ ...objects[0], spec: { ...objects[0].spec, nodeAddresses: addresses } });
  await cp.apply(objects);
  let adopted = ['192.168.100.2'];
  cp.onNodeChange((n) => { if (n?.addresses?.length) adopted = n.addresses; });
  const user = cp.apply([node(['192.168.100.2', '192.168.100.9'])]);
  const own = cp.apply(() => [node(adopted)]); // queued after the user's, as the daemon's debounced program
  const [, ownResult] = await Promise.all([user, own]);
  t.is(ownResult.objects[0].action, 'unchanged', 'the daemon\'s apply carried the user\'s addresses');
  t.deepEqual(adopted, ['192.168.100.2', '192.168.100.9'], 'the node config in force has the user\'s addresses');
  // built when queued (an array), it would have put the old addresses back
  await Promise.all([cp.apply([node(['192.168.100.2', '192.168.100.7'])]), cp.apply([node(adopted)])]);
  t.deepEqual(adopted, ['192.168.100.2', '192.168.100.9']);
});

test('an apply of a function that throws when its turn comes fails that apply only: the queue goes on, nothing changed', async (t) => {
  // (the daemon's nodeConfig() reads its ports: one removed meanwhile must not stall later applies)
  const dp = await WorkerDataplane.start([init(0, 2)]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  await cp.apply(objects);
  const generation = dp.generation();
  const failed = cp.apply(() => { throw new Error('the port is gone'); });
  const next = cp.apply(() => [{ ...objects[0], spec: { ...objects[0].spec, nodeAddresses: ['192.168.100.2', '192.168.100.9'] } }]);
  await t.throwsAsync(failed, { message: 'the port is gone' });
  t.is((await next).objects[0].action, 'configured');
  t.is(dp.generation(), generation + 1, 'only the second apply programmed');
});

test('a posted diff wakes an idle worker: its idle wait ends on the wake, not on its timeout', async (t) => {
  // No timing: worker_wakeups counts idle waits that ended (or were skipped) because a message
  // was posted. Between one counters reply and the next request the worker must pass through an
  // idle wait after the diff was posted, and that wait sees the wake.
  const dp = await WorkerDataplane.start([init(0, 1)]);
  t.teardown(() => dp.close());
  const cp = new ControlPlaneCore(dp, null);
  const before = (await dp.counters()).global.worker_wakeups;
  t.is(typeof before, 'number');
  await cp.apply(objects);
  const after = (await dp.counters()).global.worker_wakeups;
  t.true(after >= before + 1, `wake-ups ${before} -> ${after}`);
});

test('removing a port a worker does not have succeeds (a fanout port one worker could not open, a retried removal)', async (t) => {
  const dp = await WorkerDataplane.start([init(0, 2), init(1, 2)]);
  t.teardown(() => dp.close());
  await t.notThrowsAsync(dp.removePort(1, 5));
  t.deepEqual(await dp.ports(), []);
});
