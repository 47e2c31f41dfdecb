// A Port backed by a small python3 helper process that owns the TAP / AF_PACKET socket and
// relays frames over its stdin/stdout (u16 big-endian length + frame). It is the fallback when
// the native addon (src/ports/native.ts) is not built or not loadable: same Port contract, no
// compiler needed — but every frame costs a pipe write + read and two copies (~20-50 us), so it is
// for demos, tests and debugging, not for performance work. `wdp start` logs which kind it uses.
import { spawn, type ChildProcess } from 'node:child_process';
import * as L from '../../assembly/layout.js';
import type { BurstArea, Port, PortStats } from '../ports/port.js';
import { parseMac } from '../util/addr.js';

const HELPER = String.raw`
import os, sys, socket, struct, fcntl, select
mode, ifname = sys.argv[1], sys.argv[2]
if mode == 'tap':
    fd = os.open('/dev/net/tun', os.O_RDWR)
    # TUNSETIFF, IFF_TAP | IFF_NO_PI
    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', ifname.encode(), 0x0002 | 0x1000))
    def rd():
        return os.read(fd, 65536)
    def wr(b):
        os.write(fd, b)
else:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0))
    fd = s.fileno()
    def rd():
        data, addr = s.recvfrom(65536)
        # frames this host sends out of the interface are echoed to packet sockets: skip them
        return None if addr[2] == socket.PACKET_OUTGOING else data
    def wr(b):
        s.send(b)
os.set_blocking(fd, False)
out = 1
os.write(out, b'\x00\x00')   # zero-length frame: ready
buf = b''
while True:
    r, _, _ = select.select([0, fd], [], [])
    if fd in r:
        for _ in range(64):
            try:
                f = rd()
            except BlockingIOError:
                break
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
    const argv = ['python3', '-c', HELPER, opts.kind, opts.ifname];
    const [cmd, ...args] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let gotReady = false;
    this.child.stdout!.on('data', (d: Buffer) => {
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      let off = 0;
      while (this.pending.length - off >= 2) {
        const n = this.pending.readUInt16BE(off);
        if (this.pending.length - off < 2 + n) break;
        if (n === 0 && !gotReady) { gotReady = true; this.readyResolve(); }
        else if (this.queue.length >= RelayPort.QUEUE_MAX) this.s.rxDropped++;
        else this.queue.push(Buffer.from(this.pending.subarray(off + 2, off + 2 + n)));
        off += 2 + n;
      }
      this.pending = this.pending.subarray(off);
      if (this.queue.length) this.wake();
    });
    this.child.stderr!.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.child.on('error', (e) => this.readyReject(new Error(`port ${this.name}: cannot start python3 helper: ${e.message}`)));
    this.child.on('exit', (code) => {
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

  stats(): PortStats { return { ...this.s }; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.child.stdin!.end(); } catch { /* gone */ }
    try { this.child.kill('SIGTERM'); } catch { /* gone */ }
    this.wake();
  }
}
