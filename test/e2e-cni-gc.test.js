// CNI GC end to end, through the real plugin (bin/wdp-cni.js, run as a runtime runs it) and the
// daemon in network namespaces: ports made by ADD record their attachment (network, container,
// interface) and keep it across a daemon restart; a GC of one network (CNI 1.1.0, the runtime's
// cni.dev/valid-attachments) removes that network's ports whose attachment is not valid, as a DEL
// would — the interface is handed back to the kernel and the pod address served by a new pod's
// port —, and leaves the valid ones, another network's, a port saved before attachments were
// recorded and the config file's. ADD repeated, CHECK and DEL around it behave as the spec says.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eSuite, api, curlOk, serviceYaml, sliceYaml, startDaemon, logged, WDP } from './lib/topology.js';
import { cniCall, ptpLike, startServer } from './lib/cni-pods.js';
import { portName } from '../dist/src/cni/plugin.js';
import { systemTool } from '../dist/src/util/system-tool.js';

const suite = e2eSuite(test, { pods: [{ name: 'pod-a', attach: 'afpacket' }] });
const NET_A = 'wdp-gc-a', NET_B = 'wdp-gc-b';

const ports = async () => (await api(suite.topo, 'GET', '/api/v1/ports')).json.items;
const portOf = (pod) => portName(pod.id, 'eth0');
const gc = (network, valid, o = {}) => cniCall(suite.topo, 'GC', { cniVersion: '1.1.0', network, conf: { 'cni.dev/valid-attachments': valid.map((p) => ({ containerID: p.id, ifname: 'eth0' })) }, ...o });

suite.serial('GC of a network removes its ports whose attachment is not valid (also after a restart), as a DEL would; valid ones, another network\'s, a port saved before attachments were recorded and config ports stay', async (t) => {
  await suite.ready;
  const topo = suite.topo;
  const add = async (pod, network) => {
    const r = await cniCall(topo, 'ADD', { ...pod, cniVersion: '1.1.0', network });
    t.is(r.code, 0, JSON.stringify(r));
    return pod;
  };
  const restart = async (edit) => {
    topo.daemon.kill('SIGTERM');
    await new Promise((r) => topo.daemon.once('exit', r));
    const file = join(topo.config.stateDir, 'ports.json');
    if (edit) writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')))));
    await startDaemon(topo);
  };
  // a port saved by a wdp from before attachments were recorded: ports.json without them
  const legacy = await add(ptpLike(topo, 4, { prefix: 'gc' }), NET_A);
  await restart(({ attachments, ...older }) => {
    t.deepEqual(attachments, [{ network: NET_A, containerID: legacy.id, ifname: 'eth0' }]);
    return older;
  });
  t.is((await ports()).find((p) => p.name === portOf(legacy))?.attachment, undefined, 'the legacy port is restored, without an attachment');
  const valid = await add(ptpLike(topo, 1, { prefix: 'gc' }), NET_A);
  const stale = await add(ptpLike(topo, 2, { prefix: 'gc' }), NET_A);
  const other = await add(ptpLike(topo, 3, { prefix: 'gc' }), NET_B);
  t.like((await ports()).find((p) => p.name === portOf(stale)), { attachment: { network: NET_A, containerID: stale.id, ifname: 'eth0' } });
  const wide = await topo.lab.execAsync(topo.ns.dp, process.execPath, [WDP, 'get', 'ports', '-o', 'wide', '--server', `unix:${topo.config.api.listen}`]);
  t.regex(wide.stdout, new RegExp(`^${portOf(stale)}\\s.*\\s${NET_A}/${stale.id}/eth0\\s*$`, 'm'), 'wdp get ports -o wide shows the attachment');
  t.regex(wide.stdout, new RegExp(`^${portOf(legacy)}\\s.*\\s-\\s*$`, 'm'));
  await restart();
  const restored = await ports();
  t.like(restored.find((p) => p.name === portOf(stale)), { attachment: { network: NET_A, containerID: stale.id, ifname: 'eth0' } }, 'the attachment survived the restart');

  // refused whole: no list (code 7), before 1.1.0 (code 1); nothing removed
  const noList = await cniCall(topo, 'GC', { cniVersion: '1.1.0', network: NET_A });
  t.is(noList.code, 1);
  t.is(noList.out.code, 7);
  t.is((await gc(NET_A, [], { cniVersion: '1.0.0' })).out.code, 1);
  t.is((await ports()).length, restored.length);

  const r = await gc(NET_A, [valid]);
  t.deepEqual([r.code, r.out], [0, undefined], r.stderr);
  const after = (await ports()).map((p) => p.name);
  t.false(after.includes(portOf(stale)), 'the stale attachment\'s port is gone');
  for (const p of [valid, other, legacy]) t.true(after.includes(portOf(p)), `${p.id} kept`);
  t.true(after.includes('pod-a'), 'the config port kept');
  await logged(topo, /CNI GC of network wdp-gc-a/);
  // as a DEL: the interface is the kernel's again (its netdev ingress drop chain is gone)
  // (nft from the system directories: under npx, PATH's node_modules/.bin has an `nft` of its own)
  const nft = systemTool('nft');
  t.truthy(nft, 'nft is installed');
  const chainOf = async (pod) => (await topo.lab.execAsync(topo.ns.dp, nft, ['list', 'chain', 'netdev', 'wdp', `in_${pod.hostIf}`])).code;
  t.is(await chainOf(valid), 0, 'a port\'s interface has its ingress drop chain');
  t.not(await chainOf(stale), 0, 'the stale port\'s chain went with it');
  // the runtime's DEL of what GC removed, and a second GC, succeed and change nothing else
  t.is((await cniCall(topo, 'DEL', { ...stale, cniVersion: '1.1.0', network: NET_A })).code, 0);
  t.is((await gc(NET_A, [valid])).code, 0);
  t.deepEqual((await ports()).map((p) => p.name), after);
  // the valid attachment: ADD repeated and CHECK succeed
  t.is((await cniCall(topo, 'ADD', { ...valid, cniVersion: '1.1.0', network: NET_A })).code, 0);
  t.is((await cniCall(topo, 'CHECK', { ...valid, cniVersion: '1.1.0', network: NET_A })).code, 0);
  // ... but not under another network's name
  const wrongNet = await cniCall(topo, 'CHECK', { ...valid, cniVersion: '1.1.0', network: NET_B });
  t.is(wrongNet.out?.code, 101, JSON.stringify(wrongNet));

  // the stale pod's address, handed out again by IPAM to a new pod, is served from the new pod's port
  const reborn = await add(ptpLike(topo, 5, { prefix: 'gc', ip: stale.ip }), NET_A);
  await startServer(topo, reborn.ns, 'reborn');
  await suite.apply([
    serviceYaml({ name: 'reborn', clusterIP: '10.96.11.1', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] }),
    sliceYaml({ name: 'reborn-1', service: 'reborn', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [stale.ip], conditions: { ready: true } }] }),
  ]);
  const c = await curlOk(topo, topo.ns.client, 'http://10.96.11.1/');
  t.is(c.body?.trim(), 'reborn', `${c.stderr}\n${topo.daemonLog.slice(-2000)}`);

  // the other network: nothing valid any more
  t.is((await gc(NET_B, [])).code, 0);
  const last = (await ports()).map((p) => p.name);
  t.false(last.includes(portOf(other)));
  for (const p of [valid, legacy, reborn]) t.true(last.includes(portOf(p)), `${p.id} kept`);
});
