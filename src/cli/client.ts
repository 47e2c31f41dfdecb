// Minimal HTTP client for the control API: TCP or unix socket, bearer token, JSON/text bodies.
import { request, type ClientRequest } from 'node:http';

export const DEFAULT_SERVER = 'http://127.0.0.1:9440';

export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly body: unknown) { super(message); this.name = 'ApiError'; }
}

/** The client gave up waiting for an answer (status 0, as a daemon not reached): the daemon may be
 * busy with the request, which it then still completes. */
export class ApiTimeoutError extends ApiError {
  constructor(server: string, timeoutMs: number) {
    super(`no answer from the wdp API at ${server} within ${timeoutMs / 1000} s (the daemon is busy or stuck): a change sent may still be applied — check with wdp status or wdp get`, 0, null);
    this.name = 'ApiTimeoutError';
  }
}

/** Default per-request timeout of the client. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  server: string; token?: string; timeoutMs?: number;
  /** Where `server` was given, as errors about it name it (default `--server`). */
  serverFrom?: '--server' | 'WDP_SERVER';
  /** Called with the text of each `Warning: 299 - "text"` header of an answer (how the daemon, like
   * the Kubernetes API server, says that a change may not last). */
  onWarning?: (text: string) => void;
}

/** The texts of Warning headers (`299 - "text"`, RFC 7234; several may be joined by commas). */
export function warningTexts(header: string | string[] | undefined): string[] {
  const all = Array.isArray(header) ? header.join(', ') : header ?? '';
  return [...all.matchAll(/\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1'));
}

/** Items a paged GET asks for at a time: bounded bodies (a few MB at most) and few round trips. */
export const CLIENT_PAGE = 5000;
/** The lists a paged body carries: `items`, or a counters page's `services` and `backends`. */
const PAGED_LISTS = ['items', 'services', 'backends'];

type Paged = Record<string, unknown> & { metadata?: { continue?: string; remainingItemCount?: number } };

/** The daemon's message, with what to do about a 401 when no token was sent. */
function withHint(msg: string, status: number, sentToken: boolean): string {
  return status === 401 && !sentToken ? `${msg} (the API needs a token: --token or WDP_TOKEN)` : msg;
}

/** Characters of a request body written at a time (a large one: a 10k-Service apply is 13 MB). */
export const BODY_SLICE = 1 << 18;

/** Writes `body` and ends `req`. A large body goes in slices, each when the socket took the last:
 * the request's head leaves as soon as the connection is up and the server reads (and parses)
 * the first bytes while the rest is being encoded. Written whole, the string was encoded (and
 * concatenated with the head) before anything was sent: at 13 MB ~20-40 ms the server waited.
 * A slice never ends between the two halves of a surrogate pair (each half alone would be
 * encoded as U+FFFD, and the body would no longer match its Content-Length). */
export function writeBody(req: ClientRequest, body: string): void {
  let at = 0;
  const more = (): void => {
    while (at < body.length) {
      let end = Math.min(body.length, at + BODY_SLICE);
      if (end < body.length && isHighSurrogate(body.charCodeAt(end - 1))) end--;
      const ok = req.write(body.slice(at, end));
      at = end;
      if (!ok && at < body.length) { req.once('drain', more); return; }
    }
    req.end();
  };
  more();
}

/** A 404 in the Status shape from the daemon's healthz listener (api.healthz, beside the API:
 * the address a person who just curl'ed /healthz gives --server), not from the API: the API's own
 * "no route" ends by pointing at docs/api.md (a wdp without a route the CLI asks for: shown as it is). */
function notApiRoute(status: number, message: string): boolean {
  return status === 404 && message.startsWith('no route ') && !message.endsWith('see docs/api.md');
}

function isHighSurrogate(c: number): boolean { return c >= 0xd800 && c <= 0xdbff; }

export class ApiClient {
  private readonly socketPath?: string;
  private readonly host?: string;
  private readonly port?: number;

  constructor(private readonly opts: ClientOptions) {
    // (Node refuses such a header only when the request is sent, naming no option)
    if (opts.token !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(opts.token)) throw new ApiError('the token (--token or WDP_TOKEN) holds characters an HTTP header cannot carry (a newline?)', 0, null);
    const s = opts.server;
    const from = opts.serverFrom ?? '--server';
    if (s.startsWith('unix:')) {
      this.socketPath = s.replace(/^unix:(\/\/)?/, '');
      if (!this.socketPath) throw new ApiError(`invalid ${from} ${JSON.stringify(s)}: expected unix:/path`, 0, null);
    } else if (s.startsWith('/')) this.socketPath = s;
    else {
      const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1];
      if (scheme && !/^https?$/i.test(scheme)) throw new ApiError(`invalid ${from} ${JSON.stringify(s)}: only http:// and unix: are supported`, 0, null);
      let u: URL;
      try { u = new URL(/^https?:\/\//i.test(s) ? s : `http://${s}`); } catch { throw new ApiError(`invalid ${from} ${JSON.stringify(s)}: expected http://host:port or unix:/path`, 0, null); }
      if (u.protocol !== 'http:') throw new ApiError(`invalid ${from} ${JSON.stringify(s)}: only http:// and unix: are supported`, 0, null);
      this.host = u.hostname.replace(/^\[|\]$/g, '');
      this.port = Number(u.port || 80);
    }
  }

  private get timeoutMs(): number { return this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS; }

  /** A request's error: ours (a timeout, an answer's error) as it is, else the daemon not reached. */
  private unreachable(e: NodeJS.ErrnoException): ApiError {
    if (e instanceof ApiError) return e;
    // the daemon may well be running: its socket (mode 0600) or directory is not this user's
    if (this.socketPath && (e.code === 'EACCES' || e.code === 'EPERM')) {
      return new ApiError(`cannot open the wdp API socket ${this.socketPath} (${e.code}: permission denied): it is the daemon's user's, mode 0600 — run wdp as that user (root: sudo node bin/wdp.js ...)`, 0, null);
    }
    return new ApiError(
      `cannot reach the wdp API at ${this.opts.server} (${e.code ?? e.message}): is the daemon running? (set --server or WDP_SERVER)`, 0, null);
  }

  /** An answer no wdp API gives (a status without the API's JSON error, a body that is not JSON):
   * what answered is another server on that address — a healthz or metrics port, a web server. */
  private notWdp(method: string, path: string, status: number): string {
    return `${this.opts.server} is not the wdp control API (${method} ${path.split('?')[0]} answered HTTP ${status}, not as the wdp API answers): check --server or WDP_SERVER (wdp start logs the address as "control API listening")`;
  }

  /** An answer that broke off (the daemon stopped or was killed while answering). */
  private cutShort(e: NodeJS.ErrnoException): ApiError {
    return new ApiError(`the wdp API at ${this.opts.server} broke off its answer (${e.code ?? e.message}): did the daemon stop? (wdp status)`, 0, null);
  }

  /** GETs every page of a paged route (following `metadata.continue`) and returns the first page's
   * body with the later pages' items appended: what an unpaged GET returned. */
  async getAll(path: string): Promise<Paged> {
    const sep = path.includes('?') ? '&' : '?';
    const first = await this.call('GET', `${path}${sep}limit=${CLIENT_PAGE}`) as Paged;
    let page = first;
    // bounded: a list that keeps growing while it is read still ends
    for (let n = 0; page.metadata?.continue && n < 10_000; n++) {
      page = await this.call('GET', `${path}${sep}limit=${CLIENT_PAGE}&continue=${encodeURIComponent(page.metadata.continue)}`) as Paged;
      for (const k of PAGED_LISTS) {
        const all = first[k], more = page[k];
        if (Array.isArray(all) && Array.isArray(more)) for (const x of more) all.push(x);
      }
    }
    if (first.metadata) first.metadata = {};
    return first;
  }

  async call(method: string, path: string, body?: string, contentType = 'application/json'): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (body !== undefined) { headers['content-type'] = contentType; headers['content-length'] = String(Buffer.byteLength(body)); }
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ method, path, headers, socketPath: this.socketPath, host: this.host, port: this.port, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e: NodeJS.ErrnoException) => reject(this.cutShort(e)));
        if (this.opts.onWarning) for (const w of warningTexts(res.headers.warning)) this.opts.onWarning(w);
      });
      req.on('timeout', () => req.destroy(new ApiTimeoutError(this.opts.server, this.timeoutMs)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(this.unreachable(e)));
      if (body === undefined) req.end(); else writeBody(req, body);
    });
    let parsed: unknown = text;
    let json = false;
    if (text && (text.startsWith('{') || text.startsWith('['))) { try { parsed = JSON.parse(text); json = true; } catch { /* keep text */ } }
    if (status >= 400) {
      const st = parsed as { message?: string; details?: { causes?: Array<{ message: string }> } };
      const causes = st?.details?.causes?.map((c) => c.message) ?? [];
      const msg = causes.length ? causes.join('\n') : (typeof st?.message === 'string' && !notApiRoute(status, st.message) ? st.message : this.notWdp(method, path, status));
      throw new ApiError(withHint(msg, status, !!this.opts.token), status, parsed);
    }
    // every answer of the API is JSON (or empty): anything else is another server on that address
    if (text && !json) throw new ApiError(this.notWdp(method, path, status), status, text);
    return parsed;
  }

  /** A request whose answer streams (live trace NDJSON, capture pcap): `onData` gets each chunk
   * of a 2xx body of `mediaType` as it arrives; no timeout once the answer started (the server bounds it). */
  async stream(method: string, path: string, body: string, mediaType: string, onData: (chunk: Buffer) => void): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    await new Promise<void>((resolve, reject) => {
      const req = request({ method, path, headers, socketPath: this.socketPath, host: this.host, port: this.port, timeout: this.timeoutMs }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let msg = this.notWdp(method, path, status);
            try { const j = JSON.parse(text) as { message?: string }; if (typeof j.message === 'string' && !notApiRoute(status, j.message)) msg = j.message; } catch { /* not JSON */ }
            reject(new ApiError(withHint(msg, status, !!this.opts.token), status, text));
          });
          return;
        }
        if ((res.headers['content-type'] ?? '').split(';')[0].trim() !== mediaType) {
          res.resume();
          reject(new ApiError(this.notWdp(method, path, status), status, null));
          req.destroy();
          return;
        }
        req.setTimeout(0);
        res.on('data', (c: Buffer) => {
          try { onData(c); } catch (e) {
            // the reader of our output went away (`wdp capture -w - | tcpdump -c 5`): the stream is
            // done, not the daemon unreachable; closing the request ends the daemon's session
            if ((e as NodeJS.ErrnoException).code === 'EPIPE') { resolve(); req.destroy(); return; }
            // our side failed (the output file cannot be written): that error, not "cannot reach
            // the daemon" (what the request's error event reports); the session ends with the request
            reject(e as Error);
            req.destroy();
          }
        });
        res.on('end', () => resolve());
        res.on('error', (e: NodeJS.ErrnoException) => reject(this.cutShort(e)));
      });
      req.on('timeout', () => req.destroy(new ApiTimeoutError(this.opts.server, this.timeoutMs)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(this.unreachable(e)));
      req.write(body);
      req.end();
    });
  }
}
