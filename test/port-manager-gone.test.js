// The link check (src/daemon/port-manager.ts reapGone) removes a runtime port only when its
// interface is known to be gone: a check that cannot read the interfaces this time (here `ip`
// fails, as a fork refused under memory pressure would) removes nothing and reports no config
// port gone; once the veth is really deleted the runtime port is removed. The interfaces are
// veths in namespaces this test creates; the dataplane is a stand-in that records what it is told.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';

const gate = rootGate(test);

/** A PortManager over veths in namespaces this test creates — `up0` (the config file's uplink)
 * and `r1` in namespace a, their peers in b — with a stand-in dataplane that records the ports it
 * is told to remove; fn gets them and the log's lines; everything is removed after. */
async function withPorts(prefix, fn) {
  const lab = new NetnsLab(prefix);
  const dir = mkdtempSync(join(tmpdir(), `wdp-${prefix}-`));
  try {
    const ns = lab.namespace('a');
    const peer = lab.namespace('b');
    lab.veth(ns, 'up0', peer, 'eth0');
    lab.veth(ns, 'r1', peer, 'eth1');
    const lines = [];
    const log = pino({ level: 'info' }, { write: (s) => lines.push(s) });
    const cfg = parseConfig({
      node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir,
      ports: [{ name: 'uplink', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['192.168.100.1'] }],
    });
    const removed = [];
    const dp = {
      addPort: async (_w, spec) => ({ name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }),
      removePort: async (_w, index) => { removed.push(index); },
      ports: async () => [{ name: 'uplink', index: 0, mac: '02:00:00:00:00:01', kind: 'stand-in', stats: {} }],
    };
    const pm = new PortManager(cfg, log, ns);
    await pm.attach(dp);
    await fn({ lab, ns, peer, dir, pm, removed, lines });
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

gate.serial('a link check that cannot read the interfaces removes nothing; a veth really gone is removed', async (t) => {
  const savedPath = process.env.PATH;
  try {
    await withPorts('pmg', async ({ lab, peer, dir, pm, removed, lines }) => {
      const added = await pm.add({ name: 'r1', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: ['10.244.0.1'] });
      // `ip` fails: nothing can be said about the interfaces
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'ip'), '#!/bin/sh\nexit 1\n');
      chmodSync(join(bin, 'ip'), 0o755);
      process.env.PATH = `${bin}:${savedPath}`;
      const first = await pm.reapGone();
      process.env.PATH = savedPath;
      t.deepEqual(first, [], 'nothing removed when the interfaces cannot be read');
      t.truthy(pm.byName('r1'));
      t.deepEqual(removed, []);
      t.false(lines.some((l) => /interface is gone/.test(l)), lines.join(''));
      // the veth really goes: the runtime port is removed, the config port (still there) is not
      lab.exec(peer, 'ip', ['link', 'del', 'eth1']);
      t.deepEqual(await pm.reapGone(), ['r1']);
      t.deepEqual(removed, [added.index]);
      t.is(pm.byName('r1'), undefined);
      t.truthy(pm.byName('uplink'));
    });
  } finally { process.env.PATH = savedPath; }
});

gate.serial('an ADD on an interface re-created under a stale runtime port\'s name (before the link check saw it) replaces that port; a live one is still a 409', async (t) => {
  await withPorts('pmr', async ({ lab, ns, peer, pm, removed, lines }) => {
    const old = await pm.add({ name: 'pod-old', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: ['10.244.0.1'] });
    // a live port on the interface: a second port on it is refused
    await t.throwsAsync(pm.add({ name: 'pod-new', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: ['10.244.0.1'] }), { message: /already port "pod-old"/ });
    // the old pod's veth goes and a new pod's comes under the same name (another ifindex)
    lab.exec(peer, 'ip', ['link', 'del', 'eth1']);
    lab.veth(ns, 'r1', peer, 'eth1');
    const added = await pm.add({ name: 'pod-new', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: ['10.244.0.1'] });
    t.deepEqual(removed, [old.index], 'the stale port was removed first');
    t.is(pm.byName('pod-old'), undefined);
    t.is(pm.byName('pod-new')?.spec.index, added.index);
    t.true(lines.some((l) => /runtime port removed: its interface is gone/.test(l)));
  });
});
