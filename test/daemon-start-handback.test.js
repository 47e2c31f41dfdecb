// A `wdp start` that fails after its ports took their interfaces (an nftables netdev drop chain keeps
// the kernel off each, IPv6 off on it: src/daemon/port-manager.ts) hands them back before it exits,
// as a stop does (src/daemon/daemon.ts, boot.handBack): drop chain removed, IPv6 addresses and routes
// back, exit code and first error as before. Before, such a start left the interfaces dead for the
// kernel while nothing forwarded, until the next start. A start refused because another daemon
// holds the state directory's lock takes nothing from that daemon, not even for a moment (watched
// with `nft monitor` and `ip monitor` for the whole refused start). Cases: a corrupt store, a worker
// that cannot open its port, the state lock held; the API's address in use is refused before the
// ports take anything (test/daemon-port-claim.test.js has the other daemon's side of it).
// `wdp start` runs in a network namespace this test makes, on a veth whose other end is in a second.
import test from 'ava';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, NetnsLab, must } from '../dist/src/netns.js';
import { systemTool } from '../dist/src/util/system-tool.js';
import { startWdp, runDirOf, wdpStartArgv } from './lib/wdp-process.js';
import { within } from './lib/bounded-wait.js';

// (the system's nft: under npx, PATH starts with node_modules/.bin, whose `nft` is another tool's)
const NFT = systemTool('nft');
const root = canUseNetns() && NFT !== null;
const serial = root ? test.serial : test.skip;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Veth `ifname` in `ns` (peer in `peer`) with IPv4 and IPv6 addresses and an IPv6 route. */
function operatorInterface(lab, ns, peer, ifname) {
  lab.veth(ns, ifname, peer, `${ifname}p`);
  const ipn = (...args) => must('ip', ['-n', ns, ...args]);
  ipn('addr', 'add', '10.77.0.1/24', 'dev', ifname);
  ipn('-6', 'addr', 'add', 'fd00:77::1/64', 'dev', ifname, 'nodad');
  ipn('-6', 'route', 'add', 'fd00:79::/48', 'via', 'fd00:77::2', 'dev', ifname, 'metric', '50');
  must('ip', ['-n', peer, 'addr', 'add', '10.77.0.2/24', 'dev', `${ifname}p`]);
}

/** The interface's addresses, routes and IPv6 sysctls. */
function snapshot(ns, ifname) {
  const j = (args) => JSON.parse(must('ip', ['-n', ns, '-j', ...args]) || '[]');
  const addrs = (fam) => (j([fam, 'addr', 'show', 'dev', ifname])[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort();
  const routes = (fam) => j([fam, 'route', 'show', 'table', 'all', 'dev', ifname]).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} table ${r.table ?? 'main'}`).sort();
  const sysctl = (k) => must('ip', ['netns', 'exec', ns, 'sysctl', '-n', `net.ipv6.conf.${ifname}.${k}`]).trim();
  return { v4: addrs('-4'), v6: addrs('-6'), routes4: routes('-4'), routes6: routes('-6'), disableIpv6: sysctl('disable_ipv6'), addrGenMode: sysctl('addr_gen_mode') };
}
/** The wdp netdev table of `ns` ('' when there is none). */
const dropChains = (lab, ns) => lab.exec(ns, NFT, ['list', 'table', 'netdev', 'wdp']).stdout;

function setup(t, kind) {
  const lab = new NetnsLab(kind);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-start-handback-'));
  t.teardown(async () => { await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp'), peer = lab.namespace('pe');
  operatorInterface(lab, ns, peer, 'up0');
  const config = {
    node: { name: 'n1', addresses: ['10.77.0.1'] }, stateDir: join(dir, 'state'),
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [{ name: 'up', type: 'afpacket', ifname: 'up0', role: 'uplink', gateways: ['10.77.0.1'] }],
  };
  return { lab, dir, ns, peer, config };
}

/** `wdp start` in `ns` that must fail: its exit and output. */
async function failingStart(lab, ns, dir, config) {
  const file = join(dir, 'failing.json');
  writeFileSync(file, JSON.stringify(config));
  const [cmd, ...args] = wdpStartArgv(file, runDirOf(dir));
  return lab.execAsync(ns, cmd, args, { timeoutMs: 90_000 });
}


/** Whether the node's gateway address is answered for (ARP) on the link: from the peer, with the
 * kernel kept off up0, only wdp answers. */
async function gatewayAnswered(lab, peer) {
  lab.exec(peer, 'ip', ['neigh', 'flush', 'dev', 'up0p']);
  for (let i = 0; i < 20; i++) {
    // (a datagram to it: the peer's kernel resolves the address first)
    lab.exec(peer, 'python3', ['-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.77.0.1", 9))']);
    if (/lladdr/.test(lab.exec(peer, 'ip', ['neigh', 'show', '10.77.0.1', 'dev', 'up0p']).stdout)) return true;
    await sleep(200);
  }
  return false;
}

/** The failed start: exit 1, `first` its stderr's error line, the interface as before the start. */
function handedBack(t, lab, ns, r, before, first) {
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, first);
  t.is(r.stderr.trim().split('\n').filter((l) => l.startsWith('wdp start:')).length, 1, 'one error line');
  t.regex(r.stdout, /the start failed: its ports' interfaces are handed back to the kernel/);
  t.notRegex(dropChains(lab, ns), /in_up0/, 'no drop chain on up0');
  t.deepEqual(snapshot(ns, 'up0'), before, 'up0 as before the start');
}

serial(`a start that fails on a corrupt store hands the interfaces back${root ? '' : ' (skipped: needs root, ip and nft)'}`, async (t) => {
  const { lab, dir, ns, config } = setup(t, 'hc');
  const before = snapshot(ns, 'up0');
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // an older wdp's state file, unreadable and without a backup: the store refuses (StateError)
  writeFileSync(join(config.stateDir, 'state.json'), '{"format":"wdp-desired-state","vers');
  const r = await failingStart(lab, ns, dir, config);
  handedBack(t, lab, ns, r, before, /^wdp start: cannot start: .*state\.json is not valid JSON/m);
});

serial('a start whose API address is in use is refused before it takes the interfaces', async (t) => {
  const { lab, dir, ns, config } = setup(t, 'ha');
  const before = snapshot(ns, 'up0');
  // something else listens on the API's address in the daemon's namespace
  const holder = lab.spawn(ns, 'python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",19440))\ns.listen()\nprint("up",flush=True)\ntime.sleep(300)']);
  let said = '';
  holder.stdout.on('data', (d) => { said += d; });
  for (let i = 0; i < 100 && !said.includes('up'); i++) await sleep(100);
  t.true(said.includes('up'), 'the address is taken');
  const r = await failingStart(lab, ns, dir, { ...config, api: { listen: '127.0.0.1:19440', healthz: 'off' } });
  holder.kill('SIGKILL');
  // (checked first thing, src/daemon/listen-check.ts: nothing to hand back)
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^wdp start: cannot start: .*api\.listen 127\.0\.0\.1:19440: address in use/m);
  t.notRegex(r.stdout, /handed back/);
  t.notRegex(dropChains(lab, ns), /in_up0/, 'no drop chain on up0');
  t.deepEqual(snapshot(ns, 'up0'), before, 'up0 as before the start');
});

serial('a start that fails because a worker cannot open a port hands the interfaces back', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'hw');
  // a device of the TAP port's name that is no TAP: the worker's open fails (the config check and
  // the ports' preparation pass: a TAP is the worker's to create)
  lab.veth(ns, 'tapx0', peer, 'tapx0p');
  const before = snapshot(ns, 'up0');
  const r = await failingStart(lab, ns, dir, { ...config, ports: [...config.ports, { name: 'pods', type: 'tap', ifname: 'tapx0', role: 'pod', gateways: ['10.244.0.1'] }] });
  handedBack(t, lab, ns, r, before, /^wdp start: cannot start: .*tapx0/m);
});

serial('a start refused because a running daemon holds the state directory takes nothing from it, not even briefly', async (t) => {
  const { lab, dir, ns, peer, config } = setup(t, 'hl');
  const d = await startWdp(lab, ns, dir, config);
  const during = snapshot(ns, 'up0');
  t.is(during.disableIpv6, '1', 'IPv6 off while it is the running daemon\'s port');
  t.regex(dropChains(lab, ns), /in_up0/);
  t.true(await gatewayAnswered(lab, peer), 'the running daemon answers for its gateway');

  // every change of the ruleset and of the addresses in the namespace while the second start runs
  const watch = (cmd, args) => {
    const c = lab.spawn(ns, cmd, args);
    let out = '';
    c.stdout.on('data', (x) => { out += x; });
    return { stop: () => c.kill('SIGKILL'), out: () => out };
  };
  const nftWatch = watch(NFT, ['monitor']), ipWatch = watch('ip', ['monitor', 'address', 'route', 'netconf']);
  await sleep(500);   // (the monitors subscribed)
  const r = await failingStart(lab, ns, dir, config);
  await sleep(500);
  const nftSeen = nftWatch.out(), ipSeen = ipWatch.out();
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^wdp start: cannot start: the state directory .* is in use by another wdp/m);
  t.notRegex(r.stdout, /handed back/, 'the refused start hands nothing back');
  t.is(nftSeen.trim(), '', 'no change to the ruleset during the refused start');
  t.is(ipSeen.trim(), '', 'no change to the addresses and routes during the refused start');
  t.deepEqual(snapshot(ns, 'up0'), during, 'up0 as the running daemon has it');
  t.regex(dropChains(lab, ns), /in_up0/, 'its drop chain is still there');
  t.true(await gatewayAnswered(lab, peer), 'the running daemon still answers for its gateway');
  t.is(d.child.exitCode, null, 'the running daemon runs on');

  d.child.kill('SIGTERM');
  const stop = await within(d.exited, 60_000, () => ({ code: 'timeout' }));
  t.is(stop.code, 0, d.log().slice(-3000));
  t.notRegex(dropChains(lab, ns), /in_up0/, 'the stop hands it back');
  // the monitors do see a hand-back (the running daemon's stop): their silence above means something
  for (let i = 0; i < 50 && !(/in_up0/.test(nftWatch.out()) && /fd00:77::1/.test(ipWatch.out())); i++) await sleep(100);
  nftWatch.stop(); ipWatch.stop();
  t.regex(nftWatch.out(), /delete chain netdev wdp in_up0/);
  t.regex(ipWatch.out(), /fd00:77::1/);
});
