// The worker's tail-latency knobs end to end: a daemon with adaptive busy-poll on and its worker
// at a raised priority forwards TCP and UDP through a ClusterIP exactly as without, its worker
// thread really runs at that nice value, and the counters show the busy-poll window being used.
// (Whether either pays off is a benchmark question: `wdp bench e2e`, docs/performance.md.)
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { curlOk, e2eSuite, api, udpMany, serviceYaml, sliceYaml } from './lib/topology.js';

const NICE = -7;
const CONTROL_NICE = -3; // the control plane's (main) thread: controlNice
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }, { name: 'pod-b', attach: 'tap' }],
  configure: (c) => { c.busyPollUs = 2000; c.workerNice = NICE; c.controlNice = CONTROL_NICE; },
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

/** Nice values of the daemon's threads, by thread name. */
function threadNices(pid) {
  const out = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.push({ tid: Number(tid), comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), nice: Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]) });
    } catch { /* thread ended */ }
  }
  return out;
}

serial('busy-poll on, worker and control plane at raised priority: TCP and UDP forwarded, spin time counted, only the worker thread at workerNice, the main thread at controlNice', async (t) => {
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
  // the daemon process: exactly the forwarding worker's thread carries the nice value
  const nices = threadNices(topo.daemon.pid);
  const raised = nices.filter((x) => x.nice === NICE);
  t.is(raised.length, 1, JSON.stringify(nices));
  t.not(raised[0].tid, topo.daemon.pid, 'not the main thread');
  // and the main thread (the control plane: API, compile, store) carries controlNice
  t.is(nices.find((x) => x.tid === topo.daemon.pid)?.nice, CONTROL_NICE, JSON.stringify(nices));
});
