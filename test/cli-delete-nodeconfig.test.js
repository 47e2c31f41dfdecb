// `wdp get nodeconfig` works by name, so a person tries `wdp delete nodeconfig node-a`: the error
// says how a NodeConfig is deleted (-f with its manifest) instead of only "use service or
// endpointslice"; nothing is sent.
import test from 'ava';
import { createServer } from 'node:http';
import { runWdp } from './lib/wdp-cli.js';
import { oneLine } from './lib/cli-expect.js';

test('wdp delete nodeconfig NAME: names the -f way, sends nothing', async (t) => {
  const seen = [];
  const srv = createServer((req, res) => { seen.push(req.url); req.resume(); req.on('end', () => res.end('{}')); });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  oneLine(t, await runWdp(['delete', 'nodeconfig', 'node-a'], `http://127.0.0.1:${srv.address().port}`), /^error: a NodeConfig is deleted with -f FILE naming it \(wdp get nodeconfig -o yaml > node\.yaml; wdp delete -f node\.yaml\)/);
  oneLine(t, await runWdp(['delete', 'pods', 'x'], `http://127.0.0.1:${srv.address().port}`), /^error: unknown resource "pods": use service or endpointslice$/);
  t.deepEqual(seen, []);
});
