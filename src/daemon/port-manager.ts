// The daemon's ports: the config file's, numbered 0..n-1 at start, plus ports added and removed
// at runtime through the ports API (a CNI plugin attaching a new pod's interface, detaching a
// deleted one). A port's index is what the core's descriptors and the node config's neighbours
// and routes name it by; a removed port's index is not handed out again until the indexes run
// out (a late reply of a deleted pod's flow must not reach the next pod).
//
// Runtime ports are saved in <stateDir>/ports.json (written whole to a temporary file, fsynced,
// renamed over it, the directory fsynced: a crash or power loss leaves the old or the new one)
// after every change, with their indexes, and opened again at the next start under the same indexes, by the
// workers as they start, with the config's ports — so the flows through them, the node config
// that names them and a table image (which all name ports by index) find them as they were. A
// saved port whose interface is gone (the pod was deleted while the daemon was down) is dropped,
// found either here before the start or by its worker, which opens it as optional. A port whose
// interface goes away while the daemon runs is found by the link check (checkLinks): a runtime one
// is removed, a config-file one closed and opened again once its interface is back; a config-file
// pod port whose interface is missing at start starts closed the same way (missingAtStart).
// Changes are serialised: one add/remove/link check at a time.
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { canonicalAddr, eui64LinkLocal } from './l2.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { LATE, within } from '../util/within.js';
import { interfaceMtu, MTU_REFRESH_PORTS, type MtuReader } from './port-mtu.js';
import { ConfigError, parsePortConfig, type DaemonConfig, type PortConfig } from './config.js';
import type { PortInfo, WorkerPortSpec } from './protocol.js';
import { cniGc, type RemovedPorts } from './cni-gc.js';
import { packetSocketIfindexes } from './packet-bindings.js';
import { LinkHandback } from './link-handback.js';
import { claimInterface, InterfaceInUseError, type Claim } from './interface-claim.js';
import { ifindexesNow, ipCmd, ipv6Off, linkOf, macNow, netnsMounted, NETNS_DIR, stableMac, type IfindexNow } from './link-commands.js';
import { foreignClaim, keepKernelOut, kernelChain, letKernelIn, removeStaleChains } from './kernel-drop-chains.js';

export interface ManagedPort {
  config: PortConfig;
  spec: WorkerPortSpec;
  worker: number;
  origin: 'config' | 'api';
}

/** What `GET /api/v1/ports` shows for a port. `state`: `up` (open in its workers), `absent` (a
 * config-file port whose interface is gone: closed until an interface of its name is back,
 * `absentSince` says since when). */
export interface PortView {
  name: string; index: number; type: string; ifname: string; role: string; worker: number;
  origin: 'config' | 'api'; state: 'up' | 'absent'; absentSince?: string; mac: string; kind: string; gateways: string[]; mtu?: number;
  pods: Array<{ ip: string; mac?: string }>; netns?: string; stats?: PortInfo['stats'];
  attachment?: PortConfig['attachment'];
}

export interface PortDataplane {
  addPort(worker: number, spec: WorkerPortSpec): Promise<PortInfo>;
  removePort(worker: number, index: number, absent?: boolean): Promise<void>;
  /** The egress MTU the worker's core checks on port `index` (read outside the worker). */
  setPortMtu(worker: number, index: number, mtu: number): Promise<void>;
  ports(): Promise<PortInfo[]>;
}

/** What the daemon is told of a port change: `reopened` is a config-file port opened again on its
 * re-created interface (same index; its MAC may be another); `mac`: the host port's TAP has
 * another MAC (spec.deviceMac) that could not be set back. */
export type PortChange = 'added' | 'removed' | 'reopened' | 'mac';

/** A config-file port whose interface is gone: closed in its workers once `closed`; `failed`: the
 * last close / reopen error, logged once until another one. */
interface Absence { since: number; closed: boolean; failed?: string }

/** A port being closed in `workers` after its open was given up (PortManager.closing);
 * `asking`: a removal is under way. */
interface Closing { name: string; ifname: string; netns?: string; absent: boolean; workers: Set<number>; asking: Map<number, Promise<void>>; failed?: string }

export class PortError extends Error {
  constructor(message: string, readonly statusCode: number) { super(message); this.name = 'PortError'; }
}

const MAX_INDEX = 0xfffe;
const PORTS_FILE = 'ports.json';
const LINK_STATS_WAIT_MS = 2_000;
/** How long a failed open waits for its workers to confirm they closed it before the error is
 * returned (the rest is confirmed later: PortManager.closing). */
const ABANDON_WAIT_MS = 2_000;
/** The port kinds whose stats say when the kernel unbound their sockets (unboundQueues): AF_XDP
 * sockets (ENETDOWN set on them), the python relay's AF_PACKET helper (ended on ENETDOWN). */
const SAYS_UNBOUND = new Set(['native-afxdp', 'relay-afpacket']);
/** The largest MTU a TAP takes (the kernel's tun driver). */
const TAP_MTU_MAX = 65521;

/** A PACKET_FANOUT group id for port `index` of this daemon: groups are per network namespace and
 * interface, so an id another process already uses on another interface would refuse the join;
 * mixing in the pid keeps two daemons (tests, a restart overlapping its predecessor) apart. */
function fanoutGroup(index: number): number {
  return ((process.pid * 0x9e37) ^ (index * 0x85eb)) & 0xffff;
}

export class PortManager {
  private readonly byIndex = new Map<number, ManagedPort>();
  private readonly info = new Map<number, PortInfo>();
  private nextIndex: number;
  private queue: Promise<unknown> = Promise.resolve();
  private dp?: PortDataplane;
  /** The ifindex each AF_PACKET / AF_XDP port's interface, and each config-file TAP's device, had
   * when it was opened (checkLinks). */
  private readonly ifindexOf = new Map<number, number>();
  /** Config-file ports whose interface is gone, by index (checkLinks). */
  private readonly absent = new Map<number, Absence>();
  /** The link check queued or under way (checkLinks): a timer tick meanwhile joins it. */
  private reaping?: Promise<string[]>;
  /** The namespaced TAPs' MTU read queued or under way (refreshNamespacedMtus), and where it goes on. */
  private mtuReading?: Promise<void>;
  private mtuCursor = 0;
  /** Set at the daemon's stop (close): no port change starts any more. */
  private closed = false;
  /** Ports whose open failed in a worker that may still have it open (it did not answer in time:
   * its open may end later), by index: asked to close it there (the worker closes a port removed
   * while it opens as soon as the open ends, and answers then). Until every such worker confirmed
   * the close the index is not handed out again, nor its name or interface taken by another add;
   * a removal that failed (timed out) is asked again at the next link check. */
  private readonly closing = new Map<number, Closing>();
  /** The IPv6 and link state of the interfaces taken as ports, put back when they are handed back
   * (link-handback.ts). */
  private readonly v6: LinkHandback;
  /** The AF_PACKET / AF_XDP interfaces this daemon's ports hold, by name (in portNetns), with the
   * ifindex each claim is for (interface-claim.ts): taken before a port touches its interface,
   * released once it is handed back. */
  private readonly claims = new Map<string, { ifindex: number; claim: Claim }>();
  private warnedUnclaimed = false;

  constructor(private readonly cfg: DaemonConfig, private readonly log: Logger, private readonly portNetns?: string,
    private readonly hooks: { changed?: (p: ManagedPort, how: PortChange) => Promise<void> | void } = {}) {
    const uplinkOf = (p: PortConfig) => {
      const up = p.uplink ?? cfg.ports.find((q) => q.role === 'uplink')?.name;
      return cfg.ports.findIndex((q) => q.name === up);
    };
    this.v6 = new LinkHandback(cfg.stateDir, log);
    // every port's interface looked at before any is touched: the node's links that are missing
    // are named together, and a start refused for one leaves no other interface taken
    const missing = this.missingAtStart(cfg.ports);
    // ...and so are the interfaces another running wdp holds: claimed, all of them, before any is
    // touched (a start refused for one changes nothing on any interface)
    this.claimAtStart(cfg.ports, missing);
    const specs: WorkerPortSpec[] = [];
    try {
      cfg.ports.forEach((p, index) => specs.push(missing[index] ? this.startAbsent(p, index) : this.prepare(p, index)));
    } catch (e) {
      // (a port that cannot be prepared: it and those prepared before it are the kernel's again)
      cfg.ports.slice(0, specs.length + 1).forEach((p, i) => { if (!missing[i] && p.type !== 'tap') this.handBack(p.ifname, 'the start failed'); });
      // (and the interfaces claimed for the ports after it, untouched, are released)
      for (const { claim } of this.claims.values()) claim.release();
      this.claims.clear();
      throw e;
    }
    // a host port and its uplink are bridged (frames the dataplane does not claim cross over);
    // the host's TAP carries the uplink's MAC, so the node keeps one MAC on the wire, and (unless
    // the port sets mtu) the uplink's MTU: the node's stack sees the link it had on the NIC, and
    // the core does not refuse what the NIC carries (a jumbo uplink) on its way to the host
    cfg.ports.forEach((p, i) => {
      if (p.role !== 'host') return;
      const u = uplinkOf(p);
      specs[i].bridge = u; specs[u].bridge = i;
      specs[i].deviceMac = specs[u].mac;
      if (specs[i].mtu === undefined) {
        const mtu = interfaceMtu(specs[u].ifname, portNetns);
        if (typeof mtu === 'number') specs[i].mtu = Math.min(mtu, TAP_MTU_MAX);
      }
    });
    specs.forEach((spec, i) => this.byIndex.set(i, { config: cfg.ports[i], spec, worker: cfg.ports[i].worker ?? 0, origin: 'config' }));
    this.nextIndex = cfg.ports.length;
    this.restoreSaved();
  }

  /** At the daemon's start, before the workers open the ports: the drop chains of the ports'
   * namespace that none of them accounts for are removed (removeStaleChains). */
  dropStaleKernelChains(): void {
    const chained = this.all().filter((p) => (p.spec.type === 'afpacket' || p.spec.type === 'afxdp') && !this.absent.has(p.spec.index));
    removeStaleChains(new Set(chained.map((p) => kernelChain(p.spec.ifname))), this.portNetns, this.log);
    // ...and the IPv6 and link state of the interfaces such a daemon had taken go back on them
    // (not on one another running wdp holds now: its port's, to leave alone)
    this.v6.giveBackStale(new Set(chained.map((p) => p.spec.ifname)), this.portNetns, (ifname, netns) => foreignClaim(ifname, netns) !== null);
  }

  /** Interface `ifname` is the kernel's again (its port removed or closed for good, the daemon
   * stopping): its drop chain goes, its IPv6 and link state come back as they were before the
   * port took it, and its claim is released (`release` false: kept, the port may take it again).
   * An interface this daemon holds no claim on (another wdp's, or never taken) is not touched. */
  private handBack(ifname: string, why: string, release = true): void {
    const held = this.claims.get(ifname);
    if (!held) return;
    letKernelIn(ifname, this.portNetns);
    this.v6.giveBack(ifname, this.portNetns, why);
    if (!release) return;
    held.claim.release();
    this.claims.delete(ifname);
  }

  /** Claims interface `ifname` (`ifindex` now) for port `port` (interface-claim.ts); throws
   * InterfaceInUseError when another running wdp holds it. A claim this daemon holds for it is
   * kept; one for an earlier interface of that name (re-created) is released. */
  private claim(ifname: string, ifindex: number, port: string): void {
    const had = this.claims.get(ifname);
    if (had?.ifindex === ifindex) return;
    const claim = claimInterface(ifname, this.portNetns, ifindex, this.cfg.stateDir, port);
    had?.claim.release();
    this.claims.set(ifname, { ifindex, claim });
    if (claim.unclaimed && !this.warnedUnclaimed) {
      this.warnedUnclaimed = true;
      this.log.warn({ port, ifname, error: claim.unclaimed }, 'a port\'s interface could not be claimed: another wdp taking it too would not be refused');
    }
  }

  /** Claims the interfaces of the config-file AF_PACKET / AF_XDP ports there are (`missing`: not)
   * before any is touched; refuses the start naming every one another running wdp holds (and
   * releases what it claimed). An interface that cannot be read is left to prepare, which says why. */
  private claimAtStart(ports: PortConfig[], missing: boolean[]): void {
    const refused: string[] = [];
    ports.forEach((p, i) => {
      if (missing[i] || p.type === 'tap') return;
      let ifindex: number;
      try { ifindex = linkOf(p.ifname, this.portNetns).ifindex; } catch { return; }
      try { this.claim(p.ifname, ifindex, p.name); } catch (e) {
        if (!(e instanceof InterfaceInUseError)) throw e;
        refused.push(`port "${p.name}": ${e.message}`);
      }
    });
    if (!refused.length) return;
    for (const { claim } of this.claims.values()) claim.release();
    this.claims.clear();
    throw new InterfaceInUseError(refused.join('\n'));
  }

  /** Whether each config-file port `p`'s interface is missing now, so it starts absent rather than
   * failing the start (a pod's veth gone while the daemon was down; the link check opens it when
   * it appears, as it reopens one that goes while the daemon runs): an AF_PACKET / AF_XDP port
   * whose interface name does not exist, a TAP whose pod namespace does not. Not for the uplink or
   * host port: the node's own link must be there at start (docs/running.md says why) — a missing
   * one fails the start naming it (every one missing). An interface that exists but is no Ethernet, or that a worker
   * cannot open, fails the start as before; so does one whose namespace cannot be read now. */
  private missingAtStart(ports: PortConfig[]): boolean[] {
    const missing = ports.map((p) => this.linkNow(p) === 'gone');
    const node = ports.filter((p, i) => missing[i] && (p.role === 'uplink' || p.role === 'host'));
    if (node.length) {
      throw new ConfigError(node.map((p) => `port "${p.name}" (role ${p.role}): ${p.type === 'tap' ? `network namespace ${p.netns}` : `interface "${p.ifname}"`} does not exist: ` +
        'the node\'s own link must exist at start (only pod ports start absent)').join('\n'));
    }
    return missing;
  }

  /** The spec of config-file port `p`, whose interface is missing at start: the workers keep it
   * closed (`absent`: what is routed to it is dropped and counted, slowpath_port_absent) until the
   * link check opens it (reopen, as for a port whose interface went while the daemon ran). Its
   * MAC until then is its `mac:` or a stable made-up one — the neighbours and routes naming it are
   * programmed again with the real one when it opens. Logged once. */
  private startAbsent(p: PortConfig, index: number): WorkerPortSpec {
    this.absent.set(index, { since: Date.now(), closed: true });
    const what = p.type === 'tap' ? 'a port\'s network namespace does not exist at start: port absent, opened when the namespace appears'
      : 'a port\'s interface does not exist at start: port absent, opened when an interface of that name appears';
    // a pod port none of whose pods is configured and no route names (a pod-facing link that
    // this node does not have: its pods are attached by the CNI plugin, each a port of its own)
    // loses nothing while absent — said at info level; else what is routed to it is dropped
    const idle = p.pods.length === 0 && !this.cfg.routes.some((r) => r.port === p.name);
    const fields = { port: p.name, ...(p.type === 'tap' ? { netns: p.netns } : { ifname: p.ifname }) };
    if (idle) this.log.info(fields, `${what} (no pod of it is configured, no route names it: nothing is routed to it until then)`);
    else this.log.warn(fields, what);
    return { ...this.specOf(p, index, p.mac ?? this.madeUpMac(p)), absent: true };
  }

  /** The runtime ports saved at the last stop, under their saved indexes (a free one when that is
   * taken, e.g. by a port added to the config since), opened by the workers at start. */
  private restoreSaved(): void {
    const { ports, indexes, attachments } = this.loadSaved();
    // new indexes (for a saved one that is taken) above every saved one (above the highest, the
    // indexes have run out: allocIndex then takes the lowest free one, never a taken one)
    for (const n of indexes) if (Number.isInteger(n) && n >= this.nextIndex && n <= MAX_INDEX) this.nextIndex = n + 1;
    ports.forEach((raw, i) => {
      // the interface prepare may have taken before it (or the check after it) failed: handed back
      let taking: string | undefined;
      try {
        let p = parsePortConfig(raw);
        // its CNI attachment (cni-gc.ts), if one was saved: a bad one costs the port only that
        if (attachments[i]) {
          try { p = parsePortConfig({ ...p, attachment: attachments[i] }); } catch (e) {
            this.log.warn({ port: p.name, error: (e as Error).message }, 'saved CNI attachment unreadable: the port is restored without it (a CNI GC leaves it alone)');
          }
        }
        this.checkAdd(p);
        const want = indexes[i];
        const index = Number.isInteger(want) && want >= this.cfg.ports.length && want <= MAX_INDEX && !this.byIndex.has(want) ? want : this.allocIndex();
        if (p.type !== 'tap') taking = p.ifname;   // (checkAdd: no other port has it)
        const spec = { ...this.prepare(p, index), optional: true };
        if (spec.type === 'tap' && spec.netns && !existsSync(join(NETNS_DIR, spec.netns))) throw new Error(`network namespace ${spec.netns} is gone`);
        this.byIndex.set(index, { config: p, spec, worker: p.worker ?? 0, origin: 'api' });
      } catch (e) {
        if (taking) this.handBack(taking, 'its saved runtime port is not restored');
        this.log.warn({ port: (raw as { name?: string }).name, error: (e as Error).message }, 'saved runtime port not restored (its pod is gone?)');
      }
    });
  }

  /** Resolves the port's MAC and gets an AF_PACKET / AF_XDP interface ready (IPv6 off, kernel out). */
  private prepare(p: PortConfig, index: number): WorkerPortSpec {
    const netns = this.portNetns;
    let mac = p.mac;
    if (p.type === 'afpacket' || p.type === 'afxdp') {
      const have = linkOf(p.ifname, netns);
      // nothing is touched on an interface another running wdp holds (interface-claim.ts)
      this.claim(p.ifname, have.ifindex, p.name);
      mac ??= have.mac;
      this.ifindexOf.set(index, have.ifindex);
      this.takeInterface(p.ifname, p.name, p.mac);
    }
    mac ??= this.madeUpMac(p);
    // the port asks for a link-local next hop from, and answers for, its MAC's EUI-64 link-local
    // address: a route via it names the port itself (config.ts checks a configured mac already)
    const own = eui64LinkLocal(mac);
    const self = this.cfg.routes.findIndex((r) => r.port === p.name && r.via !== undefined && canonicalAddr(r.via) === own);
    if (self >= 0) throw new ConfigError(`config routes[${self}].via: must be another host's address, not port "${p.name}"'s own link-local address ${own} (the modified EUI-64 of its MAC ${mac})`);
    return this.specOf(p, index, mac);
  }

  /** Takes AF_PACKET / AF_XDP interface `ifname` for port `port` (claimed already): what it has is
   * saved (link-handback.ts: to put back at the hand-back), then its MAC set to `mac` (the port's
   * `mac:`, if any), IPv6 off, the kernel kept off it, the link up. The interface only carries
   * frames to/from the dataplane: the kernel must not answer or originate anything on it (IPv6
   * autoconf/ND). Offloads stay on: the native port finishes partial checksums and segments
   * super-frames (native/src/offload.rs). */
  private takeInterface(ifname: string, port: string, mac?: string): void {
    const netns = this.portNetns;
    this.v6.take(ifname, netns, port, mac);
    if (mac && mac.toLowerCase() !== macNow(ifname, netns)) ipCmd(netns, ['link', 'set', 'dev', ifname, 'address', mac]);
    ipv6Off(ifname, netns, this.log, port);
    keepKernelOut(ifname, netns, this.log, port);
    ipCmd(netns, ['link', 'set', 'dev', ifname, 'up']);
  }

  /** The MAC of a TAP's dataplane side without `mac:` (and of a port absent at start until it opens). */
  private madeUpMac(p: PortConfig): string { return stableMac(`wdp/${this.cfg.node.name}/${p.name}`); }

  /** What the workers are told of port `p` under `index` with `mac`. */
  private specOf(p: PortConfig, index: number, mac: string): WorkerPortSpec {
    return {
      index, name: p.name, type: p.type, ifname: p.ifname, mac, role: p.role,
      gateways: p.gateways.map(canonicalAddr), learn: p.learn ?? p.role === 'pod',
      // pods without a MAC and the next hops of routes `via` an address on this port
      probe: [...p.pods.filter((x) => !x.mac).map((x) => x.ip), ...this.cfg.routes.flatMap((r) => (r.via && r.port === p.name ? [r.via] : []))].map(canonicalAddr),
      ...(p.netns ? { netns: p.netns } : {}),
      ...(p.ring ? { ring: p.ring } : {}),
      ...(p.rxRing ? { rxRing: p.rxRing } : {}),
      ...(p.xdpMode ? { xdpMode: p.xdpMode } : {}),
      ...(p.offloads !== undefined ? { offloads: p.offloads } : {}),
      ...(p.persist !== undefined ? { persist: p.persist } : {}),
      ...(p.mtu !== undefined ? { mtu: p.mtu } : {}),
      ...(p.fanout ? { fanout: { group: fanoutGroup(index), ...(p.type === 'afxdp' ? { xsk: new SharedArrayBuffer(4) } : {}) } } : {}),
    };
  }

  /** The workers a port is opened in: all of them for a fanout port, in worker order (a fanout
   * group numbers its members in the order they join; its program names workers by number). */
  private workersOf(p: ManagedPort): number[] {
    return p.spec.fanout ? Array.from({ length: this.cfg.workers }, (_, w) => w) : [p.worker];
  }

  /** The ports the workers start with: the config file's and the saved runtime ones. */
  initialSpecs(): WorkerPortSpec[] { return [...this.byIndex.values()].map((p) => p.spec); }

  /** The workers a port is opened in at start (its worker; every one for a fanout port). */
  opensIn(spec: WorkerPortSpec, worker: number): boolean { return !!spec.fanout || this.byIndex.get(spec.index)?.worker === worker; }

  /** Once the workers run: their ports' MACs and kinds; a saved runtime port no worker could open
   * (its interface went away meanwhile) is dropped. Every port absent is said (warn). */
  async attach(dp: PortDataplane): Promise<void> {
    this.dp = dp;
    for (const i of await dp.ports()) this.info.set(i.index, i);
    this.noteTapIfindexes(this.all().filter((p) => p.origin === 'config' && this.info.has(p.spec.index)));
    for (const p of this.all()) {
      if (p.origin !== 'api' || this.info.has(p.spec.index)) continue;
      this.byIndex.delete(p.spec.index);
      if (p.spec.type !== 'tap') this.handBack(p.spec.ifname, 'saved runtime port not restored');
      this.log.warn({ port: p.spec.name }, 'saved runtime port not restored (its pod is gone?): no worker could open it');
      await this.hooks.changed?.(p, 'removed');
    }
    this.save();
    if (this.all().every((p) => this.absent.has(p.spec.index))) {
      this.log.warn({ ports: this.all().map((p) => p.spec.name) }, 'every port is absent: the daemon runs (API, health) but forwards nothing until an interface appears');
    }
  }

  /** The namespace a port's interface is in: a TAP's own (`netns:`), else the ports' namespace. */
  private nsOf(spec: WorkerPortSpec): string | undefined {
    return spec.type === 'tap' ? spec.netns ?? this.portNetns : this.portNetns;
  }

  /** Records the ifindex of the TAPs among `ports`, once their workers created them, so the link
   * check sees one deleted (or its namespace gone) and opens it again (checkLinks). A TAP whose
   * device cannot be read now is not watched. */
  private noteTapIfindexes(ports: ManagedPort[]): void {
    for (const p of ports) {
      if (p.spec.type !== 'tap') continue;
      const at = ifindexesNow([p.spec.ifname], this.nsOf(p.spec))(p.spec.ifname);
      if (typeof at === 'number') this.ifindexOf.set(p.spec.index, at);
    }
  }

  get(index: number): ManagedPort | undefined { return this.byIndex.get(index); }
  byName(name: string): ManagedPort | undefined { return [...this.byIndex.values()].find((p) => p.spec.name === name); }
  all(): ManagedPort[] { return [...this.byIndex.values()]; }
  /** The MAC the dataplane presents on port `index` (native AF_PACKET ports report the interface's). */
  mac(index: number): string | undefined { return this.info.get(index)?.mac ?? this.byIndex.get(index)?.spec.mac; }
  portInfo(): PortInfo[] { return [...this.info.values()].sort((a, b) => a.index - b.index); }

  async list(): Promise<PortView[]> {
    const live = this.dp ? await this.dp.ports() : [];
    return this.all().map((p) => this.view(p, live.find((i) => i.index === p.spec.index)));
  }

  private view(p: ManagedPort, live?: PortInfo): PortView {
    const absent = this.absent.get(p.spec.index);
    // an absent port has no live figures, even in the moment between the link check seeing its
    // interface gone and its worker closing it (the worker's last stats are of a dead device)
    if (absent) live = undefined;
    return {
      name: p.spec.name, index: p.spec.index, type: p.spec.type, ifname: p.spec.ifname, role: p.spec.role,
      worker: p.worker, origin: p.origin, state: absent ? 'absent' : 'up', ...(absent ? { absentSince: new Date(absent.since).toISOString() } : {}),
      mac: live?.mac ?? this.mac(p.spec.index) ?? p.spec.mac,
      kind: live?.kind ?? this.info.get(p.spec.index)?.kind ?? 'unknown', gateways: p.spec.gateways,
      pods: p.config.pods, ...(p.config.attachment ? { attachment: p.config.attachment } : {}), ...(p.spec.netns ? { netns: p.spec.netns } : {}), ...(live?.mtu ? { mtu: live.mtu } : {}), ...(live ? { stats: live.stats } : {}),
    };
  }

  /** Adds a port while the workers forward (validated like a config port). */
  add(raw: unknown, o: { save?: boolean } = {}): Promise<PortView> {
    return this.serial(async () => {
      if (!this.dp || this.closed) throw new PortError('the dataplane is not running', 503);
      let p: PortConfig;
      try { p = parsePortConfig(raw); } catch (e) { throw new PortError((e as Error).message, 422); }
      // a runtime port on an interface of this name, or with one of its pod addresses, whose
      // interface is gone (re-created for this pod, or the address given again by the IPAM,
      // before the link check saw it) is an old pod's: removed first, as the check would
      const addrs = new Set((p.pods ?? []).map((x) => canonicalAddr(x.ip)));
      const stale = this.goneOf(this.all().filter((q) => q.origin === 'api' && ((q.spec.ifname === p.ifname && (q.spec.netns ?? '') === (p.netns ?? '')) || q.config.pods.some((x) => addrs.has(canonicalAddr(x.ip))))));
      for (const q of stale) await this.reap(q);
      this.checkAdd(p);
      const worker = p.worker ?? 0;
      const index = this.allocIndex();
      // saved before anything touches its interface (prepare keeps the kernel off it): a crash
      // from here on restarts with the port, which the runtime's DEL (its ADD failed) or GC
      // removes, handing the interface back — never a drop chain that no port accounts for
      if (o.save !== false) this.save({ add: { config: p, index } });
      // a failure from here on leaves nothing either: the interface the kernel's again, unsaved
      const undo = () => { if (p.type !== 'tap') this.handBack(p.ifname, 'port add failed'); if (o.save !== false) this.save(); };
      let spec: WorkerPortSpec;
      try { spec = this.prepare(p, index); } catch (e) { undo(); throw new PortError((e as Error).message, e instanceof InterfaceInUseError ? 409 : e instanceof ConfigError ? 422 : 500); }
      const mp: ManagedPort = { config: p, spec, worker, origin: 'api' };
      // registered before the workers open it: a neighbour the first one learns there while the
      // others still open it must find the port (it is not reported again until it ages)
      this.byIndex.set(index, mp);
      let info: PortInfo;
      try { info = await this.openIn(mp); } catch (e) {
        this.byIndex.delete(index);
        undo();
        throw new PortError(`port ${p.name}: ${(e as Error).message}`, 500);
      }
      this.info.set(index, info);
      if (o.save !== false) this.save();
      this.log.info({ port: p.name, index, ifname: p.ifname, mac: info.mac, kind: info.kind, worker }, 'port added');
      await this.hooks.changed?.(mp, 'added');
      return this.view(mp, info);
    });
  }

  /** Opens port `p` (its spec) in its workers; what one of them reports of it. When one fails,
   * those that opened it close it again (`absent`: as a port that stays absent, a reopen), and so
   * does the one that failed — an open that did not answer in time may still end there
   * (`closing`: the index stays out of use until it confirms) — and the error is thrown. */
  private async openIn(p: ManagedPort, absent = false): Promise<PortInfo> {
    let info: PortInfo | undefined;
    const opened: number[] = [];
    let failedIn: number | undefined;
    try {
      for (const w of this.workersOf(p)) { failedIn = w; const i = await this.dp!.addPort(w, p.spec); info ??= i; opened.push(w); }
      if (!info) throw new Error('no worker opened it');
      return info;
    } catch (e) {
      const undo = failedIn !== undefined && !opened.includes(failedIn) ? [...opened, failedIn] : opened;
      const c = this.abandon(p.spec, undo, absent);
      // the workers that answered close it at once; one whose open is still under way may take
      // long: the error is not held up for it (its index stays in `closing` meanwhile)
      await within(Promise.all(c.asking.values()), ABANDON_WAIT_MS);
      throw e;
    }
  }

  /** Asks `workers` to close port `spec`, whose open was given up (openIn), and keeps its index in
   * `closing` until each of them confirmed it (those that answered confirm at once; one whose
   * open is still under way once it ends). */
  private abandon(spec: WorkerPortSpec, workers: number[], absent: boolean): Closing {
    let c = this.closing.get(spec.index);
    if (!c) {
      c = { name: spec.name, ifname: spec.ifname, ...(spec.netns ? { netns: spec.netns } : {}), absent, workers: new Set(), asking: new Map() };
      this.closing.set(spec.index, c);
    }
    for (const w of workers) c.workers.add(w);
    this.askClose(spec.index, c);
    return c;
  }

  /** Asks each worker of `closing` entry `c` that has not confirmed yet, and is not being asked,
   * to close port `index`; the entry goes once every one of them confirmed. */
  private askClose(index: number, c: Closing): void {
    for (const w of c.workers) {
      if (c.asking.has(w)) continue;
      const asked = this.dp!.removePort(w, index, c.absent).then(() => {
        c.workers.delete(w);
        if (c.workers.size || this.closing.get(index) !== c) return;
        this.closing.delete(index);
        this.log.info({ port: c.name, index }, 'a port whose open was given up is closed in its workers: its index is free');
      }, (e: unknown) => {
        const message = (e as Error).message;
        if (c.failed !== message) this.log.warn({ port: c.name, index, worker: w, error: message }, 'closing a port whose open was given up failed: asked again at the next link check (its index stays in use)');
        c.failed = message;
      }).finally(() => { c.asking.delete(w); });
      c.asking.set(w, asked);
    }
  }

  /** Closes port `p` in its workers; the first error, after every worker was asked. A worker that
   * fails (a timeout) does not stop the others; a retry closes it where it is still open (a
   * worker's removal of a port it does not have succeeds). */
  private async closeIn(p: ManagedPort, absent = false): Promise<unknown> {
    let failed: unknown;
    for (const w of this.workersOf(p)) await this.dp!.removePort(w, p.spec.index, absent).catch((e: unknown) => { failed ??= e; });
    return failed;
  }

  /** Throws PortError when `p` cannot be added next to the ports there are. */
  private checkAdd(p: PortConfig): void {
    const clash = this.all().find((q) => q.spec.name === p.name || (q.spec.ifname === p.ifname && (q.spec.netns ?? '') === (p.netns ?? '')));
    if (clash) throw new PortError(clash.spec.name === p.name ? `port "${p.name}" exists` : `interface "${p.ifname}" is already port "${clash.spec.name}"`, 409);
    // a pod address is one pod's: carried by two ports, replies and new flows to it would go to
    // either (a port left over from a DEL that never reached the daemon: remove it first)
    for (const pod of p.pods ?? []) {
      const addr = canonicalAddr(pod.ip);
      const holder = this.all().find((q) => q.config.pods.some((x) => canonicalAddr(x.ip) === addr));
      if (holder) throw new PortError(`pods: ${pod.ip} is a pod of port "${holder.spec.name}" (interface "${holder.spec.ifname}"): remove that port first (wdp port remove ${holder.spec.name})`, 409);
    }
    const closing = [...this.closing.values()].find((c) => c.name === p.name || (c.ifname === p.ifname && (c.netns ?? '') === (p.netns ?? '')));
    if (closing) throw new PortError(`port "${closing.name}" (interface "${closing.ifname}") is still being closed in its worker, which did not answer its open in time: try again`, 503);
    // (checked before anything is saved or created: `ip link set netns` would fail after the TAP exists)
    if (p.type === 'tap' && p.netns && !netnsMounted(p.netns)) throw new PortError(`netns: there is no network namespace "${p.netns}" (ip netns list)`, 422);
    const worker = p.worker ?? 0;
    if (worker >= this.cfg.workers) throw new PortError(`worker ${worker} does not exist (workers: ${this.cfg.workers})`, 422);
    const fanout = this.cfg.ports.some((q) => q.fanout);
    if (fanout && !p.fanout) throw new PortError('the ports are shared by every worker (fanout): a port added needs "fanout: true"', 422);
    if (!fanout && p.fanout && this.cfg.workers > 1) throw new PortError('the ports are split between workers: a port added needs "worker: N", not fanout', 422);
    if (!fanout && this.cfg.workers > 1 && p.worker === undefined) throw new PortError('with workers > 1 a port needs "worker: N" (flows must enter and leave through ports of the same worker)', 422);
  }

  /** Removes a port added through the API; the config file's ports stay. */
  remove(name: string): Promise<PortView> {
    return this.serial(async () => {
      if (!this.dp || this.closed) throw new PortError('the dataplane is not running', 503);
      const p = this.byName(name);
      if (!p) throw new PortError(`no port "${name}"`, 404);
      if (p.origin === 'config') throw new PortError(`port "${name}" is defined in the config file; remove it there and restart`, 409);
      const view = await this.drop(p);
      this.log.info({ port: name, index: p.spec.index }, 'port removed');
      return view;
    });
  }

  /** A CNI GC (src/daemon/cni-gc.ts) run on these ports; throws at once, removing nothing, when
   * the request cannot be read. */
  cniGc(body: unknown): Promise<RemovedPorts & { network: string }> { return cniGc(this, body); }

  /** Removes the runtime ports `pick` chooses among those there are when this change's turn comes
   * (a CNI GC, src/daemon/cni-gc.ts), each as remove does; one that fails does not stop the
   * others (it stays, and is listed with its error). */
  removeWhere(pick: (runtimePorts: ManagedPort[]) => ManagedPort[], why: string): Promise<{ removed: string[]; failed: Array<{ name: string; error: string }> }> {
    return this.serial(async () => {
      if (!this.dp || this.closed) throw new PortError('the dataplane is not running', 503);
      const removed: string[] = [], failed: Array<{ name: string; error: string }> = [];
      for (const p of pick(this.all().filter((q) => q.origin === 'api'))) {
        try {
          await this.drop(p);
          removed.push(p.spec.name);
          this.log.info({ port: p.spec.name, index: p.spec.index, why }, 'port removed');
        } catch (e) {
          failed.push({ name: p.spec.name, error: (e as Error).message });
          this.log.error({ port: p.spec.name, error: (e as Error).message, why }, 'removing a port failed');
        }
      }
      return { removed, failed };
    });
  }

  /** Closes a runtime port in its workers and forgets it (remove, checkLinks); when the saved
   * ports cannot be written without it, or a worker fails, the port is kept, running and saved
   * (closeIn: a retry closes it where it is still open). */
  private async drop(p: ManagedPort): Promise<PortView> {
    // The interface handed back to the kernel (its drop chain gone), then the ports saved without
    // it, then it is closed: a daemon killed in between restarts with the port and its chain, or
    // without either — never a drop chain that no port accounts for. A save that fails (a full
    // disk) puts the chain back and refuses the remove: answered removed, the port would come back
    // at the next start.
    // (its claim is kept until it is closed: the port may take it again)
    const chained = p.spec.type === 'afpacket' || p.spec.type === 'afxdp';
    const kernelOutAgain = () => { if (chained && this.claims.has(p.spec.ifname)) this.takeInterface(p.spec.ifname, p.spec.name, p.config.mac); };
    if (p.spec.type !== 'tap') this.handBack(p.spec.ifname, 'port removed', false);
    try { this.save({ remove: p.spec.index }); } catch (e) { kernelOutAgain(); throw e; }
    const failed = await this.closeIn(p);
    if (failed) {
      kernelOutAgain();
      this.save(); // (with it again: it stays)
      throw failed;
    }
    if (p.spec.type !== 'tap') this.releaseClaim(p.spec.ifname);
    const view = this.view(p, this.info.get(p.spec.index));
    this.byIndex.delete(p.spec.index);
    this.info.delete(p.spec.index);
    this.ifindexOf.delete(p.spec.index);
    await this.hooks.changed?.(p, 'removed');
    return view;
  }

  /** The link check, every few seconds. Ports whose interface went away while the daemon runs: a
   * pod deleted without a CNI DEL reaching the daemon (it came while the daemon restarted, or the
   * runtime lost it), its veth gone with its namespace — or re-created under the same name for
   * another pod (another ifindex). A runtime port so left is removed as a DEL would (what was
   * learned on it is forgotten, its pod addresses can be claimed again). A config-file port is
   * closed in its workers and kept, `absent`, logged once; once an interface of its name exists
   * again (a TAP: its namespace does; the daemon creates the device) it is opened on it as at
   * start — same index, worker and config — logged once (the daemon then sets a host port's
   * stack up again); a close or reopen that fails is tried again at the next check (logged once
   * per error). Returns the names of the runtime ports removed. */
  checkLinks(): Promise<string[]> {
    // one check queued at a time: a tick while one waits behind a slow add joins it (once it has
    // started, the next tick queues another: the one under way may have read before a change)
    if (this.reaping) return this.reaping;
    const check = this.serial(async () => {
      this.reaping = undefined;
      if (!this.dp || this.closed) return [];
      const removed: string[] = [];
      const watched = this.all().filter((q) => !this.absent.has(q.spec.index));
      // an AF_XDP port's sockets, and a python relay's helper, say themselves whether the kernel
      // unbound them (stats.unboundQueues)
      const xsk = watched.some((q) => SAYS_UNBOUND.has(this.info.get(q.spec.index)?.kind ?? '')) ? await this.freshStats() : undefined;
      for (const p of this.goneOf(watched, xsk)) {
        if (p.origin === 'config') {
          this.absent.set(p.spec.index, { since: Date.now(), closed: false });
          this.log.error({ port: p.spec.name, ifname: p.spec.ifname, ...(p.spec.netns ? { netns: p.spec.netns } : {}) },
            'a port\'s interface is gone (deleted, or re-created under its name): port closed, opened again when an interface of that name is back');
          continue;
        }
        if (await this.reap(p)) removed.push(p.spec.name);
      }
      // ports whose open was given up, in the workers that did not confirm they closed them yet
      for (const [index, c] of this.closing) this.askClose(index, c);
      for (const [index, a] of this.absent) {
        const p = this.byIndex.get(index)!;
        if (!a.closed) await this.closeAbsent(p, a);
        if (a.closed && !this.closing.has(index) && this.linkNow(p.spec) === 'present') await this.reopen(p, a);
      }
      for (const p of this.all()) if (p.spec.role === 'host' && !this.absent.has(p.spec.index)) await this.checkHostMac(p);
      return removed;
    });
    this.reaping = check;
    return check;
  }

  /** The ports' stats as their workers have them now, by index (undefined when they cannot say
   * within LINK_STATS_WAIT_MS: a busy or hung worker does not hold up the port changes queued
   * behind the check; nothing is judged from it then). */
  private async freshStats(): Promise<Map<number, PortInfo> | undefined> {
    try {
      const got = await within(this.dp!.ports(), LINK_STATS_WAIT_MS);
      return got === LATE ? undefined : new Map(got.map((i) => [i.index, i]));
    } catch { return undefined; }
  }

  /** Those of `ports` whose interface is gone: an AF_PACKET / AF_XDP port's (or a config-file
   * TAP's) name missing or another ifindex now (a failed look is not "gone": checked again later),
   * a TAP's pod namespace gone, or its interface there under its name and ifindex but the port's
   * sockets no longer bound to it (it left the namespace and came back): a native AF_PACKET port's
   * none of them (packet-bindings.ts), a native AF_XDP port's any of them or a python relay's
   * AF_PACKET one (`xsk`: the ports' stats now, unboundQueues: the kernel set ENETDOWN on them
   * when it unbound them; the relay's helper ended on it). One look per namespace. */
  private goneOf(ports: ManagedPort[], xsk?: Map<number, PortInfo>): ManagedPort[] {
    const watched = ports.filter((p) => this.ifindexOf.has(p.spec.index));
    const looks = new Map<string, (name: string) => IfindexNow>();
    const now = (p: ManagedPort): IfindexNow => {
      const ns = this.nsOf(p.spec), key = ns ?? '';
      let look = looks.get(key);
      if (!look) {
        look = ifindexesNow(watched.filter((q) => (this.nsOf(q.spec) ?? '') === key).map((q) => q.spec.ifname), ns);
        looks.set(key, look);
      }
      return look(p.spec.ifname);
    };
    const bindings = new Map<string, Set<number> | null>();
    const unbound = (p: ManagedPort, ifindex: number): boolean => {
      const kind = this.info.get(p.spec.index)?.kind;
      if (SAYS_UNBOUND.has(kind ?? '')) {
        if (!((xsk?.get(p.spec.index)?.stats as { unboundQueues?: number } | undefined)?.unboundQueues)) return false;
      } else {
        if (kind !== 'native-afpacket') return false;
        const ns = this.nsOf(p.spec), key = ns ?? '';
        if (!bindings.has(key)) bindings.set(key, packetSocketIfindexes(ns));
        const bound = bindings.get(key);
        if (!bound || bound.has(ifindex)) return false;
      }
      this.log.warn({ port: p.spec.name, ifname: p.spec.ifname, ifindex }, 'a port\'s sockets are bound to nothing: its interface left the namespace and came back (same name and ifindex)');
      return true;
    };
    return ports.filter((p) => {
      if (p.spec.type === 'tap' && p.spec.netns && !netnsMounted(p.spec.netns)) return true;
      const had = this.ifindexOf.get(p.spec.index);
      if (had === undefined) return false;
      const at = now(p);
      if (at === had) return unbound(p, had);
      return at !== 'unknown';
    });
  }

  /** The host port's TAP has the MAC of its uplink (spec.deviceMac: the node has one MAC on the
   * wire, and the node addresses' frames are sent to it): one changed under the daemon (by hand,
   * or a udev MAC policy applied after the daemon set it) is set back, and after the uplink was
   * reopened with another MAC (`uplinkMoved`: deviceMac is that one now) it is set to it. When it
   * cannot be, the daemon follows the MAC the TAP has (`mac`: the node addresses' neighbours are
   * programmed with it), so the host still gets its frames. */
  private async checkHostMac(p: ManagedPort, uplinkMoved = false): Promise<void> {
    const want = p.spec.deviceMac?.toLowerCase(), ns = this.nsOf(p.spec);
    const have = want ? macNow(p.spec.ifname, ns) : null;
    if (!want || !have || have === want) { if (uplinkMoved) await this.hooks.changed?.(p, 'mac'); return; }
    try {
      ipCmd(ns, ['link', 'set', 'dev', p.spec.ifname, 'address', want]);
      if (uplinkMoved) {
        this.log.info({ port: p.spec.name, ifname: p.spec.ifname, mac: want, was: have }, 'the host port takes the MAC of its uplink, reopened with another');
        await this.hooks.changed?.(p, 'mac');
      } else this.log.warn({ port: p.spec.name, ifname: p.spec.ifname, mac: have, set: want }, 'the host port\'s MAC was changed under the daemon: set back to the one it was created with (its uplink\'s)');
    } catch (e) {
      this.log.error({ port: p.spec.name, ifname: p.spec.ifname, mac: have, was: want, error: (e as Error).message.split('\n')[0] },
        'the host port\'s MAC cannot be set to its uplink\'s: its frames are sent to the one it has');
      p.spec.deviceMac = have;
      await this.hooks.changed?.(p, 'mac');
    }
  }

  /** Logs `error` for absent port `p` unless it is the one last logged for it. */
  private failedOnce(p: ManagedPort, a: Absence, what: string, error: unknown): void {
    const message = (error as Error).message.split('\n')[0];
    if (a.failed === message) return;
    a.failed = message;
    this.log.error({ port: p.spec.name, error: message }, `${what} failed: tried again at the next link check`);
  }

  /** Closes config-file port `p`, whose interface is gone, in its workers: nothing is read from or
   * sent to a dead socket (a TAP detached from its device polls readable for ever). What was
   * learned on it is forgotten (the worker reports it lost); its MAC and index stay, so the
   * neighbours and routes that name it (static ones, the config's routes) are there again when it
   * reopens — meanwhile what they route to it is dropped and counted (slowpath_port_absent). */
  private async closeAbsent(p: ManagedPort, a: Absence): Promise<void> {
    const failed = await this.closeIn(p, true);
    if (failed) { this.failedOnce(p, a, 'closing a port whose interface is gone', failed); return; }
    a.closed = true;
    a.failed = undefined;
    this.ifindexOf.delete(p.spec.index);
  }

  /** Whether port `p`'s interface is there now: an interface of its name (a TAP: its namespace;
   * the device is the daemon's to create), 'unknown' when the look failed. A port missing at start
   * is one that is 'gone'; an absent one is opened again once it is 'present'. */
  private linkNow(p: { type: string; ifname: string; netns?: string }): 'present' | 'gone' | 'unknown' {
    if (p.type === 'tap') return !p.netns || netnsMounted(p.netns) ? 'present' : 'gone';
    const at = ifindexesNow([p.ifname], this.portNetns)(p.ifname);
    return typeof at === 'number' ? 'present' : at;
  }

  /** Opens absent config-file port `p` again as at start (prepare: its MAC, the kernel kept off,
   * IPv6 off, the link up) under the same index, in the same workers; the daemon then programs
   * its MAC (another interface may have another) for the neighbours and routes through it. */
  private async reopen(p: ManagedPort, a: Absence): Promise<void> {
    const old = p.spec;
    let spec: WorkerPortSpec;
    try { spec = this.prepare(p.config, old.index); } catch (e) {
      this.ifindexOf.delete(old.index);
      this.failedOnce(p, a, 'reopening a port', e);
      return;
    }
    // what the start derived from the other ports (a host port's uplink) stays as it was
    if (old.bridge !== undefined) spec.bridge = old.bridge;
    if (old.deviceMac !== undefined) spec.deviceMac = old.deviceMac;
    if (spec.mtu === undefined && old.mtu !== undefined) spec.mtu = old.mtu;
    p.spec = spec;
    let info: PortInfo;
    try { info = await this.openIn(p, true); } catch (e) {
      this.ifindexOf.delete(spec.index);
      this.failedOnce(p, a, 'reopening a port', e);
      return;
    }
    this.info.set(spec.index, info);
    if (spec.type === 'tap') this.noteTapIfindexes([p]);
    this.absent.delete(spec.index);
    this.log.info({ port: spec.name, index: spec.index, ifname: spec.ifname, mac: info.mac, kind: info.kind, worker: p.worker, absentMs: Date.now() - a.since },
      'a port\'s interface is back: port reopened on it');
    await this.hooks.changed?.(p, 'reopened');
    // the host port bridged with a reopened uplink takes its MAC (a re-created veth has another)
    const host = spec.role === 'uplink' && spec.bridge !== undefined ? this.byIndex.get(spec.bridge) : undefined;
    if (host?.spec.role === 'host' && host.spec.deviceMac?.toLowerCase() !== spec.mac.toLowerCase()) {
      host.spec.deviceMac = spec.mac;
      if (!this.absent.has(host.spec.index)) await this.checkHostMac(host, true);
    }
  }

  /** Reads the MTU of the next few TAPs inside pod namespaces (MTU_REFRESH_PORTS a call,
   * round-robin) and has the workers that own them check a changed one: the workers read every
   * other port's MTU themselves (worker.ts refreshMtus), but a read in another namespace would
   * stall a forwarding thread ~0.1 ms, so these are read here, on the main thread. An unreadable
   * MTU leaves the one in force (the link check sees a namespace gone). */
  refreshNamespacedMtus(reader: MtuReader): Promise<void> {
    if (this.mtuReading) return this.mtuReading;
    const run = this.serial(async () => {
      this.mtuReading = undefined;
      if (!this.dp || this.closed) return;
      const taps = this.all().filter((p) => p.spec.type === 'tap' && p.spec.netns && !this.absent.has(p.spec.index) && this.info.has(p.spec.index));
      for (let k = 0; k < MTU_REFRESH_PORTS && k < taps.length; k++) {
        this.mtuCursor = (this.mtuCursor + 1) % taps.length;
        const p = taps[this.mtuCursor], index = p.spec.index, info = this.info.get(index)!;
        const mtu = interfaceMtu(p.spec.ifname, p.spec.netns, reader);
        if (typeof mtu !== 'number' || mtu === (info.mtu ?? 0)) continue;
        try {
          for (const w of this.workersOf(p)) await this.dp.setPortMtu(w, index, mtu);
          this.info.set(index, { ...info, mtu });
        } catch (e) {
          this.log.warn({ port: p.spec.name, mtu, error: (e as Error).message }, 'a port\'s new MTU did not reach its worker: tried again');
        }
      }
    });
    this.mtuReading = run;
    return run;
  }

  /** Removes runtime port `p`, whose interface is gone, as a DEL would; whether it went. */
  private async reap(p: ManagedPort): Promise<boolean> {
    try {
      await this.drop(p);
      this.log.warn({ port: p.spec.name, ifname: p.spec.ifname, index: p.spec.index }, 'runtime port removed: its interface is gone (its pod was deleted without a CNI DEL reaching the daemon?)');
      return true;
    } catch (e) {
      this.log.error({ port: p.spec.name, error: (e as Error).message }, 'removing a runtime port whose interface is gone failed');
      return false;
    }
  }

  /** At the daemon's stop, before the workers pause: no add, remove or link check starts from now
   * on (an add or remove is refused, 503); resolves once the one under way has finished, so the
   * stop's checkpoint, table images and saved ports see the ports as they stay. */
  close(): Promise<void> {
    this.closed = true;
    return this.queue.then(() => undefined);
  }

  /** After the workers closed their ports (the daemon stopped, or its start failed after the ports
   * were taken): AF_PACKET / AF_XDP interfaces are handed back to the kernel; returns their names. */
  release(why = 'daemon stopped'): string[] {
    const chained = this.all().filter((p) => p.spec.type !== 'tap' && this.claims.has(p.spec.ifname)).map((p) => p.spec.ifname);
    for (const i of chained) letKernelIn(i, this.portNetns);
    this.v6.giveBackAll(chained, this.portNetns, why);
    // (released once handed back: a start waiting for one finds it as it was)
    for (const { claim } of this.claims.values()) claim.release();
    this.claims.clear();
    return chained;
  }

  /** Releases this daemon's claim on interface `ifname` (handed back already). */
  private releaseClaim(ifname: string): void {
    this.claims.get(ifname)?.claim.release();
    this.claims.delete(ifname);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.queue.then(fn, fn);
    this.queue = r.catch(() => undefined);
    return r;
  }

  private allocIndex(): number {
    if (this.nextIndex > MAX_INDEX) {
      // wrapped: the lowest free index
      for (let i = 0; i <= MAX_INDEX; i++) if (!this.byIndex.has(i) && !this.closing.has(i)) return i;
      throw new PortError('no free port index', 507);
    }
    return this.nextIndex++;
  }

  private get file(): string { return join(this.cfg.stateDir, PORTS_FILE); }

  /** The saved runtime ports, their indexes and CNI attachments (a file without indexes or
   * attachments: an older wdp's). */
  private loadSaved(): { ports: unknown[]; indexes: number[]; attachments: unknown[] } {
    const none = { ports: [], indexes: [], attachments: [] };
    let text: string;
    try { text = readFileSync(this.file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file: this.file, error: (e as Error).message }, 'saved runtime ports unreadable: starting without them');
      return none;
    }
    let problem: string;
    try {
      const j = JSON.parse(text) as { ports?: unknown; indexes?: unknown; attachments?: unknown } | null;
      if (Array.isArray(j?.ports)) return { ports: j.ports, indexes: Array.isArray(j.indexes) ? j.indexes as number[] : [], attachments: Array.isArray(j.attachments) ? j.attachments : [] };
      problem = 'no list of ports';
    } catch (e) { problem = `not JSON: ${(e as Error).message}`; }
    // kept for inspection (the next save writes a new one): their pods' interfaces are not
    // opened, so their pods have no connectivity until their CNI plugin attaches them again
    const keptAs = `${this.file}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    let kept = true;
    try { renameSync(this.file, keptAs); } catch { kept = false; }
    this.log.error({ file: this.file, problem, ...(kept ? { keptAs } : {}) }, 'saved runtime ports unreadable: starting without them');
    return none;
  }

  /** Writes the runtime ports, with `change`: one being added (not registered yet) or removed
   * (still registered, left out). Throws a PortError when the file for a change cannot be written
   * (an add or remove is acknowledged only once it is saved: a restart must show it); other
   * failures are logged. */
  private save(change?: { add: { config: PortConfig; index: number } } | { remove: number }): void {
    const runtime: Array<Pick<ManagedPort, 'config'> & { spec: { index: number } }> = this.all()
      .filter((p) => p.origin === 'api' && !(change && 'remove' in change && p.spec.index === change.remove));
    if (change && 'add' in change) runtime.push({ config: change.add.config, spec: { index: change.add.index } });
    // a port's CNI attachment is saved beside it, not in it: a wdp from before attachments (a
    // downgrade) reads the ports as it wrote them (its strict schema would refuse the field and
    // drop the port) and ignores the attachments
    const ports = runtime.map(({ config: { attachment: _, ...rest } }) => rest), indexes = runtime.map((p) => p.spec.index);
    const attachments = runtime.map((p) => p.config.attachment ?? null);
    try {
      writeFileAtomic(this.cfg.stateDir, PORTS_FILE, Buffer.from(JSON.stringify({ ports, indexes, attachments }, null, 1)));
    } catch (e) {
      this.log.error({ error: (e as Error).message, file: this.file }, 'saving runtime ports failed');
      if (change) throw new PortError(`saving the runtime ports failed (nothing ${'add' in change ? 'added' : 'removed'}): ${(e as Error).message}`, 500);
    }
  }
}
