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
import { Counter, Gauge } from '../util/prom-client.js';
import { DocumentError, parseManifestSources, parseSingleDocument } from '../model/load.js';
import { bodyParser, earlyObjects } from './body-reader.js';
import { PreparedAnswer } from './apply-answer.js';
import type { Validated } from '../model/schema.js';
import { validateApiObject } from '../model/object-meta.js';
import { bodyFieldProblems, problemLines, type FieldProblems } from '../model/field-validation.js';
import { BodyLimitError, MAX_YAML_BODY_BYTES } from '../model/limits.js';
import { fieldError, ValidationError, type FieldError } from '../model/types.js';
import { openSavedState, type SavedState } from './saved-state.js';
import { ApplyFailure, ControlPlaneCore, backendView, frontendView, type ApplyResult, type NodeConfigOwner } from './controlplane.js';
import { ExternalClaims } from '../compiler/external-claims.js';
import { ControlPlaneMetrics } from './metrics.js';
import { dryRunOf, fieldValidationOf, page, pageRequest, PageError, MAX_PAGE_LIMIT, serviceQuery, SERVICE_KEY, singleQuery } from './paging.js';
import { checkOrigin, contentTypeProblem } from './request-guards.js';
import { API_CLOSE_GRACE_MS, InFlightRequests, type BoundedCloseResult } from './bounded-close.js';
import type { Proto } from '../ir/ir.js';

import { DEFAULT_HEALTHZ_LISTEN, DEFAULT_LISTEN, parseListen, tokenRequiredReason, type Listen } from './listen.js';
export { DEFAULT_HEALTHZ_LISTEN, DEFAULT_LISTEN, parseListen };
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

export interface ControlPlaneOptions {
  dataplane: Dataplane;
  /** Directory of the desired-state store (state.db, src/state/store.ts; created mode 0700). Omit
   * to run without persistence (tests, demo). */
  stateDir?: string;
  /** The store already opened and validated (openSavedState(stateDir), e.g. while the workers
   * booted); the control plane owns it from here. Takes the place of stateDir. */
  saved?: SavedState;
  /** Raw NodeConfig object (wdp.io/v1alpha1) from the daemon's config; a node config saved in
   * the state dir (applied through the API) takes precedence over it. */
  node?: unknown;
  /** "host:port", "[v6]:port", "unix:/path" or "/path" (unix socket, mode 0600). Port 0 = any. */
  listen?: string;
  /** Healthz listener, same syntax; false = none. Default 127.0.0.1:10256. */
  healthz?: string | false;
  /** Bearer token required on every API route (not on the healthz listener). Required when the
   * API listens on a non-loopback address. */
  token?: string;
  /** The dataplane's port indices (or a function giving the current ones, when ports come and go):
   * a NodeConfig neighbour or route on another port is refused. Omitted: not checked. */
  ports?: number[] | (() => number[]);
  /** The dataplane's ports by name (the daemon's, as `GET /api/v1/ports` lists them): a trace's
   * `inPort` may name one, and one it does not name is refused. Omitted: a trace's `inPort` is an
   * index, checked against `ports` when given. */
  portNames?: () => Array<{ name: string; index: number }>;
  bodyLimit?: number;
  /** Whether the dataplane is forwarding (healthz answers 503 when false). Default: always. */
  isForwarding?: () => boolean;
  /** What the daemon's start restored (shown by GET /api/v1/generation as `restore`, `wdp status`). */
  restoreSummary?: () => unknown;
  /** More route modules registered on the API app (e.g. the daemon's ports API). */
  extraRoutes?: Array<(app: FastifyInstance) => void>;
  /** fastify logger option (pino); default off. */
  logger?: boolean | Record<string, unknown>;
  /** Set when another writer owns what this API would change (the daemon's Kubernetes watcher):
   * an apply or delete of a Service or EndpointSlice (`objects`: the watcher puts them back to
   * the API server's at its next full sync) or of the NodeConfig (`nodeConfig`: the daemon builds
   * it from the Node) is answered with that text as a `Warning: 299 - "..."` header, the way the
   * Kubernetes API server sends warnings (kubectl, and `wdp`, print them). */
  followed?: { objects?: string; nodeConfig?: string };
  /** Resolves once the daemon's re-program of its NodeConfig after one applied or deleted is done,
   * when it needs one (a neighbour learned meanwhile: the transaction programmed the owner's
   * already, `nodeConfigOwner`), so the answer comes after the state a later read sees. */
  nodeConfigSettled?: () => Promise<void>;
  /** Who builds the NodeConfig (the daemon): a NodeConfig applied or deleted through the API is
   * replaced by the owner's in that transaction, so it — and its dry run's diff — is what the
   * daemon keeps (ControlPlaneCore's NodeConfigOwner). */
  nodeConfigOwner?: NodeConfigOwner;
}

export interface ControlPlane {
  /** Base URL of the API ("http://127.0.0.1:9440" or "unix:/path"). */
  readonly url: string;
  readonly healthzUrl: string | null;
  readonly core: ControlPlaneCore;
  readonly app: FastifyInstance;
  /** The Prometheus registry behind /metrics (the Kubernetes watcher adds its metrics to it). */
  readonly metrics: ControlPlaneMetrics;
  /** Stops the API in bounded time: the requests in flight get API_CLOSE_GRACE_MS (`graceMs`),
   * then are answered 503 and every connection closed (bounded-close.ts); the transactions under
   * way finish before the store closes. Resolves with what was cut off. */
  close(graceMs?: number): Promise<BoundedCloseResult>;
}

/** The Kubernetes Status reason (metav1.StatusReason) of an error answer's code. */
export function statusReason(code: number): string {
  switch (code) {
    case 400: return 'BadRequest';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'NotFound';
    case 405: return 'MethodNotAllowed';
    case 409: return 'Conflict';
    case 413: return 'RequestEntityTooLarge';
    case 415: return 'UnsupportedMediaType';
    case 422: return 'Invalid';
    case 429: return 'TooManyRequests';
    case 503: return 'ServiceUnavailable';
    default: return code >= 500 ? 'InternalError' : 'Unknown';
  }
}

/** Kubernetes-style Status body. */
function status(code: number, reason: string, message: string, causes?: FieldError[]): Record<string, unknown> {
  return {
    kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message,
    ...(causes ? { details: { causes: causes.map((c) => ({ kind: c.kind, namespace: c.namespace, name: c.name, field: c.field, reason: c.reason, message: c.message })) } } : {}),
  };
}

function sendValidation(reply: FastifyReply, e: ValidationError): FastifyReply {
  if (e instanceof BodyLimitError) return reply.code(e.status).send(status(e.status, statusReason(e.status), e.message, e.errors));
  const parse = e.errors.some((x) => x.reason === 'ParseError' || x.reason === STRICT_DECODING);
  const notFound = e.errors.every((x) => x.reason === 'NotFound');
  const code = parse ? 400 : notFound ? 404 : 422;
  // 40k broken objects made a 28 MB answer: the first CAUSES_MAX causes, and how many more there were
  const n = e.errors.length;
  const shown = n > CAUSES_MAX ? e.errors.slice(0, CAUSES_MAX) : e.errors;
  const message = n > CAUSES_MAX ? `${n} errors (the first ${CAUSES_MAX} listed):\n${shown.map((x) => '  ' + x.message).join('\n')}\n  ... and ${n - CAUSES_MAX} more` : e.message;
  return reply.code(code).send(status(code, statusReason(code), message, shown));
}

declare module 'fastify' {
  interface FastifyRequest {
    /** When the API had read the request's head (process.hrtime, ns): the start of the daemon's
     * own view of an apply's programming latency (ApplyResult.receivedToProgrammedSeconds). */
    receivedAtNs: number;
  }
}

/** The apply's answer with the time from the request's arrival until every worker had switched. */
function withReceived(req: FastifyRequest, r: ApplyResult): ApplyResult {
  if (r.programmedAtNs > 0 && req.receivedAtNs > 0) r.receivedToProgrammedSeconds = Math.max(0, r.programmedAtNs - req.receivedAtNs) / 1e9;
  return r;
}

/** Causes listed in one error answer. */
export const CAUSES_MAX = 1000;

/** The reason of a cause refused by `fieldValidation=Strict` (a 400, as the API server's). */
const STRICT_DECODING = 'StrictDecodingError';
/** Characters of Warning header values an answer carries at most: clients read a few KiB of
 * headers (Node's, 16 KiB in all), and a full sync may have a problem in every object. */
const WARNINGS_MAX_CHARS = 4096;

/** The Warning header value of `text`, as the API server writes one. */
function warningValue(text: string): string {
  return `299 - ${JSON.stringify(text.replace(/[^\x20-\x7e]/g, ' '))}`;
}

/** Warning header values for `texts` in order, within WARNINGS_MAX_CHARS: those past it are
 * counted in a last one (fieldValidation=Strict's error lists them). */
function warningValues(texts: readonly string[]): string[] {
  const out: string[] = [];
  // (each value and its ", " as a client joins them; room kept for the last one)
  let size = 0;
  for (let i = 0; i < texts.length; i++) {
    const v = warningValue(texts[i].length > 1024 ? `${texts[i].slice(0, 1021)}...` : texts[i]);
    if (size + v.length + 2 > WARNINGS_MAX_CHARS - 200) { out.push(warningValue(`${texts.length - i} more warnings not shown (?fieldValidation=Strict refuses the request and lists every problem)`)); break; }
    out.push(v);
    size += v.length + 2;
  }
  return out;
}

/** fieldValidation=Strict's refusal: one cause per object, worded as the API server's strict
 * decoder (`strict decoding error: unknown field "spec.foo", duplicate field "metadata.name"`). */
function strictDecodingError(problems: readonly FieldProblems[]): ValidationError {
  return new ValidationError(problems.map((p) => fieldError(p.kind, p.namespace, p.name, '', STRICT_DECODING, `strict decoding error: ${p.problems.join(', ')}`)));
}

/** A number in a JSON body, or its decimal digits (the CLI's flags): z.coerce read "" and null as
 * 0 and true as 1, tracing another packet than the one asked for. */
const wholeNumber = z.union([z.number(), z.string().regex(/^\d{1,10}$/, 'must be a number').transform(Number)]);

const traceSchema = z.object({
  src: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address'),
  dst: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address'),
  proto: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(['TCP', 'UDP', 'SCTP', 'ICMP'])),
  sport: wholeNumber.pipe(z.number().int().min(0).max(65535)).optional(),
  dport: wholeNumber.pipe(z.number().int().min(0).max(65535)).optional(),
  tcpFlags: z.string().regex(/^[SAFRPUEC]*$/i, 'must be a combination of S, A, F, R, P, U').optional(),
  // a port index, or a port's name (resolved by the route: portNames)
  inPort: z.union([wholeNumber.pipe(z.number().int().min(0).max(65534)), z.string().regex(/^(?!\d*$)[^\0]{1,64}$/, 'must be a port index or name')]).optional(),
  srcMac: z.string().regex(/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i, 'must be a MAC address').optional(),
  dstMac: z.string().regex(/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i, 'must be a MAC address').optional(),
}).strict().refine((t) => isIP(t.src) === 0 || isIP(t.dst) === 0 || isIP(t.src) === isIP(t.dst), { message: 'src and dst must be the same address family', path: ['dst'] });

const conntrackQuery = z.object({
  service: z.string().regex(SERVICE_KEY, 'must be namespace/name').optional(),
  backend: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
  client: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
  proto: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(['TCP', 'UDP', 'SCTP'])).optional(),
  // decimal digits, as the paged lists read it (z.coerce read "1e3", "0x10" and " 5" as numbers)
  limit: z.string().regex(/^\d{1,9}$/, 'must be a decimal number').transform(Number).pipe(z.number().int().min(1).max(MAX_PAGE_LIMIT)).optional(),
  continue: z.string().regex(/^[0-9]{1,9}$/, 'not a token this API returned').optional(),
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

/** No route here declares a JSON schema: bodies and queries are checked by zod (src/model/schema.ts
 * and the schemas above). Fastify's default schema compilers (ajv, fast-json-stringify) are
 * loaded when an instance is created, used or not: ~35-40 ms of CPU on every daemon start
 * (~100 ms in a loaded restart's profile). These stand-ins load nothing; a route that did
 * declare a schema fails when it is registered, with this message, instead of going unchecked. */
const noJsonSchemas = () => (): never => {
  throw new Error('wdp routes take no JSON schema (fastify schema compilers are not loaded): check input with zod');
};
const NO_SCHEMA_COMPILERS = { compilersFactory: { buildValidator: noJsonSchemas, buildSerializer: noJsonSchemas } };

function baseApp(opts: ControlPlaneOptions, bodyLimit: number): FastifyInstance {
  const app = Fastify({
    logger: opts.logger ?? false, bodyLimit, return503OnClosing: true, schemaController: NO_SCHEMA_COMPILERS,
    // HTTP framing errors must not reach our handlers half-parsed
    routerOptions: { ignoreTrailingSlash: true },
  });
  // Bodies are JSON or YAML manifests, parsed by one function that knows both (and reports
  // positions); fastify only delivers the text. Other content types were refused already (the
  // onRequest guard): a browser can send text/plain or a form cross-site without asking.
  app.removeAllContentTypeParsers();
  // (read by bodyParser: an apply's JSON objects are parsed while the body arrives)
  // (a bad fieldValidation is refused by the route; only Ignore skips the field checks here)
  app.addContentTypeParser('*', { bodyLimit }, bodyParser(bodyLimit, (req) => req.method === 'POST' && req.routeOptions.url === '/api/v1/apply'
    ? { fields: (req.query as { fieldValidation?: unknown } | undefined)?.fieldValidation !== 'Ignore' } : null));
  return app;
}

export async function createControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const healthzListen = opts.healthz === false ? null : parseListen(opts.healthz ?? DEFAULT_HEALTHZ_LISTEN);
  const tokenless = tokenRequiredReason(listen, opts.token);
  if (tokenless) {
    opts.saved?.store.close();
    throw new Error(`refusing to listen on ${opts.listen} without a token: that address ${tokenless}. Configure api.token, or listen on 127.0.0.1 or a unix socket`);
  }
  const saved = opts.saved ?? (opts.stateDir ? openSavedState(opts.stateDir) : null);
  const store = saved?.store ?? null;
  let metrics: ControlPlaneMetrics | null = null;
  const core = new ControlPlaneCore(opts.dataplane, store, {
    onSync(info) {
      if (!metrics) return;
      metrics.synced(info.seconds);
      metrics.appliedChanges(info.serviceChanges, info.endpointChanges);
      for (const t of info.triggers) metrics.programmed(t.ms, t.family);
    },
  });
  const ports = opts.ports;
  if (ports) core.ports = typeof ports === 'function' ? () => new Set(ports()) : () => new Set(ports);
  metrics = new ControlPlaneMetrics(core.compiler, () => opts.dataplane.generation());
  // restore before listening: the API never shows (and the dataplane never forwards) a partial
  // state. The routes are built while the dataplane writes the restored tables (the restore runs
  // on this thread until it hands the diff to the workers, then waits): part of a restart's time.
  const restoring = core.restore(saved, opts.node);
  restoring.catch(() => undefined); // awaited below
  await new Promise((r) => setImmediate(r));
  let closed = false;
  // unhealthy while saves fail: every apply is refused then, so the dataplane cannot follow changes
  const healthy = async (): Promise<boolean> => !closed && (opts.isForwarding ? opts.isForwarding() : true) && await core.persistOk();

  const app = baseApp(opts, bodyLimit);
  const inFlight = new InFlightRequests(app);
  const m = metrics;
  new Gauge({ name: 'wdp_state_store_writable', help: '1 when the desired-state store takes writes, 0 while saves fail (applies are refused then)', registers: [m.registry], async collect() { this.set(await core.persistOk() ? 1 : 0); } });
  new Counter({ name: 'wdp_state_save_failures_total', help: 'Applies refused because the desired state could not be saved', registers: [m.registry], collect() { this.reset(); this.inc(core.persistFailures); } });

  app.decorateRequest('receivedAtNs', 0);
  app.addHook('onRequest', async (req, reply) => {
    req.receivedAtNs = Number(process.hrtime.bigint()); // before the body is read: see withReceived
    // a browser must not drive the API: no Origin (CORS / CSRF), no foreign Host (DNS rebinding)
    // unless a token is required, and only JSON or YAML bodies (no simple cross-site form posts)
    const guard = checkOrigin(req.headers, 'host' in listen && !opts.token ? listen.host : null);
    if (guard) return reply.code(403).send(status(403, 'Forbidden', guard));
    if (opts.token) {
      const h = req.headers.authorization ?? '';
      const given = h.startsWith('Bearer ') ? h.slice(7) : null;
      if (given === null || !safeTokenEqual(given, opts.token)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send(status(401, 'Unauthorized', given === null ? 'missing bearer token' : 'invalid bearer token'));
      }
    }
    const ct = contentTypeProblem(req.method, req.headers);
    if (ct) return reply.code(415).send(status(415, 'UnsupportedMediaType', ct));
  });
  app.addHook('onResponse', async (req, reply) => {
    m.apiRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', code: String(reply.statusCode) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(status(404, 'NotFound', `no route ${req.method} ${req.url.split('?')[0]}; see docs/api.md`)));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof ValidationError) { m.syncErrors.inc({ stage: 'validation' }); return sendValidation(reply, err); }
    if (err instanceof ApplyFailure) { m.syncErrors.inc({ stage: 'apply' }); return reply.code(err.statusCode).send(status(err.statusCode, 'InternalError', err.message)); }
    if (err instanceof PageError) return reply.code(400).send(status(400, 'BadRequest', err.message));
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    // (fastify's own: its text names no limit; a route's own 413 says what it refused)
    if (code === 413 && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(status(413, statusReason(413), `request body is larger than the limit of ${bodyLimit} bytes`));
    if (code >= 500) app.log.error(err);
    return reply.code(code).send(status(code, statusReason(code), err.message));
  });

  const parsed = (req: FastifyRequest): ReturnType<typeof parseManifestSources> => {
    const text = typeof req.body === 'string' ? req.body : '';
    if (!text.trim()) throw new ValidationError([{ kind: '<request>', field: '', reason: 'ParseError', message: 'request body is empty: expected JSON or YAML objects' }]);
    return parseManifestSources(text, 'request body', { maxYamlBytes: MAX_YAML_BODY_BYTES });
  };
  /** An apply's objects, each with the API's verdict (validateApiObject), and — unless `checkFields`
   * is false — their unknown and duplicate fields. */
  const sources = (req: FastifyRequest, checkFields: boolean): ReturnType<typeof parseManifestSources> & { validated: Validated[]; fields: FieldProblems[] } => {
    const early = earlyObjects(req);
    if (early) return { objs: early.objs, texts: early.texts, validated: early.validated, fields: early.fields ?? [] };
    const r = parsed(req);
    const validated = r.objs.map(validateApiObject);
    const fields = !checkFields ? [] : bodyFieldProblems(r.doc, r.objs, validated.map((v, i) => v.ok && v.obj.raw === r.objs[i]), r.doc === undefined ? null : req.body as string);
    return { ...r, validated, fields };
  };
  const body = (req: FastifyRequest): unknown[] => parsed(req).objs;
  /** Whether a change is a dry run (dryRunOf); an apply also takes fieldValidation. */
  const dryRun = (req: FastifyRequest): boolean => dryRunOf(req.query, req.routeOptions.url === '/api/v1/apply' ? ['fieldValidation'] : []);
  const dry = (req: FastifyRequest): boolean => {
    const d = dryRun(req);
    if (!d) m.queued(); // a real change is now waiting for its turn
    return d;
  };

  // ---- mutations -----------------------------------------------------------------------------
  const objectsWarning = opts.followed?.objects, nodeConfigWarning = opts.followed?.nodeConfig;
  /** The Warning headers for the kinds among `kinds` another writer owns, then `more`. */
  const warnFollowed = (reply: FastifyReply, kinds: unknown[], more: readonly string[] = []): void => {
    const texts: string[] = [];
    if (objectsWarning && kinds.some((k) => k === 'Service' || k === 'EndpointSlice')) texts.push(objectsWarning);
    if (nodeConfigWarning && kinds.includes('NodeConfig')) texts.push(nodeConfigWarning);
    const values = warningValues([...texts, ...more]);
    if (values.length) reply.header('warning', values.length === 1 ? values[0] : values);
  };
  const kindsOf = (objs: unknown[]): unknown[] => objs.map((o) => (o as { kind?: unknown } | null)?.kind);
  /** After a real change naming the NodeConfig: waits for the daemon's re-program, if any. */
  const nodeSettled = async (req: FastifyRequest, objs: unknown[]): Promise<void> => {
    if (opts.nodeConfigSettled && !dryRun(req) && kindsOf(objs).includes('NodeConfig')) await opts.nodeConfigSettled();
  };
  app.post('/api/v1/apply', async (req, reply) => {
    // (bad values refused before the body is looked at)
    dryRun(req);
    const fieldValidation = fieldValidationOf(req.query);
    const { objs, texts, validated, fields } = sources(req, fieldValidation !== 'Ignore');
    // as the API server: Strict refuses unknown and duplicate fields before anything is validated,
    // Warn answers each in a Warning header (the request's other answers, errors too, keep them)
    if (fieldValidation === 'Strict' && fields.length) throw strictDecodingError(fields);
    warnFollowed(reply, kindsOf(objs), fieldValidation === 'Warn' ? fields.flatMap(problemLines) : []);
    // a large answer's text is written while the workers apply the change (apply-answer.ts)
    let prepared: PreparedAnswer | null = null;
    const r = withReceived(req, await core.apply(objs, { dryRun: dry(req), texts, validated, nodeConfigOwner: opts.nodeConfigOwner, prepare: (parts) => { prepared = PreparedAnswer.of(parts); } }));
    await nodeSettled(req, objs);
    const text = (prepared as PreparedAnswer | null)?.text(r);
    return text ? reply.type('application/json; charset=utf-8').send(text) : r;
  });
  app.post('/api/v1/delete', async (req, reply) => {
    dryRunOf(req.query);
    const objs = body(req);
    warnFollowed(reply, kindsOf(objs));
    const r = withReceived(req, await core.remove(objs, { dryRun: dry(req), nodeConfigOwner: opts.nodeConfigOwner }));
    await nodeSettled(req, objs);
    return r;
  });
  app.delete<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/services/:name', async (req, reply) => {
    warnFollowed(reply, ['Service']);
    return withReceived(req, await core.removeRefs([{ kind: 'Service', namespace: req.params.ns, name: req.params.name }], { dryRun: dry(req) }));
  });
  app.delete<{ Params: { ns: string; name: string } }>('/api/v1/namespaces/:ns/endpointslices/:name', async (req, reply) => {
    warnFollowed(reply, ['EndpointSlice']);
    return withReceived(req, await core.removeRefs([{ kind: 'EndpointSlice', namespace: req.params.ns, name: req.params.name }], { dryRun: dry(req) }));
  });

  // ---- reads ---------------------------------------------------------------------------------
  const nsOf = (req: FastifyRequest): string | undefined => (req.params as { ns?: string }).ns ?? (singleQuery(req.query, 'namespace') || undefined);
  const listServices = async (req: FastifyRequest) => {
    const ns = nsOf(req);
    const p = page(core.compiler.listServices().filter((s) => !ns || s.namespace === ns), (s) => s.key, pageRequest(req.query));
    return { apiVersion: 'v1', kind: 'ServiceList', metadata: p.metadata, items: p.items.map((s) => s.raw) };
  };
  const listSlices = async (req: FastifyRequest) => {
    const ns = nsOf(req);
    const p = page(core.compiler.listSlices().filter((s) => !ns || s.namespace === ns), (s) => s.key, pageRequest(req.query));
    return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSliceList', metadata: p.metadata, items: p.items.map((s) => s.raw) };
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
    // (wdp_frontends_withheld's values: frontends left out because another Service holds the tuple)
    withheldFrontends: ExternalClaims.of(core.compiler)?.withheldFrontends(),
    ...(opts.restoreSummary ? { restore: opts.restoreSummary() } : {}),
  }));
  app.get('/api/v1/state', async () => {
    const writable = store ? await core.persistOk() : false;
    return {
      restoredFrom: core.restoredFrom, restoreProblems: core.restoreProblems, lastUpdated: core.lastUpdated.toISOString(),
      store: store ? { path: store.path, writable, lastError: core.persistError, saveFailures: core.persistFailures } : null,
    };
  });
  // ids page by their zero-padded text, which sorts like the numbers
  const idKey = (id: number): string => String(id).padStart(10, '0');
  app.get('/api/v1/frontends', async (req) => {
    const svc = serviceQuery(req.query);
    const ids = svc ? core.compiler.frontendIdsOf(svc) : [...core.compiler.ir.frontends.keys()];
    const p = page(ids.sort((a, b) => a - b), idKey, pageRequest(req.query));
    return { metadata: p.metadata, items: p.items.map((id) => core.compiler.ir.frontends.get(id)).filter((f) => !!f).map((f) => frontendView(f!)) };
  });
  app.get('/api/v1/backends', async (req) => {
    const svc = serviceQuery(req.query);
    const ids = svc ? core.compiler.backendIdsOf(svc) : [...core.compiler.ir.backends.keys()];
    const p = page(ids.sort((a, b) => a - b), idKey, pageRequest(req.query));
    return { metadata: p.metadata, items: p.items.map((id) => core.compiler.ir.backends.get(id)).filter((b) => !!b).map((b) => backendView(b!)) };
  });

  // paged by service: a page holds its services' frontends and backends (`?service=ns/name` for one)
  app.get('/api/v1/counters', async (req) => {
    const q = { service: serviceQuery(req.query), namespace: singleQuery(req.query, 'namespace') };
    const pr = pageRequest(req.query);
    const snap = await opts.dataplane.counters();
    const ir = core.compiler.ir;
    const names = q.service ? [q.service] : core.compiler.listServices().filter((s) => !q.namespace || s.namespace === q.namespace).map((s) => s.key);
    const p = page(names, (n) => n, pr);
    const services = p.items.map((name) => {
      const s = { service: name, packets: 0, bytes: 0, frontends: [] as unknown[] };
      for (const id of core.compiler.frontendIdsOf(name).sort((a, b) => a - b)) {
        const f = ir.frontends.get(id);
        if (!f) continue;
        const c = snap.frontends[id] ?? { packets: 0, bytes: 0 };
        s.packets += c.packets; s.bytes += c.bytes;
        s.frontends.push({ id, portName: f.portName, kind: f.kind, addr: f.addr, port: f.port, proto: f.proto, packets: c.packets, bytes: c.bytes });
      }
      return s;
    });
    const backends = p.items.flatMap((name) => core.compiler.backendIdsOf(name)).sort((a, b) => a - b).flatMap((id) => {
      const b = ir.backends.get(id);
      if (!b) return [];
      const c = snap.backends[id] ?? { packets: 0, bytes: 0 };
      return [{ id, service: b.service, addr: b.addr, port: b.port, state: backendView(b).state, packets: c.packets, bytes: c.bytes }];
    });
    return {
      metadata: p.metadata, generation: snap.generation, global: snap.global,
      drops: Object.fromEntries(Object.entries(snap.reasons).filter(([k]) => k.startsWith('drop_'))),
      reasons: snap.reasons,
      services: services.filter((s) => s.frontends.length), // (headless services program nothing)
      backends,
      ...(snap.workers ? { workers: snap.workers } : {}),  // each worker's own, with several
    };
  });

  // paged by position: `continue` is how many matching flows earlier pages returned (flows come
  // and go between pages; this is a view of a live table, not a snapshot)
  app.get('/api/v1/conntrack', async (req, reply) => {
    const q = conntrackQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send(status(400, 'BadRequest', 'invalid conntrack filter', zodCauses('conntrack query', q.error)));
    const limit = q.data.limit ?? 1000;
    const skip = q.data.continue ? Number(q.data.continue) : 0;
    const f: FlowFilter = { limit: skip + limit + 1 };
    if (q.data.backend) f.backend = q.data.backend;
    if (q.data.client) f.client = q.data.client;
    if (q.data.proto) f.proto = q.data.proto as Proto;
    let want: Set<number> | null = null;
    if (q.data.service) {
      want = new Set(core.compiler.frontendIdsOf(q.data.service));
      f.service = q.data.service;
      if (!want.size) return { metadata: {}, items: [] };
      if (want.size === 1) f.frontendId = [...want][0];
    }
    const flows = await opts.dataplane.conntrack(want && want.size > 1 ? { ...f, limit: undefined } : f);
    const ir = core.compiler.ir;
    const matching = flows.filter((x) => !want || want.has(x.frontendId));
    const items = matching.slice(skip, skip + limit).map((x) => ({ ...x, service: ir.frontends.get(x.frontendId)?.service ?? null }));
    return { metadata: matching.length > skip + limit ? { continue: String(skip + limit) } : {}, items };
  });

  /** A trace's inPort (an index or a name) as the index of a port the dataplane has, or why not.
   * Without portNames or ports (an embedding that gave neither) any index goes, as the core takes it. */
  const inPortOf = (given: number | string): number | string => {
    const named = opts.portNames?.();
    const indices = named ? named.map((p) => p.index) : core.ports ? [...core.ports()] : null;
    const hit = typeof given === 'string' ? named?.find((p) => p.name === given)?.index : indices === null || indices.includes(given) ? given : undefined;
    if (hit !== undefined) return hit;
    const have = named ? named.map((p) => `${p.name} (${p.index})`).join(', ') : indices?.join(', ');
    return `Not found: ${JSON.stringify(given)}: the dataplane has no port of that ${typeof given === 'string' ? 'name' : 'index'}${have !== undefined ? ` (ports: ${have || 'none'})` : ' (this control plane knows its ports by index only)'}`;
  };
  app.post('/api/v1/trace', async (req, reply) => {
    let raw: unknown;
    try { raw = parseSingleDocument(typeof req.body === 'string' ? req.body : '', 'request body', { maxYamlBytes: MAX_YAML_BODY_BYTES }); } catch (e) {
      if (!(e instanceof DocumentError)) throw e;
      return reply.code(e.status).send(status(e.status, statusReason(e.status), `trace body must be a JSON object: {"src","dst","proto","sport","dport"}: ${e.message}`));
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return reply.code(400).send(status(400, 'BadRequest', 'trace body must be a JSON object: {"src","dst","proto","sport","dport"}'));
    const t = traceSchema.safeParse(raw);
    if (!t.success) return reply.code(422).send(status(422, 'Invalid', 'invalid trace packet: ' + t.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), zodCauses('trace', t.error)));
    const spec = { ...t.data } as Omit<typeof t.data, 'inPort'> & { inPort?: number };
    if (t.data.inPort !== undefined) {
      const port = inPortOf(t.data.inPort);
      if (typeof port === 'string') {
        return reply.code(422).send(status(422, 'Invalid', `invalid trace packet: inPort: ${port}`, [{ kind: 'trace', field: 'inPort', reason: 'FieldValueNotFound', message: `trace: inPort: ${port}` }]));
      }
      spec.inPort = port;
    }
    return opts.dataplane.trace(spec as TracePacketSpec);
  });

  app.get('/metrics', async (_req, reply) => {
    let snap = null;
    try { snap = await opts.dataplane.counters(); } catch (e) { app.log.warn(`metrics: dataplane counters unavailable: ${(e as Error).message}`); }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await m.render(snap));
  });

  const healthzHandler = async (_req: FastifyRequest, reply: FastifyReply) => {
    const ok = await healthy();
    return reply.code(ok ? 200 : 503).send({ lastUpdated: core.lastUpdated.toISOString(), currentTime: new Date().toISOString(), nodeEligible: true });
  };
  app.get('/healthz', healthzHandler);
  for (const register of opts.extraRoutes ?? []) register(app);

  try { await restoring; } catch (e) { store?.close(); await app.close().catch(() => undefined); throw e; }
  if (core.restoredFrom !== 'disabled') m.markSynced();

  let healthApp: FastifyInstance | null = null;
  let healthInFlight: InFlightRequests | null = null;
  let url: string;
  let healthzUrl: string | null = null;
  try {
    url = await listenOn(app, listen);
    if (healthzListen) {
      healthApp = Fastify({ logger: false, schemaController: NO_SCHEMA_COMPILERS });
      healthInFlight = new InFlightRequests(healthApp);
      healthApp.get('/healthz', healthzHandler);
      healthApp.get('/livez', healthzHandler);
      healthApp.setNotFoundHandler((req, reply) => reply.code(404).send(status(404, 'NotFound', `no route ${req.method} ${req.url}`)));
      healthzUrl = await listenOn(healthApp, healthzListen);
    }
  } catch (e) {
    await app.close().catch(() => undefined);
    if (healthApp) await healthApp.close().catch(() => undefined);
    store?.close();
    throw e;
  }
  return {
    url, healthzUrl, core, app, metrics: m,
    async close(graceMs = API_CLOSE_GRACE_MS) {
      closed = true;
      const stopping = () => status(503, 'ServiceUnavailable', `the daemon is stopping: this request was not answered within ${graceMs} ms of the stop; a change it asked for is applied as a whole or not at all (read it back once the daemon is up again)`);
      const cut = await inFlight.close(app, graceMs, stopping);
      if (healthApp && healthInFlight) await healthInFlight.close(healthApp, graceMs, stopping);
      await core.close();
      await store?.close(); // after the API and its transactions: no apply is in flight any more (awaited: the files settle)
      return cut;
    },
  };
}
