// The saved desired state, opened and validated before the control plane exists: the daemon does
// this while its forwarding workers boot (their Wasm compile, their ports), so a restart pays for
// reading and validating 10k services in parallel with that, not after it.
import { warmMaglevWorker } from '../compiler/compiler.js';
import { validateAll } from '../model/schema.js';
import type { ModelObject } from '../model/types.js';
import { StateStore, type LoadResult } from '../state/store.js';

export interface SavedState {
  store: StateStore;
  load: LoadResult;
  /** The saved objects as validation returned them (null: nothing saved). */
  objects: ModelObject[] | null;
}

/** Opens (creating or migrating) the store in `dir` and validates its objects. Throws StateError
 * (the store closed, nothing deleted) when it is unusable or its objects no longer validate. */
export function openSavedState(dir: string): SavedState {
  const store = new StateStore(dir);
  let objects: ModelObject[] | null = null;
  const load = store.open((s) => {
    warmMaglevWorker(s.endpointSlices); // a big restore compiles with the Maglev thread: start it now
    objects = validateAll([...s.services, ...s.endpointSlices, ...(s.node ? [s.node] : [])]);
  });
  return { store, load, objects: load.state ? objects : null };
}
