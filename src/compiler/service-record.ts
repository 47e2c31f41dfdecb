// Everything the compiler keeps under one service key.
import type { ServiceSpec, SliceSpec } from '../model/types.js';
import type { ServiceOutput } from './service-output.js';

/** The Service (when applied), the EndpointSlices that name it — sorted by key, the one slice
 * itself when there is one — and what it compiled to last. One map of these instead of three: a
 * full compile looks every service up once, not in three maps. A record leaves the map when all
 * three are gone. */
export interface ServiceRecord {
  spec: ServiceSpec | undefined;
  slices: SliceSpec | SliceSpec[] | undefined;
  out: ServiceOutput | undefined;
}

export const sliceCount = (e: ServiceRecord['slices']): number => (e === undefined ? 0 : Array.isArray(e) ? e.length : 1);
