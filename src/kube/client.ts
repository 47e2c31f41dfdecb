// Credentials and plain reads against the Kubernetes API server. Credentials come from
// @kubernetes/client-node's KubeConfig: the pod's service account (in-cluster: token file, CA,
// KUBERNETES_SERVICE_HOST/PORT) by default, or a kubeconfig file. The library re-reads the token
// file every 60 s (as client-go), so rotated service-account tokens are picked up without a restart.
//
// Lists are read as raw JSON rather than through the generated API classes: the watch stream
// delivers raw objects, and the model validates raw Kubernetes objects, so list and watch hand
// the same shapes on (the generated classes turn timestamps into Dates and cost ~3x the parse).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; [k: string]: unknown };
  [k: string]: unknown;
}
export interface KubeList { apiVersion?: string; kind?: string; metadata?: { resourceVersion?: string; continue?: string }; items: KubeObject[] }

/** An HTTP error from the API server, with the Status object's reason when it sent one. */
export class KubeApiError extends Error {
  constructor(message: string, readonly statusCode: number, readonly reason?: string) { super(message); this.name = 'KubeApiError'; }
}

/** `inClusterRoot` prefixes the service account's files (/var/run/secrets/...): tests only. */
export function loadKubeConfig(opts: { kubeconfig?: string; inClusterRoot?: string }): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else {
    if (!process.env.KUBERNETES_SERVICE_HOST) {
      throw new Error('not running in a cluster (KUBERNETES_SERVICE_HOST is not set): give kubernetes.kubeconfig (or --kubeconfig)');
    }
    kc.loadFromCluster(opts.inClusterRoot);
  }
  if (!kc.getCurrentCluster()) throw new Error(`no current cluster in ${opts.kubeconfig ?? 'the in-cluster config'}`);
  return kc;
}

const REQUEST_TIMEOUT_MS = 60_000;
const MAX_BODY = 512 * 1024 * 1024;

/** GET `path` (with its query) and parse the JSON body. Non-2xx answers throw KubeApiError. */
export async function getJson(kc: KubeConfig, path: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
  const server = kc.getCurrentCluster()!.server;
  const url = new URL(server.replace(/\/+$/, '') + path);
  const opts: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, opts, (res: IncomingMessage) => {
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
        if (code < 200 || code > 299) {
          const st = body as { message?: string; reason?: string } | undefined;
          reject(new KubeApiError(`GET ${path}: ${code} ${st?.message ?? text.slice(0, 200)}`, code, st?.reason));
        } else if (body === undefined) reject(new Error(`GET ${path}: the body is not JSON`));
        else resolve(body);
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface ListOptions { labelSelector?: string; fieldSelector?: string; limit?: number }

/** A consistent list in pages of `limit` (`continue` tokens), like client-go's pager. A continue
 * token that expired between pages (410 Gone: the snapshot it reads was compacted away) restarts
 * the list from the first page, at a new snapshot; the resourceVersion returned is that of the
 * snapshot every page came from, which the watch then starts after. */
export async function listAll(kc: KubeConfig, path: string, o: ListOptions = {}): Promise<KubeList> {
  for (let attempt = 0; ; attempt++) {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv = '';
    try {
      do {
        const q = new URLSearchParams();
        if (o.labelSelector) q.set('labelSelector', o.labelSelector);
        if (o.fieldSelector) q.set('fieldSelector', o.fieldSelector);
        if (o.limit) q.set('limit', String(o.limit));
        if (cont) q.set('continue', cont);
        const page = await getJson(kc, `${path}${q.toString() ? `?${q}` : ''}`) as KubeList;
        if (!page || !Array.isArray(page.items ?? [])) throw new Error(`GET ${path}: not a list`);
        for (const it of page.items ?? []) items.push(it);
        rv = page.metadata?.resourceVersion ?? '';
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return { metadata: { resourceVersion: rv }, items };
    } catch (e) {
      if (e instanceof KubeApiError && e.statusCode === 410 && cont !== undefined && attempt < 3) continue;
      throw e;
    }
  }
}
