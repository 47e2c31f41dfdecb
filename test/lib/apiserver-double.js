// A Kubernetes API server test double for the watcher's tests (src/kube/): the list and watch
// conventions the real server follows, over real HTTP on loopback, so the real client library
// (@kubernetes/client-node) runs unmodified against it. What it implements:
//
// * Services (v1), EndpointSlices (discovery.k8s.io/v1), Nodes (v1, cluster-scoped) and
//   ServiceCIDRs (networking.k8s.io/v1, cluster-scoped; `serviceCIDRs: false` serves none: an
//   older API server's 404 for the path); create (POST), update (PUT), delete (DELETE), get, list
//   and watch, per namespace or across all.
// * One resourceVersion counter for everything (etcd's revision): every write gets the next
//   value, set on the object; a list carries the resourceVersion of its snapshot.
// * Chunked lists: `limit` and `continue`. The continue token names the snapshot's
//   resourceVersion and the last key sent; later pages are read from that same snapshot (the
//   state is rebuilt by undoing the newer history), as etcd's MVCC reads do. Once that revision
//   is compacted away, the continue token answers HTTP 410 Gone (reason Expired) whose Status
//   carries, as the real server's, an inconsistent continue token (`metadata.continue`: the rest
//   of the list at the newest revision) that a client wanting a consistent list must not use.
// * Watches (`watch=1`): from `resourceVersion` R, every change after R in order (ADDED,
//   MODIFIED, DELETED), then live changes; R empty or "0" starts with a synthetic ADDED per
//   current object. R older than the compacted history: one ERROR event carrying a 410 Status
//   (reason Expired), then the stream ends — as the real server answers a too-old watch.
//   `allowWatchBookmarks` gets BOOKMARK events (only metadata.resourceVersion) now and then, and
//   one 2 s before `timeoutSeconds` is up (the watch cache's pre-timeout bookmark);
//   `timeoutSeconds` ends the stream cleanly. Label selectors (`k`, `!k`, `k=v`, `k!=v`) and the
//   metadata.name / metadata.namespace field selectors filter; an object that stops matching is
//   a DELETED for that watcher (its previous content at the event's resourceVersion, as the
//   watch cache sends it), one that starts matching an ADDED.
// * Faults, for the tests: compact() (history gone: resuming watches and old continue tokens get
//   410), dropWatches() (connections reset mid-stream), expireWatches() (a 410 ERROR event on
//   every open watch), failRequests(n, code, match, status) (the next n list/watch requests
//   fail, `status` merged into the Status answered; the Status reason is the API server's for
//   the code, a 429 says retry after 1 s, and `details.retryAfterSeconds` is also sent as the
//   Retry-After header, as the API server's max-in-flight and priority-and-fairness filters do), a
//   per-event hook to break a stream after a given number of events, endWatchesAtOnce (every
//   watch answered with an empty, finished stream), freezeWatches() (the open watches stay
//   connected but receive nothing more, events or bookmarks: a peer gone without a reset) and
//   holdWatches (new watch requests are accepted and never answered), garbleNextEvent (the next
//   event written to a watch is cut short: a line that is not JSON), cutNextEvent (half of the
//   next event is written, then the connection is reset), splitEventsBytes (every event line is
//   written in pieces of that many bytes, one per turn of the event loop: lines, and UTF-8
//   characters, split across reads), watchErrors ({ status, count, resource? }: the next `count`
//   watches are answered 200 with one ERROR event carrying that Status, or a Status of that
//   code, then end; errorWatches(status) does it to the open ones), holdLists (list requests
//   are accepted and never answered) and resetReusedRequests (the next n requests that arrive
//   on a kept-alive connection after one answered on it reset it unanswered: a server closing an
//   idle connection as the client sends on it).
// * RBAC, for the deploy/ tests: `rbac` (a ClusterRole's `rules`) authorizes every API request by
//   its verb (get, list, watch, create, update, delete), API group and resource as the API
//   server's RBAC authorizer does; anything the rules do not grant is answered 403 Forbidden with
//   the API server's message. `stats.requests` lists each request's { verb, group, resource }.
//
// Run on its own (a daemon in a network namespace reaches it on that namespace's loopback):
//   node test/lib/apiserver-double.js --listen 127.0.0.1:0 --control /tmp/x.sock
// prints {"url": "http://127.0.0.1:PORT"} and serves the same API (`--no-servicecidrs`: without
// ServiceCIDRs; `--rbac FILE`: a ClusterRole manifest, YAML, enforced on the API listener; `--tls
// DIR`: HTTPS with DIR/key.pem and DIR/cert.pem; `--token T`: T required as the bearer token), plus POST /__double/<fault>
// (compact, drop-watches, expire-watches, bookmark, fail-requests?count=&code=&match=, token?value=:
// the bearer token required from now on) and GET
// /__double/stats, on the control socket.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

const RESOURCES = {
  services: { group: '', version: 'v1', kind: 'Service', listKind: 'ServiceList', namespaced: true },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', listKind: 'EndpointSliceList', namespaced: true },
  nodes: { group: '', version: 'v1', kind: 'Node', listKind: 'NodeList', namespaced: false },
  servicecidrs: { group: 'networking.k8s.io', version: 'v1', kind: 'ServiceCIDR', listKind: 'ServiceCIDRList', namespaced: false },
};
const apiVersionOf = (r) => (RESOURCES[r].group ? `${RESOURCES[r].group}/${RESOURCES[r].version}` : RESOURCES[r].version);
const clone = (o) => (o === undefined ? undefined : structuredClone(o));
const keyOf = (r, ns, name) => (RESOURCES[r].namespaced ? `${ns}/${name}` : name);

/** The Status reason the API server gives each code (k8s.io/apimachinery's StatusReason). */
const REASONS = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

function status(code, reason, message) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** `a,!b,c=d,e!=f` (the subset kube-proxy and the tests use). */
function parseLabelSelector(s) {
  if (!s) return () => true;
  const reqs = s.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
    let m;
    if ((m = /^!([^=!]+)$/.exec(p))) return (l) => !(m[1] in l);
    if ((m = /^([^=!]+)!=(.*)$/.exec(p))) return (l) => l[m[1]] !== m[2];
    if ((m = /^([^=!]+)==?(.*)$/.exec(p))) return (l) => l[m[1]] === m[2];
    if ((m = /^([^=!]+)$/.exec(p))) return (l) => m[1] in l;
    throw new Error(`unsupported label selector ${JSON.stringify(p)}`);
  });
  return (obj) => { const l = obj?.metadata?.labels ?? {}; return reqs.every((f) => f(l)); };
}

function parseFieldSelector(s) {
  if (!s) return () => true;
  const reqs = s.split(',').filter(Boolean).map((p) => {
    const m = /^(metadata\.name|metadata\.namespace)(==?|!=)(.*)$/.exec(p);
    if (!m) throw new Error(`unsupported field selector ${JSON.stringify(p)}`);
    const field = m[1] === 'metadata.name' ? 'name' : 'namespace';
    return m[2] === '!=' ? (o) => o.metadata[field] !== m[3] : (o) => o.metadata[field] === m[3];
  });
  return (obj) => !!obj && reqs.every((f) => f(obj));
}

/** The RBAC verb of a request (k8s.io/apiserver's RequestInfoFactory). */
function verbOf(method, r, url) {
  if (method === 'GET') return ['1', 'true'].includes(url.searchParams.get('watch') ?? '') ? 'watch' : r.name ? 'get' : 'list';
  return { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: r.name ? 'delete' : 'deletecollection' }[method] ?? method.toLowerCase();
}

/** Whether a ClusterRole rule grants `verb` on `resource` of API group `group` (`*` wildcards). */
function grants(rule, verb, group, resource) {
  const has = (list, v) => (list ?? []).includes('*') || (list ?? []).includes(v);
  return has(rule.verbs, verb) && has(rule.apiGroups, group) && has(rule.resources, resource);
}

export class ApiServerDouble {
  /** `tls: { key, cert, ca }` serves HTTPS (as every real API server), `token` requires it as a
   * bearer token (as a service account's). */
  constructor({ bookmarkIntervalMs = 60_000, token, tls, watchCache = true, serviceCIDRs = true, rbac } = {}) {
    this.tls = tls;
    this.rbac = rbac;
    this.serveServiceCIDRs = serviceCIDRs;
    this.watchCache = watchCache;
    this.rv = 100; // like a real cluster, not starting at 1
    this.compactedRv = this.rv;
    this.state = Object.fromEntries(Object.keys(RESOURCES).map((r) => [r, new Map()]));
    this.history = []; // { rv, resource, key, type, object, prev }
    this.watchers = new Set();
    this.bookmarkIntervalMs = bookmarkIntervalMs;
    this.token = token;
    this.failures = []; // { count, code, match: 'list' | 'watch' | 'any' }
    const perResource = () => Object.fromEntries(Object.keys(RESOURCES).map((r) => [r, []]));
    this.stats = { requests: [], forbidden: 0, lists: 0, listPages: 0, watches: 0, gone: 0, held: 0, heldLists: 0, resetReused: 0, notFound: 0, byResource: {}, watchFrom: perResource(), listFrom: perResource() };
    this.server = tls ? createTlsServer({ key: tls.key, cert: tls.cert }, (req, res) => this.handle(req, res, false)) : createServer((req, res) => this.handle(req, res, false));
    this.sockets = new Set();
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
  }

  async listen(host = '127.0.0.1', port = 0) {
    await new Promise((resolve, reject) => { this.server.once('error', reject); this.server.listen(port, host, resolve); });
    const a = this.server.address();
    this.url = `${this.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
    this.bookmarkTimer = setInterval(() => this.bookmark(), this.bookmarkIntervalMs);
    this.bookmarkTimer.unref();
    return this.url;
  }

  /** A second listener on a unix socket with the fault controls (the child-process mode). */
  async listenControl(path) {
    if (existsSync(path)) unlinkSync(path);
    this.control = createServer((req, res) => this.handle(req, res, true));
    await new Promise((resolve, reject) => { this.control.once('error', reject); this.control.listen(path, resolve); });
  }

  /** A kubeconfig (YAML is JSON) for the client library to reach this double. */
  kubeconfig() {
    return JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'double',
      // HTTPS: verified against the CA; plain HTTP: the library refuses it unless verification is off
      clusters: [{ name: 'double', cluster: this.tls ? { server: this.url, 'certificate-authority-data': Buffer.from(this.tls.ca).toString('base64') } : { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'double', user: this.token ? { token: this.token } : {} }],
      contexts: [{ name: 'double', context: { cluster: 'double', user: 'double' } }],
    });
  }

  async close() {
    clearInterval(this.bookmarkTimer);
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(() => r()));
    if (this.control) await new Promise((r) => this.control.close(() => r()));
  }

  // ---- writes ---------------------------------------------------------------------------------

  create(resource, obj) {
    const o = clone(obj);
    o.apiVersion = apiVersionOf(resource); o.kind = RESOURCES[resource].kind;
    o.metadata = { ...(o.metadata ?? {}) };
    if (RESOURCES[resource].namespaced) o.metadata.namespace ||= 'default'; else delete o.metadata.namespace;
    const key = keyOf(resource, o.metadata.namespace, o.metadata.name);
    if (this.state[resource].has(key)) throw Object.assign(new Error(`${resource} "${key}" already exists`), { code: 409 });
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    return this.commit(resource, key, 'ADDED', o, undefined);
  }

  update(resource, obj) {
    const ns = RESOURCES[resource].namespaced ? obj.metadata?.namespace || 'default' : undefined;
    const key = keyOf(resource, ns, obj.metadata?.name);
    const prev = this.state[resource].get(key);
    if (!prev) throw Object.assign(new Error(`${resource} "${key}" not found`), { code: 404 });
    const want = obj.metadata?.resourceVersion;
    if (want && want !== prev.metadata.resourceVersion) throw Object.assign(new Error(`the object has been modified (resourceVersion ${want} != ${prev.metadata.resourceVersion})`), { code: 409 });
    const o = clone(obj);
    o.apiVersion = prev.apiVersion; o.kind = prev.kind;
    o.metadata = { ...o.metadata, namespace: prev.metadata.namespace, uid: prev.metadata.uid, creationTimestamp: prev.metadata.creationTimestamp };
    if (!RESOURCES[resource].namespaced) delete o.metadata.namespace;
    return this.commit(resource, key, 'MODIFIED', o, prev);
  }

  /** create, or update when it exists (tests' shorthand; ignores a stale resourceVersion). */
  apply(resource, obj) {
    const ns = RESOURCES[resource].namespaced ? obj.metadata?.namespace || 'default' : undefined;
    const key = keyOf(resource, ns, obj.metadata?.name);
    if (!this.state[resource].has(key)) return this.create(resource, obj);
    const o = clone(obj); if (o.metadata) delete o.metadata.resourceVersion;
    return this.update(resource, o);
  }

  delete(resource, namespace, name) {
    const key = keyOf(resource, namespace || 'default', name);
    const prev = this.state[resource].get(key);
    if (!prev) throw Object.assign(new Error(`${resource} "${key}" not found`), { code: 404 });
    const o = clone(prev);
    return this.commit(resource, key, 'DELETED', o, prev);
  }

  get(resource, namespace, name) { return clone(this.state[resource].get(keyOf(resource, namespace || 'default', name))); }

  commit(resource, key, type, obj, prev) {
    const rv = ++this.rv;
    obj.metadata.resourceVersion = String(rv);
    if (type === 'DELETED') this.state[resource].delete(key); else this.state[resource].set(key, obj);
    const ev = { rv, resource, key, type, object: obj, prev };
    this.history.push(ev);
    for (const w of this.watchers) if (w.resource === resource && w.live) this.deliver(w, ev);
    return clone(obj);
  }

  // ---- faults -----------------------------------------------------------------------------------

  /** Forget the history up to now: watches resuming from before it and continue tokens that
   * name it get 410 Gone. */
  compact() {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Reset every open watch connection (no final chunk: the client sees a broken stream). */
  dropWatches() {
    const n = this.watchers.size;
    for (const w of this.watchers) { w.res.socket?.destroy(); w.res.destroy(); }
    this.watchers.clear();
    return n;
  }

  /** Send every open watch a 410 ERROR event and end it (the server's "too old" answer). */
  expireWatches() {
    for (const w of this.watchers) this.endWithGone(w.res, w.since);
    this.watchers.clear();
  }

  /** The open watches receive nothing more (their connections stay up): what a client sees when
   * the server or the path to it dies without a reset. */
  freezeWatches() {
    for (const w of this.watchers) w.frozen = true;
  }

  /** A BOOKMARK at the current resourceVersion to watches that asked for bookmarks. */
  bookmark() {
    for (const w of this.watchers) this.bookmarkOne(w);
  }

  bookmarkOne(w) {
    if (!w.bookmarks || !w.live) return;
    this.write(w, { type: 'BOOKMARK', object: { kind: RESOURCES[w.resource].kind, apiVersion: apiVersionOf(w.resource), metadata: { resourceVersion: String(this.rv) } } });
  }

  /** Send every open watch an ERROR event carrying `st` (a Status, or the code of one) and end
   * it, as the API server ends a watch whose storage failed. */
  errorWatches(st = 500) {
    for (const w of this.watchers) this.endWithError(w.res, typeof st === 'number' ? status(st, REASONS[st] ?? 'InternalError', 'injected watch error') : st);
    this.watchers.clear();
  }

  /** The next `count` requests of `match` ('list', 'watch' or 'any') answer HTTP `code` (those of
   * `resource` only, when given). */
  failRequests(count, code = 500, match = 'any', status = {}, resource = undefined) { this.failures.push({ count, code, match, status, resource }); }

  /** After the next `n` events written to any watch, that watch's connection is reset. */
  breakWatchAfter(n) { this.breakAfter = n; }

  // ---- HTTP ---------------------------------------------------------------------------------------

  route(url) {
    const p = url.pathname.replace(/\/+$/, '');
    let m;
    if ((m = /^\/api\/v1\/(services|nodes)(?:\/([^/]+))?$/.exec(p))) return { resource: m[1], namespace: null, name: m[2] ?? null };
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/(services)(?:\/([^/]+))?$/.exec(p))) return { resource: m[2], namespace: m[1], name: m[3] ?? null };
    if ((m = /^\/apis\/discovery\.k8s\.io\/v1\/(endpointslices)(?:\/([^/]+))?$/.exec(p))) return { resource: m[1], namespace: null, name: m[2] ?? null };
    if ((m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/(endpointslices)(?:\/([^/]+))?$/.exec(p))) return { resource: m[2], namespace: m[1], name: m[3] ?? null };
    if (this.serveServiceCIDRs && (m = /^\/apis\/networking\.k8s\.io\/v1\/(servicecidrs)(?:\/([^/]+))?$/.exec(p))) return { resource: m[1], namespace: null, name: m[2] ?? null };
    return null;
  }

  send(res, code, body, headers = {}) {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  /** An injected failure: the Status the API server answers with for `code`, `over` merged in;
   * a 429 asks to retry after 1 s unless `over` says otherwise (its filters' default). */
  sendFailure(res, code, over = {}) {
    const base = status(code, REASONS[code] ?? 'InternalError', code === 429 ? 'Too many requests, please try again later.' : 'injected failure');
    if (code === 429) base.details = { retryAfterSeconds: 1 };
    const body = { ...base, ...over };
    const after = body.details?.retryAfterSeconds;
    return this.send(res, code, body, after !== undefined ? { 'retry-after': String(after) } : {});
  }

  handle(req, res, control) {
    const url = new URL(req.url, 'http://double');
    if (control && url.pathname.startsWith('/__double/')) return this.handleControl(req, res, url);
    if (!control) req.socket.requestsSeen = (req.socket.requestsSeen ?? 0) + 1;
    if (!control && this.resetReusedRequests > 0 && req.socket.requestsSeen > 1) {
      // the server closed this kept-alive connection as the request arrived: no answer, a reset
      this.resetReusedRequests--; this.stats.resetReused++;
      return req.socket.destroy();
    }
    if (!control && this.token && req.headers.authorization !== `Bearer ${this.token}`) return this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const r = this.route(url);
    if (!r) { this.stats.notFound++; return this.send(res, 404, status(404, 'NotFound', `the server could not find the requested resource (${req.method} ${url.pathname})`)); }
    if (r.name && RESOURCES[r.resource].namespaced && r.namespace === null) return this.send(res, 404, status(404, 'NotFound', 'namespaced resources need a namespace'));
    if (!control) {
      const verb = verbOf(req.method, r, url);
      const group = RESOURCES[r.resource].group;
      this.stats.requests.push({ verb, group, resource: r.resource });
      if (this.rbac && !this.rbac.some((rule) => grants(rule, verb, group, r.resource))) {
        this.stats.forbidden++;
        const scope = r.namespace ? `in the namespace "${r.namespace}"` : 'at the cluster scope';
        return this.send(res, 403, { ...status(403, 'Forbidden', `${group ? `${r.resource}.${group}` : r.resource}${r.name ? ` "${r.name}"` : ''} is forbidden: User "system:serviceaccount:kube-system:wdp" cannot ${verb} resource "${r.resource}" in API group "${group}" ${scope}`), details: { ...(r.name ? { name: r.name } : {}), group, kind: r.resource } });
      }
    }
    if (req.method === 'GET') {
      const isWatch = ['1', 'true'].includes(url.searchParams.get('watch') ?? '');
      if (!r.name || isWatch) {
        const f = this.failures.find((x) => x.count > 0 && (x.match === 'any' || x.match === (isWatch ? 'watch' : 'list')) && (!x.resource || x.resource === r.resource));
        if (f) { f.count--; return this.sendFailure(res, f.code, f.status); }
      }
      if (isWatch) return this.watch(req, res, r, url);
      if (!r.name && this.holdLists) { this.stats.heldLists++; return; } // accepted, never answered (close() resets it)
      if (r.name) {
        const o = this.state[r.resource].get(keyOf(r.resource, r.namespace, r.name));
        return o ? this.send(res, 200, o) : this.send(res, 404, status(404, 'NotFound', `${r.resource} "${r.name}" not found`));
      }
      return this.list(res, r, url);
    }
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      try {
        if (req.method === 'POST' && !r.name) {
          const o = JSON.parse(body); if (r.namespace) o.metadata = { ...o.metadata, namespace: r.namespace };
          return this.send(res, 201, this.create(r.resource, o));
        }
        if (req.method === 'PUT' && r.name) {
          const o = JSON.parse(body); o.metadata = { ...o.metadata, name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) };
          return this.send(res, 200, this.update(r.resource, o));
        }
        if (req.method === 'DELETE' && r.name) return this.send(res, 200, this.delete(r.resource, r.namespace, r.name));
        return this.send(res, 405, status(405, 'MethodNotAllowed', `${req.method} is not supported here`));
      } catch (e) {
        const code = e.code === 409 ? 409 : e.code === 404 ? 404 : 400;
        return this.send(res, code, status(code, code === 409 ? 'Conflict' : code === 404 ? 'NotFound' : 'BadRequest', e.message));
      }
    });
  }

  handleControl(req, res, url) {
    const what = url.pathname.slice('/__double/'.length);
    if (what === 'stats') return this.send(res, 200, { ...this.stats, rv: this.rv, watchers: this.watchers.size });
    if (req.method !== 'POST') return this.send(res, 405, {});
    if (what === 'compact') this.compact();
    else if (what === 'drop-watches') return this.send(res, 200, { dropped: this.dropWatches() });
    else if (what === 'expire-watches') this.expireWatches();
    else if (what === 'bookmark') this.bookmark();
    else if (what === 'token') this.token = url.searchParams.get('value') || undefined;
    else if (what === 'fail-requests') this.failRequests(Number(url.searchParams.get('count') ?? 1), Number(url.searchParams.get('code') ?? 503), url.searchParams.get('match') ?? 'any');
    else return this.send(res, 404, {});
    return this.send(res, 200, { ok: true });
  }

  /** The resource's objects as of revision `rv` (current state minus the newer history). */
  stateAt(resource, rv) {
    const m = new Map(this.state[resource]);
    for (let i = this.history.length - 1; i >= 0 && this.history[i].rv > rv; i--) {
      const ev = this.history[i];
      if (ev.resource !== resource) continue;
      if (ev.prev) m.set(ev.key, ev.prev); else m.delete(ev.key);
    }
    return m;
  }

  matcher(r, url) {
    const labels = parseLabelSelector(url.searchParams.get('labelSelector'));
    const fields = parseFieldSelector(url.searchParams.get('fieldSelector'));
    return (o) => !!o && (!r.namespace || o.metadata.namespace === r.namespace) && labels(o) && fields(o);
  }

  list(res, r, url) {
    let match;
    try { match = this.matcher(r, url); } catch (e) { return this.send(res, 400, status(400, 'BadRequest', e.message)); }
    const cont = url.searchParams.get('continue');
    const rvParam = url.searchParams.get('resourceVersion') ?? '';
    const limit = this.watchCache && rvParam === '0' ? 0 : Number(url.searchParams.get('limit') || 0);
    let snapshotRv = this.rv, after = null;
    if (cont && rvParam) return this.send(res, 400, status(400, 'BadRequest', 'specifying resource version is not allowed when using continue'));
    if (!cont) this.stats.listFrom[r.resource].push({ resourceVersion: rvParam, limit: Number(url.searchParams.get('limit') || 0) });
    if (!cont && rvParam !== '' && rvParam !== '0') {
      const n = Number(rvParam);
      if (!Number.isInteger(n) || n < 1) return this.send(res, 400, status(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(rvParam)}`));
      if (n > this.rv) {
        return this.send(res, 504, { ...status(504, 'Timeout', `Too large resource version: ${n}, current: ${this.rv}`), details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 } });
      }
      if (limit > 0) { // exactly n (from "etcd")
        if (n < this.compactedRv) {
          this.stats.gone++;
          return this.send(res, 410, status(410, 'Expired', `The resourceVersion for the provided list is too old.`));
        }
        snapshotRv = n;
      } // else not older than n: the newest state
    }
    if (cont) {
      try { ({ rv: snapshotRv, after } = JSON.parse(Buffer.from(cont, 'base64url').toString())); } catch {
        return this.send(res, 400, status(400, 'BadRequest', 'invalid continue token'));
      }
      if (snapshotRv === -1) snapshotRv = this.rv; // the inconsistent token a 410 offered: the newest revision
      else if (snapshotRv < this.compactedRv) {
        this.stats.gone++;
        // (the real server's etcd3 store: a token for the rest of the list at the newest revision)
        const inconsistent = Buffer.from(JSON.stringify({ rv: -1, after })).toString('base64url');
        return this.send(res, 410, { ...status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'), metadata: { continue: inconsistent } });
      }
    } else this.stats.lists++;
    this.stats.listPages++;
    this.stats.byResource[r.resource] = (this.stats.byResource[r.resource] ?? 0) + (cont ? 0 : 1);
    // the sorted snapshot is kept for the pages that follow (a 10k-object list is 20 pages)
    const ck = `${r.resource}@${snapshotRv}`;
    if (this.sortedCache?.key !== ck) this.sortedCache = { key: ck, entries: [...this.stateAt(r.resource, snapshotRv)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) };
    const all = this.sortedCache.entries.filter(([, o]) => match(o));
    const from = after === null ? 0 : all.findIndex(([k]) => k > after);
    const rest = from < 0 ? [] : all.slice(from);
    const page = limit > 0 ? rest.slice(0, limit) : rest;
    const more = limit > 0 && rest.length > limit;
    // list items carry no apiVersion/kind (the list does), as the real server's JSON
    const items = page.map(([, o]) => { const { apiVersion: _a, kind: _k, ...x } = o; return x; });
    const metadata = { resourceVersion: String(snapshotRv) };
    if (more) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: snapshotRv, after: page[page.length - 1][0] })).toString('base64url');
      metadata.remainingItemCount = rest.length - limit;
    }
    this.send(res, 200, { kind: RESOURCES[r.resource].listKind, apiVersion: apiVersionOf(r.resource), metadata, items });
  }

  watch(req, res, r, url) {
    let match;
    try { match = this.matcher(r, url); } catch (e) { return this.send(res, 400, status(400, 'BadRequest', e.message)); }
    this.stats.watches++;
    if (this.holdWatches) { this.stats.held++; return; } // accepted, never answered (close() resets it)
    const rvParam = url.searchParams.get('resourceVersion') ?? '';
    this.stats.watchFrom[r.resource].push(rvParam);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const since = rvParam === '' || rvParam === '0' ? null : Number(rvParam);
    if (since !== null && (!Number.isFinite(since) || since < this.compactedRv)) {
      this.stats.gone++;
      return this.endWithGone(res, rvParam);
    }
    if (this.endWatchesAtOnce) return res.end(); // a server (or proxy) that closes every watch at once
    const we = this.watchErrors;
    if (we && we.count > 0 && (!we.resource || we.resource === r.resource)) {
      we.count--;
      return this.endWithError(res, typeof we.status === 'number' ? status(we.status, REASONS[we.status] ?? 'InternalError', 'injected watch error') : we.status);
    }
    const w = { res, resource: r.resource, match, bookmarks: ['1', 'true'].includes(url.searchParams.get('allowWatchBookmarks') ?? ''), live: false, since: rvParam, sent: 0 };
    this.watchers.add(w);
    const done = () => this.watchers.delete(w);
    res.on('close', done);
    if (since === null) {
      for (const o of this.state[r.resource].values()) if (match(o)) this.write(w, { type: 'ADDED', object: o });
    } else {
      for (const ev of this.history) if (ev.resource === r.resource && ev.rv > since) this.deliver(w, ev);
    }
    w.live = true;
    const timeout = Number(url.searchParams.get('timeoutSeconds') || 0);
    if (timeout > 0) {
      const t = setTimeout(() => { done(); this.endWatch(w); }, timeout * 1000);
      // the watch cache's bookmark right before the timeout: the next watch resumes from now
      const b = timeout > 2 ? setTimeout(() => this.bookmarkOne(w), (timeout - 2) * 1000) : undefined;
      res.on('close', () => { clearTimeout(t); clearTimeout(b); });
    }
  }

  endWithGone(res, rv) {
    this.endWithError(res, status(410, 'Expired', `too old resource version: ${rv} (${this.compactedRv})`));
  }

  endWithError(res, st) {
    res.end(JSON.stringify({ type: 'ERROR', object: st }) + '\n');
  }

  /** End a watch cleanly once what was written to it has gone out. */
  endWatch(w) {
    if (w.pending?.length) w.endWhenWritten = true; else w.res.end();
  }

  /** One history event as this watcher sees it through its filters. */
  deliver(w, ev) {
    const was = ev.prev !== undefined && w.match(ev.prev);
    const is = ev.type !== 'DELETED' && w.match(ev.object);
    if (ev.type === 'DELETED') { if (was) this.write(w, { type: 'DELETED', object: ev.object }); return; }
    if (is) this.write(w, { type: was ? 'MODIFIED' : 'ADDED', object: ev.object });
    // (the watch cache: the previous content, at the event's resourceVersion)
    else if (was) this.write(w, { type: 'DELETED', object: { ...ev.prev, metadata: { ...ev.prev.metadata, resourceVersion: String(ev.rv) } } });
  }

  write(w, ev) {
    if (w.res.destroyed || w.frozen) return;
    const line = JSON.stringify(ev);
    if (this.cutNextEvent && ev.type !== 'BOOKMARK') {
      // half a line, then the connection is reset: what a client sees of an event in flight
      this.cutNextEvent = false;
      this.watchers.delete(w);
      const bytes = Buffer.from(line + '\n');
      w.res.write(bytes.subarray(0, bytes.length >> 1), () => { w.res.socket?.destroy(); w.res.destroy(); });
      return;
    }
    if (this.garbleNextEvent && ev.type !== 'BOOKMARK') { this.garbleNextEvent = false; w.res.write(line.slice(0, line.length >> 1) + '\n'); } else if (this.splitEventsBytes > 0) this.writeSplit(w, Buffer.from(line + '\n')); else w.res.write(line + '\n');
    w.sent++;
    if (this.breakAfter !== undefined && --this.breakAfter <= 0) {
      this.breakAfter = undefined;
      this.watchers.delete(w);
      // reset the connection mid-stream: what this watcher has not read yet is lost with it
      w.res.socket?.destroy(); w.res.destroy();
    }
  }

  /** The line written in pieces of `splitEventsBytes`, one per turn of the event loop, after the
   * pieces of the lines before it: the client reads lines (and UTF-8 characters) cut anywhere. */
  writeSplit(w, bytes) {
    const n = this.splitEventsBytes;
    w.pending ??= [];
    for (let i = 0; i < bytes.length; i += n) w.pending.push(bytes.subarray(i, i + n));
    if (w.pumping) return;
    w.pumping = true;
    const pump = () => {
      if (w.res.destroyed || w.res.writableEnded) { w.pending = []; w.pumping = false; return; }
      const piece = w.pending.shift();
      if (!piece) { w.pumping = false; if (w.endWhenWritten) w.res.end(); return; }
      w.res.write(piece);
      setImmediate(pump);
    };
    pump();
  }
}

// ---- command line (a child process in a network namespace) ---------------------------------------
if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (n, d) => { const i = process.argv.indexOf(n); return i > 0 ? process.argv[i + 1] : d; };
  const [host, port] = arg('--listen', '127.0.0.1:0').split(/:(?=\d+$)/);
  const rbacFile = arg('--rbac');
  const rbac = rbacFile ? parseYaml(readFileSync(rbacFile, 'utf8')).rules : undefined;
  const tlsDir = arg('--tls');
  const tls = tlsDir ? { key: readFileSync(`${tlsDir}/key.pem`), cert: readFileSync(`${tlsDir}/cert.pem`) } : undefined;
  const d = new ApiServerDouble({ bookmarkIntervalMs: Number(arg('--bookmark-ms', '60000')), serviceCIDRs: !process.argv.includes('--no-servicecidrs'), rbac, tls, token: arg('--token') });
  await d.listen(host, Number(port));
  const control = arg('--control');
  if (control) await d.listenControl(control);
  // writes through the control socket use the same REST paths (POST/PUT/DELETE)
  console.log(JSON.stringify({ url: d.url }));
  const stop = () => d.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
