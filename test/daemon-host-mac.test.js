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

(root ? test : test.skip)(`a host port TAP MAC changed under the daemon is set back; one that cannot be set back is followed by the node addresses' neighbours${root ? '' : ' (skipped: needs root and ip: the ports go in a network namespace)'}`, async (t) => {
  const lab = new NetnsLab('hm');
  const dir = mkdtempSync(join(tmpdir(), 'wdp-hostmac-'));
  const PATH = process.env.PATH;
  let daemon;
  t.teardown(async () => { process.env.PATH = PATH; await daemon?.stop().catch(() => undefined); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp'), peer = lab.namespace('peer');
  lab.veth(ns, 'hmup0', peer, 'eth0');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: [NODE] }, stateDir: join(dir, 'state'), workers: 1,
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [
      { name: 'uplink', type: 'afpacket', ifname: 'hmup0', role: 'uplink', gateways: [] },
      { name: 'host', type: 'tap', ifname: 'wdphm0', role: 'host', gateways: ['10.244.0.1'], hostAddresses: [`${NODE}/24`] },
    ],
  });
  daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns });
  await daemon.settled();
  const macNow = () => /link\/ether ([0-9a-f:]{17})/.exec(lab.exec(ns, 'ip', ['-o', 'link', 'show', 'dev', 'wdphm0']).stdout)?.[1];
  const nodeNeighbour = () => daemon.nodeConfig().spec.neighbours.find((n) => n.address === NODE)?.mac;
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
  const programmed = await new Promise((resolve, reject) => {
    http.get({ socketPath: join(dir, 'api.sock'), path: '/api/v1/nodeconfig' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(JSON.parse(body)));
    }).on('error', reject);
  });
  t.is(programmed.spec.neighbours.find((n) => n.address === NODE)?.mac, '02:00:5e:10:42:02', 'and is programmed so');
});
