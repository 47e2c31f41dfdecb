// A worker under normal scheduling with a shorter fair-scheduler slice (workerSliceUs): the
// daemon forwards through a ClusterIP as without, and exactly its forwarding worker's thread
// carries the slice (/proc/PID/task/TID/sched, se.slice), still SCHED_OTHER.
// (Whether it pays off is a benchmark question: docs/performance.md, "Tail latency".)
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { e2eSuite, udpMany, serviceYaml, sliceYaml } from './lib/topology.js';

const SLICE_US = 300;
const suite = e2eSuite(test, {
  pods: [{ name: 'pod-a', attach: 'afpacket' }],
  configure: (c) => { c.workerRealtimePriority = 0; c.workerSliceUs = SLICE_US; },
});
const { serial, apply } = suite;
const VIP = '10.96.0.11';

/** se.slice (ns) and policy of each of the daemon's threads. */
function threadSlices(pid) {
  const out = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8');
      const field = (name) => Number((new RegExp(`^${name}\\s*:\\s*(\\d+)`, 'm').exec(s) ?? [])[1]);
      out.push({ tid: Number(tid), slice: field('se\\.slice'), policy: field('policy') });
    } catch { /* thread ended */ }
  }
  return out;
}

// EEVDF slices per thread (and se.slice in /proc) need Linux 6.12+
const kernelHasSlices = (() => { try { return /^se\.slice/m.test(readFileSync('/proc/self/sched', 'utf8')); } catch { return false; } })();
const maybe = kernelHasSlices ? serial : (title, fn) => test.skip(`${title} (skipped: this kernel has no per-thread fair slices, Linux 6.12+)`, fn);

maybe('workerSliceUs: UDP forwarded; only the worker thread has the slice, under SCHED_OTHER', async (t) => {
  const topo = suite.topo;
  await apply([
    serviceYaml({ name: 'echo', clusterIP: VIP, ports: [{ name: 'echo', port: 53, targetPort: 5353, protocol: 'UDP' }] }),
    sliceYaml({ name: 'echo-1', service: 'echo', ports: [{ name: 'echo', port: 5353, protocol: 'UDP' }],
      endpoints: topo.pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true }, nodeName: 'node-a' })) }),
  ]);
  const replies = await udpMany(topo, topo.ns.client, VIP, 53, Array.from({ length: 4 }, (_, i) => ({ payload: `s-${i}` })));
  for (const [i, x] of replies.entries()) {
    t.falsy(x.timeout, 'UDP reply timed out');
    t.regex(x.reply, new RegExp(`^pod-a:s-${i}$`));
  }
  const threads = threadSlices(topo.daemon.pid);
  const set = threads.filter((x) => x.slice === SLICE_US * 1000);
  t.is(set.length, 1, JSON.stringify(threads));
  t.not(set[0].tid, topo.daemon.pid, 'not the main thread');
  t.is(set[0].policy, 0, 'SCHED_OTHER');
});
