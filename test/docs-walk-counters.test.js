// docs/api.md as a reader checks it against the code: the `GET /api/v1/counters` row names every
// global counter a core reports (the layout's and those the host adds: ct_node_sweeps,
// ct_node_flag_changed), the "Metrics" section every metric the control plane registers, and the
// `GET /api/v1/frontends` row every frontend flag the API can show; docs/running.md's "Watching"
// names the counters and the gauge an operator looks for after a node address change or a clash.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Core } from '../dist/src/core/host.js';
import { Compiler } from '../dist/src/compiler/compiler.js';
import { ControlPlaneMetrics } from '../dist/src/api/metrics.js';

const ROOT = new URL('../', import.meta.url).pathname;
const API = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
const RUNNING = readFileSync(join(ROOT, 'docs/running.md'), 'utf8');
const row = (doc, start) => doc.split('\n').find((l) => l.startsWith(`| \`${start}`)) ?? '';

test('api.md: the counters row names every global counter of a core', (t) => {
  const global = Object.keys(Core.create({ flows: 64 }).counters().global);
  t.true(global.includes('ct_node_sweeps') && global.includes('rx_packets'));
  const r = row(API, 'GET /api/v1/counters`');
  t.deepEqual(global.filter((k) => !r.includes(`\`${k}\``)), [], 'global counters api.md does not name');
});

test('api.md: the Metrics section names every metric the control plane registers', async (t) => {
  const m = new ControlPlaneMetrics(new Compiler(), () => 0);
  const names = m.registry.getMetricsAsArray().map((x) => x.name);
  t.true(names.includes('wdp_frontends_withheld'));
  const section = API.split('\n## Metrics\n')[1].split('\n## ')[0];
  t.deepEqual(names.filter((n) => !section.includes(`\`${n}`) && !section.includes(n.replace(/_(total|last|count)$/, ''))), [], 'metrics api.md does not name');
  // the withheld gauge's reasons, each
  for (const reason of ['external_clash', 'cluster_ip_clash', 'node_address']) t.true(section.includes(`\`${reason}\``), reason);
});

test('api.md: the frontends row names every flag the API shows', (t) => {
  const src = readFileSync(join(ROOT, 'src/api/controlplane.ts'), 'utf8');
  const block = src.split('const FLAG_NAMES')[1].split('];')[0];
  const flags = [...block.matchAll(/\[L\.FEF_[A-Z_]+, '([a-z_]+)'\]/g)].map((x) => x[1]);
  t.true(flags.includes('affinity_in_set'));
  const r = row(API, 'GET /api/v1/frontends');
  t.deepEqual(flags.filter((f) => !r.includes(`\`${f}\``)), [], 'flags api.md does not name');
});

test('running.md "Watching": the node-flag sweep counters, the withheld gauge and the affinity_in_set flag', (t) => {
  const watching = RUNNING.split('* **Watching.**')[1].split('\n* **')[0];
  for (const k of ['ct_node_sweeps', 'ct_node_flag_changed', 'wdp_frontends_withheld{reason}', 'affinity_in_set']) t.true(watching.includes(`\`${k}\``), k);
});
