// A map keyed by address text, with IPv4 dotted quads keyed by their 32-bit value: a full sync's
// conflict check looks up ~100k endpoint addresses, each a fresh string from JSON.parse whose
// hash V8 computes on the first lookup (a pass over its characters, plus the string table
// probe); an int key is hashed in a few instructions. The model's addresses are canonical
// (schema.ts canon()), so equal text is an equal address and every IPv4 address has its value.
import { ipv4Value } from '../util/addr.js';

export class AddressMap<V> {
  private readonly v4 = new Map<number, V>();
  private readonly text = new Map<string, V>();
  /** Every IPv4 key set since the last clear() is in [v4Low, v4High] (deleted ones may widen it;
   * v4Low > v4High when none). */
  v4Low = 2 ** 32;
  v4High = -1;

  get size(): number { return this.v4.size + this.text.size; }

  /** `v`: ipv4Value(ip) when the caller has it already. */
  get(ip: string, v = ipv4Value(ip)): V | undefined { return v >= 0 ? this.v4.get(v | 0) : this.text.get(ip); }

  set(ip: string, value: V, v = ipv4Value(ip)): void {
    if (v >= 0) {
      this.v4.set(v | 0, value);
      if (v < this.v4Low) this.v4Low = v;
      if (v > this.v4High) this.v4High = v;
    } else this.text.set(ip, value);
  }

  delete(ip: string, v = ipv4Value(ip)): void {
    if (v >= 0) this.v4.delete(v | 0); else this.text.delete(ip);
  }

  clear(): void { this.v4.clear(); this.text.clear(); this.v4Low = 2 ** 32; this.v4High = -1; }
}
