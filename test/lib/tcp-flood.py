# A bounded flood of spoofed TCP segments (e2e tests only): COUNT segments with FLAGS from
# SRC_PREFIX.x:port (x cycling over 100..249, a new source port per segment) to DST:DPORT, sent
# through a raw socket in the caller's network namespace, RATE per second at most, and never for
# longer than MAX_SECONDS. Prints {"sent": n, "seconds": s} as JSON.
# usage: python3 tcp-flood.py DST DPORT FLAGS COUNT RATE MAX_SECONDS SRC_PREFIX
import json
import socket
import struct
import sys
import time

FLAG_BITS = {'F': 0x01, 'S': 0x02, 'R': 0x04, 'P': 0x08, 'A': 0x10}


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def segment(src, dst, sport, dport, flags, seq):
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, 0 if not flags & 0x10 else seq ^ 0x5a5a5a5a,
                      5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
    # total length and header checksum are filled in by the kernel for IP_HDRINCL sockets
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp


def main():
    dst, dport, flag_names, count, rate, max_seconds, prefix = sys.argv[1:8]
    dport, count, rate, max_seconds = int(dport), int(count), int(rate), float(max_seconds)
    flags = 0
    for c in flag_names:
        flags |= FLAG_BITS[c]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    sent = 0
    for i in range(count):
        if time.monotonic() - start > max_seconds:
            break
        src = '%s.%d' % (prefix, 100 + i % 150)
        sport = 1024 + (i * 7) % 60000
        s.sendto(segment(src, dst, sport, dport, flags, (i * 2654435761) & 0xffffffff), (dst, 0))
        sent += 1
        # pace: never ahead of RATE per second
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({'sent': sent, 'seconds': round(time.monotonic() - start, 3)}))


main()
