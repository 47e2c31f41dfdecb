// The worker's tail-latency knobs end to end: a daemon with adaptive busy-poll on and its worker
// at a raised priority under SCHED_FIFO forwards TCP and UDP through a ClusterIP exactly as
// without, its worker thread (and only it) really runs at that nice value and real-time priority,
// the counters show the busy-poll window being used, and once traffic stops the worker goes back
// to sleep (its CPU time over 2 s stays far below a spinning thread's).
// (Whether either pays off is a benchmark question: `wdp bench e2e`, docs/performance.md, "Tried, not kept".)
import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { curlOk, e2eSuite, api, udpMany, serviceYaml, sliceYaml } from './lib/topology.js';

const NICE = -7;
// this test's session scheduling group as it was before any daemon started (null: no autogroup)
const GROUP_BEFORE = existsSync('/proc/self/autogroup') ? readFileSync('/proc/self/autogroup', 'utf8') : null;
const RT = 3;
const SCHED_FIFO = 1;
const CONTROL_NICE = -3; // the control plane's (main) thread: controlNice
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }],
  configure: (c) => { c.busyPollUs = 2000; c.workerNice = NICE; c.workerRealtimePriority = RT; c.controlNice = CONTROL_NICE; },
});
const { serial, apply } = suite;
const VIP = '10.96.0.10';

const objects = (topo) => [
  serviceYaml({ name: 'web', clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
  sliceYaml({
    name: 'web-1', service: 'web',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'echo', port: 5353, protocol: 'UDP' }],
    endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })),
  }),
];

/** The daemon's threads: nice value, real-time priority, policy and CPU time (s), from /proc. */
function threadStats(pid) {
  const out = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');   // f[0] is field 3 (state)
      out.push({ tid: Number(tid), comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), nice: Number(f[16]), rtPriority: Number(f[37]), policy: Number(f[38]),
        cpuS: (Number(f[11]) + Number(f[12])) / 100 });   // utime + stime in USER_HZ (100 on Linux)
    } catch { /* thread ended */ }
  }
  return out;
}

serial('busy-poll on, worker and control plane at raised priority: TCP and UDP forwarded, spin time counted, only the worker thread at workerNice and under SCHED_FIFO, the main thread at controlNice', async (t) => {
  const topo = suite.topo;
  await apply(objects(topo));
  const r = await curlOk(topo, topo.ns.client, `http://${VIP}/`);
  t.is(r.code, 0, `curl failed: ${r.stderr}\n${topo.daemonLog.slice(-3000)}`);
  t.regex(r.body, /^pod-[ab]\n$/);
  const replies = await udpMany(topo, topo.ns.client, VIP, 53, Array.from({ length: 8 }, (_, i) => ({ payload: `ping-${i}` })));
  for (const [i, x] of replies.entries()) {
    t.falsy(x.timeout, 'UDP reply timed out');
    t.regex(x.reply, new RegExp(`^pod-[ab]:ping-${i}$`));
  }
  const c = await api(topo, 'GET', '/api/v1/counters');
  t.is(c.status, 200);
  t.true(c.json.global.slowpath_time_spin_ns > 0, 'empty polls inside the busy-poll window are counted');
  t.true(c.json.global.slowpath_batches > 0);
  t.true(c.json.global.slowpath_frames >= c.json.global.slowpath_batches);
  // the daemon process: exactly the forwarding worker's thread carries the nice value and the
  // real-time policy
  const threads = threadStats(topo.daemon.pid);
  const raised = threads.filter((x) => x.nice === NICE);
  t.is(raised.length, 1, JSON.stringify(threads));
  t.not(raised[0].tid, topo.daemon.pid, 'not the main thread');
  // and the main thread (the control plane: API, compile, store) carries controlNice
  t.is(threads.find((x) => x.tid === topo.daemon.pid)?.nice, CONTROL_NICE, JSON.stringify(threads));
  // the runtime's helper threads (V8's platform threads among them) at helperNice (default 5),
  // neither the main thread nor the worker
  const helpers = threads.filter((x) => x.nice === 5);
  t.true(helpers.length >= 4, JSON.stringify(threads));
  t.false(helpers.some((x) => x.tid === topo.daemon.pid || x.tid === raised[0].tid), JSON.stringify(threads));
  // the daemon shares this test's session: it must leave the session's scheduling group alone
  // (src/daemon/autogroup.ts raises only a group the daemon leads)
  if (GROUP_BEFORE !== null) t.is(readFileSync('/proc/self/autogroup', 'utf8'), GROUP_BEFORE, 'the shared session group is not raised');
  const rt = threads.filter((x) => x.policy === SCHED_FIFO);
  t.deepEqual(rt.map((x) => [x.tid, x.rtPriority]), [[raised[0].tid, RT]], JSON.stringify(threads));
});

serial('after traffic the busy-polling worker goes back to sleep: its CPU time over 2 s stays small', async (t) => {
  const topo = suite.topo;
  await apply(objects(topo));
  const replies = await udpMany(topo, topo.ns.client, VIP, 53, Array.from({ length: 4 }, (_, i) => ({ payload: `idle-${i}` })));
  t.falsy(replies.some((x) => x.timeout), 'UDP reply timed out');
  const worker = () => threadStats(topo.daemon.pid).find((x) => x.policy === SCHED_FIFO);
  await new Promise((r) => setTimeout(r, 500));   // well past the 2 ms busy-poll window
  const before = worker();
  t.truthy(before, 'the worker thread is found');
  await new Promise((r) => setTimeout(r, 2000));
  const after = worker();
  // A worker spinning for good would use ~2 s here (a real-time thread is never preempted by a
  // normal one); an idle one wakes every 10 ms for its timers. 0.5 s is generous for a loaded VM.
  t.true(after.cpuS - before.cpuS < 0.5, `idle worker used ${(after.cpuS - before.cpuS).toFixed(2)} s of CPU in 2 s`);
});
