// The control API (fastify): apply/delete/list Services, EndpointSlices and the node config,
// counters, conntrack, trace, metrics — plus kube-proxy's healthz on its own listener.
// Routes are documented in docs/api.md. Every mutating request is one transaction
// (src/api/controlplane.ts): a body with one bad object changes nothing.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { Dataplane, FlowFilter, TracePacketSpec } from '../core/dataplane-types.js';
import { parseManifests } from '../model/load.js';
import { ValidationError, type FieldError } from '../model/types.js';
import { StateStore } from '../state/store.js';
import { ApplyFailure, ControlPlaneCore, backendView, frontendView } from './controlplane.js';
import { ControlPlaneMetrics } from './metrics.js';
import type { Proto } from '../ir/ir.js';

export const DEFAULT_LISTEN = '127.0.0.1:9440';
export const DEFAULT_HEALTHZ_LISTEN = '127.0.0.1:10256';
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

export interface ControlPlaneOptions {
  dataplane: Dataplane;
  /** Directory for state.json (+ .bak). Omit to run without persistence (tests, demo). */
  stateDir?: string;
  /** Raw NodeConfig object (wdp.io/v1alpha1) from the daemon's config; a node config saved in
   * the state dir (applied through the API) takes precedence over it. */
  node?: unknown;
  /** "host:port", "[v6]:port", "unix:/path" or "/path" (unix socket, mode 0600). Port 0 = any. */
  listen?: string;
  /** Healthz listener, same syntax; false = none. Default 127.0.0.1:10256. */
  healthz?: string | false;
  /** Bearer token required on every API route (not on the healthz listener). */
  token?: string;
  bodyLimit?: number;
  /** Whether the dataplane is forwarding (healthz answers 503 when false). Default: always. */
  isForwarding?: () => boolean;
  /** What the daemon's start restored (shown by GET /api/v1/generation as `restore`, `wdp status`). */
  restoreSummary?: () => unknown;
  /** More route modules registered on the API app (e.g. the daemon's ports API). */
  extraRoutes?: Array<(app: FastifyInstance) => void>;
  /** fastify logger option (pino); default off. */
  logger?: boolean | Record<string, unknown>;
}

export interface ControlPlane {
  /** Base URL of the API ("http://127.0.0.1:9440" or "unix:/path"). */
  readonly url: string;
  readonly healthzUrl: string | null;
  readonly core: ControlPlaneCore;
  readonly app: FastifyInstance;
  /** The Prometheus registry behind /metrics (the Kubernetes watcher adds its metrics to it). */
  readonly metrics: ControlPlaneMetrics;
  close(): Promise<void>;
}

type Listen = { host: string; port: number } | { path: string };

export function parseListen(s: string): Listen {
  if (s.startsWith('unix:')) return { path: s.replace(/^unix:(\/\/)?/, '') };
  if (s.startsWith('/') || s.startsWith('./')) return { path: s };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new Error(`invalid listen address ${JSON.stringify(s)}: expected host:port, [v6]:port or unix:/path`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`invalid listen address ${JSON.stringify(s)}: port out of range`);
  return { host: m[1] || '127.0.0.1', port };
}

/** Kubernetes-style Status body. */
function status(code: number, reason: string, message: string, causes?: FieldError[]): Record<string, unknown> {
  return {
    kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message,
    ...(causes ? { details: { causes: causes.map((c) => ({ kind: c.kind, namespace: c.namespace, name: c.name, field: c.field, reason: c.reason, message: c.message })) } } : {}),
  };
}

function sendValidation(reply: FastifyReply, e: ValidationError): FastifyReply {
  const parse = e.errors.some((x) => x.reason === 'ParseError');
  const notFound = e.errors.every((x) => x.reason === 'NotFound');
  const code = parse ? 400 : notFound ? 404 : 422;
  return reply.code(code).send(status(code, parse ? 'BadRequest' : notFound ? 'NotFound' : 'Invalid', e.message, e.errors));
}

function isTrue(v: unknown): boolean { return v === 'true' || v === '1' || v === '' || v === 'All'; }

const traceSchema = z.object({
  src: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address'),
  dst: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address'),
  proto: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(['TCP', 'UDP', 'SCTP', 'ICMP'])),
  sport: z.coerce.number().int().min(0).max(65535).optional(),
  dport: z.coerce.number().int().min(0).max(65535).optional(),
  tcpFlags: z.string().regex(/^[SAFRPUEC]*$/i, 'must be a combination of S, A, F, R, P, U').optional(),
  inPort: z.coerce.number().int().min(0).max(65534).optional(),
  srcMac: z.string().regex(/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i, 'must be a MAC address').optional(),
  dstMac: z.string().regex(/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i, 'must be a MAC address').optional(),
}).refine((t) => isIP(t.src) === isIP(t.dst), { message: 'src and dst must be the same address family', path: ['dst'] });

const conntrackQuery = z.object({
  service: z.string().regex(/^[a-z0-9-]+\/[a-z0-9.-]+$/, 'must be namespace/name').optional(),
  backend: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
  client: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
  proto: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(['TCP', 'UDP', 'SCTP'])).optional(),
  limit: z.coerce.number().int().min(1).max(1_000_000).optional(),
});

function zodCauses(kind: string, err: z.ZodError): FieldError[] {
  return err.issues.map((i) => {
    const field = i.path.join('.');
    return { kind, field, reason: 'FieldValueInvalid', message: `${kind}: ${field ? field + ': ' : ''}${i.message}` };
  });
}

function safeTokenEqual(given: string, want: string): boolean {
  const a = Buffer.from(given), b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function listenOn(app: FastifyInstance, l: Listen): Promise<string> {
  if ('path' in l) {
    if (existsSync(l.path)) {
      if (!lstatSync(l.path).isSocket()) throw new Error(`refusing to listen on ${l.path}: it exists and is not a socket`);
      unlinkSync(l.path); // a stale socket of a previous run
    }
    // created 0600 from the start (umask), not only after chmod: no window where others connect
    let oldMask: number | null = null;
    try { oldMask = process.umask(0o177); } catch { /* worker threads cannot change the umask: chmod below still applies */ }
    try { await app.listen({ path: l.path }); } finally { if (oldMask !== null) process.umask(oldMask); }
    chmodSync(l.path, 0o600);
    return `unix:${l.path}`;
  }
  await app.listen({ host: l.host, port: l.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : l.port;
  return `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${port}`;
}

function baseApp(opts: ControlPlaneOptions, bodyLimit: number): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false, bodyLimit, return503OnClosing: true,
    // HTTP framing errors must not reach our handlers half-parsed
    routerOptions: { ignoreTrailingSlash: true },
  });
  // Bodies are JSON or YAML manifests, parsed by one function that knows both (and reports
  // positions); fastify only delivers the text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));
  return app;
}

export async function createControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const healthzListen = opts.healthz === false ? null : parseListen(opts.healthz ?? DEFAULT_HEALTHZ_LISTEN);
  const store = opts.stateDir ? new StateStore(opts.stateDir) : null;
  let metrics: ControlPlaneMetrics | null = null;
  const core = new ControlPlaneCore(opts.dataplane, store, {
    onSync(info) {
      if (!metrics) return;
      metrics.syncDuration.observe(info.seconds);
      metrics.lastSync.set(Date.now() / 1000);
      metrics.serviceChanges.inc(info.serviceChanges);
      metrics.endpointChanges.inc(info.endpointChanges);
      const now = Date.now();
      for (const t of info.triggerTimesMs) if (t <= now) metrics.programmingDuration.observe((now - t) / 1000);
    },
  });
  metrics = new ControlPlaneMetrics(core.compiler, () => opts.dataplane.generation());
  // restore before listening: the API never shows (and the dataplane never forwards) a partial state
  await core.restore(opts.node);
  if (core.restoredFrom !== 'disabled') metrics.lastSync.set(Date.now() / 1000);
  let closed = false;
  const healthy = (): boolean => !closed && (opts.isForwarding ? opts.isForwarding() : true);

  const app = baseApp(opts, bodyLimit);
  const m = metrics;

  app.addHook('onRequest', async (req, reply) => {
    if (!opts.token) return;
    const h = req.headers.authorization ?? '';
    const given = h.startsWith('Bearer ') ? h.slice(7) : null;
    if (given === null || !safeTokenEqual(given, opts.token)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send(status(401, 'Unauthorized', given === null ? 'missing bearer token' : 'invalid bearer token'));
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    m.apiRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', code: String(reply.statusCode) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(status(404, 'NotFound', `no route ${req.method} ${req.url.split('?')[0]}; see docs/api.md`)));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof ValidationError) { m.syncErrors.inc({ stage: 'validation' }); return sendValidation(reply, err); }
    if (err instanceof ApplyFailure) { m.syncErrors.inc({ stage: 'apply' }); return reply.code(err.statusCode).send(status(err.statusCode, 'InternalError', err.message)); }
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (code === 413) return reply.code(413).send(status(413, 'RequestEntityTooLarge', `request body is larger than the limit of ${bodyLimit} bytes`));
    if (code >= 500) app.log.error(err);
    return reply.code(code).send(status(code, code === 400 ? 'BadRequest' : code === 415 ? 'UnsupportedMediaType' : code >= 500 ? 'InternalError' : 'Error', err.message));
  });

  const body = (req: FastifyRequest): unknown[] => {
    const text = typeof req.body === 'string' ? req.body : '';
    if (!text.trim()) throw new ValidationError([{ kind: '<request>', field: '', reason: 'ParseError', message: 'request body is empty: expected JSON or YAML objects' }]);
    return parseManifests(text, 'request body');
  };
  const dry = (req: FastifyRequest): boolean => {
    const d = isTrue((req.query as Record<string, unknown>).dryRun);
    if (!d) m.lastQueued.set(Date.now() / 1000); // a real change is now waiting for its turn
    return d;
  };

  // ---- mutations -----------------------------------------------------------------------------
  app.post('/api/v1/apply', async (req) => core.apply(body(req), { dryRun: dry(req) }));
  app.post('/api/v1/delete', async (req) => core.remove(body(req), { dryRun: dry(req) }));
  app.delete<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/services/:name', async (req) =>
    core.removeRefs([{ kind: 'Service', namespace: req.params.ns, name: req.params.name }], { dryRun: dry(req) }));
  app.delete<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/endpointslices/:name', async (req) =>
    core.removeRefs([{ kind: 'EndpointSlice', namespace: req.params.ns, name: req.params.name }], { dryRun: dry(req) }));

  // ---- reads ---------------------------------------------------------------------------------
  const nsOf = (req: FastifyRequest): string | undefined => (req.params as { ns?: string }).ns ?? ((req.query as { namespace?: string }).namespace || undefined);
  const listServices = async (req: FastifyRequest) => {
    const ns = nsOf(req);
    return { apiVersion: 'v1', kind: 'ServiceList', items: core.compiler.listServices().filter((s) => !ns || s.namespace === ns).map((s) => s.raw) };
  };
  const listSlices = async (req: FastifyRequest) => {
    const ns = nsOf(req);
    return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSliceList', items: core.compiler.listSlices().filter((s) => !ns || s.namespace === ns).map((s) => s.raw) };
  };
  app.get('/api/v1/services', listServices);
  app.get('/api/v1/namespaces/:ns/services', listServices);
  app.get('/api/v1/endpointslices', listSlices);
  app.get('/api/v1/namespaces/:ns/endpointslices', listSlices);
  app.get<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/services/:name', async (req, reply) => {
    const s = core.compiler.getService(req.params.ns, req.params.name);
    return s ? s.raw : reply.code(404).send(status(404, 'NotFound', `Service ${req.params.ns}/${req.params.name} not found`));
  });
  app.get<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/endpointslices/:name', async (req, reply) => {
    const s = core.compiler.getSlice(req.params.ns, req.params.name);
    return s ? s.raw : reply.code(404).send(status(404, 'NotFound', `EndpointSlice ${req.params.ns}/${req.params.name} not found`));
  });
  app.get('/api/v1/nodeconfig', async (_req, reply) => {
    const n = core.compiler.getNode();
    return n ? n.raw : reply.code(404).send(status(404, 'NotFound', 'no NodeConfig applied'));
  });
  app.get('/api/v1/generation', async () => ({
    generation: opts.dataplane.generation(), lastUpdated: core.lastUpdated.toISOString(),
    services: core.compiler.serviceCount(), endpointSlices: core.compiler.sliceCount(),
    frontends: core.compiler.ir.frontends.size, backends: core.compiler.ir.backends.size,
    ...(opts.restoreSummary ? { restore: opts.restoreSummary() } : {}),
  }));
  app.get('/api/v1/state', async () => ({
    restoredFrom: core.restoredFrom, restoreProblems: core.restoreProblems, lastUpdated: core.lastUpdated.toISOString(),
  }));
  app.get('/api/v1/frontends', async (req) => {
    const svc = (req.query as { service?: string }).service;
    const ids = svc ? core.compiler.frontendIdsOf(svc) : [...core.compiler.ir.frontends.keys()];
    return { items: ids.sort((a, b) => a - b).map((id) => core.compiler.ir.frontends.get(id)).filter((f) => !!f).map((f) => frontendView(f!)) };
  });
  app.get('/api/v1/backends', async (req) => {
    const svc = (req.query as { service?: string }).service;
    const ids = svc ? core.compiler.backendIdsOf(svc) : [...core.compiler.ir.backends.keys()];
    return { items: ids.sort((a, b) => a - b).map((id) => core.compiler.ir.backends.get(id)).filter((b) => !!b).map((b) => backendView(b!)) };
  });

  app.get('/api/v1/counters', async () => {
    const snap = await opts.dataplane.counters();
    const ir = core.compiler.ir;
    const services = new Map<string, { service: string; packets: number; bytes: number; frontends: unknown[] }>();
    for (const f of [...ir.frontends.values()].sort((a, b) => a.id - b.id)) {
      const c = snap.frontends[f.id] ?? { packets: 0, bytes: 0 };
      let s = services.get(f.service);
      if (!s) { s = { service: f.service, packets: 0, bytes: 0, frontends: [] }; services.set(f.service, s); }
      s.packets += c.packets; s.bytes += c.bytes;
      s.frontends.push({ id: f.id, portName: f.portName, kind: f.kind, addr: f.addr, port: f.port, proto: f.proto, packets: c.packets, bytes: c.bytes });
    }
    const backends = [...ir.backends.values()].sort((a, b) => a.id - b.id).map((b) => {
      const c = snap.backends[b.id] ?? { packets: 0, bytes: 0 };
      return { id: b.id, service: b.service, addr: b.addr, port: b.port, state: backendView(b).state, packets: c.packets, bytes: c.bytes };
    });
    return {
      generation: snap.generation, global: snap.global,
      drops: Object.fromEntries(Object.entries(snap.reasons).filter(([k]) => k.startsWith('drop_'))),
      reasons: snap.reasons,
      services: [...services.values()].sort((a, b) => (a.service < b.service ? -1 : 1)),
      backends,
    };
  });

  app.get('/api/v1/conntrack', async (req, reply) => {
    const q = conntrackQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(status(400, 'BadRequest', 'invalid conntrack filter', zodCauses('conntrack query', q.error)));
    const f: FlowFilter = { limit: q.data.limit ?? 1000 };
    if (q.data.backend) f.backend = q.data.backend;
    if (q.data.client) f.client = q.data.client;
    if (q.data.proto) f.proto = q.data.proto as Proto;
    let want: Set<number> | null = null;
    if (q.data.service) {
      want = new Set(core.compiler.frontendIdsOf(q.data.service));
      f.service = q.data.service;
      if (!want.size) return { items: [] };
      if (want.size === 1) f.frontendId = [...want][0];
    }
    const flows = await opts.dataplane.conntrack(want && want.size > 1 ? { ...f, limit: undefined } : f);
    const ir = core.compiler.ir;
    const items = flows.filter((x) => !want || want.has(x.frontendId)).slice(0, f.limit)
      .map((x) => ({ ...x, service: ir.frontends.get(x.frontendId)?.service ?? null }));
    return { items };
  });

  app.post('/api/v1/trace', async (req, reply) => {
    let raw: unknown;
    try { raw = JSON.parse(typeof req.body === 'string' ? req.body : ''); } catch {
      return reply.code(400).send(status(400, 'BadRequest', 'trace body must be a JSON object: {"src","dst","proto","sport","dport"}'));
    }
    const t = traceSchema.safeParse(raw);
    if (!t.success) return reply.code(422).send(status(422, 'Invalid', 'invalid trace packet: ' + t.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), zodCauses('trace', t.error)));
    return opts.dataplane.trace(t.data as TracePacketSpec);
  });

  app.get('/metrics', async (_req, reply) => {
    let snap = null;
    try { snap = await opts.dataplane.counters(); } catch (e) { app.log.warn(`metrics: dataplane counters unavailable: ${(e as Error).message}`); }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await m.render(snap));
  });

  const healthzHandler = async (_req: FastifyRequest, reply: FastifyReply) => {
    const ok = healthy();
    return reply.code(ok ? 200 : 503).send({ lastUpdated: core.lastUpdated.toISOString(), currentTime: new Date().toISOString(), nodeEligible: true });
  };
  app.get('/healthz', healthzHandler);
  for (const register of opts.extraRoutes ?? []) register(app);

  let healthApp: FastifyInstance | null = null;
  let url: string;
  let healthzUrl: string | null = null;
  try {
    url = await listenOn(app, listen);
    if (healthzListen) {
      healthApp = Fastify({ logger: false });
      healthApp.get('/healthz', healthzHandler);
      healthApp.get('/livez', healthzHandler);
      healthApp.setNotFoundHandler((req, reply) => reply.code(404).send(status(404, 'NotFound', `no route ${req.method} ${req.url}`)));
      healthzUrl = await listenOn(healthApp, healthzListen);
    }
  } catch (e) {
    await app.close().catch(() => undefined);
    if (healthApp) await healthApp.close().catch(() => undefined);
    throw e;
  }
  return {
    url, healthzUrl, core, app, metrics: m,
    async close() {
      closed = true;
      await app.close();
      if (healthApp) await healthApp.close();
    },
  };
}
