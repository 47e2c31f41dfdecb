// docs/running.md "Trying it by hand", run as a reader pastes it into a root shell in the checkout:
// three namespaces, a daemon with an AF_PACKET uplink and a TAP pod, a Service applied with
// `node bin/wdp.js apply`, curl through the ClusterIP, `wdp get conntrack`, the stop (exit 0) and the
// clean-up. Only the namespace prefix and the directory are made unique: every command runs as written.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { processesNaming, recipe, runRecipe } from './lib/docs-recipe.js';

const gate = rootGate(test, { tools: ['curl', 'python3'] });
const HEAD = 'P=wdp-try; D=/tmp/wdp-try;';

gate.test('running.md "Trying it by hand": the recipe as written serves the pod through the ClusterIP, lists the flow, stops cleanly and leaves nothing behind', async (t) => {
  const text = recipe('Trying it by hand');
  t.true(text.startsWith(HEAD), 'the recipe names its prefix and directory first');
  // no npx / npm exec: the first run of the local package's bin installs it into npm's cache and
  // runs its `prepare` script (a whole `npm run build`, rewriting dist/ under a running daemon)
  t.notRegex(text, /\bnpx\b|\bnpm exec\b/, 'the recipe runs the CLI as node bin/wdp.js (README "Using it")');
  const { code, out, err, dir, nss } = await runRecipe(t, text, { head: HEAD, prefix: `wdp-t${process.pid}-try`, roles: ['dp', 'client', 'pod'], dirPrefix: 'wdp-walk-try-' });
  t.is(code, 0, `the recipe's last command succeeded\n${out}\n${err}`);
  t.regex(out, /^hello from pod-a$/m, `curl got the pod's answer through 10.96.0.20\n${out}\n${err}`);
  t.regex(out, /service\/default\/web created/);
  t.regex(out, /TCP\s+10\.0\.0\.2:\d+\s+10\.96\.0\.20:80\s+10\.244\.1\.11:8080\s+\S+\s+default\/web/, `wdp get conntrack shows the flow\n${out}`);
  t.regex(out, /^stopped$/m, 'the daemon stopped with exit status 0');
  t.notRegex(err, /error/i, err);
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.false(nss.some((ns) => left.includes(ns)), `the recipe removes its namespaces\n${left}`);
  t.false(existsSync(join(dir, 'wdp.yaml')), 'and its directory');
  t.deepEqual(processesNaming(dir), [], 'no daemon is left running');
});
