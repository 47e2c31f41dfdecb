// The one module tests build Irs with by hand (compiled Irs come from the compiler).
//
//   backend(b), frontend(f, backends, m)   records from option objects; frontend() spreads over
//                                          the READY backend objects it is given (the compiler's
//                                          rule: serving-terminating ones when none is ready, with
//                                          FEF_FALLBACK) and derives FEF_SOURCE_RANGES
//   irFrom({ frontends, backends, ... })   an Ir whose records are backend() of each backend
//                                          object and frontend() of each frontend object over the
//                                          backends its `backends` ids name
//   irOf(frontends, backends, o), mkIr({ frontends, backends, routes, snatV4, snatV6 })
//                                          an Ir (IdMaps, as emptyIr() makes) of those records
import * as L from '../../dist/assembly/layout.js';
import { emptyIr } from '../../dist/src/ir/ir.js';
import { buildMaglev } from './maglev-reference.js';

export const MAC = {
  client: '02:00:00:00:0c:01',   // the client's MAC (source of client frames)
  node: '02:00:00:00:00:aa',     // our MAC on the client side (destination of client frames)
  beDst: '02:00:00:00:be:01',    // backend's MAC
  beSrc: '02:00:00:00:00:bb',    // our MAC on the backend side
  rtDst: '02:00:00:00:77:01',
  rtSrc: '02:00:00:00:00:cc',
};

export const CLIENT_MAC = '02:00:00:00:0c:01';
export const LOCAL_MAC = '02:00:00:00:0c:02';
export const BE_MAC = MAC.beDst;
export const BE_SRC_MAC = MAC.beSrc;

/** A backend: { id, addr, port, state?, outPort?, dstMac?, srcMac?, service? }. */
export function backend(b) {
  return {
    id: b.id, service: b.service ?? 'default/svc', addr: b.addr, family: b.addr.includes(':') ? 6 : 4, port: b.port,
    state: b.state ?? L.BES_READY, outPort: b.outPort ?? 1, dstMac: b.dstMac ?? MAC.beDst, srcMac: b.srcMac ?? MAC.beSrc,
  };
}

/**
 * A frontend over `backends` (IrBackend objects). The Maglev table spreads over the READY ones,
 * or — when none is ready and some are serving-terminating — over those with FEF_FALLBACK set
 * (the compiler's rule). `m` overrides the table size (prime).
 */
export function frontend(f, backends, m = 251) {
  const ready = backends.filter((b) => b.state === L.BES_READY);
  const term = backends.filter((b) => b.state === L.BES_TERMINATING_SERVING);
  let flags = f.flags ?? 0;
  let active = ready;
  if (!ready.length && term.length && f.fallback !== false) { active = term; flags |= L.FEF_FALLBACK; }
  if (f.sourceRanges?.length) flags |= L.FEF_SOURCE_RANGES;
  const maglev = f.maglev ?? buildMaglev(active.map((b) => b.id), active.map((b) => `${b.addr}:${b.port}`), m);
  return {
    id: f.id, service: f.service ?? 'default/svc', portName: f.portName ?? '', kind: f.kind ?? 'ClusterIP',
    addr: f.addr, family: f.addr.includes(':') ? 6 : 4, port: f.port, proto: f.proto ?? 'TCP', flags,
    affinityTimeoutMs: f.affinityTimeoutMs ?? (flags & L.FEF_AFFINITY ? 10_800_000 : 0),
    sourceRanges: f.sourceRanges ?? [], backends: active.map((b) => b.id), maglev,
    ...(f.clusterFront ? { clusterFront: f.clusterFront } : {}),
  };
}

/** { frontends: IrFrontend[], backends: IrBackend[], routes?, snatV4?, snatV6? } -> Ir */
export function mkIr({ frontends = [], backends = [], routes = [], snatV4, snatV6 } = {}) {
  return irOf(frontends, backends, { routes, snatV4, snatV6 });
}

/** { frontends: [{ ...frontend() options, backends: ids }], backends: [backend() options], routes?,
 * snatV4?, snatV6? } -> Ir */
export function irFrom({ frontends = [], backends = [], routes, snatV4, snatV6 } = {}) {
  const bes = backends.map(backend);
  const byId = new Map(bes.map((b) => [b.id, b]));
  const fes = frontends.map(({ backends: ids = [], ...f }) => frontend(f, ids.map((id) => byId.get(id))));
  return irOf(fes, bes, { routes, snatV4, snatV6 });
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
