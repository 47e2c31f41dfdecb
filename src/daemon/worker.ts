// A forwarding worker (worker_threads entry). Owns one Core and its ports and loops:
//
//   drain control messages (diffs, counter/conntrack/trace requests, ports added/removed)
//                                                                     — between batches only
//   rx burst from every port straight into the core's arena slots
//   core.process(n)                                                   — one Wasm call per batch
//   slow path for V_TO_HOST frames (ARP/ND replies rewritten in place, neighbour learning), and
//   new flows' frames to a backend still being resolved kept until it is (hold-queue.ts)
//   captures see what each port is about to send (observer.sent)
//   tx burst on every port (each sends the frames whose out_port is its index)
//   idle: block in the native `waitReady` (or await relay data) for up to IDLE_WAIT_MS, or until the
//         main thread posts a control message and wakes us (worker-idle.ts, worker-wake.ts)
//
// Control messages are read with receiveMessageOnPort, synchronously, so a worker spinning on
// traffic never has to yield to its event loop to see a diff. Replies go back on the same port.
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as L from '../../assembly/layout.js';
import { Core } from '../core/host.js';
import { traceOnCore } from '../core/dataplane.js';
import type { BurstArea, Port } from '../ports/port.js';
import { formatMac } from '../util/addr.js';
import { L2Responder, canonicalAddr, type Neighbour } from './l2.js';
import { NeighbourCache } from './neighbour-cache.js';
import { ProbeRing } from './probe-ring.js';
import { HoldQueue } from './hold-queue.js';
import { applyReceived, backendRows, keepBackendsAsReceived } from './worker-apply.js';
import { RelayPort } from './relay-port.js';
import { interfaceMtu, interfaceMtuAsync, MTU_REFRESH_MS, MTU_REFRESH_PORTS } from './port-mtu.js';
import type { FromWorker, PortInfo, ToWorker, WorkerInit, WorkerPortSpec } from './protocol.js';
import type { IrFrontend } from '../ir/ir.js';
import { WorkerObserver } from '../observe/worker-observer.js';
import { FlowExport, importFlows, type PortRef } from '../core/flow-export.js';
import { WakeReceiver } from './worker-wake.js';
import { Steering } from './steering.js';
import { fanoutProgram } from '../ports/fanout-program.js';
import { setThreadNice, setThreadRealtime, pinThread } from './thread-priority.js';
import { WorkerIdle, IDLE_WAIT_MS } from './worker-idle.js';
import { startFromImage, writeImageFile, type ImageStartResult } from './table-image-file.js';
import { captureImage, type ImageResume } from '../core/table-image.js';
import { KernelPath } from './kernel-path.js';
// A checkpoint's export while forwarding reads this many table entries between two batches
// (~0.8 MB of flow entries, ~1 ms): a big table costs many short pauses instead of one long one.
const EXPORT_SLICE = 8192;
/** Broadcast probes for unresolved addresses and unicast re-verifications of stale neighbours,
 * each at most this many per probe interval (round-robin, see ProbeRing). */
const PROBES_PER_ROUND = 32;
const NEIGHBOUR_MAX_PROBES = 3;
// Ports' MTUs are read again, MTU_REFRESH_PORTS of them every MTU_REFRESH_MS (round-robin); each
// read is an ioctl on this (the forwarding) thread, a few µs. A TAP in a pod's namespace is read
// here when it opens only: a read there starts a helper thread to enter the namespace (~0.1 ms, a
// stall of the forwarding loop); the main thread reads it while it runs and sends a change
// (`setPortMtu`, PortManager.refreshNamespacedMtus).
/** After an apply the second table set is copied between batches (TableWriter.deferSecondSet), this
 * many bytes a turn: ~0.1 ms of copy, or ~64 first-touch page faults, a pause. */
const TABLE_COPY_SLICE = 256 << 10;
/** The flow table's expiry sweep (flow entries examined for expiry, spread over the whole table: a
 * cache miss each, ~1 µs for 64). The core's own per-batch sweep is off (expireBudget 0): the
 * worker owes EXPIRE_PER_FRAME entries for every frame of a batch, at most EXPIRE_PER_BATCH a
 * batch (the core's former 64 a batch, the same at a blast's batches of 8 frames or more), and
 * sweeps what it owes once that is EXPIRE_PER_BATCH, after the transmit — so a one-frame batch
 * (a request, a reply) pays an eighth of it, and not between its receive and its send. An idle
 * worker sweeps IDLE_EXPIRE_BUDGET entries before a wait, at most once per IDLE_WAIT_MS (5–10 µs,
 * ~100k entries a second), so flows that timed out leave the table and the gauge without traffic. */
const EXPIRE_PER_FRAME = 8;
const EXPIRE_PER_BATCH = 64;
const IDLE_EXPIRE_BUDGET = 1024;
/** A transmit of at most this many frames reads their out ports here and calls only the ports
 * that have frames to send (an addon call each, most of them finding nothing on a node with many
 * ports); a larger one calls every port (each sends the frames addressed to it). */
const TX_SCAN_MAX = 8;

const execFileAsync = promisify(execFile);
/** Control messages after which no kernel path entry may stay (kernel-path.ts): a port, an MTU,
 * a neighbour, the node's addresses or the flows change, or a trace or capture starts (it must see
 * every frame). An apply removes only the entries it touches (kernelPathAfterApply). */
const FLUSHES_KERNEL_PATH: ReadonlySet<ToWorker['type']> = new Set(['removePort', 'setPortMtu', 'forgetNeighbour', 'observe-start', 'nodeAddresses', 'importFlows']);

type NativeModule = typeof import('../ports/native.js');
type NativePortLike = import('../ports/native.js').NativePort;

async function loadNative(): Promise<{ mod?: NativeModule; reason?: string }> {
  try {
    const mod = await import('../ports/native.js');
    const a = mod.nativeAvailable();
    return a.ok ? { mod } : { reason: a.reason };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

/** A port being opened: its names (another add of them waits for it) and, once a removal came
 * for it, the ids of the removals to answer when it is closed. */
interface Opening { name: string; ifname: string; netns?: string; abandon?: number[] }

class Worker {
  private readonly core: Core;
  private readonly l2: L2Responder;
  private ports: Port[] = [];
  private readonly kinds = new Map<number, string>();
  private native?: NativeModule;
  private stopping = false;
  private stopId = -1;
  private readonly learned: NeighbourCache;                   // learned neighbours, with their reachability
  private readonly probeRing = new ProbeRing();               // addresses to resolve, round-robin
  /** Restored neighbours asked for again by broadcast (restoreNeighbour): the probes sent so far
   * (at most NEIGHBOUR_MAX_PROBES), until one is heard from. */
  private readonly verifying = new Map<string, number>();
  private readonly specs = new Map<number, WorkerPortSpec>();
  /** Ports being opened (addPort under way), by index. `abandon`: a removePort came meanwhile (the
   * daemon gave up waiting for the open, or rolled it back): the port is closed as soon as its open
   * ends, never forwarded for, and those removals are answered then — the daemon keeps the index
   * out of use until they are. */
  private readonly opening = new Map<number, Opening>();
  private readonly inject: Array<{ frame: Uint8Array; port: number }> = [];
  private lastProbe = 0;
  private lastMtuRefresh = 0;
  private mtuCursor = 0;
  private readonly slow: Record<string, number> = {};
  private readonly ownPorts = new Set<number>();
  /** Config-file ports closed while their interface is gone (removePort `absent`), until opened again. */
  private readonly absentPorts = new Set<number>();
  private readonly multiWorker: boolean;
  private readonly observer: WorkerObserver;
  private held: boolean;                                      // forwarding paused (start-up restore, stop checkpoint)
  private exporting: { id: number; x: FlowExport } | undefined; // a checkpoint's export in slices
  /** The native waker (an eventfd the main thread writes after posting): 0 without native ports. */
  waker = 0;
  /** Fanout ports shared with the other workers: frames handed to and from them (steering.ts). */
  private readonly steering?: Steering;
  private peerWakers: number[] = [];
  /** Forwarding from a table image until the control plane's first apply (table-image-file.ts). */
  private image?: ImageResume;
  /** Saved runtime ports (optional) this worker could not open at start: a table image is refused then. */
  private readonly unopened: string[] = [];
  /** How the worker waits when idle (set once the ports are open: it needs the waker). */
  private idler?: WorkerIdle;
  /** The established-flow path in the kernel behind this worker's AF_XDP and AF_PACKET ports (config kernelPath). */
  private kernelPath?: KernelPath;

  constructor(private readonly init: WorkerInit, private readonly ctl: MessagePort, private readonly wake: WakeReceiver) {
    const t = init.core.timeouts ?? {};
    this.core = Core.create({ flows: init.core.flows, batchMax: init.core.batchMax, timeouts: t, wasmPath: init.core.wasmPath, hugePages: init.core.hugePages, expireBudget: 0, // run() sweeps (EXPIRE_PER_FRAME)
      ...(init.steer ? { steer: { workers: init.steer.workers, self: init.steer.self, ...(init.steer.retiredSweep ? { retiredSweep: init.steer.retiredSweep } : {}) } } : {}),
      ...(init.core.rejectLimit ? { rejectLimit: { buffer: init.core.rejectLimit } } : {}) });
    keepBackendsAsReceived(this.core);
    this.awaitingNeighbour = new HoldQueue({ slotBytes: this.core.slotSize });
    this.heldSince = new Float64Array(this.core.batchMax);
    // an apply is answered once the new tables are live; the other set is copied afterwards
    this.core.tables.deferSecondSet = true;
    if (init.steer) this.steering = new Steering(this.core, init.steer, (w) => this.wakePeer(w));
    this.l2 = new L2Responder(init.ports, init.nodeAddresses);
    for (const p of init.ports) this.addSpec(p);
    this.programSources();
    this.multiWorker = init.workers > 1;
    this.observer = new WorkerObserver(init.worker, this.core, (events) => this.post({ type: 'observe', events }));
    this.held = init.startHeld ?? false;
    this.learned = new NeighbourCache({ reachableMs: init.neighbourReachableMs ?? 30_000, retransMs: init.probeIntervalMs, maxProbes: NEIGHBOUR_MAX_PROBES });
  }

  private post(m: FromWorker): void { this.ctl.postMessage(m); }

  private addSpec(p: WorkerPortSpec): void {
    this.specs.set(p.index, p);
    this.ownPorts.add(p.index);
    // configured pods without a MAC: asked for on their own port only
    for (const a of p.probe) this.probeRing.hold(a, [p.index]);
  }
  /** What addSpec (and the L2 responder) keep of a port that is gone: a runtime port removed, or
   * a saved one not opened at start. */
  private dropSpec(index: number): void {
    for (const a of this.specs.get(index)?.probe ?? []) this.verifying.delete(a);
    this.specs.delete(index);
    this.ownPorts.delete(index);
    this.l2.removePort(index);
    this.probeRing.dropPort(index);
    this.programSources([index]);
  }
  /** The core answers a routed packet's spent TTL from the address the port's probes use
   * (docs/core.md "Time exceeded"); a port without one (or gone) has none. */
  private programSources(indexes: Iterable<number> = this.specs.keys()): void {
    for (const i of indexes) this.core.setPortAddresses(i, [this.l2.sourceAddress(i, 4), this.l2.sourceAddress(i, 6)].filter((a): a is string => a !== undefined));
  }
  private log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>): void {
    this.post({ type: 'log', level, msg, data });
  }

  async openPorts(): Promise<void> {
    const hp = this.core.hugePages;
    if (hp.advisedBytes > 0) this.log('debug', 'table sets on transparent huge pages', { thp: hp.mode, advisedBytes: hp.advisedBytes });
    else if (this.init.core.hugePages) this.log('warn', 'hugePages: true, but the table sets stay on 4 KiB pages', { thp: hp.mode, reason: hp.reason });
    if (this.init.portBackend !== 'relay') {
      const r = await loadNative();
      this.native = r.mod;
      if (!r.mod) {
        if (this.init.portBackend === 'native') throw new Error(`native ports requested but unavailable: ${r.reason}`);
        this.log('warn', 'native ports unavailable, using the python relay (slow: for demos and tests)', { reason: r.reason });
      }
      if (r.mod) this.waker = r.mod.nativeAddon().wakerOpen();
      if (r.mod && this.init.kernelPath) this.openKernelPath(r.mod);
    }
    // a fanout group's members are numbered in the order they join, and the kernel's program
    // names workers by number: worker w opens its ports after worker w-1 (steering.ts's turn)
    const turn = this.init.steer?.joinTurn ? new Int32Array(this.init.steer.joinTurn) : undefined;
    if (turn) {
      const self = this.init.steer!.self;
      for (let t = Atomics.load(turn, 0), waited = 0; t < self && waited < 30_000; t = Atomics.load(turn, 0), waited += 50) Atomics.wait(turn, 0, t, 50);
      if (Atomics.load(turn, 0) < self) this.log('warn', 'the workers before this one did not open their ports in 30 s: fanout members out of order (frames reach their worker through steering instead)');
    }
    try {
      for (const spec of this.init.ports) {
        if (spec.absent) { this.absentPorts.add(spec.index); this.dropSpec(spec.index); continue; }
        try {
          this.ports.push(await this.openPort(spec));
          this.programMtu(spec, true, await this.openingMtu(spec));
        } catch (e) {
          if (!spec.optional) throw e;
          this.log('warn', 'saved runtime port not opened (its pod is gone?)', { port: spec.name, error: (e as Error).message });
          this.unopened.push(spec.name);
          this.dropSpec(spec.index);
        }
      }
    } catch (e) {
      // all or nothing: a daemon that cannot open every port starts none of them
      for (const p of this.ports) { try { p.close(); } catch { /* closing anyway */ } }
      this.ports = [];
      throw e;
    } finally {
      if (turn) { Atomics.add(turn, 0, 1); Atomics.notify(turn, 0); }
    }
    if (this.kernelPath && this.kernelPath.ports === 0) this.log('warn', 'kernel path: no AF_XDP or AF_PACKET port opened in this worker yet, so it carries nothing until one is (it runs behind those only)');
    this.idler = new WorkerIdle(this.native?.nativeAddon(), this.waker, this.wake);
    this.idler.setPorts(this.ports);
  }

  /** The kernel path (kernel-path.ts), when the config asks for it and this kernel has it; without
   * it the worker forwards every frame itself, as it would anyway. */
  private openKernelPath(nat: NativeModule): void {
    const kp = this.init.kernelPath!;
    try {
      this.kernelPath = new KernelPath(nat.nativeAddon(), { capacity: kp.capacity, lifetimeMs: kp.lifetimeMs, ...(this.init.portNetns ? { netns: this.init.portNetns } : {}) }, this.core.flowTimeouts());
      this.log('info', 'kernel path open: established flows between AF_XDP and AF_PACKET ports are forwarded by the kernel', { capacity: kp.capacity, lifetimeMs: kp.lifetimeMs });
    } catch (e) {
      this.log('warn', 'kernel path unavailable: every frame goes through the worker', { reason: (e as Error).message });
    }
  }

  /** A port with the kernel path on its interface: attached first (the port's XDP program or
   * socket filter leaves the path its frames as soon as it runs), for the kind of port asked for;
   * an `afxdp` port that falls back to AF_PACKET opens without the path (its program would be the
   * wrong one), and the path leaves that interface. */
  private openWithKernelPath<P extends NativePortLike>(spec: WorkerPortSpec, kind: 'xdp' | 'packet', open: (kernelPath?: number) => { port: P; fallback?: string }): { port: P; fallback?: string } {
    const kp = this.kernelPath;
    if (!kp) return open();
    const why = kp.attach(spec.index, spec.ifname, kind);
    if (why) {
      // a kernel before 6.6 has no tcx: the path goes for every port, before any opened with it
      if (why.code === 'ENOTCX' && kp.ports === 0) {
        this.log('warn', 'kernel path unavailable: every frame goes through the worker', { reason: why.message });
        kp.close();
        this.kernelPath = undefined;
      } else this.log('warn', 'kernel path not on this port: its frames all go through the worker', { port: spec.name, reason: why.message });
      return open();
    }
    let r: { port: P; fallback?: string } | undefined;
    try {
      r = open(kp.portHandle);
      if (!r.fallback) kp.portOpen(spec.index, r.port.ifindex, r.port.mac);
      return r;
    } finally {
      if (!r || r.fallback) kp.detach(spec.index);
    }
  }

  private async openPort(spec: WorkerPortSpec): Promise<Port> {
    const nat = this.native;
    const where = this.portNamespace(spec);
    if (nat && this.init.portBackend !== 'relay') {
      try {
        const common = { name: spec.name, index: spec.index, ifname: spec.ifname, mac: spec.mac, offloads: spec.offloads ?? true, ...(where ? { netns: where } : {}) };
        // frames addressed to another host's MAC (flooded by a switch) are not the dataplane's:
        // translated or routed here too they would reach their destination twice
        const packet = { ...common, ringVersion: spec.ring === 'v3' ? 3 as const : 2 as const, otherHost: false,
          // the kernel puts a frame on the worker that owns the client's address, as far as the
          // port's role tells which side the client is (fanout-program.ts); steering does the rest
          ...(spec.fanout ? { fanout: { group: spec.fanout.group, mode: 'cbpf' as const, program: fanoutProgram(spec.role === 'uplink' ? 'src' : 'dst') } } : {}) };
        const xdp = { otherHost: false, ...(spec.rxRing ? { rxRing: spec.rxRing } : {}), ...(spec.xdpMode ? { xdpMode: spec.xdpMode } : {}) }; // AF_XDP only
        let port: NativePortLike;
        // pod TAPs persist across restarts (the pod keeps its interface, addresses, routes);
        // the host port's TAP does not (the node addresses go back to the NIC when wdp stops)
        if (spec.type === 'tap') port = new nat.TapPort!({ ...common, persist: spec.persist ?? spec.role === 'pod', ...(spec.deviceMac ? { deviceMac: spec.deviceMac } : {}), ...(spec.mtu ? { mtu: spec.mtu } : {}) });
        else if (spec.type === 'afxdp' && spec.fanout?.xsk) port = this.openSharedXdp(nat, { ...common, ...xdp }, spec.fanout.xsk);
        else if (spec.type === 'afxdp') {
          const r = this.openWithKernelPath(spec, 'xdp', (kernelPath) => nat.openAfXdpOrPacket!({ ...packet, ...xdp, ...(kernelPath ? { kernelPath } : {}) }));
          if (r.fallback) this.log('warn', 'AF_XDP unavailable, using AF_PACKET on this interface', { port: spec.name, reason: r.fallback });
          else this.log('info', 'AF_XDP port open', { port: spec.name, mode: r.port.zeroCopy ? 'zero-copy' : 'copy' });
          port = r.port;
        } else port = this.openWithKernelPath(spec, 'packet', (kernelPath) => ({ port: new nat.AfPacketPort!({ ...packet, ...(kernelPath ? { kernelPath } : {}) }) })).port;
        this.kinds.set(spec.index, `native-${port.kind === 'af_xdp' ? 'afxdp' : port.kind === 'af_packet' ? 'afpacket' : 'tap'}`);
        return port;
      } catch (e) {
        if (this.init.portBackend === 'native' || spec.fanout) throw new Error(`port ${spec.name} (${spec.type} ${spec.ifname}): ${(e as Error).message}`);
        this.log('warn', 'native port failed, falling back to the python relay', { port: spec.name, error: (e as Error).message });
      }
    }
    if (spec.fanout) throw new Error(`port ${spec.name}: fanout (several workers on one interface) needs the native addon`);
    const kind = spec.type === 'tap' ? 'tap' : 'afpacket'; // the relay reads an afxdp interface with AF_PACKET
    const relay = new RelayPort({ name: spec.name, index: spec.index, kind, ifname: spec.ifname, mac: spec.mac, netns: this.init.portNetns });
    await relay.ready;
    this.kinds.set(spec.index, `relay-${kind}`);
    if (spec.type === 'tap') {
      // The relay creates the TAP where it runs; move it to where it belongs, then bring it up.
      // When that fails the relay goes (and its TAP with it: else it keeps the name taken)
      // `ip` runs as a child process awaited on the event loop: this thread forwards for the
      // worker's other ports meanwhile.
      const inNs = this.init.portNetns ? ['netns', 'exec', this.init.portNetns, 'ip'] : [];
      const ip = (args: string[]) => execFileAsync('ip', [...inNs, ...args]);
      try {
        if (spec.netns && spec.netns !== this.init.portNetns) await ip(['link', 'set', spec.ifname, 'netns', spec.netns]);
        const at = spec.netns ? ['-n', spec.netns] : [];
        if (spec.deviceMac) await ip([...at, 'link', 'set', spec.ifname, 'address', spec.deviceMac]);
        if (spec.mtu) await ip([...at, 'link', 'set', spec.ifname, 'mtu', String(spec.mtu)]);
        await ip([...at, 'link', 'set', spec.ifname, 'up']);
      } catch (e) {
        relay.close();
        this.kinds.delete(spec.index);
        throw e;
      }
    }
    return relay;
  }

  /** The core checks what leaves by this port against its interface's MTU, read now (docs/core.md
   * "Egress MTU"); unreadable: 0, unchecked (the port's send still refuses an oversize frame). */
  private programMtu(spec: WorkerPortSpec, opening = true, mtu = interfaceMtu(spec.ifname, this.portNamespace(spec), this.native?.nativeAddon())): void {
    const value = typeof mtu === 'number' ? mtu : 0;
    const before = this.core.portMtu(spec.index);
    if (!opening && value === before) return;
    this.kernelPath?.flush();
    this.core.setPortMtu(spec.index, value);
    if (typeof mtu !== 'number') this.log('warn', 'port MTU unknown: packets too big for it are not answered with ICMP', { port: spec.name, error: mtu });
    else if (opening) this.log('debug', 'port MTU', { port: spec.name, mtu });
    else this.log('info', 'port MTU changed', { port: spec.name, mtu, was: before });
  }

  /** A port's MTU as it opens, read without stalling the ports this thread already forwards for
   * (a relay TAP in a pod's namespace is read by `ip -n`, a fork). */
  private openingMtu(spec: WorkerPortSpec): Promise<number | string> {
    return interfaceMtuAsync(spec.ifname, this.portNamespace(spec), this.native?.nativeAddon());
  }

  /** Where a port's interface lives: a TAP is created straight inside its target namespace (the fd
   * stays ours); everything else is in the daemon's namespace (or portNetns, in-process use). */
  private portNamespace(spec: WorkerPortSpec): string | undefined {
    return spec.type === 'tap' ? spec.netns ?? this.init.portNetns : this.init.portNetns;
  }

  /** An MTU read outside this thread (a TAP in a pod's namespace) for port `index`, if it is open
   * here; whether it was. */
  private setPortMtu(index: number, mtu: number): boolean {
    const spec = this.specs.get(index);
    if (!spec || !this.ports.some((p) => p.index === index)) return false;
    const was = this.core.portMtu(index);
    if (was === mtu) return true;
    this.core.setPortMtu(index, mtu);
    this.log('info', 'port MTU changed', { port: spec.name, mtu, was });
    return true;
  }

  /** Reads the next few ports' MTUs again (MTU_REFRESH_*): with the native addon only (without
   * it a read in another namespace is a fork). */
  private refreshMtus(now: number): void {
    if (!this.native || now - this.lastMtuRefresh < MTU_REFRESH_MS || this.ports.length === 0) return;
    this.lastMtuRefresh = now;
    for (let k = 0; k < MTU_REFRESH_PORTS && k < this.ports.length; k++) {
      this.mtuCursor = (this.mtuCursor + 1) % this.ports.length;
      const spec = this.specs.get(this.ports[this.mtuCursor].index);
      if (spec && !(spec.type === 'tap' && spec.netns)) this.programMtu(spec, false);
    }
  }

  /** An AF_XDP port every worker shares (fanout): worker w binds the receive queues q with
   * q % workers == w; worker 0 attaches the XDP program and publishes its port's handle, the
   * others join its XSKMAP (they open after it: at start by the join turn, at runtime in worker
   * order). No AF_PACKET fallback: the workers would disagree on what the interface is. */
  private openSharedXdp(nat: NativeModule, opts: import('../ports/native.js').AfXdpPortOptions, xsk: SharedArrayBuffer): NativePortLike {
    const { workers, self } = this.init.steer ?? { workers: this.init.workers, self: this.init.worker };
    const nq = nat.nativeAddon().rxQueues(opts.ifname, opts.netns ?? null);
    if (nq < workers) throw new Error(`AF_XDP interface ${opts.ifname} has ${nq} receive queue(s), fewer than the ${workers} workers sharing it (give it at least ${workers}: ethtool -L, or a veth's numrxqueues)`);
    const queues = Array.from({ length: nq }, (_, q) => q).filter((q) => q % workers === self);
    const shared = new Int32Array(xsk);
    let port: NativePortLike;
    if (self === 0) {
      port = new nat.AfXdpPort!({ ...opts, queues });
      Atomics.store(shared, 0, port.handle);
      Atomics.notify(shared, 0);
    } else {
      if (Atomics.wait(shared, 0, 0, 30_000) === 'timed-out') throw new Error(`AF_XDP port ${opts.name}: worker 0 did not open it within 30 s`);
      port = new nat.AfXdpPort!({ ...opts, queues, shareWith: { handle: Atomics.load(shared, 0) } });
    }
    this.log('info', 'AF_XDP port open', { port: opts.name, mode: port.zeroCopy ? 'zero-copy' : 'copy', queues });
    return port;
  }

  private portRefs(): PortRef[] {
    return this.ports.map((p) => ({ index: p.index, name: p.name, mac: formatMac(p.mac) }));
  }

  /** Before the first batch: resumes from this worker's table image when it matches (then
   * forwards without waiting for the daemon's `forward`); says what became of it. */
  resumeFromImage(): ImageStartResult | undefined {
    const img = this.init.image;
    if (!img) return undefined;
    const { resume, result } = startFromImage(this.core, this.init.worker, this.init.workers, img, this.portRefs(), this.unopened);
    if (!resume) return result;
    this.image = resume;
    for (const a of resume.meta.announced) this.l2.holdAnnounced(a);
    for (const n of img.neighbours) this.restoreNeighbour(n);
    this.held = false;
    return result;
  }

  /** A neighbour saved before the restart, on one of this worker's ports: re-verified like a
   * learned one. One the port resolves by address (a route's `via` next hop, a pod configured
   * without a MAC) is asked for again at once by broadcast (`verifying`): what answers may be
   * another MAC than the one saved (the router was replaced while the daemon was down) — the
   * answer is learned as any (a changed MAC reported: the route follows it); meanwhile, and when
   * nothing answers, the saved MAC is used. */
  private restoreNeighbour(n: Neighbour): void {
    if (!this.ownPorts.has(n.port)) return;
    this.learned.confirm(n, this.core.now());
    if (this.specs.get(n.port)?.probe.includes(n.addr)) { this.verifying.set(n.addr, 0); this.lastProbe = 0; }
  }

  portInfo(): PortInfo[] {
    return this.ports.map((p) => ({ name: p.name, index: p.index, mac: formatMac(p.mac), kind: this.kinds.get(p.index) ?? 'unknown', mtu: this.core.portMtu(p.index), stats: p.stats() }));
  }

  /** Backends without a next hop (id -> address; probeUnresolved asks for them), from the diffs. */
  private readonly unresolved = new Map<number, string>();
  /** Frames to those backends, kept until a diff gives them a next hop (or expired): the core
   * names the backend a no-route drop was meant for in the frame's descriptor (D_AUX). */
  private readonly awaitingNeighbour: HoldQueue;
  /** Batch slots [releasedFrom, releasedTo) hold released frames, first held at heldSince[slot]. */
  private readonly heldSince: Float64Array;
  private releasedFrom = 0;
  private releasedTo = 0;
  /** The released frames' bytes as received (the core counts them again: countRedecided). */
  private releasedBytes = 0;

  /** A port added at runtime (a pod created): opened, then it takes part in the next batch. One
   * removed while it opens (`opening.abandon`) is closed when the open ends instead. */
  private addPort(id: number, spec: WorkerPortSpec): void {
    const busy = this.opening.get(spec.index) ?? [...this.opening.values()].find((o) => o.name === spec.name || (o.ifname === spec.ifname && (o.netns ?? '') === (spec.netns ?? '')));
    if (busy) {
      this.post({ type: 'reply', id, ok: false, error: `port ${busy.name} is still being ${busy.abandon ? 'closed (removed while it was opening)' : 'opened'} in this worker: try again` });
      return;
    }
    if (this.specs.has(spec.index) || this.ports.some((p) => p.name === spec.name)) {
      this.post({ type: 'reply', id, ok: false, error: `port ${spec.name} (index ${spec.index}) is already open in this worker` });
      return;
    }
    const o: Opening = { name: spec.name, ifname: spec.ifname, ...(spec.netns ? { netns: spec.netns } : {}) };
    this.opening.set(spec.index, o);
    void (async () => {
      let port: Port | undefined;
      try {
        port = await this.openPort(spec);
        const mtu = await this.openingMtu(spec);
        if (o.abandon || this.stopping) throw new Error(`port ${spec.name} was removed while it was being opened`);
        this.ports.push(port);
        this.programMtu(spec, true, mtu);
        this.idler?.setPorts(this.ports);
        this.l2.addPort(spec);
        this.addSpec(spec);
        this.programSources([spec.index]);
        this.absentPorts.delete(spec.index);
        this.lastProbe = 0;
        this.opening.delete(spec.index);
        this.post({ type: 'reply', id, ok: true, value: this.portInfo().find((p) => p.index === spec.index) });
      } catch (e) {
        if (port) {
          // removed while it opened (or the worker stops): never read, closed with its interface
          const i = this.ports.indexOf(port);
          if (i >= 0) { this.ports.splice(i, 1); this.idler?.setPorts(this.ports); this.dropSpec(spec.index); this.core.setPortMtu(spec.index, 0); }
          try { port.close({ removeInterface: true }); } catch (c) { this.log('warn', 'closing a port whose open was given up failed', { port: spec.name, error: (c as Error).message }); }
          this.kinds.delete(spec.index);
          this.count('port_open_abandoned');
          this.log('info', 'a port removed while it was being opened is closed', { port: spec.name, index: spec.index });
        }
        this.post({ type: 'reply', id, ok: false, error: (e as Error).message });
        this.opening.delete(spec.index);
        for (const rid of o.abandon ?? []) this.post({ type: 'reply', id: rid, ok: true, value: { removed: port ? spec.name : null } });
      }
    })();
  }

  /** A port removed at runtime (a pod deleted): closed between two batches; what was learned on
   * it is forgotten (and reported, so the daemon stops routing there). Other ports are not touched.
   * One still opening is closed once its open ends, and this removal answered then. */
  private removePort(id: number, index: number, absent: boolean): void {
    if (absent) this.absentPorts.add(index);
    const o = this.opening.get(index);
    if (o) {
      (o.abandon ??= []).push(id);
      return;
    }
    const i = this.ports.findIndex((p) => p.index === index);
    // not open here: a saved fanout port this worker could not open at start, or a removal that
    // failed on another worker and is retried. Nothing to close; an error would leave the port
    // half removed for good (every retry failing here)
    if (i < 0) { this.post({ type: 'reply', id, ok: true, value: { removed: null } }); return; }
    const [port] = this.ports.splice(i, 1);
    this.idler?.setPorts(this.ports);
    // a port removed at runtime (its pod deleted) takes a persistent TAP along: nothing leaks
    try { port.close({ removeInterface: true }); } catch (e) { this.log('warn', 'closing a removed port failed', { port: port.name, error: (e as Error).message }); }
    this.kernelPath?.detach(index);
    this.dropSpec(index);
    this.kinds.delete(index);
    this.core.setPortMtu(index, 0);
    for (const n of this.learned.forgetPort(index)) this.post({ type: 'neighbour-lost', neighbour: n });
    for (let k = this.inject.length - 1; k >= 0; k--) if (this.inject[k].port === index) this.inject.splice(k, 1);
    const lost = this.awaitingNeighbour.dropPort(index);
    this.countN('hold_port_removed', lost);
    if (lost > 0) this.core.countHeldDropped(lost);
    this.post({ type: 'reply', id, ok: true, value: { removed: port.name } });
  }

  /** The entries of the flows whose frontend or backend the apply changed go (the routes or the
   * SNAT addresses changed: all of them); the table switched already, so a frame of theirs that
   * the kernel forwarded meanwhile is one the core would have decided a moment before the switch. */
  private kernelPathAfterApply(d: ReturnType<typeof applyReceived>['diff']): void {
    const kp = this.kernelPath!;
    if (d.routes || d.snat) { kp.flush(); return; }
    const fronts = new Set<number>(), backends = new Set<number>();
    for (const f of d.frontendsUpsert) fronts.add(f.id);
    for (const id of d.frontendsRemove) fronts.add(id);
    const rows = backendRows(d.backendsUpsert);
    for (let i = 0; i < rows.length; i++) backends.add(rows.idAt(i));
    for (const id of d.backendsRemove) backends.add(id);
    kp.invalidate(fronts, backends);
  }

  private announces(kind: IrFrontend['kind']): boolean {
    const a = this.init.announce;
    return !!a && ((kind === 'LoadBalancer' && a.loadBalancerIPs) || (kind === 'ExternalIP' && a.externalIPs));
  }

  private handle(m: ToWorker): void {
    try {
      // what the kernel path's entries were made from may change: they stop first
      if (this.kernelPath && FLUSHES_KERNEL_PATH.has(m.type)) this.kernelPath.flush();
      switch (m.type) {
        case 'apply': {
          // O(diff): the Ir is patched in place (undone if the table write refuses the diff),
          // the answered VIPs and the unresolved backends change by what the diff touches
          const { diff: d, replaced } = applyReceived(this.core, m.diff);
          if (this.kernelPath) this.kernelPathAfterApply(d);
          for (const f of replaced) if (this.announces(f.kind)) this.l2.releaseAnnounced(f.addr);
          for (const f of d.frontendsUpsert) if (this.announces(f.kind)) this.l2.holdAnnounced(f.addr);
          const caughtUp = this.image?.afterApply();
          if (caughtUp) {
            // counters (`wdp counters`, metrics): a catch-up whose tables differ from the image
            this.slow.image_catchup = 1;
            this.slow.image_catchup_differs = caughtUp.equal ? 0 : 1;
            this.slow.image_catchup_remapped_flows = caughtUp.remapped;
            for (const a of this.image!.meta.announced) this.l2.releaseAnnounced(a);
            this.image = undefined;
            this.post({ type: 'image-caught-up', result: caughtUp });
          }
          // answered now: the tables are live; what follows is this worker's own bookkeeping,
          // done before its next batch (at 10k services a pass over 100k backends)
          this.post({ type: 'reply', id: m.id, ok: true, value: { generation: this.core.generation, programmedAtNs: Number(process.hrtime.bigint()) } });
          let newlyUnresolved = false;
          const resolved = (id: number) => {
            const a = this.unresolved.get(id);
            if (a === undefined) return;
            this.unresolved.delete(id);
            this.probeRing.release(a);
            // its frames are decided again in the next batch: now forwarded (or, if still no
            // backend of theirs has a next hop, held again)
            this.countN('hold_released', this.awaitingNeighbour.release(a));
          };
          for (const id of d.backendsRemove) resolved(id);
          const rows = backendRows(d.backendsUpsert);
          for (let i = 0; i < rows.length; i++) {
            const id = rows.idAt(i), outPort = rows.outPortAt(i);
            if (outPort !== L.PORT_NONE && this.unresolved.size === 0) continue; // resolved, and none was unresolved
            const had = this.unresolved.get(id);
            if (outPort !== L.PORT_NONE && had === undefined) continue; // resolved, and was: nothing to do (no address parsed)
            const a = canonicalAddr(rows.addrAt(i));
            if (outPort !== L.PORT_NONE || had !== a) resolved(id);
            if (outPort === L.PORT_NONE && had !== a) {
              this.unresolved.set(id, a);
              if (!this.probeRing.has(a)) newlyUnresolved = true;
              this.probeRing.hold(a);
            }
          }
          if (newlyUnresolved) this.lastProbe = 0; // new backends without a next hop: probe for them now
          return;
        }
        case 'counters': {
          const c = this.core.counters();
          for (const [k, v] of Object.entries(this.slow)) c.global[`slowpath_${k}`] = v;
          for (const [k, ms] of Object.entries(this.loopMs)) if (ms) c.global[`slowpath_time_${k}_ns`] = Math.round(ms * 1e6);
          if (this.batches) { c.global.slowpath_batches = this.batches; c.global.slowpath_frames = this.frames; }
          // idle waits a posted message ended early (coalesced: several messages may share one)
          c.global.worker_wakeups = this.wake.taken + (this.waker ? this.native!.nativeAddon().wakerStats(this.waker).taken : 0);
          if (this.kernelPath) {
            const k = this.kernelPath.stats();
            c.global.kernel_path_frames = k.frames; c.global.kernel_path_bytes = k.bytes; c.global.kernel_path_declined = k.declined;
            c.global.kernel_path_entries_set = k.entriesSet; c.global.kernel_path_flushes = k.flushes; c.global.kernel_path_invalidated = k.invalidated;
          }
          if (this.steering) {
            const st = this.steering.stats;
            c.global.steer_handed_off = st.handedOff; c.global.steer_handed_on = st.handedOn; c.global.steer_received = st.received; c.global.steer_ring_full = st.ringFull;
          }
          this.post({ type: 'reply', id: m.id, ok: true, value: c });
          return;
        }
        case 'conntrack':
          this.post({ type: 'reply', id: m.id, ok: true, value: this.core.flows(m.filter) });
          return;
        case 'trace':
          this.post({ type: 'reply', id: m.id, ok: true, value: traceOnCore(this.core, m.spec) });
          return;
        case 'ports':
          this.post({ type: 'reply', id: m.id, ok: true, value: this.portInfo() });
          return;
        case 'addPort':
          this.addPort(m.id, m.spec);
          return;
        case 'removePort':
          this.removePort(m.id, m.index, m.absent ?? false);
          return;
        case 'setPortMtu':
          this.post({ type: 'reply', id: m.id, ok: true, value: this.setPortMtu(m.index, m.mtu) });
          return;
        case 'forgetNeighbour':
          // the daemon dropped it (e.g. its port went away in another worker): learn it afresh
          this.learned.delete(m.addr);
          this.post({ type: 'reply', id: m.id, ok: true, value: null });
          return;
        case 'observe-start':
          this.observer.start(m.spec);
          this.post({ type: 'reply', id: m.id, ok: true, value: null });
          return;
        case 'observe-stop':
          this.post({ type: 'reply', id: m.id, ok: true, value: this.observer.stop(m.session) });
          return;
        case 'nodeAddresses':
          this.l2.setNodeAddresses(m.addresses);
          this.programSources();
          this.post({ type: 'reply', id: m.id, ok: true, value: this.l2.nodeAddresses() });
          return;
        case 'stop':
          this.finishExport();
          this.stopping = true; this.stopId = m.id;
          return;
        // between batches only (slot 0 stages restored entries): see src/core/flow-export.ts
        case 'exportFlows':
          this.finishExport();
          this.exporting = { id: m.id, x: new FlowExport(this.core, this.portRefs()) };
          if (this.held) this.finishExport();   // nothing forwards: one pass
          return;
        case 'importFlows':
          // the restored neighbours of this worker's ports are re-verified like learned ones
          for (const n of m.neighbours) this.restoreNeighbour(n);
          this.post({ type: 'reply', id: m.id, ok: true, value: importFlows(this.core, m.records, this.portRefs(), m.extraAgeMs) });
          return;
        case 'writeImage': {
          // the writer's bookkeeping describes the tables only once an apply rewrote an image
          if (this.image) throw new Error('the tables are still the table image loaded at start (the control plane never caught up): no image written');
          const t0 = performance.now();
          const announced = [...this.core.ir.frontends.values()].filter((f) => this.announces(f.kind)).map((f) => f.addr);
          const buf = captureImage(this.core, { worker: this.init.worker, workers: this.init.workers, revision: m.revision, inputsHash: m.inputsHash, announced: [...new Set(announced)] });
          const bytes = writeImageFile(m.dir, this.init.worker, buf);
          this.post({ type: 'reply', id: m.id, ok: true, value: { bytes, ms: Math.round(performance.now() - t0) } });
          return;
        }
        case 'steerPeers':
          this.peerWakers = m.wakers;
          this.post({ type: 'reply', id: m.id, ok: true, value: null });
          return;
        case 'forward':
          if (!m.on) this.finishExport();
          this.held = !m.on;
          this.post({ type: 'reply', id: m.id, ok: true, value: { forwarding: m.on } });
          return;
      }
    } catch (e) {
      this.post({ type: 'reply', id: (m as { id: number }).id, ok: false, error: (e as Error).message });
    }
  }

  /** The export in progress, one slice (or, with `all`, the rest); replies once complete. */
  private exportStep(all = false): void {
    const ex = this.exporting;
    if (!ex || !ex.x.step(all ? Infinity : EXPORT_SLICE)) return;
    this.exporting = undefined;
    this.post({ type: 'reply', id: ex.id, ok: true, value: ex.x.result() });
  }

  private finishExport(): void { this.exportStep(true); }

  private drainControl(): void {
    for (let i = 0; i < 64; i++) {
      const r = receiveMessageOnPort(this.ctl);
      if (!r) return;
      this.handle(r.message as ToWorker);
    }
  }

  /** Once per probe interval: broadcast ARP requests / NS for the next PROBES_PER_ROUND
   * unresolved addresses (round-robin over all of them, so none starves), unicast probes for
   * learned neighbours gone stale, and the neighbours that failed them reported lost. */
  private probeUnresolved(now: number): void {
    if (now - this.lastProbe < this.init.probeIntervalMs) return;
    // sharing ports, worker 0 alone probes and learns (ARP/ND are steered to it)
    if (this.steering && this.init.worker !== 0) return;
    this.lastProbe = now;
    const podPorts: number[] = [];
    for (const p of this.specs.values()) if (p.role === 'pod') podPorts.push(p.index);
    // (addresses asked for on their own port — pods without a MAC, routes' next hops — are
    // probed with no pod port too)
    if (podPorts.length || this.probeRing.size) {
      for (const t of this.probeRing.take(PROBES_PER_ROUND, (a) => !this.learned.has(a) || this.verifying.has(a))) {
        let sent = false;
        for (const port of t.ports ?? podPorts) {
          if (!this.specs.has(port)) continue;
          const f = this.l2.probe(t.addr, port);
          if (f) { this.inject.push({ frame: f, port }); sent = true; }
        }
        const tries = this.verifying.get(t.addr);
        if (tries === undefined || !this.learned.has(t.addr)) { this.verifying.delete(t.addr); if (sent) this.count('probe_broadcast'); continue; }
        // a restored neighbour asked for again: at most NEIGHBOUR_MAX_PROBES times
        if (sent) this.count('probe_restored');
        if (tries + 1 >= NEIGHBOUR_MAX_PROBES) this.verifying.delete(t.addr); else this.verifying.set(t.addr, tries + 1);
      }
    }
    const due = this.learned.tick(now, PROBES_PER_ROUND);
    for (const n of due.probe) {
      const f = this.l2.probe(n.addr, n.port, n.mac);
      if (f) { this.inject.push({ frame: f, port: n.port }); this.count('probe_unicast'); }
    }
    for (const n of due.failed) {
      this.count('neighbour_failed');
      this.post({ type: 'neighbour-lost', neighbour: n });
    }
  }

  private count(why: string): void { this.slow[why] = (this.slow[why] ?? 0) + 1; }
  private countN(why: string, n: number): void { if (n > 0) this.slow[why] = (this.slow[why] ?? 0) + n; }
  /** Where loop time goes (ms; reported in ns as slowpath_time_*_ns) and the batches and frames
   * the core saw: fixed fields added to on every batch, not properties looked up by a built name. */
  private readonly loopMs = { rx: 0, core: 0, slow: 0, tx: 0, wait: 0, spin: 0 };
  private batches = 0;
  private frames = 0;

  private readonly portErrorLogged = new Map<string, number>();
  /** A port failing (interface deleted, link down) must not stop the other ports: count it and
   * log at most once per port and direction every 10 s. */
  private portError(p: Port, dir: 'rx' | 'tx', e: Error): void {
    this.count(`port_${dir}_error`);
    const key = `${p.name}/${dir}`;
    const now = Date.now();
    if (now - (this.portErrorLogged.get(key) ?? 0) < 10_000) return;
    this.portErrorLogged.set(key, now);
    this.log('error', `port ${dir} failed`, { port: p.name, error: e.message });
  }

  /** Slow path over the batch just processed: frames handed to the host are answered in place
   * (the reply goes out of the port the request came in on) or consumed. */
  private slowPath(n: number, now: number): void {
    const core = this.core;
    const holding = this.unresolved.size > 0;
    for (let i = 0; i < n; i++) {
      const d = core.descOffset(i);
      const verdict = core.dv.getUint8(d + L.D_VERDICT);
      if (holding && verdict === L.V_DROP && core.dv.getUint8(d + L.D_REASON) === L.REASON_DROP_NO_ROUTE) { this.holdForNeighbour(i, d, now); continue; }
      if (verdict !== L.V_TO_HOST) continue;
      const inPort = core.dv.getUint16(d + L.D_IN_PORT, true);
      const res = this.l2.handle(core.readFrame(i), inPort);
      if (res.action === 'bridge') {
        if (res.learned) this.heard(res.learned);
        // host port <-> its uplink: the frame goes on from where it is (its MACs rewritten, l2.ts)
        if (res.frame) { core.u8.set(res.frame, core.slotOffset(i)); this.count('host_mac_rewritten'); }
        const dv = core.dv;
        dv.setUint16(d + L.D_OUT_PORT, res.port, true);
        dv.setUint8(d + L.D_VERDICT, L.V_FORWARD);
        this.count(res.why);
        continue;
      }
      if (res.learned) this.heard(res.learned);
      if (res.action === 'reply' && res.frame.length <= core.slotSize) {
        core.u8.set(res.frame, core.slotOffset(i));
        const dv = core.dv;
        dv.setUint16(d + L.D_LEN, res.frame.length, true);
        dv.setUint16(d + L.D_OUT_PORT, inPort, true);
        dv.setUint8(d + L.D_VERDICT, L.V_FORWARD);
        this.count(res.frame[12] === 0x08 ? 'arp_answered' : 'nd_answered');
      } else {
        this.count(res.action === 'reply' ? 'reply_oversize' : res.why);
      }
    }
  }

  /** Frame `i` was dropped for want of a route: when the backend the core chose is one still being
   * resolved, a copy waits for it (the frame is as received: nothing rewritten, no flow made). */
  private holdForNeighbour(i: number, d: number, now: number): void {
    const core = this.core;
    const addr = this.unresolved.get(core.dv.getUint32(d + L.D_AUX, true));
    if (addr === undefined) return;
    const len = Math.min(core.dv.getUint16(d + L.D_LEN, true), core.slotSize);
    const since = i >= this.releasedFrom && i < this.releasedTo ? this.heldSince[i] : now;
    const r = this.awaitingNeighbour.hold(addr, core.u8, core.slotOffset(i), len, core.dv.getUint16(d + L.D_IN_PORT, true), since);
    // (a frame over the bounds stays what the core counted it: dropped, drop_no_route)
    if (r === 'held') { this.count('hold_queued'); core.countHeld(1); } else this.count('hold_overflow');
  }

  /** Frames released by a diff go first in the batch (slots from `n` on); returns the new length. */
  private takeReleased(n: number): number {
    const core = this.core, q = this.awaitingNeighbour;
    this.releasedFrom = n;
    this.releasedBytes = 0;
    while (q.releasedPending > 0 && n < core.batchMax) {
      const r = q.takeReleased(core.u8, core.slotOffset(n));
      this.releasedBytes += r & 0xffff;
      this.heldSince[n] = q.takenArrivedAt;
      const d = core.descOffset(n);
      core.dv.setUint16(d + L.D_LEN, r & 0xffff, true);
      core.dv.setUint16(d + L.D_IN_PORT, Math.floor(r / 0x10000), true);
      n++;
    }
    this.releasedTo = n;
    return n;
  }

  private heard(n: Neighbour): void {
    this.verifying.delete(n.addr);
    if (this.learned.confirm(n, this.core.now())) this.post({ type: 'neighbour', neighbour: n });
  }

  /** Frames routed to a port this worker cannot send from are counted instead of lost silently:
   * a config-file port closed while its interface is gone (`port_absent`), and with several
   * workers a port another worker owns (`foreign_port`: its reply would miss this worker's
   * conntrack; the config documents that flows must stay within one worker's ports). A Set
   * lookup a forwarded frame, only with several workers or an absent port. */
  private dropUnsendable(n: number): void {
    const core = this.core, dv = core.dv;
    for (let i = 0; i < n; i++) {
      const d = core.descOffset(i);
      const v = dv.getUint8(d + L.D_VERDICT);
      if (v !== L.V_FORWARD && v !== L.V_REJECT) continue;
      const out = dv.getUint16(d + L.D_OUT_PORT, true);
      if (this.ownPorts.has(out)) continue;
      if (this.absentPorts.has(out)) { dv.setUint8(d + L.D_VERDICT, L.V_DROP); this.count('port_absent'); continue; }
      if (!this.multiWorker) continue;
      dv.setUint8(d + L.D_VERDICT, L.V_DROP);
      this.count('foreign_port');
    }
  }

  /** Host-originated frames (probes) go into free slots after the batch as V_FORWARD. */
  private appendInjected(n: number): number {
    const core = this.core;
    while (this.inject.length && n < core.batchMax) {
      const { frame, port } = this.inject.shift()!;
      core.writeFrame(n, frame, port);
      const d = core.descOffset(n);
      core.dv.setUint16(d + L.D_OUT_PORT, port, true);
      core.dv.setUint8(d + L.D_VERDICT, L.V_FORWARD);
      n++;
    }
    return n;
  }

  /** Sends the burst's `total` frames: every port sends those addressed to it (V_FORWARD or
   * V_REJECT with its index as D_OUT_PORT), so a port with none needs no call. */
  private transmit(area: BurstArea, total: number): void {
    const ports = this.ports;
    let k = -1;   // distinct out ports found (-1: not looked, every port is called)
    if (total <= TX_SCAN_MAX && ports.length > 1) {
      const core = this.core, dv = core.dv, outs = this.txOuts;
      k = 0;
      for (let i = 0; i < total; i++) {
        const d = core.descOffset(i);
        const v = dv.getUint8(d + L.D_VERDICT);
        if (v !== L.V_FORWARD && v !== L.V_REJECT) continue;
        const out = dv.getUint16(d + L.D_OUT_PORT, true);
        let j = 0;
        while (j < k && outs[j] !== out) j++;
        if (j === k) outs[k++] = out;
      }
    }
    for (const p of ports) {
      if (k >= 0) {
        let j = 0;
        while (j < k && this.txOuts[j] !== p.index) j++;
        if (j === k) continue;
      }
      try { p.txBurst(area, total); } catch (e) { this.portError(p, 'tx', e as Error); }
    }
  }
  private readonly txOuts = new Array<number>(TX_SCAN_MAX).fill(0);

  /** Frames were handed to worker `w`: end its idle wait (one eventfd write per burst). */
  private wakePeer(w: number): void {
    const h = this.peerWakers[w];
    if (!h || !this.native) return;
    try { this.native.nativeAddon().wake(h); } catch { this.peerWakers[w] = 0; /* it stopped */ }
  }

  /** Later wakes from the main thread get ECLOSED (handles are never reused), which it ignores. */
  closeWaker(): void {
    if (!this.waker) return;
    try { this.native!.nativeAddon().wakerClose(this.waker); } catch { /* already closed */ }
    this.waker = 0;
  }

  async run(): Promise<void> {
    const core = this.core;
    let rr = 0;
    let lastYield = Date.now();
    // Adaptive busy-poll: within busyPollMs of the last frame an empty rx burst does not block in
    // `wait` — the next frame of a request/response exchange is taken without a sleep and a
    // wake-up (tens of µs each on a busy machine, the bulk of a round trip's tail). Past it the
    // worker blocks as before, so an idle worker costs no CPU.
    const busyPollMs = (this.init.busyPollUs ?? 0) / 1000;
    let lastFrameAt = -Infinity;
    let lastIdleSweep = 0;
    let sweepOwed = 0;
    // Where loop time goes (rx burst / core / slow path / tx burst, and idle waits), in ns,
    // reported as slowpath_time_*_ns counters, with slowpath_batches/slowpath_frames (the mean
    // batch): five clock reads and four additions per busy iteration; an idle wait runs from the
    // iteration's last read to the next iteration's first (no reads of its own).
    const perf = performance;   // (a lazy getter on a worker's global: looked up once)
    const clock = () => perf.now();
    const lp = this.loopMs;
    const idler = this.idler!;
    const kernelPath = this.kernelPath;
    let waitFrom = -1;           // the clock when an idle wait began (-1: none to account)
    let waited = false;          // the last iteration ended in an idle wait (idler.mayHaveFrames holds)
    while (!this.stopping) {
      this.drainControl();
      if (this.stopping) break;
      // a deferred table copy goes on a slice a turn, and an idle worker does not sleep until it is done
      const copying = core.tables.copyStep(TABLE_COPY_SLICE);
      if (this.held) { if (!copying) await this.wake.sleep(IDLE_WAIT_MS); waitFrom = -1; waited = false; continue; }
      this.exportStep();
      core.retired?.poll(core);   // the retired filter's sweep, once every worker has scanned (retired-fronts.ts)
      const now = core.now();
      this.probeUnresolved(now);
      this.refreshMtus(now);
      if (this.awaitingNeighbour.waiting > 0) {
        const expired = this.awaitingNeighbour.expire(now);
        this.countN('hold_expired', expired);
        if (expired > 0) core.countHeldDropped(expired);
      }
      const area = core.burstArea();
      const np = this.ports.length;
      const t0 = clock();
      if (waitFrom >= 0) { lp.wait += t0 - waitFrom; waitFrom = -1; }
      // frames the other workers handed over come first; they were steered already
      let n = this.steering ? this.steering.receive(core.batchMax) : 0;
      // and frames that waited for their backend's neighbour (this worker's own: not steered again)
      this.releasedFrom = this.releasedTo = 0;
      if (this.awaitingNeighbour.releasedPending > 0) n = this.takeReleased(n);
      const fromPeers = n;
      // rotate the first port so one busy port cannot starve the others of batch slots; right
      // after a wait, only the ports it found readable (an addon call each, most of them finding
      // nothing on a node with many ports)
      for (let k = 0; k < np && n < core.batchMax; k++) {
        const i = (rr + k) % np;
        if (waited && !idler.mayHaveFrames(i)) continue;
        const p = this.ports[i];
        try { n += p.rxBurst(area, n, core.batchMax - n); } catch (e) { this.portError(p, 'rx', e as Error); }
      }
      rr = (rr + 1) % Math.max(1, np);
      // A lone frame: the worker was waiting, and one frame is all that came (a request, a reply,
      // a handshake's step). Its sender waits for the answer, so the next frame is one round trip
      // away: the worker waits again right after it instead of reading the rings once more. Not
      // when frames keep coming (a blast): there a frame arrives every few µs, and a second pass
      // finds it where a wait would have gone to sleep and been woken for it (smaller batches,
      // more CPU per frame).
      const lone = waited && n - fromPeers === 1 && n < core.batchMax;
      waited = false;
      if (this.steering) n = this.steering.dispatch(fromPeers, n);
      let t1 = t0, t2 = t0, tEnd = t0;
      if (n > 0) {
        const observing = this.observer.active;
        if (observing) this.observer.before(core, n, this.releasedFrom, this.releasedTo);
        t1 = clock();
        core.process(n, now);
        if (this.releasedTo > this.releasedFrom) core.countRedecided(this.releasedTo - this.releasedFrom, this.releasedBytes);
        t2 = clock();
        if (observing) this.observer.after(core, n);
        this.slowPath(n, now);
        if (this.multiWorker || this.absentPorts.size > 0) this.dropUnsendable(n);
      }
      const total = this.appendInjected(n);
      if (total > 0 && this.observer.capturing) this.observer.sent(core, total);
      if (total > 0) {
        const t3 = clock();
        this.transmit(core.burstArea(), total);
        const t4 = tEnd = clock();
        if (n > 0) { lp.rx += t1 - t0; lp.core += t2 - t1; lp.slow += t3 - t2; } else lp.slow += t3 - t0;
        lp.tx += t4 - t3;
        // the flows whose next frames the kernel can forward, after this burst's frames left
        // (they go first); not while a trace or capture must see every frame
        if (kernelPath && n > 0 && !this.observer.active) { kernelPath.feed(core, n, now); tEnd = clock(); lp.slow += tEnd - t4; }
      } else if (n > 0) {
        // everything dropped or consumed: rx, core and slow path still cost time
        tEnd = clock();
        lp.rx += t1 - t0; lp.core += t2 - t1; lp.slow += tEnd - t2;
      } else tEnd = clock();   // (an empty burst: a wake-up by the waker or the timeout)
      if (n > 0) { this.batches++; this.frames += n; lastFrameAt = t0; }
      // the expiry sweep this batch owes, after its transmit (not between a frame's receive and its send)
      if (n > 0) {
        sweepOwed += Math.min(EXPIRE_PER_BATCH, EXPIRE_PER_FRAME * n);
        if (sweepOwed >= EXPIRE_PER_BATCH) { core.ctExpireStep(sweepOwed, now); sweepOwed = 0; }
      }
      // Wait after an empty burst, and after a lone frame (the wait returns at once, without a
      // system call, when frames came meanwhile: the addon reads the AF_XDP rings first).
      if (n === 0 || (lone && busyPollMs === 0 && this.opening.size === 0)) {
        if (this.steering?.pending() || copying) continue;   // frames another worker handed over are waiting, or a table copy
        if (n === 0 && tEnd - lastFrameAt < busyPollMs) { lp.spin += tEnd - t0; continue; }
        // an idle worker still sweeps its flow table, once per IDLE_WAIT_MS at most: flows that
        // timed out leave it, and the flow gauge, without traffic
        if (now - lastIdleSweep >= IDLE_WAIT_MS || now < lastIdleSweep) { lastIdleSweep = now; core.ctExpireStep(IDLE_EXPIRE_BUDGET, now); }
        waitFrom = tEnd;
        const idled = idler.wait(tEnd);   // undefined: over already, nothing to await (worker-idle.ts)
        if (idled) await idled;
        waited = true;
      }
      else if (this.opening.size > 0) await new Promise((r) => setImmediate(r)); // let a port open finish
      else if (Date.now() - lastYield > 50) {
        // Busy: still let relay ports' pipes and timers run now and then.
        lastYield = Date.now();
        if (this.ports.some((p) => p instanceof RelayPort)) await new Promise((r) => setImmediate(r));
      }
    }
    for (const p of this.ports) { try { p.close(); } catch { /* closing anyway */ } }
    this.kernelPath?.close();   // after the ports: their XDP programs pass frames to its tc program
    this.closeWaker();
    this.post({ type: 'reply', id: this.stopId, ok: true, value: { stopped: true } });
  }
}

async function main(): Promise<void> {
  const { init, port, wakeSignal } = workerData as { init: WorkerInit; port: MessagePort; wakeSignal: SharedArrayBuffer };
  let w: Worker | undefined;
  try {
    w = new Worker(init, port, new WakeReceiver(wakeSignal));
    await w.openPorts();
  } catch (e) {
    w?.closeWaker();
    port.postMessage({ type: 'fatal', message: (e as Error).message } satisfies FromWorker);
    return;
  }
  if (init.workerNice) {
    const why = setThreadNice(init.workerNice);
    port.postMessage({ type: 'log', level: why ? 'warn' : 'debug', msg: why ? 'worker keeps its default priority' : 'worker priority raised', data: { nice: init.workerNice, ...(why ? { reason: why } : {}) } } satisfies FromWorker);
  }
  if (init.workerRealtimePriority) {
    const why = setThreadRealtime(init.workerRealtimePriority);
    port.postMessage({ type: 'log', level: why ? 'warn' : 'debug', msg: why ? 'worker keeps normal scheduling (tail latency on a busy node is higher)' : 'worker runs under SCHED_FIFO', data: { priority: init.workerRealtimePriority, ...(why ? { reason: why } : {}) } } satisfies FromWorker);
  }
  if (init.cpu !== undefined) {
    const why = pinThread(init.cpu);
    port.postMessage({ type: 'log', level: why ? 'warn' : 'debug', msg: why ? 'worker not pinned' : 'worker pinned', data: { cpu: init.cpu, ...(why ? { reason: why } : {}) } } satisfies FromWorker);
  }
  let image: ImageStartResult | undefined;
  try { image = w.resumeFromImage(); } catch (e) { image = { worker: init.worker, used: false, problem: `cannot load: ${(e as Error).message}` }; }
  port.postMessage({ type: 'ready', ports: w.portInfo(), waker: w.waker, ...(image ? { image } : {}) } satisfies FromWorker);
  await w.run();
  port.close();
}

void main();
