// The Node's facts as last seen (node-addresses.ts NodeFacts), saved in the state directory for a
// restart that cannot read the Node (the API server is away): what the Node said, apart from the
// config file's fallbacks, which a restart takes from the config as it is then.
//
// `node-facts.json`: { "version": 1, "node": NodeFacts | null } — null: no Node seen yet. Written
// whenever the facts change (write to a temporary file, fsync, rename: a crash leaves the old or
// the new one). A state directory without it (written by an older wdp) has the facts only mixed
// into its saved NodeConfig: factsOfSavedNodeConfig reads them from there.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIp } from '../util/addr.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { NodeFacts } from './node-addresses.js';

export const NODE_FACTS_FILE = 'node-facts.json';
const VERSION = 1;

const ips = (v: unknown): v is string[] => Array.isArray(v) && v.every((a) => typeof a === 'string' && isIp(a));
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((a) => typeof a === 'string');

/** The facts in a parsed file's `node`, or an error saying what is wrong. */
function parseFacts(v: unknown): NodeFacts | null | string {
  if (v === null) return null;
  const n = v as Partial<Record<keyof NodeFacts, unknown>> | undefined;
  if (typeof n !== 'object' || !n) return 'node is not an object';
  if (!ips(n.addresses)) return 'node.addresses is not a list of IP addresses';
  if (!ips(n.primary)) return 'node.primary is not a list of IP addresses';
  if (!strings(n.podCIDRs)) return 'node.podCIDRs is not a list of strings';
  if (typeof n.zone !== 'string') return 'node.zone is not a string';
  return { addresses: n.addresses, primary: n.primary, podCIDRs: n.podCIDRs, zone: n.zone };
}

export type SavedNodeFacts =
  | { state: 'none' }                       // no file (a first start, or an older wdp's state)
  | { state: 'saved'; node: NodeFacts | null }
  | { state: 'unusable'; reason: string };

/** The facts saved in `dir`. Never throws. */
export function readNodeFacts(dir: string): SavedNodeFacts {
  let text: string;
  try { text = readFileSync(join(dir, NODE_FACTS_FILE), 'utf8'); } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? { state: 'none' } : { state: 'unusable', reason: (e as Error).message };
  }
  let doc: { version?: unknown; node?: unknown };
  try { doc = JSON.parse(text) as typeof doc; } catch (e) { return { state: 'unusable', reason: `not JSON: ${(e as Error).message}` }; }
  if (typeof doc !== 'object' || doc === null || doc.version !== VERSION) return { state: 'unusable', reason: `not version ${VERSION}` };
  const node = parseFacts(doc.node);
  return typeof node === 'string' ? { state: 'unusable', reason: node } : { state: 'saved', node };
}

/** Saves `node` in `dir` (throws on failure, its temporary file removed; the previous file stays then). */
export function writeNodeFacts(dir: string, node: NodeFacts | null): void {
  writeFileAtomic(dir, NODE_FACTS_FILE, Buffer.from(`${JSON.stringify({ version: VERSION, node })}\n`));
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
