// A CNI ADD in flight when the daemon goes away — killed (SIGKILL) or stopped (SIGTERM) while it
// attaches the port — and the daemon started again: the plugin either completes (code 0, and the
// port is there after the restart as ADD made it) or fails with a clear CNI error the runtime
// retries (code 11); after the runtime's DEL of a failed ADD and its retry, and the final DEL,
// nothing is left: no port, no saved port, and no nftables drop chain on the pod's interface
// (which would blackhole it for the kernel). An ADD while the daemon is down or starting fails
// with code 11 too and succeeds once it serves. The real plugin (bin/wdp-cni.js) and `wdp start`
// in network namespaces; the daemon is killed the moment it starts attaching (`nft monitor` sees
// it put the drop chain on the pod's interface).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eSuite, api, startDaemon, waitFor } from './lib/topology.js';
import { cniCall, ptpLike } from './lib/cni-pods.js';
import { portName } from '../dist/src/cni/plugin.js';
import { systemTool } from '../dist/src/util/system-tool.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }] });
const NET = 'wdp-restart';
const nft = systemTool('nft');

const ports = async () => (await api(suite.topo, 'GET', '/api/v1/ports')).json.items;
const saved = () => { try { return JSON.parse(readFileSync(join(suite.topo.config.stateDir, 'ports.json'), 'utf8')).ports.map((p) => p.name); } catch { return []; } };
const chainOn = async (pod) => (await suite.topo.lab.execAsync(suite.topo.ns.dp, nft, ['list', 'chain', 'netdev', 'wdp', `in_${pod.hostIf}`])).code === 0;
const cni = (cmd, pod) => cniCall(suite.topo, cmd, { ...pod, network: NET });

/** Runs the pod's ADD and sends `signal` to the daemon as soon as it puts the drop chain on the
 * pod's interface (the first thing an attach does to it); resolves with the ADD's outcome once
 * the daemon is gone. */
async function addInterrupted(t, pod, signal) {
  const topo = suite.topo;
  const daemon = topo.daemon;
  const exited = new Promise((r) => daemon.once('exit', (code, sig) => r(code ?? sig)));
  const monitor = topo.lab.spawn(topo.ns.dp, nft, ['monitor', 'chains']);
  let sent = false;
  const watching = new Promise((resolve) => {
    let out = '';
    monitor.stdout.on('data', (d) => {
      out += d;
      if (!sent && out.includes(`in_${pod.hostIf}`)) { sent = true; daemon.kill(signal); resolve(); }
    });
  });
  await new Promise((r) => setTimeout(r, 300));   // nft monitor subscribed (an ADD it misses still completes below)
  const add = cniCall(topo, 'ADD', { ...pod, network: NET });
  const done = await Promise.race([watching.then(() => 'signalled'), add.then(() => 'finished')]);
  if (done === 'finished' && !sent) { sent = true; daemon.kill(signal); }   // the attach was over before the monitor spoke
  const r = await add;
  monitor.kill('SIGKILL');
  t.log(`${signal} ${done === 'signalled' ? 'while attaching' : 'after the ADD finished'}: ADD ${JSON.stringify(r.out ?? r.code)}`);
  await exited;
  return r;
}

/** What the runtime does after an ADD's outcome, then the checks: a failed ADD is DELeted and
 * retried; in the end the port is attached as ADD makes it, and after the final DEL nothing of it
 * is left. */
async function convergeAndClean(t, pod, r) {
  const name = portName(pod.id, 'eth0');
  if (r.code !== 0) {
    t.is(r.out?.code, 11, `a failed ADD is the spec's "try again later": ${JSON.stringify(r)}`);
    t.regex(r.out.msg, /wdp daemon/);
    t.is((await cni('DEL', pod)).code, 0, 'the runtime\'s DEL of the failed ADD');
    t.false((await ports()).some((p) => p.name === name), 'no port left after the DEL');
    t.false(saved().includes(name), 'no saved port left');
    t.false(await chainOn(pod), 'no drop chain left on the pod\'s interface');
    const again = await cni('ADD', pod);
    t.is(again.code, 0, `the retried ADD: ${JSON.stringify(again)}`);
  }
  const port = (await ports()).find((p) => p.name === name);
  t.like(port, { state: 'up', attachment: { network: NET, containerID: pod.id, ifname: 'eth0' } });
  t.true(saved().includes(name));
  t.true(await chainOn(pod));
  t.is((await cni('CHECK', pod)).code, 0, 'CHECK: as ADD made it');
  t.is((await cni('DEL', pod)).code, 0);
  t.false((await ports()).some((p) => p.name === name));
  t.false(saved().includes(name));
  t.false(await chainOn(pod), 'the interface is the kernel\'s again');
}

/** Pods `pods` (ptpLike indexes), each ADDed with the daemon interrupted by `signal`, restarted
 * and converged. */
async function interruptEach(t, pods, signal) {
  await suite.ready;
  t.truthy(nft, 'nft is installed');
  for (const i of pods) {
    const pod = ptpLike(suite.topo, i, { prefix: 'ck' });
    const r = await addInterrupted(t, pod, signal);
    await startDaemon(suite.topo);
    await convergeAndClean(t, pod, r);
  }
}

suite.serial('the daemon killed (SIGKILL) with an ADD in flight: the ADD completes or fails with code 11; after the restart, DEL and retry nothing is left over', (t) => interruptEach(t, [1, 2, 3], 'SIGKILL'));

suite.serial('the daemon stopped (SIGTERM) with an ADD in flight: the same', (t) => interruptEach(t, [4, 5], 'SIGTERM'));

suite.serial('an ADD while the daemon is down fails with code 11 (not answering); once it serves, the retry attaches', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const pod = ptpLike(topo, 6, { prefix: 'ck' });
  const exited = new Promise((r) => topo.daemon.once('exit', r));
  topo.daemon.kill('SIGTERM');
  await exited;
  const r = await cni('ADD', pod);
  t.is(r.code, 1);
  t.like(r.out, { code: 11, msg: 'the wdp daemon is not answering' });
  await startDaemon(topo);
  await waitFor('the daemon serving', async () => (await api(topo, 'GET', '/healthz')).status === 200);
  await convergeAndClean(t, pod, r);
});
