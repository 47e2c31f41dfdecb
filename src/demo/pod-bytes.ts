// The content pod-server.ts sends for GET /bytes/N, shared with the tests that check it.

/** The deterministic content of GET /bytes/N: byte k is (k * 131 + k >> 8) & 255, cheap to
 * regenerate on the client side to check a transfer byte for byte. */
export function podBytes(start: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) { const k = start + i; b[i] = (k * 131 + (k >>> 8)) & 0xff; }
  return b;
}
