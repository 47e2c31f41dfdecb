// The hold queue's defaults (frames held per unresolved address, how long) are defined once, in
// src/util/neighbour-hold.ts, below both the compiler and the daemon: the hold queue takes them
// as its defaults and the compiler's no-neighbour warning states them, so the two cannot drift
// apart (before, the warning said "3 per address, up to 3 s" as literals beside the queue's own).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { HOLD_MS, HOLD_PER_ADDRESS } from '../dist/src/util/neighbour-hold.js';
import { HoldQueue } from '../dist/src/daemon/hold-queue.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';

const src = (p) => readFileSync(new URL(`../src/${p}`, import.meta.url), 'utf8');

test('the hold queue\'s defaults are the shared ones', (t) => {
  const q = new HoldQueue({ slotBytes: 2048 });
  t.is(q.perAddress, HOLD_PER_ADDRESS);
  t.is(q.holdMs, HOLD_MS);
});

test('the compiler\'s warning states them', (t) => {
  const ch = new Compiler().change({ upsert: validateAll([
    { apiVersion: 'wdp.io/v1alpha1', kind: 'NodeConfig', metadata: { name: 'n' }, spec: { nodeName: 'n' } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4', endpoints: [{ addresses: ['10.1.0.1'] }], ports: [{ port: 80 }] },
  ]) });
  const w = ch.warnings.find((x) => x.includes('no neighbour or route'));
  t.truthy(w, ch.warnings.join('\n'));
  t.true(w.includes(`(${HOLD_PER_ADDRESS} per address, up to ${HOLD_MS / 1000} s)`), w);
});

test('the compiler\'s warning text reads them, not literals', (t) => {
  const compiler = src('compiler/compiler.ts');
  t.regex(compiler, /\$\{HOLD_PER_ADDRESS\} per address, up to \$\{HOLD_MS \/ 1000\} s/);
  t.notRegex(compiler, /\(\d+ per address, up to \d+ s\)/);
  t.notRegex(src('daemon/hold-queue.ts'), /perAddress \?\? \d|holdMs \?\? \d/);
  // and below the compiler: the module imports nothing of the project
  t.notRegex(src('util/neighbour-hold.ts'), /^import /m);
  t.notRegex(compiler, /from '\.\.\/daemon\//);
});
