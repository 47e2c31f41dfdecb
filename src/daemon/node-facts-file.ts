// The cluster's facts about this node as last seen, saved in the state directory for a restart
// that cannot read them (the API server is away): the Node's (node-addresses.ts NodeFacts) and the
// CIDRs of the cluster's ServiceCIDR objects (src/kube/service-cidrs.ts) — what the cluster said,
// apart from the config file's fallbacks and node.serviceCIDRs, which a restart takes from the
// config as it is then.
//
// `node-facts.json`: { "version": 1, "node": NodeFacts | null, "serviceCIDRs"?: string[] } — node
// null: no Node seen yet; no serviceCIDRs: the ServiceCIDRs not listed yet. Written whenever either
// changes (a temporary file, fsynced, renamed, the directory fsynced: a crash leaves the old or the
// new one). A state directory without it, or without serviceCIDRs (written by an older wdp), has
// them only mixed into its saved NodeConfig: factsOfSavedNodeConfig reads the Node's from there.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIp } from '../util/addr.js';
import { canonCidr } from '../model/schema.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { NodeFacts } from './node-addresses.js';

export const NODE_FACTS_FILE = 'node-facts.json';
const VERSION = 1;

const ips = (v: unknown): v is string[] => Array.isArray(v) && v.every((a) => typeof a === 'string' && isIp(a));
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((a) => typeof a === 'string');
// canonical (host bits clear), as the NodeConfig takes them
const cidrs = (v: unknown): v is string[] => strings(v) && v.every((c) => { try { return c.includes('/') && canonCidr(c) === c; } catch { return false; } });

/** The facts in a parsed file's `node`, or an error saying what is wrong. */
function parseFacts(v: unknown): NodeFacts | null | string {
  if (v === null) return null;
  const n = v as Partial<Record<keyof NodeFacts, unknown>> | undefined;
  if (typeof n !== 'object' || !n) return 'node is not an object';
  if (!ips(n.addresses)) return 'node.addresses is not a list of IP addresses';
  if (!ips(n.primary)) return 'node.primary is not a list of IP addresses';
  if (!cidrs(n.podCIDRs)) return 'node.podCIDRs is not a list of CIDRs';
  if (typeof n.zone !== 'string') return 'node.zone is not a string';
  if (n.zone.length > 63) return 'node.zone is longer than a label value (63)';
  return { addresses: n.addresses, primary: n.primary, podCIDRs: n.podCIDRs, zone: n.zone };
}

export type SavedNodeFacts =
  | { state: 'none' }                       // no file (a first start, or an older wdp's state)
  | { state: 'saved'; node: NodeFacts | null; serviceCIDRs?: string[] }
  | { state: 'unusable'; reason: string };

/** The facts saved in `dir`. Never throws. */
export function readNodeFacts(dir: string): SavedNodeFacts {
  let text: string;
  try { text = readFileSync(join(dir, NODE_FACTS_FILE), 'utf8'); } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? { state: 'none' } : { state: 'unusable', reason: (e as Error).message };
  }
  let doc: { version?: unknown; node?: unknown; serviceCIDRs?: unknown };
  try { doc = JSON.parse(text) as typeof doc; } catch (e) { return { state: 'unusable', reason: `not JSON: ${(e as Error).message}` }; }
  if (typeof doc !== 'object' || doc === null || doc.version !== VERSION) return { state: 'unusable', reason: `not version ${VERSION}` };
  const node = parseFacts(doc.node);
  if (typeof node === 'string') return { state: 'unusable', reason: node };
  if (doc.serviceCIDRs === undefined) return { state: 'saved', node };
  if (!cidrs(doc.serviceCIDRs)) return { state: 'unusable', reason: 'serviceCIDRs is not a list of CIDRs' };
  return { state: 'saved', node, serviceCIDRs: doc.serviceCIDRs };
}

/** Saves `node` and the ServiceCIDRs' CIDRs (undefined: not listed yet) in `dir` (throws on
 * failure, its temporary file removed; the previous file stays then). */
export function writeNodeFacts(dir: string, node: NodeFacts | null, serviceCIDRs?: readonly string[]): void {
  writeFileAtomic(dir, NODE_FACTS_FILE, Buffer.from(`${JSON.stringify({ version: VERSION, node, ...(serviceCIDRs ? { serviceCIDRs } : {}) })}\n`));
}

/** The Node's facts as a saved NodeConfig holds them (a state directory an older wdp wrote):
 * mixed with the config file's fallbacks of then (zone, pod CIDRs, node.addresses), which cannot
 * be told apart there. null when it has no spec. Addresses that do not parse are left out (the
 * peek before the workers start checks the row's checksum only). */
export function factsOfSavedNodeConfig(saved: unknown): NodeFacts | null {
  const spec = (saved as { spec?: { podCIDRs?: unknown; zone?: unknown; nodeIPs?: unknown; nodeAddresses?: unknown } } | null)?.spec;
  if (!spec) return null;
  return {
    addresses: ips(spec.nodeAddresses) ? spec.nodeAddresses : [],
    primary: ips(spec.nodeIPs) ? spec.nodeIPs : [],
    podCIDRs: strings(spec.podCIDRs) ? spec.podCIDRs : [],
    zone: typeof spec.zone === 'string' ? spec.zone : '',
  };
}
