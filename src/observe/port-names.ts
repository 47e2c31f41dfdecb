// Dataplane port names for offline tools (`wdp replay --in-port NAME`): a port's index is its
// position in the daemon config's `ports:` list, or what `wdp get ports` reports (which also
// lists ports added at runtime). Either document resolves a name.
import { parseSingleDocument } from '../model/load.js';

type Raw = Record<string, unknown>;

/** Port name -> index from the text of `wdp get ports -o yaml|json` ({items: [{name, index}]})
 * or of a daemon config file (ports: [{name, ...}], index = position). Throws on anything else. */
export function portIndexes(text: string, source: string): Map<string, number> {
  let doc: unknown;
  try { doc = parseSingleDocument(text, source); } catch (e) { throw new Error(`not YAML or JSON: ${(e as Error).message}`); }
  const d = (doc ?? {}) as Raw;
  const out = new Map<string, number>();
  if (Array.isArray(d.items)) {
    for (const p of d.items as Raw[]) {
      if (typeof p?.name === 'string' && Number.isInteger(p.index)) out.set(p.name, p.index as number);
    }
  } else if (Array.isArray(d.ports)) {
    (d.ports as Raw[]).forEach((p, i) => { if (typeof p?.name === 'string') out.set(p.name, i); });
  }
  if (!out.size) throw new Error(`${source}: no ports found (expected the output of "wdp get ports -o yaml" or a daemon config with ports:)`);
  return out;
}

/** An --in-port value: an index (digits), or a name looked up in `ports`. */
export function resolveInPort(value: string, ports: Map<string, number> | undefined, source = 'the ports file'): number {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n > 0xfffe) throw new Error(`--in-port ${value}: a port index is 0..65534`);
    return n;
  }
  if (!ports) throw new Error(`--in-port "${value}" is a port name: give the ports with --ports FILE ("wdp get ports -o yaml" or the daemon config file), or the index`);
  const n = ports.get(value);
  if (n === undefined) {
    const known = [...ports].map(([k, v]) => `${k} (${v})`).join(', ');
    throw new Error(`--in-port "${value}": no such port in ${source} (ports: ${known})`);
  }
  return n;
}
