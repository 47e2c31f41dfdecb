// A port's interface that leaves the namespace and comes back under the same name and ifindex (a
// moved interface keeps a free ifindex) between two link checks: its AF_PACKET or AF_XDP socket
// was unbound for good when it left (the XDP program, attached with a BPF link, stays), so the
// port received nothing while name and ifindex matched. The link check sees none of an AF_PACKET
// port's sockets bound to it (packet-bindings.ts), or an AF_XDP port's sockets report that the
// kernel unbound them (stats.unboundQueues: the socket error ENETDOWN), or a python relay's
// helper ended on that error (stats.unboundQueues too), closes the port and opens it again. The daemon runs in this process, its ports in a network namespace the test makes
// (DaemonOptions.portNetns), its API on a unix socket; raw broadcast frames from the peer are the
// traffic counted.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pino from 'pino';
import { canUseNetns, NetnsLab } from '../dist/src/netns.js';
import { parseConfig } from '../dist/src/daemon/config.js';
import { startDaemon } from '../dist/src/daemon/daemon.js';

const root = canUseNetns();

for (const [type, tag, kind, backend] of [['afpacket', 'rt', 'native-afpacket'], ['afxdp', 'rx', 'native-afxdp'], ['afpacket', 'rr', 'relay-afpacket', 'relay']]) {
(root ? test : test.skip)(`an interface moved out of the namespace and back (same name and ifindex) is reopened: its ${backend ?? 'native'} ${type} port receives again${root ? '' : ' (skipped: needs root and ip: the ports go in a network namespace)'}`, async (t) => {
  const lab = new NetnsLab(tag);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-roundtrip-'));
  let daemon;
  t.teardown(async () => { await daemon?.stop().catch(() => undefined); await lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const ns = lab.namespace('dp'), peer = lab.namespace('peer'), away = lab.namespace('away');
  const ifname = `${tag}pod0`;
  lab.veth(ns, ifname, peer, 'eth0');
  const cfg = parseConfig({
    node: { name: 'n1', addresses: ['192.168.100.2'] }, stateDir: join(dir, 'state'), workers: 1,
    api: { listen: `unix:${join(dir, 'api.sock')}`, healthz: 'off' },
    ports: [{ name: 'pods', type, ifname, role: 'pod', gateways: ['10.244.0.1'] }],
  });
  daemon = await startDaemon(cfg, { logger: pino({ level: 'silent' }), portNetns: ns, ...(backend ? { portBackend: backend } : {}) });
  await daemon.settled();
  const ifindex = () => Number(lab.exec(ns, 'cat', [`/sys/class/net/${ifname}/ifindex`]).stdout.trim());
  const port = async () => (await daemon.portManager.list()).find((p) => p.name === 'pods');
  /** Whether frames the peer sends (broadcast, raw) reach the port: its rx count grows. */
  const SEND = "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0)); s.send(b'\\xff' * 6 + b'\\x02' * 6 + b'\\x88\\xb5' + b'wdp' * 20)";
  const receives = async () => {
    const before = (await port()).stats?.rxPackets ?? 0;
    for (let i = 0; i < 10; i++) {
      lab.exec(peer, 'python3', ['-c', SEND]);
      await new Promise((r) => setTimeout(r, 100));
      if (((await port()).stats?.rxPackets ?? 0) > before) return true;
    }
    return (await port()).stats;
  };
  t.is((await port()).kind, kind);
  t.is(await receives(), true, 'the port receives before');
  const was = ifindex();
  lab.moveLink(ns, ifname, away);
  lab.moveLink(away, ifname, ns);
  lab.exec(ns, 'ip', ['link', 'set', ifname, 'up']);
  t.is(ifindex(), was, 'back under the same ifindex');
  // the link check (also every 2 s on its own) closes the port, whose socket is bound to nothing,
  // and opens it again on the interface, there under its name
  for (let i = 0; i < 3; i++) await daemon.portManager.checkLinks();
  t.is((await port()).state, 'up');
  t.is((await port()).kind, kind);
  t.is(await receives(), true, 'the port receives again');
});
}
