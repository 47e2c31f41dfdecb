// The API's frontend view names every frontend flag the core knows (assembly/layout.ts FEF_*):
// a flag added to the core without a name would be invisible in GET /frontends.
import test from 'ava';
import * as L from '../dist/assembly/layout.js';
import { frontendView } from '../dist/src/api/controlplane.js';

const front = (flags) => ({ id: 1, service: 'shop/web', portName: 'http', kind: 'NodePort', addr: '10.0.0.1', port: 30080,
  proto: 'TCP', flags, affinityTimeoutMs: 0, sourceRanges: [], backends: [], maglev: [] });

test('every FEF_* flag has exactly one name in the frontend view, and the names are distinct', (t) => {
  const flags = Object.entries(L).filter(([k]) => k.startsWith('FEF_'));
  t.true(flags.length >= 9);
  const names = new Set();
  for (const [k, v] of flags) {
    const shown = frontendView(front(v)).flags;
    t.is(shown.length, 1, `${k} (${v}) shows as ${JSON.stringify(shown)}`);
    names.add(shown[0]);
  }
  t.is(names.size, flags.length);
  t.true(frontendView(front(L.FEF_AFFINITY | L.FEF_AFFINITY_SHARED)).flags.includes('affinity_shared'));
});
