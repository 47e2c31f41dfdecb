// `wdp get counters` shows the reasons the core rejected packets for (reject_no_endpoints,
// reject_invalid_port, ...) beside the drop reasons: docs/running.md sends an operator there for
// reject_no_endpoints.
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';
import { frame } from '../dist/src/packet/build.js';

test('get counters lists reject reasons with packets (a SYN to a ClusterIP port the Service does not define)', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  const run = (args) => wdp(args, cp.url);
  t.is((await run(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'])).code, 0);
  const quiet = await run(['get', 'counters']);
  t.false(/REJECT-REASON/.test(quiet.stdout), 'no table while nothing was rejected');
  dp.core.run([frame({ src: '10.1.0.1', dst: '10.96.12.34', proto: 'TCP', sport: 41000, dport: 81, flags: 'S' })]);
  const r = await run(['get', 'counters']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^REJECT-REASON\s+PACKETS$/m);
  t.regex(r.stdout, /^reject_invalid_port\s+1$/m);
  t.regex(r.stdout, /^No drops\.$/m);
});

test('get counters -o wide with no Service says so for frontends and backends, not two empty tables', async (t) => {
  const { cp } = await startControlPlane(t);
  const r = await wdp(['get', 'counters', '-o', 'wide'], cp.url);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^No frontends\.\n\nNo backends\.$/m);
  t.notRegex(r.stdout, /^SERVICE\s+PORT|^BACKEND\s+SERVICE/m);
  t.is((await wdp(['apply', '-f', 'examples/nodeport.yaml'], cp.url)).code, 0);
  const full = await wdp(['get', 'counters', '-o', 'wide'], cp.url);
  t.regex(full.stdout, /^SERVICE\s+PORT\s+KIND\s+ADDRESS\s+PACKETS\s+BYTES$/m);
  t.regex(full.stdout, /^BACKEND\s+SERVICE\s+STATE\s+PACKETS\s+BYTES$/m);
});
