// A config-file port whose interface (a TAP's: its pod namespace) is missing when the daemon
// starts is started absent — the workers told not to open it, the API showing it absent, logged
// once — and opened by the link check when it appears, as a port whose interface went while the
// daemon ran (src/daemon/port-manager.ts missingAtStart / startAbsent). The uplink missing, or an
// interface that exists but is no Ethernet, still fails the start: those are configuration errors.
// The interfaces are veths in namespaces this test creates; the dataplane is a stand-in that
// records what it is told.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig, ConfigError } from '../dist/src/daemon/config.js';
import { PortManager } from '../dist/src/daemon/port-manager.js';
import { NetnsLab } from '../dist/src/netns.js';
import { rootGate } from './lib/root-gate.js';
import { privateRunDir } from './lib/private-run-dir.js';

const gate = rootGate(test);
privateRunDir(test);

/** fn gets a namespace `ns` (the ports') with its veth peer namespace `peer`, a way to build a
 * PortManager over config `ports` there (with a stand-in dataplane that opens whatever it is
 * told) and the log's lines; everything is removed after, also on failure. */
async function withLab(prefix, fn) {
  const lab = new NetnsLab(prefix);
  const dir = mkdtempSync(join(tmpdir(), `wdp-${prefix}-`));
  try {
    const ns = lab.namespace('a');
    const peer = lab.namespace('b');
    const lines = [];
    const log = pino({ level: 'info' }, { write: (s) => lines.push(s) });
    const changes = [];
    const dp = {
      added: [], removals: [],
      addPort: async (w, spec) => { dp.added.push(spec); return { name: spec.name, index: spec.index, mac: spec.mac, kind: 'stand-in', stats: {} }; },
      removePort: async (w, index, absent) => { dp.removals.push({ worker: w, index, absent: absent === true }); },
      // what the workers opened at start: every port not started absent
      ports: async () => [],
    };
    const make = (ports) => {
      const cfg = parseConfig({ node: { name: 'node-a', addresses: ['192.168.100.2'] }, stateDir: dir, ports });
      const pm = new PortManager(cfg, log, ns, { changed: (p, how) => { changes.push([p.spec.name, how]); } });
      dp.ports = async () => pm.initialSpecs().filter((s) => !s.absent).map((s) => ({ name: s.name, index: s.index, mac: s.mac, kind: 'stand-in', stats: {} }));
      return pm;
    };
    await fn({ lab, ns, peer, make, lines, dp, changes });
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const uplink = { name: 'uplink', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['192.168.100.1'] };
const pod = { name: 'pod-1', type: 'afpacket', ifname: 'v1', role: 'pod', gateways: ['10.244.0.1'], pods: [{ ip: '10.244.0.5', mac: '02:00:00:00:05:05' }] };

gate.serial('a pod port whose veth is missing at start starts absent (workers told, API absent, logged once) and opens when the veth appears', async (t) => {
  await withLab('pas', async ({ lab, ns, peer, make, lines, dp, changes }) => {
    lab.veth(ns, 'up0', peer, 'eth0');
    const pm = make([uplink, pod]);
    const specs = pm.initialSpecs();
    t.like(specs.find((s) => s.name === 'pod-1'), { absent: true, type: 'afpacket', ifname: 'v1', index: 1 });
    t.falsy(specs.find((s) => s.name === 'uplink').absent);
    t.regex(specs.find((s) => s.name === 'pod-1').mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'a MAC to program its neighbours with until it opens');
    await pm.attach(dp);
    const view = (await pm.list()).find((p) => p.name === 'pod-1');
    t.is(view.state, 'absent');
    t.truthy(view.absentSince);
    t.is((await pm.list()).find((p) => p.name === 'uplink').state, 'up');
    const warned = lines.filter((l) => /does not exist at start: port absent/.test(l));
    t.is(warned.length, 1, lines.join(''));
    t.like(JSON.parse(warned[0]), { level: 40, port: 'pod-1', ifname: 'v1' });
    t.false(lines.some((l) => /every port is absent/.test(l)));
    // not there yet: nothing opened, nothing closed (it never was open)
    await pm.checkLinks();
    t.deepEqual(dp.added, []);
    t.deepEqual(dp.removals, []);
    t.is((await pm.list()).find((p) => p.name === 'pod-1').state, 'absent');
    t.is(lines.filter((l) => /does not exist at start/.test(l)).length, 1, 'logged once');
    // the veth appears: opened on it as at start, with its real MAC, the daemon told
    lab.veth(ns, 'v1', peer, 'eth1');
    const mac = execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'dev', 'v1'], { encoding: 'utf8' }).match(/link\/ether ([0-9a-f:]{17})/)[1];
    await pm.checkLinks();
    t.is(dp.added.length, 1);
    t.like(dp.added[0], { name: 'pod-1', index: 1, mac, type: 'afpacket' });
    t.falsy(dp.added[0].absent);
    t.like((await pm.list()).find((p) => p.name === 'pod-1'), { state: 'up', mac });
    t.deepEqual(changes, [['pod-1', 'reopened']]);
    t.is(lines.filter((l) => /port reopened on it/.test(l)).length, 1);
    // watched from now on: deleted, it is absent again
    lab.exec(peer, 'ip', ['link', 'del', 'eth1']);
    await pm.checkLinks();
    t.is((await pm.list()).find((p) => p.name === 'pod-1').state, 'absent');
    t.deepEqual(dp.removals, [{ worker: 0, index: 1, absent: true }]);
  });
});

gate.serial('a config TAP whose pod namespace is missing at start starts absent and opens when the namespace appears', async (t) => {
  await withLab('pat', async ({ lab, ns, peer, make, lines, dp }) => {
    lab.veth(ns, 'up0', peer, 'eth0');
    const podNs = `${ns}-gone`;
    try {
      const pm = make([uplink, { name: 'pod-t', type: 'tap', ifname: 'tapt', role: 'pod', gateways: ['10.244.0.1'], netns: podNs }]);
      t.true(pm.initialSpecs().find((s) => s.name === 'pod-t').absent);
      await pm.attach(dp);
      t.is((await pm.list()).find((p) => p.name === 'pod-t').state, 'absent');
      t.like(JSON.parse(lines.find((l) => /network namespace does not exist at start/.test(l))), { port: 'pod-t', netns: podNs });
      execFileSync('ip', ['netns', 'add', podNs]);
      await pm.checkLinks();
      t.is(dp.added.length, 1);
      t.is((await pm.list()).find((p) => p.name === 'pod-t').state, 'up');
    } finally {
      try { execFileSync('ip', ['netns', 'del', podNs], { stdio: 'ignore' }); } catch { /* never created */ }
    }
  });
});

gate.serial('every port missing at start: the port manager comes up, every port absent, and says so', async (t) => {
  await withLab('paa', async ({ make, lines, dp }) => {
    const pm = make([pod, { ...pod, name: 'pod-2', ifname: 'v2', pods: [] }]);
    t.true(pm.initialSpecs().every((s) => s.absent));
    await pm.attach(dp);
    t.deepEqual((await pm.list()).map((p) => p.state), ['absent', 'absent']);
    t.is(lines.filter((l) => /every port is absent/.test(l)).length, 1, lines.join(''));
  });
});

gate.serial('the uplink missing at start fails the start naming it (the node\'s own link is no pod\'s)', async (t) => {
  await withLab('pau', async ({ lab, ns, peer, make }) => {
    lab.veth(ns, 'v1', peer, 'eth1');
    const e = t.throws(() => make([uplink, pod]), { instanceOf: ConfigError });
    t.regex(e.message, /port "uplink" \(role uplink\): interface "up0" does not exist/);
  });
});

gate.serial('an interface that exists but is no Ethernet fails the start (a configuration error, not absence)', async (t) => {
  await withLab('pae', async ({ lab, ns, peer, make }) => {
    lab.veth(ns, 'up0', peer, 'eth0');
    execFileSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', 'v1', 'mode', 'tun']);
    const e = t.throws(() => make([uplink, pod]), { instanceOf: ConfigError });
    t.regex(e.message, /interface "v1" is not an Ethernet interface/);
  });
});
