// The control API's and healthz's listen addresses: what the config accepts and the defaults. Apart
// from the server (Fastify) so the daemon's configuration loads without it: `wdp start` spawns its
// forwarding workers before the control plane's modules are loaded (docs/running.md, restarts).
import { isIP } from 'node:net';
import { isLoopbackHost } from './request-guards.js';

export const DEFAULT_LISTEN = '127.0.0.1:9440';
export const DEFAULT_HEALTHZ_LISTEN = '127.0.0.1:10256';

export type Listen = { host: string; port: number } | { path: string };

/** The longest unix socket path the kernel takes (sun_path holds 108 bytes, the last a NUL). */
const MAX_SOCKET_PATH = 107;
/** A host to listen on: an IP address, or a name (localhost, a DNS name) to resolve. */
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

export function parseListen(s: string): Listen {
  const bad = (why: string) => new Error(`invalid listen address ${JSON.stringify(s)}: ${why}`);
  if (s.startsWith('unix:') || s.startsWith('/') || s.startsWith('./')) {
    const path = s.startsWith('unix:') ? s.replace(/^unix:(\/\/)?/, '') : s;
    // (refused here, by the config's check, rather than by listen() once the ports are open)
    if (!path) throw bad('expected unix:/path (the path is empty)');
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw bad(`a unix socket path is at most ${MAX_SOCKET_PATH} bytes`);
    if (path.includes('\0')) throw bad('a unix socket path has no NUL character');
    return { path };
  }
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw bad('expected host:port, [v6]:port or unix:/path');
  const port = Number(m[2]);
  if (port > 65535) throw bad('port out of range');
  if (m[1] && isIP(m[1]) === 0 && !HOST_NAME.test(m[1])) throw bad('the host is no IP address or host name');
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
