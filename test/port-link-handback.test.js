// An interface taken as an AF_PACKET port is handed back with its link as it was
// (src/daemon/link-handback.ts): a port with `mac:` sets that MAC on it, and every port sets its
// link up; a stop, a failed start, a kill followed by a start and a stop, a start after a kill
// without that port, and a runtime port's removal each used to leave the port's MAC and the link up.
// Now each puts back the MAC and the down state; and what a port does not change — MTU,
// promiscuity, the offload features, the IPv6 (test/port-ipv6-handback.test.js has its details) —
// is checked unchanged too. `wdp start` runs in a network namespace this test makes, on veths
// whose other ends are in a second one; its API on a unix socket.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, NetnsLab, must } from '../dist/src/netns.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { startWdp, stopWdp, runDirOf, wdpStartArgv } from './lib/wdp-process.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;
const ETHTOOL = systemTool('ethtool');
const root = canUseNetns() && ETHTOOL !== null;
const serial = root ? test.serial : test.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const UP0_MAC = '02:00:00:aa:00:01', POD0_MAC = '02:00:00:aa:00:02';
const PORT_MAC = { up0: '02:00:00:bb:00:01', pod0: '02:00:00:bb:00:02' };

/** up0 (down, its own MAC) and pod0 (up, its own MAC, IPv6 addresses and a route): the operator's
 * interfaces before wdp takes them. */
function interfaces(lab, ns, peer) {
  lab.veth(ns, 'up0', peer, 'up0p');
  lab.veth(ns, 'pod0', peer, 'pod0p');
  const ipn = (...args) => must('ip', ['-n', ns, ...args]);
  ipn('link', 'set', 'dev', 'up0', 'down');
  ipn('link', 'set', 'dev', 'up0', 'address', UP0_MAC);
  ipn('link', 'set', 'dev', 'pod0', 'address', POD0_MAC);
  ipn('link', 'set', 'dev', 'pod0', 'up');
  ipn('-6', 'addr', 'add', 'fd00:77::1/64', 'dev', 'pod0', 'nodad');
  ipn('-6', 'route', 'add', 'fd00:79::/48', 'via', 'fd00:77::2', 'dev', 'pod0');
}

/** What the interface has: its link (MAC, up, MTU, promiscuity, features) and its IPv6. */
function snapshot(ns, ifname) {
  const [l] = JSON.parse(must('ip', ['-n', ns, '-j', '-d', 'link', 'show', 'dev', ifname]));
  const features = must('ip', ['netns', 'exec', ns, ETHTOOL, '-k', ifname]).split('\n').filter((x) => /: (on|off)/.test(x)).map((x) => x.trim()).sort();
  const v6 = (JSON.parse(must('ip', ['-n', ns, '-j', '-6', 'addr', 'show', 'dev', ifname]) || '[]')[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();
  const routes6 = JSON.parse(must('ip', ['-n', ns, '-j', '-6', 'route', 'show', 'dev', ifname]) || '[]').map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}`).sort();
  const disableIpv6 = must('ip', ['netns', 'exec', ns, 'sysctl', '-n', `net.ipv6.conf.${ifname}.disable_ipv6`]).trim();
  return { mac: l.address, up: l.flags.includes('UP'), mtu: l.mtu, promiscuity: l.promiscuity, features, v6, routes6, disableIpv6 };
}

function setup(t, kind) {
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-linkback-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp'), peer = lab.namespace('pe');
  interfaces(lab, ns, peer);
  const config = {
    node: { name: 'n1', addresses: ['10.77.0.1'] }, stateDir: join(dir, 'state'),
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [
      { name: 'up', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['10.77.0.1'], mac: PORT_MAC.up0 },
      { name: 'pod', type: 'afpacket', ifname: 'pod0', role: 'pod', gateways: ['10.244.0.1'], mac: PORT_MAC.pod0 },
    ],
  };
  const before = { up0: snapshot(ns, 'up0'), pod0: snapshot(ns, 'pod0') };
  return { lab, dir, ns, peer, config, before };
}



/** While the ports hold them: the ports' MACs, both links up. */
function taken(t, ns) {
  for (const i of ['up0', 'pod0']) {
    const s = snapshot(ns, i);
    t.is(s.mac, PORT_MAC[i], `${i} has its port's MAC`);
    t.true(s.up, `${i} is up`);
  }
}

/** The hand-back records in the test's run directory (src/daemon/interface-record.ts). */
const records = (dir) => { try { return readdirSync(join(runDirOf(dir), 'interfaces')).filter((n) => n.endsWith('.handback.json')); } catch { return []; } };

/** Each interface as before the start. */
function asBefore(t, ns, before, when) {
  t.deepEqual(snapshot(ns, 'up0'), before.up0, `up0 ${when}: as before`);
  t.deepEqual(snapshot(ns, 'pod0'), before.pod0, `pod0 ${when}: as before`);
}

serial(`a port's MAC and a link that was down are back after the stop${root ? '' : ' (skipped: needs root, ip and ethtool)'}`, async (t) => {
  const { lab, dir, ns, config, before } = setup(t, 'lh');
  t.false(before.up0.up, 'up0 down before');
  const d = await startWdp(lab, ns, dir, config);
  taken(t, ns);
  const r = await stopWdp(d);
  t.is(r.code, 0, d.log().slice(-3000));
  asBefore(t, ns, before, 'after the stop');
});

serial('a start that fails after taking the interfaces puts their MAC and link state back', async (t) => {
  const { lab, dir, ns, config, before } = setup(t, 'lf');
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // an older wdp's state file, unreadable and without a backup: the store refuses (after the ports)
  writeFileSync(join(config.stateDir, 'state.json'), '{"format":"wdp-desired-state","vers');
  writeFileSync(join(dir, 'failing.json'), JSON.stringify(config));
  const [cmd, ...args] = wdpStartArgv(join(dir, 'failing.json'), runDirOf(dir));
  const r = await lab.execAsync(ns, cmd, args, { timeoutMs: 90_000 });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stdout, /the start failed: its ports' interfaces are handed back/);
  asBefore(t, ns, before, 'after the failed start');
});

serial('killed, then started and stopped again: the interfaces get what they had before the first start, not the port\'s', async (t) => {
  const { lab, dir, ns, config, before } = setup(t, 'lk');
  const d1 = await startWdp(lab, ns, dir, config);
  t.is((await stopWdp(d1, 'SIGKILL')).signal, 'SIGKILL');
  taken(t, ns);   // (what the killed daemon left)
  const d2 = await startWdp(lab, ns, dir, config);
  taken(t, ns);
  t.is((await stopWdp(d2)).code, 0, d2.log().slice(-3000));
  asBefore(t, ns, before, 'after the second start\'s stop');
  t.deepEqual(records(dir), [], 'no hand-back record left');
});

serial('killed, then started without those ports: the start puts the interfaces back', async (t) => {
  const { lab, dir, ns, peer, config, before } = setup(t, 'ls');
  const d1 = await startWdp(lab, ns, dir, config);
  await stopWdp(d1, 'SIGKILL');
  lab.veth(ns, 'up1', peer, 'up1p');
  const other = { ...config, ports: [{ name: 'up', type: 'afpacket', ifname: 'up1', role: 'uplink', gateways: ['10.77.0.1'] }] };
  const d2 = await startWdp(lab, ns, dir, other, 'other.json');
  asBefore(t, ns, before, 'while the daemon runs on up1');
  t.is((await stopWdp(d2)).code, 0, d2.log().slice(-3000));
});

serial('a runtime port with a MAC, removed: its interface has its MAC and link state back', async (t) => {
  const { lab, dir, ns, peer, config, before } = setup(t, 'lr');
  lab.veth(ns, 'up1', peer, 'up1p');
  const d = await startWdp(lab, ns, dir, { ...config, ports: [{ name: 'up', type: 'afpacket', ifname: 'up1', role: 'uplink', gateways: ['10.77.0.1'] }] });
  const cli = (...args) => spawnSync(process.execPath, [WDP, '--server', `unix:${join(dir, 'api.sock')}`, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  writeFileSync(join(dir, 'port.json'), JSON.stringify({ name: 'up0', type: 'afpacket', ifname: 'up0', role: 'pod', gateways: ['10.244.0.1'], mac: PORT_MAC.up0 }));
  const add = cli('port', 'add', '-f', join(dir, 'port.json'));
  t.is(add.status, 0, add.stderr);
  const s = snapshot(ns, 'up0');
  t.is(s.mac, PORT_MAC.up0);
  t.true(s.up);
  const rm = cli('port', 'remove', 'up0');
  t.is(rm.status, 0, rm.stderr);
  t.deepEqual(snapshot(ns, 'up0'), before.up0, 'after the remove: as before the add');
  t.is((await stopWdp(d)).code, 0, d.log().slice(-3000));
  t.deepEqual(snapshot(ns, 'up0'), before.up0, 'the stop does not touch it again');
});

serial('killed, then its interfaces taken by a daemon of another state directory: that one hands back what they had before the first took them, and the first, started again, leaves them alone', async (t) => {
  const { lab, dir, ns, peer, config, before } = setup(t, 'lx');
  const a = await startWdp(lab, ns, dir, config);
  t.is((await stopWdp(a, 'SIGKILL')).signal, 'SIGKILL');
  taken(t, ns);   // (what the killed daemon left)
  // another state directory, the same run directory (one per node): up keeps the MAC it finds,
  // pod sets another
  const b = {
    ...config, stateDir: join(dir, 'state-b'), api: { listen: `unix:${join(dir, 'b.sock')}`, healthz: 'off' },
    ports: [{ ...config.ports[0], mac: undefined }, { ...config.ports[1], mac: '02:00:00:cc:00:02' }],
  };
  const d = await startWdp(lab, ns, dir, b, 'b.json');
  t.is(snapshot(ns, 'pod0').mac, '02:00:00:cc:00:02');
  t.is((await stopWdp(d)).code, 0, d.log().slice(-3000));
  asBefore(t, ns, before, 'after the other daemon\'s stop');
  t.regex(d.log(), /an interface a wdp did not hand back \(killed\): what it had before that wdp took it is what it gets back/);
  t.deepEqual(records(dir), [], 'no hand-back record left');
  t.false(existsSync(join(config.stateDir, 'link-handback.json')), 'nothing in the first daemon\'s state directory');
  // the operator uses up0 now; the first daemon comes back on another interface
  must('ip', ['-n', ns, 'link', 'set', 'dev', 'up0', 'up']);
  lab.veth(ns, 'up1', peer, 'up1p');
  const a2 = await startWdp(lab, ns, dir, { ...config, ports: [{ name: 'up', type: 'afpacket', ifname: 'up1', role: 'uplink', gateways: ['10.77.0.1'] }] }, 'a2.json');
  const s = snapshot(ns, 'up0');
  t.true(s.up, 'up0 left up, as the operator set it');
  t.is(s.mac, UP0_MAC);
  t.deepEqual(snapshot(ns, 'pod0'), before.pod0, 'pod0 left as it was');
  t.is((await stopWdp(a2)).code, 0, a2.log().slice(-3000));
});

serial('an older wdp\'s state-directory file: its entries count for interfaces its ports left, and it is removed', async (t) => {
  const { lab, dir, ns, peer, config, before } = setup(t, 'lu');
  lab.veth(ns, 'up1', peer, 'up1p');
  const up1 = { name: 'up', type: 'afpacket', ifname: 'up1', role: 'uplink', gateways: ['10.77.0.1'] };
  const a = await startWdp(lab, ns, dir, config);
  await stopWdp(a, 'SIGKILL');
  // what an older wdp, killed, left: its entries in <stateDir>/link-handback.json, no record beside the claims
  const dirOfRecords = join(runDirOf(dir), 'interfaces');
  const interfaces = records(dir).map((n) => JSON.parse(readFileSync(join(dirOfRecords, n), 'utf8')).saved);
  for (const n of records(dir)) rmSync(join(dirOfRecords, n));
  t.is(interfaces.length, 2);
  writeFileSync(join(config.stateDir, 'link-handback.json'), JSON.stringify({ interfaces }));
  // started again with pod0 and another uplink: up0 is put back at the start, pod0 at the stop
  const d = await startWdp(lab, ns, dir, { ...config, ports: [up1, config.ports[1]] }, 'pod.json');
  t.deepEqual(snapshot(ns, 'up0'), before.up0, 'up0 put back at the start');
  t.false(existsSync(join(config.stateDir, 'link-handback.json')), 'the older file removed');
  t.is(records(dir).length, 2, 'pod0\'s entry is its record now (and up1 has one)');
  t.is((await stopWdp(d)).code, 0, d.log().slice(-3000));
  t.deepEqual(snapshot(ns, 'pod0'), before.pod0, 'pod0 after the stop: as before the first start');
  // an older file whose interfaces were handed back since (up0 then set up by hand): not put back over them
  writeFileSync(join(config.stateDir, 'link-handback.json'), JSON.stringify({ interfaces }));
  must('ip', ['-n', ns, 'link', 'set', 'dev', 'up0', 'up']);
  const d2 = await startWdp(lab, ns, dir, { ...config, ports: [up1] }, 'up1.json');
  t.true(snapshot(ns, 'up0').up, 'up0 left up');
  t.deepEqual(snapshot(ns, 'pod0'), before.pod0, 'pod0 left as it was');
  t.false(existsSync(join(config.stateDir, 'link-handback.json')), 'the older file removed');
  t.is((await stopWdp(d2)).code, 0, d2.log().slice(-3000));
  t.deepEqual(records(dir), [], 'no hand-back record left');
});
