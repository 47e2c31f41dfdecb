// System tools are looked up in the system directories only, never through PATH: under `npm test`
// / `npx`, PATH starts with node_modules/.bin, and an npm package there ships a binary called
// `nft` (@vercel/nft's CLI) that happily "loads" a ruleset by doing nothing. The same goes for any
// other name an npm package might claim.
import { accessSync, constants, existsSync } from 'node:fs';

export const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];
const resolved = new Map<string, string | null>();

/** Absolute path of a system tool, or null. `node` is this very Node binary. */
export function systemTool(cmd: string): string | null {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  if (cmd === 'node') return process.execPath;
  if (!resolved.has(cmd)) {
    let found: string | null = null;
    for (const d of SYSTEM_DIRS) {
      const p = `${d}/${cmd}`;
      try { accessSync(p, constants.X_OK); found = p; break; } catch { /* not here */ }
    }
    resolved.set(cmd, found);
  }
  return resolved.get(cmd) ?? null;
}
