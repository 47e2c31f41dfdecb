// kube-proxy iptables-mode ruleset for a BenchService set, in iptables-restore format, and its
// loader. Shape follows pkg/proxy/iptables/proxier.go: PREROUTING/OUTPUT jump to KUBE-SERVICES, one
// match rule per service port there jumping to KUBE-SVC-<hash>, which masquerade-marks off-cluster
// clients and picks an endpoint with `-m statistic --mode random --probability 1/(n-i)` rules,
// each jumping to KUBE-SEP-<hash> (hairpin mark + DNAT). The filter table's KUBE-SERVICES reject
// rules for endpoint-less services are included because kube-proxy writes them in the same restore.
import { kubeHash, type BenchService } from './service-set.js';
import { run, runOk, commandExists } from './netns.js';

export const CLUSTER_CIDR = '10.128.0.0/9';

function svcPortName(s: BenchService): string { return `${s.namespace}/${s.name}:${s.portName}`; }
function protoLower(s: BenchService): string { return s.proto.toLowerCase(); }

export function svcChain(s: BenchService): string {
  return 'KUBE-SVC-' + kubeHash(svcPortName(s) + protoLower(s), 16);
}
export function sepChain(s: BenchService, ep: { addr: string; port: number }): string {
  return 'KUBE-SEP-' + kubeHash(svcPortName(s) + protoLower(s) + `${ep.addr}:${ep.port}`, 16);
}

export interface IptablesRuleset { text: string; rules: number; chains: number }

/** Whole-state restore text (what kube-proxy's full sync writes). */
export function iptablesRuleset(svcs: BenchService[]): IptablesRuleset {
  const filterChains: string[] = [':KUBE-SERVICES - [0:0]', ':KUBE-FORWARD - [0:0]'];
  const filterRules: string[] = [
    '-A INPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
  ];
  const natChains: string[] = [':KUBE-SERVICES - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-MARK-MASQ - [0:0]'];
  const natRules: string[] = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
  ];
  const svcRules: string[] = [], sepRules: string[] = [];
  for (const s of svcs) {
    const name = svcPortName(s), p = protoLower(s);
    const comment = `-m comment --comment "${name} cluster IP"`;
    if (s.endpoints.length === 0) {
      filterRules.push(`-A KUBE-SERVICES ${comment.replace('cluster IP', 'has no endpoints')} -m ${p} -p ${p} -d ${s.clusterIP}/32 --dport ${s.port} -j REJECT`);
      continue;
    }
    const svc = svcChain(s);
    natChains.push(`:${svc} - [0:0]`);
    natRules.push(`-A KUBE-SERVICES ${comment} -m ${p} -p ${p} -d ${s.clusterIP}/32 --dport ${s.port} -j ${svc}`);
    svcRules.push(`-A ${svc} ${comment} -m ${p} -p ${p} -d ${s.clusterIP}/32 --dport ${s.port} ! -s ${CLUSTER_CIDR} -j KUBE-MARK-MASQ`);
    const n = s.endpoints.length;
    s.endpoints.forEach((ep, i) => {
      const sep = sepChain(s, ep);
      natChains.push(`:${sep} - [0:0]`);
      const left = n - i;
      const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
      svcRules.push(`-A ${svc} -m comment --comment "${name} -> ${ep.addr}:${ep.port}"${stat} -j ${sep}`);
      sepRules.push(`-A ${sep} -m comment --comment ${name} -s ${ep.addr}/32 -j KUBE-MARK-MASQ`);
      sepRules.push(`-A ${sep} -m comment --comment ${name} -m ${p} -p ${p} -j DNAT --to-destination ${ep.addr}:${ep.port}`);
    });
  }
  natRules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  natChains.push(':KUBE-NODEPORTS - [0:0]');
  const allNat = [...natRules, ...svcRules, ...sepRules];
  const text = ['*filter', ...filterChains, ...filterRules, 'COMMIT', '*nat', ...natChains, ...allNat, 'COMMIT', ''].join('\n');
  return { text, rules: filterRules.length + allNat.length, chains: filterChains.length + natChains.length };
}

export type IptablesVariant = 'nft' | 'legacy';

export function iptablesRestoreBinary(v: IptablesVariant): string {
  return v === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore';
}

/** The variants whose restore binary exists, preferred first (nft: what current distributions and
 * kube-proxy's iptables mode use by default). Whether one actually works is found by loading. */
export function availableIptablesVariants(): IptablesVariant[] {
  const v: IptablesVariant[] = [];
  if (commandExists('iptables-nft-restore')) v.push('nft');
  if (commandExists('iptables-legacy-restore')) v.push('legacy');
  return v;
}

/** Loads `text` with iptables-restore inside `ns`; returns wall ms of the restore process. */
export async function loadIptables(ns: string, variant: IptablesVariant, text: string, opts: { noflush?: boolean } = {}): Promise<number> {
  const argv = [iptablesRestoreBinary(variant), '-w', '5'];
  if (opts.noflush) argv.push('--noflush');
  const r = await runOk(argv, { ns, input: text, timeoutMs: 600_000 });
  return r.ms;
}

/** Rules present in `ns` (iptables-save lines starting with -A): proves the restore took. */
export async function countIptablesRules(ns: string, variant: IptablesVariant): Promise<number> {
  const save = variant === 'nft' ? 'iptables-nft-save' : 'iptables-legacy-save';
  const r = await run([save], { ns, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${save} failed: ${r.stderr.trim()}`);
  let c = 0;
  for (const line of r.stdout.split('\n')) if (line.startsWith('-A ')) c++;
  return c;
}

/** kube-proxy's partial sync for one changed endpoint (KEP-3453 "minimizing iptables-restore"):
 * `--noflush`, re-declare (flush) only the service's KUBE-SVC chain, declare the new KUBE-SEP
 * chain, rewrite their rules, delete the stale KUBE-SEP chain. Returns wall ms of the restore. */
export async function iptablesUpdateOneEndpoint(ns: string, variant: IptablesVariant, before: BenchService, after: BenchService): Promise<number> {
  const svc = svcChain(after);
  const keep = new Set(after.endpoints.map((e) => sepChain(after, e)));
  const stale = before.endpoints.map((e) => sepChain(before, e)).filter((c) => !keep.has(c));
  const fresh = after.endpoints.map((e) => sepChain(after, e)).filter((c) => !before.endpoints.some((b) => sepChain(before, b) === c));
  const lines = iptablesRuleset([after]).text.split('\n')
    .filter((l) => l.startsWith(`-A ${svc} `) || fresh.some((c) => l.startsWith(`-A ${c} `)));
  const text = ['*nat', `:${svc} - [0:0]`, ...fresh.map((c) => `:${c} - [0:0]`), ...stale.map((c) => `:${c} - [0:0]`),
    ...lines, ...stale.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
  return loadIptables(ns, variant, text, { noflush: true });
}
