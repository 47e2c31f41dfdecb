// IP address syntax as the Kubernetes API server accepts it. Kubernetes parses IPv4 with
// netutils.ParseIPSloppy (Go's pre-1.17 parser): a part may have leading zeros and is read as
// DECIMAL, so "10.96.250.011" is 10.96.250.11 — never octal. Objects stored before the stricter
// validation carry such addresses and kube-proxy programs them; node's isIP refuses them. The
// model accepts them here and keeps the canonical decimal form (schema.ts canon()).
import { isIP as strictIsIP } from 'node:net';

/** The canonical dotted quad of an IPv4 address with decimal parts of any number of digits
 * (leading zeros allowed, each part <= 255), or null when s is not one. */
export function sloppyIPv4(s: string): string | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,32}$/.test(p)) return null;
    const v = Number.parseInt(p, 10);   // base 10 always: "011" is eleven
    if (v > 255) return null;
    out.push(v);
  }
  return out.join('.');
}

/** 4 or 6 like node's isIP, also 4 for an IPv4 address with leading zeros; 0 otherwise. */
export function isIP(s: string): number {
  const f = strictIsIP(s);
  if (f !== 0) return f;
  return s.includes('.') && !s.includes(':') && sloppyIPv4(s) !== null ? 4 : 0;
}

/** s with a leading-zero IPv4 address (or the address part of an IPv4 CIDR) in canonical
 * decimal form; anything else unchanged. */
export function unsloppy(s: string): string {
  const slash = s.indexOf('/');
  const a = slash < 0 ? s : s.slice(0, slash);
  if (a.includes(':') || strictIsIP(a) !== 0) return s;
  const c = sloppyIPv4(a);
  return c === null ? s : slash < 0 ? c : c + s.slice(slash);
}
