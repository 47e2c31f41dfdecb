// The random-seed fuzzer (test/lib/fuzz.js) on every CI run: a fresh seed each run (printed, and
// in every failure message), WDP_FUZZ_SEED=<n> to replay one, WDP_FUZZ_FRAMES=<n> to change the
// count (default 2 million). Every frame is also run through the reference model. The long mode is
// `npm run fuzz -- --minutes N` (scripts/fuzz.js). The second test proves the checks can fail: it
// breaks the core's memory in each way the fuzzer claims to detect and expects the run to stop.
import test from 'ava';
import { runFuzz, fuzzSeed, FuzzFailure } from './lib/fuzz.js';
import { L } from './lib/packets.js';

const FRAMES = Number(process.env.WDP_FUZZ_FRAMES ?? 2_000_000);

test('fresh-seed fuzz: mutated frames, random ports, time jumps, flips — no trap, no stray write, tables intact, counters exact, core = model', (t) => {
  const seed = fuzzSeed();
  t.log(`seed ${seed} (replay with WDP_FUZZ_SEED=${seed}), ${FRAMES} frames`);
  let s;
  try {
    s = runFuzz({ seed, frames: FRAMES, model: true });
  } catch (e) {
    t.fail(e instanceof FuzzFailure ? e.message : `fuzz seed ${seed} (reproduce: WDP_FUZZ_SEED=${seed}): ${e.stack}`);
    return;
  }
  t.log(`${s.frames} frames in ${s.batches} batches, ${s.seconds.toFixed(1)} s (${Math.round(s.frames / s.seconds)} frames/s); ${s.flips} generation flips, ${s.traced} traced batches (${s.dryRuns} dry runs), ${s.filtered} batches with live trace filters (${s.matched} frames matched), ${s.flushes} flushes`);
  t.log(`mutations: ${Object.entries(s.mutations).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.log(`reasons: ${Object.entries(s.reasons).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.log(`conntrack: new=${s.counters.ct_new} expired=${s.counters.ct_expired} evicted=${s.counters.ct_evicted} reselect=${s.counters.ct_reselect} snat=${s.counters.snat} active=${s.ctActive}`);
  t.is(s.frames, FRAMES);
  // the run must have reached the paths it claims to stress, or it proves little
  if (FRAMES >= 1_000_000) {
    for (const r of ['fwd_nat', 'fwd_reply', 'fwd_icmp_error', 'fwd_routed', 'reject_no_endpoints', 'drop_ct_full', 'drop_snat_exhausted',
      'drop_oversize', 'drop_bad_port', 'drop_truncated_l4', 'drop_bad_ihl', 'drop_fragment', 'drop_source_range', 'host_arp', 'host_nd']) {
      t.true((s.reasons[r] ?? 0) > 0, `no ${r} in ${s.frames} frames`);
    }
    for (const c of ['ct_evicted', 'ct_expired', 'ct_reselect', 'aff_hit', 'snat']) t.true(s.counters[c] > 0, `counter ${c} stayed 0`);
    t.true(s.flips > 0 && s.dryRuns > 0 && s.flushes > 0 && s.matched > 0, 'flips, dry runs, flushes and live filter matches all happened');
  }
});

// Each case breaks one thing right after a process() call; the run must stop with that finding
// and name the seed. Seed 1, at most 20k frames: deterministic and quick.
const TAMPER = [
  {
    what: 'a byte written past a short frame in its slot',
    expect: /slot 0 written at \+2047/,
    hook(core, batch) {
      const d = core.descriptor(0);
      if (batch >= 20 && d.len < 2000) core.u8[core.slotOffset(0) + core.slotSize - 1] ^= 0x5a;
    },
  },
  {
    what: 'a byte written in an unused slot',
    expect: /unused slots written/,
    hook(core, batch, n) { if (batch >= 20 && n < core.batchMax) core.u8[core.slotOffset(core.batchMax - 1) + 7] ^= 1; },
  },
  {
    what: 'a service table byte changed',
    expect: /static memory changed/,
    hook(core, batch) { if (batch === 30) core.u8[core.map.tableSets[0] + 100] ^= 0xff; },
  },
  {
    what: 'a reason counter off by one',
    expect: /counters disagree with the descriptors.*reason fwd_nat/,
    hook(core, batch) {
      if (batch !== 40) return;
      const at = core.map.counters + (L.GC_COUNT + L.REASON_FWD_NAT) * 8;
      core.dv.setBigUint64(at, core.dv.getBigUint64(at, true) + 1n, true);
    },
  },
  {
    what: 'a live flow dropped from the conntrack index',
    expect: /conntrack index|missing from the conntrack index/,
    hook(core, batch) {
      if (batch < 40) return;
      const m = core.map;
      for (let s = 0; s < m.ctIndexSlots; s++) {
        const p = m.ctIndex + s * L.CTI_SIZE;
        if (core.dv.getUint32(p + L.CTI_REF, true)) { core.dv.setUint32(p + L.CTI_REF, 0, true); return; }
      }
    },
  },
  {
    what: 'a forwarded frame rewritten differently from the model',
    expect: /core and reference model differ/,
    hook(core, batch, n) {
      if (batch < 20) return;
      for (let i = 0; i < n; i++) {
        const d = core.descriptor(i);
        if (d.verdict === L.V_FORWARD && d.len > 40) { core.u8[core.slotOffset(i) + 30] ^= 0x10; return; }
      }
    },
  },
  {
    what: 'a live trace match record disagreeing with its frame',
    expect: /trace record .* disagrees with descriptor/,
    hook(core) {
      const base = core.traceFilterBase;
      if (core.dv.getUint32(base + L.TF_MATCHES, true)) core.u8[base + L.TF_MATCH_OFF + L.TM_TRACE + L.TR_REASON] ^= 0x3f;
    },
  },
];

test('the fuzzer detects each failure it checks for (broken on purpose)', (t) => {
  for (const c of TAMPER) {
    const e = t.throws(() => runFuzz({ seed: 1, frames: 20_000, model: true, afterBatch: c.hook }), { instanceOf: FuzzFailure }, c.what);
    if (!e) continue;
    t.regex(e.message, c.expect, c.what);
    t.regex(e.message, /WDP_FUZZ_SEED=1\b/, `${c.what}: the failure names the seed`);
  }
  // and an untouched run with the same seed passes
  t.is(runFuzz({ seed: 1, frames: 20_000, model: true }).frames, 20_000);
});

test('WDP_FUZZ_SEED is honoured and checked', (t) => {
  t.is(fuzzSeed({ WDP_FUZZ_SEED: '12345' }), 12345);
  t.is(fuzzSeed({ WDP_FUZZ_SEED: '0xff' }), 255);
  t.throws(() => fuzzSeed({ WDP_FUZZ_SEED: 'abc' }), { message: /WDP_FUZZ_SEED must be an integer/ });
  t.throws(() => fuzzSeed({ WDP_FUZZ_SEED: '-1' }));
  const a = fuzzSeed({}), b = fuzzSeed({});
  t.true(Number.isInteger(a) && Number.isInteger(b));
  // the same seed gives the same run
  const r1 = runFuzz({ seed: 99, frames: 5000 }), r2 = runFuzz({ seed: 99, frames: 5000 });
  t.deepEqual(r1.reasons, r2.reasons);
  t.deepEqual(r1.counters, r2.counters);
});
