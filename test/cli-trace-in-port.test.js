// `wdp trace --in-port N` names one of the running daemon's ports: an index it has no port of is
// refused with the ports it has, instead of a dry-run trace from a port that does not exist (or a
// live trace filter that never matches).
import test from 'ava';
import { runWdp as wdp } from './lib/wdp-cli.js';
import { createServer } from 'node:http';

/** A stand-in daemon: two ports (0 pod-a, 1 uplink); records the traces asked for. `ports404`: a
 * control plane without the ports routes (an embedding). */
async function daemon(t, { ports404 = false } = {}) {
  const traces = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && req.url.startsWith('/api/v1/ports')) {
        if (ports404) { res.statusCode = 404; res.end(JSON.stringify({ kind: 'Status', message: 'Route GET:/api/v1/ports not found', code: 404 })); return; }
        res.end(JSON.stringify({ items: [{ name: 'pod-a', index: 0 }, { name: 'uplink', index: 1 }] }));
        return;
      }
      if (req.method === 'POST' && req.url === '/api/v1/trace') {
        traces.push(JSON.parse(body));
        res.end(JSON.stringify({ verdict: 'forward', reason: 'forward_new', outPort: 0, stages: [], conntrack: 'new', selection: 'maglev', hash: 1 }));
        return;
      }
      res.statusCode = 404; res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  return { url: `http://127.0.0.1:${server.address().port}`, traces };
}

const TRACE = ['trace', '--src', '10.0.0.2', '--dst', '10.96.0.10', '--dport', '53'];

test('trace --in-port: an index the daemon has no port of is refused, naming its ports', async (t) => {
  const d = await daemon(t);
  const bad = await wdp([...TRACE, '--in-port', '7'], d.url);
  t.is(bad.code, 1, bad.stdout);
  t.regex(bad.stderr, /^error: --in-port 7: the daemon has no port of that index \(ports: pod-a \(0\), uplink \(1\)\)\n$/);
  t.deepEqual(d.traces, [], 'nothing traced');
  const ok = await wdp([...TRACE, '--in-port', '1'], d.url);
  t.is(ok.code, 0, ok.stderr);
  const byName = await wdp([...TRACE, '--in-port', 'uplink'], d.url);
  t.is(byName.code, 0, byName.stderr);
  t.deepEqual(d.traces.map((x) => x.inPort), [1, 1]);
});

test('trace --in-port N against a control plane without the ports routes: the index is sent as given', async (t) => {
  const d = await daemon(t, { ports404: true });
  const r = await wdp([...TRACE, '--in-port', '3'], d.url);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(d.traces.map((x) => x.inPort), [3]);
});
