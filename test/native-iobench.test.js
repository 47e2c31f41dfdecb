// The io benchmark runs end to end (short window) and cleans up after itself. No speed is
// asserted — only that every mode moved traffic and that its namespaces are gone afterwards.
import test from 'ava';
import { canUseNetns, run } from '../dist/src/netns.js';
import { runIoBench } from '../dist/src/bench/io.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0 && canUseNetns();
const hasTrafgen = run('sh', ['-c', 'command -v trafgen']).code === 0;
if (!isRoot) console.log('native-iobench: skipped — needs root (network namespaces)');
else if (!hasTrafgen) console.log('native-iobench: skipped — trafgen (netsniff-ng) is not installed');
const rootTest = isRoot && hasTrafgen ? test.serial : test.skip;

rootTest('runIoBench measures af_packet, tap and kernel forwarding and removes its namespaces', async (t) => {
  const phases = [];
  const r = await runIoBench({ seconds: 0.3, warmupSeconds: 0.2, batch: 64, onProgress: (p, d, n) => phases.push(`${p}:${d}/${n}`) });
  t.log(JSON.stringify(r.rows));
  t.deepEqual(r.rows.map((x) => x.mode), ['af_packet', 'tap', 'kernel']);
  for (const row of r.rows) {
    t.is(row.error, undefined, `${row.mode}: ${row.error}`);
    t.true(row.forwarded_mpps > 0, `${row.mode} forwarded traffic`);
    t.true(row.offered_mpps > 0, `${row.mode} offered traffic`);
  }
  t.is(r.af_packet_mpps, r.rows[0].forwarded_mpps);
  t.is(r.tap_mpps, r.rows[1].forwarded_mpps);
  t.is(r.kernel_forward_mpps, r.rows[2].forwarded_mpps);
  t.is(r.frame_bytes, 60);
  t.true(phases.includes('kernel:3/3'));
  const left = run('ip', ['netns', 'list']).stdout.split('\n').filter((l) => l.startsWith(`wdp-bio${process.pid}-`));
  t.deepEqual(left, []);
});

test('runIoBench rejects bad options before touching the system', async (t) => {
  await t.throwsAsync(runIoBench({ seconds: 0 }), { message: /seconds/ });
  await t.throwsAsync(runIoBench({ batch: 0 }), { message: /batch/ });
  await t.throwsAsync(runIoBench({ size: 20 }), { message: /size/ });
  await t.throwsAsync(runIoBench({ modes: ['dpdk'] }), { message: /unknown io bench mode/ });
});
