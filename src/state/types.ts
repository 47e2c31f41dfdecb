// What the desired-state store holds and how it fails; shared by the store and the legacy reader.
import type { BodyText } from '../util/body-text.js';

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

/** An object's JSON text as the client sent it: bodySlice(text, start, end). */
export interface SourceText { text: BodyText; start: number; end: number }

/** One transaction: the objects an apply changed, nothing else. `source`, when given, is `raw`'s
 * text (JSON.parse of it equals raw), stored as it is; otherwise raw is serialised. */
export interface StoreWrite { upsert: Array<StoredRef & { raw: unknown; source?: SourceText }>; remove: StoredRef[] }

export class StateError extends Error {
  constructor(message: string) { super(message); this.name = 'StateError'; }
}

/** A commit whose outcome is not known: the store writer thread stopped after it was sent and the
 * revision row that would tell could not be read back. The store puts the previous objects back
 * (if the commit was durable after all) before its next write, and refuses writes until it can
 * tell (StateStore.settle). */
export class StoreStateUncertain extends StateError {
  constructor(message: string) { super(message); this.name = 'StoreStateUncertain'; }
}
