// `wdp trace` (dry run) as a person reads it: a rejected packet's output is the answer the core
// sends back (an ICMP port unreachable), labelled so rather than "rewritten:"; a forwarded one's
// is the packet rewritten. A wrong --flags is named by its flag (the API's field is tcpFlags)
// before anything is sent.
import test from 'ava';
import { createServer } from 'node:http';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine } from './lib/cli-expect.js';

const wdp = (args, server) => runWdp(args, server, { killAfterMs: 60_000 });

/** A control API that answers every trace with `answer` and counts the requests. */
async function fakeApi(t, answer) {
  const seen = [];
  const srv = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(answer)); });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  return { url: `http://127.0.0.1:${srv.address().port}`, seen };
}

const BASE = { outPort: 0, conntrack: 'none', selection: 'none', hash: 1 };

test('a rejected packet: "answer:", the ICMP answer without ports', async (t) => {
  const api = await fakeApi(t, { ...BASE, verdict: 'reject', reason: 'reject_invalid_port', stages: ['parsed', 'reject'], output: { src: '10.0.0.1', dst: '10.0.0.2', hex: '' } });
  const r = await wdp(['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10', '--proto', 'UDP'], api.url);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^answer: {5}10\.0\.0\.1 -> 10\.0\.0\.2$/m);
  t.notRegex(r.stdout, /rewritten:/);
});

test('a forwarded packet: "rewritten:", with its ports', async (t) => {
  const api = await fakeApi(t, { ...BASE, verdict: 'forward', reason: 'fwd_nat', stages: ['parsed', 'dnat'], output: { src: '10.0.0.2', dst: '10.244.1.11', sport: 40000, dport: 8080, hex: '' } });
  const r = await wdp(['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10'], api.url);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^rewritten: {2}10\.0\.0\.2:40000 -> 10\.244\.1\.11:8080$/m);
});

test('--flags X: named by its flag, nothing sent', async (t) => {
  const api = await fakeApi(t, {});
  oneLine(t, await wdp(['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10', '--flags', 'X'], api.url), /^error: --flags takes TCP flags, letters of S, A, F, R, P, U \(e\.g\. SA\), got "X"$/);
  t.deepEqual(api.seen, []);
});

test('live trace: a rejected packet\'s output is its answer, as in the dry run', async (t) => {
  const { formatLiveEvent } = await import('../dist/src/cli/observe.js');
  const text = formatLiveEvent({
    time: '2026-12-07T04:59:19.389Z', worker: 0, inPort: 'client', verdict: 'reject', reason: 'reject_invalid_port', stages: ['parsed', 'reject'],
    conntrack: 'none', input: { proto: 'UDP', src: '10.0.0.2', sport: 43641, dst: '10.96.0.10', dport: 80 }, output: { src: '10.0.0.1', dst: '10.0.0.2' }, outPort: 'client',
  });
  t.regex(text, /^ {2}answer: {5}10\.0\.0\.1 -> 10\.0\.0\.2 {2}out port client$/m);
  t.notRegex(text, /rewritten:/);
});
