// A Port backed by a small python3 helper process that owns the TAP / AF_PACKET socket and
// relays frames over its stdin/stdout (u16 big-endian length + frame). It is the fallback when
// the native addon (src/ports/native.ts) is not built or not loadable: same Port contract, no
// compiler needed — but every frame costs a pipe write + read and two copies (~20-50 us), so it is
// for demos, tests and debugging, not for performance work. `wdp start` logs which kind it uses.
import { spawn, type ChildProcess } from 'node:child_process';
import * as L from '../../assembly/layout.js';
import type { BurstArea, Port, PortStats } from '../ports/port.js';
import { formatMac, parseMac } from '../util/addr.js';

/** The helper's exit code when the kernel unbound its packet socket (ENETDOWN: the interface left
 * the namespace). */
const UNBOUND_EXIT = 75;

const HELPER = String.raw`
import os, sys, socket, struct, fcntl, select, errno
mode, ifname = sys.argv[1], sys.argv[2]
own = bytes.fromhex(sys.argv[3].replace(':', ''))   # the MAC the port answers ARP/ND with
if mode == 'tap':
    fd = os.open('/dev/net/tun', os.O_RDWR)
    # TUNSETIFF, IFF_TAP | IFF_NO_PI
    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', ifname.encode(), 0x0002 | 0x1000))
    def rd():
        return [os.read(fd, 65536)]
    def wr(b):
        os.write(fd, b)
else:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    # PACKET_VNET_HDR: each frame comes with (and is sent after) a virtio-net header, so partial
    # checksums and TSO/GSO super-frames from local senders are finished here (native/src/offload.rs
    # does the same in the addon)
    s.setsockopt(263, 15, 1)
    s.bind((ifname, 0))
    fd = s.fileno()
    def csum(b):
        if len(b) % 2:
            b += b'\0'
        t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
        while t >> 16:
            t = (t & 0xffff) + (t >> 16)
        return t
    def segment(f, kind, mss, l4):
        l3 = 14
        while f[l3 - 2:l3] in (b'\x81\x00', b'\x88\xa8'):
            l3 += 4
        v4, tcp = f[l3] >> 4 == 4, kind in (1, 4)
        hl = l4 + ((f[l4 + 12] >> 4) * 4 if tcp else 8)
        hdr, pay = f[:hl], f[hl:]
        seq = struct.unpack('!I', f[l4 + 4:l4 + 8])[0] if tcp else 0
        ipid = struct.unpack('!H', f[l3 + 4:l3 + 6])[0] if v4 else 0
        out = []
        for i, off in enumerate(range(0, len(pay), mss)):
            g = bytearray(hdr) + pay[off:off + mss]
            n = len(g)
            if v4:
                g[l3 + 2:l3 + 4] = struct.pack('!H', n - l3)
                g[l3 + 4:l3 + 6] = struct.pack('!H', (ipid + i) & 0xffff)
                g[l3 + 10:l3 + 12] = b'\0\0'
                g[l3 + 10:l3 + 12] = struct.pack('!H', ~csum(bytes(g[l3:l4])) & 0xffff)
                ph = bytes(g[l3 + 12:l3 + 20])
            else:
                g[l3 + 4:l3 + 6] = struct.pack('!H', n - l3 - 40)
                ph = bytes(g[l3 + 8:l3 + 40])
            if tcp:
                g[l4 + 4:l4 + 8] = struct.pack('!I', (seq + off) & 0xffffffff)
                if off + mss < len(pay):
                    g[l4 + 13] &= 0xf6   # FIN and PSH only on the last segment
                if i:
                    g[l4 + 13] &= 0x7f   # CWR only on the first
                at = l4 + 16
            else:
                g[l4 + 4:l4 + 6] = struct.pack('!H', n - l4)
                at = l4 + 6
            g[at:at + 2] = b'\0\0'
            c = ~csum(ph + struct.pack('!BBH', 0, 6 if tcp else 17, n - l4) + bytes(g[l4:])) & 0xffff
            g[at:at + 2] = struct.pack('!H', c or 0xffff)
            out.append(bytes(g))
        return out
    def rd():
        data, addr = s.recvfrom(70000)
        # frames this host sends out of the interface are echoed to packet sockets, and unicast
        # frames addressed to another MAC than the port's (flooded by a switch) are not ours:
        # skip them (the port's MAC, not the kernel's packet type: one changed under the port
        # does not cut off the peers that use the one it answers ARP/ND with)
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 24 or (not data[10] & 1 and data[10:16] != own):
            return None
        flags, gso, _, gsz, cs, co = struct.unpack('<BBHHHH', data[:10])
        f = bytearray(data[10:])
        if gso & 0x7f in (1, 4, 5) and gsz:
            return segment(f, gso & 0x7f, gsz, cs)
        if flags & 1 and cs + co + 2 <= len(f):
            f[cs + co:cs + co + 2] = struct.pack('!H', (~csum(bytes(f[cs:]))) & 0xffff or 0xffff)
        return [bytes(f)]
    def wr(b):
        s.send(b'\0' * 10 + b)
os.set_blocking(fd, False)
out = 1
exe = (sys.executable or '').encode()
os.write(out, struct.pack('>H', len(exe)) + exe)   # the first frame: ready, naming this interpreter
buf = b''
while True:
    r, _, _ = select.select([0, fd], [], [])
    if fd in r:
        for _ in range(64):
            try:
                fs = rd()
            except BlockingIOError:
                break
            except OSError as e:
                # the kernel unbound the socket: its interface left the namespace (for good, also
                # when it comes back under its name and ifindex)
                if e.errno != errno.ENETDOWN:
                    raise
                sys.stderr.write('socket unbound: the interface left the namespace (ENETDOWN)\n')
                sys.exit(${UNBOUND_EXIT})
            for f in fs or ():
                if f:
                    os.write(out, struct.pack('>H', len(f)) + f)
    if 0 in r:
        chunk = os.read(0, 262144)
        if not chunk:
            sys.exit(0)
        buf += chunk
        while len(buf) >= 2:
            n = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + n:
                break
            try:
                wr(buf[2:2 + n])
            except OSError:
                pass
            buf = buf[2 + n:]
`;

/** The interpreter the helpers run: \`python3\` from PATH until a helper has said which file that
 * is (its ready frame), then that file. Where \`python3\` is a version manager's shim (pyenv: a
 * shell script that looks the version up on every start), that saves each later helper the
 * shim's start (~130 ms against ~50 ms per helper at load 3.6 on 2 CPUs). One per thread. */
let python = 'python3';

/** A helper started from `interpreter` never got ready: the next one starts \`python3\` from
 * PATH again (a file named by an earlier helper may be gone: an interpreter upgraded or removed). */
function forgetInterpreter(interpreter: string): void {
  if (python === interpreter) python = 'python3';
}

/** A relay port's stats: `unboundQueues` 1 once its helper ended because the kernel unbound its
 * socket (as an AF_XDP port's: the link check reopens the port), else 0. */
export interface RelayPortStats extends PortStats { unboundQueues: number }

export interface RelayPortOptions {
  name: string; index: number; kind: 'tap' | 'afpacket'; ifname: string; mac: string;
  netns?: string;   // run the helper inside this namespace (the caller itself may be elsewhere)
}

export class RelayPort implements Port {
  readonly name: string;
  readonly index: number;
  readonly mac: Uint8Array;
  readonly fd = -1;
  private readonly child: ChildProcess;
  private readonly queue: Buffer[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private readonly s: PortStats = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txErrors: 0, oversize: 0 };
  private closed = false;
  private unbound = false;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  readonly ready: Promise<void>;
  private stderr = '';
  // Bounded so a stalled core cannot grow memory without limit; overflow counts as rxDropped.
  private static readonly QUEUE_MAX = 4096;

  constructor(opts: RelayPortOptions) {
    this.name = opts.name;
    this.index = opts.index;
    this.mac = parseMac(opts.mac);
    this.ready = new Promise((res, rej) => { this.readyResolve = res; this.readyReject = rej; });
    const interpreter = python;
    const argv = [interpreter, '-c', HELPER, opts.kind, opts.ifname, formatMac(this.mac)];
    const [cmd, ...args] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let gotReady = false;
    this.child.stdout!.on('data', (d: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      let off = 0;
      while (this.pending.length - off >= 2) {
        const n = this.pending.readUInt16BE(off);
        if (this.pending.length - off < 2 + n) break;
        if (!gotReady) {
          gotReady = true;
          const exe = this.pending.toString('utf8', off + 2, off + 2 + n);
          if (exe.startsWith('/')) python = exe;
          this.readyResolve();
        }
        else if (this.queue.length >= RelayPort.QUEUE_MAX) this.s.rxDropped++;
        else this.queue.push(Buffer.from(this.pending.subarray(off + 2, off + 2 + n)));
        off += 2 + n;
      }
      this.pending = this.pending.subarray(off);
      if (this.queue.length) this.wake();
    });
    this.child.stderr!.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.child.on('error', (e) => {
      forgetInterpreter(interpreter);
      this.readyReject(new Error(`port ${this.name}: cannot start python3 helper: ${e.message}`));
    });
    this.child.on('exit', (code) => {
      if (code === UNBOUND_EXIT) this.unbound = true;
      // (`ip netns exec` reports a file it cannot run by its exit, not a spawn error)
      if (!gotReady) forgetInterpreter(interpreter);
      if (!gotReady) this.readyReject(new Error(`port ${this.name}: helper for ${opts.kind} ${opts.ifname} exited (${code}): ${this.stderr.trim().split('\n').pop() ?? ''}`));
      this.closed = true;
      this.wake();
    });
    this.child.stdin!.on('error', () => { /* helper gone: reported via exit */ });
  }

  private wake(): void {
    const w = this.waiters; this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when frames are queued (or the port closed). */
  whenReadable(): Promise<void> {
    if (this.queue.length || this.closed) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  get readable(): boolean { return this.queue.length > 0; }
  get alive(): boolean { return !this.closed; }

  rxBurst(area: BurstArea, first: number, max: number): number {
    let n = 0;
    const u8 = new Uint8Array(area.memory);
    const dv = new DataView(area.memory);
    while (n < max && this.queue.length) {
      const f = this.queue.shift()!;
      const slot = first + n;
      const d = area.descOff + slot * L.DESC_SIZE;
      // An oversize frame keeps its true length in the descriptor so the core counts it as drop_oversize.
      if (f.length > area.slotSize) this.s.oversize++;
      u8.set(f.subarray(0, Math.min(f.length, area.slotSize)), area.arenaOff + slot * area.slotSize);
      dv.setUint16(d + L.D_LEN, Math.min(f.length, 0xffff), true);
      dv.setUint16(d + L.D_IN_PORT, this.index, true);
      dv.setUint16(d + L.D_OUT_PORT, L.PORT_NONE, true);
      dv.setUint8(d + L.D_VERDICT, 0);
      dv.setUint8(d + L.D_REASON, 0);
      this.s.rxPackets++; this.s.rxBytes += f.length;
      n++;
    }
    return n;
  }

  txBurst(area: BurstArea, count: number): number {
    if (this.closed) return 0;
    const u8 = new Uint8Array(area.memory);
    const dv = new DataView(area.memory);
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const d = area.descOff + i * L.DESC_SIZE;
      const v = dv.getUint8(d + L.D_VERDICT);
      if ((v !== L.V_FORWARD && v !== L.V_REJECT) || dv.getUint16(d + L.D_OUT_PORT, true) !== this.index) continue;
      const len = dv.getUint16(d + L.D_LEN, true);
      if (len > area.slotSize || len < 14) { this.s.txErrors++; continue; }
      const b = Buffer.allocUnsafe(2 + len);
      b.writeUInt16BE(len, 0);
      b.set(u8.subarray(area.arenaOff + i * area.slotSize, area.arenaOff + i * area.slotSize + len), 2);
      out.push(b);
      this.s.txPackets++; this.s.txBytes += len;
    }
    if (out.length) this.child.stdin!.write(out.length === 1 ? out[0] : Buffer.concat(out));
    return out.length;
  }

  stats(): RelayPortStats { return { ...this.s, unboundQueues: this.unbound ? 1 : 0 }; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.child.stdin!.end(); } catch { /* gone */ }
    try { this.child.kill('SIGTERM'); } catch { /* gone */ }
    this.wake();
  }
}
