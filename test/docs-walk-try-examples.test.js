// docs/running.md "Trying it by hand" ends with "examples/ has more Services": a reader applies
// them to the recipe's daemon, which already has the recipe's Service. None of them may then be
// refused for an address or node port the recipe's Service holds (kube-dns's canonical 10.96.0.10
// in examples/clusterip-dns.yaml was: "clusterIP 10.96.0.10: already allocated to Service
// default/web").
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, recipe } from './lib/docs-recipe.js';

/** The Services' cluster IPs and node ports of some YAML text. */
function held(text) {
  const out = [];
  for (const d of parseAllDocuments(text)) {
    const o = d.toJS();
    if (o?.kind !== 'Service') continue;
    for (const ip of [o.spec?.clusterIP, ...(o.spec?.clusterIPs ?? [])]) if (ip && ip !== 'None') out.push(`clusterIP ${ip}`);
    for (const p of o.spec?.ports ?? []) if (p.nodePort) out.push(`nodePort ${p.nodePort}/${p.protocol ?? 'TCP'}`);
  }
  return out;
}

test('running.md "Trying it by hand": every examples/ manifest can be applied on top of the recipe\'s Service', (t) => {
  const script = recipe('Trying it by hand');
  const m = /apply -f - <<END\n([\s\S]*?)\nEND\n/.exec(script);
  t.truthy(m, 'the recipe applies its Service from a here-document');
  const mine = new Set(held(m[1]));
  t.true(mine.size > 0, 'the recipe\'s Service has a cluster IP');
  const dir = join(ROOT, 'examples');
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
    const clash = held(readFileSync(join(dir, f), 'utf8')).filter((h) => mine.has(h));
    t.deepEqual(clash, [], `examples/${f} takes what the recipe's Service holds`);
  }
});
