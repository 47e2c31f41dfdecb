// The ports API: the daemon's ports listed, added and removed while it forwards (a CNI plugin
// attaching a new pod's interface on ADD and detaching it on DEL; `wdp get ports`,
// `wdp port add|remove`). Registered on the control API by the daemon (docs/api.md).
//
//   GET    /api/v1/ports           every port: config file's and runtime ones, with live stats
//   GET    /api/v1/ports/:name     one port (404 if none)
//   POST   /api/v1/ports           body: one port as in the config file's ports: (JSON or YAML);
//                                  201 with the port; 409 name/interface taken; 422 invalid
//   DELETE /api/v1/ports/:name     a runtime port; 404 none; 409 a config-file port
//   POST   /api/v1/cni/gc          CNI GC (src/daemon/cni-gc.ts, run by the port manager): body { network, validAttachments:
//                                  [{ containerID, ifname }] }; removes that network's runtime ports
//                                  whose attachment is not listed; 200 { network, removed, failed };
//                                  422 invalid (nothing removed)
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DocumentError, parseSingleDocument } from '../model/load.js';
import { MAX_YAML_BODY_BYTES } from '../model/limits.js';

export interface PortsService {
  list(): Promise<Array<{ name: string }>>;
  add(raw: unknown): Promise<unknown>;
  remove(name: string): Promise<unknown>;
  /** A CNI GC request run; throws at once (nothing removed) when the request cannot be read. */
  cniGc(body: unknown): Promise<{ network: string; removed: string[]; failed: Array<{ name: string; error: string }> }>;
}

function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

function bodyObject(req: FastifyRequest, what = 'one port object (name, type, ifname, role, ...)'): Record<string, unknown> {
  const text = typeof req.body === 'string' ? req.body : '';
  if (!text.trim()) throw httpError(400, `request body is empty: expected ${what} (JSON or YAML)`);
  let v: unknown;
  try { v = parseSingleDocument(text, 'request body', { maxYamlBytes: MAX_YAML_BODY_BYTES }); } catch (e) { throw e instanceof DocumentError ? httpError(e.status, e.message) : e; }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw httpError(400, `request body must be ${what}`);
  return v as Record<string, unknown>;
}

/** The ports routes' changes take no query parameter: there is no dry run of them, and one asked
 * for (`?dryRun=true`) must not be a real change. Refused (400) before anything is done. */
function noQuery(req: FastifyRequest): void {
  const keys = Object.keys((req.query ?? {}) as object);
  if (keys.length) throw httpError(400, `unknown query parameter ${JSON.stringify(keys[0].slice(0, 64))}: ${req.method} ${req.routeOptions.url} takes none (there is no dry run of it): nothing was changed`);
}

/** Errors from the port manager carry their HTTP status (statusCode); anything else is a 500. */
export function registerPortRoutes(app: FastifyInstance, ports: PortsService): void {
  app.get('/api/v1/ports', async () => ({ kind: 'PortList', items: await ports.list() }));
  app.get<{ Params: { name: string } }>('/api/v1/ports/:name', async (req) => {
    const p = (await ports.list()).find((x) => x.name === req.params.name);
    if (!p) throw httpError(404, `no port "${req.params.name}"`);
    return p;
  });
  app.post('/api/v1/ports', async (req, reply) => {
    noQuery(req);
    const view = await ports.add(bodyObject(req));
    return reply.code(201).send(view);
  });
  app.delete<{ Params: { name: string } }>('/api/v1/ports/:name', async (req) => { noQuery(req); return ports.remove(req.params.name); });
  app.post('/api/v1/cni/gc', async (req) => {
    noQuery(req);
    const body = bodyObject(req, 'one CNI GC request { network, validAttachments }');
    let run: ReturnType<PortsService['cniGc']>;
    try { run = ports.cniGc(body); } catch (e) { throw httpError(422, (e as Error).message); }
    return { kind: 'CniGcResult', ...await run };
  });
}
