// The node's own network stack behind the host port (role: host): what the daemon sets up on
// the host's side of the TAP each time it creates it, and takes down when it stops.
//
//   * the node addresses (hostAddresses) and the routes through the dataplane (hostRoutes: pod
//     and service CIDRs via a gateway address the dataplane answers on this port, the default
//     route via the uplink's gateway) — `ip addr/route replace`, so a restart is idempotent;
//   * accept_local=1 and rp_filter=0 on the TAP: the reply to the host's own request to a
//     NodePort of this node comes back with a node address as its source;
//   * the host's own connections to NodePorts (hostNodePorts, default 30000-32767): the kernel
//     would deliver nodeIP:nodePort locally, so locally generated packets to a node address and
//     a port in the range are policy-routed out of the TAP (table HOST_NODEPORT_TABLE, rule
//     preference 50, `iif lo`); the `local` table's rule moves from preference 0 to 100 so that
//     rule is looked at first. Everything else is untouched: only `iif lo` traffic to the node's
//     own NodePorts matches, and if the daemon dies the table's route goes with the TAP, so the
//     rule falls through to local delivery again.
// Each step is an `ip` / `sysctl` fork (~2-5 ms); done once per start.
import type { Logger } from 'pino';
import { inNs, ipCmd } from './port-manager.js';
import type { ManagedPort } from './port-manager.js';

export const HOST_NODEPORT_TABLE = 4242;
const RULE_PREF = 50;
const LOCAL_PREF = 100;
const DEFAULT_NODEPORTS = '30000-32767';

export interface HostStack { teardown(): void }

export function configureHostStack(p: ManagedPort, nodeAddresses: string[], uplinkGateways: string[], netns: string | undefined, log: Logger): HostStack {
  const c = p.config, ifname = c.ifname;
  const ns = c.netns ?? netns;
  const warn = (what: string, e: unknown) => log.warn({ port: c.name, error: (e as Error).message.split('\n')[0] }, what);
  for (const [k, v] of [['accept_local', '1'], ['rp_filter', '0']]) {
    try { inNs(ns, 'sysctl', ['-qw', `net.ipv4.conf.${ifname}.${k}=${v}`]); } catch (e) { warn(`cannot set ${k} on the host port`, e); }
  }
  if (c.hostAddresses.some((a) => a.includes(':'))) {
    try { inNs(ns, 'sysctl', ['-qw', `net.ipv6.conf.${ifname}.disable_ipv6=0`]); } catch { /* no IPv6 */ }
  }
  ipCmd(ns, ['link', 'set', 'dev', ifname, 'up']);
  for (const a of c.hostAddresses) ipCmd(ns, ['addr', 'replace', a, 'dev', ifname]);
  for (const r of c.hostRoutes) {
    // onlink: the gateway is the dataplane's address on this link, not in a prefix of the TAP
    ipCmd(ns, [r.via.includes(':') ? '-6' : '-4', 'route', 'replace', r.prefix, 'via', r.via, 'dev', ifname, 'onlink']);
  }
  const installed: Array<{ fam: '-4' | '-6'; movedLocal: boolean }> = [];
  const range = c.hostNodePorts ?? DEFAULT_NODEPORTS;
  if (range !== 'off') {
    for (const fam of ['-4', '-6'] as const) {
      const v6 = fam === '-6';
      const addrs = nodeAddresses.filter((a) => a.includes(':') === v6);
      const gw = [...c.gateways, ...uplinkGateways].find((g) => g.includes(':') === v6);
      if (!addrs.length || !gw) continue;
      try {
        ipCmd(ns, [fam, 'route', 'replace', 'default', 'via', gw, 'dev', ifname, 'onlink', 'table', String(HOST_NODEPORT_TABLE)]);
        const movedLocal = moveLocalRule(ns, fam);
        removeRules(ns, fam); // a previous run that was killed left its rules: start from none
        for (const a of addrs) for (const proto of ['tcp', 'udp', 'sctp']) {
          try { ipCmd(ns, [fam, 'rule', 'add', 'pref', String(RULE_PREF), 'iif', 'lo', 'to', a, 'ipproto', proto, 'dport', range, 'table', String(HOST_NODEPORT_TABLE)]); } catch (e) {
            if (proto !== 'sctp') throw e;  // no SCTP in this kernel: TCP and UDP still work
          }
        }
        installed.push({ fam, movedLocal });
      } catch (e) { warn(`the host's own connections to NodePorts (${fam}) stay local: policy routing failed`, e); }
    }
  }
  log.info({ port: c.name, ifname, addresses: c.hostAddresses, routes: c.hostRoutes.length, nodePorts: installed.length ? range : 'off' }, 'host port configured');
  return {
    teardown() {
      for (const { fam, movedLocal } of installed) {
        removeRules(ns, fam);
        if (movedLocal) {
          try { ipCmd(ns, [fam, 'rule', 'add', 'pref', '0', 'lookup', 'local']); ipCmd(ns, [fam, 'rule', 'del', 'pref', String(LOCAL_PREF), 'lookup', 'local']); } catch (e) { warn('could not move the local rule back to preference 0', e); }
        }
      }
    },
  };
}

/** Every rule of ours (preference RULE_PREF, table HOST_NODEPORT_TABLE) in this family. */
function removeRules(ns: string | undefined, fam: '-4' | '-6'): void {
  for (let i = 0; i < 256; i++) { try { ipCmd(ns, [fam, 'rule', 'del', 'pref', String(RULE_PREF), 'table', String(HOST_NODEPORT_TABLE)]); } catch { break; } }
}

/** The `local` table's rule to preference LOCAL_PREF (added first, then the old one removed, so
 * local delivery never has a gap). Returns whether it is at LOCAL_PREF now — moved now, or by a
 * previous run that was killed — so that stopping puts it back at 0. */
function moveLocalRule(ns: string | undefined, fam: '-4' | '-6'): boolean {
  const rules = ipCmd(ns, [fam, 'rule', 'show']);
  const atZero = /^0:\s+from all lookup local\s*$/m.test(rules);
  const atOurs = new RegExp(`^${LOCAL_PREF}:\\s+from all lookup local\\s*$`, 'm').test(rules);
  if (!atZero) return atOurs;
  if (!atOurs) ipCmd(ns, [fam, 'rule', 'add', 'pref', String(LOCAL_PREF), 'lookup', 'local']);
  ipCmd(ns, [fam, 'rule', 'del', 'pref', '0', 'lookup', 'local']);
  return true;
}
