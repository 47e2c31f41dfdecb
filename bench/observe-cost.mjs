#!/usr/bin/env node
// What live trace costs the forwarding loop (src/observe/worker-observer.ts), A/B in one process
// with batches alternating between the modes (same load for all):
//   off      core.process() only — what a worker does with no session (one boolean per batch;
//            the core's filter block inactive: one branch per batch)
//   nomatch  a live trace whose filter matches none of the frames (the core tests its filter on
//            every frame; JS arms the filter's budget and reads one match count per batch)
//   capture  a capture of another port (each frame's in port read in JS before process() and its
//            out port before tx, nothing copied)
// Frames: 256-frame batches of IPv4/UDP to a ClusterIP with 10 endpoints, established flows.
//   node bench/observe-cost.mjs [--batches 2000] [--filter JSON]
import { Core } from '../dist/src/core/host.js';
import { compileAll } from '../dist/src/compiler/compiler.js';
import { validateAll } from '../dist/src/model/schema.js';
import { frame } from '../dist/src/packet/build.js';
import { WorkerObserver } from '../dist/src/observe/worker-observer.js';
import { setActive } from '../dist/src/observe/core-filter.js';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? Number(process.argv[i + 1]) : d; };
const batches = arg('--batches', 2000);
// the live trace's filter: by default one the core can only reject after reading the frame's
// output tuple (the worst case for a forwarded frame); e.g. --filter '{"inPort":9}' fails first
const fi = process.argv.indexOf('--filter');
const traceFilter = fi > 0 ? JSON.parse(process.argv[fi + 1]) : { dport: 9 };
const objs = validateAll([
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'u', port: 53, protocol: 'UDP', targetPort: 5353 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4',
    ports: [{ name: 'u', port: 5353, protocol: 'UDP' }], endpoints: Array.from({ length: 10 }, (_, i) => ({ addresses: [`10.244.0.${i + 10}`], conditions: { ready: true } })) },
]);
const core = Core.create({ batchMax: 256 });
core.applyIr(compileAll(objs, { maglevWorker: 'never' }).ir);
const frames = Array.from({ length: 256 }, (_, i) => frame({ src: '10.0.0.2', dst: '10.96.0.10', proto: 'UDP', sport: 10000 + i, dport: 53 }));
const obsTrace = new WorkerObserver(0, core, () => undefined);
obsTrace.start({ kind: 'trace', session: 1, filter: traceFilter, rate: 100 });
const obsCap = new WorkerObserver(0, core, () => undefined);
obsCap.start({ kind: 'capture', session: 2, filter: {}, port: 7, direction: 'both', snaplen: 65535 });
const modes = { off: null, nomatch: obsTrace, capture: obsCap };
const ns = { off: [], nomatch: [], capture: [] };   // per batch: medians resist preemption on a loaded VM
const fill = () => { for (let i = 0; i < 256; i++) core.writeFrame(i, frames[i], 0); };
for (let b = 0; b < batches; b++) {
  for (const [m, obs] of Object.entries(modes)) {
    fill();
    setActive(core, m === 'nomatch' ? 1 : 0);   // the core's filter slot in use only while that session "runs"
    const t0 = process.hrtime.bigint();
    if (obs?.active) obs.before(core, 256);
    core.process(256);
    if (obs?.active) obs.after(core, 256);
    if (obs?.capturing) obs.sent(core, 256);
    ns[m].push(Number(process.hrtime.bigint() - t0));
  }
}
const per = (m) => { const v = ns[m].sort((a, b) => a - b); return v[v.length >> 1] / 256; };
console.log(`median ns/frame over ${batches} batches of 256 (trace filter ${JSON.stringify(traceFilter)}): off ${per('off').toFixed(1)}, trace matching nothing ${per('nomatch').toFixed(1)} (x${(per('nomatch') / per('off')).toFixed(2)}), capture of another port ${per('capture').toFixed(1)} (x${(per('capture') / per('off')).toFixed(2)})`);
