// A host port's TAP takes its uplink's MTU unless the port sets mtu (src/daemon/port-manager.ts):
// the node's stack keeps the link it had on the NIC, and the core does not refuse on the way to
// the host what the NIC carries. The uplink is a veth in a namespace this test creates.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';
import { privateRunDir } from './lib/private-run-dir.js';

const gate = rootGate(test);
privateRunDir(test);

gate.serial('a host port\'s TAP gets the uplink\'s MTU (9000 here); an explicit mtu wins', async (t) => {
  const lab = new NetnsLab('pmm');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-pmm-'));
  try {
    const ns = lab.namespace('a');
    const peer = lab.namespace('b');
    lab.veth(ns, 'up0', peer, 'eth0', { mtu: 9000 });
    const host = { name: 'host', type: 'tap', ifname: 'wdph0', role: 'host', gateways: ['10.244.0.1'], hostAddresses: ['192.168.100.2/24'] };
    const config = (extra) => parseConfig({
      node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir,
      ports: [{ name: 'uplink', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['192.168.100.1'] }, { ...host, ...extra }],
    });
    const specOf = (cfg) => new PortManager(cfg, pino({ level: 'silent' }), ns).initialSpecs().find((s) => s.name === 'host');
    t.is(specOf(config({})).mtu, 9000);
    t.is(specOf(config({ mtu: 1400 })).mtu, 1400);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
