// Plain node:http listeners for the kube-proxy-compatible endpoints (healthz, metrics, service
// health checks): a handful of fixed routes each, probed by kubelets and load balancers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** "host:port", "[v6]:port" or ":port" (every address, as kube-proxy's bind addresses). */
export function parseBindAddress(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new Error(`invalid bind address ${JSON.stringify(s)}: expected host:port, [v6]:port or :port`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

export interface HttpListener { readonly server: Server; readonly port: number; readonly url: string; close(): Promise<void> }

export async function listenHttp(bind: string | { host: string; port: number }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HttpListener> {
  const { host, port } = typeof bind === 'string' ? parseBindAddress(bind) : bind;
  const server = createServer((req, res) => {
    try { handler(req, res); } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${(e as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server, port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
