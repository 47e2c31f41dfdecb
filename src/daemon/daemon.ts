// `wdp start`: the daemon. Order matters and each step fails loudly:
//
//   1. prepare interfaces (AF_PACKET: set/read the MAC, IPv6 off; TAP: pick a MAC)
//   2. start forwarding workers (each loads the core, opens its ports, moves TAPs into namespaces);
//      a worker whose table image from the last clean stop matches (table-image-file.ts) loads it,
//      imports its saved flows and forwards at once, before the control plane's modules are even
//      loaded; the host port's TAP gets the node addresses and routes; saved runtime ports are re-added
//   3. control plane: restore persisted state, then program the node config (ports, gateways,
//      neighbours) — backends resolve through the neighbours the workers learn or are told
//   4. control API listening (with the ports API: ports added/removed while forwarding)
//   5. saved flows imported (but by workers that resumed from their image), then forwarding resumes
//      everywhere (restart.ts; healthz 503 until then)
//   stop(): API closed, forwarding paused, flow checkpoint and table images written, workers stopped
//   after their current batch (ports closed); the desired state is already on disk (every
//   acknowledged apply was persisted before it was acknowledged).
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { parseListen } from '../api/listen.js';
import type { ControlPlaneCore } from '../api/controlplane.js';
// the control plane's modules (Fastify, the store's reader, the compiler, validation: ~0.3 s of
// CPU) are loaded after the workers are spawned, while they boot: see startDaemon
import type { ControlPlane } from '../api/server.js';
import type { SavedState } from '../api/saved-state.js';
import { NODE_CONFIG_API_VERSION, validateAll, validateObject } from '../model/schema.js';
import type { NodeSpec } from '../model/types.js';
import { jsonEqual } from '../util/json-equal.js';
import { appliedAsAnnotations, appliedAsOf, withAppliedAs } from '../model/applied-as.js';
import { canonicalAddr, isLinkLocal, NeighbourTable, type Neighbour } from './l2.js';
import { WorkerDataplane } from './worker-dataplane.js';
import { steerRingsFor } from './steering.js';
import { retiredSweepBuffer } from '../core/retired-sweep.js';
import { rejectLimitBuffer } from '../core/shared-reject-limit.js';
import * as L from '../../assembly/layout.js';
import type { DaemonConfig } from './config.js';
import { ConfigError, coreTimeouts, hostHairpinOf } from './config.js';
import { PortManager, type ManagedPort } from './port-manager.js';
import { MTU_REFRESH_MS } from './port-mtu.js';
import { configureHostStack, dropStaleHostRules, type HostAddresses, type HostStack } from './host-stack.js';
import { ExternalPorts, followApplies } from './host-service-ports.js';
import type { PortInfo, WorkerInit } from './protocol.js';
import type { KubeWatcher } from '../kube/watcher.js';
import type { NodeInfo } from '../kube/node.js';
import { FlowCheckpointer, type RestoreSummary, type SavedNeighbour } from './restart.js';
import { lockStateDir } from './state-lock.js';
import { checkListenAddresses } from './listen-check.js';
import { NodeProgramming } from './node-programming.js';
import { factsOfSavedNodeConfig, readNodeFacts, writeNodeFacts } from './node-facts-file.js';
import { combineServiceCIDRs } from '../kube/service-cidrs.js';
import { addressKey, NodeAddresses, type NodeFacts } from './node-addresses.js';
import { NodeGiven } from './node-given.js';
import { HostAddressWatch, ownedInterfaces, readHostAddresses } from './host-addresses.js';
import { selectsFromHost } from '../kube/nodeport-addresses.js';
import { imageInputsHash, removeStaleImages, storeRevisionStamp } from './table-image-file.js';
import { LEGACY_STATE_FILE, STATE_DB, StateStore } from '../state/store.js';
import type { WorkerPortSpec } from './protocol.js';
import { setThreadNice } from './thread-priority.js';
import { setHelperThreadsNice } from './helper-threads.js';
import { holdSessionGroup } from './autogroup.js';
import { nativeAddon, nativeAvailable } from '../ports/native.js';

export interface DaemonOptions {
  logger?: Logger;
  /** native (Rust addon) ports, the python relay, or native with relay fallback (default). */
  portBackend?: 'auto' | 'native' | 'relay';
  /** Interfaces live in this namespace rather than ours (in-process tests: the test process stays
   * in the root namespace and the ports are opened inside the dataplane namespace). */
  portNetns?: string;
  wasmPath?: string;
  /** Debounce for re-programming the node config after neighbours are learned. */
  neighbourDebounceMs?: number;
  /** Test hook: the control plane starts restoring once this resolves (workers that resumed from
   * their table images forward meanwhile; the others stay held). */
  restoreHold?: () => Promise<void>;
  /** Test hook: called right before the daemon queues its first NodeConfig program, with the
   * control plane and the node config as the daemon builds it (test/daemon-first-program.test.js
   * queues an apply ahead of that program). */
  beforeFirstProgram?: (core: ControlPlaneCore, nodeConfig: () => Record<string, unknown>) => void;
}

export interface RunningDaemon {
  readonly config: DaemonConfig;
  readonly control: ControlPlaneCore;
  readonly dataplane: WorkerDataplane;
  readonly neighbours: NeighbourTable;
  /** The ports as they were at start (the config file's). */
  readonly ports: PortInfo[];
  /** Every port, the runtime-added ones included; add/remove while forwarding. */
  readonly portManager: PortManager;
  /** The control API's base URL ("http://127.0.0.1:9440" or "unix:/path"). */
  readonly apiUrl: string;
  readonly logger: Logger;
  /** The Kubernetes API watcher (config `kubernetes:`), else undefined. */
  readonly kube?: KubeWatcher;
  /** What the start restored (objects, neighbours, flows, affinity) and how long it took. */
  restoreSummary(): RestoreSummary;
  /** The NodeConfig object the daemon programs (node addresses, neighbours, routes). */
  nodeConfig(): Record<string, unknown>;
  /** Resolves once the node config reflecting every neighbour learned so far is programmed. */
  settled(): Promise<void>;
  stop(): Promise<void>;
  readonly stopped: Promise<void>;
}

/** How often the ports' interfaces are checked for having gone away, and absent config-file ports
 * for having come back (PortManager.checkLinks): a sysfs read per AF_PACKET / AF_XDP port (and
 * per config-file TAP in this namespace; one `ip -n` listing per other namespace). */
const LINK_WATCH_MS = 2000;

/** How long after it is ready a daemon that restored a saved state starts the threads a large sync
 * needs (see startDaemon's syncThreadsAtStart). */
const SYNC_THREADS_AFTER_MS = 500;
/** The Warning a NodeConfig applied through the API to a daemon without a kubernetes: section is
 * answered with: the daemon programs its own node config (neighbours, routes, config-file fields)
 * with only the node and NodePort addresses applied taken (until that NodeConfig is deleted). */
export const OWN_NODE_CONFIG_WARNING = 'this daemon builds its NodeConfig from its config file and the neighbours it learns: it keeps the nodeAddresses and nodePortAddresses applied (until that NodeConfig is deleted) and nothing else of it: its neighbours, routes and config-file fields stay its own';

export async function startDaemon(cfg: DaemonConfig, opts: DaemonOptions = {}): Promise<RunningDaemon> {
  // a first start boots the Maglev thread before anything can fail: a start that fails stops the
  // thread it started (each other failure path closes what it opened)
  const boot: StartThreads = { maglev: Promise.resolve(null) };
  // one daemon per state directory, taken before anything of the start (state-lock.ts)
  const lock = await lockStateDir(cfg.stateDir);
  try {
    // the addresses it listens on free, before any port takes its interface (listen-check.ts)
    await checkListenAddresses(cfg);
    const d = await startDaemonWith(cfg, opts, boot);
    if (lock.tookOver) d.logger.info('state directory lock taken over from a wdp that is gone');
    if (lock.unlocked) d.logger.warn({ error: lock.unlocked }, 'the state directory could not be locked: a second wdp on it would not be refused');
    void d.stopped.then(() => lock.release());
    return d;
  } catch (e) {
    // the ports' interfaces go back to the kernel while the lock is still held: a start racing
    // this one cannot have taken them meanwhile (it waits for the lock, or is refused)
    try { await boot.handBack?.(e as Error); } catch { /* (each hand-back step logs its own failure; the start's error is the one reported) */ }
    lock.release();
    const w = await boot.maglev;
    if (w) await (await import('../compiler/maglev-pool.js')).stopMaglevWorker(w).catch(() => undefined);
    throw e;
  }
}

/** The threads a daemon start booted early, and what hands its ports' interfaces back (startDaemon
 * stops and calls them when the start fails). */
interface StartThreads {
  maglev: Promise<import('node:worker_threads').Worker | null>;
  /** Set once the ports' interfaces are taken (drop chains, IPv6 off): closes what the failing step
   * left open and hands the interfaces back, as a stop does. */
  handBack?: (error: Error) => Promise<void>;
}

async function startDaemonWith(cfg: DaemonConfig, opts: DaemonOptions, boot: StartThreads): Promise<RunningDaemon> {
  const startedAt = performance.now();
  // The threads a large sync needs — the compile's Maglev thread, the store's writer thread with
  // its connection — each take ~80 ms of CPU to boot (~150–200 ms on a loaded node), and started
  // by the sync itself they compete with its parse and compile for the node's cores. A daemon
  // with nothing saved (its first start) gets everything in its first sync (the informer's list,
  // `wdp apply` of the cluster): it starts them now, while its main thread loads modules and
  // the second core is mostly idle (first start to ready unchanged at load 6–7; the full sync's
  // CPU −9 %: docs/performance.md, "Full sync"). A daemon that restores a saved state starts them after it is
  // ready (SYNC_THREADS_AFTER_MS): its next syncs mostly repeat what it restored, and a restart's
  // readiness would pay for the boots. So does a daemon with `controlNice`: a thread takes its
  // nice from the thread that starts it, and the main thread's is set only once the workers exist.
  const hasSavedState = existsSync(join(cfg.stateDir, STATE_DB)) || existsSync(join(cfg.stateDir, LEGACY_STATE_FILE));
  const syncThreadsAtStart = !cfg.controlNice && !hasSavedState;
  const startMaglevThread = (): Promise<import('node:worker_threads').Worker | null> => import('../compiler/maglev-pool.js').then((m) => m.startMaglevWorker(), () => null);
  if (syncThreadsAtStart) boot.maglev = startMaglevThread();
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { node: cfg.node.name } });
  if (cfg.helperNice) {
    const h = setHelperThreadsNice(cfg.helperNice);
    if (h.reason) log.warn({ nice: cfg.helperNice, threads: h.set, reason: h.reason }, h.set ? 'some of the runtime\'s helper threads keep their priority' : 'the runtime\'s helper threads keep their priority');
    else log.debug({ nice: cfg.helperNice, threads: h.set }, 'helper thread priority set');
  }
  let daemon: RunningDaemon | undefined;
  let stopping = false;
  let forwarding = false;                      // workers start held: set once flows are restored
  let control: ControlPlaneCore | undefined;   // set once the control plane has restored its state
  // In a cluster the Node object names the node addresses (unless configured): read before the
  // workers start, which answer ARP/ND for the node addresses they are given; and, in a cluster,
  // those of them NodePorts are served on (kubernetes.nodePortAddresses as kube-proxy selects
  // them), its pod CIDRs, zone and primary IPs (node-addresses.ts)
  // The Node's facts are saved whenever they change (node-facts-file.ts), from once the start has
  // taken them (the state directory exists then): a restart that cannot read the Node takes them
  // with the config file's fallbacks as they are then
  let savingFacts = false;
  // the cluster's ServiceCIDRs' CIDRs as last listed (saved beside the Node's facts; undefined:
  // not known), combined with node.serviceCIDRs as configured now at a restart that cannot list them
  let clusterServiceCIDRs: string[] | undefined;
  const saveFacts = (facts: NodeFacts | null) => {
    try { writeNodeFacts(cfg.stateDir, facts, clusterServiceCIDRs); } catch (e) {
      log.warn({ error: (e as Error).message }, 'the Node\'s facts could not be saved: a restart that cannot read the Node takes the ones saved before');
    }
  };
  // in a cluster: kube-proxy runs an IPv6 proxier only where the kernel has IPv6 (kube/node.ts proxierFamilies)
  const hostIPv6 = existsSync('/proc/net/if_inet6');
  const nodeAddrs = new NodeAddresses({
    configured: cfg.node.addresses, podCIDRs: cfg.node.podCIDRs, ...(cfg.node.zone ? { zone: cfg.node.zone } : {}),
    ...(cfg.kubernetes ? { nodePortFilter: cfg.kubernetes.nodePortAddresses, hostIPv6 } : {}),
  }, (facts) => { if (savingFacts) saveFacts(facts); });
  // node.serviceCIDRs; in a cluster with the ServiceCIDRs' (the watcher's onServiceCIDRs; until it
  // has listed them, those last listed with node.serviceCIDRs as configured now: adoptSavedNodeFacts)
  let serviceCIDRs = cfg.node.serviceCIDRs;
  let kubeStart: ((seen: NodeInfo | null) => Promise<KubeWatcher>) | undefined;
  // Whether the Node's facts (pod CIDRs, zone) are known before the workers start. Not with
  // node.addresses configured (the start does not wait for the API then): the facts saved when
  // the Node was last seen stand in from before the workers start until the watcher reads the Node,
  // which reprograms what changed (adoptSavedNodeFacts; the table image is keyed with them: imageInputs)
  let nodeReadAtStart = true;
  // ...and whether the saved facts' node addresses stand in too (a restart whose read of the
  // Node failed: the API server is away)
  let nodeFromSaved = false;
  // ...and then read in the background from the start: when it has arrived by the control plane's
  // first program, that program already carries the Node as it is now
  let nodeEarly: NodeInfo | null = null;
  // nodePortAddresses CIDRs select among the host's interface addresses too, as kube-proxy's
  // GetNodeIPs (host-addresses.ts): read before the workers start, followed once the daemon runs
  let hostAddrsAtStart: string[] | undefined;
  if (cfg.kubernetes && selectsFromHost(cfg.kubernetes.nodePortAddresses)) {
    try { hostAddrsAtStart = readHostAddresses(opts.portNetns, ownedInterfaces(cfg.ports)); } catch (e) {
      hostAddrsAtStart = [];
      log.warn({ error: (e as Error).message.split('\n')[0] }, 'the host\'s addresses could not be read: NodePort addresses are selected from the Node\'s until they are');
    }
    nodeAddrs.takeHostAddresses(hostAddrsAtStart);
  }
  if (cfg.kubernetes) {
    const k8s = cfg.kubernetes;
    const kube = await import('../kube/watcher.js');
    let kc;
    try { kc = kube.loadKubeConfig({ kubeconfig: k8s.kubeconfig }); } catch (e) {
      throw new ConfigError(`kubernetes: ${(e as Error).message}`);
    }
    // with node.addresses configured and no nodePortAddresses filter the Node adds nothing the
    // workers need at start: no wait (the watcher still reads it for pod CIDRs and eligibility)
    const needNode = !cfg.node.addresses.length || k8s.nodePortAddresses.length > 0;
    nodeReadAtStart = needNode;
    // A restart (a saved state) does not wait for an API server that is away: kube-proxy's rules
    // outlive its restarts, and so should the node's service traffic. One read, else the saved
    // NodeConfig (the Node as last seen: its node and NodePort addresses and facts) stands in until the
    // watcher reads the Node (adoptSavedNodeFacts).
    let node: NodeInfo | null = null;
    if (needNode && hasSavedState) {
      node = await kube.readNodeOnce(kc, cfg.node.name, log);
      if (!node) {
        nodeReadAtStart = false; nodeFromSaved = true;
        log.warn('cannot read the Node object: starting with the node addresses last seen (saved when the Node was last read) until the API server answers');
      }
    } else if (needNode) node = await kube.fetchNode(kc, cfg.node.name, k8s.nodeWaitSeconds, log);
    // (logged when it lands: test/restart-image-kube.test.js holds the restore until it has)
    if (!needNode) {
      void kube.readNodeOnce(kc, cfg.node.name, log).then((n) => {
        nodeEarly = n;
        if (n) log.info({ podCIDRs: n.podCIDRs, zone: n.zone }, 'the Node read at start');
      });
    }
    // the NodePort addresses narrow where NodePorts are served only: every Node address stays a
    // node address (answered for, on the host port's TAP), as kube-proxy leaves the host alone
    nodeAddrs.takeNode(node);
    kubeStart = (seen: NodeInfo | null) => kube.KubeWatcher.start({
      config: k8s, nodeName: cfg.node.name, configuredAddresses: cfg.node.addresses, serviceProxyName: cfg.node.serviceProxyName, kubeConfig: kc,
      control: control!, metrics: controlPlane!.metrics, counters: () => dataplane.counters(), isForwarding: () => !stopping && forwarding, log,
      onNode: (u) => { // the workers' ARP/ND answers follow through onNodeChange below
        // (the Node as the watcher read it; its update's addresses are selected from it as takeNode does)
        takeNode(kubeWatcher?.nodeState() ?? { addresses: u.addresses, primary: u.primary, podCIDRs: u.podCIDRs, zone: u.zone });
        setHostNeighbours(nodeAddrs.addresses);   // in the same program as the addresses
        void programming.now();
      },
      configuredServiceCIDRs: cfg.node.serviceCIDRs, hostIPv6, hostAddresses: () => nodeAddrs.hostAddresses,
      onServiceCIDRs: (c, fromCluster) => {
        serviceCIDRs = c;
        if (JSON.stringify(fromCluster) !== JSON.stringify(clusterServiceCIDRs)) { clusterServiceCIDRs = fromCluster; if (savingFacts) saveFacts(nodeAddrs.facts); }
        void programming.now();
      },
    }, node ?? seen);
  }
  // the daemon's NodeConfig, re-programmed when its neighbours, ports or node addresses change
  // The node config the daemon is programming, by its addresses, while its apply runs: the node
  // change that apply causes (onNodeChange below) is not adopted back (NodeAddresses.adoptApplied)
  // ownInFlight: from the moment the daemon's own node config is read for its apply until that
  // apply is done (applies run one at a time: a node change meanwhile is that apply's)
  let ownInFlight = false;
  const ownNodeConfig = (): Record<string, unknown> => {
    const c = nodeConfig();
    nodeAddrs.ownProgram(c.spec as { nodeAddresses: string[]; nodePortAddresses?: string[] });
    ownInFlight = true;
    return c;
  };
  const applyOwnNodeConfig = (apply: (objs: () => Record<string, unknown>[]) => Promise<unknown>): Promise<void> =>
    apply(() => [ownNodeConfig()]).then(() => undefined).finally(() => { ownInFlight = false; nodeAddrs.ownProgramDone(); });
  const programming = new NodeProgramming(() => applyOwnNodeConfig((objs) => control!.apply(objs)), opts.neighbourDebounceMs ?? 50,
    (e) => log.error({ error: e.message }, 'programming the node config failed'));
  const neighbours = new NeighbourTable();
  // a port's configured pods with a MAC are static neighbours for as long as the port exists
  const staticPods = (p: ManagedPort) => {
    for (const pod of p.config.pods) if (pod.mac) neighbours.set({ addr: pod.ip, family: pod.ip.includes(':') ? 6 : 4, port: p.spec.index, mac: pod.mac, source: 'static' });
  };
  let dataplaneRef: WorkerDataplane | undefined;
  // the host port's TAP created again (its device was deleted): its addresses, routes and rules
  // set up again as at start (set once the host stack is)
  let hostReopened: (() => void) | undefined;
  const portManager = new PortManager(cfg, log, opts.portNetns, {
    changed: async (p, how) => {
      if (how === 'removed') {
        for (const n of neighbours.list()) if (n.port === p.spec.index) { neighbours.delete(n.addr); void dataplaneRef?.forgetNeighbour(n.addr); }
      } else if (how === 'mac') {
        setHostNeighbours(nodeAddrs.addresses);   // (the node addresses behind the host port's MAC now)
      } else {
        // a port reopened on its re-created interface keeps its static pods (set again: the same)
        // and is programmed with the MAC it has now
        staticPods(p);
        if (how === 'reopened' && p.spec.role === 'host') hostReopened?.();
      }
      if (!control) { programming.changed(); return; }  // saved ports re-added at start: in the first program
      await programming.now();
    },
  });
  // From here the ports' interfaces are taken (the kernel kept off them, IPv6 off): a start that
  // fails from now on gives them back, as a stop would — else they would stay dead for the kernel
  // while nothing forwards, until the next start. Each step's own catch closes what it opened (the
  // workers, their TAPs, the store, the API); this closes what a step without one left (each close
  // is idempotent), then hands the interfaces back — after the workers closed their sockets. Only
  // a start that holds the state directory's lock gets here (startDaemon takes it first): a start
  // refused because another daemon holds it has taken nothing of that daemon's.
  let checkpointerRef: FlowCheckpointer | undefined;
  let opened: { dataplane?: WorkerDataplane; store?: SavedState['store']; sessionGroup?: { stop(): void } } = {};
  boot.handBack = async (error) => {
    await opened.dataplane?.close().catch(() => undefined);
    await opened.store?.close();
    opened.sessionGroup?.stop();
    checkpointerRef?.stopPeriodic();
    const given = portManager.release('the start failed');
    if (given.length) log.warn({ interfaces: given, error: error.message.split('\n')[0] }, 'the start failed: its ports\' interfaces are handed back to the kernel (drop chains removed, IPv6 put back)');
  };
  // what a daemon that did not stop cleanly left for ports not opened now: drop chains on their
  // interfaces, a host port's NodePort rules
  portManager.dropStaleKernelChains();
  if (!cfg.ports.some((p) => p.role === 'host')) dropStaleHostRules(opts.portNetns, log);
  // 0700: the saved objects name every service and pod address of the node
  try { mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 }); } catch (e) {
    throw new ConfigError(`cannot use stateDir ${cfg.stateDir}: ${(e as Error).message}`);
  }
  tightenStateDir(cfg.stateDir, log);
  // the API socket's directory, as systemd's RuntimeDirectory would make it: /run is a tmpfs, so
  // after a boot /run/wdp is not there (the socket itself is 0600; the CNI plugin and the CLI
  // find it by path)
  const apiListen = parseListen(cfg.api.listen);
  if ('path' in apiListen) {
    try { mkdirSync(dirname(resolve(apiListen.path)), { recursive: true, mode: 0o755 }); } catch (e) {
      throw new ConfigError(`cannot create the directory of the API socket ${apiListen.path}: ${(e as Error).message}`);
    }
  }
  const ports = portManager.initialSpecs();
  for (const p of portManager.all()) staticPods(p);
  // the host port owns the node addresses: backends at a node address (hostNetwork pods) and
  // traffic to the node that no service claims are sent there, to the TAP's own MAC. They follow
  // the node addresses in force; returns whether they changed.
  const host = portManager.all().find((p) => p.spec.role === 'host');
  const setHostNeighbours = (addrs: string[]): boolean => {
    if (!host) return false;
    const want = new Set(addrs.map(canonicalAddr));
    let changed = false;
    for (const n of neighbours.list()) {
      if (n.port === host.spec.index && n.source === 'static' && !want.has(n.addr)) { neighbours.delete(n.addr); changed = true; }
    }
    for (const a of want) changed = neighbours.set({ addr: a, family: a.includes(':') ? 6 : 4, port: host.spec.index, mac: host.spec.deviceMac!, source: 'static' }) || changed;
    return changed;
  };
  setHostNeighbours(nodeAddrs.addresses);
  // the masquerade source per family, as the NodeConfig derives it (src/model/schema.ts)
  const snatOf = (addrs: string[]): HostAddresses['snat'] => ({
    v4: cfg.masquerade?.ipv4 ?? addrs.find((a) => !a.includes(':')), v6: cfg.masquerade?.ipv6 ?? addrs.find((a) => a.includes(':')),
  });
  const hairpin = host ? hostHairpinOf(host.config) : [];
  // learned neighbours come back from the flow checkpoint (on ports that exist under the same
  // name), so restored flows' backends resolve before forwarding resumes
  const checkpointer = new FlowCheckpointer(cfg.stateDir, log, cfg.conntrack.checkpointSeconds);
  checkpointerRef = checkpointer;
  for (const n of checkpointer.savedNeighbours((name) => portManager.byName(name)?.spec.index)) neighbours.set(n);
  const learnedNeighbours = (): SavedNeighbour[] => neighbours.list().flatMap((n) => {
    const p = n.source === 'learned' ? portManager.get(n.port) : undefined;
    return p ? [{ ...n, portName: p.spec.name }] : [];
  });

  // The Node read (by the watcher, or at start in the background); when the start did not read
  // it, says whether the config changed from the last seen (the saved one, a table image's)
  const takeNode = (node: NodeFacts) => {
    const before = nodeReadAtStart ? '' : JSON.stringify(nodeConfig().spec);
    nodeAddrs.takeNode(node);
    if (before && before !== JSON.stringify(nodeConfig().spec)) log.info({ podCIDRs: node.podCIDRs, zone: nodeAddrs.zone }, 'the Node differs from the one last seen (its saved facts, the table image\'s): reprogrammed');
  };
  const viaMac = (via: string, port: number): string | undefined => {
    const n = neighbours.get(via);
    return n && n.port === port ? n.mac : undefined;
  };
  // `adopted`: the node and NodePort addresses a NodeConfig applied through the API leaves in
  // force (NodeAddresses.adoptedSpec), or a delete of it (ownSpec), with the names it leaves them
  // adopted under (applied-as.ts), instead of those in force now
  const nodeConfig = (adopted?: { nodeAddresses: string[]; nodePortAddresses: string[] | undefined; appliedAs: readonly string[] }): Record<string, unknown> => {
    // the MAC each port really presents (native AF_PACKET ports report the interface's own; before
    // the ports are open, the one resolved for its spec)
    const portMac = (i: number) => portManager.mac(i)!;
    const nodePorts = adopted ? adopted.nodePortAddresses : nodeAddrs.nodePortSpec(), podCIDRs = nodeAddrs.podCIDRsSpec(), nodeZone = nodeAddrs.zone, nodeIPs = nodeAddrs.nodeIPs;
    const spec: Record<string, unknown> = {
      nodeName: cfg.node.name,
      nodeAddresses: adopted ? adopted.nodeAddresses : nodeAddrs.addresses,
      ...(nodePorts ? { nodePortAddresses: nodePorts } : {}),
      // (a link-local neighbour, a route's next hop, gets no host route: its address is only
      // meaningful on its own link, RFC 4291 2.5.6, so no other port's traffic is routed to it)
      neighbours: neighbours.list().filter((n) => portManager.get(n.port) && !isLinkLocal(n.addr)).map((n) => ({ address: n.addr, port: n.port, mac: n.mac, localMac: portMac(n.port) })),
      // a route `via` an address: the MAC learned for it on the route's port; none yet, the route
      // is programmed unresolved (its prefix drops, drop_no_route; frames to a backend behind it
      // are held) and re-programmed once the neighbour is learned, or moves
      routes: cfg.routes.map((r) => {
        const i = portManager.byName(r.port)!.spec.index;
        const mac = r.mac ?? viaMac(r.via!, i);
        return { prefix: r.prefix, port: i, ...(mac ? { nextHopMac: mac } : {}), localMac: portMac(i) };
      }),
    };
    if (cfg.masquerade) spec.masquerade = cfg.masquerade;
    // the host's own connections that a Service sends back to the host get this source (core: CTF_HAIRPIN)
    const h4 = hairpin.find((a) => !a.includes(':')), h6 = hairpin.find((a) => a.includes(':'));
    if (h4 || h6) spec.hairpin = { ...(h4 ? { ipv4: h4 } : {}), ...(h6 ? { ipv6: h6 } : {}) };
    if (serviceCIDRs.length) spec.serviceCIDRs = serviceCIDRs;
    if (cfg.node.serviceProxyName) spec.serviceProxyName = cfg.node.serviceProxyName;
    if (cfg.node.masqueradeAll) spec.masqueradeAll = true;
    if (nodeZone) spec.zone = nodeZone;
    // kube-proxy's node IP per family: a loadBalancerSourceRange holding it admits the LB IPs too
    if (nodeIPs.length) spec.nodeIPs = nodeIPs;
    if (cfg.node.clusterCIDRs.length) spec.clusterCIDRs = cfg.node.clusterCIDRs;
    if (cfg.node.podCIDRs.length) spec.podCIDRs = cfg.node.podCIDRs;
    if (cfg.node.detectLocalMode) spec.detectLocalMode = cfg.node.detectLocalMode;
    // ports pods are attached to (runtime-added ones included: a port change reprograms)
    if (cfg.node.detectLocalMode === 'PodPort') spec.podPorts = portManager.all().filter((p) => p.spec.role === 'pod').map((p) => p.spec.index);
    if (cfg.kubernetes) {
      spec.podCIDRs = podCIDRs;
      if (cfg.kubernetes.clusterCIDRs.length || !cfg.node.clusterCIDRs.length) spec.clusterCIDRs = cfg.kubernetes.clusterCIDRs;
      spec.detectLocalMode = cfg.node.detectLocalMode ?? cfg.kubernetes.detectLocalMode;
    }
    const annotations = appliedAsAnnotations(adopted ? adopted.appliedAs : nodeAddrs.appliedAs);
    return { apiVersion: NODE_CONFIG_API_VERSION, kind: 'NodeConfig', metadata: { name: cfg.node.name, ...(annotations ? { annotations } : {}) }, spec };
  };

  // whether `node` is the NodeConfig the daemon would program now (as its re-program compares it)
  const isOwnNow = (node: NodeSpec): boolean => {
    try { return jsonEqual(node.raw, validateAll([nodeConfig()])[0].raw); } catch { return false; }
  };

  // each worker's table image (table-image-file.ts): trusted only for the store's revision and
  // the node config as they are now; the flows saved at the same stop go with it. The key is the
  // node config in force, Node facts included: at a stop the ones in force (saved as they
  // changed); at a start that did not read the Node the same ones, from the saved facts
  // (adoptSavedNodeFacts, before the key is taken), so a stop and the next start agree whether
  // the API server answered at either or not
  const imageInputs = (specs: WorkerPortSpec[]) => imageInputsHash(nodeConfig(), specs);
  // Until the watcher reads the Node: its facts as last seen (those the image's tables were
  // compiled with), so the restore compiles what the image forwards with instead of tables
  // without them. From node-facts.json; a state directory without it (an older wdp's) has them
  // only inside its saved NodeConfig, mixed with the config fallbacks of then: taken from the
  // store peeked before the workers start (they answer ARP/ND for these node addresses from the
  // start), and again once the saved state is loaded (the same row, unless another process wrote it)
  const factsFile = cfg.kubernetes ? readNodeFacts(cfg.stateDir) : undefined;
  const savedFacts = nodeReadAtStart ? undefined : factsFile;
  if (factsFile?.state === 'unusable') log.warn({ reason: factsFile.reason }, 'the saved Node facts are unusable: taking them from the saved node config');
  if (factsFile?.state === 'saved') clusterServiceCIDRs = factsFile.serviceCIDRs;
  // An older wdp's NodeConfig holds the Node's zone and pod CIDRs mixed with the config's
  // fallbacks of then: one equal to the fallback configured now is taken for that fallback (the
  // NodeConfig now is the same either way). The facts so read are saved at start: the NodeConfig
  // this start saves mixes in the fallbacks of now, so the next start must not read it again,
  // and it then takes a fallback changed meanwhile
  const withoutFallbacksNow = (f: NodeFacts | null): NodeFacts | null => f && {
    ...f,
    zone: cfg.node.zone && f.zone === cfg.node.zone ? '' : f.zone,
    podCIDRs: cfg.node.podCIDRs.length && addressKey(f.podCIDRs) === addressKey(cfg.node.podCIDRs) ? [] : f.podCIDRs,
  };
  const adoptSavedNodeFacts = (savedNode: unknown) => {
    // the service CIDRs until the watcher lists the ServiceCIDRs: theirs as last listed with
    // node.serviceCIDRs as configured now; from a state directory that has them only combined
    // (an older wdp's), the saved node config's list
    const spec = (savedNode as { spec?: { serviceCIDRs?: unknown } } | null)?.spec;
    if (cfg.kubernetes && clusterServiceCIDRs) serviceCIDRs = combineServiceCIDRs(cfg.node.serviceCIDRs, clusterServiceCIDRs).cidrs;
    else if (cfg.kubernetes && Array.isArray(spec?.serviceCIDRs) && spec.serviceCIDRs.every((c) => typeof c === 'string')) serviceCIDRs = spec.serviceCIDRs as string[];
    if (nodeReadAtStart || !savedFacts) return;
    const last = savedFacts.state === 'saved' ? savedFacts.node : withoutFallbacksNow(factsOfSavedNodeConfig(savedNode));
    if (!last) return;
    // every node address as last seen is answered for; the NodePort addresses selected among
    // them as configured now (as the Node's are: kubernetes.nodePortAddresses, node.addresses),
    // not as saved: a list changed while wdp was down must not keep serving NodePorts (nor key
    // the table image) on addresses it no longer selects. Unchanged config: the saved lists
    nodeAddrs.takeNode(last);
    setHostNeighbours(nodeAddrs.addresses);
    log.debug({ podCIDRs: last.podCIDRs, zone: nodeAddrs.zone }, 'the Node\'s pod CIDRs and zone as last seen, until the Node is read');
  };
  // Without a cluster, the node and NodePort addresses of a NodeConfig applied through the API
  // before the stop, as the saved NodeConfig holds them with the names they were applied as
  // (applied-as.ts): kept, as the apply was, until that NodeConfig is deleted. (In a cluster the
  // Node is the source: a restart takes its addresses, as a Node update does.)
  const readoptApplied = (savedNode: unknown) => {
    const names = appliedAsOf(savedNode);
    if (cfg.kubernetes || !names.length) return;
    // (as onNodeChange takes a NodeConfig programmed: the model's, validated; one saved under
    // another node name is another node's, not taken)
    const v = validateObject(savedNode);
    if (!v.ok || v.obj.kind !== 'NodeConfig') {
      log.warn({ problems: v.ok ? [] : v.errors.slice(0, 3).map((e) => e.message) }, 'the saved node config names NodeConfigs applied to it but is unusable: starting with the configured node addresses');
      return;
    }
    if (v.obj.name !== cfg.node.name) return;
    nodeAddrs.adoptApplied(v.obj.addresses.map(canonicalAddr), v.obj.nodePortAddresses, names);
    setHostNeighbours(nodeAddrs.addresses);
    log.info({ addresses: nodeAddrs.addresses, appliedAs: names }, 'the node addresses of the NodeConfig applied before the stop');
  };
  removeStaleImages(cfg.stateDir, cfg.workers);
  let peekedNode: unknown = null;   // the NodeConfig saved at the revision the image must have
  const revision = storeRevisionStamp(cfg.stateDir, () => { const p = StateStore.peek(cfg.stateDir); peekedNode = p.node; return p.revision; });
  adoptSavedNodeFacts(peekedNode);
  readoptApplied(peekedNode);
  // from now on every change of the Node's facts is saved; the start's are, when not yet
  if (cfg.kubernetes) {
    savingFacts = true;
    if (factsFile?.state !== 'saved' || JSON.stringify(factsFile.node) !== JSON.stringify(nodeAddrs.facts)) saveFacts(nodeAddrs.facts);
  }
  const imageAt = { revision, inputsHash: imageInputs(ports) };

  const timeouts = coreTimeouts(cfg.conntrack);
  const inits: WorkerInit[] = [];
  // fanout ports are in every worker; frames are steered to their flow's worker over these rings
  const steerRings = cfg.workers > 1 && cfg.ports.some((p) => p.fanout) ? steerRingsFor(cfg.workers) : undefined;
  const joinTurn = steerRings ? new SharedArrayBuffer(4) : undefined;   // fanout groups joined in worker order
  const retiredSweep = steerRings ? retiredSweepBuffer(cfg.workers) : undefined;   // the retired filter's ageing (retired-sweep.ts)
  // the reject rate limit's buckets are the node's, as the kernel's (shared-reject-limit.ts)
  const rejectLimit = cfg.workers > 1 ? rejectLimitBuffer() : undefined;
  // where saved flows go (flow-placement.ts)
  const placement = { workers: cfg.workers, steering: steerRings !== undefined, portWorker: (name: string) => portManager.byName(name)?.worker };
  for (let w = 0; w < cfg.workers; w++) {
    inits.push({
      worker: w, workers: cfg.workers,
      ports: ports.filter((s) => portManager.opensIn(s, w)),
      ...(steerRings ? { steer: { workers: cfg.workers, self: w, rings: steerRings, slotSize: L.DEFAULT_SLOT_SIZE, ...(joinTurn ? { joinTurn } : {}), ...(retiredSweep ? { retiredSweep } : {}) } } : {}),
      nodeAddresses: nodeAddrs.addresses.map(canonicalAddr),
      core: { flows: cfg.conntrack.flows, timeouts, ...(cfg.conntrack.fragments !== undefined ? { fragments: cfg.conntrack.fragments } : {}), hugePages: cfg.hugePages, ...(opts.wasmPath ? { wasmPath: opts.wasmPath } : {}), ...(rejectLimit ? { rejectLimit } : {}) },
      probeIntervalMs: cfg.probeIntervalMs,
      busyPollUs: cfg.busyPollUs,
      ...(cfg.kernelPath.enabled ? { kernelPath: { capacity: cfg.kernelPath.flows, lifetimeMs: cfg.kernelPath.lifetimeMs } } : {}),
      workerNice: cfg.workerNice,
      workerRealtimePriority: cfg.workerRealtimePriority,
      ...(cfg.workerCpus ? { cpu: cfg.workerCpus[w] } : {}),
      neighbourReachableMs: cfg.neighbourReachableMs,
      announce: cfg.announce,
      portBackend: opts.portBackend ?? 'auto',
      ...(opts.portNetns ? { portNetns: opts.portNetns } : {}),
      startHeld: true,
      image: { dir: cfg.stateDir, ...imageAt, ...checkpointer.savedFor(w, placement) },
    });
  }

  const onNeighbour = (n: Neighbour, worker: number) => {
    if (!portManager.get(n.port) || !neighbours.set(n)) return;
    log.info({ addr: n.addr, port: portManager.get(n.port)?.spec.name ?? n.port, mac: n.mac, worker }, 'learned neighbour');
    programming.changed();
  };
  const onNeighbourLost = (n: Neighbour, worker: number) => {
    const have = neighbours.get(n.addr);
    if (!have || have.source !== 'learned' || have.port !== n.port || have.mac !== n.mac) return;
    neighbours.delete(n.addr);
    log.info({ addr: n.addr, port: portManager.get(n.port)?.spec.name ?? n.port, mac: n.mac, worker }, 'neighbour lost (no answer to unicast probes, or its port was removed)');
    programming.changed();
  };

  // a thread's nice ranks it only inside its session's scheduling group (autogroup.ts): raise the
  // group with the most raised thread, where the daemon leads its own session
  // (put back at stop, or when the start fails)
  const groupNice = Math.min(cfg.workerNice, cfg.controlNice);
  let sessionGroup: { stop(): void } | undefined;
  if (groupNice < 0) {
    // back to its own nice while the packet rate is high (bigger batches), raised below it
    const addon = nativeAvailable().ok ? nativeAddon() : undefined;
    const held = holdSessionGroup(groupNice, addon ? () => addon.rxFrames() : undefined,
      (nice) => log.warn({ nice }, 'the session scheduling group could not be set (not retried in the log)'));
    const g = held.result;
    if (g.raised) {
      sessionGroup = opened.sessionGroup = held;
      log.debug({ from: g.from, to: g.to }, 'session scheduling group raised with the workers');
    } else log.debug({ nice: groupNice, reason: g.reason }, 'session scheduling group unchanged');
  }
  const starting = WorkerDataplane.start(inits, {
    onNeighbour,
    onNeighbourLost,
    onLog: (level, msg, data, worker) => log[level]({ worker, ...data }, msg),
    onImageCaughtUp: (r, worker) => {
      // after incremental changes the restore's compile numbers ids afresh: different bytes, the
      // flows' ids rewritten. Flows whose Service the new tables lack should not exist at the
      // image's own revision: worth a warning
      if (r.unmatched) log.warn({ worker, ...r }, 'the control plane caught up, but some flows forwarded from the table image name no Service of the restored state');
      else log.info({ worker, ...r }, r.equal ? 'the control plane caught up: its tables are byte-identical to the table image' : 'the control plane caught up: tables rewritten with its ids, the live flows\' ids with them');
    },
    onFatal: (message, worker) => {
      log.fatal({ worker }, message);
      process.exitCode = 1;
      void daemon?.stop();
    },
  });
  // the control plane's modules are loaded, and the saved state read and validated, while the
  // workers boot (a restart's time is the longer of the two, not their sum; a worker resuming
  // from its table image forwards meanwhile)
  const controlModules = Promise.all([import('../api/saved-state.js'), import('../api/server.js'), import('../api/ports-routes.js'), import('../api/observe-routes.js')]);
  let saved: SavedState;
  try { saved = (await controlModules)[0].openSavedState(cfg.stateDir); } catch (e) {
    await starting.then((d) => d.close(), () => undefined);
    sessionGroup?.stop();
    throw e;
  }
  opened.store = saved.store;
  adoptSavedNodeFacts(saved.load.state?.node ?? null);
  if (syncThreadsAtStart) saved.store.prestartWriter(); // (its connection needs the store created: now)
  let dataplane: WorkerDataplane;
  try { dataplane = await starting; } catch (e) { saved.store.close(); sessionGroup?.stop(); throw e; }
  opened.dataplane = dataplane;
  // the workers started with the node addresses of the peeked NodeConfig when they stand in for
  // the Node's (adoptSavedNodeFacts); the loaded one differs only when the peek could not read it
  // or another process wrote the store meanwhile: the uplinks answer ARP/ND for its addresses from
  // now on. Not fatal when a worker does not take them: the first program's node config sets them
  // again (onNodeChange below compares with what the workers answer)
  let answeringAtStart = inits[0]?.nodeAddresses ?? [];
  if (nodeFromSaved && nodeAddrs.addresses.length && addressKey(nodeAddrs.addresses.map(canonicalAddr)) !== addressKey(answeringAtStart)) {
    const lastSeen = nodeAddrs.addresses.map(canonicalAddr);
    try {
      await dataplane.setNodeAddresses(lastSeen);
      answeringAtStart = lastSeen;
    } catch (e) {
      log.warn({ addresses: lastSeen, error: (e as Error).message }, 'the uplinks could not take the node addresses last seen yet');
    }
  }
  if (cfg.controlNice) {
    // this thread only (Linux keeps nice per thread), after the workers exist: they set their own
    // (workerNice); threads started from here on (the compile's Maglev thread) inherit it
    const why = setThreadNice(cfg.controlNice);
    if (why) log.warn({ nice: cfg.controlNice, reason: why }, 'the control plane keeps its default priority');
    else log.debug({ nice: cfg.controlNice }, 'control plane priority set');
  }
  dataplaneRef = dataplane;
  let hostStack: HostStack | undefined;
  // with a host port: the Services' external and LB ports, for the host's own connections to
  // those at its own addresses (host-service-ports.ts)
  const externalPorts = host ? new ExternalPorts() : undefined;
  // what the workers (their answered node addresses) and the host port's TAP (its addresses,
  // masquerade source and NodePort addresses) were last given (node-given.ts)
  const given = new NodeGiven(answeringAtStart, { snat: snatOf(nodeAddrs.addresses), nodePorts: nodeAddrs.nodePortAddresses });
  const images = dataplane.imageResults();
  for (const r of images) {
    if (r.used) {
      log.info({ worker: r.worker, bytes: r.bytes, loadMs: r.loadMs, flows: r.flows?.flows ?? 0 }, 'forwarding from the table image saved at the last stop; the control plane catches up behind it');
      if (r.problem) log.warn({ worker: r.worker, problem: r.problem }, 'table image used without its saved flows');
    }
    else if (r.problem !== 'none') log.warn({ worker: r.worker, problem: r.problem }, 'table image not used: the worker waits for the control plane\'s restore');
  }
  const portInfo = await dataplane.ports();
  for (const p of portInfo) log.info({ port: p.name, index: p.index, mac: p.mac, kind: p.kind }, 'port open');
  try {
    if (host) {
      const uplink = portManager.get(host.spec.bridge!);
      const setUpHost = () => configureHostStack(host, { nodeAddresses: nodeAddrs.addresses, nodePortAddresses: given.nodePorts, snat: snatOf(nodeAddrs.addresses) }, uplink?.spec.gateways ?? [], opts.portNetns, log, externalPorts);
      hostStack = setUpHost();
      // (configureHostStack takes over what a previous one left: the rules, the local rule moved)
      hostReopened = () => {
        try { hostStack = setUpHost(); } catch (e) {
          log.error({ port: host.spec.name, error: (e as Error).message.split('\n')[0] }, 'the host port was reopened, but its addresses and routes could not be set up again');
        }
      };
    }
    await portManager.attach(dataplane);
  } catch (e) {
    hostStack?.teardown();
    await dataplane.close();
    await saved.store.close(); // (and its writer thread, started already on a first start)
    sessionGroup?.stop();
    throw e;
  }

  let controlPlane: ControlPlane | undefined;
  let kubeWatcher: KubeWatcher | undefined;

  try {
    if (opts.restoreHold) await opts.restoreHold();
    const [, { createControlPlane }, { registerPortRoutes }, { registerObserveRoutes }] = await controlModules;
    // Restores the persisted Services/EndpointSlices into the workers before the API listens.
    const followed = externalPorts ? followApplies(dataplane, externalPorts, (addrs) => {
      try { hostStack?.servicePortsChanged(addrs); } catch (e) { log.error({ error: (e as Error).message }, 'the host port could not follow the Services\' external ports'); }
    }) : dataplane;
    controlPlane = await createControlPlane({
      dataplane: followed, saved, node: nodeConfig(), listen: cfg.api.listen, ports: () => portManager.all().map((p) => p.spec.index),
      portNames: () => portManager.all().map((p) => ({ name: p.spec.name, index: p.spec.index })),
      // watching the API, healthz is kube-proxy's (src/kube/healthz.ts, kubernetes.healthzBindAddress)
      healthz: cfg.api.healthz === 'off' || cfg.kubernetes ? false : cfg.api.healthz,
      ...(cfg.api.token ? { token: cfg.api.token } : {}),
      isForwarding: () => !stopping && forwarding,
      restoreSummary: () => checkpointer.summary(),
      extraRoutes: [(app) => registerPortRoutes(app, portManager), (app) => registerObserveRoutes(app, dataplane)],
      ...(cfg.kubernetes ? { followed: {
        objects: `this daemon follows the Kubernetes API server: Services and EndpointSlices applied or deleted through the wdp API are put back to the API server's at its next full sync (kubernetes.syncPeriod ${cfg.kubernetes.syncPeriod / 1000}s); change them in Kubernetes`,
        nodeConfig: 'this daemon follows the Kubernetes API server: it builds its NodeConfig from its Node and its config file: it keeps the nodeAddresses and nodePortAddresses applied until the Node changes or the daemon restarts, and nothing else of it: the rest stays its own; change the Node or the config file',
      } } : { followed: { nodeConfig: OWN_NODE_CONFIG_WARNING } }),
      nodeConfigSettled: () => programming.settled(),
      nodeConfigOwner: {
        // a NodeConfig applied through the API is programmed as the daemon will keep it (its own,
        // with the applied node and NodePort addresses adopted as onNodeChange adopts them), in
        // that apply's transaction: its dry run shows that, and the applied neighbours and routes
        // are never programmed, not even until the daemon's next re-program
        // (and under its name too, kept with the NodeConfig: applied-as.ts)
        asApplied: (node) => nodeConfig({ ...nodeAddrs.adoptedSpec(node.addresses.map(canonicalAddr), node.nodePortAddresses), appliedAs: withAppliedAs(nodeAddrs.appliedAs, node.name) }),
        // a delete of it: the daemon's own in its place in the delete's transaction, without the
        // adopted addresses (those it has without them: node.addresses, or the Node's)
        own: () => nodeConfig({ ...nodeAddrs.ownSpec(), appliedAs: [] }),
      },
    });
    const core = controlPlane.core;
    control = core;
    // whoever changes the NodeConfig (the watcher through programming.now(), `wdp apply`), the uplinks
    // answer ARP/ND for its node addresses from then on, not only for those the workers started
    // with; the host port's TAP carries them (and routes the hairpin addresses from the new
    // masquerade source), the host port is their static neighbour, and the daemon's own node
    // config keeps them when it next re-programs (a learned neighbour)
    core.onNodeChange((node) => {
      if (stopping) return;
      const addrs = (node?.addresses ?? []).map(canonicalAddr);
      const snat: HostAddresses['snat'] = { v4: node?.snatV4, v6: node?.snatV6 };
      const nodePorts = node?.nodePortAddresses;
      // a NodeConfig applied through the API: the daemon's next re-program keeps its node and
      // NodePort addresses and the names it was applied as, or that re-program would drop them;
      // deleted (the daemon's own in its place, no name): they are dropped
      if (node) nodeAddrs.adoptApplied(addrs, nodePorts, appliedAsOf(node.raw));
      // a NodeConfig applied or deleted through the API: that transaction programmed the daemon's
      // own already (nodeConfigOwner), so it is re-programmed only when that differs from the one
      // the daemon builds now (a neighbour learned meanwhile) — the API's answer, which waits for
      // the daemon's part (nodeConfigSettled), does not wait for the debounce for nothing
      if (!ownInFlight && !(node && isOwnNow(node))) programming.changed();
      const to = given.take({ addresses: addrs, nodePorts, snat });
      if (to.host) {
        try { hostStack?.update({ nodeAddresses: addrs, nodePortAddresses: nodePorts, snat }); } catch (e) { log.error({ error: (e as Error).message }, 'the host port could not follow the node addresses'); }
        if (setHostNeighbours(addrs)) programming.changed();
      }
      if (!to.workers) return;
      given.queueWorkers(async () => {
        try {
          await dataplane.setNodeAddresses(addrs);
          log.info({ addresses: addrs }, 'uplinks answer ARP/ND for the new node addresses');
        } catch (e) {
          log.error({ addresses: addrs, error: (e as Error).message }, 'updating the node addresses answered by ARP/ND failed');
        }
      });
    });
    if (core.restoreProblems.length) log.warn({ problems: core.restoreProblems, from: core.restoredFrom }, 'problems restoring saved state');
    else log.info({ from: core.restoredFrom }, 'state restored');
    // A node config saved in the state dir takes precedence at restore, but it may be stale
    // (learned neighbours, port numbering): the daemon's view of its own ports is current.
    // a neighbour learned meanwhile is programmed right after (node-programming.ts)
    // the Node read in the background since the start, if it has arrived: in this first program
    // (else the watcher's first read reprograms)
    const seen = nodeEarly as NodeInfo | null;
    if (seen && kubeStart) takeNode(seen);
    opts.beforeFirstProgram?.(core, () => nodeConfig());
    await programming.first(() => applyOwnNodeConfig((objs) => core.apply(objs)));
    const controlPlaneAt = performance.now();
    await checkpointer.restoreFlows(dataplane, images, placement);
    await dataplane.setForwarding(true);
    forwarding = true;
    checkpointer.restored({ services: core.compiler.serviceCount(), endpointSlices: core.compiler.sliceCount() }, Math.round(performance.now() - startedAt),
      { controlPlaneMs: Math.round(controlPlaneAt), images });
    checkpointer.startPeriodic(dataplane, learnedNeighbours);
    if (kubeStart) kubeWatcher = await kubeStart(seen);
  } catch (e) {
    checkpointer.stopPeriodic();
    await controlPlane?.close().catch(() => undefined);
    hostStack?.teardown();
    await dataplane.close();
    sessionGroup?.stop();
    throw e;
  }
  // started: from here the stop hands the interfaces back
  opened = {};
  boot.handBack = undefined;
  log.info({ url: controlPlane.url, healthz: controlPlane.healthzUrl }, 'control API listening');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  const api = controlPlane;

  let linkWatch: NodeJS.Timeout | undefined;
  let mtuWatch: NodeJS.Timeout | undefined;
  // the host's addresses as they change: the NodePort (and node) addresses selected again, and
  // programmed when they changed, as a Node update is (onNode above)
  const hostAddrWatch = hostAddrsAtStart && new HostAddressWatch(opts.portNetns, () => ownedInterfaces(portManager.all().map((p) => p.config)), (addrs) => {
    if (stopping || !nodeAddrs.takeHostAddresses(addrs)) return;
    log.info({ hostAddresses: addrs, nodeAddresses: nodeAddrs.addresses, nodePortAddresses: nodeAddrs.nodePortAddresses }, 'the host\'s addresses changed: NodePort addresses selected again');
    setHostNeighbours(nodeAddrs.addresses);
    void programming.now();
    kubeWatcher?.hostAddressesChanged();
  }, log, hostAddrsAtStart);
  daemon = {
    config: cfg, control: control!, dataplane, neighbours, ports: portInfo, portManager, logger: log, kube: kubeWatcher,
    restoreSummary: () => checkpointer.summary(),
    apiUrl: api.url,
    nodeConfig,
    async settled() {
      await programming.settled();
      await given.settled();
    },
    async stop() {
      if (stopping) return stopped;
      stopping = true;
      // from here a worker that does not answer is waited for once, briefly (a pod's grace period)
      dataplane.stopping();
      clearInterval(linkWatch);
      clearInterval(mtuWatch);
      hostAddrWatch?.stop();
      const programmed = programming.stop();
      log.info('stopping');
      try { await kubeWatcher?.stop(); } catch (e) { log.warn({ error: (e as Error).message }, 'stopping the Kubernetes watcher failed'); }
      // the node config's program in flight finishes before the API closes the store: its commit
      // (or its undo) still has the store, so tables and store never part at stop
      await programmed;
      // (bounded: requests still in flight after a short grace are answered 503, connections closed)
      try {
        const cut = await api.close();
        if (cut.answered || cut.ended) log.warn({ requests: cut.answered, streams: cut.ended }, 'the API\'s requests still in flight at the stop were answered 503 and its connections closed');
      } catch (e) { log.warn({ error: (e as Error).message }, 'closing the API failed'); }
      await given.settled();
      // a port add, remove or link check under way finishes first; none starts after
      await portManager.close();
      const flowsSaved = await checkpointer.saveAtStop(dataplane, learnedNeighbours);
      // the tables as they are, for the next start (nothing commits any more: the API and the
      // node programming are closed). Only with this stop's flow checkpoint: the next start
      // imports the checkpoint's flows with the image's ids as they are, and an older checkpoint's
      // ids may name other Services in these tables
      const revision = storeRevisionStamp(cfg.stateDir, () => saved.store.revision());   // (the API closed the store)
      const doubt = dataplane.tablesInDoubt();
      if (revision && doubt) log.warn({ reason: doubt }, 'no table images written: the tables may differ from the saved state (the next start restores from the store)');
      else if (revision && !flowsSaved) log.warn('no table images written: the flow checkpoint of this stop failed (the next start restores without them)');
      else if (revision) {
        const t0 = performance.now();
        const written = await dataplane.writeImages(cfg.stateDir, revision, imageInputs(portManager.all().map((p) => p.spec)));
        for (const w of written) if (w.error) log.warn({ worker: w.worker, error: w.error }, 'writing the table image failed: the next start restores without it');
        log.info({ workers: written.filter((w) => !w.error).length, bytes: written.reduce((n, w) => n + (w.bytes ?? 0), 0), ms: Math.round(performance.now() - t0) }, 'table images written');
      }
      hostStack?.teardown();
      await dataplane.close();
      portManager.release();
      sessionGroup?.stop();
      log.info('stopped');
      resolveStopped();
      return stopped;
    },
    stopped,
  };
  programming.start();
  hostAddrWatch?.start();
  // after a restore (or with controlNice): the sync threads once the daemon is ready (see
  // syncThreadsAtStart), not at once: the answers that say it is ready (a restart's readiness
  // polls) would compete with the boots (measured +0.4 s at load 9). Both are unref'd (never keep
  // the process alive); what they cost idle is their memory (docs/running.md). A sync that comes
  // first starts them itself.
  if (!syncThreadsAtStart) {
    setTimeout(() => {
      if (stopping) return;
      void startMaglevThread();
      saved.store.prestartWriter();
    }, SYNC_THREADS_AFTER_MS).unref();
  }
  // ports whose interface goes away while the daemon runs (a pod deleted without a CNI DEL that
  // reached the daemon): runtime ones removed, config ones closed and reopened once their
  // interface is back (PortManager.checkLinks)
  linkWatch = setInterval(() => { void portManager.checkLinks().catch((e) => log.error({ error: (e as Error).message }, 'checking the ports\' interfaces failed')); }, LINK_WATCH_MS);
  linkWatch.unref();
  // the MTU of TAPs in pod namespaces, which the workers do not read while they run (with the
  // native addon, as the workers' own reads)
  const mtuReader = opts.portBackend !== 'relay' && nativeAvailable().ok ? nativeAddon() : undefined;
  if (mtuReader) {
    mtuWatch = setInterval(() => { void portManager.refreshNamespacedMtus(mtuReader).catch((e) => log.error({ error: (e as Error).message }, 'reading the namespaced TAPs\' MTU failed')); }, MTU_REFRESH_MS);
    mtuWatch.unref();
  }
  return daemon;
}

/** A state dir made by someone else (the kubelet's DirectoryOrCreate hostPath makes 0755) is set
 *  to 0700 when this process owns it: the saved objects name every service and pod address of
 *  the node. A dir owned by another user is left as it is, with a warning. */
function tightenStateDir(dir: string, log: Logger): void {
  let st;
  try { st = statSync(dir); } catch { return; }
  if ((st.mode & 0o077) === 0) return;
  const mode = (st.mode & 0o777).toString(8);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    log.warn({ stateDir: dir, mode, owner: st.uid }, 'the state directory is readable by others and owned by another user: left as it is');
    return;
  }
  try {
    chmodSync(dir, 0o700);
    log.info({ stateDir: dir, was: mode }, 'the state directory set to mode 0700');
  } catch (e) {
    log.warn({ stateDir: dir, mode, error: (e as Error).message }, 'the state directory is readable by others and its mode could not be set to 0700');
  }
}
