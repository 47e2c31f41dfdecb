// --server pointed at the daemon's own healthz listener (127.0.0.1:10256, the port beside the API
// that a person who has just curl'ed /healthz types): its 404 is a JSON Status too, "no route GET
// /api/v1/services?limit=5000", which the CLI printed as the error. docs/api.md "CLI" promises
// "error: http://127.0.0.1:10256 is not the wdp control API (GET /api/v1/services answered HTTP
// 404, ...)"; the API's own 404 for a route it has not (a wdp older than the CLI) is still shown.
import test from 'ava';
import { createServer } from 'node:http';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine } from './lib/cli-expect.js';
import { startControlPlane } from './lib/server.js';

test('--server at the daemon\'s healthz listener: "is not the wdp control API"', async (t) => {
  const { cp } = await startControlPlane(t, { healthz: '127.0.0.1:0' });
  const url = cp.healthzUrl;
  t.truthy(url);
  const notWdp = new RegExp(`^error: ${url.replace(/[.]/g, '\\.')} is not the wdp control API \\(GET /api/v1/services answered HTTP 404, `);
  oneLine(t, await runWdp(['get', 'services'], url), notWdp);
  oneLine(t, await runWdp(['status'], url), /is not the wdp control API \(GET \/api\/v1\/\w+ answered HTTP 404/);
});

test('the wdp API\'s own 404 for a route it has not: its message, as before', async (t) => {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound', message: `no route ${req.method} ${req.url.split('?')[0]}; see docs/api.md` }));
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  oneLine(t, await runWdp(['get', 'services'], `http://127.0.0.1:${srv.address().port}`), /^error: no route GET \/api\/v1\/services; see docs\/api\.md$/);
});
