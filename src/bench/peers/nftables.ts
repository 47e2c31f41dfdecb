// kube-proxy nftables-mode ruleset (pkg/proxy/nftables/proxier.go) for a BenchService set, and its
// loader. Shape: table ip kube-proxy; `services` chain does one lookup in the `service-ips`
// verdict map (daddr . l4proto . dport -> goto service chain); each service chain masquerade-marks
// off-cluster clients and picks an endpoint with `numgen random mod N vmap {...}`; each endpoint
// chain marks hairpin traffic and DNATs. Unlike iptables mode, lookup cost does not grow with N.
import { kubeHash, type BenchService, type BenchEndpoint } from './service-set.js';
import { run, runOk } from './netns.js';
import { CLUSTER_CIDR } from './iptables.js';

export const NFT_TABLE = 'kube-proxy';

function svcPortName(s: BenchService): string { return `${s.namespace}/${s.name}/${s.proto.toLowerCase()}/${s.portName}`; }

export function nftServiceChain(s: BenchService): string {
  const n = svcPortName(s);
  return `service-${kubeHash(n, 8)}-${n}`;
}
export function nftEndpointChain(s: BenchService, ep: BenchEndpoint): string {
  const n = `${svcPortName(s)}__${ep.addr}/${ep.port}`;
  return `endpoint-${kubeHash(n, 8)}-${n}`;
}

export interface NftRuleset { text: string; rules: number; chains: number; mapElements: number }

/** Whole-state `nft -f` input (what kube-proxy's full sync sends in one transaction). */
export function nftRuleset(svcs: BenchService[]): NftRuleset {
  const t = `ip ${NFT_TABLE}`;
  const lines: string[] = [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    // kube-proxy flushes its table on a full sync; add+flush makes this idempotent too
    `flush table ${t}`,
    `add chain ${t} mark-for-masquerade`,
    `add rule ${t} mark-for-masquerade mark set mark or 0x4000`,
    `add chain ${t} masquerading`,
    `add rule ${t} masquerading mark and 0x4000 == 0 return`,
    `add rule ${t} masquerading mark set mark xor 0x4000`,
    `add rule ${t} masquerading masquerade fully-random`,
    `add chain ${t} services`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add rule ${t} nat-prerouting jump services`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add rule ${t} nat-output jump services`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add rule ${t} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add chain ${t} filter-output { type filter hook output priority -110 ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add rule ${t} filter-output ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
  ];
  let rules = 7, chains = 7, mapElements = 0;
  const elements: string[] = [], noEp: string[] = [], decls: string[] = [], body: string[] = [];
  for (const s of svcs) {
    const p = s.proto.toLowerCase();
    if (s.endpoints.length === 0) { noEp.push(`${s.clusterIP} . ${p} . ${s.port} comment "${s.namespace}/${s.name}:${s.portName}" : drop`); continue; }
    const sc = nftServiceChain(s);
    // every chain a vmap names must exist before the rule that names it: declare first
    decls.push(`add chain ${t} ${sc}`);
    chains++;
    for (const ep of s.endpoints) {
      const ec = nftEndpointChain(s, ep);
      decls.push(`add chain ${t} ${ec}`);
      body.push(`add rule ${t} ${ec} ip saddr ${ep.addr} jump mark-for-masquerade`);
      body.push(`add rule ${t} ${ec} meta l4proto ${p} dnat to ${ep.addr}:${ep.port}`);
      chains++; rules += 2;
    }
    body.push(`add rule ${t} ${sc} ip daddr ${s.clusterIP} ${p} dport ${s.port} ip saddr != ${CLUSTER_CIDR} jump mark-for-masquerade`);
    const vmap = s.endpoints.map((ep, i) => `${i} : goto ${nftEndpointChain(s, ep)}`).join(' , ');
    body.push(`add rule ${t} ${sc} numgen random mod ${s.endpoints.length} vmap { ${vmap} }`);
    rules += 2;
    elements.push(`${s.clusterIP} . ${p} . ${s.port} : goto ${sc}`);
  }
  for (const l of decls) lines.push(l);
  for (const l of body) lines.push(l);
  // kube-proxy batches element adds; one huge `add element` line is what it sends per transaction
  // too, but nft's parser is happier with bounded lines, so chunk by 1000.
  for (let i = 0; i < elements.length; i += 1000) { lines.push(`add element ${t} service-ips { ${elements.slice(i, i + 1000).join(' , ')} }`); }
  for (let i = 0; i < noEp.length; i += 1000) { lines.push(`add element ${t} no-endpoint-services { ${noEp.slice(i, i + 1000).join(' , ')} }`); }
  mapElements = elements.length + noEp.length;
  return { text: lines.join('\n') + '\n', rules, chains, mapElements };
}

/** Loads with `nft -f -` inside `ns`; returns wall ms of the nft process (one transaction). */
export async function loadNft(ns: string, text: string): Promise<number> {
  const r = await runOk(['nft', '-f', '-'], { ns, input: text, timeoutMs: 600_000 });
  return r.ms;
}

/** Service-map elements present in `ns`: proves the transaction committed. Counted from the
 * plain listing (one "addr . proto . port : goto chain" per element), which, unlike `nft -j`,
 * does not depend on libnftables' JSON support. */
export async function countNftServiceElements(ns: string): Promise<number> {
  const r = await run(['nft', 'list', 'map', 'ip', NFT_TABLE, 'service-ips'], { ns, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`nft list map failed (exit ${r.code}): ${r.stderr.trim()}`);
  const m = r.stdout.match(/:\s*goto\s+/g);
  return m ? m.length : 0;
}

/** kube-proxy nftables mode's incremental sync for one changed endpoint: one transaction that
 * creates the new endpoint chain, rewrites the service chain's vmap, deletes the stale endpoint
 * chain. Returns wall ms of the nft process. */
export async function nftUpdateOneEndpoint(ns: string, before: BenchService, after: BenchService): Promise<number> {
  const t = `ip ${NFT_TABLE}`;
  const p = after.proto.toLowerCase();
  const sc = nftServiceChain(after);
  const afterChains = new Set(after.endpoints.map((e) => nftEndpointChain(after, e)));
  const beforeChains = new Set(before.endpoints.map((e) => nftEndpointChain(before, e)));
  const lines: string[] = [];
  for (const ep of after.endpoints) {
    const ec = nftEndpointChain(after, ep);
    if (beforeChains.has(ec)) continue;
    lines.push(`add chain ${t} ${ec}`, `flush chain ${t} ${ec}`,
      `add rule ${t} ${ec} ip saddr ${ep.addr} jump mark-for-masquerade`,
      `add rule ${t} ${ec} meta l4proto ${p} dnat to ${ep.addr}:${ep.port}`);
  }
  const vmap = after.endpoints.map((ep, i) => `${i} : goto ${nftEndpointChain(after, ep)}`).join(' , ');
  lines.push(`flush chain ${t} ${sc}`,
    `add rule ${t} ${sc} ip daddr ${after.clusterIP} ${p} dport ${after.port} ip saddr != ${CLUSTER_CIDR} jump mark-for-masquerade`,
    `add rule ${t} ${sc} numgen random mod ${after.endpoints.length} vmap { ${vmap} }`);
  for (const c of beforeChains) if (!afterChains.has(c)) lines.push(`delete chain ${t} ${c}`);
  return loadNft(ns, lines.join('\n') + '\n');
}

export async function nftChainExists(ns: string, chain: string): Promise<boolean> {
  const r = await run(['nft', 'list', 'chain', 'ip', NFT_TABLE, chain], { ns });
  return r.code === 0;
}
