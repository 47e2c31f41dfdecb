// Run as root after `npm run build`: node native/bench/exclusive-ab.mjs (about 10 s). Prints, per
// round, CPU ns per frame and the receiving namespace's Ip InReceives for both modes.
// A/B: CPU per frame of pushing frames over a veth into an AF_PACKET port, the interface shared
// with the kernel stack vs kept from it by the nftables netdev ingress drop chain the daemon
// installs on its AF_PACKET ports (src/daemon/port-manager.ts). Sender and receiver in this
// process; on a veth the receiving kernel path runs in the sender's syscall, so system CPU shows it.
import { existsSync } from 'node:fs';
import { NetnsLab, run } from '../../dist/src/netns.js';
import { AfPacketPort } from '../../dist/src/ports/native.js';
import { makeArea, putTx } from '../../test/lib/native-area.js';
const lab = new NetnsLab('ab');
const A = lab.namespace('a'), B = lab.namespace('b');
lab.veth(A, 'va', B, 'vb', { macA: '02:00:00:00:00:0a', macB: '02:00:00:00:00:0b' });
lab.addr(B, 'vb', '10.66.0.1/24');   // the kernel of B has an address there: it runs ip_rcv for each frame
const frame = new Uint8Array(60);
// Ethernet to vb's MAC, IPv4 UDP 10.66.0.2 -> 10.66.0.9 (not B's address: dropped by B's stack after routing)
frame.set([2,0,0,0,0,0x0b, 2,0,0,0,0,0x0a, 8,0, 0x45,0,0,46, 0,0,0x40,0, 64,17,0,0, 10,66,0,2, 10,66,0,9, 0x30,0x39,0x30,0x39,0,26,0,0]);
let s = 0; for (let i = 14; i < 34; i += 2) s += (frame[i] << 8) | frame[i + 1]; while (s >> 16) s = (s & 0xffff) + (s >> 16); s = ~s & 0xffff; frame[24] = s >> 8; frame[25] = s & 0xff;
const a = new AfPacketPort({ ifname: 'va', netns: A, index: 0, offloads: false });
const tx = makeArea(256, 2048); for (let i = 0; i < 256; i++) putTx(tx, i, frame, 0);
const rx = makeArea(256, 2048);
const snmp = () => { const l = run('ip', ['netns', 'exec', B, 'cat', '/proc/net/snmp']).stdout.split('\n').filter((x) => x.startsWith('Ip:')); const k = l[0].split(/\s+/), v = l[1].split(/\s+/); return Number(v[k.indexOf('InReceives')]); };
// the system's nft (under npm, node_modules/.bin/nft is @vercel/nft)
const nft = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p)) ?? 'nft';
const N = 400 * 256;
const results = { shared: [], exclusive: [] };
for (let round = 0; round < 4; round++) {
  for (const mode of round % 2 ? ['exclusive', 'shared'] : ['shared', 'exclusive']) {
    const b = new AfPacketPort({ ifname: 'vb', netns: B, index: 1, offloads: false, ringVersion: 3 });
    if (mode === 'exclusive') run('ip', ['netns', 'exec', B, nft, '-f', '-'], { input: 'table netdev wdpab {\n chain in_vb {\n  type filter hook ingress device "vb" priority 0; policy drop;\n }\n}\n' });
    const in0 = snmp();
    const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
    let sent = 0, got = 0;
    while (sent < N) { sent += a.txBurst(tx, 256); for (let k = 0; k < 4; k++) got += b.rxBurst(rx, 0, 256); }
    const c1 = process.cpuUsage(c0); const t1 = process.hrtime.bigint();
    const ipIn = snmp() - in0;
    b.close();
    if (mode === 'exclusive') run('ip', ['netns', 'exec', B, nft, 'delete', 'table', 'netdev', 'wdpab']);
    results[mode].push({ cpuNsPerFrame: Math.round((c1.user + c1.system) * 1000 / sent), sysNsPerFrame: Math.round(c1.system * 1000 / sent), wallNsPerFrame: Number((t1 - t0) / BigInt(sent)), ipInReceives: ipIn, sent });
  }
}
console.log(JSON.stringify(results, null, 1));
a.close();
await lab.destroy();
