// docs/running.md "Trying the Kubernetes watcher without a cluster", run as a reader pastes it into a
// root shell in the checkout: the API-server double in the dataplane's namespace seeded over its
// control socket, a daemon with a kubernetes: section and a kubeconfig, healthz awaited, the
// Service listed and served through its ClusterIP, its EndpointSlice deleted in the "API server"
// and the ClusterIP then refusing, the stop (exit 0) and the clean-up. Only the namespace prefix and
// the directory are made unique: every command runs as written.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { rootGate } from './lib/root-gate.js';
import { processesNaming, recipe, runRecipe } from './lib/docs-recipe.js';

const gate = rootGate(test, { tools: ['curl'] });
const HEAD = 'P=wdp-kube; D=/tmp/wdp-kube;';

gate.test('running.md "Trying the Kubernetes watcher without a cluster": the recipe as written programs the double\'s Service, follows its EndpointSlice away, stops cleanly and leaves nothing behind', async (t) => {
  const text = recipe('Trying the Kubernetes watcher without a cluster');
  t.true(text.startsWith(HEAD), 'the recipe names its prefix and directory first');
  t.notRegex(text, /\bnpx\b|\bnpm exec\b/, 'the recipe runs the CLI as node bin/wdp.js (README "Using it")');
  const { code, out, err, dir, nss } = await runRecipe(t, text, { head: HEAD, prefix: `wdp-t${process.pid}-kt`, roles: ['dp', 'client', 'pod'], dirPrefix: 'wdp-walk-kube-' });
  t.is(code, 0, `the recipe's last command succeeded\n${out}\n${err}`);
  t.regex(out, /^default\s+web\s+ClusterIP\s+10\.96\.0\.10\s/m, `wdp get services lists the API server's Service\n${out}\n${err}`);
  t.regex(out, /^hello from pod-a$/m, `curl got the pod's answer through 10.96.0.10\n${out}\n${err}`);
  t.regex(err, /curl: \(7\) Failed to connect to 10\.96\.0\.10 port 80/, `the ClusterIP refuses once the slice is deleted\n${out}\n${err}`);
  t.regex(out, /^reject_no_endpoints\s+[1-9]/m, `the counters name the reject\n${out}`);
  t.regex(out, /^stopped$/m, 'the daemon stopped with exit status 0');
  t.is(err.split('\n').filter((l) => l && !/^curl: \(7\)/.test(l)).join('\n'), '', 'nothing else on stderr');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.false(nss.some((ns) => left.includes(ns)), `the recipe removes its namespaces\n${left}`);
  t.false(existsSync(join(dir, 'wdp.yaml')), 'and its directory');
  t.deepEqual(processesNaming(dir), [], 'no daemon or API-server double is left running');
});
