// The host port's TAP MAC changed under the daemon, in process: the link check (PortManager
// checkLinks) sets it back to the MAC the TAP was created with (its uplink's); when it cannot be
// set back, the node addresses — static neighbours behind the host port — are programmed with the
// MAC the TAP has, so the node's frames still reach its stack. The daemon runs in this process,
// its uplink veth and host TAP in a network namespace the test makes (DaemonOptions.portNetns),
// its API on a unix socket. No packets are sent; the refusal of the MAC change is a stand-in `ip`
// first in PATH for the duration of one link check.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';

const root = canUseNetns();
const NODE = '192.168.100.2';

/** The daemon in process with its uplink veth and host TAP in a namespace the test makes. */
async function setUp(t, tag) {
  const lab = new NetnsLab(tag);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-hostmac-'));
  const PATH = process.env.PATH;
  const s = { lab, dir, daemon: undefined };
  t.teardown(async () => { process.env.PATH = PATH; await s.daemon?.stop().catch(() => undefined); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = s.ns = lab.namespace('dp'), peer = s.peer = lab.namespace('peer');
  lab.veth(ns, `${tag}up0`, peer, 'eth0');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: [NODE] }, stateDir: join(dir, 'state'), workers: 1,
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [
      { name: 'uplink', type: 'afpacket', ifname: `${tag}up0`, role: 'uplink', gateways: [] },
      { name: 'host', type: 'tap', ifname: `wdp${tag}0`, role: 'host', gateways: ['10.244.0.1'], hostAddresses: [`${NODE}/24`] },
    ],
  });
  s.daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
  await s.daemon.settled();
  s.macNow = () => /link\/ether ([0-9a-f:]{17})/.exec(lab.exec(ns, 'ip', ['-o', 'link', 'show', 'dev', `wdp${tag}0`]).stdout)?.[1];
  s.nodeNeighbour = () => s.daemon.nodeConfig().spec.neighbours.find((n) => n.address === NODE)?.mac;
  /** The NodeConfig the control plane has programmed. */
  s.programmed = () => new Promise((resolve, reject) => {
    http.get({ socketPath: join(dir, 'api.sock'), path: '/api/v1/nodeconfig' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
  return s;
}

const title = (what) => `${what}${root ? '' : ' (skipped: needs root and ip: the ports go in a network namespace)'}`;

(root ? test.serial : test.skip)(title('a host port TAP MAC changed under the daemon is set back; one that cannot be set back is followed by the node addresses\' neighbours'), async (t) => {
  const s = await setUp(t, 'hm');
  const { lab, ns, dir, daemon, macNow, nodeNeighbour } = s;
  const PATH = process.env.PATH;
  const created = macNow();
  t.is(created, lab.mac(ns, 'hmup0'), 'the host TAP has its uplink\'s MAC');
  t.is(nodeNeighbour(), created, 'the node address is a neighbour behind that MAC');

  lab.exec(ns, 'ip', ['link', 'set', 'dev', 'wdphm0', 'address', '02:00:5e:10:42:01']);
  await daemon.portManager.checkLinks();
  t.is(macNow(), created, 'set back');
  t.is(nodeNeighbour(), created);

  // an `ip` that refuses to change this TAP's MAC, for one link check
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const realIp = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(bin, 'ip'), `#!/bin/sh\ncase "$*" in *"link set dev wdphm0 address"*) echo "RTNETLINK answers: Operation not permitted" >&2; exit 2;; esac\nexec ${realIp} "$@"\n`);
  chmodSync(join(bin, 'ip'), 0o755);
  lab.exec(ns, 'ip', ['link', 'set', 'dev', 'wdphm0', 'address', '02:00:5e:10:42:02']);
  process.env.PATH = `${bin}:${PATH}`;
  try { await daemon.portManager.checkLinks(); } finally { process.env.PATH = PATH; }
  t.is(macNow(), '02:00:5e:10:42:02', 'not set back');
  t.is(nodeNeighbour(), '02:00:5e:10:42:02', 'the node address follows the MAC the TAP has');
  await daemon.settled();
  t.is((await s.programmed()).spec.neighbours.find((n) => n.address === NODE)?.mac, '02:00:5e:10:42:02', 'and is programmed so');
});

(root ? test.serial : test.skip)(title('an uplink reopened with another MAC (its veth re-created) gives the host port its new MAC, and the node addresses follow'), async (t) => {
  const s = await setUp(t, 'hu');
  const { lab, ns, peer, daemon, macNow, nodeNeighbour } = s;
  const first = macNow();
  t.is(first, lab.mac(ns, 'huup0'));
  lab.exec(ns, 'ip', ['link', 'del', 'huup0']);
  await daemon.portManager.checkLinks();   // gone: closed
  lab.veth(ns, 'huup0', peer, 'eth0');
  const moved = lab.mac(ns, 'huup0');
  t.not(moved, first, 'a re-created veth has another MAC');
  await daemon.portManager.checkLinks();   // back: reopened
  t.is(macNow(), moved, 'the host TAP has the uplink\'s MAC now');
  t.is(nodeNeighbour(), moved);
  await daemon.settled();
  t.is((await s.programmed()).spec.neighbours.find((n) => n.address === NODE)?.mac, moved, 'and is programmed so');
});
