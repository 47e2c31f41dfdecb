// The control API's and healthz's listen addresses: what the config accepts and the defaults. Apart
// from the server (Fastify) so the daemon's configuration loads without it: `wdp start` spawns its
// forwarding workers before the control plane's modules are loaded (docs/running.md, restarts).
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
