// The established-flow path in the kernel, as the worker feeds it (config `kernelPath`;
// native/src/kernel_path.rs has the table and the programs; docs/running.md, "The kernel path").
// The core stays the authority: after each burst the worker looks at the frames the core forwarded
// by a conntrack hit and marked as the kernel path's kind (D_AUX, pipeline.ts kernelPathFlow), and
// for a flow whose state allows it gives the kernel an entry — the frame as it arrived (ingress
// interface and 5-tuple, from the flow entry) and as it left (MACs, addresses, ports, from the
// frame in its slot), the egress interface and its MTU, a lifetime. Until the lifetime ends the
// flow's frames of that direction are forwarded by the kernel (the AF_XDP port's XDP program
// passes them to the tc program, the AF_PACKET port's socket filter leaves them to it) and never
// reach the worker; the first one after it comes through the core again — conntrack, affinity and
// counters see the flow at least once a lifetime — and its entry is set anew. An apply removes the
// entries of the flows whose frontend or backend it changes (all of them when it changes the
// routes or the SNAT addresses); every entry stops at once (a generation flush) when the node's
// addresses, a port, an MTU, a neighbour or the flows change, and while a trace or capture runs
// (it must see every frame).
//
// Which flows: IPv4 TCP established with the handshake complete both ways (CTS_TCP_EST and
// CTF_CONFIRMED: never evicted), UDP (CTS_UDP, CTS_UDP_REPLIED); not a flow with the node at an end
// (its TTL is kept, the kernel path decrements it). A UDP flow not yet a stream may be evicted when
// the flow table is full: its entry then carries it to the same backend until the lifetime ends,
// and the core decides it afresh after that (as a flow it never saw). Which frames: those the core
// marks (no SYN/FIN/RST — the state machine sees them —, no IP options, no fragments) and the
// kernel program checks again (TTL > 1, not above the egress MTU).
//
// What it costs: the per-frame scan reads the descriptors of forwarded frames (a branch each when
// nothing is marked); an entry is one bpf(2) update (~1 µs), made at most once per flow and
// direction per half lifetime. What the kernel forwards is counted by the program (per CPU:
// kernel_path_frames / _bytes), not in the per-Service and per-backend counters.
import * as L from '../../assembly/layout.js';
import type { Core } from '../core/host.js';
import type { NativeAddon } from '../ports/native.js';
import { ETH_P_IPV4, IPPROTO_TCP, IPPROTO_UDP } from '../packet/build.js';

/** native/src/kernel_path.rs ENTRY_SIZE: the flow as it arrives (ingress ifindex, saddr, daddr,
 * sport, dport, protocol, 3 zero bytes), then the egress ifindex, the flow as it leaves (saddr,
 * daddr, sport, dport), dst and src MAC, the largest IP length, the lifetime in ms, the MAC the
 * frame arrives addressed to (the ingress port's), 2 zero bytes. */
export const KP_ENTRY_SIZE = 60;
/** native/src/kernel_path.rs KEY_SIZE: the entry's first bytes (what kernelPathRemove takes). */
const KP_KEY_SIZE = 20;
const KP_EGRESS = 20;
const KP_OUT_TUPLE = 24;
const KP_MACS = 36;
const KP_MAX_IP_LEN = 48;
const KP_LIFETIME = 50;
const KP_IN_MAC = 52;
/** Entries one burst gives the kernel at most (one bpf(2) call each); more wait for the next frame. */
const ENTRIES_PER_BURST = 64;
// the frame as it leaves (Ethernet, IPv4 without options)
const ETH_TYPE = 12;
const IP_VHL = 14;
const IP_SADDR = 26;

export interface KernelPathOptions {
  /** Where the ports' interfaces are (the daemon's namespace: undefined). */
  netns?: string;
  /** Flow table entries (an LRU: the least recently used go first when it is full). */
  capacity: number;
  /** How long an entry carries its flow before the next frame goes through the core again (ms). */
  lifetimeMs: number;
}

export interface KernelPathStats {
  frames: number; bytes: number; declined: number; generation: number;
  entriesSet: number; flushes: number; invalidated: number;
}

interface LiveEntry { at: number; key: Uint8Array; front: number; backend: number }

export class KernelPath {
  private readonly handle: number;
  /** By port index: the interfaces the path is attached to, and once their port is open the
   * ifindex and the MAC frames arrive addressed to (the ports whose flows it carries). */
  private readonly attached = new Map<number, string>();
  private readonly open = new Map<number, { ifindex: number; mac: Uint8Array }>();
  private readonly entries = new Uint8Array(KP_ENTRY_SIZE * ENTRIES_PER_BURST);
  private readonly ev = new DataView(this.entries.buffer);
  /** The entries given to the kernel, by flow * 2 + direction: when (core ms: set again only after
   * half a lifetime), their key (to remove them), and the flow's frontend and backend (to know
   * which an apply touches). */
  private readonly live = new Map<number, LiveEntry>();
  private readonly lifetimeMs: number;
  private entriesSet = 0;
  private flushes = 0;
  private invalidated = 0;
  private sweepAbove: number;
  private closed = false;

  constructor(private readonly addon: NativeAddon, private readonly opts: KernelPathOptions, flowTimeoutsMs: readonly number[]) {
    // an entry must end well before the flow could time out in the core, which does not see the
    // frames the kernel carries: a quarter of the shortest timeout of the states it takes
    const shortest = Math.min(flowTimeoutsMs[L.CTS_TCP_EST], flowTimeoutsMs[L.CTS_UDP], flowTimeoutsMs[L.CTS_UDP_REPLIED]);
    this.lifetimeMs = Math.max(1, Math.min(opts.lifetimeMs, Math.floor(shortest / 4), 0xffff));
    this.handle = addon.kernelPathOpen('', opts.netns ?? null, opts.capacity);
    this.sweepAbove = opts.capacity;
  }

  /** The handle a port opens with (openAfXdp's and openAfPacket's kernelPath): its XDP program or
   * socket filter then leaves the path's frames to it. */
  get portHandle(): number { return this.handle; }

  /** The program on port `index`'s interface, before its port opens: `mode` says which port
   * ('xdp': AF_XDP, 'packet': AF_PACKET; native/src/kernel_path.rs Mode). Returns why it could not
   * be (the port then opens without the path; code ENOTCX: the kernel has no tcx), or undefined. */
  attach(index: number, ifname: string, mode: 'xdp' | 'packet'): (Error & { code?: string }) | undefined {
    try {
      this.addon.kernelPathAttach(this.handle, ifname, this.opts.netns ?? null, mode);
    } catch (e) {
      return e as Error;
    }
    this.attached.set(index, ifname);
    return undefined;
  }

  /** The port on `index` is open: frames arriving on `ifindex` addressed to `mac` may be the
   * path's. */
  portOpen(index: number, ifindex: number, mac: Uint8Array): void {
    this.open.set(index, { ifindex, mac });
  }

  /** The port is gone, or opened as something else than it was attached for. */
  detach(index: number): void {
    const name = this.attached.get(index);
    if (name === undefined) return;
    this.flush();
    this.open.delete(index);
    this.attached.delete(index);
    try { this.addon.kernelPathDetach(this.handle, name); } catch { /* the path is closing */ }
  }

  get ports(): number { return this.open.size; }

  /** How long an entry carries its flow (ms): the configured lifetime, capped by the timeouts. */
  get lifetime(): number { return this.lifetimeMs; }

  /** Every entry stops matching now. */
  flush(): void {
    if (this.closed) return;
    this.addon.kernelPathFlush(this.handle);
    this.live.clear();
    this.flushes++;
  }

  /** An apply changed these frontends and backends (upserted or removed): the entries of flows
   * of any of them go; the others stay. Returns how many went. */
  invalidate(fronts: ReadonlySet<number>, backends: ReadonlySet<number>): number {
    if (this.closed || this.live.size === 0) return 0;
    const gone: LiveEntry[] = [];
    for (const [k, e] of this.live) {
      if (!fronts.has(e.front) && !backends.has(e.backend)) continue;
      gone.push(e);
      this.live.delete(k);
    }
    if (gone.length === 0) return 0;
    const keys = new Uint8Array(gone.length * KP_KEY_SIZE);
    gone.forEach((e, i) => keys.set(e.key, i * KP_KEY_SIZE));
    this.addon.kernelPathRemove(this.handle, keys);
    this.invalidated += gone.length;
    return gone.length;
  }

  /** After a burst of `n` frames was processed (and sent): entries for the marked frames' flows. */
  feed(core: Core, n: number, now: number): void {
    if (this.open.size === 0) return;
    const dv = core.dv, u8 = core.u8;
    const descOff = core.map.desc, ctFlows = core.map.ctFlows, arena = core.map.arena, slotSize = core.slotSize;
    const refreshMs = this.lifetimeMs / 2;
    let k = 0;
    for (let i = 0; i < n && k < ENTRIES_PER_BURST; i++) {
      const d = descOff + i * L.DESC_SIZE;
      const aux = dv.getUint32(d + L.D_AUX, true);
      if (aux === 0 || dv.getUint8(d + L.D_VERDICT) !== L.V_FORWARD) continue;
      const inPort = dv.getUint16(d + L.D_IN_PORT, true);
      const inp = this.open.get(inPort);
      const outPort = dv.getUint16(d + L.D_OUT_PORT, true);
      const outp = this.open.get(outPort);
      if (inp === undefined || outp === undefined) continue;
      const reply = (aux & L.AUX_FLOW_REPLY) !== 0;
      const flow = aux & (L.AUX_FLOW_REPLY - 1);
      const key = flow * 2 + (reply ? 1 : 0);
      const last = this.live.get(key)?.at;
      if (last !== undefined && now - last < refreshMs && now >= last) continue;
      const e = ctFlows + flow * L.CT_SIZE;
      if (!this.takes(u8[e + L.CT_PROTO], u8[e + L.CT_STATE], u8[e + L.CT_FLAGS], u8[e + L.CT_FAMILY])) continue;
      const f = arena + i * slotSize;
      if (dv.getUint16(f + ETH_TYPE) !== ETH_P_IPV4 || u8[f + IP_VHL] !== 0x45) continue;
      const mtu = core.portMtu(outPort);
      if (mtu <= 0 || mtu >= 0xffff) continue;
      // the flow as it arrives: the original key, or the reply key (layout.ts, conntrack entry)
      const at = k * KP_ENTRY_SIZE, ev = this.ev, ent = this.entries;
      ev.setUint32(at, inp.ifindex, true);
      if (!reply) {
        ent.set(u8.subarray(e + L.CT_CLIENT, e + L.CT_CLIENT + 4), at + 4);
        ent.set(u8.subarray(e + L.CT_VIP, e + L.CT_VIP + 4), at + 8);
        ev.setUint16(at + 12, dv.getUint16(e + L.CT_CPORT, true));
        ev.setUint16(at + 14, dv.getUint16(e + L.CT_VPORT, true));
      } else {
        ent.set(u8.subarray(e + L.CT_BACKEND, e + L.CT_BACKEND + 4), at + 4);
        const natDst = this.natDestination(core, e, u8[e + L.CT_FLAGS]);
        ent.set(u8.subarray(natDst, natDst + 4), at + 8);
        ev.setUint16(at + 12, dv.getUint16(e + L.CT_BPORT, true));
        ev.setUint16(at + 14, dv.getUint16(e + L.CT_NPORT, true));
      }
      ev.setUint32(at + 16, u8[e + L.CT_PROTO], true);   // the protocol, then three zero bytes
      // the flow as it leaves: the frame in its slot, as the port sent it
      ev.setUint32(at + KP_EGRESS, outp.ifindex, true);
      ent.set(u8.subarray(f + IP_SADDR, f + IP_SADDR + 12), at + KP_OUT_TUPLE);
      ent.set(u8.subarray(f, f + 12), at + KP_MACS);
      ev.setUint16(at + KP_MAX_IP_LEN, mtu, true);
      ev.setUint16(at + KP_LIFETIME, this.lifetimeMs, true);
      ent.set(inp.mac, at + KP_IN_MAC);
      this.live.set(key, { at: now, key: this.entries.slice(at, at + KP_KEY_SIZE), front: dv.getUint32(e + L.CT_FRONT, true), backend: dv.getUint32(e + L.CT_BACKEND_ID, true) });
      k++;
    }
    if (k === 0) return;
    this.entriesSet += this.addon.kernelPathSet(this.handle, this.entries.subarray(0, k * KP_ENTRY_SIZE));
    if (this.live.size > this.sweepAbove) this.forgetExpired(now);
  }

  /** Entries past their lifetime match nothing in the kernel: forgotten. Should the rest still be
   * more than twice the kernel's table, everything is flushed (what is not known cannot be
   * invalidated). */
  private forgetExpired(now: number): void {
    for (const [k, e] of this.live) if (now - e.at >= this.lifetimeMs || now < e.at) this.live.delete(k);
    if (this.live.size > this.opts.capacity * 2) this.flush();
    // the next sweep when half again as many are known (a sweep a burst would cost O(entries))
    this.sweepAbove = Math.max(this.opts.capacity, Math.ceil(this.live.size * 1.5));
  }

  /** Whether a flow of this protocol, state, flags and family may be carried (the module comment). */
  private takes(proto: number, state: number, flags: number, family: number): boolean {
    if (family !== 4 || (flags & L.FLOW_NODE) !== 0) return false;
    if (proto === IPPROTO_TCP) return state === L.CTS_TCP_EST && (flags & L.CTF_CONFIRMED) !== 0;
    return proto === IPPROTO_UDP && (state === L.CTS_UDP || state === L.CTS_UDP_REPLIED);
  }

  /** Where a flow's replies are addressed (the reply key's destination): the client, or the SNAT
   * (hairpin) address the flow was translated to. */
  private natDestination(core: Core, e: number, flags: number): number {
    if ((flags & L.CTF_SNAT) === 0) return e + L.CT_CLIENT;
    return core.map.cfg + ((flags & L.CTF_HAIRPIN) !== 0 ? L.CFG_HAIRPIN_V4 : L.CFG_SNAT_V4);
  }

  stats(): KernelPathStats {
    const s = this.closed ? { frames: 0, bytes: 0, declined: 0, generation: 0 } : this.addon.kernelPathStats(this.handle);
    return { ...s, entriesSet: this.entriesSet, flushes: this.flushes, invalidated: this.invalidated };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.addon.kernelPathClose(this.handle); } catch { /* closed already */ }
  }
}
