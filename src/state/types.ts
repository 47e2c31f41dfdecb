// What the desired-state store holds and how it fails; shared by the store and the legacy reader.

/** The objects exactly as applied (after unknown fields were pruned), in key order. */
export interface DesiredState {
  services: unknown[];
  endpointSlices: unknown[];
  node: unknown | null;
}

export type StoredKind = 'Service' | 'EndpointSlice' | 'NodeConfig';

/** One stored object: "namespace/name" for Services and EndpointSlices, '' for the NodeConfig
 * (there is one per daemon). */
export interface StoredRef { kind: StoredKind; key: string }

/** One transaction: the objects an apply changed, nothing else. `body`, when given, is `raw`'s
 * JSON text as the client sent it (JSON.parse(body) equals raw); otherwise raw is serialised. */
export interface StoreWrite { upsert: Array<StoredRef & { raw: unknown; body?: string }>; remove: StoredRef[] }

export class StateError extends Error {
  constructor(message: string) { super(message); this.name = 'StateError'; }
}
