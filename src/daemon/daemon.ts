// `wdp start`: the daemon. Order matters and each step fails loudly:
//
//   1. prepare interfaces (AF_PACKET: set/read the MAC, IPv6 off; TAP: pick a MAC)
//   2. start forwarding workers (each loads the core, opens its ports, moves TAPs into namespaces)
//   3. control plane: restore persisted state, then program the node config (ports, gateways,
//      neighbours) — backends resolve through the neighbours the workers learn or are told
//   4. control API listening
//   stop(): API closed, workers stopped after their current batch (ports closed), state is
//   already on disk (every acknowledged apply was persisted before it was acknowledged).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { ControlPlaneCore } from '../api/controlplane.js';
import { createControlPlane, type ControlPlane } from '../api/server.js';
import { NODE_CONFIG_API_VERSION } from '../model/schema.js';
import { canonicalAddr, NeighbourTable, type Neighbour } from './l2.js';
import { WorkerDataplane } from './worker-dataplane.js';
import type { DaemonConfig } from './config.js';
import { ConfigError } from './config.js';
import type { PortInfo, WorkerInit, WorkerPortSpec } from './protocol.js';
import type { KubeWatcher } from '../kube/watcher.js';

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
}

export interface RunningDaemon {
  readonly config: DaemonConfig;
  readonly control: ControlPlaneCore;
  readonly dataplane: WorkerDataplane;
  readonly neighbours: NeighbourTable;
  readonly ports: PortInfo[];
  /** The control API's base URL ("http://127.0.0.1:9440" or "unix:/path"). */
  readonly apiUrl: string;
  readonly logger: Logger;
  /** The Kubernetes API watcher (config `kubernetes:`), else undefined. */
  readonly kube?: KubeWatcher;
  /** The NodeConfig object the daemon programs (node addresses, neighbours, routes). */
  nodeConfig(): Record<string, unknown>;
  /** Resolves once the node config reflecting every neighbour learned so far is programmed. */
  settled(): Promise<void>;
  stop(): Promise<void>;
  readonly stopped: Promise<void>;
}

function ipCmd(netns: string | undefined, args: string[]): string {
  const full = netns ? ['-n', netns, ...args] : args;
  return execFileSync('ip', full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(netns: string | undefined, cmd: string, args: string[]): void {
  if (netns) execFileSync('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: 'pipe' });
  else execFileSync(cmd, args, { stdio: 'pipe' });
}

function linkMac(ifname: string, netns?: string): string {
  let out: string;
  try { out = ipCmd(netns, ['-o', 'link', 'show', 'dev', ifname]); } catch {
    throw new ConfigError(`interface "${ifname}" does not exist in ${netns ? `namespace ${netns}` : 'this network namespace'}`);
  }
  const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
  if (!m) throw new ConfigError(`interface "${ifname}" is not an Ethernet interface`);
  return m[1];
}

/** A MAC for the dataplane side of a TAP that is stable across restarts (pods keep it in their
 * neighbour caches: a new MAC per restart would blackhole them until their entry goes stale). */
function stableMac(seed: string): string {
  const b = createHash('sha256').update(seed).digest().subarray(0, 6);
  b[0] = (b[0] & 0xfc) | 0x02;      // locally administered, unicast
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Resolve every port's index and MAC and get AF_PACKET interfaces ready. */
function preparePorts(cfg: DaemonConfig, log: Logger, netns?: string): WorkerPortSpec[] {
  return cfg.ports.map((p, index) => {
    let mac = p.mac;
    if (p.type === 'afpacket' || p.type === 'afxdp') {
      const have = linkMac(p.ifname, netns);
      if (mac && mac !== have) ipCmd(netns, ['link', 'set', 'dev', p.ifname, 'address', mac]);
      mac ??= have;
      // The interface only carries frames to/from the dataplane: the kernel must not answer or
      // originate anything on it (IPv6 autoconf/ND). Offloaded frames (partial checksums,
      // super-frames) are finished by the native port (native/src/offload.rs), so offloads stay on.
      try { inNs(netns, 'sysctl', ['-qw', `net.ipv6.conf.${p.ifname}.disable_ipv6=1`]); } catch { /* no IPv6 in this kernel */ }
      ipCmd(netns, ['link', 'set', 'dev', p.ifname, 'up']);
    } else {
      mac ??= stableMac(`wdp/${cfg.node.name}/${p.name}`);
    }
    return {
      index, name: p.name, type: p.type, ifname: p.ifname, mac, role: p.role,
      gateways: p.gateways.map(canonicalAddr), learn: p.learn ?? p.role === 'pod',
      probe: p.pods.filter((x) => !x.mac).map((x) => canonicalAddr(x.ip)),
      ...(p.netns ? { netns: p.netns } : {}),
      ...(p.ring ? { ring: p.ring } : {}),
      ...(p.offloads !== undefined ? { offloads: p.offloads } : {}),
      ...(p.persist !== undefined ? { persist: p.persist } : {}),
      ...(p.exclusive !== undefined ? { exclusive: p.exclusive } : {}),
    };
  });
}

export async function startDaemon(cfg: DaemonConfig, opts: DaemonOptions = {}): Promise<RunningDaemon> {
  const log = opts.logger ?? pino({ level: cfg.logLevel, base: { node: cfg.node.name } });
  // In a cluster the Node object names the node addresses (unless configured): read before the
  // workers start, which answer ARP/ND for the node addresses they are given.
  let nodeAddresses = cfg.node.addresses;
  let podCIDRs: string[] = [];
  let kubeStart: (() => Promise<KubeWatcher>) | undefined;
  if (cfg.kubernetes) {
    const k8s = cfg.kubernetes;
    const kube = await import('../kube/watcher.js');
    let kc;
    try { kc = kube.loadKubeConfig({ kubeconfig: k8s.kubeconfig }); } catch (e) {
      throw new ConfigError(`kubernetes: ${(e as Error).message}`);
    }
    const node = await kube.fetchNode(kc, cfg.node.name, k8s.nodeWaitSeconds, log);
    nodeAddresses = kube.nodePortAddresses(node, cfg.node.addresses, k8s.nodePortAddresses);
    podCIDRs = node?.podCIDRs ?? [];
    const answered = new Set(nodeAddresses.map(canonicalAddr));
    kubeStart = () => kube.KubeWatcher.start({
      config: k8s, nodeName: cfg.node.name, configuredAddresses: cfg.node.addresses, kubeConfig: kc,
      control, metrics: controlPlane!.metrics, counters: () => dataplane.counters(), isForwarding: () => !stopping, log,
      onNode: (u) => {
        const unanswered = u.addresses.filter((a) => !answered.has(canonicalAddr(a)));
        if (unanswered.length) log.warn({ addresses: unanswered }, 'new node addresses get NodePorts, but ARP/ND answers for them start with the next restart');
        nodeAddresses = u.addresses; podCIDRs = u.podCIDRs;
        reprogram();
      },
    }, node);
  }
  const ports = preparePorts(cfg, log, opts.portNetns);
  const neighbours = new NeighbourTable();
  cfg.ports.forEach((p, index) => {
    for (const pod of p.pods) if (pod.mac) neighbours.set({ addr: pod.ip, family: pod.ip.includes(':') ? 6 : 4, port: index, mac: pod.mac, source: 'static' });
  });

  const timeouts: Record<string, number> = {};
  if (cfg.conntrack.tcpEstablishedSeconds) timeouts.tcpEstablishedMs = cfg.conntrack.tcpEstablishedSeconds * 1000;
  if (cfg.conntrack.udpSeconds) timeouts.udpMs = cfg.conntrack.udpSeconds * 1000;
  const inits: WorkerInit[] = [];
  for (let w = 0; w < cfg.workers; w++) {
    inits.push({
      worker: w, workers: cfg.workers,
      ports: ports.filter((_, i) => (cfg.ports[i].worker ?? 0) === w),
      nodeAddresses: nodeAddresses.map(canonicalAddr),
      core: { flows: cfg.conntrack.flows, timeouts, hugePages: cfg.hugePages, ...(opts.wasmPath ? { wasmPath: opts.wasmPath } : {}) },
      probeIntervalMs: cfg.probeIntervalMs,
      portBackend: opts.portBackend ?? 'auto',
      ...(opts.portNetns ? { portNetns: opts.portNetns } : {}),
    });
  }

  let daemon: RunningDaemon | undefined;
  let programming: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let dirty = false;
  let stopping = false;

  const onNeighbour = (n: Neighbour, worker: number) => {
    if (!neighbours.set(n)) return;
    log.info({ addr: n.addr, port: ports[n.port]?.name ?? n.port, mac: n.mac, worker }, 'learned neighbour');
    dirty = true;
    if (!timer && daemon) timer = setTimeout(() => { timer = undefined; reprogram(); }, opts.neighbourDebounceMs ?? 50);
  };

  const dataplane = await WorkerDataplane.start(inits, {
    onNeighbour,
    onLog: (level, msg, data, worker) => log[level]({ worker, ...data }, msg),
    onFatal: (message, worker) => {
      log.fatal({ worker }, message);
      process.exitCode = 1;
      void daemon?.stop();
    },
  });
  const portInfo = await dataplane.ports();
  for (const p of portInfo) log.info({ port: p.name, index: p.index, mac: p.mac, kind: p.kind }, 'port open');

  let controlPlane: ControlPlane | undefined;
  let control!: ControlPlaneCore;
  let kubeWatcher: KubeWatcher | undefined;
  const nodeConfig = (): Record<string, unknown> => {
    // the MAC each port really presents (native AF_PACKET ports report the interface's own)
    const portMac = (i: number) => portInfo.find((p) => p.index === i)?.mac ?? ports[i].mac;
    const spec: Record<string, unknown> = {
      nodeName: cfg.node.name,
      nodeAddresses,
      neighbours: neighbours.list().filter((n) => ports[n.port]).map((n) => ({ address: n.addr, port: n.port, mac: n.mac, localMac: portMac(n.port) })),
      routes: cfg.routes.map((r) => {
        const i = cfg.ports.findIndex((p) => p.name === r.port);
        return { prefix: r.prefix, port: i, nextHopMac: r.mac, localMac: portMac(i) };
      }),
    };
    if (cfg.masquerade) spec.masquerade = cfg.masquerade;
    if (cfg.kubernetes) {
      spec.podCIDRs = podCIDRs;
      spec.clusterCIDRs = cfg.kubernetes.clusterCIDRs;
      spec.detectLocalMode = cfg.kubernetes.detectLocalMode;
    }
    return { apiVersion: NODE_CONFIG_API_VERSION, kind: 'NodeConfig', metadata: { name: cfg.node.name }, spec };
  };

  const reprogram = () => {
    if (stopping) return;
    dirty = false;
    programming = programming.then(async () => {
      try {
        await control.apply([nodeConfig()]);
      } catch (e) {
        log.error({ error: (e as Error).message }, 'programming the node config failed');
      }
    });
  };

  try {
    try { mkdirSync(cfg.stateDir, { recursive: true }); } catch (e) {
      throw new ConfigError(`cannot use stateDir ${cfg.stateDir}: ${(e as Error).message}`);
    }
    // Restores the persisted Services/EndpointSlices into the workers before the API listens.
    controlPlane = await createControlPlane({
      dataplane, stateDir: cfg.stateDir, node: nodeConfig(), listen: cfg.api.listen,
      // watching the API, healthz is kube-proxy's (src/kube/healthz.ts, kubernetes.healthzBindAddress)
      healthz: cfg.api.healthz === 'off' || cfg.kubernetes ? false : cfg.api.healthz,
      ...(cfg.api.token ? { token: cfg.api.token } : {}),
      isForwarding: () => !stopping,
    });
    control = controlPlane.core;
    if (control.restoreProblems.length) log.warn({ problems: control.restoreProblems, from: control.restoredFrom }, 'problems restoring saved state');
    else log.info({ from: control.restoredFrom }, 'state restored');
    // A node config saved in the state dir takes precedence at restore, but it may be stale
    // (learned neighbours, port numbering): the daemon's view of its own ports is current.
    await control.apply([nodeConfig()]);
    if (kubeStart) kubeWatcher = await kubeStart();
  } catch (e) {
    await controlPlane?.close().catch(() => undefined);
    await dataplane.close();
    throw e;
  }
  log.info({ url: controlPlane.url, healthz: controlPlane.healthzUrl }, 'control API listening');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });
  const api = controlPlane;

  daemon = {
    config: cfg, control, dataplane, neighbours, ports: portInfo, logger: log, kube: kubeWatcher,
    apiUrl: api.url,
    nodeConfig,
    async settled() {
      for (let i = 0; i < 100 && (dirty || timer); i++) await new Promise((r) => setTimeout(r, 20));
      await programming;
    },
    async stop() {
      if (stopping) return stopped;
      stopping = true;
      if (timer) clearTimeout(timer);
      log.info('stopping');
      try { await kubeWatcher?.stop(); } catch (e) { log.warn({ error: (e as Error).message }, 'stopping the Kubernetes watcher failed'); }
      try { await api.close(); } catch (e) { log.warn({ error: (e as Error).message }, 'closing the API failed'); }
      await programming.catch(() => undefined);
      await dataplane.close();
      log.info('stopped');
      resolveStopped();
      return stopped;
    },
    stopped,
  };
  if (dirty) reprogram();

  return daemon;
}
