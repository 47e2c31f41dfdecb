// Credentials and plain reads against the Kubernetes API server. Credentials come from
// @kubernetes/client-node's KubeConfig: the pod's service account (in-cluster: token file, CA,
// KUBERNETES_SERVICE_HOST/PORT) by default, or a kubeconfig file — with what the library reads
// differently from client-go (kube-proxy's client) put right here:
//
// * a kubeconfig user's `tokenFile` (client-go's field; kubeadm's kube-proxy kubeconfig
//   authenticates with nothing else) is ignored by the library, which knows only a
//   non-standard `token-file` and reads it once: wdp sends the file's token, read again as it
//   rotates (token-file.ts); a `token` beside it is sent only while the file gives none (client-go's
//   NewBearerAuthWithRefreshRoundTripper: the last token read from the file wins);
// * the in-cluster token is trimmed and re-read after a 401 as well (token-file.ts), the server
//   is always https (the library picks http for ports 80/8080/8001 and then refuses it) and both
//   KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are required (client-go's
//   ErrNotInCluster); an IPv6 host is bracketed.
//
// Lists are read as raw JSON rather than through the generated API classes: the watch stream
// delivers raw objects, and the model validates raw Kubernetes objects, so list and watch hand
// the same shapes on (the generated classes turn timestamps into Dates and cost ~3x the parse).
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KubeConfig, type User } from '@kubernetes/client-node';
import { TOKEN_FILE_PROVIDER, TokenFile, tokenFileAuthenticator } from './token-file.js';
import { readInputFile } from '../util/input-file.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; [k: string]: unknown };
  [k: string]: unknown;
}
export interface KubeList { apiVersion?: string; kind?: string; metadata?: { resourceVersion?: string; continue?: string }; items: KubeObject[] }

/** An HTTP error from the API server, with the Status object's reason when it sent one, and how
 * long it asked the client to wait before retrying (Retry-After), when it did. */
export class KubeApiError extends Error {
  constructor(message: string, readonly statusCode: number, readonly reason?: string, readonly causes: Array<{ reason?: string; message?: string }> = [], readonly retryAfterSeconds?: number) {
    super(message); this.name = 'KubeApiError';
  }
}

interface StatusObject { kind?: unknown; code?: unknown; message?: unknown; reason?: unknown; details?: { causes?: unknown; retryAfterSeconds?: unknown } }

/** Retry-After as client-go reads it (whole seconds; an HTTP date is ignored), else the Status's
 * details.retryAfterSeconds (the same figure, in the body of a 429 or an ERROR event). */
function retryAfterOf(header: string | string[] | undefined, st: StatusObject | undefined): number | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && /^\s*\d+\s*$/.test(h)) return Number(h);
  const d = st?.details?.retryAfterSeconds;
  return typeof d === 'number' && Number.isFinite(d) && d > 0 ? d : undefined;
}

function errorOfStatus(what: string, code: number, st: StatusObject | undefined, fallback: string, retryAfterHeader?: string | string[]): KubeApiError {
  const causes = Array.isArray(st?.details?.causes) ? st.details.causes as Array<{ reason?: string; message?: string }> : [];
  const message = typeof st?.message === 'string' ? st.message : fallback;
  return new KubeApiError(`${what}: ${code} ${message}`, code, typeof st?.reason === 'string' ? st.reason : undefined, causes, retryAfterOf(retryAfterHeader, st));
}

/** The Status an error answer carries (message, reason, causes, Retry-After), when its body is one. */
function statusError(what: string, code: number, text: string, retryAfterHeader?: string | string[]): KubeApiError {
  let st: StatusObject | undefined;
  try { st = JSON.parse(text); } catch { st = undefined; }
  return errorOfStatus(what, code, st && typeof st === 'object' ? st : undefined, text.slice(0, 200), retryAfterHeader);
}

/** 410: the resourceVersion (or continue token) asked for was compacted away (reason Expired;
 * Gone from servers before 1.18), as client-go's isExpiredError. */
export function isExpired(e: unknown): boolean {
  return e instanceof KubeApiError && e.statusCode === 410;
}

/** The server has not seen the resourceVersion asked for yet (a lagging API server after a
 * restore or a failover): cause ResourceVersionTooLarge, or the older servers' message, as
 * client-go's isTooLargeResourceVersionError. */
export function isTooLargeResourceVersion(e: unknown): boolean {
  if (!(e instanceof KubeApiError)) return false;
  return e.causes.some((c) => c?.reason === 'ResourceVersionTooLarge' || c?.message === 'Too large resource version')
    || (e.statusCode === 504 && /Too large resource version/.test(e.message));
}

/** A kubeconfig is a few KB (certificates inline: tens of KB). */
const MAX_KUBECONFIG = 4 << 20;

/** The token file each KubeConfig loaded here authenticates with (a 401 resets it). */
const tokenFiles = new WeakMap<KubeConfig, TokenFile>();

/** `inClusterRoot` prefixes the service account's files (/var/run/secrets/...): tests only. */
export function loadKubeConfig(opts: { kubeconfig?: string; inClusterRoot?: string }): KubeConfig {
  const kc = new KubeConfig();
  let tokenFile: string | undefined;
  if (opts.kubeconfig) {
    // read within a bound (the library's loadFromFile reads anything whole: /dev/zero hung the start)
    const text = readInputFile(opts.kubeconfig, MAX_KUBECONFIG);
    kc.loadFromString(text);
    kc.makePathsAbsolute(dirname(opts.kubeconfig)); // (what loadFromFile does after reading)
    tokenFile = kubeconfigTokenFile(opts.kubeconfig, text, kc);
  } else {
    const host = process.env.KUBERNETES_SERVICE_HOST, port = process.env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw new Error(`not running in a cluster (KUBERNETES_SERVICE_${host ? 'PORT' : 'HOST'} is not set): give kubernetes.kubeconfig (or --kubeconfig)`);
    }
    kc.loadFromCluster(opts.inClusterRoot);
    const cluster = kc.getCurrentCluster()!;
    kc.clusters = kc.clusters.map((c) => (c === cluster ? { ...c, server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}` } : c));
    tokenFile = (kc.getCurrentUser()?.authProvider as { config?: { tokenFile?: string } } | undefined)?.config?.tokenFile;
  }
  if (!kc.getCurrentCluster()) throw new Error(`no current cluster in ${opts.kubeconfig ?? 'the in-cluster config'}`);
  // An http:// server (kubectl proxy, an insecure port) is used as client-go and kubectl use it:
  // there is no TLS to verify. The library refuses http:// unless verification is marked off,
  // which is what it then needs to pick a plain HTTP agent.
  kc.clusters = kc.clusters.map((c) => (/^http:/i.test(c.server) && !c.skipTLSVerify ? { ...c, skipTLSVerify: true } : c));
  if (tokenFile) {
    const user = kc.getCurrentUser()!;
    // a kubeconfig's `token` beside `tokenFile` is sent only while the file gives none (client-go)
    const file = new TokenFile(tokenFile, user.token || undefined);
    file.current(); // unreadable or empty, with no token beside it: a clear error at start rather than 401s forever
    // (the library sends a user's `token` over whatever the authenticator set: it goes into the file's fallback)
    kc.users = kc.users.map((u) => (u === user ? { ...u, token: undefined, authProvider: { name: TOKEN_FILE_PROVIDER, config: {} } } as User : u));
    kc.addAuthenticator(tokenFileAuthenticator(file));
    tokenFiles.set(kc, file);
  }
  return kc;
}

/** The current user's `tokenFile` (the library drops the field), made absolute against the
 * kubeconfig's directory as client-go resolves its paths. */
function kubeconfigTokenFile(path: string, text: string, kc: KubeConfig): string | undefined {
  const user = kc.getCurrentUser();
  if (!user) return undefined;
  const raw = parseYaml(text) as { users?: Array<{ name?: string; user?: { tokenFile?: unknown } }> } | null;
  const f = raw?.users?.find((u) => u?.name === user.name)?.user?.tokenFile;
  if (typeof f !== 'string' || !f) return undefined;
  return isAbsolute(f) ? f : join(dirname(path), f);
}

/** How long an idle keep-alive connection is kept for the next request (Node's global agent's
 * figure): long enough for the next page of a list and for the watch that follows one the server
 * ended, well inside any server's or load balancer's idle timeout (the API server's: 90 s). */
const KEEP_ALIVE_IDLE_MS = 5_000;

/** The keep-alive agent each KubeConfig's requests share, for the TLS material it was made for. */
const agents = new WeakMap<KubeConfig, { key: string; agent: HttpAgent }>();

/** The library makes a new agent (without keep-alive) for every request: each list page and
 * each watch was a new connection and TLS handshake. Here requests share one agent per
 * KubeConfig and TLS material (CA, client certificate, verification, server name) — a rotated
 * certificate or CA file gets a new agent, the old one's connections end with their requests — so
 * consecutive requests reuse a connection, as client-go's transport does. Through a proxy the
 * library's agent is kept. */
function keepAliveAgent(kc: KubeConfig, opts: RequestOptions): HttpAgent | undefined {
  if (kc.getCurrentCluster()?.proxyUrl) return undefined;
  const https = !/^http:/i.test(kc.getCurrentCluster()?.server ?? ''); // (the library's choice of agent too)
  const tls = { ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername };
  const h = createHash('sha256').update(https ? 'https' : 'http');
  for (const [k, v] of Object.entries(tls)) h.update(`\0${k}=`).update(v === undefined ? '' : Buffer.isBuffer(v) ? v : JSON.stringify(v));
  const key = h.digest('hex');
  const known = agents.get(kc);
  if (known?.key === key) return known.agent;
  const common = { keepAlive: true, keepAliveMsecs: 30_000, timeout: KEEP_ALIVE_IDLE_MS, scheduling: 'lifo' as const };
  const agent = https ? new HttpsAgent({ ...common, ...tls } as ConstructorParameters<typeof HttpsAgent>[0]) : new HttpAgent(common);
  agents.set(kc, { key, agent });
  return agent;
}

/** The request failed on a kept-alive connection before any answer came, as it does when the
 * server closed the idle connection while the request was being sent: sent again once on a new
 * connection (a GET changes nothing), as Go's transport retries it for client-go. */
function staleConnection(req: { reusedSocket?: boolean }, err: unknown, answered: boolean): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return !!req.reusedSocket && !answered && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED');
}

/** The request options (TLS, credentials) for one request to the API server, and what to call
 * with the answer's status (a 401 makes the token file be read again). */
export async function requestOptions(kc: KubeConfig, headers: Record<string, string>): Promise<{ opts: RequestOptions; answered(status: number): void }> {
  const sentAt = Date.now();
  const opts: RequestOptions = { method: 'GET', headers: { ...headers } };
  await kc.applyToHTTPSOptions(opts);
  const agent = keepAliveAgent(kc, opts);
  if (agent) opts.agent = agent;
  return { opts, answered: (status) => { if (status === 401) tokenFiles.get(kc)?.reset(sentAt); } };
}

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_BODY = 512 * 1024 * 1024;

/** GET `path` (with its query) and parse the JSON body. Non-2xx answers throw KubeApiError. */
export async function getJson(kc: KubeConfig, path: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
  const server = kc.getCurrentCluster()!.server;
  const url = new URL(server.replace(/\/+$/, '') + path);
  const { opts, answered } = await requestOptions(kc, { accept: 'application/json' });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const get = (retried: boolean): void => {
      let responded = false;
      const req = send(url, opts, (res: IncomingMessage) => {
        responded = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(new Error(`response to GET ${path} is larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try { body = JSON.parse(text); } catch { body = undefined; }
          const code = res.statusCode ?? 0;
          answered(code);
          if (code < 200 || code > 299) reject(statusError(`GET ${path}`, code, text, res.headers['retry-after']));
          else if (body === undefined) reject(new Error(`GET ${path}: the body is not JSON`));
          else resolve(body);
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)));
      req.on('error', (e) => { if (!retried && staleConnection(req, e, responded)) get(true); else reject(e); });
      req.end();
    };
    get(false);
  });
}

export interface ListOptions {
  labelSelector?: string; fieldSelector?: string;
  /** Page size; 0 or unset: one answer. */
  limit?: number;
  /** '' (unset): the newest state, a consistent read from etcd. '0': any state (the API server's
   * watch cache answers). N: without a limit not older than N (the watch cache answers), with a
   * limit exactly N (etcd answers; 410 once compacted) — KEP-2523. */
  resourceVersion?: string;
  /** How long each page's connection may stay silent (default REQUEST_TIMEOUT_MS: the API
   * server's own request timeout is a minute). */
  timeoutMs?: number;
}

/** A list in pages of `limit` (`continue` tokens), as client-go's pager: the resourceVersion goes
 * with the first page only (the server refuses it next to a continue token), and a continue token
 * that expired between pages (410: the snapshot it reads was compacted away) falls back to one
 * unpaged list at the resourceVersion asked for. The resourceVersion returned is that of the
 * snapshot the list shows, which the watch then starts after; `paginated`: it came in pages. */
export async function listAll(kc: KubeConfig, path: string, o: ListOptions = {}): Promise<KubeList & { paginated: boolean }> {
  const page = async (limit: number, cont?: string) => {
    const q = new URLSearchParams();
    if (o.labelSelector) q.set('labelSelector', o.labelSelector);
    if (o.fieldSelector) q.set('fieldSelector', o.fieldSelector);
    if (o.resourceVersion && !cont) q.set('resourceVersion', o.resourceVersion);
    if (limit) q.set('limit', String(limit));
    if (cont) q.set('continue', cont);
    const p = await getJson(kc, `${path}${q.toString() ? `?${q}` : ''}`, o.timeoutMs) as KubeList;
    if (!p || !Array.isArray(p.items ?? [])) throw new Error(`GET ${path}: not a list`);
    return p;
  };
  const items: KubeObject[] = [];
  let cont: string | undefined;
  let rv = '';
  let pages = 0;
  do {
    let p: KubeList;
    try { p = await page(o.limit ?? 0, cont); } catch (e) {
      if (!isExpired(e) || cont === undefined) throw e;
      const full = await page(0);
      return { metadata: { resourceVersion: full.metadata?.resourceVersion ?? '' }, items: full.items ?? [], paginated: true };
    }
    pages++;
    for (const it of p.items ?? []) items.push(it);
    rv = p.metadata?.resourceVersion ?? '';
    cont = p.metadata?.continue || undefined;
  } while (cont);
  return { metadata: { resourceVersion: rv }, items, paginated: pages > 1 };
}

/** A watch's idle limit when the caller gives none: the API server sends a watch that asked for
 * bookmarks one about every minute (its cacher's bookmark frequency), so two minutes without a
 * byte means the connection or the server is gone. */
export const WATCH_IDLE_MS = 120_000;

/** The longest watch event line taken (characters): the API server refuses request bodies over
 * 3 MiB, so an event is a few MiB at most; a stream that never ends its line (a broken proxy)
 * fails the watch here instead of growing the buffer without bound. */
export const MAX_WATCH_EVENT = 16 * 1024 * 1024;

/**
 * GET `path` with `watch=true` and `params`, handing each event to `onEvent` as it arrives and
 * calling `done` once when the stream ends (null: ended by the server) or fails. Returns the
 * controller that ends it (abort(reason)).
 *
 * The library's Watch has no timeout of its own: a server (or a load balancer in front of it)
 * that accepts the connection and never answers holds it forever, and a connection that dies
 * without a reset is noticed only when TCP gives up (13-30 min; client-go closes such a
 * connection after ~45 s with HTTP/2 pings). Here the socket may stay silent for at most
 * `idleMs` — connecting, waiting for the headers, or between events — before the watch fails
 * and is resumed from its resourceVersion. A line that is not JSON fails the watch too (resumed,
 * the event is delivered again) where the library skipped it (the event was lost); so does an
 * event without a type or an object with metadata. An ERROR event carrying a Status ends the
 * watch with that Status's error (the server ends the stream after it): a 410 for a re-list, any
 * other code to be retried with backoff — the library let a server that answers every watch so
 * be asked again at once, a busy loop.
 */
export async function openWatch(
  kc: KubeConfig, path: string, params: Record<string, string | number | boolean | undefined>,
  onEvent: (type: string, object: any, raw: unknown) => void, done: (err: unknown) => void, idleMs = WATCH_IDLE_MS,
): Promise<AbortController> {
  const url = new URL(kc.getCurrentCluster()!.server.replace(/\/+$/, '') + path);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
  const controller = new AbortController();
  let finished = false;
  let req: ReturnType<typeof httpRequest> | undefined;
  const finish = (err: unknown) => {
    if (finished) return;
    finished = true;
    req?.destroy();
    done(err);
  };
  controller.signal.addEventListener('abort', () => {
    const r = controller.signal.reason;
    finish(r instanceof Error ? r : new Error('the watch was stopped'));
  });
  let prepared;
  try { prepared = await requestOptions(kc, { accept: 'application/json' }); } catch (e) { finish(e); return controller; }
  if (finished) return controller;
  const { opts, answered } = prepared;
  opts.timeout = idleMs;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  let responded = false;
  const onResponse = (res: IncomingMessage) => {
    responded = true;
    const code = res.statusCode ?? 0;
    answered(code);
    res.setEncoding('utf8');
    if (code !== 200) {
      let text = '';
      res.on('data', (c: string) => { if (text.length < 65536) text += c; });
      res.on('end', () => finish(statusError(`watch ${path}`, code, text, res.headers['retry-after'])));
      res.on('error', finish);
      return;
    }
    res.socket?.setKeepAlive(true, 30_000);
    // the line being read, in the pieces it arrived in: each piece is searched for the newline
    // once, so a large event cut into many reads costs its length, not its length x the reads
    let parts: string[] = [];
    let partLength = 0;
    const line = (l: string) => {
      if (finished || !l.trim()) return;
      let ev: { type?: unknown; object?: { metadata?: unknown } | null };
      try { ev = JSON.parse(l); } catch { finish(new Error(`watch ${path}: an event is not JSON`)); return; }
      // the library's handler reads object.metadata (ERROR: object.code) in an async function
      // whose rejection nobody handles: an event without them would end the process
      const o = ev?.object;
      if (typeof ev?.type !== 'string' || !o || typeof o !== 'object' || (ev.type !== 'ERROR' && (!o.metadata || typeof o.metadata !== 'object'))) {
        finish(new Error(`watch ${path}: an event is not {type, object with metadata}: ${l.slice(0, 100)}`));
        return;
      }
      const st = o as StatusObject;
      if (ev.type === 'ERROR' && (st.kind === 'Status' || typeof st.code === 'number')) {
        const c = typeof st.code === 'number' ? st.code : 500;
        finish(errorOfStatus(`watch ${path}: ERROR event`, c, st, 'no message'));
        return;
      }
      onEvent(ev.type, o, ev);
    };
    res.on('data', (chunk: string) => {
      let from = 0;
      for (let nl = chunk.indexOf('\n'); nl >= 0 && !finished; nl = chunk.indexOf('\n', from)) {
        const piece = chunk.slice(from, nl);
        line(parts.length ? parts.join('') + piece : piece);
        parts = []; partLength = 0;
        from = nl + 1;
      }
      if (from < chunk.length) { parts.push(chunk.slice(from)); partLength += chunk.length - from; }
      if (partLength > MAX_WATCH_EVENT) finish(new Error(`watch ${path}: an event is longer than ${MAX_WATCH_EVENT} characters`));
    });
    res.on('end', () => { line(parts.join('')); finish(null); });
    res.on('error', finish);
    res.on('close', () => finish(new Error(`watch ${path}: the stream was cut`)));
  };
  const open = (retried: boolean) => {
    const r = send(url, opts, onResponse);
    req = r;
    r.on('timeout', () => r.destroy(new Error(`watch ${path}: nothing from the API server in ${Math.round(idleMs / 1000)} s`)));
    r.on('error', (e) => { if (!retried && !finished && staleConnection(r, e, responded)) open(true); else finish(e); });
    r.end();
  };
  open(false);
  return controller;
}
