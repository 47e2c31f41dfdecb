// The python relay's AF_PACKET port (src/daemon/relay-port.ts) takes, of the unicast frames, only
// those addressed to its own MAC (the one it answers ARP/ND with, `mac`) — not the kernel's idea
// of the interface's (PACKET_OTHERHOST), which a MAC changed under the port would make another
// host's; broadcast and multicast arrive. The same rule as the native ports' (native-afpacket,
// native-afxdp: otherHost false).
import test from 'ava';
import { rootGate } from './lib/root-gate.js';
import { NetnsLab } from '../dist/src/netns.js';
import { RelayPort } from '../dist/src/daemon/relay-port.js';
import { AfPacketPort, nativeAvailable } from '../dist/src/ports/native.js';
import { makeArea, putTx, getRx } from './lib/native-area.js';
import { numberedFrame } from './lib/frames.js';

const gate = rootGate(test, { tools: ['python3'] });
const ETHERTYPE = 0x88b5;
const MAC_A = '02:0a:00:00:00:01', MAC_B = '02:0b:00:00:00:02', ADVERTISED = '02:0c:00:00:00:03';

gate.serial('relay AF_PACKET port: unicast frames to its own MAC arrive (also when the interface has another), to any other MAC not; broadcast and multicast arrive', async (t) => {
  if (!nativeAvailable()) { t.pass('the native addon (the sender here) is not built'); return; }
  const lab = new NetnsLab('rlo');
  const close = [];
  t.teardown(async () => { for (const c of close) c(); await lab.destroy(); });
  const nsA = lab.namespace('a'), nsB = lab.namespace('b');
  lab.veth(nsA, 'va', nsB, 'vb', { macA: MAC_A, macB: MAC_B });
  const a = new AfPacketPort({ ifname: 'va', netns: nsA, index: 0 });
  close.push(() => a.close());
  const relay = new RelayPort({ name: 'b', index: 1, kind: 'afpacket', ifname: 'vb', mac: ADVERTISED, netns: nsB });
  close.push(() => relay.close());
  await relay.ready;
  const dsts = [ADVERTISED, MAC_B, '02:0d:00:00:00:04', 'ff:ff:ff:ff:ff:ff', '33:33:00:00:00:01'];
  const tx = makeArea();
  dsts.forEach((dst, k) => putTx(tx, k, numberedFrame(80, k, { dst, src: MAC_A, ethertype: ETHERTYPE }), 0));
  t.is(a.txBurst(tx, dsts.length), dsts.length);
  const got = [], rx = makeArea();
  for (let deadline = Date.now() + 3000; Date.now() < deadline && got.length < 3;) {
    await new Promise((r) => setTimeout(r, 20));   // the relay's frames come on the event loop
    const n = relay.rxBurst(rx, 0, 64);
    for (let i = 0; i < n; i++) got.push(getRx(rx, i));
  }
  await new Promise((r) => setTimeout(r, 200));
  const n = relay.rxBurst(rx, 0, 64);
  for (let i = 0; i < n; i++) got.push(getRx(rx, i));
  const seqs = got.filter((f) => f.len >= 18 && f.bytes[12] === ETHERTYPE >> 8 && f.bytes[13] === (ETHERTYPE & 0xff))
    .map((f) => new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(14)).sort();
  t.deepEqual(seqs, [0, 3, 4], `of ${dsts.join(', ')}`);
});
