// pcap ports: classic libpcap files (not pcapng) as a traffic source and as a capture sink.
//
//   PcapPort     — a Port whose rx side replays a pcap file (as fast as asked, or at the recorded
//                  timing) and whose tx side optionally writes what the dataplane sends to a file.
//   CapturePort  — wraps any Port and records its rx and/or tx traffic into a PcapWriter.
//   PcapWriter   — buffered writer; microsecond or nanosecond timestamps, either byte order.
//   parsePcap / readPcap / encodePcap — whole-file helpers (tests, `wdp trace --pcap`, ...).
//
// Files are read whole into memory: replay then costs one copy per frame (file buffer → arena
// slot) and no I/O in the forwarding loop; the price is RAM equal to the file size.
// Only DLT_EN10MB (Ethernet) is accepted: the core parses Ethernet frames.
import { closeSync, openSync, writeSync } from 'node:fs';
import { readInputBytes } from '../util/input-file.js';
import type { BurstArea, Port, PortStats } from './port.js';
import { DESC_SIZE, D_IN_PORT, D_LEN, D_OUT_PORT, D_VERDICT, V_FORWARD, V_REJECT } from '../../assembly/layout.js';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const DLT_EN10MB = 1;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** Larger than any real frame (jumbo + headroom); a bigger caplen means a corrupt file. */
const MAX_CAPLEN = 262144;

export type PcapResolution = 'us' | 'ns';
export type ByteOrder = 'le' | 'be';

export interface PcapRecord {
  /** Capture time in nanoseconds since the Unix epoch. */
  tsNs: bigint;
  data: Uint8Array;
  /** Length on the wire (>= data.length when the capture was snapped). */
  origLen: number;
}

export interface PcapFile {
  resolution: PcapResolution;
  byteOrder: ByteOrder;
  snaplen: number;
  linktype: number;
  records: PcapRecord[];
}

export class PcapError extends Error {
  readonly code = 'EPCAP';
  constructor(message: string) { super(message); this.name = 'PcapError'; }
}

/** Parses a whole pcap file. Throws PcapError naming the problem and the byte offset. */
export function parsePcap(buf: Uint8Array, source = 'pcap data'): PcapFile {
  if (buf.length < GLOBAL_HEADER) throw new PcapError(`${source}: too short for a pcap header (${buf.length} bytes, need 24)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magicLe = dv.getUint32(0, true);
  let le: boolean, resolution: PcapResolution;
  if (magicLe === PCAP_MAGIC_US) { le = true; resolution = 'us'; }
  else if (magicLe === PCAP_MAGIC_NS) { le = true; resolution = 'ns'; }
  else {
    const magicBe = dv.getUint32(0, false);
    if (magicBe === PCAP_MAGIC_US) { le = false; resolution = 'us'; }
    else if (magicBe === PCAP_MAGIC_NS) { le = false; resolution = 'ns'; }
    else if (magicLe === 0x0a0d0d0a) throw new PcapError(`${source}: this is a pcapng file; only classic pcap is supported (convert with: editcap -F pcap in.pcapng out.pcap)`);
    else throw new PcapError(`${source}: not a pcap file (magic 0x${magicLe.toString(16).padStart(8, '0')})`);
  }
  const major = dv.getUint16(4, le), minor = dv.getUint16(6, le);
  if (major !== 2) throw new PcapError(`${source}: unsupported pcap version ${major}.${minor} (expected 2.4)`);
  const snaplen = dv.getUint32(16, le);
  const linktype = dv.getUint32(20, le) & 0x0fffffff; // upper bits: FCS length flags
  if (linktype !== DLT_EN10MB) throw new PcapError(`${source}: link type ${linktype} is not supported (only 1 = Ethernet, DLT_EN10MB)`);
  const records: PcapRecord[] = [];
  const fracScale = resolution === 'us' ? 1000n : 1n;
  let off = GLOBAL_HEADER;
  while (off < buf.length) {
    const n = records.length;
    if (off + RECORD_HEADER > buf.length) throw new PcapError(`${source}: truncated record header of record ${n} at offset ${off}`);
    const sec = dv.getUint32(off, le), frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le), orig = dv.getUint32(off + 12, le);
    if (incl > MAX_CAPLEN) throw new PcapError(`${source}: record ${n} at offset ${off} claims ${incl} captured bytes (corrupt file?)`);
    if (frac >= (resolution === 'us' ? 1_000_000 : 1_000_000_000)) throw new PcapError(`${source}: record ${n} at offset ${off} has an invalid sub-second timestamp ${frac}`);
    const start = off + RECORD_HEADER;
    if (start + incl > buf.length) throw new PcapError(`${source}: record ${n} at offset ${off} is truncated (${buf.length - start} of ${incl} bytes present)`);
    records.push({ tsNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * fracScale, data: buf.subarray(start, start + incl), origLen: Math.max(orig, incl) });
    off = start + incl;
  }
  return { resolution, byteOrder: le ? 'le' : 'be', snaplen, linktype, records };
}

/** The largest capture read whole (a pcap port's file, `wdp replay`'s: every frame is held in
 * memory; wdp capture writes at most 1 GiB). */
export const MAX_PCAP_BYTES = 1 << 30;

export function readPcap(path: string, maxBytes = MAX_PCAP_BYTES): PcapFile {
  let buf: Buffer;
  // bounded: a device or FIFO given as a capture (/dev/zero) is read until the bound, not forever
  try { buf = readInputBytes(path, maxBytes, `pcap file ${path}`); } catch (e) {
    throw Object.assign(new Error((e as Error).message), { code: /: (E[A-Z]+)$/.exec((e as Error).message)?.[1] ?? 'EIO' });
  }
  return parsePcap(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

export interface PcapWriteOptions { resolution?: PcapResolution; byteOrder?: ByteOrder; snaplen?: number }

function globalHeader(o: Required<PcapWriteOptions>): Uint8Array {
  const h = new Uint8Array(GLOBAL_HEADER);
  const dv = new DataView(h.buffer);
  const le = o.byteOrder === 'le';
  dv.setUint32(0, o.resolution === 'ns' ? PCAP_MAGIC_NS : PCAP_MAGIC_US, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, o.snaplen, le);
  dv.setUint32(20, DLT_EN10MB, le);
  return h;
}

function writeRecordHeader(dv: DataView, off: number, tsNs: bigint, incl: number, orig: number, o: Required<PcapWriteOptions>): void {
  const le = o.byteOrder === 'le';
  const sec = tsNs / 1_000_000_000n, ns = tsNs % 1_000_000_000n;
  dv.setUint32(off, Number(sec & 0xffffffffn), le);
  dv.setUint32(off + 4, Number(o.resolution === 'ns' ? ns : ns / 1000n), le);
  dv.setUint32(off + 8, incl, le);
  dv.setUint32(off + 12, orig, le);
}

function writeOpts(o: PcapWriteOptions): Required<PcapWriteOptions> {
  const r = { resolution: o.resolution ?? 'us', byteOrder: o.byteOrder ?? 'le', snaplen: o.snaplen ?? 65535 } as Required<PcapWriteOptions>;
  if (r.resolution !== 'us' && r.resolution !== 'ns') throw new PcapError(`resolution must be 'us' or 'ns', got ${String(r.resolution)}`);
  if (r.byteOrder !== 'le' && r.byteOrder !== 'be') throw new PcapError(`byteOrder must be 'le' or 'be', got ${String(r.byteOrder)}`);
  if (!Number.isInteger(r.snaplen) || r.snaplen < 1 || r.snaplen > MAX_CAPLEN) throw new PcapError(`snaplen must be 1..${MAX_CAPLEN}, got ${r.snaplen}`);
  return r;
}

/** A whole pcap file in memory. Frames longer than snaplen are cut (origLen keeps the truth). */
export function encodePcap(records: ReadonlyArray<{ tsNs: bigint; data: Uint8Array; origLen?: number }>, opts: PcapWriteOptions = {}): Uint8Array {
  const o = writeOpts(opts);
  let size = GLOBAL_HEADER;
  for (const r of records) size += RECORD_HEADER + Math.min(r.data.length, o.snaplen);
  const out = new Uint8Array(size);
  out.set(globalHeader(o), 0);
  const dv = new DataView(out.buffer);
  let off = GLOBAL_HEADER;
  for (const r of records) {
    const incl = Math.min(r.data.length, o.snaplen);
    writeRecordHeader(dv, off, r.tsNs, incl, Math.max(r.origLen ?? r.data.length, r.data.length), o);
    out.set(r.data.subarray(0, incl), off + RECORD_HEADER);
    off += RECORD_HEADER + incl;
  }
  return out;
}

// Wall-clock nanoseconds with hrtime resolution (Date.now() alone is only milliseconds).
const epochBaseNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
export function nowNs(): bigint { return epochBaseNs + process.hrtime.bigint(); }

/** Streams records to a file through a 1 MiB buffer (one write(2) per MiB, not per frame). */
export class PcapWriter {
  readonly path: string;
  readonly options: Required<PcapWriteOptions>;
  private fd: number;
  private buf = new Uint8Array(1 << 20);
  private dv = new DataView(this.buf.buffer);
  private used = 0;
  private records = 0;

  constructor(path: string, opts: PcapWriteOptions = {}) {
    this.options = writeOpts(opts);
    this.path = path;
    try { this.fd = openSync(path, 'w'); } catch (e) {
      throw Object.assign(new Error(`cannot create pcap file ${path}: ${(e as Error).message}`), { code: (e as NodeJS.ErrnoException).code ?? 'EIO' });
    }
    this.buf.set(globalHeader(this.options), 0);
    this.used = GLOBAL_HEADER;
  }

  get count(): number { return this.records; }

  write(frame: Uint8Array, tsNs: bigint = nowNs(), origLen = frame.length): void {
    if (this.fd < 0) throw Object.assign(new Error(`pcap writer ${this.path} is closed`), { code: 'ECLOSED' });
    const incl = Math.min(frame.length, this.options.snaplen);
    const need = RECORD_HEADER + incl;
    if (this.used + need > this.buf.length) this.flush();
    if (need > this.buf.length) { this.buf = new Uint8Array(need); this.dv = new DataView(this.buf.buffer); }
    writeRecordHeader(this.dv, this.used, tsNs, incl, Math.max(origLen, frame.length), this.options);
    this.buf.set(frame.subarray(0, incl), this.used + RECORD_HEADER);
    this.used += need;
    this.records++;
  }

  flush(): void {
    if (this.fd < 0 || this.used === 0) return;
    let off = 0;
    while (off < this.used) off += writeSync(this.fd, this.buf, off, this.used - off);
    this.used = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}

function emptyStats(): PortStats {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txErrors: 0, oversize: 0 };
}

function checkArea(area: BurstArea, first: number, n: number): Uint8Array {
  const mem = area.memory;
  const end = area.arenaOff + (first + n) * area.slotSize;
  const dend = area.descOff + (first + n) * DESC_SIZE;
  if (!(area.slotSize > 0) || end > mem.byteLength || dend > mem.byteLength || first < 0 || n < 0) {
    throw Object.assign(new RangeError(`burst area out of bounds: slots ${first}..${first + n} exceed the ${mem.byteLength}-byte memory`), { code: 'ERANGE' });
  }
  return new Uint8Array(mem);
}

/** Frames [0,count) of the batch that this port should send, as views into the arena. */
function framesForPort(area: BurstArea, count: number, index: number, stats: PortStats, cb: (frame: Uint8Array) => void): number {
  const u8 = checkArea(area, 0, count);
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let n = 0;
  for (let i = 0; i < count; i++) {
    const d = area.descOff + i * DESC_SIZE;
    const verdict = dv.getUint8(d + D_VERDICT);
    if ((verdict !== V_FORWARD && verdict !== V_REJECT) || dv.getUint16(d + D_OUT_PORT, true) !== index) continue;
    const len = dv.getUint16(d + D_LEN, true);
    if (len === 0 || len > area.slotSize) { stats.oversize++; stats.txErrors++; continue; }
    const s = area.arenaOff + i * area.slotSize;
    cb(u8.subarray(s, s + len));
    n++;
  }
  return n;
}

export interface PcapPortOptions {
  index: number;
  name?: string;
  /** MAC the dataplane presents on this port (default 02:70:63:00:00:<index>). */
  mac?: Uint8Array;
  /** File to replay on rx (or give `records`). Without either the port never receives. */
  path?: string;
  records?: PcapRecord[];
  /** 'fast' (default): every rxBurst delivers up to max frames. 'recorded': a frame becomes
   * available when its offset from the first record (divided by `speed`) has elapsed. */
  timing?: 'fast' | 'recorded';
  speed?: number;
  /** Replay the file again and again (fast timing: endless traffic for benchmarks). */
  loop?: boolean;
  /** Write every frame sent on this port (txBurst) to this pcap file. */
  txPath?: string;
  txOptions?: PcapWriteOptions;
  /** Clock in milliseconds for 'recorded' timing (default performance.now; injectable for tests). */
  clock?: () => number;
}

/** A Port backed by pcap files: rx replays, tx records (or discards and counts). */
export class PcapPort implements Port {
  readonly name: string;
  readonly index: number;
  readonly mac: Uint8Array;
  readonly fd = -1;
  private readonly records: PcapRecord[];
  private next = 0;
  private readonly timing: 'fast' | 'recorded';
  private readonly speed: number;
  private readonly loop: boolean;
  private readonly clock: () => number;
  private startMs = -1;
  private loopOffsetNs = 0n;
  private readonly writer?: PcapWriter;
  private readonly st = emptyStats();
  private closed = false;

  constructor(o: PcapPortOptions) {
    if (!Number.isInteger(o.index) || o.index < 0 || o.index >= 0xffff) throw new PcapError(`port index must be an integer in [0, 65534], got ${o.index}`);
    this.index = o.index;
    this.name = o.name ?? (o.path ? `pcap:${o.path}` : `pcap${o.index}`);
    this.mac = o.mac ? new Uint8Array(o.mac) : Uint8Array.from([0x02, 0x70, 0x63, 0, (o.index >> 8) & 0xff, o.index & 0xff]);
    this.records = o.records ?? (o.path ? readPcap(o.path).records : []);
    this.timing = o.timing ?? 'fast';
    if (this.timing !== 'fast' && this.timing !== 'recorded') throw new PcapError(`timing must be 'fast' or 'recorded', got ${String(this.timing)}`);
    this.speed = o.speed ?? 1;
    if (!(this.speed > 0) || !Number.isFinite(this.speed)) throw new PcapError(`speed must be a positive number, got ${o.speed}`);
    this.loop = o.loop ?? false;
    this.clock = o.clock ?? (() => performance.now());
    if (o.txPath) this.writer = new PcapWriter(o.txPath, o.txOptions);
  }

  /** All records delivered (never true when looping). */
  get done(): boolean { return !this.loop && this.next >= this.records.length; }
  get total(): number { return this.records.length; }

  private ensureOpen(): void {
    if (this.closed) throw Object.assign(new Error(`pcap port ${this.name} is closed`), { code: 'ECLOSED' });
  }

  rxBurst(area: BurstArea, first: number, max: number): number {
    this.ensureOpen();
    const u8 = checkArea(area, first, max);
    if (max <= 0 || this.records.length === 0) return 0;
    const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    const cap = Math.min(area.slotSize, 0xffff);
    const t0 = this.records[0].tsNs;
    if (this.timing === 'recorded' && this.startMs < 0) this.startMs = this.clock();
    const elapsedNs = this.timing === 'recorded' ? BigInt(Math.floor((this.clock() - this.startMs) * 1e6 * this.speed)) : 0n;
    let got = 0;
    // Bounded: oversize frames are skipped, but one call never walks more than 2*max + 16.
    for (let budget = max * 2 + 16; got < max && budget > 0; budget--) {
      if (this.next >= this.records.length) {
        if (!this.loop) break;
        this.loopOffsetNs += this.records[this.records.length - 1].tsNs - t0 + 1n;
        this.next = 0;
      }
      const r = this.records[this.next];
      if (this.timing === 'recorded' && r.tsNs - t0 + this.loopOffsetNs > elapsedNs) break;
      this.next++;
      if (r.data.length > cap) { this.st.oversize++; this.st.rxDropped++; continue; }
      const slot = first + got;
      u8.set(r.data, area.arenaOff + slot * area.slotSize);
      const d = area.descOff + slot * DESC_SIZE;
      dv.setUint16(d + D_LEN, r.data.length, true);
      dv.setUint16(d + D_IN_PORT, this.index, true);
      this.st.rxPackets++;
      this.st.rxBytes += r.data.length;
      got++;
    }
    return got;
  }

  txBurst(area: BurstArea, count: number): number {
    this.ensureOpen();
    return framesForPort(area, count, this.index, this.st, (f) => {
      this.writer?.write(f);
      this.st.txPackets++;
      this.st.txBytes += f.length;
    });
  }

  stats(): PortStats { return { ...this.st }; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer?.close();
  }
}

/** Records another port's traffic (frames received by rxBurst, frames it is about to send in
 * txBurst) into a pcap file; everything else is delegated unchanged. */
export class CapturePort implements Port {
  constructor(readonly inner: Port, readonly writer: PcapWriter, private readonly dirs: { rx?: boolean; tx?: boolean } = {}) {}

  get name(): string { return this.inner.name; }
  get index(): number { return this.inner.index; }
  get mac(): Uint8Array { return this.inner.mac; }
  get fd(): number { return this.inner.fd; }

  rxBurst(area: BurstArea, first: number, max: number): number {
    const n = this.inner.rxBurst(area, first, max);
    if (n > 0 && this.dirs.rx !== false) {
      const u8 = new Uint8Array(area.memory);
      const dv = new DataView(u8.buffer);
      const ts = nowNs();
      for (let i = first; i < first + n; i++) {
        const len = dv.getUint16(area.descOff + i * DESC_SIZE + D_LEN, true);
        const s = area.arenaOff + i * area.slotSize;
        this.writer.write(u8.subarray(s, s + len), ts);
      }
    }
    return n;
  }

  txBurst(area: BurstArea, count: number): number {
    if (this.dirs.tx !== false) {
      const ts = nowNs();
      framesForPort(area, count, this.inner.index, emptyStats(), (f) => this.writer.write(f, ts));
    }
    return this.inner.txBurst(area, count);
  }

  stats(): PortStats { return this.inner.stats(); }

  close(): void {
    this.inner.close();
    this.writer.close();
  }
}
