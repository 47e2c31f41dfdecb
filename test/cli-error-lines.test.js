// An API error whose message ends in newlines (a failed command's output, as the ports API can
// pass on) prints one `error:` line per line of text, never an empty `error: ` line.
import test from 'ava';
import { createServer } from 'node:http';
import { runWdp } from './lib/wdp-cli.js';

test('blank lines of an API error message are not printed as empty error lines', async (t) => {
  const message = 'port pod-z: Command failed: ip link set tapz netns nosuchns\nError: argument "nosuchns" is wrong: Invalid "netns" value\n\n';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, reason: 'InternalError', message }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const r = await runWdp(['port', 'add', '--name', 'pod-z', '--type', 'tap', '--ifname', 'tapz', '--netns', 'nosuchns', '--gateway', '10.244.0.1'], `http://127.0.0.1:${server.address().port}`);
  t.is(r.code, 1);
  t.deepEqual(r.stderr.split('\n').filter(Boolean), [
    'error: port pod-z: Command failed: ip link set tapz netns nosuchns',
    'error: Error: argument "nosuchns" is wrong: Invalid "netns" value',
  ]);
});
