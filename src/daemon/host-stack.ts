// The node's own network stack behind the host port (role: host): what the daemon sets up on
// the host's side of the TAP each time it creates it, keeps in step with the node addresses while
// it runs, and takes down when it stops.
//
//   * the node addresses (hostAddresses, plus every node address of the NodeConfig in force) and
//     the routes through the dataplane (hostRoutes: pod and service CIDRs via a gateway address
//     the dataplane answers on this port, the default route via the uplink's gateway) —
//     `ip addr/route replace`, so a restart is idempotent;
//   * accept_local=1 and rp_filter=0 on the TAP: the reply to the host's own request to a
//     NodePort of this node comes back with a node address as its source; promote_secondaries=1,
//     so removing one node address never takes the others of its subnet along;
//   * the host's own connections to NodePorts (hostNodePorts, default 30000-32767): the kernel
//     would deliver nodeIP:nodePort locally, so locally generated packets to a node address and
//     a port in the range are policy-routed out of the TAP (table HOST_NODEPORT_TABLE, rule
//     preference 50, `iif lo`); the `local` table's rule moves from preference 0 to 100 so that
//     rule is looked at first. Everything else is untouched: only `iif lo` traffic to the node's
//     own NodePorts matches, and if the daemon dies the table's route goes with the TAP, so the
//     rule falls through to local delivery again;
//   * the host's own connections to its Services' external IPs and LoadBalancer ingress IPs that
//     are its own addresses (a bare-metal `externalIPs: [<node IP>]`): one rule of the same kind
//     per (address, protocol, port) the Services have there (host-service-ports.ts follows them
//     as the dataplane's frontends change), as kube-proxy's nat-output DNATs exactly those pairs;
//     the address's other ports stay the host's. Set up whatever hostNodePorts says;
//   * the hairpin addresses (hostHairpin): a host route to each via this port's gateway, with the
//     masquerade address of its family as source. The core gives the host's own connections that
//     a Service sends back to the host (a hostNetwork endpoint at the node address) that source
//     address; the host answers it through the TAP, and the core translates the answer back.
//
// When the node addresses change (the Node object, or a NodeConfig applied through the API),
// update() follows: new addresses are added (with the prefix length of the hostAddresses entry
// whose subnet holds them, else /32 or /128) before anything is removed, their NodePort rules are
// added (for the NodePort addresses among them; an address that stops or starts being one loses or
// gains its rules), the hairpin routes take the new masquerade source, and only then are the addresses that
// are no longer node addresses removed (hostAddresses that never were node addresses stay). An
// address that comes or goes gains or loses its Services' external port rules with it.
// Addresses that stay are never touched: their connections go on. Each step is an `ip` /
// `sysctl` fork (~2-5 ms); a start costs a dozen or two, a change a few per changed address.
import type { Logger } from 'pino';
import { inNs, ipCmd } from './link-commands.js';
import type { ManagedPort } from './port-manager.js';
import { hostHairpinOf } from './config.js';
import type { ExternalPorts } from './host-service-ports.js';
import { canonicalAddr } from './l2.js';
import { cidrContains, parseAddr, parseCidr } from '../util/addr.js';
import { otherWdpIn } from './interface-claim.js';

export const HOST_NODEPORT_TABLE = 4242;
const RULE_PREF = 50;
const LOCAL_PREF = 100;
const DEFAULT_NODEPORTS = '30000-32767';
const PROTOS = ['tcp', 'udp', 'sctp'];

type Fam = '-4' | '-6';
const famOf = (a: string): Fam => (a.includes(':') ? '-6' : '-4');

/** What the host stack follows: the node addresses in force, those of them NodePorts are served
 * on (the NodeConfig's nodePortAddresses; unset: all of them) and the masquerade source per family. */
export interface HostAddresses { nodeAddresses: string[]; nodePortAddresses?: string[]; snat: { v4?: string; v6?: string } }

export interface HostStack {
  /** The node addresses (or the masquerade sources) changed: the TAP's addresses, the NodePort
   * rules and the hairpin routes follow, without touching what stays. */
  update(a: HostAddresses): void;
  /** The Services' external or LB ports at these addresses changed (in the index the host stack
   * was given): the rules of those that are the host's own follow. */
  servicePortsChanged(addrs: Iterable<string>): void;
  teardown(): void;
}

export function configureHostStack(p: ManagedPort, start: HostAddresses, uplinkGateways: string[], netns: string | undefined, log: Logger, services?: ExternalPorts): HostStack {
  const c = p.config, ifname = c.ifname;
  const ns = c.netns ?? netns;
  const warn = (what: string, e: unknown) => log.warn({ port: c.name, error: (e as Error).message.split('\n')[0] }, what);
  for (const [fam, k, v] of [['ipv4', 'accept_local', '1'], ['ipv4', 'rp_filter', '0'], ['ipv4', 'promote_secondaries', '1']]) {
    try { inNs(ns, 'sysctl', ['-qw', `net.${fam}.conf.${ifname}.${k}=${v}`]); } catch (e) { warn(`cannot set ${k} on the host port`, e); }
  }
  const gatewayOf = (fam: Fam) => [...c.gateways, ...uplinkGateways].find((g) => famOf(g) === fam);

  // hostAddresses by canonical address; those that are not node addresses at start stay for good
  const configured = new Map(c.hostAddresses.map((a) => [canonicalAddr(a.split('/')[0]), a]));
  const startNode = new Set(start.nodeAddresses.map(canonicalAddr));
  const fixed = new Set([...configured.keys()].filter((a) => !startNode.has(a)));
  const onTap = new Map<string, string>();   // node addresses on the TAP -> "addr/plen"
  const withPrefix = (a: string): string => {
    const exact = configured.get(a);
    if (exact) return exact;
    const addr = parseAddr(a);
    for (const cfg of configured.values()) {
      const cidr = parseCidr(cfg);
      if (cidr.family === addr.family && cidrContains(cidr, addr)) return `${a}/${cidr.plen}`;
    }
    return `${a}/${addr.family === 4 ? 32 : 128}`;
  };
  let v6On = false;
  const addAddress = (a: string) => {
    const ap = withPrefix(a);
    if (famOf(a) === '-6' && !v6On) {
      try { inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=0`]); } catch { /* no IPv6 */ }
      v6On = true;
    }
    ipCmd(ns, ['addr', 'replace', ap, 'dev', ifname]);
    return ap;
  };

  ipCmd(ns, ['link', 'set', 'dev', ifname, 'up']);
  for (const [a, ap] of configured) { addAddress(a); if (!fixed.has(a)) onTap.set(a, ap); }
  for (const a of startNode) if (!onTap.has(a)) onTap.set(a, addAddress(a));
  const applyRoutes = () => {
    for (const r of c.hostRoutes) {
      // onlink: the gateway is the dataplane's address on this link, not in a prefix of the TAP
      ipCmd(ns, [famOf(r.via), 'route', 'replace', r.prefix, 'via', r.via, 'dev', ifname, 'onlink']);
    }
  };
  applyRoutes();

  // ---- the host's own connections to its NodePorts and its Services' external ports -----------
  const range = c.hostNodePorts ?? DEFAULT_NODEPORTS;
  const families = new Map<Fam, { movedLocal: boolean }>();
  const famWarned = new Set<Fam>();
  const nodePortAddrs = new Set<string>();                   // addresses with their NodePort rules
  const servicePorts = new Map<string, Set<string>>();      // address -> port keys with a rule
  const nodePortRule = (fam: Fam, a: string, proto: string, op: 'add' | 'del') =>
    ipCmd(ns, [fam, 'rule', op, 'pref', String(RULE_PREF), 'iif', 'lo', 'to', a, 'ipproto', proto, 'dport', range, 'table', String(HOST_NODEPORT_TABLE)]);
  const servicePortRule = (a: string, key: string, op: 'add' | 'del') => {
    const [proto, port] = key.split(' ');
    ipCmd(ns, [famOf(a), 'rule', op, 'pref', String(RULE_PREF), 'iif', 'lo', 'to', a, 'ipproto', proto, 'dport', port, 'table', String(HOST_NODEPORT_TABLE)]);
  };
  /** The family's table and the local rule moved, set up at its first rule (at start: after a
   * killed run's rules are removed). Without a gateway of the family: none (said once for a
   * Service's port; NodePorts, a range for any address, stay quiet). */
  const family = (fam: Fam, forService = false): boolean => {
    if (families.has(fam)) return true;
    const gw = gatewayOf(fam);
    try {
      if (!gw) {
        if (!forService) return false;
        throw new Error(`no ${fam === '-4' ? 'IPv4' : 'IPv6'} gateway on the host port`);
      }
      ipCmd(ns, [fam, 'route', 'replace', 'default', 'via', gw, 'dev', ifname, 'onlink', 'table', String(HOST_NODEPORT_TABLE)]);
      const movedLocal = moveLocalRule(ns, fam);
      removeRules(ns, fam); // a previous run that was killed left its rules: start from none
      families.set(fam, { movedLocal });
      return true;
    } catch (e) {
      if (!famWarned.has(fam)) warn(`the host's own connections to its NodePorts and to its Services' external IPs at its own addresses (${fam}) stay local: policy routing failed`, e);
      famWarned.add(fam);
      return false;
    }
  };
  const addNodePortRules = (a: string) => {
    const fam = famOf(a);
    if (range === 'off' || nodePortAddrs.has(a) || !family(fam)) return;
    try {
      for (const proto of PROTOS) {
        try { nodePortRule(fam, a, proto, 'add'); } catch (e) { if (proto !== 'sctp') throw e; }  // no SCTP in this kernel: TCP and UDP still work
      }
      nodePortAddrs.add(a);
    } catch (e) { warn(`the host's own connections to NodePorts of ${a} stay local: policy routing failed`, e); }
  };
  const removeNodePortRules = (a: string) => {
    if (!nodePortAddrs.delete(a)) return;
    for (const proto of PROTOS) { try { nodePortRule(famOf(a), a, proto, 'del'); } catch { /* not there (no SCTP) */ } }
  };
  // only the NodePort addresses: the host's own connection to another node address and a port in
  // the range is delivered locally, as without wdp (kube-proxy serves no NodePort there)
  const nodePortSet = (a: HostAddresses) => new Set((a.nodePortAddresses ?? a.nodeAddresses).map(canonicalAddr));
  const startNodePorts = nodePortSet(start);
  for (const a of startNode) if (startNodePorts.has(a)) addNodePortRules(a);

  // the Services' external and LB ports at the host's own addresses (the TAP's): the rest of
  // those addresses' ports stay the host's
  const isLocal = (a: string) => onTap.has(a) || fixed.has(a);
  const syncServicePorts = (a: string) => {
    const want = new Set(services && isLocal(a) ? services.portsAt(a) : []);
    const have = servicePorts.get(a) ?? new Set<string>();
    for (const k of have) {
      if (want.has(k)) continue;
      try { servicePortRule(a, k, 'del'); } catch { /* gone already */ }
      have.delete(k);
    }
    for (const k of want) {
      if (have.has(k) || !family(famOf(a), true)) continue;
      try { servicePortRule(a, k, 'add'); have.add(k); } catch (e) { warn(`the host's own connections to ${a} ${k} stay local: policy routing failed`, e); }
    }
    if (have.size) servicePorts.set(a, have); else servicePorts.delete(a);
  };
  let watching = '';
  /** The index watches the addresses local now; the rules of every address that is or was follow. */
  const followLocal = () => {
    const local = new Set([...fixed, ...onTap.keys()]), key = [...local].sort().join();
    if (key === watching) return;
    watching = key;
    services?.watch(local);
    for (const a of new Set([...local, ...servicePorts.keys()])) syncServicePorts(a);
  };
  followLocal();

  // ---- hairpin routes ----------------------------------------------------------------------------
  const hairpin = hostHairpinOf(c).map(canonicalAddr);
  const hairpinSrc = new Map<string, string | null>();   // hairpin address -> source its route has
  const applyHairpin = (snat: HostAddresses['snat']) => {
    for (const h of hairpin) {
      const fam = famOf(h), gw = gatewayOf(fam);
      const src0 = fam === '-4' ? snat.v4 : snat.v6;
      // the masquerade address as source (a UDP server bound to the wildcard answers from it),
      // when the host has it
      const src = src0 && onTap.has(canonicalAddr(src0)) ? canonicalAddr(src0) : null;
      if (hairpinSrc.has(h) && hairpinSrc.get(h) === src) continue;
      if (!gw) { if (!hairpinSrc.has(h)) warn(`no ${fam === '-4' ? 'IPv4' : 'IPv6'} gateway on the host port: the hairpin address ${h} is not routed`, new Error('hostHairpin')); hairpinSrc.set(h, src); continue; }
      try {
        ipCmd(ns, [fam, 'route', 'replace', `${h}/${fam === '-4' ? 32 : 128}`, 'via', gw, 'dev', ifname, 'onlink', ...(src ? ['src', src] : [])]);
        hairpinSrc.set(h, src);
      } catch (e) { warn(`cannot route the hairpin address ${h} through the host port`, e); }
    }
  };
  applyHairpin(start.snat);

  log.info({ port: c.name, ifname, addresses: [...new Set([...configured.values(), ...onTap.values()])], routes: c.hostRoutes.length, nodePorts: nodePortAddrs.size ? range : 'off', servicePorts: servicePorts.size, hairpin }, 'host port configured');
  return {
    update(next) {
      const want = new Set(next.nodeAddresses.map(canonicalAddr));
      if (!want.size && onTap.size) {
        // a NodeConfig without node addresses (deleted, or not programmed yet): keep the host's
        // management addresses rather than cut the node off
        log.warn({ port: c.name, keeping: [...onTap.keys()] }, 'the node config has no node addresses: the host port keeps its addresses');
        return;
      }
      const added: string[] = [], removed: string[] = [];
      const nodePortsNext = nodePortSet(next);
      for (const a of want) {
        if (!onTap.has(a)) {
          try { onTap.set(a, addAddress(a)); added.push(a); } catch (e) { warn(`cannot add the node address ${a} to the host port`, e); continue; }
        }
        if (nodePortsNext.has(a)) addNodePortRules(a); else removeNodePortRules(a);
      }
      applyHairpin(next.snat);
      for (const [a, ap] of onTap) {
        if (want.has(a)) continue;
        removeNodePortRules(a);
        onTap.delete(a);
        if (fixed.has(a)) continue;
        try { ipCmd(ns, ['addr', 'del', ap, 'dev', ifname]); removed.push(a); } catch (e) { warn(`cannot remove the old node address ${a} from the host port`, e); }
      }
      followLocal();
      if (removed.length) {
        // a removed address takes routes that used it as their source along: put ours back
        try { applyRoutes(); } catch (e) { warn('re-adding the host routes failed', e); }
        hairpinSrc.clear();
        applyHairpin(next.snat);
      }
      if (added.length || removed.length) log.info({ port: c.name, added, removed }, 'host port follows the new node addresses');
    },
    servicePortsChanged(addrs) {
      for (const a of addrs) syncServicePorts(a);
    },
    teardown() {
      for (const [fam, st] of families) {
        removeRules(ns, fam);
        if (st.movedLocal) {
          try { ipCmd(ns, [fam, 'rule', 'add', 'pref', '0', 'lookup', 'local']); ipCmd(ns, [fam, 'rule', 'del', 'pref', String(LOCAL_PREF), 'lookup', 'local']); } catch (e) { warn('could not move the local rule back to preference 0', e); }
        }
      }
    },
  };
}

/** At a start without a host port: the NodePort rules of a host port that a daemon killed while it
 * ran left (its TAP went with it, the table's routes along: the rules fall through to the next
 * one, but the `local` table's rule stays at LOCAL_PREF, behind any rule another program has
 * below it) are removed and the local rule put back at preference 0 — as a clean stop leaves the
 * host. Only where a rule of ours says a daemon had them; logged per family. */
export function dropStaleHostRules(netns: string | undefined, log: Logger): void {
  // the rules are the namespace's, not an interface's: another running wdp there may own them
  const other = otherWdpIn(netns);
  for (const fam of ['-4', '-6'] as Fam[]) {
    let rules: string;
    try { rules = ipCmd(netns, [fam, 'rule', 'show']); } catch { continue; }   // (no IPv6)
    if (!new RegExp(`^${RULE_PREF}:.*\\blookup ${HOST_NODEPORT_TABLE}\\b`, 'm').test(rules)) continue;
    if (other) {
      log.info({ family: fam, pid: other.pid, stateDir: other.stateDir }, 'a host port\'s NodePort rules while another wdp runs in this network namespace: left alone (they may be its)');
      continue;
    }
    removeRules(netns, fam);
    let localBack = false;
    try {
      if (!/^0:\s+from all lookup local\s*$/m.test(rules) && new RegExp(`^${LOCAL_PREF}:\\s+from all lookup local\\s*$`, 'm').test(rules)) {
        ipCmd(netns, [fam, 'rule', 'add', 'pref', '0', 'lookup', 'local']);
        ipCmd(netns, [fam, 'rule', 'del', 'pref', String(LOCAL_PREF), 'lookup', 'local']);
        localBack = true;
      }
    } catch (e) { log.warn({ family: fam, error: (e as Error).message.split('\n')[0] }, 'could not move the local rule back to preference 0'); }
    log.warn({ family: fam, localBack }, 'a host port\'s NodePort rules left by a daemon that did not stop cleanly: removed (no host port is configured)');
  }
}

/** Every rule of ours (preference RULE_PREF, table HOST_NODEPORT_TABLE) in this family. */
function removeRules(ns: string | undefined, fam: Fam): void {
  for (let i = 0; i < 256; i++) { try { ipCmd(ns, [fam, 'rule', 'del', 'pref', String(RULE_PREF), 'table', String(HOST_NODEPORT_TABLE)]); } catch { break; } }
}

/** The `local` table's rule to preference LOCAL_PREF (added first, then the old one removed, so
 * local delivery never has a gap). Returns whether it is at LOCAL_PREF now — moved now, or by a
 * previous run that was killed — so that stopping puts it back at 0. */
function moveLocalRule(ns: string | undefined, fam: Fam): boolean {
  const rules = ipCmd(ns, [fam, 'rule', 'show']);
  const atZero = /^0:\s+from all lookup local\s*$/m.test(rules);
  const atOurs = new RegExp(`^${LOCAL_PREF}:\\s+from all lookup local\\s*$`, 'm').test(rules);
  if (!atZero) return atOurs;
  if (!atOurs) ipCmd(ns, [fam, 'rule', 'add', 'pref', String(LOCAL_PREF), 'lookup', 'local']);
  ipCmd(ns, [fam, 'rule', 'del', 'pref', '0', 'lookup', 'local']);
  return true;
}

