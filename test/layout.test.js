// One source of truth: every constant of assembly/layout.ts as compiled by tsc must equal the
// global the built core exports under the same name (catches a stale build or a drifted copy).
import test from 'ava';
import { readFileSync, writeFileSync, mkdtempSync, readdirSync, copyFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as L from '../dist/assembly/layout.js';
import { REASON_NAMES, GLOBAL_COUNTER_NAMES } from '../dist/src/core/names.js';

const wasm = new WebAssembly.Module(readFileSync(new URL('../build/core.wasm', import.meta.url)));
const exported = new Map(WebAssembly.Module.exports(wasm).map((e) => [e.name, e.kind]));
const instance = new WebAssembly.Instance(wasm, { env: { abort() { throw new Error('abort'); }, seed: () => 1, reject_limit_enter: () => 1, reject_limit_bucket() {}, reject_limit_leave() {} } });

test('every layout constant is exported by the core with the same value', (t) => {
  const names = Object.keys(L);
  t.true(names.length > 150, 'layout has its constants');
  for (const name of names) {
    t.is(exported.get(name), 'global', `${name} is exported as a global`);
    const g = instance.exports[name];
    const v = typeof g.value === 'bigint' ? Number(g.value) : g.value;
    t.is(v >>> 0, L[name] >>> 0, `${name}`);
  }
});

test('enums are dense where the host relies on it and names are unique', (t) => {
  t.is(new Set(REASON_NAMES.filter(Boolean)).size, REASON_NAMES.filter(Boolean).length);
  t.true(REASON_NAMES.length <= L.REASON_COUNT);
  t.is(REASON_NAMES[L.REASON_REJECT_NO_ENDPOINTS], 'reject_no_endpoints');
  t.is(REASON_NAMES[L.REASON_DROP_TRUNCATED_L2], 'drop_truncated_l2');
  t.is(GLOBAL_COUNTER_NAMES.length, L.GC_COUNT);
  t.is(GLOBAL_COUNTER_NAMES[L.GC_CT_ACTIVE], 'ct_active');
});

test('per-flow memory stays within 128 bytes (flow entry + 4 index slots)', (t) => {
  t.true(L.CT_SIZE + 4 * L.CTI_SIZE <= 128);
  t.true(L.CT_NEXT_FREE + 4 <= L.CT_SIZE);
  t.true(L.FE_FAMILY < L.FE_SIZE && L.BE_SRC_MAC + 6 <= L.BE_SIZE && L.RT_SRC_MAC + 6 <= L.RT_SIZE);
  t.true(L.CFG_SNAT_PORT_MAX + 4 <= L.CFG_SIZE);
});

// The records of assembly/records.ts are checked against layout.ts at compile time (offsetof). The
// check must be able to fail: a copy of the core with one field shifted must not build, and the
// unchanged copy must.
test('a record field that drifts from layout.ts fails the core build', (t) => {
  const asc = fileURLToPath(new URL('../node_modules/.bin/asc', import.meta.url));
  const src = fileURLToPath(new URL('../assembly/', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'wdp-records-'));
  try {
    for (const f of readdirSync(src)) if (f.endsWith('.ts')) copyFileSync(join(src, f), join(dir, f));
    const build = () => spawnSync(asc, [join(dir, 'index.ts'), '--noEmit', '--enable', 'simd'], { encoding: 'utf8' });
    const ok = build();
    t.is(ok.status, 0, ok.stderr);
    const records = readFileSync(join(dir, 'records.ts'), 'utf8');
    const shifted = records.replace(/^ {2}backendId: u32;$/m, '  extra: u32;\n  backendId: u32;');
    t.not(shifted, records, 'the mutation applies');
    writeFileSync(join(dir, 'records.ts'), shifted);
    const bad = build();
    t.not(bad.status, 0);
    t.regex(bad.stdout + bad.stderr, /CtFlow disagrees with layout\.ts/);
    // the live trace filter record (assembly/trace.ts) is checked the same way
    writeFileSync(join(dir, 'records.ts'), records);
    const trace = readFileSync(join(dir, 'trace.ts'), 'utf8');
    const shiftedTf = trace.replace(/^ {2}budget: u32;( .*)?$/m, '  extra: u16;\n  budget: u32;');
    t.not(shiftedTf, trace, 'the trace filter mutation applies');
    writeFileSync(join(dir, 'trace.ts'), shiftedTf);
    const badTf = build();
    t.not(badTf.status, 0);
    t.regex(badTf.stdout + badTf.stderr, /TraceFilter disagrees with layout\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the live trace filter block is static, aligned and holds its filters and match records', (t) => {
  const at = instance.exports.trace_filter_ptr();
  t.is(at % 64, 0);
  t.true(at + L.TF_BLOCK_SIZE <= instance.exports.heap_base(), 'inside the static data, below the regions the host places');
  t.is(L.TF_MATCH_OFF, L.TF_FILTERS + L.TF_SLOTS * L.TFF_SIZE);
  t.true(L.TFF_BACKENDS + L.TFF_IDS * 4 <= L.TFF_SIZE && L.TM_DST + 16 <= L.TM_SIZE && L.TM_TRACE + L.TRACE_SIZE <= L.TM_SRC);
  t.true(L.TF_SLOTS <= 8, 'TM_FILTERS is one byte of slot bits');
  t.is(L.TFM_TUPLE, L.TFM_SRC | L.TFM_DST | L.TFM_HOST | L.TFM_SPORT | L.TFM_DPORT | L.TFM_PORT | L.TFM_PROTO);
});

test('the reject rate limit block is static, aligned, and the core writes a client entry where layout.ts says', async (t) => {
  const { Core } = await import('../dist/src/core/host.js');
  const { irFrom } = await import('./lib/ir-fixture.js');
  const { frame } = await import('../dist/src/packet/build.js');
  const { affinityHash } = await import('../dist/src/core/hash.js');
  const { parseAddr } = await import('../dist/src/util/addr.js');
  t.is(L.RL_BLOCK_SIZE, L.RL_ENTRIES + L.RL_BUCKETS * L.RL_WAYS * L.RLE_SIZE);
  t.true(L.RL_STAMP + 4 <= L.RL_ENTRIES && L.RLE_LAST + 4 <= L.RLE_SIZE && L.RLE_FAMILY < L.RLE_TOKENS);
  t.is(L.RL_BUCKETS & (L.RL_BUCKETS - 1), 0, 'buckets: a power of two');
  const core = Core.create({ batchMax: 8, flows: 64, affinitySlots: 64 });
  core.applyIr(irFrom({ frontends: [{ id: 1, addr: '10.96.0.10', port: 53, proto: 'UDP', backends: [] }], backends: [] }));
  const at = core.exports.reject_limit_ptr();
  t.is(at % 64, 0);
  t.true(at + L.RL_BLOCK_SIZE <= core.exports.heap_base(), 'inside the static data, below the regions the host places');
  const dv = () => new DataView(core.u8.buffer);
  t.is(dv().getUint32(at + L.RL_CREDIT, true), L.RL_GLOBAL_BURST * 1000, 'init fills the global bucket');
  const client = parseAddr('10.0.0.5').bytes;
  t.is(core.run([frame({ src: '10.0.0.5', dst: '10.96.0.10', proto: 'UDP', sport: 1, dport: 53, payload: 'q' })], 7777)[0].reason, 'reject_no_endpoints');
  const e = at + L.RL_ENTRIES + ((affinityHash(client, 4) & (L.RL_BUCKETS - 1)) >>> 0) * L.RL_WAYS * L.RLE_SIZE;
  t.deepEqual([...core.u8.subarray(e + L.RLE_ADDR, e + L.RLE_ADDR + 16)], [...client]);
  t.is(core.u8[e + L.RLE_FAMILY], 4);
  t.is(dv().getUint32(e + L.RLE_TOKENS, true), (L.RL_HOST_BURST - 1) * L.RL_HOST_INTERVAL_V4_MS, 'one answer spent');
  t.is(dv().getUint32(e + L.RLE_LAST, true), 7777);
  t.is(dv().getUint32(at + L.RL_CREDIT, true), (L.RL_GLOBAL_BURST - 1) * 1000);
  t.is(dv().getUint32(at + L.RL_STAMP, true), 7777);
});
