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

/** `wdp start` in `ns` with `config`; resolves once its API listens. */
async function startWdp(lab, ns, dir, config, name = 'wdp.yaml') {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config));
  const child = lab.spawn(ns, process.execPath, [WDP, 'start', '--config', file], { cwd: ROOT });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  for (let i = 0; i < 600 && !/control API listening/.test(out) && child.exitCode === null; i++) await sleep(100);
  if (!/control API listening/.test(out)) throw new Error(`the daemon did not come up:\n${out.slice(-3000)}`);
  return { child, exited, log: () => out };
}

async function stopWdp(d, signal = 'SIGTERM') {
  d.child.kill(signal);
  const timeout = sleep(60_000).then(() => ({ code: 'timeout' }));
  return Promise.race([d.exited, timeout]);
}

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
