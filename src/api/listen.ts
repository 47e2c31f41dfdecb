// The control API's and healthz's listen addresses: what the config accepts and the defaults. Apart
// from the server (Fastify) so the daemon's configuration loads without it: `wdp start` spawns its
// forwarding workers before the control plane's modules are loaded (docs/running.md, restarts).
import { isLoopbackHost } from './request-guards.js';

export const DEFAULT_LISTEN = '127.0.0.1:9440';
export const DEFAULT_HEALTHZ_LISTEN = '127.0.0.1:10256';

export type Listen = { host: string; port: number } | { path: string };

export function parseListen(s: string): Listen {
  if (s.startsWith('unix:')) return { path: s.replace(/^unix:(\/\/)?/, '') };
  if (s.startsWith('/') || s.startsWith('./')) return { path: s };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new Error(`invalid listen address ${JSON.stringify(s)}: expected host:port, [v6]:port or unix:/path`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`invalid listen address ${JSON.stringify(s)}: port out of range`);
  return { host: m[1] || '127.0.0.1', port };
}

/** Why the control API may not listen at `listen` without a token — what the address "is" — or
 * null when it may (`token` given, a loopback address, or a unix socket, which file modes guard).
 * The one rule: the config check says it before any port opens, and createControlPlane (which
 * also runs without a config file) refuses to listen. */
export function tokenRequiredReason(listen: Listen, token: string | undefined): string | null {
  if (!('host' in listen) || token || isLoopbackHost(listen.host)) return null;
  return 'is not a loopback address or a unix socket: anyone who can reach it could change the dataplane';
}
