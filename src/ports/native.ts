// Native ports: TAP and AF_PACKET (TPACKET_V3 RX ring, sendmmsg TX), backed by the Rust N-API
// addon in native/ (built by `npm run build:native` → native/wdp-native.<platform>.node).
//
// Ports are process-wide objects in the addon, identified by an integer handle: a port opened on
// the main thread can be driven from a worker_thread with `NativePort.fromHandle(handle, ...)`
// (the addon loads once per environment and keeps no JS references). Every call is one batch:
// rxBurst copies frames straight into the Wasm arena slots and fills D_LEN/D_IN_PORT; txBurst
// sends the descriptors whose verdict is V_FORWARD/V_REJECT and D_OUT_PORT is this port's index.
//
// Errors are thrown as Error objects with a `code` ('EPERM' naming the missing capability,
// 'ENODEV', 'ENAMETOOLONG', 'EBUSY', 'ECLOSED', 'ERANGE', 'EINVAL', ...).
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BurstArea, Port, PortStats } from './port.js';
import { formatMac } from '../util/addr.js';

export interface NativePortInfo {
  handle: number;
  kind: 'tap' | 'af_packet' | 'af_xdp';
  fd: number;
  ifindex: number;
  name: string;        // interface name (as the kernel reports it)
  mac: string;         // interface MAC
  netns?: string;
  ringBytes: number;   // AF_PACKET RX ring size, 0 for TAP
  offloads: boolean;   // frames carry a virtio-net header; partial checksums and super-frames are finished at rx
  persistent: boolean; // TAP: the interface outlives the port (TUNSETPERSIST)
  zeroCopy: boolean;   // AF_XDP: every queue bound zero-copy (the driver supports it); false = copy mode
}

export interface NativePortStats extends PortStats {
  rxErrors: number;
  kernelDrops: number; // AF_PACKET: frames the kernel dropped because the RX ring was full
  csumFinished: number; // received CHECKSUM_PARTIAL frames whose checksum was finished here
  gsoFrames: number;    // received GSO/GRO super-frames cut into wire segments here ...
  gsoSegments: number;  // ... and the segments made (also in rxPackets)
  offloadErrors: number; // offloaded frames that could not be finished (also in rxDropped)
  txKicks: number;      // AF_XDP: transmit system calls (sendto); txPackets / txKicks = frames per kick
  unboundQueues: number; // AF_XDP: sockets the kernel unbound (the interface left the namespace): reopen the port
}

type Mem = ArrayBuffer | ArrayBufferView;

/** The raw addon API (see native/src/lib.rs). Prefer the classes below. */
export interface NativeAddon {
  openTap(name: string, netns: string | null, multiQueue: boolean, mac: string | null, mtu: number, up: boolean,
    persist?: boolean, offloads?: boolean): NativePortInfo;
  openAfPacket(name: string, netns: string | null, blockSize: number, blockCount: number, blockTimeoutMs: number,
    fanoutGroup: number, fanoutMode: number, promisc: boolean, ignoreOutgoing: boolean, qdiscBypass: boolean,
    ringVersion?: 2 | 3, frameSize?: number, offloads?: boolean, fanoutProgram?: Uint8Array | null, otherHost?: boolean, ownMac?: string | null, kernelPath?: number | null): NativePortInfo;
  /** Throws with code 'ENOXDP' (or 'EPERM', 'EBUSY') when XDP / AF_XDP cannot be used there. */
  openAfXdp(name: string, netns: string | null, offloads?: boolean, rxRing?: number | null, xdpMode?: 'native' | 'generic' | null,
    queues?: number[] | null, shareWith?: number | null, otherHost?: boolean, ownMac?: string | null, kernelPath?: number | null): NativePortInfo;
  /** An established-flow path in the kernel (native/src/kernel_path.rs; src/daemon/kernel-path.ts
   * feeds it): its flow table of `capacity` entries, and its tcx ingress program on `names`
   * (comma-separated, mode 'alone': nothing in front of it; more with kernelPathAttach). Code
   * ENOTCX before Linux 6.6. */
  kernelPathOpen(names: string, netns: string | null, capacity: number): number;
  /** The program on `name`'s ingress too, for what is in front of it there: an AF_XDP port
   * ('xdp'), an AF_PACKET port ('packet'), nothing ('alone'). Returns the ifindex. */
  kernelPathAttach(handle: number, name: string, netns: string | null, mode: 'xdp' | 'packet' | 'alone'): number;
  kernelPathDetach(handle: number, name: string): boolean;
  /** Adds or replaces entries (KERNEL_PATH_ENTRY_SIZE bytes each, kernel_path.rs); returns how many. */
  kernelPathSet(handle: number, entries: Uint8Array): number;
  kernelPathRemove(handle: number, keys: Uint8Array): number;
  /** Every entry stops matching at once: the new generation. */
  kernelPathFlush(handle: number): number;
  kernelPathStats(handle: number): { frames: number; bytes: number; declined: number; generation: number };
  kernelPathClose(handle: number): void;
  info(handle: number): NativePortInfo;
  rxBurst(handle: number, memory: Mem, arenaOff: number, slotSize: number, descOff: number, first: number, max: number, inPortIndex: number): number;
  txBurst(handle: number, memory: Mem, arenaOff: number, slotSize: number, descOff: number, count: number, portIndex: number): number;
  /** Blocks until a port is readable, `timeoutMs` passes, or `waker` (if not 0) is woken (and
   * then reset); returns the readable ports. */
  wait(handles: number[], timeoutMs: number, waker?: number): number[];
  /** `wait` for a forwarding worker's idle loop (src/daemon/worker-idle.ts): the handles in a
   * Uint32Array made when the ports change, and a mask of the readable ones returned — bit k for
   * `handles[k]`, bit 30 for any at position 30 or above (readyBit) — nothing allocated per
   * call. Returns at once, without poll(2), when an AF_XDP port's RX ring holds frames. */
  waitReady(handles: Uint32Array, timeoutMs: number, waker?: number): number;
  /** The calling thread to SCHED_FIFO at `priority` (1..99), or back to SCHED_OTHER with 0;
   * throws (code EPERM without CAP_SYS_NICE). */
  setThreadRealtime(priority: number): void;
  /** An eventfd-backed waker for `wait` (see src/daemon/worker-wake.ts); handles are never reused. */
  wakerOpen(): number;
  /** Wakes the waker's `wait` (now, or the next one); ECLOSED once it is closed. */
  wake(waker: number): void;
  /** posted: wake calls; taken: wake-ups a wait took (several wakes may coalesce into one). */
  wakerStats(waker: number): { posted: number; taken: number };
  wakerClose(waker: number): void;
  /** The calling thread (a worker) runs only on these CPUs (sched_setaffinity). */
  setThreadAffinity(cpus: number[]): void;
  /** Frames all native ports of this process have received so far (every thread's bursts). */
  rxFrames(): number;
  /** The interface's receive queues (those an AF_XDP port binds by default). */
  rxQueues(name: string, netns: string | null): number;
  /** The interface's MTU (SIOCGIFMTU inside `netns`; no fork). */
  interfaceMtu(name: string, netns: string | null): number;
  stats(handle: number): NativePortStats;
  /** removeInterface: also delete a persistent TAP (otherwise it outlives the port). */
  close(handle: number, removeInterface?: boolean): void;
  /** Deletes the persistent TAP `name` in `netns`; false when no such interface exists. */
  removeTap(name: string, netns: string | null, multiQueue?: boolean): boolean;
  /** Marks the whole 2 MiB pages inside `memory` MADV_HUGEPAGE; returns the bytes advised. */
  adviseHugePages(memory: Mem): number;
  readonly layout: Record<'DESC_SIZE' | 'D_LEN' | 'D_IN_PORT' | 'D_OUT_PORT' | 'D_VERDICT' | 'V_FORWARD' | 'V_REJECT', number>;
  readonly version: string;
}

// ---- locating and loading the addon ------------------------------------------------------

const here = dirname(fileURLToPath(import.meta.url));

/** "-gnu" or "-musl" on Linux, "" elsewhere. Asked of the files first: where native/ holds a
 * build for only one of the two C libraries, that is the one (a musl system cannot have built a
 * glibc addon and vice versa, short of copying one in). Only when both or neither are there is
 * the C library asked for: glibc reports its version in process.report's header, but the report
 * gathers the whole process's state, ~15 ms — which the first full compile paid when it loaded
 * the addon to advise huge pages. */
let libcCache: string | undefined;
function libcTag(): string {
  if (process.platform !== 'linux') return '';
  if (libcCache !== undefined) return libcCache;
  const has = (libc: string): boolean => addonPaths(libc).some((p) => existsSync(p));
  const gnu = has('-gnu'), musl = has('-musl');
  if (gnu !== musl) libcCache = gnu ? '-gnu' : '-musl';
  else {
    const report = (process.report?.getReport?.() ?? {}) as { header?: { glibcVersionRuntime?: string } };
    libcCache = report.header?.glibcVersionRuntime ? '-gnu' : '-musl';
  }
  return libcCache;
}

function platformTag(): string {
  return `${process.platform}-${process.arch}${libcTag()}`;
}

/** native/ at the package root, for this file running from dist/src/ports/ or, under a TS
 * loader, src/ports/. */
function addonPaths(libc: string): string[] {
  const file = `wdp-native.${process.platform}-${process.arch}${libc}.node`;
  return ['../../..', '../..'].map((up) => join(resolve(here, up, 'native'), file));
}

/** Where the addon may be: $WDP_NATIVE_ADDON alone when set (an explicit choice is never
 * silently replaced by another build), else native/ at the package root. */
export function nativeAddonCandidates(): string[] {
  if (process.env.WDP_NATIVE_ADDON) return [resolve(process.env.WDP_NATIVE_ADDON)];
  return addonPaths(libcTag());
}

let cached: { addon?: NativeAddon; reason?: string } | undefined;

function load(): { addon?: NativeAddon; reason?: string } {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    cached = { reason: `native ports (TAP, AF_PACKET) need Linux; this is ${process.platform}` };
    return cached;
  }
  const candidates = nativeAddonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    const dir = resolve(here, '../../../native');
    let built: string[] = [];
    try { built = readdirSync(dir).filter((f) => f.endsWith('.node')); } catch { /* no dir */ }
    cached = {
      reason: `native addon not built for ${platformTag()}: none of ${candidates.join(', ')} exists` +
        (built.length ? ` (found ${built.join(', ')})` : '') +
        ' — run `npm run build:native` (needs a Rust toolchain); pure in-process modes still work',
    };
    return cached;
  }
  try {
    const req = createRequire(import.meta.url);
    cached = { addon: req(path) as NativeAddon };
  } catch (e) {
    cached = { reason: `native addon ${path} failed to load: ${(e as Error).message}` };
  }
  return cached;
}

/** Whether native ports can be used here, and if not, why (shown by the CLI). */
export function nativeAvailable(): { ok: boolean; reason?: string } {
  const r = load();
  return r.addon ? { ok: true } : { ok: false, reason: r.reason };
}

/** The loaded addon; throws an Error with code 'ENOTAVAIL' and the reason otherwise. */
export function nativeAddon(): NativeAddon {
  const r = load();
  if (!r.addon) throw Object.assign(new Error(r.reason ?? 'native addon unavailable'), { code: 'ENOTAVAIL' });
  return r.addon;
}

// ---- helpers -----------------------------------------------------------------------------

function invalid(msg: string): Error {
  return Object.assign(new Error(msg), { code: 'EINVAL' });
}

export function parseMac(mac: string | Uint8Array): Uint8Array {
  if (mac instanceof Uint8Array) {
    if (mac.length !== 6) throw invalid(`MAC must be 6 bytes, got ${mac.length}`);
    return new Uint8Array(mac);
  }
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(mac)) throw invalid(`invalid MAC address '${mac}' (expected aa:bb:cc:dd:ee:ff)`);
  return Uint8Array.from(mac.split(/[:-]/).map((h) => parseInt(h, 16)));
}

function macString(m: Uint8Array): string {
  return [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A stable locally administered unicast MAC for the dataplane side of a TAP (the kernel side
 * keeps the device's own MAC, so the two ends of the "wire" differ). */
function derivedMac(seed: string): Uint8Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  return Uint8Array.from([0x02, 0x77, 0x64, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff]);
}

function checkIndex(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= 0xffff) throw invalid(`port index must be an integer in [0, 65534], got ${index}`);
  return index;
}

// A Uint8Array view per SharedArrayBuffer: N-API reads a SharedArrayBuffer only through a view.
const views = new WeakMap<SharedArrayBuffer, Uint8Array>();
function memArg(m: ArrayBuffer | SharedArrayBuffer): Mem {
  // Anything else (a typed array, or garbage) goes to the addon, which rejects it with EINVAL.
  if (!(typeof SharedArrayBuffer === 'function' && m instanceof SharedArrayBuffer)) return m as Mem;
  let v = views.get(m);
  if (!v) { v = new Uint8Array(m); views.set(m, v); }
  return v;
}

// ---- ports -------------------------------------------------------------------------------

export interface NativePortCommon {
  /** Dataplane port index written into D_IN_PORT and matched against D_OUT_PORT. */
  index: number;
  /** Logical port name (defaults to the interface name). */
  name?: string;
  /** Interface name, at most 15 bytes. */
  ifname: string;
  /** Network namespace (name under /var/run/netns, or a path) to create/open the port in.
   * Default: the namespace of the calling process. */
  netns?: string;
}

export interface TapPortOptions extends NativePortCommon {
  /** MAC the dataplane presents on this link (Port.mac). Default: derived from the name. */
  mac?: string | Uint8Array;
  /** MAC to give the TAP device itself (the kernel/pod side). Default: kernel's choice. */
  deviceMac?: string;
  mtu?: number;
  multiQueue?: boolean;
  /** Bring the device up (default true). */
  up?: boolean;
  /** Keep the device (and the addresses and routes given to it) when the port is closed or the
   * process exits (TUNSETPERSIST); opening the same name again re-attaches to it, also in another
   * namespace. Removed only by close({ removeInterface: true }) or removeTap(). Default false. */
  persist?: boolean;
  /** IFF_VNET_HDR + TUNSETOFFLOAD: the kernel side may send partial checksums and TCP/UDP
   * super-frames (fewer reads), finished by the addon before the core sees them. Default true. */
  offloads?: boolean;
}

export type FanoutMode = 'hash' | 'lb' | 'cpu' | 'rollover' | 'rnd' | 'qm' | 'cbpf';
const FANOUT_MODES: Record<FanoutMode, number> = { hash: 0, lb: 1, cpu: 2, rollover: 3, rnd: 4, qm: 5, cbpf: 6 };

export interface AfPacketPortOptions extends NativePortCommon {
  /** MAC the dataplane presents on this link (Port.mac). Default: the interface's MAC. */
  mac?: string | Uint8Array;
  /** RX ring geometry. Default 32 blocks x 128 KiB = 4 MiB. */
  blockSize?: number;
  blockCount?: number;
  /** TPACKET_V3 (default): block-based, cheapest per frame, but a partly filled block reaches
   * user space only after blockTimeoutMs — up to that much latency at low rates.
   * TPACKET_V2: per-frame slots, frames visible at once (low latency), more per-frame cost. */
  ringVersion?: 2 | 3;
  /** V3: a partly filled block is handed to user space after this long (ms, >= 1). Default 1. */
  blockTimeoutMs?: number;
  /** V2: frame slot size (multiple of 16); frames longer than about frameSize - 64 are dropped
   * as oversize. Default 2048. */
  frameSize?: number;
  /** Join a PACKET_FANOUT group (several sockets/workers sharing one interface's traffic). Mode
   * cbpf: `program` (classic BPF, struct sock_filter records, e.g. src/ports/fanout-program.ts)
   * picks the member. */
  fanout?: { group: number; mode?: FanoutMode; program?: Uint8Array };
  /** Promiscuous mode (default true: the dataplane answers for addresses that are not the
   * interface's own). */
  promisc?: boolean;
  /** Do not see our own transmitted frames (default true). */
  ignoreOutgoing?: boolean;
  /** Unicast frames addressed to another MAC than the port's (`mac`, else the interface's when
   * the port opens: the one it answers ARP/ND with) — flooded by a switch, or taken by a
   * promiscuous interface — are received (default true); false drops them in the kernel with a
   * socket filter, as the kernel's own IP stack ignores them. */
  otherHost?: boolean;
  /** Skip the qdisc layer on transmit (default false). */
  qdiscBypass?: boolean;
  /** PACKET_VNET_HDR: finish frames a local sender left to offload (CHECKSUM_PARTIAL, GSO/GRO
   * super-frames), so peers need no `ethtool -K ... off`. Default true. */
  offloads?: boolean;
  /** A kernel path attached to this interface in mode 'packet': the socket's filter is then the
   * path's, which leaves the frames the path forwards to it (and otherHost's rule as before). */
  kernelPath?: number;
}

export abstract class NativePort implements Port {
  readonly name: string;
  readonly index: number;
  readonly mac: Uint8Array;
  readonly fd: number;
  readonly handle: number;
  readonly ifname: string;
  readonly ifindex: number;
  readonly netns?: string;
  /** MAC of the interface itself. */
  readonly deviceMac: string;
  /** Offloaded frames are finished by the port (virtio-net header); see the options. */
  readonly offloads: boolean;
  /** TAP: the device outlives the port. */
  readonly persistent: boolean;
  /** AF_XDP: bound zero-copy on every queue (the kernel's choice at bind; copy mode otherwise). */
  readonly zeroCopy: boolean;
  protected readonly addon: NativeAddon;
  private closedHere = false;

  protected constructor(addon: NativeAddon, info: NativePortInfo, index: number, name: string | undefined, mac: Uint8Array) {
    this.addon = addon;
    this.handle = info.handle;
    this.fd = info.fd;
    this.ifname = info.name;
    this.ifindex = info.ifindex;
    this.netns = info.netns;
    this.deviceMac = info.mac;
    this.offloads = info.offloads;
    this.persistent = info.persistent;
    this.zeroCopy = info.zeroCopy ?? false;
    this.index = index;
    this.name = name ?? info.name;
    this.mac = mac;
  }

  abstract readonly kind: 'tap' | 'af_packet' | 'af_xdp';

  rxBurst(area: BurstArea, first: number, max: number): number {
    return this.addon.rxBurst(this.handle, memArg(area.memory), area.arenaOff, area.slotSize, area.descOff, first, max, this.index);
  }

  txBurst(area: BurstArea, count: number): number {
    return this.addon.txBurst(this.handle, memArg(area.memory), area.arenaOff, area.slotSize, area.descOff, count, this.index);
  }

  stats(): NativePortStats {
    return this.addon.stats(this.handle);
  }

  /** Closes the port for every thread using its handle. Idempotent on this object.
   * removeInterface: also delete a persistent TAP (by default it outlives the port). */
  close(opts: { removeInterface?: boolean } = {}): void {
    if (this.closedHere) return;
    this.closedHere = true;
    try { this.addon.close(this.handle, opts.removeInterface ?? false); } catch (e) {
      if ((e as { code?: string }).code !== 'ECLOSED') throw e;
    }
  }

  /** Wraps a port opened elsewhere (e.g. on the main thread) for use in this thread. */
  static fromHandle(handle: number, opts: { index: number; name?: string; mac?: string | Uint8Array }): NativePort {
    const addon = nativeAddon();
    const info = addon.info(handle);
    const index = checkIndex(opts.index);
    const mac = opts.mac ? parseMac(opts.mac) : info.kind === 'tap' ? derivedMac(info.name) : parseMac(info.mac);
    if (info.kind === 'tap') return new TapPort(addon, info, index, opts.name, mac);
    return info.kind === 'af_xdp' ? new AfXdpPort(addon, info, index, opts.name, mac) : new AfPacketPort(addon, info, index, opts.name, mac);
  }
}

export class TapPort extends NativePort {
  readonly kind = 'tap' as const;

  /** `new TapPort({ifname, index, ...})` creates (or attaches to) the TAP; see TapPortOptions. */
  constructor(opts: TapPortOptions);
  constructor(addon: NativeAddon, info: NativePortInfo, index: number, name: string | undefined, mac: Uint8Array);
  constructor(...a: unknown[]) {
    const [addon, info, index, name, mac] = a.length === 1 ? openTapArgs(a[0] as TapPortOptions) : (a as PortArgs);
    super(addon, info, index, name, mac);
  }
}

type PortArgs = [NativeAddon, NativePortInfo, number, string | undefined, Uint8Array];

function openTapArgs(o: TapPortOptions): PortArgs {
  const addon = nativeAddon();
  const index = checkIndex(o.index);
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 65521)) throw invalid(`TAP MTU must be 68..65521, got ${o.mtu}`);
  const devMac = o.deviceMac !== undefined ? macString(parseMac(o.deviceMac)) : null;
  const mac = o.mac !== undefined ? parseMac(o.mac) : derivedMac(o.name ?? o.ifname);
  const info = addon.openTap(o.ifname, o.netns ?? null, o.multiQueue ?? false, devMac, o.mtu ?? 0, o.up ?? true,
    o.persist ?? false, o.offloads ?? true);
  return [addon, info, index, o.name, mac];
}

export class AfPacketPort extends NativePort {
  readonly kind = 'af_packet' as const;

  /** `new AfPacketPort({ifname, index, ...})` opens an AF_PACKET socket on an existing interface. */
  constructor(opts: AfPacketPortOptions);
  constructor(addon: NativeAddon, info: NativePortInfo, index: number, name: string | undefined, mac: Uint8Array);
  constructor(...a: unknown[]) {
    const [addon, info, index, name, mac] = a.length === 1 ? openAfPacketArgs(a[0] as AfPacketPortOptions) : (a as PortArgs);
    super(addon, info, index, name, mac);
  }
}

function openAfPacketArgs(o: AfPacketPortOptions): PortArgs {
  const addon = nativeAddon();
  const index = checkIndex(o.index);
  let group = -1, mode = 0;
  if (o.fanout) {
    if (!Number.isInteger(o.fanout.group) || o.fanout.group < 0 || o.fanout.group > 0xffff) throw invalid(`fanout group must be 0..65535, got ${o.fanout.group}`);
    const m = o.fanout.mode ?? 'hash';
    if (!(m in FANOUT_MODES)) throw invalid(`fanout mode must be one of ${Object.keys(FANOUT_MODES).join(', ')}, got ${m}`);
    group = o.fanout.group; mode = FANOUT_MODES[m];
    if ((m === 'cbpf') !== !!o.fanout.program) throw invalid('fanout program is given exactly with mode cbpf');
  }
  const mac = o.mac !== undefined ? parseMac(o.mac) : undefined;
  const info = addon.openAfPacket(o.ifname, o.netns ?? null, o.blockSize ?? 1 << 17, o.blockCount ?? 32, o.blockTimeoutMs ?? 1,
    group, mode, o.promisc ?? true, o.ignoreOutgoing ?? true, o.qdiscBypass ?? false, o.ringVersion ?? 3, o.frameSize ?? 2048,
    o.offloads ?? true, o.fanout?.program ?? null, o.otherHost ?? true, mac ? formatMac(mac) : null, o.kernelPath ?? null);
  return [addon, info, index, o.name, mac ?? parseMac(info.mac)];
}

export interface AfXdpPortOptions extends NativePortCommon {
  mac?: string | Uint8Array;
  /** Verify every TCP/UDP checksum and finish those a local peer left CHECKSUM_PARTIAL (XDP
   * keeps no offload metadata). Default true. */
  offloads?: boolean;
  /** RX and fill ring size per queue, a power of two in 64..16384 (default 4096): the frames the
   * kernel can queue while the worker is busy or not scheduled before it drops them
   * (kernelDrops). Each is a 2 KiB UMEM chunk. */
  rxRing?: number;
  /** Where the XDP program runs: 'native' (the driver's hook, or fail), 'generic' (after the skb
   * is built, any interface). Default: the kernel's choice (native where the driver has it). */
  xdpMode?: 'native' | 'generic';
  /** The receive queues this port binds (default: all of the interface's). */
  queues?: number[];
  /** An open AF_XDP port on the same interface whose XDP program and XSKMAP this port joins with
   * its own `queues`: several ports (one per worker) on one multi-queue interface. The program is
   * attached while that first port is open: close it last. */
  shareWith?: { handle: number };
  /** Unicast frames addressed to another MAC than the port's (`mac`, else the interface's when
   * the port opens) — flooded by a switch — are redirected to the port like the rest (default
   * true); false leaves them to the kernel, whose IP stack drops them. Set by the port that loads
   * the program (not one that joins it). */
  otherHost?: boolean;
  /** A kernel path (kernelPathOpen with behindXdp, attached to this interface) whose frames the
   * XDP program passes to it instead of to the port. */
  kernelPath?: number;
}

/** AF_XDP on an existing interface: an XDP program (loaded by the addon with bpf(2)) redirects
 * every receive queue's frames to an AF_XDP socket (copy mode on veth, zero-copy where the driver
 * offers it); detached on close. Throws code 'ENOXDP' where XDP is not available — callers fall
 * back to AfPacketPort (openAfXdpOrPacket). */
export class AfXdpPort extends NativePort {
  readonly kind = 'af_xdp' as const;

  constructor(opts: AfXdpPortOptions);
  constructor(addon: NativeAddon, info: NativePortInfo, index: number, name: string | undefined, mac: Uint8Array);
  constructor(...a: unknown[]) {
    const [addon, info, index, name, mac] = a.length === 1 ? openAfXdpArgs(a[0] as AfXdpPortOptions) : (a as PortArgs);
    super(addon, info, index, name, mac);
  }
}

function openAfXdpArgs(o: AfXdpPortOptions): PortArgs {
  const addon = nativeAddon();
  const index = checkIndex(o.index);
  const mac = o.mac !== undefined ? parseMac(o.mac) : undefined;
  const info = addon.openAfXdp(o.ifname, o.netns ?? null, o.offloads ?? true, o.rxRing ?? null, o.xdpMode ?? null, o.queues ?? null, o.shareWith?.handle ?? null, o.otherHost ?? true, mac ? formatMac(mac) : null, o.kernelPath ?? null);
  return [addon, info, index, o.name, mac ?? parseMac(info.mac)];
}

/** An AF_XDP port, or — where XDP is unavailable (code ENOXDP/EBUSY) — an AF_PACKET port on the
 * same interface; `fallback` then says why, for the caller's log line. */
export function openAfXdpOrPacket(opts: AfPacketPortOptions & Pick<AfXdpPortOptions, 'rxRing' | 'xdpMode' | 'kernelPath'>): { port: NativePort; fallback?: string } {
  try {
    return { port: new AfXdpPort(opts) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ENOXDP' && code !== 'EBUSY') throw e;
    // (a kernel path attached for the XDP program is not the socket filter's: left out)
    return { port: new AfPacketPort({ ...opts, kernelPath: undefined }), fallback: (e as Error).message };
  }
}

/** Deletes a persistent TAP left by an earlier run (e.g. for a port no longer configured).
 * Returns false when there is no such interface; EBUSY when a process still holds it. */
export function removeTap(ifname: string, opts: { netns?: string; multiQueue?: boolean } = {}): boolean {
  return nativeAddon().removeTap(ifname, opts.netns ?? null, opts.multiQueue ?? false);
}

/** Blocks (poll) up to timeoutMs until one of the native ports is readable, or `waker` (a
 * wakerOpen handle, 0 = none) is woken; returns the readable ports. Non-native ports in the list
 * are ignored. Meant for worker threads: on the main thread it blocks the event loop. */
export function wait(ports: readonly Port[], timeoutMs: number, waker = 0): NativePort[] {
  const natives = ports.filter((p): p is NativePort => p instanceof NativePort);
  const addon = nativeAddon();
  const ms = Math.max(-1, Math.min(0x7fffffff, Math.floor(timeoutMs)));
  const ready = new Set(addon.wait(natives.map((p) => p.handle), ms, waker));
  return natives.filter((p) => ready.has(p.handle));
}

/** The bit waitReady sets when the port at position `k` of its handles is readable. */
export function readyBit(k: number): number { return 1 << Math.min(k, 30); }
