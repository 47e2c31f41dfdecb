// What a daemon killed with SIGKILL leaves on its ports' interfaces, and what the next start does
// with it when the port is no longer configured (docs/running.md, "What a killed daemon leaves"):
// the nftables drop chain that kept the kernel off a port's interface is removed at start when no
// port being opened accounts for it (the kernel answers on that interface again: a peer pings an
// address on it), as is a chain of an interface that no longer exists (on Linux 6.16+ such a chain
// stays and would catch the next interface of that name); an AF_XDP port's XDP program goes with
// the killed process (a BPF link, closed with its fd); a host port's NodePort rules are removed
// and the `local` rule put back at preference 0 when no host port is configured any more. `wdp start` in network namespaces this file
// creates (src/demo/topology.js), removed after even on failure.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { rootGate } from './lib/root-gate.js';
import { buildTopology, startDaemon, destroyTopology, api, waitFor, logged, NODE_V4, NODE_V6 } from './lib/topology.js';
import { systemTool } from '../dist/src/util/system-tool.js';

const gate = rootGate(test, { tools: ['nft', 'ping'] });
const nft = systemTool('nft');

const chains = (topo) => {
  const r = topo.lab.exec(topo.ns.dp, nft, ['list', 'table', 'netdev', 'wdp']);
  return r.code === 0 ? [...r.stdout.matchAll(/^\s*chain (\S+) \{/gm)].map((m) => m[1]) : [];
};
const xdpOn = (topo, dev) => /\bxdp/.test(topo.lab.exec(topo.ns.dp, 'ip', ['-d', 'link', 'show', 'dev', dev]).stdout);

async function kill(topo) {
  const d = topo.daemon;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGKILL');
  await exited;
}

/** The config without port `name` (an operator edited it while the daemon was down). */
function withoutPort(topo, name) {
  topo.config.ports = topo.config.ports.filter((p) => p.name !== name);
  writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
}

/** Whether the pod's namespace gets an answer from an address of the dataplane namespace on the
 * pod port's interface (the kernel's, not wdp's). */
async function kernelAnswers(topo, pod) {
  const r = await topo.lab.execAsync(pod.ns, 'ping', ['-c', '1', '-W', '1', '10.250.0.1'], { timeoutMs: 5000 });
  return r.code === 0;
}

/** A topology with one pod of `attach` (its port pod-a on v0) and kernel addresses on both ends
 * of its veth — the dataplane side (v0) is what the drop chain guards — its daemon started. */
async function started(kind, attach) {
  const topo = buildTopology({ kind, pods: [{ name: 'pod-a', attach }] });
  const pod = topo.pods[0];
  try {
    topo.lab.addr(topo.ns.dp, 'v0', '10.250.0.1/30');
    topo.lab.up(pod.ns, 'eth0');
    topo.lab.addr(pod.ns, 'eth0', '10.250.0.2/30');
    await startDaemon(topo);
  } catch (e) { await destroyTopology(topo); throw e; }
  return { topo, pod };
}

gate.serial('a drop chain left by a SIGKILLed daemon is removed at the next start when its port is not configured: the kernel has the interface again', async (t) => {
  const { topo, pod } = await started('skc', 'afpacket');
  try {
    t.true(chains(topo).includes('in_v0'), 'the port keeps the kernel off v0');
    t.false(await kernelAnswers(topo, pod), 'the kernel does not answer on a port');
    await kill(topo);
    t.true(chains(topo).includes('in_v0'), 'a killed daemon leaves its chain');
    // a chain of an interface that is gone (a pod's veth deleted while the daemon was down)
    topo.lab.exec(topo.ns.dp, nft, ['add', 'chain', 'netdev', 'wdp', 'in_gone0', '{ type filter hook ingress device "gone0" priority 0; policy drop; }']);
    t.true(chains(topo).includes('in_gone0'), 'the kernel keeps the chain of an interface that does not exist');

    withoutPort(topo, 'pod-a');
    await startDaemon(topo);
    t.true(await waitFor('the kernel to answer on v0', () => kernelAnswers(topo, pod), 10000));
    t.deepEqual(chains(topo).sort(), ['in_c0', 'in_r0'], 'only the chains of the ports opened');
    await logged(topo, /"chain":"in_gone0","ifname":"gone0"[^\n]*removed/);
    const log = await logged(topo, /"chain":"in_v0","ifname":"v0"[^\n]*drop chain no port being opened accounts for[^\n]*removed/);
    t.is((log.match(/drop chain no port being opened accounts for/g) ?? []).length, 2, 'logged once each');
    t.is((await api(topo, 'GET', '/api/v1/ports/client')).json?.state, 'up', 'the other ports open as before');
  } finally {
    await destroyTopology(topo);
  }
});

gate.serial('a SIGKILLed daemon leaves no XDP program on an AF_XDP port\'s interface; the next start without the port leaves it to the kernel', async (t) => {
  const { topo, pod } = await started('skx', 'afxdp');
  try {
    const kind = (await api(topo, 'GET', '/api/v1/ports/pod-a')).json?.kind;
    t.log(`port kind ${kind}`);
    if (kind !== 'native-afxdp') { t.pass(`AF_XDP unavailable here (port kind ${kind}): nothing to check`); return; }
    t.true(xdpOn(topo, 'v0'), 'the AF_XDP port\'s program is attached to v0');
    await kill(topo);
    t.true(await waitFor('the XDP program detached', () => !xdpOn(topo, 'v0'), 10000), 'the BPF link closed with the process');
    withoutPort(topo, 'pod-a');
    await startDaemon(topo);
    t.false(xdpOn(topo, 'v0'));
    t.false(chains(topo).includes('in_v0'));
    t.true(await waitFor('the kernel to answer on v0', () => kernelAnswers(topo, pod), 10000));
  } finally {
    await destroyTopology(topo);
  }
});

gate.serial('a host port\'s NodePort rules left by a SIGKILLed daemon are removed, the local rule back at 0, at a start without a host port', async (t) => {
  const topo = buildTopology({ kind: 'skh', pods: [] });
  try {
    topo.config.ports.push({ name: 'host', type: 'tap', ifname: 'wdp-host', role: 'host', uplink: 'remote', gateways: ['10.244.0.1'], hostAddresses: [`${NODE_V4}/24`, `${NODE_V6}/64`] });
    writeFileSync(topo.configFile, JSON.stringify(topo.config, null, 2));
    const rules = () => topo.lab.exec(topo.ns.dp, 'ip', ['-4', 'rule', 'show']).stdout;
    await startDaemon(topo);
    await waitFor('the NodePort rules', () => /^50:.*lookup 4242/m.test(rules()), 10000);
    t.regex(rules(), /^100:\s+from all lookup local/m);
    t.notRegex(rules(), /^0:\s+from all lookup local/m);
    await kill(topo);
    t.regex(rules(), /^50:.*lookup 4242/m, 'a killed daemon leaves its rules');

    withoutPort(topo, 'host');
    await startDaemon(topo);
    t.notRegex(rules(), /lookup 4242/);
    t.regex(rules(), /^0:\s+from all lookup local/m);
    t.notRegex(rules(), /^100:\s+from all lookup local/m);
    await logged(topo, /"family":"-4","localBack":true[^\n]*NodePort rules left by a daemon that did not stop cleanly: removed/);
  } finally {
    await destroyTopology(topo);
  }
});
