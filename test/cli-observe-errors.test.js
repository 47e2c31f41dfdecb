// `wdp trace --live --service` and `wdp capture` against a fake control API: a bare service name is
// in the default namespace (as `wdp get --service`), a Service that does not exist is an error
// before any trace starts (a filter that can never match would trace nothing, silently); a capture
// the daemon refuses leaves no empty file behind.
import test from 'ava';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWdp } from './lib/wdp-cli.js';

const status = (code, message) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason: 'NotFound', message });

async function fakeApi(t) {
  const seen = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body });
      const json = (code, obj) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };
      if (req.method === 'GET' && req.url === '/api/v1/namespaces/default/services/web') return json(200, { kind: 'Service', metadata: { name: 'web', namespace: 'default' } });
      if (req.method === 'GET' && req.url.startsWith('/api/v1/namespaces/')) return json(404, status(404, `Service ${req.url.split('/')[4]}/${req.url.split('/')[6]} not found`));
      if (req.url === '/api/v1/trace/live') { res.writeHead(200, { 'content-type': 'application/x-ndjson' }); return res.end('{"kind":"TraceEnd","traced":0,"reason":"duration"}\n'); }
      if (req.method === 'GET' && req.url === '/api/v1/ports') return json(200, { kind: 'PortList', items: [{ name: 'client', index: 0 }, { name: 'pod-a', index: 2 }] });
      if (req.url === '/api/v1/capture') {
        if (JSON.parse(body).port !== 'pod-a') return json(404, status(404, `no port ${JSON.stringify(JSON.parse(body).port)}`));
        res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap' });
        return res.end(Buffer.alloc(24));
      }
      json(404, status(404, 'unknown route'));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return { url: `http://127.0.0.1:${server.address().port}`, seen };
}

test('trace --live --service NAME is default/NAME; a Service that does not exist is refused before tracing', async (t) => {
  const { url, seen } = await fakeApi(t);
  const ok = await runWdp(['trace', '--live', '--service', 'web', '--duration', '1s'], url);
  t.is(ok.code, 0, ok.stderr);
  const live = seen.find((r) => r.url === '/api/v1/trace/live');
  t.is(JSON.parse(live.body).filter.service, 'default/web');
  seen.length = 0;
  const missing = await runWdp(['trace', '--live', '--service', 'shop/wbe', '--duration', '1s'], url);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'error: Service shop/wbe not found\n');
  t.false(seen.some((r) => r.url === '/api/v1/trace/live'), 'no trace was started');
});

test('capture refused by the daemon: an error, and no empty file left behind', async (t) => {
  const { url } = await fakeApi(t);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'x.pcap');
  const r = await runWdp(['capture', '--port', 'nosuch', '-w', file, '--duration', '1s'], url);
  t.is(r.code, 1);
  t.is(r.stderr, 'error: no port "nosuch"\n');
  t.false(existsSync(file), 'no file written');
});

test('capture --port takes a port index too, as --in-port does (wdp get ports lists both)', async (t) => {
  const { url, seen } = await fakeApi(t);
  const dir = mkdtempSync(join(tmpdir(), 'wdp-cap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runWdp(['capture', '--port', '2', '-w', join(dir, 'a.pcap'), '--duration', '1s'], url);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(seen.find((x) => x.url === '/api/v1/capture').body).port, 'pod-a');
  const none = await runWdp(['capture', '--port', '7', '-w', join(dir, 'b.pcap')], url);
  t.is(none.code, 1);
  t.is(none.stderr, 'error: --port 7: the daemon has no port of that index (ports: client (0), pod-a (2))\n');
});
