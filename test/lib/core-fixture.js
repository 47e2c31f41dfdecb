// Fixtures for the core tests (core-nat, core-edge): a core factory and counter readers; the Ir
// builders they use are re-exported from ir-fixture.js.
import { Core } from '../../dist/src/core/host.js';
export { CLIENT_MAC, LOCAL_MAC, BE_MAC, BE_SRC_MAC, irFrom } from './ir-fixture.js';

export function mkCore(ir, opts = {}) {
  const core = Core.create({ batchMax: 64, flows: 1024, affinitySlots: 1024, ...opts });
  core.applyIr(ir);
  return core;
}

export const gc = (core, name) => core.counters().global[name];
export const reasonCount = (core, name) => core.counters().reasons[name] ?? 0;
