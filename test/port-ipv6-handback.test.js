// An interface taken as an AF_PACKET port is handed back with its IPv6 (src/daemon/ipv6-handback.ts):
// the port turns IPv6 off on it (disable_ipv6=1 takes every IPv6 address — static ones, the
// link-local — and every IPv6 route through it), and a stop, a port removed or a restart after a
// kill used to leave it so: IPv4 as it was, IPv6 gone. Now each puts back disable_ipv6, the static
// addresses with their flags, the link-local and the routes through it (any table), IPv4 untouched.
// `wdp start` runs in a network namespace this test makes, on a veth whose other end is in a
// second one; its API on a unix socket.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, NetnsLab, must } from '../dist/src/netns.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { startWdp as startDaemonProcess, stopWdp, runDirOf, wdpStartArgv } from './lib/wdp-process.js';

const WDP = new URL('../bin/wdp.js', import.meta.url).pathname;
const ROOT = new URL('../', import.meta.url).pathname;
const root = canUseNetns();
const serial = root ? test.serial : test.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A namespace with veth `ifname` (its peer in another namespace) configured as an operator's
 * interface: IPv4 and IPv6 addresses (one with flags), IPv6 routes in the main table and another. */
function interfaceWithBoth(lab, ns, peer, ifname) {
  lab.veth(ns, ifname, peer, `${ifname}p`);
  const ipn = (...args) => must('ip', ['-n', ns, ...args]);
  ipn('addr', 'add', '10.77.0.1/24', 'dev', ifname);
  ipn('-6', 'addr', 'add', 'fd00:77::1/64', 'dev', ifname, 'nodad');
  ipn('-6', 'addr', 'add', 'fd00:78::1/64', 'dev', ifname, 'nodad', 'noprefixroute');
  ipn('-4', 'route', 'add', '10.78.0.0/16', 'via', '10.77.0.2', 'dev', ifname);
  ipn('-6', 'route', 'add', 'fd00:79::/48', 'via', 'fd00:77::2', 'dev', ifname, 'metric', '50');
  ipn('-6', 'route', 'add', 'fd00:7a::/48', 'dev', ifname, 'table', '100', 'proto', 'static');
}

/** What the interface has: IPv4 and IPv6 addresses (with their configurable flags), routes
 * through it (all tables, both families), the IPv6 sysctls. */
function snapshot(ns, ifname) {
  const j = (args) => JSON.parse(must('ip', ['-n', ns, '-j', ...args]) || '[]');
  const addrs = (fam) => (j([fam, 'addr', 'show', 'dev', ifname])[0]?.addr_info ?? [])
    .map((a) => `${a.local}/${a.prefixlen}${['nodad', 'noprefixroute'].filter((f) => a[f]).map((f) => ` ${f}`).join('')}`).sort();
  const routes = (fam) => j([fam, 'route', 'show', 'table', 'all', 'dev', ifname])
    .map((r) => `${r.type ?? 'unicast'} ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} table ${r.table ?? 'main'} metric ${r.metric ?? '-'} proto ${r.protocol ?? 'boot'}`).sort();
  const sysctl = (k) => must('ip', ['netns', 'exec', ns, 'sysctl', '-n', `net.ipv6.conf.${ifname}.${k}`]).trim();
  return {
    v4: addrs('-4'), v6: addrs('-6'), routes4: routes('-4'), routes6: routes('-6'),
    sysctls: Object.fromEntries(['disable_ipv6', 'addr_gen_mode', 'accept_ra', 'autoconf'].map((k) => [k, sysctl(k)])),
  };
}

/** `wdp start` in `ns` with `config`; resolves once its API listens. `readOnlySys`: with /proc/sys
 * read-only, as an unprivileged container (the DaemonSet's) has it. */
/** wdp started as lib/wdp-process.js starts it; `readOnlySys`: with /proc/sys read-only in a mount
 * namespace of its own (unshare, then sh execs the daemon: signals reach it). */
const startWdp = (lab, ns, dir, config, name = 'wdp.yaml', { readOnlySys = false } = {}) => startDaemonProcess(lab, ns, dir, config, name,
  readOnlySys ? { prefix: ['unshare', '-m', 'sh', '-c', 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$0" "$@"'] } : {});


function setup(t, kind) {
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-v6back-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp'), peer = lab.namespace('pe');
  const config = {
    node: { name: 'n1', addresses: ['10.77.0.1'] }, stateDir: join(dir, 'state'),
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [{ name: 'up', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['10.77.0.1'] }],
  };
  return { lab, dir, ns, peer, config };
}

serial(`an interface with IPv4 and IPv6 taken by wdp start has both again after the stop${root ? '' : ' (skipped: needs root and ip)'}`, async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vh');
  interfaceWithBoth(lab, ns, peer, 'up0');
  const before = snapshot(ns, 'up0');
  t.true(before.v6.includes('fd00:78::1/64 nodad noprefixroute'), JSON.stringify(before));
  t.true(before.v6.some((a) => a.startsWith('fe80::')), 'a link-local before');
  t.true(before.routes6.some((r) => r.startsWith('unicast fd00:7a::/48 via') || r.startsWith('unicast fd00:7a::/48 table 100')), JSON.stringify(before.routes6));

  const d = await startWdp(lab, ns, dir, config);
  const during = snapshot(ns, 'up0');
  t.is(during.sysctls.disable_ipv6, '1', 'IPv6 off while it is a port');
  t.deepEqual(during.v6, [], 'no IPv6 address while it is a port');
  t.deepEqual(during.v4, before.v4, 'IPv4 untouched');

  const r = await stopWdp(d);
  t.is(r.code, 0, d.log().slice(-3000));
  t.regex(d.log(), /interface handed back with its IPv6 configuration/);
  t.deepEqual(snapshot(ns, 'up0'), before, 'after the stop: as before the start');
});

serial('killed while it ran, then started and stopped again: the interface gets what it had before the first start, not "IPv6 off"', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vk');
  interfaceWithBoth(lab, ns, peer, 'up0');
  const before = snapshot(ns, 'up0');
  const d1 = await startWdp(lab, ns, dir, config);
  const r1 = await stopWdp(d1, 'SIGKILL');
  t.is(r1.signal, 'SIGKILL');
  t.is(snapshot(ns, 'up0').sysctls.disable_ipv6, '1', 'a killed daemon leaves IPv6 off');
  const d2 = await startWdp(lab, ns, dir, config);
  t.is((await stopWdp(d2)).code, 0, d2.log().slice(-3000));
  t.deepEqual(snapshot(ns, 'up0'), before);
});

serial('killed while it ran, then started without that port: the start gives the interface its IPv6 back', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vs');
  interfaceWithBoth(lab, ns, peer, 'up0');
  lab.veth(ns, 'up1', peer, 'up1p');
  const before = snapshot(ns, 'up0');
  const d1 = await startWdp(lab, ns, dir, config);
  await stopWdp(d1, 'SIGKILL');
  const other = { ...config, node: { name: 'n1', addresses: ['10.77.1.1'] }, ports: [{ name: 'up', type: 'afpacket', ifname: 'up1', role: 'uplink', gateways: ['10.77.1.1'] }] };
  const d2 = await startWdp(lab, ns, dir, other, 'other.yaml');
  t.deepEqual(snapshot(ns, 'up0'), before, 'up0 as before, while the daemon runs on up1');
  t.is((await stopWdp(d2)).code, 0, d2.log().slice(-3000));
});

serial('a port added at runtime and removed: its interface has its IPv6 back', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vr');
  lab.veth(ns, 'up0', peer, 'up0p');
  interfaceWithBoth(lab, ns, peer, 'pod0');
  const before = snapshot(ns, 'pod0');
  const d = await startWdp(lab, ns, dir, config);
  const cli = (...args) => spawnSync(process.execPath, [WDP, '--server', `unix:${join(dir, 'api.sock')}`, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  const add = cli('port', 'add', '--name', 'pod0', '--type', 'afpacket', '--ifname', 'pod0', '--gateway', '10.244.0.1');
  t.is(add.status, 0, add.stderr);
  t.is(snapshot(ns, 'pod0').sysctls.disable_ipv6, '1', 'IPv6 off while it is a port');
  const rm = cli('port', 'remove', 'pod0');
  t.is(rm.status, 0, rm.stderr);
  t.deepEqual(snapshot(ns, 'pod0'), before, 'after the remove: as before the add');
  t.is((await stopWdp(d)).code, 0, d.log().slice(-3000));
  t.deepEqual(snapshot(ns, 'pod0'), before, 'the stop does not touch it again');
});

serial('with /proc/sys read-only (the DaemonSet\'s container): IPv6 is turned off through netlink (addrgenmode none, flushes) and put back the same way at the stop', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vo');
  interfaceWithBoth(lab, ns, peer, 'up0');
  const before = snapshot(ns, 'up0');
  const d = await startWdp(lab, ns, dir, config, 'wdp.yaml', { readOnlySys: true });
  const during = snapshot(ns, 'up0');
  t.is(during.sysctls.disable_ipv6, '0', 'disable_ipv6 could not be written');
  t.is(during.sysctls.addr_gen_mode, '1', 'addrgenmode none');
  t.deepEqual(during.v6, [], 'no IPv6 address while it is a port');
  // (the fallback flushes the main table's: a route of another table stays, as it always did)
  t.deepEqual(during.routes6.filter((r) => / table main /.test(r)), [], 'no IPv6 route of the main table through it');
  const r = await stopWdp(d);
  t.is(r.code, 0, d.log().slice(-3000));
  t.deepEqual(snapshot(ns, 'up0'), before, 'after the stop: as before the start');
});

/** `wdp start` in `ns` that must fail: its exit and output. */
async function failingStart(lab, ns, dir, config) {
  const file = join(dir, 'failing.yaml');
  writeFileSync(file, JSON.stringify(config));
  const [cmd, ...args] = wdpStartArgv(file, runDirOf(dir));
  return lab.execAsync(ns, cmd, args, { timeoutMs: 60_000 });
}
// (the system's nft: under npx, PATH starts with node_modules/.bin, whose `nft` is another tool's
// and prints nothing — the checks below would pass whatever the table holds)
const dropChains = (lab, ns) => lab.exec(ns, systemTool('nft') ?? 'nft', ['list', 'table', 'netdev', 'wdp']).stdout;

serial('a start refused for missing node links names every one of them and leaves the other ports\' interfaces untouched', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vm');
  interfaceWithBoth(lab, ns, peer, 'pod0');
  const before = snapshot(ns, 'pod0');
  const r = await failingStart(lab, ns, dir, {
    ...config, ports: [
      { name: 'pod', type: 'afpacket', ifname: 'pod0', role: 'pod', gateways: ['10.244.0.1'] },
      { name: 'up', type: 'afpacket', ifname: 'nope0', role: 'uplink' },
      { name: 'up2', type: 'afpacket', ifname: 'nope1', role: 'uplink' },
    ],
  });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /port "up" \(role uplink\): interface "nope0" does not exist/);
  t.regex(r.stderr, /port "up2" \(role uplink\): interface "nope1" does not exist/);
  t.deepEqual(snapshot(ns, 'pod0'), before, 'pod0 untouched');
  t.notRegex(dropChains(lab, ns), /in_pod0/);
});

serial('a start refused for a port that cannot be prepared hands back the ports prepared before it', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'vp');
  lab.veth(ns, 'up0', peer, 'up0p');
  interfaceWithBoth(lab, ns, peer, 'pod0');
  must('ip', ['-n', ns, 'tuntap', 'add', 'dev', 'tun0', 'mode', 'tun']);   // no Ethernet: refused by its port
  const before = snapshot(ns, 'pod0');
  const r = await failingStart(lab, ns, dir, {
    ...config, ports: [
      config.ports[0],
      { name: 'pod', type: 'afpacket', ifname: 'pod0', role: 'pod', gateways: ['10.244.0.1'] },
      { name: 'tun', type: 'afpacket', ifname: 'tun0', role: 'pod', gateways: ['10.244.0.1'] },
    ],
  });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /interface "tun0" is not an Ethernet interface/);
  t.deepEqual(snapshot(ns, 'pod0'), before, 'pod0 as before the start');
  t.notRegex(dropChains(lab, ns), /in_(pod0|up0)/);
});
