// The addresses the daemon will listen on, checked free before its start takes anything. The
// control API listens late in a start — after the ports took their interfaces, the workers started
// and the state was restored — so a second wdp (another state directory: its state lock does not
// see the first) configured with the first's API address used to take the interfaces and fail
// only then; and on a unix socket it did not fail at all: the API server removes a socket left at
// its path as a previous run's, and took the running daemon's API away from it. Checked here, at
// the start's beginning: a TCP address by binding it (and closing it again at once: the server
// binds it later, a start racing for it in between fails there as before); a unix socket path by
// connecting to it — an answer is a live listener (refused: a dead run's, which the server
// replaces); a path that is no socket is refused as the server would. Cost: a bind or a connect
// per address (the API, healthz, kube-proxy's metrics), well under a millisecond each.
import { existsSync, lstatSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { parseListen } from '../api/listen.js';
import { parseBindAddress } from '../kube/listen.js';
import type { DaemonConfig } from './config.js';

/** An address the daemon listens on is another process's. */
export class AddressInUseError extends Error {
  constructor(message: string) { super(message); this.name = 'AddressInUseError'; }
}

/** The listen addresses of `cfg`, each with the config field that names it. */
function addressesOf(cfg: DaemonConfig): Array<{ field: string; value: string; listen: { host: string; port: number; everyAddress?: boolean } | { path: string } }> {
  const out: ReturnType<typeof addressesOf> = [{ field: 'api.listen', value: cfg.api.listen, listen: parseListen(cfg.api.listen) }];
  // (in a cluster the healthz is kube-proxy's, at kubernetes.healthzBindAddress)
  if (cfg.api.healthz !== 'off' && !cfg.kubernetes) out.push({ field: 'api.healthz', value: cfg.api.healthz, listen: parseListen(cfg.api.healthz) });
  const k = cfg.kubernetes as { healthzBindAddress?: string; metricsBindAddress?: string } | undefined;
  for (const field of ['healthzBindAddress', 'metricsBindAddress'] as const) {
    const v = k?.[field];
    if (!v || v === 'off') continue;
    const b = parseBindAddress(v);
    out.push({ field: `kubernetes.${field}`, value: v, listen: { ...b, everyAddress: b.host === '0.0.0.0' || b.host === '::' } });
  }
  return out;
}

/** Whether a live process listens on unix socket `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    const done = (v: boolean) => { clearTimeout(t); c.destroy(); resolve(v); };
    // (a listener that accepts and never answers is live all the same: connected is enough)
    const t = setTimeout(() => done(false), 2000);
    c.on('connect', () => done(true));
    c.on('error', () => done(false));
  });
}

/** Why TCP address `l` cannot be bound now (in use, not an address of this host), or null. */
function bindProblem(l: { host: string; port: number; everyAddress?: boolean }): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    // (as the listeners bind it: kube's 0.0.0.0 / :: is every address of both families, src/kube/listen.ts)
    s.listen(l.everyAddress ? { port: l.port } : { host: l.host, port: l.port }, () => s.close(() => resolve(null)));
  });
}

/** Throws AddressInUseError naming every address of `cfg` another process listens on. */
export async function checkListenAddresses(cfg: DaemonConfig): Promise<void> {
  const problems: string[] = [];
  for (const a of addressesOf(cfg)) {
    const l = a.listen;
    if ('path' in l) {
      if (!existsSync(l.path)) continue;
      if (!lstatSync(l.path).isSocket()) { problems.push(`${a.field} ${a.value}: ${l.path} exists and is not a socket`); continue; }
      if (await listening(l.path)) problems.push(`${a.field} ${a.value}: another process listens on that socket (another wdp, with another stateDir?)`);
      continue;
    }
    if (l.port === 0) continue;   // (any free port)
    const e = await bindProblem(l);
    if (e?.code === 'EADDRINUSE') problems.push(`${a.field} ${a.value}: address in use (EADDRINUSE: another wdp, with another stateDir, or another program listens there)`);
    // another failure (EADDRNOTAVAIL, a name that does not resolve) is the listener's to report, as before
  }
  if (problems.length) throw new AddressInUseError(`cannot listen where the config says, nothing was changed: ${problems.join('; ')}`);
}
