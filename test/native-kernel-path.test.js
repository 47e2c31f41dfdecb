// The established-flow path in the kernel (native/src/kernel_path.rs), driven through the addon on
// its own: client ─veth─ router ─veth─ server in namespaces, the router with no IP forwarding, so
// a datagram reaches the other side only through an entry of the path. Entries forward a UDP flow
// to a ClusterIP both ways — translated, TTL decremented, checksums right (the server's and the
// client's sockets drop a datagram whose checksum is wrong) — and are counted; a flush (a table
// switch) makes every entry stop matching, as does a passed deadline; what the core must see —
// TTL 1, IPv4 options, fragments, a datagram above the egress MTU, a TCP SYN — passes to the stack.
// With AF_PACKET ports in front (mode 'packet'), every frame goes to the socket or through the
// path, never both, never neither. Needs root and Linux 6.6 (tcx).
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { run } from '../dist/src/netns.js';
import { nativeAddon, AfPacketPort } from '../dist/src/ports/native.js';
import { makeArea, receive } from './lib/native-area.js';

const isRoot = process.getuid?.() === 0;
const tcx = (() => { const [a, b] = (execFileSync('uname', ['-r']).toString().match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number); return a > 6 || (a === 6 && b >= 6); })();
const why = !isRoot ? 'needs root: namespaces, CAP_BPF' : !tcx ? 'needs Linux 6.6 (tcx links)' : null;
const t0 = why ? test.skip : test.serial;

const P = `wdp-t${process.pid}-kp`;
const NS = { c: `${P}c`, r: `${P}r`, s: `${P}s` };
const CLIENT = '10.131.0.2', SERVER = '10.130.2.2', VIP = '10.96.0.10', VPORT = 80, SPORT = 8080, CPORT = 40001;
const MAC = { c0: '02:00:00:00:0c:00', r0: '02:00:00:00:0a:00', r1: '02:00:00:00:0a:01', s0: '02:00:00:00:0b:00' };
const ip = (...a) => { const r = run('ip', a); if (r.code !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };

test.before(() => {
  if (why) return;
  for (const ns of Object.values(NS)) ip('netns', 'add', ns);
  ip('link', 'add', 'c0', 'netns', NS.c, 'address', MAC.c0, 'type', 'veth', 'peer', 'name', 'r0', 'netns', NS.r, 'address', MAC.r0);
  ip('link', 'add', 's0', 'netns', NS.s, 'address', MAC.s0, 'type', 'veth', 'peer', 'name', 'r1', 'netns', NS.r, 'address', MAC.r1);
  for (const [ns, dev] of [[NS.c, 'c0'], [NS.r, 'r0'], [NS.r, 'r1'], [NS.s, 's0']]) {
    run('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'tx', 'off']); // full checksums from the sockets
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
  ip('-n', NS.c, 'addr', 'add', `${CLIENT}/16`, 'dev', 'c0');
  ip('-n', NS.c, 'route', 'add', 'default', 'via', '10.131.0.1');
  ip('-n', NS.c, 'neigh', 'replace', '10.131.0.1', 'lladdr', MAC.r0, 'dev', 'c0');
  ip('-n', NS.s, 'addr', 'add', `${SERVER}/24`, 'dev', 's0');
  ip('-n', NS.s, 'route', 'add', 'default', 'via', '10.130.2.1');
  ip('-n', NS.s, 'neigh', 'replace', '10.130.2.1', 'lladdr', MAC.r1, 'dev', 's0');
});
test.after.always(() => { if (!why) for (const ns of Object.values(NS)) run('ip', ['netns', 'del', ns]); });

const bytes = (s, sep, radix) => s.split(sep).map((x) => parseInt(x, radix));
const ifindex = (ns, dev) => JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show', dev]).stdout)[0].ifindex;

/** One entry (kernel_path.rs ENTRY_SIZE): the frame as it arrives on `inDev`, as it leaves by `outDev`. */
function entry(proto, inDev, from, to, outDev, newFrom, newTo, dstMac, srcMac, lifetimeMs = 60_000, maxIpLen = 1500) {
  const e = new Uint8Array(60), dv = new DataView(e.buffer);
  dv.setUint32(0, ifindex(NS.r, inDev), true);
  e.set(bytes(from[0], '.', 10), 4); e.set(bytes(to[0], '.', 10), 8);
  dv.setUint16(12, from[1]); dv.setUint16(14, to[1]); e[16] = proto;
  dv.setUint32(20, ifindex(NS.r, outDev), true);
  e.set(bytes(newFrom[0], '.', 10), 24); e.set(bytes(newTo[0], '.', 10), 28);
  dv.setUint16(32, newFrom[1]); dv.setUint16(34, newTo[1]);
  e.set(bytes(dstMac, ':', 16), 36); e.set(bytes(srcMac, ':', 16), 42);
  dv.setUint16(48, maxIpLen, true); dv.setUint16(50, lifetimeMs, true);
  e.set(bytes(MAC[inDev], ':', 16), 52);   // the frame arrives addressed to the router's port
  return e;
}
const flow = (proto, lifetimeMs, maxIpLen) => [
  entry(proto, 'r0', [CLIENT, CPORT], [VIP, VPORT], 'r1', [CLIENT, CPORT], [SERVER, SPORT], MAC.s0, MAC.r1, lifetimeMs, maxIpLen),
  entry(proto, 'r1', [SERVER, SPORT], [CLIENT, CPORT], 'r0', [VIP, VPORT], [CLIENT, CPORT], MAC.c0, MAC.r0, lifetimeMs, maxIpLen),
];
const join = (es) => { const b = new Uint8Array(es.length * 60); es.forEach((e, i) => b.set(e, i * 60)); return b; };

// the server echoes each datagram with the TTL it arrived with; the client sends `n` from CPORT
// and prints what came back and from where
const SERVER_PY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
s.bind(('0.0.0.0', ${SPORT}))
print('ready', flush=True)
while True:
    data, anc, _, addr = s.recvmsg(2048, 64)
    ttl = next((c[2][0] for c in anc if c[0] == socket.IPPROTO_IP and c[1] == socket.IP_TTL), -1)
    s.sendto(data + bytes([ttl]), addr)
`;
// (optional: the payload's size, the TTL, IPv4 options as hex)
const CLIENT_PY = `
import socket, sys, json
n = int(sys.argv[1])
size = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', ${CPORT}))
if len(sys.argv) > 3 and sys.argv[3]: s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(sys.argv[3]))
if len(sys.argv) > 4 and sys.argv[4]: s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes.fromhex(sys.argv[4]))
s.settimeout(0.3)
got = []
for i in range(n):
    payload = ('x%d' % i).encode() * 20
    if size: payload = (payload * (size // len(payload) + 1))[:size]
    s.sendto(payload, ('${VIP}', ${VPORT}))
    try:
        data, addr = s.recvfrom(8192)
        got.append({'from': '%s:%d' % addr, 'ok': data[:-1] == payload, 'ttl': data[-1]})
    except socket.timeout:
        pass
print(json.dumps(got))
`;

function roundTrips(n, { size = 0, ttl = '', options = '' } = {}) {
  const out = execFileSync('ip', ['netns', 'exec', NS.c, 'python3', '-c', CLIENT_PY, String(n), String(size), String(ttl), options], { timeout: 30_000 }).toString();
  return JSON.parse(out);
}

t0('entries forward a UDP flow both ways, translated, TTL decremented, checksums right; a flush, a passed deadline and a removal stop them; TTL 1, options, fragments, a datagram above the MTU and a SYN pass to the stack', async (t) => {
  const addon = nativeAddon();
  const srv = spawn('ip', ['netns', 'exec', NS.s, 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => srv.kill('SIGKILL'));
  await new Promise((resolve, reject) => { srv.stdout.once('data', resolve); srv.once('exit', (c) => reject(new Error(`server exited ${c}`))); });
  const h = addon.kernelPathOpen('r0,r1', NS.r, 1024);
  t.teardown(() => { try { addon.kernelPathClose(h); } catch { /* closed by the test */ } });

  t.deepEqual(roundTrips(3), [], 'no entry: the router forwards nothing');
  t.is(addon.kernelPathSet(h, join(flow(17))), 2);
  const got = roundTrips(20);
  t.is(got.length, 20, JSON.stringify(got));
  for (const g of got) {
    t.is(g.from, `${VIP}:${VPORT}`, 'the reply comes from the ClusterIP');
    t.true(g.ok, 'the payload came back whole');
    t.is(g.ttl, 63, 'the server saw the TTL decremented once');
  }
  const s1 = addon.kernelPathStats(h);
  t.is(s1.frames, 40);
  t.true(s1.bytes >= 40 * 60, JSON.stringify(s1));

  t.is(addon.kernelPathFlush(h), 1);
  t.deepEqual(roundTrips(3), [], 'after a flush no entry matches');
  t.is(addon.kernelPathStats(h).frames, 40);
  addon.kernelPathSet(h, join(flow(17)));
  t.is(roundTrips(3).length, 3, 'entries set after the flush match');

  addon.kernelPathSet(h, join(flow(17, 0)));
  t.deepEqual(roundTrips(2), [], 'an entry past its deadline does not match');
  addon.kernelPathSet(h, join(flow(17)));
  t.is(addon.kernelPathRemove(h, join(flow(17)).filter((_, i) => i % 60 < 20)), 2);
  t.deepEqual(roundTrips(2), [], 'removed entries do not match');

  // what the core must see passes to the stack (which forwards nothing here), with the entries live:
  // TTL 1 (the core answers time exceeded), IPv4 options, fragments, a datagram above the egress MTU
  addon.kernelPathSet(h, join(flow(17, 60_000, 200)));
  t.is(roundTrips(2).length, 2, 'the entries with a 200-byte IP limit carry a small datagram');
  // a datagram whose frame is shorter than a TCP header's (46 bytes: veth does not pad to 60)
  const beforeShort = addon.kernelPathStats(h).frames;
  t.is(roundTrips(3, { size: 4 }).length, 3);
  t.is(addon.kernelPathStats(h).frames, beforeShort + 6, 'a short datagram and its answer are carried');
  const carried = addon.kernelPathStats(h).frames;
  t.deepEqual(roundTrips(2, { ttl: 1 }), [], 'TTL 1 is not carried');
  t.deepEqual(roundTrips(2, { options: '01010100' }), [], 'a header with options is not carried');
  t.deepEqual(roundTrips(2, { size: 300 }), [], 'a datagram above the egress MTU is not carried');
  addon.kernelPathSet(h, join(flow(17)));
  t.deepEqual(roundTrips(2, { size: 3000 }), [], 'fragments are not carried');
  t.is(addon.kernelPathStats(h).frames, carried, 'none of those went through the path');

  // TCP: the SYN is the core's, so the path passes it to the stack (which forwards nothing here)
  addon.kernelPathSet(h, join(flow(6)));
  const before = addon.kernelPathStats(h).frames;
  const r = run('ip', ['netns', 'exec', NS.c, 'python3', '-c',
    `import socket\ns=socket.socket()\ns.bind(('0.0.0.0', ${CPORT}))\ns.settimeout(0.5)\ntry:\n  s.connect(('${VIP}', ${VPORT}))\n  print('connected')\nexcept Exception as e:\n  print('refused', e)`]);
  t.regex(r.stdout, /refused/);
  t.is(addon.kernelPathStats(h).frames, before, 'no SYN went through the path');

  addon.kernelPathClose(h);
  const e = t.throws(() => addon.kernelPathStats(h));
  t.is(e.code, 'ECLOSED');
});

t0('bad arguments are clear errors', (t) => {
  const addon = nativeAddon();
  addon.kernelPathClose(addon.kernelPathOpen('', null, 16)); // no interface yet: attached later
  t.is(t.throws(() => addon.kernelPathOpen('r0', NS.r, 0)).code, 'EINVAL');
  t.is(t.throws(() => addon.kernelPathOpen('nosuchdev0', NS.r, 16)).code, 'ENODEV');
  t.is(t.throws(() => addon.kernelPathStats(999999)).code, 'EINVAL');
  const h = addon.kernelPathOpen('r0', NS.r, 16);
  t.teardown(() => addon.kernelPathClose(h));
  t.regex(t.throws(() => addon.kernelPathSet(h, new Uint8Array(59))).message, /not a multiple of 60/);
  t.regex(t.throws(() => addon.kernelPathRemove(h, new Uint8Array(7))).message, /not a multiple of 20/);
});

t0('packet mode: with AF_PACKET ports in front (their filter the path\'s), the path\'s frames go through tc and never reach the sockets; the others reach the sockets and are not forwarded; a frame for another MAC is dropped by the filter', async (t) => {
  const addon = nativeAddon();
  const srv = spawn('ip', ['netns', 'exec', NS.s, 'python3', '-c', SERVER_PY], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => srv.kill('SIGKILL'));
  await new Promise((resolve, reject) => { srv.stdout.once('data', resolve); srv.once('exit', (c) => reject(new Error(`server exited ${c}`))); });
  const h = addon.kernelPathOpen('', null, 1024);
  const ports = [];
  t.teardown(() => { for (const p of ports) p.close(); addon.kernelPathClose(h); });
  for (const [i, d] of ['r0', 'r1'].entries()) {
    addon.kernelPathAttach(h, d, NS.r, 'packet');
    ports.push(new AfPacketPort({ name: d, index: i, ifname: d, netns: NS.r, otherHost: false, kernelPath: h }));
  }
  const area = makeArea(256);
  const drain = (p) => receive(p, area, 1e9, 300).filter((f) => f.len >= 34 && f.bytes[12] === 8 && f.bytes[13] === 0 && f.bytes[23] === 17);
  for (const p of ports) drain(p);
  // no entries: the datagrams reach r0's socket (and go no further: the router forwards nothing)
  t.deepEqual(roundTrips(3), []);
  t.is(drain(ports[0]).length, 3, 'three datagrams on the client side\'s socket');
  t.is(addon.kernelPathSet(h, join(flow(17))), 2);
  const got = roundTrips(20);
  const atSockets = ports.map((p) => drain(p).length);
  t.is(got.length, 20, `${JSON.stringify(got)} ${JSON.stringify(addon.kernelPathStats(h))} at the sockets ${atSockets}`);
  t.true(got.every((g) => g.ok && g.from === `${VIP}:${VPORT}` && g.ttl === 63), JSON.stringify(got[0]));
  t.is(addon.kernelPathStats(h).frames, 40);
  t.deepEqual(atSockets, [0, 0], 'none of the forwarded frames reached a socket');
  // a frame shorter than a TCP header's (the filter copies a UDP header's worth)
  t.is(roundTrips(3, { size: 4 }).length, 3);
  t.is(addon.kernelPathStats(h).frames, 46, 'a short datagram and its answer are carried');
  t.deepEqual(ports.map((p) => drain(p).length), [0, 0], 'and reach no socket');
  // a datagram the path does not take (above its 200-byte limit) reaches the socket only
  addon.kernelPathSet(h, join(flow(17, 60_000, 200)));
  t.deepEqual(roundTrips(2, { size: 400 }), []);
  t.is(drain(ports[0]).length, 2, 'the large datagrams went to the socket');
  t.is(addon.kernelPathStats(h).frames, 46, 'and not through the path');
  t.is(addon.kernelPathStats(h).declined, 0);
  // a frame addressed to another MAC: the filter drops it, the path does not take it
  ip('-n', NS.c, 'neigh', 'replace', '10.131.0.1', 'lladdr', '02:00:00:00:0e:0e', 'dev', 'c0');
  try {
    t.deepEqual(roundTrips(2), []);
    t.is(drain(ports[0]).length, 0, 'another host\'s frames are not the socket\'s');
    t.is(addon.kernelPathStats(h).frames, 46, 'nor the path\'s');
  } finally {
    ip('-n', NS.c, 'neigh', 'replace', '10.131.0.1', 'lladdr', MAC.r0, 'dev', 'c0');
  }
  addon.kernelPathSet(h, join(flow(17)));
  t.is(roundTrips(5).length, 5, 'and the flow through the path again');
});
