// A kubeconfig whose cluster server is plain http:// (kubectl proxy's http://127.0.0.1:8001, an
// API server's insecure port): client-go and kubectl use it as it is — there is no TLS to verify.
// The client library refuses http:// unless TLS verification is switched off, which would leave
// the daemon "waiting for the Node object" with that library's message forever.
import test from 'ava';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig, getJson } from '../dist/src/kube/client.js';
import { ApiServerDouble } from './lib/apiserver-double.js';
import { apiNode } from './lib/kube-fixture.js';

test('a kubeconfig with an http:// server is used as kubectl and client-go use it', async (t) => {
  const double = new ApiServerDouble();
  await double.listen();
  const dir = mkdtempSync(join(tmpdir(), 'wdp-kc-'));
  t.teardown(async () => { await double.close(); rmSync(dir, { recursive: true, force: true }); });
  double.create('nodes', apiNode('node-a'));
  t.regex(double.url, /^http:\/\//);
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, [
    'apiVersion: v1', 'kind: Config', 'current-context: c',
    `clusters: [{name: d, cluster: {server: "${double.url}"}}]`,
    'users: [{name: u, user: {}}]',
    'contexts: [{name: c, context: {cluster: d, user: u}}]', '',
  ].join('\n'));
  const kc = loadKubeConfig({ kubeconfig: file });
  const node = await getJson(kc, '/api/v1/nodes/node-a', 5000);
  t.is(node.metadata.name, 'node-a');
});
