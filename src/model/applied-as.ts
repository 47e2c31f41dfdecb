// The annotation a daemon's own NodeConfig carries while it holds the node and NodePort addresses
// of NodeConfigs applied to it through the API: the names they were applied as, oldest first,
// comma-separated (a NodeConfig's name is a DNS subdomain: no commas). Stored with the NodeConfig
// in the apply's transaction, so the adoption is as durable as the apply: a daemon without a
// cluster takes the addresses again at its restart, and a delete by one of the names (`wdp delete
// -f` of the manifest `wdp apply -f` took) finds the NodeConfig held, before and after a restart.
//
//   metadata:
//     name: n1                                  # the daemon's node name
//     annotations:
//       wdp.io/applied-as: node-a,node-b        # the addresses in spec are node-b's
export const APPLIED_AS_ANNOTATION = 'wdp.io/applied-as';

/** The names kept: the latest this many (an older name is not found by a delete). */
export const MAX_APPLIED_AS = 8;

/** The names a NodeConfig's raw object records (none: no annotation, or not a string). */
export function appliedAsOf(raw: unknown): string[] {
  const md = (raw as { metadata?: { annotations?: unknown } } | null)?.metadata;
  const v = md?.annotations && typeof md.annotations === 'object' ? (md.annotations as Record<string, unknown>)[APPLIED_AS_ANNOTATION] : undefined;
  return typeof v === 'string' ? v.split(',').filter((n) => n !== '') : [];
}

/** `names` with `name` the latest, each once, at most MAX_APPLIED_AS. */
export function withAppliedAs(names: readonly string[], name: string): string[] {
  return [...names.filter((n) => n !== name), name].slice(-MAX_APPLIED_AS);
}

/** The annotations of a NodeConfig holding addresses applied as `names` (undefined: none). */
export function appliedAsAnnotations(names: readonly string[]): Record<string, string> | undefined {
  return names.length ? { [APPLIED_AS_ANNOTATION]: names.join(',') } : undefined;
}
