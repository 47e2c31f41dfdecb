// The link check (src/daemon/port-manager.ts checkLinks) removes a runtime port only when its
// interface is known to be gone: a check that cannot read the interfaces this time (here `ip`
// fails, as a fork refused under memory pressure would) removes nothing and reports no config
// port gone; once the veth is really deleted the runtime port is removed. A config-file port whose
// veth goes is closed and absent until a veth of its name is back, then reopened. The interfaces
// are veths in namespaces this test creates; the dataplane is a stand-in that records what it is told.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
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

/** A PortManager over veths in namespaces this test creates — `up0` (the config file's uplink)
 * and `r1` in namespace a, their peers in b — with a stand-in dataplane that records the ports it
 * is told to remove; fn gets them and the log's lines; everything is removed after. */
async function withPorts(prefix, fn, daemon = {}) {
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
      ports: [{ name: 'uplink', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['192.168.100.1'], ...daemon.uplink },
        ...(daemon.tapIn ? [{ name: 'pod-t', type: 'tap', ifname: 'tapt', role: 'pod', gateways: ['10.244.0.1'], netns: daemon.tapIn(lab) }] : [])],
      ...(daemon.workers ? { workers: daemon.workers } : {}),
    });
    const removed = [];
    const changes = [];
    const dp = {
      failAdd: undefined, failAddIn: undefined, addTries: 0, workers: [], removals: [],
      addPort: async (w, spec) => {
        dp.addTries++;
        dp.workers.push(w);
        if (dp.failAdd && (dp.failAddIn === undefined || dp.failAddIn === w)) throw new Error(dp.failAdd);
        return { name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} };
      },
      removePort: async (w, index, absent) => { removed.push(index); dp.workers.push(-w - 1); dp.removals.push({ worker: w, index, absent: absent === true }); },
      ports: async () => [{ name: 'uplink', index: 0, mac: '02:00:00:00:00:01', kind: 'stand-in', stats: {} }],
    };
    const pm = new PortManager(cfg, log, ns, { changed: (p, how) => { changes.push([p.spec.name, how]); } });
    await pm.attach(dp);
    await fn({ lab, ns, peer, dir, pm, removed, lines, dp, changes });
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
      const first = await pm.checkLinks();
      process.env.PATH = savedPath;
      t.deepEqual(first, [], 'nothing removed when the interfaces cannot be read');
      t.truthy(pm.byName('r1'));
      t.deepEqual(removed, []);
      t.false(lines.some((l) => /interface is gone/.test(l)), lines.join(''));
      // the veth really goes: the runtime port is removed, the config port (still there) is not
      lab.exec(peer, 'ip', ['link', 'del', 'eth1']);
      t.deepEqual(await pm.checkLinks(), ['r1']);
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

gate.serial('a pod address is one port\'s: an ADD with the address of a live port\'s pod is a 409 naming that port; a port with it whose interface is gone (the IPAM gave the address again before the link check saw it) is removed first', async (t) => {
  await withPorts('pmp', async ({ lab, ns, peer, pm, removed }) => {
    const pod = (ip) => [{ ip, mac: '02:00:00:00:aa:01' }];
    const old = await pm.add({ name: 'pod-old', type: 'afpacket', ifname: 'r1', role: 'pod', gateways: ['10.244.0.1'], pods: pod('10.244.0.7') });
    lab.veth(ns, 'r2', peer, 'eth2');
    const e = await t.throwsAsync(pm.add({ name: 'pod-new', type: 'afpacket', ifname: 'r2', role: 'pod', gateways: ['10.244.0.1'], pods: pod('10.244.0.7') }));
    t.is(e.statusCode, 409);
    t.regex(e.message, /pods: 10\.244\.0\.7 is a pod of port "pod-old" \(interface "r1"\): remove that port first/);
    t.is(pm.byName('pod-new'), undefined, 'nothing added');
    // the old pod's veth goes; the new pod gets its address before the link check ran
    lab.exec(peer, 'ip', ['link', 'del', 'eth1']);
    const added = await pm.add({ name: 'pod-new', type: 'afpacket', ifname: 'r2', role: 'pod', gateways: ['10.244.0.1'], pods: pod('10.244.0.7') });
    t.deepEqual(removed, [old.index], 'the stale port was removed first');
    t.is(pm.byName('pod-old'), undefined);
    t.is(pm.byName('pod-new')?.spec.index, added.index);
  });
});

gate.serial('a config-file port whose veth is gone is closed and shown absent; re-created, it is reopened under its index (a failed reopen is retried, logged once)', async (t) => {
  await withPorts('pmb', async ({ lab, ns, peer, pm, removed, lines, dp, changes }) => {
    const uplink = pm.byName('uplink');
    const index = uplink.spec.index;
    lab.exec(peer, 'ip', ['link', 'del', 'eth0']);
    t.deepEqual(await pm.checkLinks(), []);
    t.deepEqual(removed, [index], 'closed in its worker');
    const absent = (await pm.list()).find((p) => p.name === 'uplink');
    t.is(absent.state, 'absent');
    t.truthy(absent.absentSince);
    await pm.checkLinks();
    t.is(lines.filter((l) => /a port's interface is gone/.test(l)).length, 1, 'logged once');
    t.deepEqual(removed, [index], 'closed once');
    // the veth is back, but the worker cannot open it yet: retried at every check, logged once
    lab.veth(ns, 'up0', peer, 'eth0');
    dp.failAdd = 'no such device (in the stand-in)';
    await pm.checkLinks();
    await pm.checkLinks();
    t.is(lines.filter((l) => /reopening a port failed/.test(l)).length, 1, lines.join(''));
    t.is(dp.addTries, 2);
    t.is((await pm.list()).find((p) => p.name === 'uplink').state, 'absent');
    dp.failAdd = undefined;
    await pm.checkLinks();
    const back = (await pm.list()).find((p) => p.name === 'uplink');
    t.like(back, { state: 'up', index, origin: 'config' });
    t.is(back.absentSince, undefined);
    t.deepEqual(changes, [['uplink', 'reopened']]);
    t.is(lines.filter((l) => /port reopened on it/.test(l)).length, 1);
    // the port is watched again: deleted once more, it is absent again
    lab.exec(peer, 'ip', ['link', 'del', 'eth0']);
    await pm.checkLinks();
    t.is((await pm.list()).find((p) => p.name === 'uplink').state, 'absent');
  });
});

gate.serial('a port seen gone is shown absent without live stats even before its worker has closed it', async (t) => {
  await withPorts('pms', async ({ lab, peer, pm, dp }) => {
    let release;
    const closing = new Promise((r) => { release = r; });
    const removePort = dp.removePort;
    dp.removePort = async (...a) => { await closing; return removePort(...a); };
    t.truthy((await pm.list()).find((p) => p.name === 'uplink').stats, 'live stats while up');
    lab.exec(peer, 'ip', ['link', 'del', 'eth0']);
    const check = pm.checkLinks();
    let seen;
    for (let i = 0; i < 200 && !seen; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const v = (await pm.list()).find((p) => p.name === 'uplink');
      if (v.state === 'absent') seen = v;
    }
    t.truthy(seen, 'absent while its close is under way');
    t.is(seen.stats, undefined, 'no live stats for a port whose interface is gone');
    release();
    await check;
    t.is((await pm.list()).find((p) => p.name === 'uplink').stats, undefined);
  });
});

gate.serial('a config-file port of worker 1 is closed and reopened in worker 1', async (t) => {
  await withPorts('pmw', async ({ lab, ns, peer, pm, dp }) => {
    lab.exec(peer, 'ip', ['link', 'del', 'eth0']);
    await pm.checkLinks();
    lab.veth(ns, 'up0', peer, 'eth0');
    await pm.checkLinks();
    t.deepEqual(dp.workers, [-2, 1], 'closed in worker 1 (-2), opened in worker 1');
    t.like((await pm.list())[0], { name: 'uplink', worker: 1, state: 'up' });
  }, { workers: 2, uplink: { worker: 1 } });
});

gate.serial('a config TAP whose pod namespace went is reopened once the namespace is back, not while its name is a file being set up', async (t) => {
  let podNs;
  await withPorts('pmt', async ({ pm, dp, lines }) => {
    execFileSync('ip', ['netns', 'del', podNs]);
    await pm.checkLinks();
    t.is((await pm.list()).find((p) => p.name === 'pod-t').state, 'absent');
    // `ip netns add` creates the file, then mounts the namespace on it: not yet a namespace
    writeFileSync(`/run/netns/${podNs}`, '');
    try {
      await pm.checkLinks();
      t.is(dp.addTries, 0, 'no reopen into a file that is not a namespace');
    } finally { rmSync(`/run/netns/${podNs}`, { force: true }); }
    execFileSync('ip', ['netns', 'add', podNs]);
    await pm.checkLinks();
    t.is(dp.addTries, 1);
    t.is((await pm.list()).find((p) => p.name === 'pod-t').state, 'up');
    t.false(lines.some((l) => /reopening a port failed/.test(l)), lines.join(''));
  }, { tapIn: (lab) => (podNs = lab.namespace('p')) });
});

gate.serial('a fanout config port whose reopen fails in one worker is closed again as absent in the workers that opened it', async (t) => {
  await withPorts('pmf', async ({ lab, ns, peer, pm, dp }) => {
    const index = pm.byName('uplink').spec.index;
    lab.exec(peer, 'ip', ['link', 'del', 'eth0']);
    await pm.checkLinks();
    t.deepEqual(dp.removals, [{ worker: 0, index, absent: true }, { worker: 1, index, absent: true }]);
    lab.veth(ns, 'up0', peer, 'eth0');
    dp.failAdd = 'worker 1 cannot open it (in the stand-in)';
    dp.failAddIn = 1;
    dp.removals.length = 0;
    await pm.checkLinks();
    t.is((await pm.list())[0].state, 'absent');
    // worker 0 opened it, then closed it again: still absent there (what is routed to it is
    // counted as port_absent, not as another worker's port); worker 1, whose open failed, is
    // asked too (an open that did not answer in time may still end there)
    t.deepEqual(dp.removals, [{ worker: 0, index, absent: true }, { worker: 1, index, absent: true }]);
    dp.failAdd = undefined;
    await pm.checkLinks();
    t.like((await pm.list())[0], { name: 'uplink', state: 'up' });
  }, { workers: 2, uplink: { fanout: true } });
});
