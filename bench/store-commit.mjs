#!/usr/bin/env node
// The store alone (src/state/store.ts), as the daemon uses it: a full sync of N Services and N
// EndpointSlices (10 endpoints each) staged on the writer thread in requests of 11k services (the
// size the bench client's 16 MiB bodies come to), then one-endpoint changes, each a one-row
// StateStore.stage + commit on this thread (durable when it returns: synchronous=FULL), one
// different slice each time, spread over the set. Shows whether a one-object commit costs more
// with a larger store: its wall time (the WAL's fsync, which follows the disk's other writers),
// this thread's CPU time, and the WAL frames (pages) one commit appends.
//
//   npm run build
//   node bench/store-commit.mjs [--services 10000,100000] [--changes 300] [--rounds 2] [--dir DIR]
//
// Sizes alternate within a round, the order reversed every other round (ABBA), so the disk's load
// hits each alike. Env WDP_STORE_CHECKPOINT_BYTES: the store's checkpoint threshold (a very large
// value: no checkpoint during the changes). One JSON line per run.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { StateStore } from '../dist/src/state/store.js';

const { values: o } = parseArgs({ options: { services: { type: 'string', default: '10000,100000' }, changes: { type: 'string', default: '300' },
  rounds: { type: 'string', default: '2' }, dir: { type: 'string', default: tmpdir() } } });
const sizes = o.services.split(',').map(Number), changes = Number(o.changes), rounds = Number(o.rounds);

const svc = (i) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' },
  spec: { clusterIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } });
const slice = (i, first) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name: `s${i}-abc`, namespace: 'default', labels: { 'kubernetes.io/service-name': `s${i}` } },
  addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: Array.from({ length: 10 }, (_, e) => ({ addresses: [e === 0 && first ? first : `10.200.${((i * 10 + e) >> 8) & 255}.${(i * 10 + e) & 255}`], conditions: { ready: true }, nodeName: 'n1' })) });
const q = (a, p) => Math.round(a[Math.min(a.length - 1, Math.floor(a.length * p / 100))] * 100) / 100;
const threadCpuMs = () => { const u = process.threadCpuUsage?.() ?? process.cpuUsage(); return (u.user + u.system) / 1000; };

async function run(n) {
  const dir = mkdtempSync(join(o.dir, 'wdp-store-commit-'));
  try {
    const st = new StateStore(dir);
    st.open();
    if (process.env.WDP_STORE_CHECKPOINT_BYTES) st.checkpointBytes = Number(process.env.WDP_STORE_CHECKPOINT_BYTES);
    const t0 = performance.now();
    for (let s = 0; s < n; s += 11000) {
      const up = [];
      for (let i = s; i < Math.min(n, s + 11000); i++) up.push({ kind: 'Service', key: `default/s${i}`, raw: svc(i) }, { kind: 'EndpointSlice', key: `default/s${i}-abc`, raw: slice(i) });
      await st.stage({ upsert: up, remove: [] }).commit();
    }
    const fullMs = performance.now() - t0;
    await st.checkpoint();
    await new Promise((r) => setTimeout(r, 300)); // (the writer thread's own checkpoint after the last request)
    // WAL frames one commit appends: the log copied whole first (the commit then starts it again
    // from its beginning), then its frames that carry the header's salts counted (no second
    // connection can empty the log: the store's writing connection holds the database exclusively)
    const frames = new Set();
    for (let k = 0; k < 5; k++) {
      const i = (k * 7919) % n;
      await st.checkpoint();
      await st.stage({ upsert: [{ kind: 'EndpointSlice', key: `default/s${i}-abc`, raw: slice(i, `10.254.0.${k + 1}`) }], remove: [] }).commit();
      const wal = readFileSync(join(dir, 'state.db-wal'));
      let f = 0;
      for (let at = 32; at + 24 <= wal.length; at += 16384 + 24, f++) {
        if (wal.readUInt32BE(at + 8) !== wal.readUInt32BE(16) || wal.readUInt32BE(at + 12) !== wal.readUInt32BE(20)) break;
      }
      frames.add(f);
    }
    const load = loadavg()[0];
    const ms = [], cpu = [];
    const step = Math.max(1, Math.floor(n / changes));
    for (let k = 0; k < changes; k++) {
      const i = (k * step) % n;
      const w = { upsert: [{ kind: 'EndpointSlice', key: `default/s${i}-abc`, raw: slice(i, `10.255.${(k >> 8) & 255}.${(k & 255) || 1}`) }], remove: [] };
      const c0 = threadCpuMs(), w0 = performance.now();
      await st.stage(w).commit();
      ms.push(performance.now() - w0); cpu.push(threadCpuMs() - c0);
      await new Promise((r) => setImmediate(r));
    }
    await st.close();
    ms.sort((a, b) => a - b); cpu.sort((a, b) => a - b);
    return { services: n, rows: 2 * n, load: Math.round(load * 10) / 10, full_sync_ms: Math.round(fullMs), db_mib: statSync(join(dir, 'state.db')).size >> 20,
      wal_frames_per_commit: [...frames], commit_p50_ms: q(ms, 50), commit_p90_ms: q(ms, 90), commit_p99_ms: q(ms, 99), commit_max_ms: q(ms, 100),
      commit_cpu_p50_ms: q(cpu, 50), commit_cpu_p99_ms: q(cpu, 99) };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

for (let r = 0; r < rounds; r++) {
  for (const n of r % 2 ? [...sizes].reverse() : sizes) console.log(JSON.stringify(await run(n)));
}
