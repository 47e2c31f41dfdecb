#!/usr/bin/env python3
# A bounded TCP flood for the robustness e2e tests (test/robust-daemon.test.js), run inside the
# client namespace: COUNT segments to DST:DPORT with spoofed sources SRC_PREFIX.{SRC_FIRST..254}
# and random source ports, at most RATE a second. MODE "syn": SYNs (a pod answers them with
# SYN-ACKs that nobody acknowledges — the classic SYN flood); "ack": bare ACKs (mid-stream
# pick-ups; a pod answers them with RSTs). Checksums are correct, so the pods really answer.
# Uses a raw IP socket (IP_HDRINCL): the kernel routes and resolves the gateway's MAC. Prints
# one JSON line {"sent": n, "seconds": s}.
# usage: tcp-flood.py MODE DST DPORT COUNT RATE SRC_PREFIX SRC_FIRST
import json, random, socket, struct, sys, time

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def segment(src, dst, sport, dport, flags, seq, ack):
    tcp = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
    # total length and checksum 0: the kernel fills them in for IP_HDRINCL sockets
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, 0, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp

def main():
    mode, dst, dport, count, rate, prefix, first = sys.argv[1:8]
    dport, count, rate, first = int(dport), int(count), int(rate), int(first)
    flags = 0x02 if mode == 'syn' else 0x10
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rnd = random.Random()
    t0 = time.monotonic()
    sent = 0
    for i in range(count):
        src = '%s.%d' % (prefix, first + i % (255 - first))
        pkt = segment(src, dst, rnd.randint(1024, 65535), dport, flags, rnd.getrandbits(32), 0 if flags == 0x02 else rnd.getrandbits(32))
        try:
            s.sendto(pkt, (dst, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)
        if rate and (i + 1) % 50 == 0:
            ahead = (i + 1) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    print(json.dumps({'sent': sent, 'seconds': round(time.monotonic() - t0, 3)}))

main()
