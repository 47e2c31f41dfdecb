// `wdp start --config FILE`: the daemon's YAML configuration, validated with zod. Every problem
// is reported at once with its path ("ports[1].gateways[0]: ..."), and nothing starts unless the
// whole file is valid.
//
//   node:     { name, addresses: [node IPs NodePorts answer on] }
//   ports:    [{ name, type: tap|afpacket|afxdp, ifname, role: pod|uplink|host, mac?, gateways: [...],
//                pods: [{ ip, mac? }], learn?, netns?, ring?, rxRing?, xdpMode?, offloads?, persist?, mtu?, worker?, fanout?,
//                uplink?, hostAddresses?, hostRoutes?, hostNodePorts?, hostHairpin? }]
//   routes:   [{ prefix, port, mac | via }]    forwarding of a prefix to a next hop on a port: its MAC
//             (mac), or its address (via), resolved by ARP/ND on that port and followed as it changes
//   api:      { listen: "127.0.0.1:9440" | "unix:/run/wdp.sock", healthz: "127.0.0.1:10256" | "off", token? }
//   stateDir, workers, logLevel, masquerade: { ipv4?, ipv6? }, hugePages, busyPollUs, kernelPath: { enabled, lifetimeMs, flows }, workerNice,
//   workerRealtimePriority?, workerCpus?, controlNice, helperNice,
//   conntrack: { flows?, tcpEstablishedSeconds?, udpSeconds?, tcpHalfClosedSeconds?, sctpEstablishedSeconds?, checkpointSeconds? },
//   announce: { loadBalancerIPs, externalIPs }, neighbourReachableMs
//   kubernetes: { kubeconfig?, hostnameOverride?, minSyncPeriod, syncPeriod, clusterCIDRs,
//                 detectLocalMode, nodePortAddresses, healthzBindAddress, metricsBindAddress, ... }
//             present: wdp watches the API server itself (src/kube/, docs/running.md); then
//             node.name may be left out (the hostname, or hostnameOverride, names the node)
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { InputFileError, readInputFile } from '../util/input-file.js';
import { didYouMean } from '../util/suggest.js';
import { goDurationMicros } from '../util/duration.js';
import { DocumentError, parseSingleDocument } from '../model/load.js';
import { z } from 'zod';
import { cidrNetwork, parseCidr } from '../util/addr.js';
import { notOneHostProblem } from '../model/host-address.js';
import { canonicalAddr, eui64LinkLocal, isLinkLocal } from './l2.js';
import { DEFAULT_HEALTHZ_LISTEN, DEFAULT_LISTEN, parseListen, tokenRequiredReason } from '../api/listen.js';
import { CNI_ID_RE, validCniIfname } from '../cni/attachment.js';
import { parseBindAddress } from '../kube/listen.js';

/** busyPollUs, workerNice and workerRealtimePriority when the config does not say: see
 * docs/performance.md, "Tail latency and connection rate". workerNice 0: a raised worker (and, with autogroup
 * scheduling, the daemon's session group, autogroup.ts) shortens the RTT tail on a loaded node but
 * cost a third of the connection rate on a quiet one, so it is the operator's choice. */
export const BUSY_POLL_US_DEFAULT = 0;
export const WORKER_NICE_DEFAULT = 0;
/** controlNice when the config does not say: see docs/running.md, "Worker scheduling". */
export const CONTROL_NICE_DEFAULT = 0;
/** helperNice when the config does not say: the runtime's helper threads (V8's collection and
 * compile threads) below the daemon's own, so that a change or a frame does not wait for a CPU
 * behind a background compile (src/daemon/helper-threads.ts; docs/performance.md, "Thread priorities"). */
export const HELPER_NICE_DEFAULT = 5;
/** SCHED_FIFO priority of the forwarding workers when the config does not say: normal scheduling.
 * A real-time worker cuts the round-trip tail on a node whose CPUs are contended but costs
 * request/response traffic most of its connection rate on a quiet one (docs/running.md, "Worker
 * scheduling"), so it is an operator's choice, not a default. */
export const WORKER_REALTIME_PRIORITY_DEFAULT = 0;

/** A listen address's problem, as parseListen words it (the path empty or too long, the host
 * no address or name, ...), on the config's field. */
function checkListen(s: string, ctx: z.RefinementCtx): void {
  if (s === 'off') return;
  try { parseListen(s); } catch (e) {
    const why = (e as Error).message.replace(/^invalid listen address "(?:[^"\\]|\\.)*": /, '');
    ctx.addIssue({ code: 'custom', message: `must be host:port, [v6]:port, unix:/path or /path (${why})` });
  }
}

/** A path under /proc, /sys or /dev: no state directory or socket can be made there (and Node's
 * recursive mkdir spins forever on a missing one under /proc: the start hung, deaf to SIGTERM). */
function onKernelFs(path: string): boolean {
  return /^\/+(proc|sys|dev)(\/|$)/.test(resolve(path));
}
const KERNEL_FS_MESSAGE = 'must not be under /proc, /sys or /dev (kernel filesystems)';
/** A unix-socket listen address's path on a kernel filesystem (see onKernelFs). */
function listenOnKernelFs(s: string): boolean {
  try { const l = parseListen(s); return 'path' in l && onKernelFs(l.path); } catch { return false; }
}

const ip = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address' });
/** An address one host owns (a node address, a gateway answered for, a pod, a masquerade source):
 * not unspecified, broadcast or multicast. */
const hostIp = ip.superRefine((s, ctx) => {
  const why = isIP(s) !== 0 ? notOneHostProblem(s) : null;
  if (why) ctx.addIssue({ code: 'custom', message: why });
});
const mac = z.string().regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'must be a MAC address like 02:00:00:00:00:01')
  .refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, { message: 'must be a unicast MAC (first octet even)' })
  .refine((m) => !/^00(:00){5}$/.test(m), { message: 'must not be 00:00:00:00:00:00 (no interface\'s address)' })
  .transform((m) => m.toLowerCase());
const cidr = z.string().refine((s) => { try { parseCidr(s); return true; } catch { return false; } }, { message: 'must be a CIDR like 10.0.0.0/8 or fd00::/64' });
const ifname = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name of 1-15 characters [A-Za-z0-9_.-]');
const portName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/, 'must be lowercase alphanumerics and "-", at most 32 characters');

/** What is wrong with a route's next hop, if anything: exactly one of `mac` and `via`; `via` an
 * address of the prefix's family that ARP/ND can resolve on the port. An IPv6 link-local `via` is
 * on the route's port (asked from the port's own link-local address): a zone (`fe80::1%eth0`), if
 * any, names that port, by name or interface (`ports`: the config's, to say which one it names). */
function routeViaProblem(r: { prefix: string; port?: string; mac?: string; via?: string }, ports: { name: string; ifname: string }[]): { field: 'mac' | 'via'; message: string; namesNoPort?: true } | undefined {
  if (r.mac !== undefined && r.via !== undefined) return { field: 'via', message: 'give the next hop by mac or by via, not both' };
  if (r.mac === undefined && r.via === undefined) return { field: 'via', message: 'required: the next hop\'s address (via), or its MAC (mac)' };
  if (r.via === undefined || isIP(r.via) === 0) return undefined;
  const family = r.prefix.includes(':') ? 6 : 4;
  if (isIP(r.via) !== family) return { field: 'via', message: `must be an IPv${family} address (the family of prefix ${r.prefix})` };
  const a = canonicalAddr(r.via);
  if (family === 4 && (/^(0|127)\./.test(a) || Number(a.split('.')[0]) >= 224 || a === '255.255.255.255')) return { field: 'via', message: 'must be a unicast address a neighbour can own' };
  if (family === 6 && (a === '::' || a === '::1' || a.startsWith('ff'))) return { field: 'via', message: 'must be a unicast address a neighbour can own' };
  const zone = r.via.includes('%') ? r.via.slice(r.via.indexOf('%') + 1) : undefined;
  if (zone === undefined) return undefined;
  if (!isLinkLocal(a)) return { field: 'via', message: `a zone (%${zone}) is only for a link-local next hop (fe80::/10)` };
  if (r.port === undefined) return undefined;   // (the route's port is not known: its own problem)
  const own = ports.find((p) => p.name === r.port);
  if (own && (zone === own.name || zone === own.ifname)) return undefined;
  const named = ports.find((p) => zone === p.name || zone === p.ifname);
  if (named) return { field: 'via', message: `the zone %${zone} names port "${named.name}", not the route's port "${r.port}": a link-local next hop is on the route's port` };
  return { field: 'via', message: `the zone %${zone} names no port: give the route's port (%${r.port}${own ? ` or %${own.ifname}` : ''}) or no zone`, namesNoPort: true };
}

/** "192.168.100.2/24": an address with its prefix length, as `ip addr add` takes it. */
const addrWithPrefix = z.string().refine((s) => { const [a, l] = s.split('/'); if (isIP(a ?? '') === 0 || l === undefined) return false; try { parseCidr(s); return true; } catch { return false; } }, { message: 'must be an address with a prefix length like 192.168.100.2/24' });

const podSchema = z.object({ ip: hostIp, mac: mac.optional() }).strict();

export const portSchema = z.object({
  name: portName,
  // afxdp: AF_XDP (XDP redirect to AF_XDP sockets); falls back to afpacket, with a log line,
  // where XDP is unavailable (docs/running.md, AF_XDP ports).
  type: z.enum(['tap', 'afpacket', 'afxdp']),
  ifname,
  // host: the node's own network stack behind a TAP (the daemon's namespace, or netns:); what
  // the host sends and no service claims is bridged to `uplink`, and back (docs/running.md)
  role: z.enum(['pod', 'uplink', 'host']),
  mac: mac.optional(),
  gateways: z.array(hostIp).default([]),
  pods: z.array(podSchema).default([]),
  learn: z.boolean().optional(),
  // TAP only: after creating the device, move it into this network namespace (the daemon keeps
  // the fd; the kernel side of the TAP then lives with the pod). Used by tests and the demo.
  netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a network namespace name').optional(),
  worker: z.number().int().min(0).optional(),
  // afpacket: every worker opens the interface in one PACKET_FANOUT group; afxdp: worker w binds
  // the receive queues q with q % workers == w into one XDP program's XSKMAP (the interface needs
  // at least as many queues as workers). Frames are then steered to the worker that owns their
  // flow (docs/running.md "Several workers on one interface"). With workers > 1, either every
  // port says fanout: true or every port says worker: N.
  fanout: z.boolean().optional(),
  // AF_PACKET only: receive ring. v2 (default) hands every frame to the worker at once (tens of
  // microseconds); v3 is block-based and cheaper per frame at high rates, but a partly filled block
  // waits for its 1 ms retire timer, adding up to 1 ms per hop at low rates.
  ring: z.enum(['v2', 'v3']).optional(),
  // AF_XDP only: RX (and fill) ring size per queue, a power of two in 64..16384, default 4096:
  // how many frames the kernel queues for a worker that is busy or not scheduled before it drops
  // them (ports' kernelDrops). Each costs a 2 KiB UMEM chunk (4096: 8 MiB per queue, + 2 for TX).
  rxRing: z.number().int().min(64).max(16384).refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' }).optional(),
  // AF_XDP only: where the XDP program runs — native (the driver's hook; an error where the
  // driver has none) or generic (after the kernel built the skb, any interface). Absent: the
  // kernel's choice, native where the driver has it (veth does).
  xdpMode: z.enum(['native', 'generic']).optional(),
  // Native ports: read the virtio-net header and finish what senders left to offload (partial
  // checksums, TSO/GSO/GRO super-frames) before the core sees the frames. Default true; false
  // only for peers known to send finished frames (saves the header on every frame).
  offloads: z.boolean().optional(),
  // TAP only: the device is persistent (TUNSETPERSIST) and re-attached on start, so a restart
  // keeps the pod's interface, addresses and routes. Default true for role pod, false for the
  // host port (the node addresses go back to the NIC when wdp stops). The device is deleted when the
  // port is removed at runtime (the port is closed with removeInterface), by removeTap() in
  // src/ports, or with its namespace; a stop or crash of the daemon keeps it.
  persist: z.boolean().optional(),
  // TAP only: the device's MTU, set when the daemon creates (or re-attaches) it — the pod's link
  // MTU, and what the core checks what leaves by this port against (docs/core.md "Egress MTU").
  // Default: the kernel's (1500); a host port's: its uplink's. Other ports take their interface's
  // MTU as it is.
  mtu: z.number().int().min(68).max(65521).optional(),
  // host port only: the uplink it is bridged with (default: the only uplink), the addresses
  // the daemon puts on the TAP (the node addresses, moved off the uplink NIC) and the routes
  // it adds through it (pod and service CIDRs via a gateway of this port, the default route)
  uplink: portName.optional(),
  hostAddresses: z.array(addrWithPrefix).default([]),
  hostRoutes: z.array(z.object({ prefix: z.union([z.literal('default'), cidr]), via: ip }).strict()).default([]),
  // the host's own connections to a NodePort of a node address leave through the host port
  // (policy routing; otherwise the kernel delivers them locally): the NodePort range, or "off"
  hostNodePorts: z.string().regex(/^(off|\d{1,5}-\d{1,5})$/, 'must be a port range like 30000-32767, or "off"').optional(),
  // the source address (one per family) the host's own connections get when a Service sends them
  // to a backend at the node's own address (a hostNetwork endpoint): translated to the node's
  // address they would come back from a local address and the answer would stay in the host.
  // Routed through this port. Default [169.254.42.1] (Cilium's loopback address); [] for none.
  hostHairpin: z.array(ip).max(2).optional(),
  // runtime ports only: the CNI attachment the plugin's ADD made this port for (network config
  // name, CNI_CONTAINERID, CNI_IFNAME), saved with the port; a CNI GC of that network removes the
  // port when the runtime no longer lists the attachment as valid (src/daemon/cni-gc.ts). A port
  // without one (added by hand, or saved by a wdp before attachments were recorded) is never GC'd.
  attachment: z.object({
    network: z.string().regex(CNI_ID_RE, 'must be a CNI network name (an alphanumeric, then alphanumerics, "_", "." or "-")'),
    containerID: z.string().regex(CNI_ID_RE, 'must be a CNI container ID (an alphanumeric, then alphanumerics, "_", "." or "-")'),
    ifname: z.string().refine(validCniIfname, { message: 'must be a CNI interface name (1-15 characters, no "/", ":" or whitespace, not "." or "..")' }),
  }).strict().optional(),
}).strict();

/** The host port's hairpin addresses (hostHairpin, else the IPv4 default). */
export const DEFAULT_HOST_HAIRPIN = ['169.254.42.1'];
export function hostHairpinOf(p: { hostHairpin?: string[] }): string[] { return p.hostHairpin ?? DEFAULT_HOST_HAIRPIN; }

const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const nodeName = z.string().regex(NODE_NAME_RE, 'must be a lowercase RFC 1123 name').max(253);
// kube-proxy's GetHostname: "" is no override (its config file writes one by default: the
// hostname); else spaces around it trimmed, then lowercased (as the kubelet names its Node);
// nothing left is refused, as there. What remains must still be a name a Node can have.
const hostnameOverride = z.string().transform((s) => (s === '' ? undefined : s.trim().toLowerCase()))
  .pipe(z.string().min(1, 'empty hostname is invalid').regex(NODE_NAME_RE, 'must be an RFC 1123 name (letters, digits, "-" and ".")').max(253).optional());

/** A duration as kube-proxy's config writes them (Go's form: "1s", "500ms", "1h30m") in ms, or a
 * number of seconds; NaN when it is neither. */
export function parseDuration(v: string | number): number {
  return typeof v === 'number' ? v * 1000 : goDurationMicros(v) / 1000;
}
const duration = z.union([z.number().min(0), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (!Number.isFinite(ms) || ms < 0) { ctx.addIssue({ code: 'custom', message: 'must be a duration like "1s", "500ms", "30s", "1m" or a number of seconds' }); return z.NEVER; }
  return ms;
});
// kube-proxy's bind addresses: the one parser the listeners use (a unix path is no bind address)
const bindAddress = z.string().refine((s) => { if (s === 'off') return true; try { parseBindAddress(s); return true; } catch { return false; } }, { message: 'must be host:port, [v6]:port, :port or "off"' });

/** The API-server watcher (src/kube/): kube-proxy's configuration where it applies to wdp. */
const kubernetesSchema = z.object({
  // credentials: the pod's service account (in-cluster) unless a kubeconfig file is given
  kubeconfig: z.string().min(1, 'must name a kubeconfig file').optional(),
  // the Node object to watch; default node.name, else the hostname (kube-proxy --hostname-override)
  hostnameOverride: hostnameOverride.optional(),
  minSyncPeriod: duration.default(1000),
  // kube-proxy refuses 0: the full resync would run back to back, and healthz (2 x syncPeriod)
  // would time out the moment a change waits
  syncPeriod: duration.refine((ms) => ms > 0, { message: 'must be greater than 0' }).default(30_000),
  // local-traffic detection inputs (kept in the node config for the dataplane); in ClusterCIDR
  // mode one CIDR or a dual-stack pair, as kube-proxy validates them (below)
  clusterCIDRs: z.array(cidr).default([]),
  detectLocalMode: z.enum(['ClusterCIDR', 'NodeCIDR']).default('ClusterCIDR'),
  // which node addresses NodePorts are served on: CIDRs, or ["primary"] (the node's primary IP
  // per family) alone, as kube-proxy validates it (below); read per IP family as kube-proxy does
  // (src/kube/nodeport-addresses.ts: a family the list has no CIDR of is unrestricted). Empty is
  // "primary" unless node.addresses are configured (withNodePortDefault, below)
  nodePortAddresses: z.array(z.union([z.literal('primary'), cidr])).default([]),
  healthzBindAddress: bindAddress.default('0.0.0.0:10256'),
  metricsBindAddress: bindAddress.default('127.0.0.1:10249'),
  // where the healthCheckNodePort servers listen: unset = kube-proxy's rule (per IP family, the
  // node addresses nodePortAddresses selects, or every address of a family it does not restrict);
  // an address = there only, every Service's of either family (0.0.0.0 / :: = every address of
  // both families); "off": none
  healthCheckBindAddress: z.union([ip, z.literal('off')]).optional(),
  // how long startup waits for the Node object (its addresses are the node addresses, among which
  // nodePortAddresses picks the NodePort addresses)
  nodeWaitSeconds: z.number().min(0).max(600).default(30),
  listPageSize: z.number().int().min(1).max(10_000).default(500),
}).strict();
export type KubernetesConfig = z.output<typeof kubernetesSchema>;

const ctTimeoutSeconds = z.number().int().min(1).max(Math.floor(0xffffffff / 1000)).optional();

const nodeSchema = z.object({
  name: nodeName.optional(),
  addresses: z.array(hostIp).default([]),
  // the cluster's service CIDRs: addresses in them that no Service owns are dropped
  // (drop_no_service_ip), not routed
  serviceCIDRs: z.array(cidr).max(16).default([]),
  // kube-proxy's local-traffic detector without a kubernetes section (with one, its
  // clusterCIDRs / detectLocalMode and the Node's podCIDRs are used): pods are the sources in
  // clusterCIDRs (detectLocalMode ClusterCIDR) or podCIDRs (NodeCIDR); externalTrafficPolicy
  // Local then holds for other sources only
  clusterCIDRs: z.array(cidr).max(16).default([]),
  podCIDRs: z.array(cidr).max(16).default([]),
  detectLocalMode: z.enum(['ClusterCIDR', 'NodeCIDR', 'PodPort']).optional(),
  // serve Services labelled service.kubernetes.io/service-proxy-name=<this> (unlabelled ones
  // always; others never)
  serviceProxyName: z.string().min(1).max(63).optional(),
  // the node's zone, for topology-aware routing (endpoints hinted for it are preferred); in a
  // cluster the Node's topology.kubernetes.io/zone label wins when set
  zone: z.string().min(1).max(63).optional(),
  // kube-proxy's --masquerade-all: every new flow to a ClusterIP leaves with the node's source
  masqueradeAll: z.boolean().default(false),
}).strict();

// a next hop by MAC, or by address (via: resolved on the port like a pod without a MAC)
const routeSchema = z.object({ prefix: cidr, port: portName, mac: mac.optional(), via: ip.optional() }).strict();
const masqueradeSchema = z.object({ ipv4: hostIp.optional(), ipv6: hostIp.optional() }).strict();
const apiSchema = z.object({
  listen: z.string().min(1).refine((l) => l !== 'off', { message: 'must be host:port, [v6]:port, unix:/path or /path' }).superRefine(checkListen)
    .refine((l) => !listenOnKernelFs(l), { message: KERNEL_FS_MESSAGE }).default(DEFAULT_LISTEN),
  // kube-proxy style health endpoint on its own listener ("off" for none)
  healthz: z.string().min(1).superRefine(checkListen).refine((l) => !listenOnKernelFs(l), { message: KERNEL_FS_MESSAGE }).default(DEFAULT_HEALTHZ_LISTEN),
  token: z.string().min(16, 'must be at least 16 characters').optional(),
}).strict();

const configObject = z.object({
  node: nodeSchema,
  ports: z.array(portSchema).min(1, 'at least one port is needed'),
  routes: z.array(routeSchema).default([]),
  masquerade: masqueradeSchema.optional(),
  api: apiSchema.default({ listen: DEFAULT_LISTEN, healthz: DEFAULT_HEALTHZ_LISTEN }),
  stateDir: z.string().min(1).refine((d) => !onKernelFs(d), { message: KERNEL_FS_MESSAGE }).default('/var/lib/wdp'),
  workers: z.number().int().min(1).max(64).default(1),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  conntrack: z.object({
    // the core's clock counts ms in 32 bits: a timeout holds at most 2^32 - 1 ms (~49.7 days)
    flows: z.number().int().min(16).max(1 << 22).default(65536),
    tcpEstablishedSeconds: ctTimeoutSeconds,
    udpSeconds: ctTimeoutSeconds,
    // unconfirmed TCP flows (docs/core.md "TCP states"): SYN sent, SYN-ACK seen, mid-stream pick-up
    tcpSynSeconds: ctTimeoutSeconds,
    tcpUnconfirmedSeconds: ctTimeoutSeconds,
    // established TCP after a FIN from one side only (kube-proxy's --conntrack-tcp-timeout-close-wait)
    tcpHalfClosedSeconds: ctTimeoutSeconds,
    // an established SCTP association (the kernel's nf_conntrack_sctp_timeout_established, 210 s;
    // its handshake and shutdown states keep the kernel's defaults: docs/core.md "SCTP states")
    sctpEstablishedSeconds: ctTimeoutSeconds,
    // fragment table (docs/core.md "Fragments"): entries (0 = later fragments always drop), and
    // how long a first fragment's ports are remembered
    fragments: z.number().int().min(0).max(1 << 22).optional(),
    fragmentMs: z.number().int().min(1).max(60_000).optional(),
    // flow checkpoint period (docs/running.md, restarts): a crash loses at most this much; 0 = on stop only
    checkpointSeconds: z.number().int().min(0).max(86400).default(30),
  }).strict().default({ flows: 65536, checkpointSeconds: 30 }),
  probeIntervalMs: z.number().int().min(100).max(60000).default(1000),
  // adaptive busy-poll (src/daemon/worker.ts): after a batch, a worker keeps polling its ports
  // without sleeping for this long before it blocks; 0 = always block when nothing is there
  busyPollUs: z.number().int().min(0).max(100_000).default(BUSY_POLL_US_DEFAULT),
  // established flows between AF_XDP and AF_PACKET ports forwarded by the kernel (src/daemon/kernel-path.ts,
  // docs/running.md "The kernel path"): one worker only, Linux 6.6 or later (tcx)
  kernelPath: z.object({
    enabled: z.boolean().default(false),
    // how long an entry carries its flow before a frame goes through the core again
    lifetimeMs: z.number().int().min(10).max(60_000).default(1000),
    // the kernel's flow table (LRU): entries, one per flow and direction
    flows: z.number().int().min(16).max(1 << 22).default(65536),
  }).strict().default({ enabled: false, lifetimeMs: 1000, flows: 65536 }),
  // the forwarding workers' nice value (src/daemon/thread-priority.ts; below 0 needs
  // CAP_SYS_NICE, else a warning and the default priority); 0 = leave it
  workerNice: z.number().int().min(-20).max(19).default(WORKER_NICE_DEFAULT),
  // the forwarding workers under SCHED_FIFO at this priority (src/daemon/thread-priority.ts;
  // needs CAP_SYS_NICE, else a warning and normal scheduling); 0 = normal scheduling
  workerRealtimePriority: z.number().int().min(0).max(99).default(WORKER_REALTIME_PRIORITY_DEFAULT),
  // the control plane's thread (the daemon's main thread: API, compile, store) likewise; with
  // workerNice, what a change waits for on a busy node (docs/performance.md, "Thread priorities")
  controlNice: z.number().int().min(-20).max(19).default(CONTROL_NICE_DEFAULT),
  // the runtime's helper threads (V8's garbage-collection and background-compile threads, Node's
  // and libuv's: src/daemon/helper-threads.ts) at this nice value; below 0 needs CAP_SYS_NICE
  helperNice: z.number().int().min(-20).max(19).default(HELPER_NICE_DEFAULT),
  // pin worker i to CPU workerCpus[i] (sched_setaffinity of the worker thread alone), one entry
  // per worker; a CPU this process may not use leaves the worker unpinned, with a warning.
  // Absent: the scheduler places the workers.
  workerCpus: z.array(z.number().int().min(0).max(1023)).optional(),
  hugePages: z.boolean().default(false), // table sets marked MADV_HUGEPAGE (src/core/hugepages.ts; docs/running.md)
  // Frontend addresses the uplinks answer ARP/ND for besides the node addresses: off by default,
  // because on a shared L2 every node answering would claim every VIP (L2 announcement mode of
  // a load balancer, e.g. MetalLB's, is the one owner of an IP; turn it on only where wdp is).
  announce: z.object({ loadBalancerIPs: z.boolean().default(false), externalIPs: z.boolean().default(false) }).strict().default({ loadBalancerIPs: false, externalIPs: false }),
  // a learned neighbour is re-verified (unicast ARP/NS) when not heard from for this long
  neighbourReachableMs: z.number().int().min(1000).max(3_600_000).default(30_000),
  kubernetes: kubernetesSchema.optional(),
}).strict();

type ConfigObject = z.output<typeof configObject>;
type PortObject = z.output<typeof portSchema>;
type PodObject = z.output<typeof podSchema>;

// ---- rules between fields ----------------------------------------------------------------------
// The rules below relate fields to each other (a duplicate name, a route naming a port, a field
// only a TAP has). zod runs a refinement only on a value whose own fields all parsed, so as a
// superRefine they said nothing until every field error of the file was fixed: the operator saw
// the file's problems one level at a time. They run instead on a view of the file in which each
// field that is valid on its own has its parsed value and each invalid one is left out and
// marked (configView); a rule looks only at fields that are known (valid), so a field error is
// never followed by a rule's guess at what the field meant. On a valid file the view is the
// parsed config itself. Cost: each part of a file with errors parsed a second time, field by field.

/** The fields of a view's object that were invalid (left out); none on a parsed config. */
const invalidFields = new WeakMap<object, Set<string>>();
/** Whether the fields `keys` of `o` are known: valid, or absent where absence is allowed. */
function known(o: object | undefined, ...keys: string[]): boolean {
  if (!o) return false;
  const bad = invalidFields.get(o);
  return !bad || keys.every((k) => !bad.has(k));
}
const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `raw`'s fields of `shape`, each parsed on its own: the valid ones with their values (defaults
 * applied), the invalid ones left out and marked; undefined when `raw` is no mapping. `custom`
 * builds a field's view instead (a list read entry by entry). */
function objectView(shape: Record<string, z.ZodType>, raw: unknown, custom: Record<string, (v: unknown) => unknown> = {}): Record<string, unknown> | undefined {
  if (!isMapping(raw)) return undefined;
  const out: Record<string, unknown> = {}, bad = new Set<string>();
  for (const [k, schema] of Object.entries(shape)) {
    if (custom[k]) { const v = custom[k](raw[k]); if (v === invalid) bad.add(k); else if (v !== undefined) out[k] = v; continue; }
    const r = schema.safeParse(raw[k]);
    if (r.success) { if (r.data !== undefined) out[k] = r.data; } else bad.add(k);
  }
  invalidFields.set(out, bad);
  return out;
}
const invalid = Symbol('invalid');
/** A list read entry by entry: each entry's view (undefined for one that is not valid, or no
 * mapping), in the file's order; `invalid` when it is no list, `absent` when it is not there. */
function listView<T>(raw: unknown, entry: (v: unknown) => T | undefined, absent: T[] | undefined = []): Array<T | undefined> | typeof invalid | undefined {
  if (raw === undefined) return absent;
  return Array.isArray(raw) ? raw.map(entry) : invalid;
}
const wholeEntry = <T>(schema: z.ZodType<T>) => (v: unknown): T | undefined => { const r = schema.safeParse(v); return r.success ? r.data : undefined; };

/** The config as the rules between fields see it: objects whose known fields have their parsed
 * values, lists with an entry per entry of the file (undefined: unknown). */
interface ConfigView {
  node?: Partial<ConfigObject['node']>;
  ports: Array<(Partial<Omit<PortObject, 'pods'>> & { pods?: Array<PodObject | undefined> }) | undefined>;
  routes: Array<Partial<ConfigObject['routes'][number]> | undefined>;
  masquerade?: Partial<NonNullable<ConfigObject['masquerade']>>;
  api?: Partial<ConfigObject['api']>;
  kubernetes?: Partial<KubernetesConfig>;
  workers?: number;
  workerCpus?: number[];
  kernelPath?: { enabled: boolean };
}

type PortView = ConfigView['ports'][number] & object;
/** A port's view: its pods entry by entry. */
function portView(raw: unknown): PortView | undefined {
  return objectView(portSchema.shape, raw, { pods: (x) => listView(x, wholeEntry(podSchema)) }) as PortView | undefined;
}

/** The view of a file that did not parse whole (see above). */
function configView(raw: unknown): ConfigView | undefined {
  const v = objectView(configObject.shape, raw, {
    node: (v) => objectView(nodeSchema.shape, v) ?? invalid,
    ports: (v) => listView(v, portView, undefined) ?? invalid,   // (required: not there is invalid)
    routes: (v) => listView(v, (x) => objectView(routeSchema.shape, x)),
    masquerade: (v) => (v === undefined ? undefined : objectView(masqueradeSchema.shape, v) ?? invalid),
    api: (v) => objectView(apiSchema.shape, v ?? {}) ?? invalid,
    kubernetes: (v) => (v === undefined ? undefined : objectView(kubernetesSchema.shape, v) ?? invalid),
  });
  if (!v) return undefined;
  // (a list that is no list: no entries, marked)
  v.ports ??= [];
  v.routes ??= [];
  return v as unknown as ConfigView;
}

interface Problem { path: Array<string | number>; message: string }

/** What is wrong between the fields of `c` (a parsed config, or the view of one that did not
 * parse), each with its field path. */
function crossFieldProblems(c: ConfigView): Problem[] {
  const out: Problem[] = [];
  const issue = (path: Array<string | number>, message: string) => { out.push({ path, message }); };
  const node = c.node, k = c.kubernetes, workers = known(c, 'workers') ? c.workers : undefined;
  // every port's entry, name and interface known: a name looked for among them that is not there is not in the file
  const portsWhole = known(c, 'ports') && c.ports.every((p) => p && known(p, 'name', 'ifname', 'role'));
  if (node && known(node, 'name') && known(c, 'kubernetes') && !node.name && !k) issue(['node', 'name'], 'required (unless kubernetes: is set, where the hostname names the node)');
  if (k && known(k, 'minSyncPeriod', 'syncPeriod') && k.minSyncPeriod! > k.syncPeriod!) issue(['kubernetes', 'minSyncPeriod'], 'must not be longer than syncPeriod');
  if (k && known(k, 'nodePortAddresses')) {
    // kube-proxy's validateKubeProxyNodePortAddress: "primary" only as the one entry, reported at
    // the first "primary"
    const primary = k.nodePortAddresses!.indexOf('primary');
    if (primary >= 0 && k.nodePortAddresses!.length !== 1) {
      issue(['kubernetes', 'nodePortAddresses', primary], 'can\'t use both "primary" and CIDRs: "primary" (the node\'s primary IP per family) must be the only entry');
    }
  }
  if (k && known(k, 'clusterCIDRs', 'detectLocalMode')) {
    // kube-proxy's validateDualStackCIDRStrings, checked in ClusterCIDR mode only (NodeCIDR does
    // not read them)
    const cidrs = k.clusterCIDRs!;
    if (k.detectLocalMode === 'ClusterCIDR' && (cidrs.length > 2 || (cidrs.length === 2 && parseCidr(cidrs[0]).family === parseCidr(cidrs[1]).family))) {
      issue(['kubernetes', 'clusterCIDRs'], 'must be either a single CIDR or a dual-stack pair of CIDRs (e.g. [10.100.0.0/16, fde4:8dba:82e1::/48])');
    }
  }
  const api = c.api;
  if (api && known(api, 'listen', 'token')) {
    // the API refuses to listen there without a token; said here so the whole file is checked
    // before any port opens (exit 2), not after
    let l: ReturnType<typeof parseListen> | undefined;
    try { l = parseListen(api.listen!); } catch { /* api.listen's own problem */ }
    const why = l && tokenRequiredReason(l, api.token);
    if (why) issue(['api', 'token'], `required when api.listen (${api.listen}) ${why}`);
  }
  const nodeAddresses = node && known(node, 'addresses') ? node.addresses! : undefined;
  const names = new Map<string, number>();
  const ifs = new Map<string, number>();
  const ports = c.ports;
  ports.forEach((p, i) => {
    if (!p) return;
    const at = (...rest: Array<string | number>) => ['ports', i, ...rest];
    if (p.name !== undefined) {
      if (names.has(p.name)) issue(at('name'), `duplicate port name "${p.name}" (also ports[${names.get(p.name)}])`);
      names.set(p.name, i);
    }
    if (p.ifname !== undefined) {
      if (ifs.has(p.ifname)) issue(at('ifname'), `duplicate interface "${p.ifname}" (also ports[${ifs.get(p.ifname)}])`);
      ifs.set(p.ifname, i);
    }
    const typeKnown = known(p, 'type');
    if (typeKnown && p.netns && p.type !== 'tap') issue(at('netns'), 'only a TAP port can be moved into another namespace');
    if (typeKnown && p.persist !== undefined && p.type !== 'tap') issue(at('persist'), 'only a TAP port can be persistent');
    if (typeKnown && p.mtu !== undefined && p.type !== 'tap') issue(at('mtu'), 'only a TAP port is created with an MTU (other ports take their interface\'s: set it with ip link)');
    if (typeKnown && p.rxRing !== undefined && p.type !== 'afxdp') issue(at('rxRing'), 'only an afxdp port has an AF_XDP RX ring');
    if (typeKnown && p.xdpMode !== undefined && p.type !== 'afxdp') issue(at('xdpMode'), 'only an afxdp port attaches an XDP program');
    if (p.worker !== undefined && workers !== undefined && p.worker >= workers) issue(at('worker'), `worker ${p.worker} does not exist (workers: ${workers})`);
    if (!known(p, 'role')) return;
    if (p.role !== 'pod' && p.pods?.length) issue(at('pods'), 'pods can only be listed on a pod-facing port (role: pod)');
    if (p.role !== 'host' && (p.uplink || p.hostAddresses?.length || p.hostRoutes?.length || p.hostNodePorts || p.hostHairpin)) issue(at('role'), 'uplink, hostAddresses, hostRoutes, hostNodePorts and hostHairpin belong to a host port (role: host)');
    if (p.role !== 'host') return;
    const fams = (p.hostHairpin ?? []).map((a) => isIP(a));
    if (new Set(fams).size !== fams.length) issue(at('hostHairpin'), 'at most one address per family');
    const canon = (x: string) => { try { return canonicalAddr(x); } catch { return x; } };
    const own = new Set([...(p.hostAddresses ?? []).map((x) => x.split('/')[0]), ...(nodeAddresses ?? [])].map(canon));
    (p.hostHairpin ?? []).forEach((a, j) => {
      if (isIP(a) && own.has(canon(a))) issue(at('hostHairpin', j), 'must not be an address of the node (that is what a hairpin address avoids)');
    });
    if (typeKnown && p.type !== 'tap') issue(at('type'), 'a host port is a TAP (the node stack\'s interface)');
    // the uplink it is bridged with: judged only where the ports it is chosen among are all known
    if (!known(p, 'uplink')) return;
    const uplinks = ports.filter((q) => q?.role === 'uplink');
    const up = p.uplink ? ports.find((q) => q?.name === p.uplink) : uplinks.length === 1 ? uplinks[0] : undefined;
    if (!up) { if (portsWhole) issue(at('uplink'), p.uplink ? `no port named "${p.uplink}"` : 'say which uplink the host port is bridged with (uplink: NAME)'); }
    else if (!known(up, 'role')) { /* its role's own problem */ }
    else if (up.role !== 'uplink') issue(at('uplink'), `port "${up.name}" is not an uplink`);
    else if (known(up, 'worker') && known(p, 'worker') && (up.worker ?? 0) !== (p.worker ?? 0)) issue(at('worker'), 'a host port and its uplink must be in the same worker');
  });
  // a pod listed twice (on one port or two), or a prefix routed twice: which one would win is
  // nobody's choice (the node config built from them refuses it, after the ports had opened)
  const podAt = new Map<string, string>();
  ports.forEach((p, i) => p?.pods?.forEach((pod, j) => {
    if (!pod || isIP(pod.ip) === 0) return;
    const key = canonicalAddr(pod.ip), at = `ports[${i}].pods[${j}]`;
    const before = podAt.get(key);
    if (before) issue(['ports', i, 'pods', j, 'ip'], `duplicate pod ${pod.ip} (also ${before})`);
    else podAt.set(key, at);
  }));
  const prefixAt = new Map<string, number>();
  c.routes.forEach((r, i) => {
    if (!r?.prefix) return;
    let key: string;
    // the network (host bits cleared): 10.1.2.3/8 routes what 10.0.0.0/8 does
    try { key = cidrNetwork(parseCidr(r.prefix)); } catch { return; }
    const before = prefixAt.get(key);
    if (before !== undefined) issue(['routes', i, 'prefix'], `duplicate route ${r.prefix} (also routes[${before}])`);
    else prefixAt.set(key, i);
  });
  if (c.workerCpus && workers !== undefined && c.workerCpus.length !== workers) issue(['workerCpus'], `one CPU per worker: ${workers} worker(s), ${c.workerCpus.length} CPU(s) listed`);
  if (ports.filter((p) => p?.role === 'host').length > 1) issue(['ports'], 'at most one host port');
  const whole = (p: ConfigView['ports'][number]) => !!p && known(p, 'name', 'ifname');
  c.routes.forEach((r, i) => {
    if (!r) return;
    const j = r.port === undefined ? undefined : names.get(r.port);
    if (r.port !== undefined && j === undefined && portsWhole) issue(['routes', i, 'port'], `no port named "${r.port}"`);
    if (!known(r, 'prefix', 'mac', 'via') || r.prefix === undefined) return;
    const route = { ...r, prefix: r.prefix, ...(known(r, 'port') ? {} : { port: undefined }) };
    const viaProblem = routeViaProblem(route, ports.filter(whole) as Array<{ name: string; ifname: string }>);
    // (a zone that names no port among those known may name one whose name is unknown)
    if (viaProblem) { if (!viaProblem.namesNoPort || ports.every(whole)) issue(['routes', i, viaProblem.field], viaProblem.message); return; }
    if (j === undefined) return;
    if (!r.via || !isIP(r.via)) return;
    const fam = isIP(r.via), p = ports[j]!;
    // the probes' source: a gateway address of the port, on an uplink else a node address
    const gateways = known(p, 'gateways') ? p.gateways! : undefined;
    const ownAddrs = new Set([...(gateways ?? []), ...(nodeAddresses ?? [])].filter((a) => isIP(a)).map(canonicalAddr));
    if (ownAddrs.has(canonicalAddr(r.via))) issue(['routes', i, 'via'], 'must be another host\'s address, not one this node answers for (a gateway of the port or a node address)');
    // the port asks for a link-local next hop from, and answers for, its MAC's EUI-64 link-local address
    else if (p.mac && isLinkLocal(canonicalAddr(r.via)) && canonicalAddr(r.via) === eui64LinkLocal(p.mac)) issue(['routes', i, 'via'], `must be another host's address, not port "${p.name}"'s own link-local address ${eui64LinkLocal(p.mac)} (the modified EUI-64 of its mac ${p.mac})`);
    // a link-local next hop is asked from the port's own link-local address (src/daemon/l2.ts)
    if (!gateways || !known(p, 'role') || !known(c, 'kubernetes') || !nodeAddresses) return;
    const uplinkSource = isLinkLocal(canonicalAddr(r.via)) || (p.role === 'uplink' && (!!k || nodeAddresses.some((a) => isIP(a) === fam)));
    if (!gateways.some((g) => isIP(g) === fam) && !uplinkSource) issue(['routes', i, 'via'], `port "${r.port}" has no IPv${fam} address to ask from (ARP/ND needs one): add it to ports[${j}].gateways${p.role === 'uplink' ? ' (or an IPv' + fam + ' node address to node.addresses)' : ''}`);
  });
  // each worker has its own conntrack and would need its own kernel path on shared interfaces
  if (known(c, 'kernelPath') && c.kernelPath?.enabled && workers !== undefined && workers > 1) issue(['kernelPath', 'enabled'], `the kernel path runs with one worker (workers: ${workers}): set workers: 1, or leave the kernel path off`);
  const m = c.masquerade;
  if (m?.ipv4 && isIP(m.ipv4) !== 4) issue(['masquerade', 'ipv4'], 'must be an IPv4 address');
  if (m?.ipv6 && isIP(m.ipv6) !== 6) issue(['masquerade', 'ipv6'], 'must be an IPv6 address');
  ports.forEach((p, i) => {
    if (!p) return;
    if (p.attachment) issue(['ports', i, 'attachment'], 'only a port the CNI plugin adds through the ports API has a CNI attachment');
    if (p.fanout && known(p, 'type') && p.type === 'tap') issue(['ports', i, 'fanout'], 'only an afpacket or afxdp port can be shared by the workers (a TAP fd is one queue)');
    if (p.fanout && p.worker !== undefined) issue(['ports', i, 'worker'], 'a fanout port is in every worker: leave worker out');
  });
  // (with a port's fanout or worker unknown, which way the ports are placed is not known)
  if (workers !== undefined && workers > 1 && known(c, 'ports') && ports.every((p) => p && known(p, 'fanout', 'worker'))) {
    // Conntrack lives in each worker's core: a reply must come back to the worker that saw the
    // original packet. Either every port is shared by all workers and frames are steered to the
    // flow's worker (fanout), or ports are split between workers and every flow must enter and
    // leave through ports of one worker, which the config must then say explicitly.
    const fanout = ports.some((p) => p!.fanout);
    ports.forEach((p, i) => {
      if (fanout && !p!.fanout) issue(['ports', i, 'fanout'], 'with a fanout port every port must be fanout: true (a flow\'s worker is chosen by steering, which needs every port in every worker)');
      else if (!fanout && p!.worker === undefined) issue(['ports', i, 'worker'], 'with workers > 1 every port needs "worker: N" (flows must enter and leave through ports of the same worker) or every port "fanout: true"');
    });
  }
  return out;
}

/** A valid config as the daemon takes it: the node's name (kubernetes.hostnameOverride, else
 * node.name, else — watching the API — the hostname), nodePortAddresses' default. */
function completed(c: ConfigObject) {
  return {
    ...c,
    node: { ...c.node, name: c.kubernetes?.hostnameOverride ?? c.node.name ?? defaultNodeName() },
    kubernetes: c.kubernetes && withNodePortDefault(c.kubernetes, c.node.addresses),
  };
}

/** kube-proxy's nftables proxier defaults an empty nodePortAddresses to "primary" (its
 * platformApplyDefaults / the nftables backend's Init): NodePorts and health-check node ports on
 * the node's primary IP per family only, not on every address of the node. ["0.0.0.0/0", "::/0"]
 * is its way to ask for every address, and is wdp's too. Not applied with node.addresses
 * configured: with no nodePortAddresses those addresses alone are served (an operator who listed
 * them meant exactly those; src/kube/nodeport-addresses.ts). */
function withNodePortDefault(k: KubernetesConfig, configured: readonly string[]): KubernetesConfig {
  return k.nodePortAddresses.length || configured.length ? k : { ...k, nodePortAddresses: ['primary'] };
}

/** The hostname as a node name (kubelet and kube-proxy trim and lowercase it the same way). */
export function defaultNodeName(): string { return hostname().trim().toLowerCase(); }

export type DaemonConfig = ReturnType<typeof completed>;
export type PortConfig = DaemonConfig['ports'][number];

/** A port added at runtime (the ports API): the config's port schema; only pod and uplink
 * ports (a host port belongs in the config file). */
export function parsePortConfig(raw: unknown): PortConfig {
  const r = portSchema.safeParse(raw);
  // (as the config file's: the rules between its fields among those valid, with the fields' own problems)
  const p = r.success ? r.data : portView(raw);
  const problems = [...(r.success ? [] : r.error.issues.map(problemOf(portSchema))), ...(p ? runtimePortProblems(p) : [])];
  if (!r.success || problems.length) throw new ConfigError(formatProblems('port', problems));
  return r.data;
}

/** What is wrong between the fields of a port added at runtime (a parsed one, or the view of one
 * that did not parse: see configView). */
function runtimePortProblems(p: PortView): Problem[] {
  const out: Problem[] = [];
  const issue = (field: string | Array<string | number>, message: string) => { out.push({ path: Array.isArray(field) ? field : [field], message }); };
  const typeKnown = known(p, 'type'), roleKnown = known(p, 'role');
  if (roleKnown && p.role === 'host') issue('role', 'a host port can only be configured in the config file');
  if (typeKnown && p.netns && p.type !== 'tap') issue('netns', 'only a TAP port can be moved into another namespace');
  if (typeKnown && p.mtu !== undefined && p.type !== 'tap') issue('mtu', 'only a TAP port is created with an MTU (other ports take their interface\'s: set it with ip link)');
  if (typeKnown && p.fanout && p.type !== 'afpacket') issue('fanout', p.type === 'tap' ? 'only an afpacket or afxdp port can be shared by the workers (a TAP fd is one queue)' : 'an afxdp port shared by the workers can only be configured in the config file (at runtime: afpacket)');
  if (p.fanout && p.worker !== undefined) issue('worker', 'a fanout port is in every worker: leave worker out');
  if (roleKnown && p.role !== 'pod' && p.pods?.length) issue('pods', 'pods can only be listed on a pod-facing port (role: pod)');
  if (p.uplink || p.hostAddresses?.length || p.hostRoutes?.length || p.hostNodePorts || p.hostHairpin) issue('role', 'uplink, hostAddresses, hostRoutes, hostNodePorts and hostHairpin belong to a host port');
  const pods = new Map<string, number>();
  p.pods?.forEach((pod, j) => {
    if (!pod) return;
    const k = canonicalAddr(pod.ip), before = pods.get(k);
    if (before !== undefined) issue(['pods', j, 'ip'], `duplicate pod ${pod.ip} (also pods[${before}])`);
    else pods.set(k, j);
  });
  return out;
}

export class ConfigError extends Error {
  constructor(message: string) { super(message); this.name = 'ConfigError'; }
}

/** The keys an object of `root` at `path` may have; none when the path leads to no object. */
function keysAt(root: z.core.$ZodType, path: PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = root;
  for (let i = 0; s && i <= path.length;) {
    const def = s._zod.def as unknown as { type: string; shape?: Record<string, z.core.$ZodType>; innerType?: z.core.$ZodType; in?: z.core.$ZodType; element?: z.core.$ZodType };
    if (def.innerType) s = def.innerType; // optional, default, nullable, ...
    else if (def.type === 'pipe') s = def.in && (def.in._zod.def as { type: string }).type !== 'transform' ? def.in : (def as { out?: z.core.$ZodType }).out;
    else if (i === path.length) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    else if (def.type === 'object' && typeof path[i] === 'string') s = def.shape?.[path[i++] as string];
    else if (def.type === 'array' && typeof path[i] === 'number') { s = def.element; i++; } else return [];
  }
  return [];
}

/** A zod issue of `root` as a problem: a field left out is "required", not zod's "expected
 * string, received undefined"; an unknown key close to a known one at its level gets a hint. */
function problemOf(root: z.core.$ZodType): (i: z.core.$ZodIssue) => Problem {
  return (i) => {
    const missing = i.code === 'invalid_type' && /received undefined$/.test(i.message);
    let message = missing ? `required (${'expected' in i ? String(i.expected) : 'a value'})` : i.message;
    if (i.code === 'unrecognized_keys') {
      const known = keysAt(root, i.path);
      const hints = i.keys.map((k) => [k, didYouMean(k, known)]).filter(([, h]) => h);
      if (hints.length) message += ` (${hints.map(([k, h]) => i.keys.length > 1 ? `${JSON.stringify(k)}: ${h}` : h).join('; ')})`;
    }
    return { path: i.path.filter((p): p is string | number => typeof p !== 'symbol'), message };
  };
}

/** `what` names the input ("config FILE", "port"); one line per problem, with its field path. */
function formatProblems(what: string, problems: Problem[]): string {
  const lines = problems.map((i) => {
    const path = i.path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '');
    return `  ${path || '(top level)'}: ${i.message}`;
  });
  return `invalid ${what}:\n${lines.join('\n')}`;
}

/** Validates an already-parsed object. Throws ConfigError listing every problem of the file:
 * each field's own, and those between fields (crossFieldProblems) among the fields that are valid. */
export function parseConfig(raw: unknown, source = '(inline)'): DaemonConfig {
  const r = configObject.safeParse(raw);
  const view = r.success ? r.data : configView(raw);
  const problems = [...(r.success ? [] : r.error.issues.map(problemOf(configObject))), ...(view ? crossFieldProblems(view) : [])];
  if (!r.success || problems.length) throw new ConfigError(formatProblems(`config ${source}`, problems));
  return completed(r.data);
}

/** A config file is a few KB; this refuses a device or a wrong file before it fills the heap. */
const MAX_CONFIG_FILE = 4 << 20;

/** `adjust` may change the parsed file before validation (command-line flags). */
export function loadConfigFile(path: string, adjust?: (raw: Record<string, unknown>) => void): DaemonConfig {
  let text: string;
  try { text = readInputFile(path, MAX_CONFIG_FILE, `config ${path}`); } catch (e) {
    throw new ConfigError(e instanceof InputFileError ? e.message : `cannot read config ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try { raw = parseSingleDocument(text, `config ${path}`); } catch (e) {
    throw new ConfigError(e instanceof DocumentError ? `${e.message} (not valid YAML)` : `config ${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config ${path} must be a YAML mapping (node:, ports:, ...)`);
  adjust?.(raw as Record<string, unknown>);
  return parseConfig(raw, path);
}

/** The core's conntrack timeouts (Core.create's `timeouts`, ms) the config's `conntrack` section
 * sets; a timeout it leaves unset keeps the core's default (src/core/timeouts.ts). */
export function coreTimeouts(c: DaemonConfig['conntrack']): Record<string, number> {
  const t: Record<string, number> = {};
  const seconds: Array<[number | undefined, string]> = [
    [c.tcpEstablishedSeconds, 'tcpEstablishedMs'], [c.udpSeconds, 'udpMs'], [c.tcpSynSeconds, 'tcpSynMs'],
    [c.tcpUnconfirmedSeconds, 'tcpUnconfirmedMs'], [c.tcpHalfClosedSeconds, 'tcpHalfClosedMs'], [c.sctpEstablishedSeconds, 'sctpMs'],
  ];
  for (const [s, ms] of seconds) if (s) t[ms] = s * 1000;
  if (c.fragmentMs) t.fragmentMs = c.fragmentMs;
  return t;
}
