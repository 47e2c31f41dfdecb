// Plain node:http listeners for the kube-proxy-compatible endpoints (healthz, metrics, service
// health checks): a handful of fixed routes each, probed by kubelets and load balancers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';

/** "host:port", "[v6]:port" or ":port" (every address of both families, as kube-proxy's bind
 * addresses; 0.0.0.0 and [::] mean the same, see listenHttp). */
export function parseBindAddress(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  // the host an IP address, as kube-proxy validates its bind addresses (a name would be resolved
  // only when the listener opens, after the ports)
  if (!m || Number(m[2]) > 65535 || (m[1] && isIP(m[1]) === 0)) throw new Error(`invalid bind address ${JSON.stringify(s)}: expected host:port, [v6]:port or :port, the host an IP address`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

/** Go's text responses (http.Error, http.NotFound, the healthz handlers): kube-proxy's listeners
 * answer with these headers. */
export const GO_TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' } as const;

/** Go's http.NotFound, what kube-proxy's muxes answer for a path they do not serve. */
export function notFound(res: ServerResponse): void {
  res.writeHead(404, GO_TEXT_HEADERS).end('404 page not found\n');
}

export interface HttpListener { readonly server: Server; readonly port: number; readonly url: string; close(): Promise<void> }

/** `family` binds that family only: 0.0.0.0 an IPv4 socket, :: an IPv6-only one (a service
 * health check's per-family listeners, service-health.ts). */
export async function listenHttp(bind: string | { host: string; port: number; family?: 4 | 6 }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HttpListener> {
  const { host, port } = typeof bind === 'string' ? parseBindAddress(bind) : bind;
  const family = typeof bind === 'string' ? undefined : bind.family;
  const server = createServer((req, res) => {
    try { handler(req, res); } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${(e as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 5000;
  // Go's net.Listen("tcp", "0.0.0.0:p") — kube-proxy's — takes every address of both families;
  // Node's 0.0.0.0 is IPv4 only, and a load balancer or kubelet probing the node's IPv6 address
  // would be refused. Without a host Node opens a dual-stack [::] socket (0.0.0.0 where the host
  // has no IPv6). A specific address is bound as given.
  const everyAddress = family === undefined && (host === '0.0.0.0' || host === '::');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(everyAddress ? { port } : { port, host, ...(family === 6 ? { ipv6Only: true } : {}) }, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server, port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
