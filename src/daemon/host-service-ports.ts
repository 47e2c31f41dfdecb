// The Services' external IP and LoadBalancer ingress ports, by address, as the dataplane has them:
// what the host port (host-stack.ts) policy-routes out of the TAP when the address is one of the
// host's own. kube-proxy's nftables proxier puts every external IP and LB ingress IP of a Service
// (address, protocol, port) in its service-ips map, which its nat-output chain consults for the
// node's own packets too (or rejects them through no-endpoint-services): the node's own connection
// to such a pair is the Service's, also when the address is local to the node; other ports of the
// address stay the host's. The index follows the diffs the dataplane applies, so it holds what the
// workers forward: an apply that fails changes nothing, its undo is a diff like any other.
import type { IrDiff } from '../ir/diff.js';
import type { FrontendKind, Ir, IrFrontend } from '../ir/ir.js';
import type { Dataplane } from '../core/dataplane-types.js';

/** Frontend records readable one field at a time (the compiler's column table): a diff is read
 * without an object per frontend. */
interface KindColumns { kindOf(id: number): FrontendKind; addrOf(id: number): string }

const isExternal = (kind: FrontendKind): boolean => kind === 'ExternalIP' || kind === 'LoadBalancer';

/** "tcp 8080": a port of an address, as `ip rule` takes it (ipproto, dport). */
export const portKey = (f: Pick<IrFrontend, 'proto' | 'port'>): string => `${f.proto.toLowerCase()} ${f.port}`;

/** The index, for the addresses watched only (the host's own: a handful, while a cluster may have
 * thousands of external and LB IPs): an apply costs a look at each frontend it names, a record
 * built only for those at a watched address. Addresses are the model's canonical forms (its
 * externalIPs, LB ingress IPs and node addresses are canonicalized at validation). */
export class ExternalPorts {
  private readonly byId = new Map<number, { addr: string; key: string }>();
  private readonly byAddr = new Map<string, Map<string, number>>();   // address -> port key -> frontends
  private watched = new Set<string>();
  private ir: Ir | null = null;                                        // the Ir the diffs came with

  /** The port keys of external and LB frontends at the watched address `addr`. */
  portsAt(addr: string): Iterable<string> { return this.byAddr.get(addr)?.keys() ?? []; }

  /** Watch `addrs` from now on: the index is rebuilt from the Ir the last diff came with. */
  watch(addrs: Iterable<string>): void {
    this.watched = new Set(addrs);
    this.byId.clear(); this.byAddr.clear();
    const ir = this.ir;
    if (!ir || !this.watched.size) return;
    const cols = columnsOf(ir);
    if (cols) { for (const id of ir.frontends.keys()) if (isExternal(cols.kindOf(id)) && this.watched.has(cols.addrOf(id))) this.add(ir.frontends.get(id)!); }
    else for (const f of ir.frontends.values()) if (isExternal(f.kind) && this.watched.has(f.addr)) this.add(f);
  }

  /** Reads `diff` now (a full compile's lists are valid only until the compiler's next change) and
   * returns what applying it does to the index, to be run once the dataplane has it: it returns the
   * watched addresses whose ports changed. */
  read(diff: Pick<IrDiff, 'frontendsUpsert' | 'frontendsRemove'>, ir: Ir): () => Set<string> {
    this.ir = ir;
    const gone: number[] = [], comes: IrFrontend[] = [], watched = this.watched, byId = this.byId;
    if (byId.size) diff.frontendsRemove.forEach((id) => { if (byId.has(id)) gone.push(id); });
    const ups = diff.frontendsUpsert, cols = columnsOf(ir);
    if (ups.forEachId && cols) {
      ups.forEachId((id) => {
        if (byId.has(id)) gone.push(id);   // its frontend changed: taken again below if it still is one
        if (isExternal(cols.kindOf(id)) && watched.has(cols.addrOf(id))) comes.push(ir.frontends.get(id)!);
      });
    } else {
      ups.forEach((f) => {
        if (byId.has(f.id)) gone.push(f.id);
        if (isExternal(f.kind) && watched.has(f.addr)) comes.push({ ...f });   // (a list may reuse one object)
      });
    }
    return () => {
      const before = new Map<string, string>();   // touched address -> its ports before
      const touch = (a: string) => { if (!before.has(a)) before.set(a, [...this.portsAt(a)].sort().join()); };
      for (const id of gone) {
        const e = byId.get(id);
        if (!e) continue;
        touch(e.addr);
        byId.delete(id);
        const ports = this.byAddr.get(e.addr)!, n = ports.get(e.key)! - 1;
        if (n > 0) ports.set(e.key, n);
        else { ports.delete(e.key); if (!ports.size) this.byAddr.delete(e.addr); }
      }
      for (const f of comes) {
        if (!this.watched.has(f.addr)) continue;   // (no longer watched since the diff was read)
        touch(f.addr);
        this.add(f);
      }
      const changed = new Set<string>();
      for (const [a, was] of before) if ([...this.portsAt(a)].sort().join() !== was) changed.add(a);
      return changed;
    };
  }

  private add(f: IrFrontend): void {
    const key = portKey(f);
    this.byId.set(f.id, { addr: f.addr, key });
    let ports = this.byAddr.get(f.addr);
    if (!ports) this.byAddr.set(f.addr, ports = new Map());
    ports.set(key, (ports.get(key) ?? 0) + 1);
  }
}

function columnsOf(ir: Ir): KindColumns | null {
  const c = ir.frontends as unknown as Partial<KindColumns>;
  return typeof c.kindOf === 'function' && typeof c.addrOf === 'function' ? c as KindColumns : null;
}

/** `dp`, its applies followed by `ports`: each diff is read as it is handed to the dataplane, and
 * taken into the index once the dataplane has it (`changed` then gets the addresses whose ports
 * changed, after the index has them). */
export function followApplies(dp: Dataplane, ports: ExternalPorts, changed: (addrs: Set<string>) => void): Dataplane {
  const apply: Dataplane['apply'] = (diff, ir, undo) => {
    const take = ports.read(diff, ir);
    return dp.apply(diff, ir, undo).then((r) => {
      const addrs = take();
      if (addrs.size) changed(addrs);
      return r;
    });
  };
  const bound = new Map<PropertyKey, unknown>();   // the dataplane's methods, bound to it once
  return new Proxy(dp, {
    get(target, prop) {
      if (prop === 'apply') return apply;
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      let b = bound.get(prop);
      if (b === undefined) bound.set(prop, b = (v as (...a: unknown[]) => unknown).bind(target));
      return b;
    },
  });
}
