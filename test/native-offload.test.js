// Offloaded frames through the native ports, with the kernel's default offloads everywhere
// (nothing turned off with ethtool): pod A sits behind a veth whose other end is an AF_PACKET
// port, pod C behind a TAP port (IFF_VNET_HDR + TUNSETOFFLOAD); this test relays frames between
// the two ports (rxBurst on one, txBurst on the other, as the core would forward them). TCP from
// either pod only works when the ports finish CHECKSUM_PARTIAL checksums and cut TSO super-frames
// into wire segments: multi-MB HTTP transfers in both directions must arrive byte for byte, and
// the ports' counters must show they did that work. Both AF_PACKET ring versions are covered
// (V2 reads super-frames that do not fit its slots from the socket queue). Needs root.
import test from 'ava';
import { createHash } from 'node:crypto';
import * as L from '../dist/assembly/layout.js';
import { NetnsLab } from '../dist/src/netns.js';
import { podBytes } from '../dist/src/demo/pod-bytes.js';
import { AfPacketPort, TapPort, nativeAvailable } from '../dist/src/ports/native.js';
import { rootOnly, destroyLab, makeArea } from './lib/native-area.js';
import { childDone } from './lib/child-done.js';

const { isRoot, rootTest } = rootOnly(test, 'native-offload', 'network namespaces, CAP_NET_ADMIN');
const POD_SERVER = new URL('../dist/src/demo/pod-server.js', import.meta.url).pathname;
const SIZE = 6 << 20;

let lab, nsA, nsB, nsC;
test.before(() => {
  if (!isRoot) return;
  const avail = nativeAvailable();
  if (!avail.ok) throw new Error(`native addon unavailable as root: ${avail.reason}`);
  lab = new NetnsLab('no');
  nsA = lab.namespace('a'); nsB = lab.namespace('b'); nsC = lab.namespace('c');
  lab.veth(nsA, 'eth0', nsB, 'va');
  lab.addr(nsA, 'eth0', '10.9.0.1/24');
});
test.after.always(() => destroyLab(lab));

/** Forwards every frame between the two ports until stop() (a bounded number of ms at most). */
function relay(p0, p1, boundMs) {
  const area = makeArea(256, 2048);
  const dv = () => new DataView(area.memory);
  let running = true;
  const deadline = Date.now() + boundMs;
  const done = (async () => {
    while (running && Date.now() < deadline) {
      let moved = 0;
      for (const [from, to] of [[p0, p1], [p1, p0]]) {
        const n = from.rxBurst(area, 0, 256);
        const d = dv();
        for (let i = 0; i < n; i++) {
          d.setUint16(i * L.DESC_SIZE + L.D_OUT_PORT, to.index, true);
          d.setUint8(i * L.DESC_SIZE + L.D_VERDICT, L.V_FORWARD);
        }
        if (n) to.txBurst(area, n);
        moved += n;
      }
      await new Promise((r) => (moved ? setImmediate(r) : setTimeout(r, 0)));
    }
  })();
  return async () => { running = false; await done; };
}

function sha(b) { return createHash('sha256').update(b).digest('hex'); }

async function transfers(t, ringVersion) {
  const tapName = `tc${ringVersion}`;
  const a = new AfPacketPort({ ifname: 'va', netns: nsB, index: 0, ringVersion });
  // one device MAC for both runs: pod A's neighbour entry for 10.9.0.2 stays right
  const c = new TapPort({ ifname: tapName, netns: nsC, index: 1, deviceMac: '02:00:0a:09:00:02' });
  const stop = relay(a, c, 120_000);
  const server = lab.spawn(nsC, process.execPath, [POD_SERVER, 'pod-c', '--http', '8080']);
  t.teardown(async () => { server.kill('SIGKILL'); await stop(); a.close(); c.close(); });
  lab.addr(nsC, tapName, '10.9.0.2/24');
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('pod server not ready')), 15000);
    server.stdout.on('data', (d) => { out += d; if (out.includes('ready')) { clearTimeout(timer); resolve(); } });
  });

  // C -> A: the TAP hands over TSO super-frames, the veth side receives wire segments
  const down = await lab.execAsync(nsA, 'sh', ['-c', `curl -sS --max-time 60 http://10.9.0.2:8080/bytes/${SIZE} | sha256sum`], { timeoutMs: 90_000 });
  t.is(down.code, 0, down.stderr);
  t.is(down.stdout.split(' ')[0], sha(podBytes(0, SIZE)), 'download arrives byte for byte');

  // A -> C: the veth hands AF_PACKET partial-checksum TSO super-frames
  const up = await lab.execAsync(nsA, 'sh', ['-c', `head -c ${SIZE} /dev/urandom > /tmp/wdp-up-$$ && sha256sum < /tmp/wdp-up-$$ && curl -sS --max-time 60 --data-binary @/tmp/wdp-up-$$ http://10.9.0.2:8080/sink; rm -f /tmp/wdp-up-$$`], { timeoutMs: 90_000 });
  t.is(up.code, 0, up.stderr);
  const [local, remote] = up.stdout.trim().split('\n');
  t.is(remote, `${SIZE} ${local.split(' ')[0]}`, 'upload arrives byte for byte');

  const sa = a.stats(), sc = c.stats();
  t.log(`af_packet v${ringVersion}: ${JSON.stringify(sa)}`);
  t.log(`tap: ${JSON.stringify(sc)}`);
  t.true(sa.gsoFrames > 0 && sa.gsoSegments > sa.gsoFrames, 'the veth delivered super-frames and the port segmented them');
  t.true(sa.csumFinished > 0, 'the veth delivered partial checksums and the port finished them');
  t.true(sc.gsoFrames > 0 && sc.gsoSegments > sc.gsoFrames, 'the TAP delivered super-frames and the port segmented them');
  t.is(sa.offloadErrors + sc.offloadErrors, 0);
}

rootTest('AF_PACKET (TPACKET_V3) and TAP with default offloads: multi-MB TCP both ways, byte-exact', (t) => transfers(t, 3));
rootTest('AF_PACKET (TPACKET_V2) and TAP with default offloads: multi-MB TCP both ways, byte-exact', (t) => transfers(t, 2));

rootTest('UDP GSO (UDP_SEGMENT) super-frames from the veth pod arrive at the TAP pod as separate, valid datagrams', async (t) => {
  const a = new AfPacketPort({ ifname: 'va', netns: nsB, index: 0 });
  const c = new TapPort({ ifname: 'tcu', netns: nsC, index: 1, deviceMac: '02:00:0a:09:00:02' });
  const stop = relay(a, c, 60_000);
  t.teardown(async () => { await stop(); a.close(); c.close(); });
  lab.addr(nsC, 'tcu', '10.9.0.2/24');
  // receiver: counts datagrams and checks each one's size and content (the kernel drops any with a bad checksum)
  const rx = lab.spawn(nsC, 'python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.9.0.2', 9999)); s.settimeout(8)
print('ready', flush=True)
n = ok = 0
try:
    while n < 40:
        d, _ = s.recvfrom(65535); n += 1
        ok += len(d) == 1000 and d == bytes((i * 7 + 1) % 256 for i in range(1000))
except socket.timeout:
    pass
print(n, ok, flush=True)`]);
  let out = '';
  rx.stdout.on('data', (d) => { out += d; });
  const done = childDone(rx);
  for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  // sender: 4 sends of 10 x 1000 bytes each with UDP_SEGMENT (one GSO super-frame per send)
  const tx = await lab.execAsync(nsA, 'python3', ['-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, 1000)  # SOL_UDP, UDP_SEGMENT
p = bytes((i * 7 + 1) % 256 for i in range(1000)) * 10
for _ in range(4):
    s.sendto(p, ('10.9.0.2', 9999))`], { timeoutMs: 20_000 });
  t.is(tx.code, 0, tx.stderr);
  await done;
  t.is(out.trim().split('\n').pop(), '40 40', `receiver: ${out}`);
  t.true(a.stats().gsoFrames >= 4, JSON.stringify(a.stats()));
});
