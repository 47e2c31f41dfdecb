// Path MTU discovery from a client's point of view (the e2e-mtu and kube-e2e-two-nodes tests):
// a python3 probe run in a namespace.

// A connected UDP socket with DF / no local fragmentation and the error queue on: sends a
// `big`-byte IP packet, waits (bounded) for the ICMP error on the error queue, then reports the
// socket's path MTU, what a second big send does, and whether a `small` datagram is answered.
const PROBE = String.raw`
import socket, struct, sys, time, json, select
host, port, big, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v6 = ':' in host
fam = socket.AF_INET6 if v6 else socket.AF_INET
hdr = 48 if v6 else 28
s = socket.socket(fam, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, 23, 2)   # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO
    s.setsockopt(socket.IPPROTO_IPV6, 25, 1)   # IPV6_RECVERR
else:
    s.setsockopt(socket.IPPROTO_IP, 10, 2)     # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    s.setsockopt(socket.IPPROTO_IP, 11, 1)     # IP_RECVERR
s.connect((host, port))
out = {}
s.send(b'B' * (big - hdr))
deadline = time.time() + 4
while time.time() < deadline and 'origin' not in out:
    select.select([], [], [s], 0.2)
    try:
        data, anc, flags, addr = s.recvmsg(4096, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        continue
    except OSError as e:
        out['recvErr'] = e.errno
        continue
    for lvl, typ, d in anc:
        ee_errno, origin, etype, code, _pad, info, _data = struct.unpack('=IBBBBII', d[:16])
        off = d[16:]
        if struct.unpack('=H', off[:2])[0] == socket.AF_INET:
            offender = socket.inet_ntop(socket.AF_INET, off[4:8])
        else:
            offender = socket.inet_ntop(socket.AF_INET6, off[8:24])
        out.update(errno=ee_errno, origin=origin, type=etype, code=code, info=info, offender=offender, quotedPayload=len(data))
out['pmtu'] = s.getsockopt(socket.IPPROTO_IPV6, 24) if v6 else s.getsockopt(socket.IPPROTO_IP, 14)   # IPV6_MTU / IP_MTU
try:
    s.send(b'B' * (big - hdr))
    out['secondBig'] = 'sent'
except OSError as e:
    out['secondBig'] = e.errno
s.settimeout(3)
for i in range(3):
    try:
        s.send(b'S' * (small - hdr))
        out['smallReply'] = len(s.recv(4096))
        break
    except socket.timeout:
        out['smallReply'] = 'timeout'
    except OSError as e:
        out['smallReply'] = 'errno %d' % e.errno
print(json.dumps(out))
`;

/** Runs the probe in `ns` against host:port; resolves with what it reports. */
export async function pmtuProbe(lab, ns, host, port, { big = 1400, small = 1200 } = {}) {
  const r = await lab.execAsync(ns, 'python3', ['-c', PROBE, host, String(port), String(big), String(small)], { timeoutMs: 20000 });
  try { return JSON.parse(r.stdout.trim().split('\n').pop()); } catch {
    throw new Error(`probe output: ${r.stdout}\n${r.stderr}`);
  }
}

/** errno EMSGSIZE: a send bigger than the path MTU the socket knows. */
export const EMSGSIZE = 90;
