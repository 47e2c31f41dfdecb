// Fixtures for the core tests (core-nat, core-edge): small Ir builders and a core factory.
import { Core } from '../../dist/src/core/host.js';
import { emptyIr } from '../../dist/src/ir/ir.js';
import { buildMaglev } from './maglev-reference.js';
import { parseAddr } from '../../dist/src/util/addr.js';

export const CLIENT_MAC = '02:00:00:00:0c:01';
export const LOCAL_MAC = '02:00:00:00:0c:02';
export const BE_MAC = '02:00:00:00:be:01';
export const BE_SRC_MAC = '02:00:00:00:be:02';

export function fe(id, addr, port, proto, backends, o = {}) {
  return {
    id, service: `default/svc${id}`, portName: '', kind: 'ClusterIP', addr, family: parseAddr(addr).family, port, proto,
    flags: o.flags ?? 0, affinityTimeoutMs: o.affinityTimeoutMs ?? 0, sourceRanges: o.sourceRanges ?? [],
    backends, maglev: o.maglev ?? buildMaglev(backends, backends.map((b) => `b${b}`), 251),
  };
}

export function be(id, addr, port, o = {}) {
  return {
    id, service: 'default/svc', addr, family: parseAddr(addr).family, port, state: o.state ?? 1,
    outPort: o.outPort ?? 1, dstMac: o.dstMac ?? BE_MAC, srcMac: o.srcMac ?? BE_SRC_MAC,
  };
}

export function irOf(fronts, backends, o = {}) {
  const ir = emptyIr();
  for (const f of fronts) ir.frontends.set(f.id, f);
  for (const b of backends) ir.backends.set(b.id, b);
  ir.routes = o.routes ?? [];
  if (o.snatV4) ir.snatV4 = o.snatV4;
  if (o.snatV6) ir.snatV6 = o.snatV6;
  return ir;
}

export function mkCore(ir, opts = {}) {
  const core = Core.create({ batchMax: 64, flows: 1024, affinitySlots: 1024, ...opts });
  core.applyIr(ir);
  return core;
}

export const gc = (core, name) => core.counters().global[name];
export const reasonCount = (core, name) => core.counters().reasons[name] ?? 0;
