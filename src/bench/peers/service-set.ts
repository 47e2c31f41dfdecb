// The one synthetic service set every control-plane contender loads: N ClusterIP services, each
// with one TCP port and M ready endpoints. Deterministic, so wdp, iptables and nftables see the same
// input in the same run and between runs.
import { createHash } from 'node:crypto';

export interface BenchEndpoint { addr: string; port: number }
export interface BenchService {
  namespace: string;
  name: string;
  portName: string;
  clusterIP: string;
  port: number;
  targetPort: number;
  proto: 'TCP' | 'UDP';
  endpoints: BenchEndpoint[];
}

export interface ServiceSetOptions {
  services: number;
  endpoints: number;
  proto?: 'TCP' | 'UDP';
  /** first ClusterIP (default 10.96.0.10); services take consecutive addresses */
  vipBase?: string;
  /** first endpoint address (default 10.128.0.2); endpoints take consecutive addresses */
  podBase?: string;
  port?: number;
  targetPort?: number;
}

function ipToInt(s: string): number {
  const p = s.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`invalid IPv4 address ${JSON.stringify(s)}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

// The VIP range is a /12 (10.96.0.0/12, ~1M addresses) and the pod range a /9 (8M): limits here
// keep generated addresses inside them instead of silently wrapping into other ranges.
export const MAX_SERVICES = 1_000_000;
export const MAX_ENDPOINTS_TOTAL = 8_000_000;

export function makeServiceSet(o: ServiceSetOptions): BenchService[] {
  const n = o.services, m = o.endpoints;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SERVICES) throw new Error(`--services must be an integer in 1..${MAX_SERVICES} (got ${n})`);
  if (!Number.isInteger(m) || m < 0 || m > 1000) throw new Error(`--endpoints must be an integer in 0..1000 (got ${m})`);
  if (n * m > MAX_ENDPOINTS_TOTAL) throw new Error(`services x endpoints must be <= ${MAX_ENDPOINTS_TOTAL} (got ${n * m})`);
  const vip0 = ipToInt(o.vipBase ?? '10.96.0.10');
  const pod0 = ipToInt(o.podBase ?? '10.128.0.2');
  const out: BenchService[] = [];
  for (let i = 0; i < n; i++) {
    const endpoints: BenchEndpoint[] = [];
    for (let j = 0; j < m; j++) endpoints.push({ addr: intToIp(pod0 + i * m + j), port: o.targetPort ?? 8080 });
    out.push({
      namespace: 'bench', name: `svc-${i}`, portName: 'http', clusterIP: intToIp(vip0 + i),
      port: o.port ?? 80, targetPort: o.targetPort ?? 8080, proto: o.proto ?? 'TCP', endpoints,
    });
  }
  return out;
}

/** kube-proxy's chain-name hash: base32 of SHA-256 of the name, truncated. Used by both peers so
 * chain names have kube-proxy's length and character set (rule-parsing cost depends on both). */
export function kubeHash(s: string, len: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const h = createHash('sha256').update(s).digest();
  let bits = 0, value = 0, out = '';
  for (const byte of h) {
    value = (value << 8) | byte; bits += 8;
    while (bits >= 5 && out.length < len) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
    if (out.length >= len) break;
  }
  return out;
}

export function endpointCount(svcs: BenchService[]): number {
  let c = 0; for (const s of svcs) c += s.endpoints.length; return c;
}
