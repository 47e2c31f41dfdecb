// `wdp get counters --rate D -o wide`: the per-frontend and per-backend tables get a PACKETS/S
// column, as the per-service table has with --rate (before: none, the rate was dropped in wide).
// The packets arrive between the CLI's two snapshots without any timing: a proxy in front of the
// control API runs them through the core once it has the first snapshot's answer and before it
// passes it on, so the second snapshot is sure to count them and the first sure not to.
import test from 'ava';
import http from 'node:http';
import { runWdp } from './lib/wdp-cli.js';
import { startControlPlane } from './lib/server.js';
import { frame } from '../dist/src/packet/build.js';

/** A proxy to `target` that calls `onFirstCounters` between the first counters answer and its client. */
async function countersProxy(t, target, onFirstCounters) {
  let seen = 0;
  const server = http.createServer((req, res) => {
    const up = http.request(new URL(req.url, target), { method: req.method, headers: req.headers }, (ur) => {
      const chunks = [];
      ur.on('data', (d) => chunks.push(d));
      ur.on('end', () => {
        if (req.url.startsWith('/api/v1/counters') && seen++ === 0) onFirstCounters();
        res.writeHead(ur.statusCode, ur.headers);
        res.end(Buffer.concat(chunks));
      });
    });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${server.address().port}`;
}

const rows = (text, header) => {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => header.test(l));
  if (i < 0) return null;
  const out = [];
  for (const l of lines.slice(i + 1)) { if (!l.trim()) break; out.push(l.split(/\s{3,}|\s+(?=\S+$)/)); }
  return { head: lines[i], rows: lines.slice(i + 1, i + 1 + out.length) };
};

test('get counters --rate 0.5 -o wide: PACKETS/S per frontend and per backend', async (t) => {
  const { cp, dp } = await startControlPlane(t);
  t.is((await runWdp(['apply', '-f', 'examples/node.yaml', '-f', 'examples/nodeport.yaml'], cp.url)).code, 0);
  const server = await countersProxy(t, cp.url, () => {
    const frames = [];
    for (let i = 0; i < 10; i++) frames.push(frame({ src: `10.1.0.${i + 1}`, dst: '10.96.12.34', proto: 'TCP', sport: 42000 + i, dport: 80, flags: 'S' }));
    dp.core.run(frames);
  });
  const r = await runWdp(['get', 'counters', '--rate', '0.5', '-o', 'wide'], server);
  t.is(r.code, 0, r.stderr);
  const fe = rows(r.stdout, /^SERVICE\s+PORT\s+KIND/);
  t.truthy(fe, r.stdout);
  t.regex(fe.head, /^SERVICE\s+PORT\s+KIND\s+ADDRESS\s+PACKETS\s+BYTES\s+PACKETS\/S$/);
  // 10 packets in 0.5 s to the ClusterIP frontend, none to the NodePort ones
  t.regex(r.stdout, /^shop\/web\s+http\s+ClusterIP\s+10\.96\.12\.34:80\/TCP\s+10\s+\S+\s+20$/m);
  for (const l of fe.rows.filter((x) => !/ClusterIP/.test(x))) t.regex(l, /\s0$/, l);
  const be = rows(r.stdout, /^BACKEND\s+SERVICE/);
  t.regex(be.head, /^BACKEND\s+SERVICE\s+STATE\s+PACKETS\s+BYTES\s+PACKETS\/S$/);
  const rates = be.rows.map((l) => Number(/(\S+)$/.exec(l)[1]));
  t.is(rates.reduce((a, b) => a + b, 0), 20, be.rows.join('\n'));
  // -o json: the same figures by id
  const j = await runWdp(['get', 'counters', '--rate', '0.5', '-o', 'json'], server);
  const c = JSON.parse(j.stdout);
  t.deepEqual(Object.keys(c.rates.frontends).sort(), c.services.flatMap((s) => s.frontends.map((f) => String(f.id))).sort());
  t.deepEqual(Object.keys(c.rates.backends).sort(), c.backends.map((b) => String(b.id)).sort());
  // without --rate: no rate column
  const plain = await runWdp(['get', 'counters', '-o', 'wide'], cp.url);
  t.notRegex(plain.stdout, /PACKETS\/S/);
});
