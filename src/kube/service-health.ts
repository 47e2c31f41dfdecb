// kube-proxy's per-service health checks (pkg/proxy/healthcheck, ServiceHealthServer): for every
// LoadBalancer Service with externalTrafficPolicy Local, an HTTP server on its
// healthCheckNodePort answering 200 while this node has ready local endpoints for it (and the
// proxy itself is healthy), 503 otherwise, so the cloud load balancer sends only to nodes that
// can serve the traffic locally. Body as kube-proxy's, in its layout (tab-indented, no trailing
// newline — scripts grep for `"localEndpoints": 0`):
//   {"service": {"namespace": ..., "name": ...}, "localEndpoints": N, "serviceProxyHealthy": bool}
// Every path and method gets that answer: kube-proxy's handler has no routes either.
//
// The listeners are the host's (wdp runs with hostNetwork in a cluster), on `bindHost`
// (default every address, as kube-proxy when nodePortAddresses match all). A port that cannot be
// opened is logged and retried at the next sync; the rest keep serving.
import type { Logger } from 'pino';
import { listenHttp, type HttpListener } from './listen.js';

interface Instance { port: number; listener: HttpListener | null; localEndpoints: number }

export class ServiceHealthServers {
  private readonly services = new Map<string, Instance>();
  private readonly opening = new Map<string, Promise<void>>();
  /** The last error opening a service's port: logged once, not at every sync's retry. */
  private readonly failed = new Map<string, string>();

  constructor(private readonly bindHost: string, private readonly proxyHealthy: () => boolean, private readonly log: Logger) {}

  /** Makes the set of servers equal `want` (service key "ns/name" -> port, local endpoint count). */
  async sync(want: Map<string, { port: number; localEndpoints: number }>): Promise<void> {
    await Promise.all(this.opening.values());
    for (const [key, inst] of this.services) {
      const w = want.get(key);
      if (!w || w.port !== inst.port) {
        this.services.delete(key);
        if (inst.listener) await inst.listener.close();
        this.log.info({ service: key, port: inst.port }, 'closed service health check');
      }
    }
    for (const key of this.failed.keys()) if (!want.has(key)) this.failed.delete(key);
    for (const [key, w] of want) {
      const inst = this.services.get(key);
      if (inst?.listener) { inst.localEndpoints = w.localEndpoints; continue; }
      const next: Instance = { port: w.port, listener: null, localEndpoints: w.localEndpoints };
      this.services.set(key, next);
      const [ns, name] = key.split('/');
      const p = listenHttp({ host: this.bindHost, port: w.port }, (_req, res) => {
        const cur = this.services.get(key);
        const n = cur?.localEndpoints ?? 0;
        const healthy = this.proxyHealthy();
        res.writeHead(n > 0 && healthy ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' })
          .end(JSON.stringify({ service: { namespace: ns, name }, localEndpoints: n, serviceProxyHealthy: healthy }, null, '\t'));
      }).then((l) => {
        if (this.services.get(key) === next) { next.listener = l; this.log.info({ service: key, port: w.port }, 'opened service health check'); }
        else void l.close();
        this.failed.delete(key);
      }, (e) => {
        if (this.services.get(key) === next) this.services.delete(key); // retried at the next sync
        const msg = `${w.port}: ${(e as Error).message}`;
        if (this.failed.get(key) !== msg) this.log.warn({ service: key, port: w.port, error: (e as Error).message }, 'cannot open the service health check port (retried at every sync)');
        this.failed.set(key, msg);
      }).finally(() => this.opening.delete(key));
      this.opening.set(key, p);
    }
    await Promise.all(this.opening.values());
  }

  ports(): Array<{ service: string; port: number; localEndpoints: number }> {
    return [...this.services].filter(([, i]) => i.listener).map(([service, i]) => ({ service, port: i.listener!.port, localEndpoints: i.localEndpoints }));
  }

  async close(): Promise<void> {
    await Promise.all(this.opening.values());
    const all = [...this.services.values()];
    this.services.clear();
    await Promise.all(all.map((i) => i.listener?.close()));
  }
}
