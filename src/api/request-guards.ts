// Requests a browser could make on a user's behalf are refused before routing: a web page open on
// the node can POST text/plain or a form to http://127.0.0.1:9440 without a CORS preflight (CSRF),
// and a name the attacker controls can be re-pointed at 127.0.0.1 (DNS rebinding: the Host header
// then names the attacker's domain). wdp's clients (the CLI, kube watchers, curl) send no Origin,
// send JSON or YAML, and name the address they connect to.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

/** Body media types the API parses. */
const BODY_TYPES = new Set(['application/json', 'application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/** Whether `host` (a listen address or a Host header's name) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Why a request must be refused for where it comes from, or null. `listenHost`: the TCP listen
 * address when the Host header is to be checked (no token configured), else null. */
export function checkOrigin(headers: IncomingHttpHeaders, listenHost: string | null): string | null {
  if (headers.origin !== undefined) {
    return `requests with an Origin header are refused (this API is not for browsers; Origin: ${JSON.stringify(String(headers.origin).slice(0, 100))})`;
  }
  if (listenHost === null || headers.host === undefined) return null;
  const m = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(headers.host);
  const name = m ? m[1].replace(/^\[|\]$/g, '') : headers.host;
  if (isLoopbackHost(name) || name.toLowerCase() === listenHost.replace(/^\[|\]$/g, '').toLowerCase()) return null;
  return `Host ${JSON.stringify(headers.host.slice(0, 100))} is not this API's address (a loopback name or ${listenHost}): refused (DNS rebinding)`;
}

/** Why a request's body type is refused (415), or null. Bodies must be JSON or YAML, in UTF-8
 * (JSON's only encoding between systems, RFC 8259) and not compressed: a body in another charset
 * or a Content-Encoding was read as UTF-8 text all the same — gzip's bytes answered as a string
 * "that is not an object", a `Content-Encoding: br` over plain text applied. A request without a
 * body needs no type. */
export function contentTypeProblem(method: string, headers: IncomingHttpHeaders): string | null {
  const hasBody = (headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined;
  if (!hasBody && (method === 'GET' || method === 'HEAD' || method === 'DELETE' || method === 'OPTIONS')) return null;
  const [media, ...params] = (headers['content-type'] ?? '').split(';');
  const type = media.trim().toLowerCase();
  if (!hasBody && !type) return null;
  if (!BODY_TYPES.has(type)) return `Content-Type ${type ? JSON.stringify(type) : '(none)'} is not supported: send application/json or application/yaml`;
  for (const p of params) {
    const [k, v = ''] = p.split('=');
    const charset = v.trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    if (k.trim().toLowerCase() === 'charset' && charset !== 'utf-8' && charset !== 'utf8') return `charset ${JSON.stringify(charset.slice(0, 40))} is not supported: send the body as UTF-8`;
  }
  const coding = String(headers['content-encoding'] ?? '').trim().toLowerCase();
  if (hasBody && coding && coding !== 'identity') return `Content-Encoding ${JSON.stringify(coding.slice(0, 40))} is not supported: send the body uncompressed`;
  return null;
}
