// A port add (what a CNI ADD asks for) that fails after it started on the interface leaves
// nothing behind: the nftables drop chain that keeps the kernel off a port's interface is removed
// again (else the pod's interface stays blackholed for the kernel with no port to account for it),
// and the port is not saved. While the add is under way the port is already saved, so a crash
// then restarts with it (a DEL or GC removes it; test cni-restart). A veth in a namespace this
// test creates; the dataplane is a stand-in whose worker refuses the port.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { NetnsLab } from '../dist/src/netns.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { rootGate } from './lib/root-gate.js';
import { privateRunDir } from './lib/private-run-dir.js';

const gate = rootGate(test, { tools: ['nft'] });
privateRunDir(test);

gate.test('a port whose worker refuses it is undone: no drop chain on its interface, not saved; the saved file named it while it was being added', async (t) => {
  const lab = new NetnsLab('cu');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cni-undo-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('a'), peer = lab.namespace('b');
  lab.veth(ns, 'up0', peer, 'eth0');
  lab.veth(ns, 'wv1', peer, 'eth1');
  const cfg = parseConfig({
    node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir,
    ports: [{ name: 'uplink', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['192.168.100.1'] }],
  });
  const savedNames = () => { try { return JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8')).ports.map((p) => p.name); } catch { return []; } };
  let seenWhileAdding;
  const dp = {
    addPort: async () => { seenWhileAdding = savedNames(); throw new Error('worker 0: cannot open wv1'); },
    removePort: async () => undefined,
    ports: async () => [{ name: 'uplink', index: 0, mac: '02:00:00:00:00:01', kind: 'stand-in', stats: {} }],
  };
  const pm = new PortManager(cfg, pino({ level: 'silent' }), ns);
  await pm.attach(dp);
  const attachment = { network: 'k8s', containerID: 'c1', ifname: 'eth0' };
  await t.throwsAsync(pm.add({ name: 'cni-x', type: 'afpacket', ifname: 'wv1', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.1.5' }], attachment }), { message: /cannot open wv1/ });
  t.deepEqual(seenWhileAdding, ['cni-x'], 'saved before its interface was touched');
  t.deepEqual(savedNames(), [], 'and no longer once the add failed');
  t.false(pm.all().some((p) => p.spec.name === 'cni-x'));
  const chain = lab.execAsync(ns, systemTool('nft'), ['list', 'chain', 'netdev', 'wdp', 'in_wv1']);
  t.not((await chain).code, 0, 'no drop chain left on wv1');
  await pm.close();
});
