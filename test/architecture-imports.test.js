// The README's architecture claim, held against the code: the folders follow the data flow
// (Kubernetes objects → model → compiler → Ir → table writer → Wasm memory), and no module imports
// one that (directly or not) imports it back — between files, and between the folders of src/
// (a type-only import counts: it ties the folders' meanings together as much as a value does).
// Reads the TypeScript sources' relative imports; nothing is loaded.
import test from 'ava';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// `import … from './x.js'`, `export … from`, `import('./x.js')`, `import './x.js'`
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s*['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** file (relative to the root) → the project files it imports */
function importGraph(files) {
  const graph = new Map();
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
    const to = new Set();
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      const target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
      to.add(relative(ROOT, target));
    }
    graph.set(relative(ROOT, f), to);
  }
  return graph;
}

/** The module's place in the flow: src/<folder>/ (or a file of src/ itself), or assembly/. */
const folderOf = (f) => { const parts = f.split('/'); return parts[0] === 'src' && parts.length > 2 ? `src/${parts[1]}/` : parts[0] === 'src' ? f : `${parts[0]}/`; };

/** A cycle of the graph as a list of its nodes, or null. */
function findCycle(graph) {
  const state = new Map(); // 1: on the path, 2: done
  const path = [];
  const visit = (n) => {
    state.set(n, 1); path.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 1) return [...path.slice(path.indexOf(m)), m];
      if (!state.has(m)) { const c = visit(m); if (c) return c; }
    }
    path.pop(); state.set(n, 2);
    return null;
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) { const c = visit(n); if (c) return c; }
  return null;
}

const FILES = [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'assembly'))];
const GRAPH = importGraph(FILES);

test('the import reader finds the imports it must (a check of the check)', (t) => {
  t.true(GRAPH.get('src/wdp.ts')?.has('src/cli/main.ts'), 'src/wdp.ts imports the CLI');
  t.true(GRAPH.get('src/daemon/worker-dataplane.ts')?.has('src/observe/types.ts'), 'a type-only import is read');
  t.true(GRAPH.get('src/core/host.ts')?.has('assembly/layout.ts'), 'the shared layout is read');
  t.deepEqual(findCycle(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]])), ['a', 'b', 'c', 'a']);
  t.is(findCycle(new Map([['a', new Set(['b'])], ['b', new Set()]])), null);
});

test('no module imports one that imports it back, directly or not', (t) => {
  const cycle = findCycle(GRAPH);
  t.is(cycle, null, cycle ? `a cycle: ${cycle.join(' → ')}` : '');
});

test('no folder of src/ imports one that imports it back: the folders follow the flow', (t) => {
  const folders = new Map();
  const example = new Map(); // "a → b" → the first file import that makes the edge
  for (const [f, tos] of GRAPH) {
    const a = folderOf(f);
    if (!folders.has(a)) folders.set(a, new Set());
    for (const to of tos) {
      const b = folderOf(to);
      if (a === b) continue;
      folders.get(a).add(b);
      if (!example.has(`${a} → ${b}`)) example.set(`${a} → ${b}`, `${f} imports ${to}`);
    }
  }
  const cycle = findCycle(folders);
  t.is(cycle, null, cycle ? `a cycle: ${cycle.slice(1).map((b, i) => example.get(`${cycle[i]} → ${b}`)).join('; ')}` : '');
  // the main layers in the order they depend on each other, lowest first (the README's flow: the
  // model and the compiler over the Ir, the table writer's core under the compiler, the API over
  // both, the watcher over the API, the daemon over all, the entry point on top): none imports
  // one above it
  const order = ['src/util/', 'src/ir/', 'src/core/', 'src/model/', 'src/compiler/', 'src/api/', 'src/kube/', 'src/daemon/', 'src/wdp.ts'];
  for (let i = 0; i < order.length; i++) {
    for (const above of order.slice(i + 1)) t.false(folders.get(order[i])?.has(above) ?? false, example.get(`${order[i]} → ${above}`));
  }
});
