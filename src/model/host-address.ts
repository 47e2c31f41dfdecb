// Addresses one host can own. Apart from the schema (zod, the compiler's types) so that the
// daemon's config check (src/daemon/config.ts), which runs before the forwarding workers are
// spawned, loads nothing more than it needs.
import { unsloppy } from './sloppy-ip.js';
import { ipv4Value, parseAddr } from '../util/addr.js';

/** Why `given` (an address of either family) cannot be one host's own address — a node address,
 * a masquerade source — or null: the unspecified address, the IPv4 broadcast address or a
 * multicast address is no host's (a packet from it is dropped by every peer, one to it reaches
 * every host or none). */
export function notOneHostProblem(given: string): string | null {
  const s = ipv4Value(given) >= 0 ? given : unsloppy(given);
  let a;
  try { a = parseAddr(s); } catch { return null; } // (not an address: its own check says so)
  const b = a.family === 4 ? a.bytes.subarray(0, 4) : a.bytes;
  if (b.every((x) => x === 0)) return `may not be unspecified (${a.family === 4 ? '0.0.0.0' : '::'})`;
  if (a.family === 4 && b.every((x) => x === 255)) return 'may not be the broadcast address (255.255.255.255)';
  if (a.family === 4 ? b[0] >= 224 && b[0] <= 239 : b[0] === 0xff) return `may not be a multicast address (${a.family === 4 ? '224.0.0.0/4' : 'ff00::/8'})`;
  return null;
}

